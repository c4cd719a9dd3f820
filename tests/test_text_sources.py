"""The broad English -> Spanish corpus: each reader on the real installed files, the sentence
aligner, the split by document, the sampling mix and the input noiser."""

from collections import Counter

import pytest

from e2e.data.sentence_align import align, plausible, sentence_pairs, split_sentences
from e2e.data.text_corpus import (
    Pair,
    broad_splits,
    read_corpus,
    sample_mix,
    sampling_shares,
    split_documents,
    unemphasize,
)
from e2e.data.text_noise import Noiser, add_noise
from e2e.errors import DatasetMissing

_cache: dict[str, tuple[list[Pair], Counter]] = {}


def corpus(name: str) -> tuple[list[Pair], Counter]:
    """The corpus's pairs and skip counts, read once; skips with the install command."""
    if name not in _cache:
        counts = Counter()
        try:
            _cache[name] = read_corpus(name, counts), counts
        except DatasetMissing as e:
            pytest.skip(f"{name} is not installed: {e.install}")
    return _cache[name]


@pytest.mark.parametrize("name, document, source, target", [
    ("wesnoth", "httt", "Die, villain, die!", "¡Muere, villano, muere!"),
    ("tuxpaint", "animals/mammals", "A giraffe.", "Una jirafa."),
    ("docs", "gnome-help/color-whatisspace", "AdobeRGB is frequently used as an editing space.",
     "AdobeRGB se usa frecuentemente como un espacio de edición."),
    ("docs", "installation-guide/ch03s05", "Partitioning tools always provide a way to show "
     "existing partitions without making changes.", "Las herramientas de particionado siempre "
     "disponen de una opción en la que se pueden mostrar las particiones existentes sin "
     "realizar cambios."),
    ("steel-sky", None, "What are those blue flowers called?",
     "¿Cómo se llaman esas flores azules?"),
])
def test_each_reader_yields_a_known_pair(name, document, source, target):
    pairs, _ = corpus(name)
    found = [p for p in pairs if p.source == source]
    assert found, f"{source!r} not among {len(pairs)} {name} pairs"
    assert found[0].target == target
    assert document is None or found[0].document == document
    assert all(p.corpus == name and p.document and p.source and p.target for p in pairs)
    assert len({(p.source, p.target) for p in pairs}) == len(pairs)  # no repeated pair


@pytest.mark.parametrize("name, least, skipped", [
    ("wesnoth", 11_000, "same on both sides"), ("tuxpaint", 750, "duplicates"),
    ("docs", 15_000, "untranslated blocks"), ("steel-sky", 3_500, "odd characters")])
def test_readers_count_what_they_skip(name, least, skipped):
    pairs, counts = corpus(name)
    assert len(pairs) >= least
    assert counts[skipped] > 0, counts
    # a translation is rarely under half or over twice its source's length
    assert sum(plausible(p.source, p.target) for p in pairs) >= 0.97 * len(pairs)


def test_wesnoth_strips_markup_and_context():
    pairs, _ = corpus("wesnoth")
    assert not any("<i>" in p.source or "</span>" in p.target or "^" in p.source
                   for p in pairs)


def test_sentences_are_split_at_ends_not_at_abbreviations():
    text = "Use a tool, e.g. the apt command. Then run it! ¿Qué pasa? Ver p. ej. la guía."
    assert split_sentences(text) == ["Use a tool, e.g. the apt command.", "Then run it!",
                                     "¿Qué pasa?", "Ver p. ej. la guía."]


def test_gale_church_pairs_sentences_by_length():
    src = ["This is the first sentence of the paragraph.", "Short.",
           "And here is the third sentence, a longer one with more words."]
    one_to_one = ["Esta es la primera oración del párrafo.", "Corta.",
                  "Y aquí está la tercera oración, una más larga con más palabras."]
    assert align(src, one_to_one) == [([0], [0]), ([1], [1]), ([2], [2])]
    merged = ["Esta es la primera oración del párrafo, que es corta.", one_to_one[2]]
    assert align(src, merged) == [([0, 1], [0]), ([2], [1])]
    assert sentence_pairs(" ".join(src), " ".join(merged))[0] == (
        "This is the first sentence of the paragraph. Short.", merged[0])


def test_emphasis_capitals_are_lowered_but_not_shouting():
    assert unemphasize("Whatever gave you THAT idea?") == "Whatever gave you that idea?"
    assert unemphasize("STOP!") == "STOP!"
    assert unemphasize("Is LINC SURE?", frozenset({"LINC"})) == "Is LINC sure?"  # a name


def test_the_document_split_keeps_every_document_on_one_side():
    pairs, _ = corpus("wesnoth")
    parts = split_documents(pairs, 0.05, 0.1, seed=0)
    docs = [{p.document for p in part} for part in parts]
    assert all(docs) and not (docs[0] & docs[1] or docs[0] & docs[2] or docs[1] & docs[2])
    assert sum(map(len, parts)) == len(pairs)
    assert 0.1 <= len(parts[2]) / len(pairs) <= 0.15  # the goal, overshot by under 1.5 times
    assert parts == split_documents(pairs, 0.05, 0.1, seed=0)  # the seed fixes it
    assert parts[2] != split_documents(pairs, 0.05, 0.1, seed=1)[2]


def test_broad_splits_hold_out_documents_texts_and_the_unseen_corpus():
    for name in ("wesnoth", "steel-sky", "tuxpaint"):
        corpus(name)  # skips unless installed
    splits = broad_splits(corpora=("wesnoth", "steel-sky", "tuxpaint"), unseen="tuxpaint")
    assert splits.train["tuxpaint"] == splits.val["tuxpaint"] == []
    assert len(splits.test["tuxpaint"]) == len(corpus("tuxpaint")[0])
    held = {p.source for part in (splits.val, splits.test) for pairs in part.values()
            for p in pairs}
    for name in ("wesnoth", "steel-sky"):
        train_docs = {p.document for p in splits.train[name]}
        assert not train_docs & {p.document for p in splits.test[name]}
        assert not train_docs & {p.document for p in splits.val[name]}
        assert splits.test[name] and not {p.source for p in splits.train[name]} & held


def test_the_mix_draws_each_corpus_at_its_share():
    pairs, _ = corpus("wesnoth")
    train = {"wesnoth": pairs[:8100],
             "small": [Pair("small", "d", f"s{i}", "t") for i in range(400)],
             "mid": [Pair("mid", "d", f"m{i}", "t") for i in range(2500)]}
    shares = sampling_shares({k: len(v) for k, v in train.items()}, 0.5)
    assert shares["wesnoth"] == pytest.approx(90 / (90 + 20 + 50))  # sqrt of 8100, 400, 2500
    mix = sample_mix(train, 0.5, seed=0)
    assert len(mix) == 11_000
    drawn = Counter(p.corpus for p in mix)
    for name, share in shares.items():
        assert drawn[name] / len(mix) == pytest.approx(share, abs=0.002)
    assert len({p.source for p in mix if p.corpus == "small"}) == 400  # every one, repeated
    assert sample_mix(train, 0.5, seed=0) == mix
    assert sampling_shares({"a": 100, "b": 400}, 1.0) == {"a": 0.2, "b": 0.8}
    assert sampling_shares({"a": 100, "b": 400}, 0.0) == {"a": 0.5, "b": 0.5}


def test_the_noiser_is_deterministic_and_at_its_rate():
    pairs, _ = corpus("wesnoth")
    texts = [p.source for p in pairs[:3000]]
    noiser = Noiser(typo=0.05, lowercase=0.0, punctuation=0.0, seed=3)
    assert [noiser(t) for t in texts] == add_noise(texts, 0.05, 0.0, 0.0, seed=3)
    assert add_noise(texts[:50], seed=3) == add_noise(texts[:50], seed=3)
    assert add_noise(texts[:50], seed=3) != add_noise(texts[:50], seed=4)
    letters = sum(c.isalpha() for t in texts for c in t)
    edits = sum(sum(noiser.apply(t)[1].values()) for t in texts)
    assert edits / letters == pytest.approx(0.05, rel=0.1)
    assert add_noise(texts[:200], 0.0, 0.0, 0.0) == texts[:200]
    ruined = Noiser(typo=1.0, lowercase=1.0, punctuation=1.0)("%s: {Name} %2$d")
    assert ruined.split() == ["%s", "{Name}", "%2$d"]  # placeholders untouched
    bare = add_noise(texts[:200], 0.0, 1.0, 1.0)
    assert all(t == t.lower() and not any(c in ".,;:!?¡¿'\"" for c in t) for t in bare)


def test_a_corpus_is_a_text_data_source():
    corpus("tuxpaint")
    from e2e.tasks.text.config import TextDataConfig
    from e2e.tasks.text.task import read_pairs

    train, val, test, origin = read_pairs(TextDataConfig(source="tuxpaint"))
    assert origin == "tuxpaint" and train and val and test
    assert not {s for s, _ in train} & {s for s, _ in test}


def _build(source: str, *overrides: str):
    from e2e.tasks import load_config
    from e2e.tasks.text.task import TextTask

    cfg = load_config(None, "text", [f"data.source={source}", "data.vocab_size=320",
                                     "data.limit=300", *overrides])
    return TextTask().build_data(cfg)


def test_corpora_joined_by_plus_train_on_a_mix_and_are_scored_apart():
    for name in ("steel-sky", "tuxpaint"):
        corpus(name)
    splits = _build("steel-sky+tuxpaint", "data.test_limit=20")
    assert splits.info.source == "steel-sky+tuxpaint"
    assert splits.test.parts == {"steel-sky": (0, 20), "tuxpaint": (20, 40)}
    assert len(splits.train) == 300 and len(splits.val) > 0


@pytest.mark.slow  # reads every corpus: ~12 s of one core
def test_broad_holds_out_the_unseen_corpus_as_a_test_part():
    splits = _build("broad")
    unseen = len(corpus("tuxpaint")[0])
    start, end = splits.test.parts["tuxpaint"]
    assert end - start == unseen and set(splits.test.parts) >= {"bible", "messages", "docs"}
    assert not set(splits.train.sources) & set(splits.test.sources)

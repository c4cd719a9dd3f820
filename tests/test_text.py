"""The text task: tokenizer, decoding (beam 1 = greedy, cache = no cache), a tiny task that
learns, data splits, bad input, and the CLI on a trained run."""

import random
import subprocess
import sys
import warnings

import pytest
import torch

import e2e
from e2e.data.tsv import read_pairs_tsv
from e2e.engine.batching import bucket_by_length
from e2e.errors import DatasetMissing, E2EError
from e2e.tasks.text.decode import beam_search, generate, greedy
from e2e.tasks.text.model import Seq2SeqTransformer
from e2e.tasks.text.tokenizer import EOS_ID, decode, encode, train_bpe

WORDS = "red green blue cat dog sun moon tree star fish".split()
TINY = ["data.vocab_size=320", "model.d_model=64", "model.ff=128", "model.heads=4",
        "model.encoder_layers=1", "model.decoder_layers=1", "model.dropout=0.0",
        "model.max_len=32", "data.max_source_tokens=24", "data.max_target_tokens=24",
        "train.max_steps=300", "train.eval_every=300", "train.batch_size=32", "train.lr=3e-3",
        "train.warmup=0.1", "train.precision=fp32", "train.device=cpu", "model.beam=2",
        "data.val_percent=5", "data.test_percent=5"]


pytestmark = pytest.mark.usefixtures("one_thread")


def write_copy_tsv(path, n=600, seed=0):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        lines.append(f"{s}\t{s}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    data = write_copy_tsv(root / "copy.tsv")
    results = e2e.train("text", data=str(data), out=root / "run", overrides=TINY, quiet=True)
    return root / "run", results


def test_tiny_copy_task_learns_in_seconds(copy_run):
    run, results = copy_run
    assert results["train_seconds"] < 60, results
    assert results["test/chrf"] > 90 and results["test/bleu"] > 80, results
    model = e2e.load(run)
    assert model.predict(["cat sun moon", "", "fish tree"]) == ["cat sun moon", "", "fish tree"]
    assert (run / "tokenizer.json").exists()
    assert "BLEU signature" in (run / "report.md").read_text()


def test_tokenizer_round_trip():
    texts = ["In the beginning God created the heaven and the earth.",
             "EN el principio crió Dios los cielos y la tierra.", "¿Qué te he hecho?"] * 20
    tok = train_bpe(texts, vocab_size=400)
    unseen = ["Ñandú, über café — 東京 🚀 tab\there", "  spaces  inside ", "x"]
    for text in texts[:3] + unseen:
        assert decode(tok, encode(tok, [text]))[0] == text.strip()
    assert all(len(ids) > 0 for ids in encode(tok, unseen))


def random_model(seed=0):
    torch.manual_seed(seed)
    model = Seq2SeqTransformer(50, 32, 4, 2, 2, 64, 0.0, max_len=40).eval()
    # Make </s> rare but possible, so sequences end at different lengths.
    with torch.no_grad():
        model.embed.weight[EOS_ID] *= 0.3
    return model


def sources(seed=1, n=6):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, 50, (n, 9), generator=g)
    src[:, -1] = EOS_ID
    src[2, 5:] = 0  # padding
    src[2, 4] = EOS_ID
    return src


def test_beam_one_equals_greedy():
    model, src = random_model(), sources()
    assert beam_search(model, src, beam=1, max_len=25) == greedy(model, src, max_len=25)


def test_cached_decoding_equals_uncached():
    model, src = random_model(2), sources(3)
    for beam in (1, 3):
        cached = generate(model, src, beam=beam, max_len=25, cache=True)
        uncached = generate(model, src, beam=beam, max_len=25, cache=False)
        assert cached == uncached
        assert any(len(c) > 3 for c in cached)  # non-trivial outputs were compared


def test_length_bucketing_is_a_deterministic_permutation():
    lengths = torch.randint(1, 100, (1000,))
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    a = bucket_by_length(order, lengths, 16, seed=0, epoch=3)
    assert torch.equal(a, bucket_by_length(order, lengths, 16, seed=0, epoch=3))
    assert sorted(a.tolist()) == list(range(1000))
    batches = a[:992].view(-1, 16)
    spread = (lengths[batches].max(1).values - lengths[batches].min(1).values).float().mean()
    assert spread < 10  # a random batch of 16 spans ~80


@pytest.fixture(scope="module")
def bible():
    from e2e.data.bible import read_bible

    return read_bible()


def test_bible_split_by_book_has_no_shared_verse(bible):
    from e2e.data.bible import split_by_book
    from e2e.tasks.text.task import TextData

    d = TextData()
    assert len(bible) > 31_000
    train, val, test = split_by_book(bible, list(d.val_books), list(d.test_books))
    refs = [{(v.book, v.chapter, v.verse) for v in part} for part in (train, val, test)]
    assert not refs[0] & refs[2] and not refs[0] & refs[1] and not refs[1] & refs[2]
    assert {v.book for v in test} == set(d.test_books)
    assert not {v.book for v in train} & set(d.test_books)
    assert len(test) > 900 and len(train) + len(val) + len(test) == len(bible)
    texts = [t for v in bible for t in (v.source, v.target)]
    assert not any("¶" in t or "<" in t or "  " in t for t in texts)
    gen = next(v for v in bible if (v.book, v.chapter, v.verse) == ("Gen", 1, 1))
    assert gen.target.startswith("En el principio")  # the chapter's drop cap undone


def test_tsv_bad_input_is_reported_by_line(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"a\tb\n\nc\td\n")
    assert read_pairs_tsv(path) == [("a", "b"), ("c", "d")]  # blank lines skipped
    path.write_bytes(b"a\tb\nc d\n")
    with pytest.raises(E2EError, match="line 2: expected 2 tab-separated columns"):
        read_pairs_tsv(path)
    path.write_bytes(b"a\tb\nc\td\te\n")
    with pytest.raises(E2EError, match="line 2: expected 2 .* found 3"):
        read_pairs_tsv(path)
    path.write_bytes(b"a\tb\nx\tcaf\xe9\n")
    with pytest.raises(E2EError, match="line 2: invalid UTF-8"):
        read_pairs_tsv(path)
    path.write_bytes(b"a\t\n")
    with pytest.raises(E2EError, match="line 1: the target column is empty"):
        read_pairs_tsv(path)


def test_missing_corpora_print_the_install_command(monkeypatch, tmp_path):
    from e2e.tasks import default_config
    from e2e.tasks.text.task import TextTask

    monkeypatch.setenv("E2E_SWORD", str(tmp_path / "nowhere"))
    cfg = default_config("text")
    with pytest.raises(DatasetMissing, match="apt-get install -y sword-text-kjv sword-text-sparv"):
        TextTask().build_data(cfg)
    monkeypatch.setenv("E2E_APT_LISTS", str(tmp_path))
    cfg.data.source = "debian-descriptions"
    with pytest.raises(DatasetMissing, match="Acquire::Languages=en update"):
        TextTask().build_data(cfg)
    cfg.data.source = str(tmp_path / "typo.tsv")
    with pytest.raises(E2EError, match="neither a known corpus"):
        TextTask().build_data(cfg)


def test_too_long_input_is_truncated_with_a_warning(copy_run):
    model = e2e.load(copy_run[0])
    long = " ".join(["cat"] * 200)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = model.predict([long, "dog"])
    assert any("limit" in str(w.message) for w in caught)
    assert out[1] == "dog" and isinstance(out[0], str)


def test_cli_translate_summarize_evaluate(copy_run, tmp_path, capsys):
    from e2e.cli import main

    run = str(copy_run[0])
    proc = subprocess.run([sys.executable, "-m", "e2e", "summarize", run], input=b"red\n\nblue\n",
                          capture_output=True, timeout=300)  # a real process reading stdin
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == ["red", "", "blue"]
    assert main(["translate", run, "sun moon", "dog cat fish"]) == 0
    assert capsys.readouterr().out.splitlines() == ["sun moon", "dog cat fish"]
    (tmp_path / "in.txt").write_text("tree star\n")
    assert main(["predict", run, str(tmp_path / "in.txt")]) == 0
    assert capsys.readouterr().out.strip() == "tree star"
    (tmp_path / "bad.txt").write_bytes(b"ok\n\xff\n")
    assert main(["predict", run, str(tmp_path / "bad.txt")]) == 1
    assert "bad.txt, line 2: invalid UTF-8" in capsys.readouterr().err
    assert main(["evaluate", run]) == 0
    out = capsys.readouterr().out
    assert "test/bleu" in out and "signature: BLEU nrefs:1" in out

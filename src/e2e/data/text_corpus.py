"""The broad English -> Spanish corpus: every installed source, split by document, mixed by
sampling weights so that no domain drowns the others.

| corpus | reader | a document is | license |
| --- | --- | --- | --- |
| bible | e2e.data.bible | a book | public domain |
| messages | e2e.data.gettext_catalogs | a Debian package | the packages' (GPL, LGPL, ...) |
| descriptions | e2e.data.debian_descriptions (Spanish) | a package (name stem) | DDTP: GPL-2+ |
| wesnoth | e2e.data.wesnoth | a campaign (textdomain) | GPL-2+ |
| steel-sky | e2e.data.steel_sky (text only) | 128 consecutive lines of one part | freeware |
| docs | e2e.data.debian_docs | a manual's page | GPL-2+, CC-BY-SA-3.0 |
| tuxpaint | e2e.data.tuxpaint_sentences | a stamp folder | GPL-2+ |

Splits: the Bible and the messages keep the specialist recipes' held-out books and packages,
so the general translator is scored on the specialists' own test sets; every other corpus
holds out whole documents, drawn by a seeded shuffle until the held-out share reaches
`val_fraction` / `test_fraction` of its pairs (3% / 6%). One whole corpus (`data.unseen`,
tuxpaint by default: short everyday sentences unlike any other source) is never trained or
validated on: it is the unseen-domain test. A training pair whose English text is also a
held-out English text of any corpus is dropped ("out of memory" in two packages), so no test
text is seen in training.

Mix: corpus c, with n_c training pairs, gets the share n_c^alpha / sum_k n_k^alpha of the
training list (`data.mix_alpha`, 0.5 by default: temperature sampling; alpha 1 is plain
concatenation, 0 equal shares). The list is as long as all training pairs together; a corpus
below its share is repeated (whole passes over a shuffle, then a part), one above it is
subsampled.
"""

from __future__ import annotations

import random
import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median

from e2e.errors import DatasetMissing, E2EError

CORPORA = ("bible", "messages", "descriptions", "wesnoth", "steel-sky", "docs", "tuxpaint")
UNSEEN = "tuxpaint"


@dataclass(frozen=True)
class Pair:
    corpus: str  # which source: bible, wesnoth, ...
    document: str  # the unit a split keeps whole: a book, a package, a campaign, a page
    source: str  # English
    target: str  # Spanish


# ---- one reader per corpus: (pairs, counts of what was skipped) ----

def _bible() -> list[Pair]:
    from e2e.data.bible import read_bible

    return [Pair("bible", v.book, v.source, v.target) for v in read_bible()]


def _messages(counts: Counter) -> list[Pair]:
    from e2e.data.gettext_catalogs import read_messages

    return [Pair("messages", m.package, m.source, m.target)
            for m in read_messages(counts=counts)]


def _descriptions() -> list[Pair]:
    from e2e.data.debian_descriptions import stem, translated_pairs

    seen, out = set(), []
    for package, en, es in translated_pairs("es"):
        if (en, es) not in seen:  # a summary shared by siblings (foo, foo-doc)
            seen.add((en, es))
            out.append(Pair("descriptions", stem(package), en, es))
    return out


def _wesnoth(counts: Counter) -> list[Pair]:
    from e2e.data.wesnoth import read_wesnoth

    return [Pair("wesnoth", x.document, x.source, x.target) for x in read_wesnoth(counts=counts)]


EMPHASIS = re.compile(r"\b[^\W\d_]{2,}\b")


def unemphasize(text: str, names: frozenset[str] = frozenset()) -> str:
    """Beneath a Steel Sky writes stressed words in capitals ("Whatever gave you THAT
    idea?"); people don't: such words are lower-cased where the line has lower case too, but
    not `names` (words always in capitals: "LINC")."""
    if not re.search(r"[a-zá-ú]", text):
        return text
    return EMPHASIS.sub(lambda m: m[0].lower() if m[0].isupper() and m[0] not in names
                        else m[0], text)


def capital_names(english: list[str], spanish: list[str]) -> frozenset[str]:
    """Names: words in capitals on both sides (a name is not translated: "LINC"), never
    written otherwise."""
    en = {w for t in english for w in EMPHASIS.findall(t)}
    es = {w for t in spanish for w in EMPHASIS.findall(t)}
    lower = {w.lower() for w in en | es if not w.isupper()}
    return frozenset(w for w in en & es if w.isupper() and w.lower() not in lower)


def _steel_sky(counts: Counter) -> list[Pair]:
    from e2e.data.steel_sky import translations

    out, seen, lines = [], set(), translations()
    names = capital_names([en for _, en, _ in lines], [es for _, _, es in lines])
    for t, en, es in lines:
        if re.search(r"[\x00-\x1f\x7f-\x9f]", en + es):
            counts["odd characters"] += 1  # the game's own bracket glyphs in a few file names
            continue
        en, es = unemphasize(en.replace("`", "'"), names), unemphasize(es, names)  # `quoted'
        if en == es or (en, es) in seen:
            counts["same on both sides or duplicates"] += 1
            continue
        seen.add((en, es))
        out.append(Pair("steel-sky", f"part{t >> 12}-{(t & 0xFFF) // 128}", en, es))
    return out


def _docs(counts: Counter) -> list[Pair]:
    from e2e.data.debian_docs import read_docs

    return [Pair("docs", x.document, x.source, x.target) for x in read_docs(counts=counts)]


def _tuxpaint(counts: Counter) -> list[Pair]:
    from e2e.data.tuxpaint_sentences import read_tuxpaint

    return [Pair("tuxpaint", x.document, x.source, x.target)
            for x in read_tuxpaint(counts=counts)]


READERS: dict[str, Callable[[Counter], list[Pair]]] = {
    "bible": lambda counts: _bible(), "messages": _messages,
    "descriptions": lambda counts: _descriptions(), "wesnoth": _wesnoth,
    "steel-sky": _steel_sky, "docs": _docs, "tuxpaint": _tuxpaint}


def read_corpus(name: str, counts: Counter | None = None) -> list[Pair]:
    if name not in READERS:
        raise E2EError(f"unknown corpus '{name}'; the broad corpus has {', '.join(CORPORA)}")
    return READERS[name](Counter() if counts is None else counts)


# ---- splits ----

def split_documents(pairs: list[Pair], val_fraction: float, test_fraction: float, seed: int = 0
                    ) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """Whole documents held out: in a seeded shuffle of the documents, each goes to test while
    test is under `test_fraction` of the pairs (and the document would not take it past 1.5
    times that), then likewise to validation; the rest train."""
    sizes = Counter(p.document for p in pairs)
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    role: dict[str, str] = {}
    for name, fraction in (("test", test_fraction), ("val", val_fraction)):
        goal, got = fraction * len(pairs), 0
        for doc in order:
            if doc not in role and got < goal and got + sizes[doc] <= max(1.5 * goal, 1):
                role[doc] = name
                got += sizes[doc]
    parts: dict[str, list[Pair]] = {"train": [], "val": [], "test": []}
    for p in pairs:
        parts[role.get(p.document, "train")].append(p)
    return parts["train"], parts["val"], parts["test"]


@dataclass
class BroadSplits:
    train: dict[str, list[Pair]]  # corpus -> its training pairs (before the mix)
    val: dict[str, list[Pair]]
    test: dict[str, list[Pair]]
    unseen: str  # the corpus held out whole ("" if none)
    skipped: dict[str, Counter] = field(default_factory=dict)  # corpus -> what its reader dropped
    missing: dict[str, str] = field(default_factory=dict)  # corpus -> why it is not here


def broad_splits(val_books: tuple[str, ...] = (), test_books: tuple[str, ...] = (),
                 val_packages: tuple[str, ...] = (), test_packages: tuple[str, ...] = (),
                 val_fraction: float = 0.03, test_fraction: float = 0.06, seed: int = 0,
                 unseen: str = UNSEEN, corpora: tuple[str, ...] = CORPORA) -> BroadSplits:
    """Every corpus of `corpora` that is installed, split (see the module's docstring); a
    missing one is left out with its reason in `missing` (none at all: DatasetMissing)."""
    from e2e.data.bible import split_by_book
    from e2e.data.gettext_catalogs import Message, split_by_package

    if unseen and unseen not in corpora:
        raise E2EError(f"the unseen corpus '{unseen}' is not one of {', '.join(corpora)}")
    out = BroadSplits({}, {}, {}, unseen)
    for name in corpora:
        counts = Counter()
        try:
            pairs = read_corpus(name, counts)
        except DatasetMissing as e:
            out.missing[name] = f"{e} (install: {e.install})"
            continue
        out.skipped[name] = counts
        if name == unseen:
            out.train[name], out.val[name], out.test[name] = [], [], pairs
        elif name == "bible" and (val_books or test_books):
            books = [{v.book for v in part} for part in split_by_book(
                [_verse(p) for p in pairs], list(val_books), list(test_books))]
            out.train[name], out.val[name], out.test[name] = (
                [p for p in pairs if p.document in part] for part in books)
        elif name == "messages" and (val_packages or test_packages):
            by_text = {(p.source, p.target): p for p in pairs}
            parts = split_by_package([Message(p.document, p.source, p.target) for p in pairs],
                                     list(val_packages), list(test_packages))
            out.train[name], out.val[name], out.test[name] = (
                [by_text[m.source, m.target] for m in part] for part in parts)
        else:
            out.train[name], out.val[name], out.test[name] = split_documents(
                pairs, val_fraction, test_fraction, seed)
        if name == "descriptions":  # the messages' held-out packages, described
            from e2e.data.debian_descriptions import stem

            held = {stem(package) for package in (*val_packages, *test_packages)}
            out.train[name] = [p for p in out.train[name] if p.document not in held]
    if not out.train and not out.test:
        raise DatasetMissing("every corpus of the broad corpus", "; ".join(out.missing.values()))
    held_out = {p.source for part in (out.val, out.test) for pairs in part.values()
                for p in pairs}
    for name, pairs in out.train.items():
        kept = [p for p in pairs if p.source not in held_out]
        if len(kept) < len(pairs):
            out.skipped.setdefault(name, Counter())["training pairs held out elsewhere"] += (
                len(pairs) - len(kept))
        out.train[name] = kept
    return out


def _verse(p: Pair):
    from e2e.data.bible import Verse

    return Verse(p.document, 0, 0, p.source, p.target)


# ---- the mix ----

def sampling_shares(sizes: dict[str, int], alpha: float = 0.5) -> dict[str, float]:
    """corpus -> its share of the training list, proportional to n^alpha."""
    weights = {k: n ** alpha for k, n in sizes.items() if n > 0}
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}


def sample_mix(train: dict[str, list[Pair]], alpha: float = 0.5, seed: int = 0,
               size: int | None = None) -> list[Pair]:
    """A shuffled training list of `size` pairs (default: all training pairs together), each
    corpus drawing its share (`sampling_shares`): whole shuffled passes over its pairs, then
    the start of one more."""
    shares = sampling_shares({k: len(v) for k, v in train.items()}, alpha)
    size = sum(len(v) for v in train.values()) if size is None else size
    # largest remainders: the counts add up to `size` exactly
    want = {k: int(share * size) for k, share in shares.items()}
    for k in sorted(shares, key=lambda k: want[k] - shares[k] * size)[:size - sum(want.values())]:
        want[k] += 1
    rng, out = random.Random(seed), []
    for name in shares:
        left, pairs = want[name], train[name]
        while left > 0:
            order = list(range(len(pairs)))
            rng.shuffle(order)
            out += [pairs[i] for i in order[:left]]
            left -= len(pairs)
    rng.shuffle(out)
    return out


def mix_summary(splits: BroadSplits, mix: list[Pair], alpha: float) -> dict:
    """What the corpus is and how it was mixed, as plain data (a run's report and the benchmark
    keep it): per corpus its pairs, documents, median words, skipped pairs, the split sizes,
    its share of the training mix, how many pairs the mix drew and how many passes over its
    training pairs that is."""
    drawn = Counter(p.corpus for p in mix)
    shares = sampling_shares({k: len(v) for k, v in splits.train.items()}, alpha)
    corpora = {}
    for name in splits.test:
        pairs = splits.train[name] + splits.val[name] + splits.test[name]
        n_train = len(splits.train[name])
        corpora[name] = {
            "pairs": len(pairs), "documents": len({p.document for p in pairs}),
            "median_words": [median(len(p.source.split()) for p in pairs) if pairs else 0,
                             median(len(p.target.split()) for p in pairs) if pairs else 0],
            "skipped": sum(splits.skipped.get(name, Counter()).values()),
            "train": n_train, "val": len(splits.val[name]), "test": len(splits.test[name]),
            "share": shares.get(name, 0.0), "drawn": drawn[name],
            "passes": drawn[name] / max(n_train, 1)}
    return {"alpha": alpha, "unseen": splits.unseen, "mix_pairs": len(mix),
            "corpora": corpora, "missing": dict(splits.missing)}


def mix_table(summary: dict) -> list[str]:
    """`mix_summary` as a Markdown table."""
    rows = ["| corpus | pairs | documents | median words en/es | skipped | train | val | test "
            "| mix share | passes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, c in summary["corpora"].items():
        role = " (unseen)" if name == summary["unseen"] else ""
        en, es = c["median_words"]
        rows.append(
            f"| {name}{role} | {c['pairs']:,} | {c['documents']:,} | {en:g}/{es:g} | "
            f"{c['skipped']:,} | {c['train']:,} | {c['val']:,} | {c['test']:,} | "
            f"{100 * c['share']:.1f}% | {c['passes']:.2f} |")
    rows += [f"| (missing) {name} | {why} |" for name, why in summary["missing"].items()]
    return rows


def describe(splits: BroadSplits, mix: list[Pair], alpha: float) -> list[str]:
    """A Markdown table of the corpus: pairs, documents and median lengths per corpus, per
    split, and each one's share of the training mix."""
    return mix_table(mix_summary(splits, mix, alpha))


def fingerprint(pairs: list[Pair]) -> int:
    """A checksum of a list of pairs (the same corpus and split on two machines)."""
    crc = 0
    for p in pairs:
        crc = zlib.crc32(f"{p.corpus}\t{p.document}\t{p.source}\t{p.target}\n".encode(), crc)
    return crc


# ---- the text task's data sources ----

SOURCE = "broad"  # data.source naming the whole mix; each corpus can also be named alone


def is_corpus_source(source: str) -> bool:
    """Whether `data.source` names the broad corpus or some of its corpora ("wesnoth+docs")."""
    return source == SOURCE or all(s in CORPORA for s in source.split("+"))


def corpus_parts(d) -> list[tuple[str, list, list, list]]:
    """(corpus, train, val, test) lists of (English, Spanish) strings for `data.source` `d`
    (broad, or corpora joined by "+"): `corpus_mix` without its summary."""
    return corpus_mix(d)[0]


def corpus_mix(d) -> tuple[list[tuple[str, list, list, list]], dict]:
    """(corpus, train, val, test) lists of (English, Spanish) strings for `data.source` `d`
    (broad, or corpora joined by "+"), split by the data section's held-out books and
    packages and by document, and the `mix_summary` of what was drawn. The training mix
    (`sample_mix`, shuffled, shares by `data.mix_alpha`) rides on the first corpus, so
    `data.limit` takes a slice of the mix (the summary counts that slice); `broad` holds out
    `data.unseen` (tuxpaint) as a test part of its own."""
    broad = d.source == SOURCE
    names = CORPORA if broad else tuple(d.source.split("+"))
    alpha = d.mix_alpha
    splits = broad_splits(tuple(d.val_books), tuple(d.test_books), tuple(d.val_packages),
                          tuple(d.test_packages), seed=d.split_seed,
                          unseen=d.unseen if broad else "", corpora=names)
    mix = sample_mix(splits.train, alpha, seed=d.split_seed)[:d.limit or None]
    summary = mix_summary(splits, mix, alpha)
    print(f"text: the corpus and its training mix (alpha {alpha:g})\n"
          + "\n".join(mix_table(summary)))

    def strings(pairs: list[Pair]) -> list[tuple[str, str]]:
        return [(p.source, p.target) for p in pairs]
    present = list(splits.test)
    parts = [(name, strings(mix) if i == 0 else [], strings(splits.val[name]),
              strings(splits.test[name])) for i, name in enumerate(present)]
    return parts, summary

"""The real half of the training mix: game corpora split by speaker, one corpus kept unseen.

Training corpora (`data.real_train`, default Flight of the Amazon Queen + Warzone 2100) are
split by speaker: the corpus's largest speaker (the hero, most of its audio) always trains;
the other speakers, in a fixed shuffle, go to test until `real_test_fraction` of the clips
are there, then to validation until `real_val_fraction`, the rest to training. So no test or
validation voice is heard in training; a corpus of fewer than three speakers (ktuberling: one
voice) or not split by voice (steelsky: by part of the game; tuxpaint: by recording set) trains
whole. Unseen corpora (`data.real_unseen`, default Drascula) are test sets only, never trained
on. The Asterisk speaker is never in any of these.

Whole speakers of a training corpus may be held out as test sets of their own
(`data.real_holdout`, e.g. one Hedgewars pack): removed before the corpus is split, so no clip
of theirs trains. What trains can then be cut to a share of its hours (`data.real_fraction`,
the benchmark's data curve: prefixes of one fixed shuffle, so smaller sets are nested in larger
ones) and a corpus's clips repeated (`data.real_repeat`: the few real isolated words).
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

from e2e.data.audio import Utterance
from e2e.data.sources import data_home
from e2e.data.speech_real import CORPORA, NOT_BY_VOICE, extract, read_real
from e2e.errors import DatasetMissing, E2EError


def split_by_speaker(items: list[Utterance], val_fraction: float, test_fraction: float,
                     seed: int) -> tuple[list[Utterance], list[Utterance], list[Utterance]]:
    """(train, val, test) with disjoint speakers (see the module doc)."""
    counts = Counter(u.speaker for u in items)
    if len(counts) < 3:
        raise E2EError(f"{len(counts)} speaker(s): too few to hold speakers out for "
                       "validation and test")
    hero = counts.most_common(1)[0][0]
    others = sorted(s for s in counts if s != hero)
    random.Random(seed).shuffle(others)
    role: dict[str, str] = {hero: "train"}
    n_test = n_val = 0
    for s in others:
        if n_test < test_fraction * len(items):
            role[s], n_test = "test", n_test + counts[s]
        elif n_val < val_fraction * len(items):
            role[s], n_val = "val", n_val + counts[s]
        else:
            role[s] = "train"
    parts: dict[str, list[Utterance]] = {"train": [], "val": [], "test": []}
    for u in items:
        parts[role[u.speaker]].append(u)
    return parts["train"], parts["val"], parts["test"]


def _names(text: str, field: str) -> list[str]:
    names = [c.strip() for c in text.split(",") if c.strip()]
    bad = set(names) - set(CORPORA)
    if bad:
        raise E2EError(f"data.{field}: unknown corpus {sorted(bad)}; choose from "
                       f"{', '.join(CORPORA)}")
    return names


def _pairs(text: str, field: str, example: str) -> list[tuple[str, str]]:
    """`corpus:value,...` -> [(corpus, value)], each corpus a known one."""
    out = []
    for item in (c.strip() for c in text.split(",") if c.strip()):
        corpus, sep, value = item.partition(":")
        if not sep or not value.strip():
            raise E2EError(f"data.{field}: '{item}' is not corpus:value (e.g. {example})")
        out.append((_names(corpus, field)[0], value.strip()))
    return out


def holdouts(d: Any) -> list[tuple[str, str]]:
    """data.real_holdout as (corpus, speaker) pairs, each corpus one of data.real_train."""
    pairs = _pairs(d.real_holdout, "real_holdout", "hedgewars:british")
    train = _names(d.real_train, "real_train")
    for corpus, _ in pairs:
        if corpus not in train:
            raise E2EError(f"data.real_holdout holds out a speaker of '{corpus}', which is not "
                           f"in data.real_train ({d.real_train}); a whole corpus kept for test "
                           "goes in data.real_unseen")
    return pairs


def repeats(d: Any) -> dict[str, int]:
    """data.real_repeat as corpus -> times (a whole number >= 1)."""
    out = {}
    for corpus, value in _pairs(d.real_repeat, "real_repeat", "ktuberling:4"):
        if not value.isdigit() or int(value) < 1:
            raise E2EError(f"data.real_repeat: '{corpus}:{value}': the times must be a whole "
                           "number >= 1")
        out[corpus] = int(value)
    return out


def cap(items: list[Utterance], n: int, seed: int) -> list[Utterance]:
    """At most n items, a fixed random subset (evaluation time grows with each test clip)."""
    if len(items) <= n:
        return items
    return random.Random(seed).sample(items, n)


def shuffled(items: list[Utterance], seed: int) -> list[Utterance]:
    order = list(items)
    random.Random(seed).shuffle(order)
    return order


def first_of_shuffle(items: list[Utterance], n: int, seed: int) -> list[Utterance]:
    """The first n of one fixed shuffle: for any n < m, first_of_shuffle(items, n) is a
    prefix of first_of_shuffle(items, m), so training subsets are nested."""
    return shuffled(items, seed)[:n]


def seconds_of(u: Utterance) -> float:
    """A clip's length from its file header (no decoding)."""
    import soundfile as sf

    try:
        info = sf.info(str(u.path))
    except Exception as e:  # noqa: BLE001 - soundfile's errors vary by format
        raise E2EError(f"{u.path}: cannot read its length ({e}); extract the corpus again "
                       "with `e2e data speech-real`") from None
    return info.frames / info.samplerate


def first_hours(items: list[Utterance], fraction: float, seed: int) -> list[Utterance]:
    """The shortest prefix of first_of_shuffle's fixed shuffle that holds `fraction` of the
    items' audio: for fractions f < g, the clips of f are a prefix of the clips of g."""
    order = shuffled(items, seed)
    seconds = [seconds_of(u) for u in order]
    goal, total = fraction * sum(seconds), 0.0
    for k, s in enumerate(seconds):
        if total >= goal:
            return order[:k]
        total += s
    return order


def _split(d: Any) -> tuple[list[Utterance], list[Utterance], dict[str, list[Utterance]],
                            dict[str, Any]]:
    """The real corpora of `d` split (module doc), before real_n, real_fraction, repeats."""
    folder = data_home() / "speech-real" if d.real == "auto" else Path(d.real).expanduser()
    train_names, unseen = _names(d.real_train, "real_train"), _names(d.real_unseen,
                                                                     "real_unseen")
    if set(train_names) & set(unseen):
        raise E2EError(f"data.real_unseen ({d.real_unseen}) overlaps data.real_train "
                       f"({d.real_train}): an unseen corpus cannot be trained on")
    held = holdouts(d)
    extract(folder, tuple(train_names + unseen), d.skip_bad, quiet=True)  # cached after once
    train: list[Utterance] = []
    val: list[Utterance] = []
    tests: dict[str, list[Utterance]] = {}
    facts: dict[str, Any] = {"real_folder": str(folder), "speakers": {}}
    for name in train_names:
        items = read_real(folder, name)
        out = {s for c, s in held if c == name}
        speakers = sorted({u.speaker for u in items})
        if out - set(speakers):
            raise E2EError(f"data.real_holdout: {name} has no speaker "
                           f"{', '.join(sorted(out - set(speakers)))}; its speakers: "
                           f"{', '.join(speakers)}")
        for s in sorted(out):  # a whole voice never trained on: a test set of its own
            tests[f"{name}_{s}"] = cap([u for u in items if u.speaker == s], d.max_test,
                                       d.split_seed)
        items = [u for u in items if u.speaker not in out]
        if len({u.speaker for u in items}) < 3 or name in NOT_BY_VOICE:  # no voice to hold out
            train += items
            facts["speakers"][name] = {"train": sorted({u.speaker for u in items}), "val": [],
                                       "test": sorted(out)}
            continue
        tr, va, te = split_by_speaker(items, d.real_val_fraction, d.real_test_fraction,
                                      d.split_seed)
        train += tr
        val += cap(va, d.max_test // 2, d.split_seed)
        tests[f"{name}_heldout"] = cap(te, d.max_test, d.split_seed)
        facts["speakers"][name] = {k: sorted({u.speaker for u in v})
                                   for k, v in (("train", tr), ("val", va), ("test", te))}
        facts["speakers"][name]["test"] += sorted(out)
    for name in unseen:
        tests[name] = cap(read_real(folder, name), d.max_test, d.split_seed)
    facts["real_train_clips"] = len(train)
    return train, val, tests, facts


def real_splits(d: Any) -> tuple[list[Utterance], list[Utterance], dict[str, list[Utterance]],
                                 dict[str, Any]]:
    """(train, val, test sets by name, facts for info) from the real corpora of `d`."""
    train, val, tests, facts = _split(d)
    if d.real_n and d.real_fraction < 1:
        raise E2EError(f"data.real_n ({d.real_n}) and data.real_fraction ({d.real_fraction}) "
                       "both cut the real training clips: set one of them")
    if d.real_n:
        train = first_of_shuffle(train, d.real_n, d.split_seed)
    elif d.real_fraction < 1:
        train = first_hours(train, d.real_fraction, d.split_seed)
    times = repeats(d)
    if times:
        root = Path(facts["real_folder"])
        train = [u for u in train for _ in range(times.get(corpus_of(u, root), 1))]
    return train, val, tests, facts


def corpus_of(u: Utterance, root: Path) -> str:
    """The corpus of an extracted clip: its first folder under the real folder."""
    try:
        return u.path.relative_to(root).parts[0]
    except ValueError:
        return ""


def asterisk_tests(d: Any) -> dict[str, list[Utterance]]:
    """The Asterisk prompts' test sets when data.asterisk (a note when not installed)."""
    from e2e.data import asterisk

    if not d.asterisk:
        return {}
    try:
        return {f"asterisk_{s}": asterisk.asterisk_set(s) for s in asterisk.SETS}
    except DatasetMissing as e:
        print(f"note: no Asterisk test sets: {e}")
        return {}


def real_test_sets(d: Any) -> dict[str, list[Utterance]]:
    """Every real test set of the config's mix by name, the very clips the speech task tests
    on: held-out speakers and sources and unseen corpora (when data.real is set), and the
    Asterisk prompts (data.asterisk). Pocketsphinx is scored on these beside the network."""
    return {**(_split(d)[2] if d.real else {}), **asterisk_tests(d)}

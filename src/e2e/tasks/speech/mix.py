"""The real half of the training mix: game corpora split by speaker, one corpus kept unseen.

Training corpora (`data.real_train`, default Flight of the Amazon Queen + Warzone 2100) are
split by speaker: the corpus's largest speaker (the hero, most of its audio) always trains;
the other speakers, in a fixed shuffle, go to test until `real_test_fraction` of the clips
are there, then to validation until `real_val_fraction`, the rest to training. So no test or
validation voice is heard in training; a corpus of fewer than three speakers (ktuberling: one
voice) or not split by voice (steelsky: by part of the game) trains whole. Unseen corpora
(`data.real_unseen`, default Drascula) are test sets only, never trained on. The Asterisk
speaker is never in any of these.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

from e2e.data.audio import Utterance
from e2e.data.sources import data_home
from e2e.data.speech_real import CORPORA, NOT_BY_VOICE, extract, read_real
from e2e.errors import E2EError


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


def cap(items: list[Utterance], n: int, seed: int) -> list[Utterance]:
    """At most n items, a fixed random subset (evaluation time grows with each test clip)."""
    if len(items) <= n:
        return items
    return random.Random(seed).sample(items, n)


def first_of_shuffle(items: list[Utterance], n: int, seed: int) -> list[Utterance]:
    """The first n of one fixed shuffle: for any n < m, first_of_shuffle(items, n) is a
    prefix of first_of_shuffle(items, m), so training subsets are nested."""
    order = list(items)
    random.Random(seed).shuffle(order)
    return order[:n]


def real_splits(d: Any) -> tuple[list[Utterance], list[Utterance], dict[str, list[Utterance]],
                                 dict[str, Any]]:
    """(train, val, test sets by name, facts for info) from the real corpora of `d`."""
    folder = data_home() / "speech-real" if d.real == "auto" else Path(d.real).expanduser()
    train_names, unseen = _names(d.real_train, "real_train"), _names(d.real_unseen,
                                                                     "real_unseen")
    if set(train_names) & set(unseen):
        raise E2EError(f"data.real_unseen ({d.real_unseen}) overlaps data.real_train "
                       f"({d.real_train}): an unseen corpus cannot be trained on")
    extract(folder, tuple(train_names + unseen), d.skip_bad, quiet=True)  # cached after once
    train: list[Utterance] = []
    val: list[Utterance] = []
    tests: dict[str, list[Utterance]] = {}
    facts: dict[str, Any] = {"real_folder": str(folder), "speakers": {}}
    for name in train_names:
        items = read_real(folder, name)
        if len({u.speaker for u in items}) < 3 or name in NOT_BY_VOICE:  # no voice to hold out
            train += items
            facts["speakers"][name] = {"train": sorted({u.speaker for u in items}), "val": [],
                                       "test": []}
            continue
        tr, va, te = split_by_speaker(items, d.real_val_fraction, d.real_test_fraction,
                                      d.split_seed)
        train += tr
        val += cap(va, d.max_test // 2, d.split_seed)
        tests[f"{name}_heldout"] = cap(te, d.max_test, d.split_seed)
        facts["speakers"][name] = {k: sorted({u.speaker for u in v})
                                   for k, v in (("train", tr), ("val", va), ("test", te))}
    for name in unseen:
        tests[name] = cap(read_real(folder, name), d.max_test, d.split_seed)
    facts["real_train_clips"] = len(train)
    if d.real_n:
        train = first_of_shuffle(train, d.real_n, d.split_seed)
    return train, val, tests, facts

"""The broad speech recipe and its data curve: every real corpus in the mix, split by speaker
or pack, a whole voice held out, unseen corpora never trained on, nested shares of the real
hours, repeated isolated words, the task's test clips = the clips pocketsphinx is scored on,
and bench/speech.py's curve (its config, fit and extrapolation).

The corpora here are small manifests of real WAV files written into tmp_path in the layout
`e2e data speech-real` writes (so nothing is extracted); the recipe is the shipped one."""

from __future__ import annotations

import importlib.util
import math
import shutil
import subprocess
import sys
from argparse import Namespace
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from e2e.config import _leaves, merge, with_overrides
from e2e.data.audio import SAMPLE_RATE, Utterance, write_manifest, write_wav
from e2e.errors import E2EError
from e2e.tasks import load_config
from e2e.tasks.speech.mix import (
    corpus_of,
    holdouts,
    real_splits,
    real_test_sets,
    repeats,
    seconds_of,
)
from e2e.tasks.speech.synth import GRAMMAR_WORDS, make_text, parse_kinds

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu").split()
# corpus -> [(speaker, clips)], shaped like the extracted corpora (hero first where one is)
LAYOUT = {
    "queen": [("joe", 30)] + [(s, 5) for s in ("ann", "bob", "cid", "dan", "eve", "fay",
                                               "gus", "hal")],
    "warzone": [(s, 6) for s in ("tutorial", "console", "extra", "research", "power")],
    "steelsky": [(s, 4) for s in ("section", "sectiona", "sectionb")],
    "hedgewars": [(p, 4) for p in ("british", "classic", "default", "hillbilly", "mobster",
                                   "pirate", "robot", "russian", "singer", "surfer")],
    "ktuberling": [("en", 5)],
    "tuxpaint": [("en", 2), ("en_gb", 6), ("desc", 4)],
    "drascula": [(s, 4) for s in ("hacker", "igor", "drascula")],
}


def text(i: int) -> str:
    return f"{WORDS[i % 26]} {WORDS[i // 26 % 26]}"  # a different transcript per clip


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    """A real-speech folder with every corpus the broad recipe names, clip lengths varied."""
    root = tmp_path_factory.mktemp("speech-real")
    rng = np.random.default_rng(0)
    for corpus, speakers in LAYOUT.items():
        items, i = [], 0
        for speaker, n in speakers:
            (root / corpus / speaker).mkdir(parents=True, exist_ok=True)
            for _ in range(n):
                path = root / corpus / speaker / f"c{i:03d}.wav"
                seconds = 0.2 + 0.1 * (i % 7)
                write_wav(path, 0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE)))
                items.append(Utterance(path, text(i), speaker))
                i += 1
        write_manifest(root / f"{corpus}.tsv", items)
    return root


def broad(real: Path, *more: str):
    return load_config("broad", "speech", [f"data.real={real}", "data.asterisk=false", *more])


def keys(items: list[Utterance], root: Path) -> set[tuple[str, str]]:
    """(corpus, speaker) of each clip."""
    return {(corpus_of(u, root), u.speaker) for u in items}


# ---- the recipe ----

def test_the_broad_recipe_loads_and_names_every_installable_english_voice():
    cfg = load_config("broad", "speech")
    d = cfg.data
    assert set(d.real_train.split(",")) == {"queen", "warzone", "steelsky", "hedgewars",
                                            "ktuberling", "tuxpaint"}
    never = {"drascula", "asterisk"}
    assert not never & set(d.real_train.split(",")) and d.real_unseen == "drascula"
    assert holdouts(d) == [("hedgewars", "british")]
    assert repeats(d) == {"tuxpaint": 4, "ktuberling": 4}
    assert "words" in parse_kinds(d.kinds) and d.asterisk
    default = load_config(None, "speech")
    assert cfg.model == default.model and cfg.train == default.train  # the same network
    with pytest.raises(E2EError, match="real_fraction"):
        load_config("broad", "speech", ["data.real_fraction=0"])


@pytest.mark.parametrize("field,value,match", [
    ("real_holdout", "drascula:igor", "not in data.real_train"),
    ("real_holdout", "hedgewars", "not corpus:value"),
    ("real_holdout", "hedgehogs:british", "unknown corpus"),
    ("real_repeat", "tuxpaint:0", "whole number >= 1"),
    ("real_repeat", "tuxpaint:two", "whole number >= 1"),
])
def test_bad_holdouts_and_repeats_are_named(real, field, value, match):
    with pytest.raises(E2EError, match=match):
        real_splits(broad(real, f"data.{field}={value}").data)


def test_a_held_out_speaker_that_is_not_there_lists_the_speakers(real):
    with pytest.raises(E2EError, match="hedgewars has no speaker welsh; its speakers: british"):
        real_splits(broad(real, "data.real_holdout=hedgewars:welsh").data)


# ---- the splits ----

def test_splits_are_disjoint_by_speaker_and_pack_and_unseen_voices_never_train(real):
    d = broad(real).data
    train, val, tests, facts = real_splits(d)
    tr, va = keys(train, real), keys(val, real)
    te = set().union(*(keys(v, real) for v in tests.values()))
    assert tr and va and te
    assert not tr & va and not tr & te and not va & te
    # the held-out pack: every clip of it, in its own test set, none in training
    assert keys(tests["hedgewars_british"], real) == {("hedgewars", "british")}
    assert len(tests["hedgewars_british"]) == 4
    assert tests["drascula"] and {corpus_of(u, real) for u in tests["drascula"]} == {"drascula"}
    trained = {u.path for u in train + val}
    for name, items in tests.items():
        assert not trained & {u.path for u in items}, name
    assert "drascula" not in {c for c, _ in tr | va}
    # corpora whose speakers are not known voices train whole; split ones hold voices out
    assert {("tuxpaint", s) for s in ("en", "en_gb", "desc")} <= tr
    assert ("ktuberling", "en") in tr and ("steelsky", "sectiona") in tr
    assert {"queen_heldout", "hedgewars_heldout"} <= set(tests) and "tuxpaint_heldout" not in tests
    assert ("queen", "joe") in tr  # the hero always trains
    assert "british" in facts["speakers"]["hedgewars"]["test"]


def test_isolated_words_are_repeated_and_nothing_else(real):
    d = broad(real).data
    with_repeats = Counter(corpus_of(u, real) for u in real_splits(d)[0])
    plain = Counter(corpus_of(u, real) for u in real_splits(
        with_overrides(broad(real), "data.real_repeat=").data)[0])
    assert with_repeats["tuxpaint"] == 4 * plain["tuxpaint"] == 4 * 12
    assert with_repeats["ktuberling"] == 4 * plain["ktuberling"] == 4 * 5
    assert with_repeats["queen"] == plain["queen"] and with_repeats["hedgewars"] == plain[
        "hedgewars"]


# ---- the data curve's subsets ----

def unique(items: list[Utterance]) -> list[Path]:
    return list(dict.fromkeys(u.path for u in items))  # repeats are consecutive copies


def test_shares_of_the_real_hours_are_nested_deterministic_and_hold_their_share(real):
    runs = {f: real_splits(broad(real, f"data.real_fraction={f}").data) for f in (0.25, 0.5, 1.0)}
    again = real_splits(broad(real, "data.real_fraction=0.25").data)
    assert again[0] == runs[0.25][0]  # deterministic
    quarter, half, whole = (unique(runs[f][0]) for f in (0.25, 0.5, 1.0))
    assert half[:len(quarter)] == quarter and set(half) <= set(whole)  # nested prefixes
    assert len(quarter) < len(half) < len(whole)
    seconds = {p: seconds_of(Utterance(p, "x")) for p in whole}
    total = sum(seconds.values())
    for f, clips in ((0.25, quarter), (0.5, half)):
        held = sum(seconds[p] for p in clips)
        assert held >= f * total > held - seconds[clips[-1]]  # the shortest such prefix
    for f in (0.25, 0.5):  # validation and test never change with the share
        assert runs[f][1] == runs[1.0][1] and runs[f][2] == runs[1.0][2]
    unseen = {u.path for u in runs[1.0][2]["hedgewars_british"] + runs[1.0][2]["drascula"]}
    assert all(not unseen & set(unique(runs[f][0])) for f in runs)
    with pytest.raises(E2EError, match="set one of them"):
        real_splits(broad(real, "data.real_fraction=0.5", "data.real_n=10").data)


# ---- the task tests on the clips pocketsphinx is scored on ----

def test_the_tasks_test_clips_are_real_test_sets(real, tmp_path):
    from e2e.tasks.speech.task import SpeechTask

    own = []
    for i in range(20):  # the PATH source beside the real corpora (synth needs espeak-ng)
        write_wav(tmp_path / f"o{i}.wav", np.zeros(3200, np.float32))
        own.append(Utterance(tmp_path / f"o{i}.wav", text(100 + i)))
    write_manifest(tmp_path / "own.tsv", own)
    cfg = broad(real, f"data.source={tmp_path / 'own.tsv'}", "data.real_repeat=",
                "model.dim=32", "model.heads=2", "model.layers=2")
    splits = SpeechTask().build_data(cfg)
    sets = real_test_sets(cfg.data)
    assert set(sets) <= set(splits.info.test_sets)
    for name, items in sets.items():
        got = [t for g, t in zip(splits.test.groups, splits.test.texts) if g == name]
        assert got == [u.text for u in items], name
    train = real_splits(cfg.data)[0]
    hours = sum(seconds_of(u) for u in train) / 3600
    assert splits.info.real["real_train_hours"] == pytest.approx(hours, abs=1e-4)


# ---- synthetic isolated words ----

def test_synthetic_words_are_one_word_of_each_kind():
    import random

    rng = random.Random(0)
    said = [make_text("words", rng) for _ in range(300)]
    assert all(len(t.split()) == 1 for _, t in said)
    letters = [(s, t) for s, t in said if len(t) == 1]
    assert letters and all(s == t.upper() + "." for s, t in letters)  # says the letter's name
    assert any(t in GRAMMAR_WORDS for _, t in said) and any(t == "seven" for _, t in said)
    with pytest.raises(E2EError, match="words"):
        parse_kinds("digits,phrases")


# ---- bench/speech.py's curve ----

def bench():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_speech", ROOT / "bench" / "speech.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fit_and_the_hours_each_target_needs():
    b = bench()
    hours = [1.5, 3.0, 6.0]
    values = [0.6 - 0.1 * math.log10(h) for h in hours]
    a, slope = b.fit_log(hours, values)
    assert (a, slope) == (pytest.approx(0.6), pytest.approx(-0.1))
    assert b.hours_needed(a, slope, 0.35) == pytest.approx(10 ** 2.5)
    assert b.hours_needed(0.5, 0.01, 0.35) is None  # rising: no amount of data reaches it
    with pytest.raises(ValueError, match="two or more"):
        b.fit_log([2.0, 2.0], [0.5, 0.4])
    points = [{"fraction": f, "minutes": 15.0, "hours": h, "train_hours": h + 0.5,
               "steps": 100, "command": f"bench/speech.py --set data.real_fraction={f}",
               "test_sets": ["queen_heldout", "drascula", "synth_digits"],
               "results": {"test/queen_heldout_cer": v, "test/queen_heldout_wer": 1.0,
                           "test/drascula_cer": 0.6 + 0.01 * i, "test/drascula_wer": 1.0}}
              for i, (f, h, v) in enumerate(zip((0.25, 0.5, 1.0), hours, values))]
    text = b.curve_section(Namespace(config="broad", nproc=2, threads=1), points)
    assert "| Amazon Queen, held-out speakers | CER |" in text and "316 h" in text
    assert "never: the error does not fall" in text  # Drascula's CER rises here
    assert "15 minutes of 2 process(es)" in text and "synth_digits" not in text
    assert "data.real_fraction=0.25" in text


def test_the_table_puts_pocketsphinx_beside_the_network_on_the_same_sets():
    b = bench()
    r = {"test/drascula_wer": 1.0, "test/drascula_cer": 0.62, "test/hedgewars_british_wer": 0.9,
         "test/hedgewars_british_cer": 0.5, "test/synth_digits_wer": 0.3,
         "test/synth_digits_cer": 0.1}
    ps = {"drascula": {"wer": 0.714, "cer": 0.478}, "hedgewars_british": {"wer": 2.0,
                                                                          "cer": 1.5}}
    rows = b.table(r, ["synth_digits", "hedgewars_british", "drascula"], ps)
    assert "WER pocketsphinx | CER pocketsphinx" in rows[0]
    drascula = next(x for x in rows if x.startswith("| Drascula"))
    assert drascula.endswith("| 71.4% | 47.8% |") and "62.0%" in drascula
    assert any(x.startswith("| hedgewars: the british voice, held out whole") for x in rows)
    assert rows[-1].startswith("| held-out synthetic voices, digit strings") and \
        rows[-1].endswith("| - | - |")


def test_the_curve_varies_only_its_declared_key():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "speech.py"), "--only", "curve",
                           "--config", "broad", "--print-config"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sys.path.insert(0, str(ROOT / "bench"))
    import budget

    allowed = set(budget.allowed("speech")) | set(budget.CURVES["speech"])
    recipe = load_config("broad", "speech")

    def flat(cfg) -> dict:
        return {key: getattr(obj, f.name) for key, obj, f in _leaves(cfg)}
    shares = []
    for doc in yaml.safe_load_all(proc.stdout):
        ran = flat(merge(load_config("broad", "speech"), doc, source="--print-config"))
        changed = {k for k, v in flat(recipe).items() if ran[k] != v}
        assert changed <= allowed, changed
        shares.append(ran["data.real_fraction"])
    assert shares == [0.25, 0.5, 1.0]
    with pytest.raises(SystemExit, match="curve experiment"):
        budget.curve_check("speech", ["model.layers=6"])


def test_curve_points_run_each_share_once_and_record_its_command(tmp_path, monkeypatch):
    from types import SimpleNamespace

    b = bench()
    calls = []

    def fake_train(args, overrides, minutes, out):
        calls.append((overrides, minutes))
        share = float(overrides[-1].split("=")[1]) if "fraction" in overrides[-1] else 1.0
        return {"steps": 10, "test/queen_heldout_cer": 0.6 - 0.1 * share}, 2.0, 60.0

    def fake_load(out):
        share = float(out.name.rsplit("-", 1)[1])
        return SimpleNamespace(info=SimpleNamespace(real={"real_train_hours": 6 * share},
                                                    train_hours=6 * share + 0.4,
                                                    test_sets=["queen_heldout"]))
    monkeypatch.setattr(b, "train_run", fake_train)
    monkeypatch.setattr(b.e2e, "load", fake_load)
    args = Namespace(config="broad", runs=tmp_path, fresh=False, curve_minutes=15.0,
                     minutes=60.0, fractions=[0.25, 0.5, 1.0], nproc=2, threads=1,
                     set=["train.seed=1"])
    points = b.curve_points(args, ["data.real=R", "train.seed=1"])
    assert [c[0][2:] for c in calls] == [["data.real_fraction=0.25"],
                                         ["data.real_fraction=0.5"], []]
    assert {c[1] for c in calls} == {15.0}
    assert [p["hours"] for p in points] == [1.5, 3.0, 6.0]
    assert points[0]["command"].endswith(
        "bench/speech.py --config broad --nproc 2 --minutes 15 --no-write --set train.seed=1 "
        "--set data.real_fraction=0.25") and "flock" in points[0]["command"]
    assert b.curve_points(args, ["data.real=R", "train.seed=1"]) == points and len(calls) == 3
    args.curve_minutes = 30.0  # another budget: every point again
    b.curve_points(args, ["data.real=R", "train.seed=1"])
    assert len(calls) == 6


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng not installed (bash setup.sh installs it)")
def test_the_broad_recipe_trains_through_the_engine_on_tiny_data(real, tmp_path):
    """A few steps of the recipe itself (its corpora, holdout, repeats, the words kind) on the
    tiny real folder, with a half share of the real hours and intermediate CTC on."""
    import e2e

    results = e2e.train("speech", config="broad", out=tmp_path / "run", quiet=True, overrides=[
        f"data.real={real}", f"data.corpus={tmp_path / 'corpus'}", "data.n=24", "data.n_val=4",
        "data.n_test=4", "data.flite=0", "data.asterisk=false", "data.real_fraction=0.5",
        "model.dim=32", "model.heads=2", "model.layers=2", "model.inter_ctc=0.3",
        "model.beam_size=2", "train.max_steps=4", "train.batch_size=8", "train.eval_every=4"])
    for name in ("hedgewars_british", "drascula", "queen_heldout", "synth_words"):
        assert 0 <= results[f"test/{name}_cer"], name
    info = e2e.load(tmp_path / "run").info
    assert 0 < info.real["real_train_hours"] < 0.5 * sum(
        seconds_of(u) for u in real_splits(broad(real, "data.real_repeat=").data)[0]) / 3600 + 1e-3
    assert "hedgewars_british" in info.test_sets and "synth_words" in info.test_sets


def test_the_bench_scores_pocketsphinx_on_every_real_test_set_of_the_recipe(real, tmp_path,
                                                                             monkeypatch):
    from e2e.stepwise import pocketsphinx

    b = bench()
    seen = {}

    def fake(items, cache):
        seen[tuple(u.path for u in items)] = cache
        return {"wer": 0.5, "cer": 0.25, "rtf": 0.4, "clips": len(items),
                "audio_seconds": 10.0, "reused": 0}
    monkeypatch.setattr(pocketsphinx, "evaluate", fake)
    monkeypatch.setattr(pocketsphinx, "installed", lambda: True)
    d = broad(real).data
    rows, note = b.pocketsphinx_rows(d, tmp_path / "ps.jsonl", workers=2)
    sets = real_test_sets(d)
    assert list(rows) == list(sets) and "hedgewars_british" in rows and "drascula" in rows
    assert set(seen) == {tuple(u.path for u in v) for v in sets.values()}  # the same clips
    assert set(seen.values()) == {tmp_path / "ps.jsonl"} and "real-time factor 0.40" in note
    monkeypatch.setattr(pocketsphinx, "installed", lambda: False)
    assert b.pocketsphinx_rows(d, tmp_path / "ps.jsonl") == (
        {}, f"pocketsphinx not installed ({pocketsphinx.INSTALL})")

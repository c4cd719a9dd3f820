"""Issue 14 item 1: every number in a run's report.md agrees with its results.json, for speech,
text and driving (vision: tests/test_hardening.py::test_report_agrees_with_results).

Each application trains one tiny run through `e2e.train`. Two checks per run: the results
table (`| key | value |`) holds exactly results.json's summary numbers, to the 4 places it
prints; and the application's own table (transcripts per test set, translated examples,
test drives per track) gives back the numbers results.json holds for it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

import e2e
from e2e.engine.results import is_detail

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- reading a report ---------------------------------------------------------------------

def rows_after(report: str, header: str) -> list[list[str]]:
    """The cells of each row of the markdown table whose header line is `header` (escaped
    pipes kept as `|`); the table ends at the first line that is not a row."""
    lines = report.splitlines()
    assert header in lines, f"no table '{header}' in report.md:\n{report}"
    rows = []
    for line in lines[lines.index(header) + 2:]:  # past the header and the --- line
        if not (line.startswith("| ") and line.endswith(" |")):
            break
        cells = line[2:-2].replace("\\|", "\0").split(" | ")
        rows.append([c.replace("\0", "|") for c in cells])
    return rows


def printed(value) -> str:
    """A results.json value as the report is meant to print it."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def check_results_table(run: Path) -> tuple[dict, str]:
    """The results table is results.json's summary, key for key, number for number."""
    results = json.loads((run / "results.json").read_text())
    report = (run / "report.md").read_text()
    table = dict(rows_after(report, "| result | value |"))
    summary = {k: v for k, v in results.items() if not is_detail(k)}
    assert set(table) == set(summary), (set(table) ^ set(summary))
    for key, value in summary.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert float(table[key]) == pytest.approx(value, abs=5e-5), key
        else:
            assert table[key] == printed(value), key
    assert any(k.startswith("test/") for k in table), table
    return results, report


# ---- speech: a tiny espeak-ng corpus, two test sets of three clips ------------------------

N_TEST = 3  # per kind: the report shows up to 5 clips of each test set, so it shows them all


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (bash setup.sh installs it)")
    root = tmp_path_factory.mktemp("report-speech")
    e2e.train("speech", out=root / "run", quiet=True, overrides=[
        f"data.corpus={root / 'corpus'}", "data.n=16", "data.n_val=2", f"data.n_test={N_TEST}",
        "data.kinds=digits,letters", "data.asterisk=false", "data.augment.enabled=false",
        "data.real=", "data.flite=0", "model.subsample=2",
        "model.dim=64", "model.layers=2", "model.filters=40", "model.beam_size=2",
        "model.dropout=0.1",  # (default 0) so that a report made in training mode differs
        # enough steps for CTC to leave its all-blank phase: transcripts with letters in them
        "train.max_steps=200", "train.batch_size=8", "train.eval_every=100", "train.lr=3e-3",
        "train.device=cpu"])
    return root / "run"


@pytest.mark.slow
def test_speech_report_agrees_with_results(speech_run):
    import jiwer

    results, report = check_results_table(speech_run)
    rows = rows_after(report, "| set | reference | hypothesis |")
    sets: dict[str, list[tuple[str, str]]] = {}
    for name, ref, hyp in rows:
        sets.setdefault(name, []).append((ref, hyp))
    assert len(sets) == 2 and all(len(v) == N_TEST for v in sets.values()), sets
    assert any(hyp for _, _, hyp in rows), rows  # not all blank: the comparison can fail
    # the transcripts shown are every test clip, so they give back each set's WER and CER
    for name, pairs in sets.items():  # per-set numbers sit in the results table
        refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
        assert jiwer.wer(refs, hyps) == pytest.approx(results[f"test/{name}_wer"]), name
        assert jiwer.cer(refs, hyps) == pytest.approx(results[f"test/{name}_cer"]), name
    refs, hyps = [r for _, r, _ in rows], [h for _, _, h in rows]  # all sets together
    assert jiwer.wer(refs, hyps) == pytest.approx(results["test/wer"])
    assert jiwer.cer(refs, hyps) == pytest.approx(results["test/cer"])


# ---- text: a copy task whose test split is the 8 examples the report shows ----------------

WORDS = "red green blue cat dog sun moon tree star fish".split()


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    import random

    root = tmp_path_factory.mktemp("report-text")
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5))) for _ in range(400)]
    (root / "copy.tsv").write_text("".join(f"{s}\t{s}\n" for s in lines))
    # dropout stays at its default (0.1), so a report decoded in training mode would differ
    e2e.train("text", data=str(root / "copy.tsv"), out=root / "run", quiet=True, overrides=[
        "data.vocab_size=300", "data.val_fraction=0.02", "data.test_fraction=0.02",
        "data.val_decode=8", "model.d_model=32", "model.ff=64", "model.heads=2",
        "model.encoder_layers=1", "model.decoder_layers=1",
        "model.max_len=24", "data.max_source_tokens=24",
        "data.max_target_tokens=24", "model.beam=2", "model.copy=true", "train.max_steps=70",
        "train.batch_size=32", "train.lr=3e-3", "train.precision=fp32", "train.device=cpu"])
    return root / "run"


def test_text_report_agrees_with_results(text_run):
    from e2e.tasks.text import metrics

    results, report = check_results_table(text_run)
    assert "BLEU signature: `BLEU" in report
    rows = rows_after(report, "| source | reference | output |")
    assert len(rows) == 8, rows  # 2% of 400 pairs: the whole test split
    # the examples are the test split decoded as test/* decoded it (same beam): same scores
    scores = metrics.score([out for _, _, out in rows], [ref for _, ref, _ in rows])
    for name in ("bleu", "chrf", "rougeL"):
        assert scores[name] == pytest.approx(results[f"test/{name}"], abs=1e-6), name


# ---- driving: two short recorded episodes, two short test drives -------------------------

TEST_SEEDS = [1000, 1001]


@pytest.fixture(scope="module")
def driving_run(tmp_path_factory) -> Path:
    pytest.importorskip("gymnasium")
    root = tmp_path_factory.mktemp("report-driving")
    run_cli("data", "driving", "--out", str(root / "rec"), "--seeds", "0-1", "--max-steps",
            "120")
    e2e.train("driving", data=str(root / "rec"), out=root / "run", quiet=True, overrides=[
        "train.epochs=1", "train.batch_size=32", "train.device=cpu", "data.max_steps=100",
        "data.val_seeds=500", f"data.test_seeds={TEST_SEEDS[0]}-{TEST_SEEDS[-1]}",
        "data.workers=1", "data.dagger_rounds=0", "model.widths=[8,16,16]", "model.kernels=[5,5,3]",
        "model.strides=[2,2,1]", "model.hidden=[16]"])
    return root / "run"


@pytest.mark.slow
def test_driving_report_agrees_with_results(driving_run):
    results, report = check_results_table(driving_run)
    rows = rows_after(report, "| track seed | score | tiles | lap | off-track steps |")
    assert [int(r[0]) for r in rows] == TEST_SEEDS, rows
    scores, fractions, laps = [], [], []
    for seed, score, tiles, lap, offtrack in rows:
        # each drive's score is results.json's per-track score, to the 1 place printed
        assert float(score) == pytest.approx(results[f"test/track_score/{seed}"], abs=0.051)
        got, of = (int(t) for t in tiles.split("/"))
        assert 0 <= got <= of and lap in ("yes", "no") and int(offtrack) >= 0
        scores.append(results[f"test/track_score/{seed}"])
        fractions.append(got / of)
        laps.append(lap == "yes")
    assert sum(scores) / len(scores) == pytest.approx(results["test/score"])
    assert min(scores) == pytest.approx(results["test/score_min"])
    assert sum(fractions) / len(fractions) == pytest.approx(results["test/tiles"], abs=1e-6)
    assert sum(laps) / len(laps) == pytest.approx(results["test/laps"])
    # off-track steps are a fraction of each drive's length in results.json: zero if and only if
    assert (results["test/offtrack"] > 0) == any(int(r[4]) > 0 for r in rows)

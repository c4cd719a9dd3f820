"""Progress users can read in a log file (elapsed, ETA) and metrics TensorBoard can show."""

import io
import sys
import time

import pytest
from conftest import blobs_config

from e2e.engine import fit
from e2e.engine.progress import Progress, Ticker, duration, read_metrics, track
from e2e.errors import E2EError


def test_durations_read_as_clock_times():
    assert [duration(s) for s in (0, 5.4, 65, 3600 + 62)] == ["0:00", "0:05", "1:05", "1:01:02"]


def test_plain_training_lines_carry_elapsed_and_eta():
    stream = io.StringIO()  # not a terminal: plain lines, as in `e2e train ... > log.txt`
    progress = Progress(total_steps=4, start_step=0, log_every=2, stream=stream)
    for step in range(1, 5):
        time.sleep(0.01)
        progress.step(step, loss=1.0 / step)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("step 2/4 loss 0.5")
    assert "elapsed 0:00, ETA 0:00" in lines[0] and "elapsed" in lines[1]


def test_ticker_reports_count_elapsed_and_eta_after_its_delay():
    stream = io.StringIO()
    with Ticker(total=4, desc="rendering", unit="utt", interval=0, stream=stream) as ticker:
        for i in range(4):
            ticker.update(note=f"voice {i}")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "rendering: 1/4 utt (25%), elapsed 0:00, ETA 0:00; voice 0"
    assert lines[-1].startswith("rendering: 4/4 utt (100%)") and len(lines) == 4

    quiet = io.StringIO()  # a step shorter than the delay prints nothing
    with Ticker(total=3, desc="decoding", delay=60, stream=quiet) as ticker:
        ticker.update(3)
    assert quiet.getvalue() == ""


def test_track_rate_limits_plain_lines_and_ends_with_a_line(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert list(track(range(100), desc="tracks", interval=3600)) == list(range(100))
    lines = stream.getvalue().splitlines()
    assert lines == [lines[0], lines[-1]] and lines[-1].startswith("tracks: 100/100 item (100%)")


def test_tensorboard_logger_gets_the_rows_of_metrics_csv(blobs, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fit(blobs, blobs_config(epochs=2, logger="tensorboard"), tmp_path / "run", quiet=True)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert set(events.Tags()["scalars"]) == {r["metric"] for r in rows}
    for name in ("train/loss", "val/accuracy", "test/accuracy"):
        logged = {(r["step"], round(r["value"], 4)) for r in rows if r["metric"] == name}
        shown = {(e.step, round(e.value, 4)) for e in events.Scalars(name)}
        assert shown == logged, name


def test_a_wrong_or_missing_logger_is_refused_before_training(blobs, tmp_path, monkeypatch):
    with pytest.raises(E2EError, match="train.logger must be one of csv, tensorboard"):
        fit(blobs, blobs_config(logger="wandb"), tmp_path / "a", quiet=True)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    with pytest.raises(E2EError, match=r'pip install "e2e\[tensorboard\]"'):
        fit(blobs, blobs_config(logger="tensorboard"), tmp_path / "b", quiet=True)
    assert not (tmp_path / "b" / "metrics.csv").exists()


def test_corpus_rendering_reports_progress(tmp_path, capsys):
    from e2e.tasks.speech.synth import build_corpus, require_espeak

    try:
        require_espeak()
    except E2EError:
        pytest.skip("espeak-ng is not installed")
    build_corpus(tmp_path, 4, 1, 1, workers=1, kinds=("digits",), quiet=False)
    err = capsys.readouterr().err
    assert "speech-synth: rendering: 6/6 utterances (100%), elapsed" in err


def test_recording_tracks_reports_progress_per_track(tmp_path, capsys):
    pytest.importorskip("gymnasium")
    from e2e.tasks.driving.record import record

    record(tmp_path, [0, 1], workers=1, max_steps=60)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("recording:")]
    assert lines[0].startswith("recording: 1/2 tracks (50%), elapsed ") and "ETA" in lines[0]
    assert "; track 0: score" in lines[0] and lines[1].startswith("recording: 2/2 tracks")

"""Exact resume: SIGKILL a real training process mid-run, resume it, and get bit-identical
weights, optimizer state and metrics compared with a run that was never interrupted."""

import signal
import subprocess
import sys
import time

import torch
from conftest import run_cli

from e2e.engine.checkpoint import load_checkpoint
from e2e.engine.progress import read_metrics

ARGS = ["--data", "digits", "--quiet", "--set", "train.epochs=6", "--set", "train.batch_size=32",
        "--set", "model.widths=[8,16,16]", "--set", "train.checkpoint_every=7",
        "--set", "train.eval_every=10", "--set", "train.log_every=1"]


def logged_steps(run):
    path = run / "metrics.csv"
    if not path.exists():
        return 0
    try:
        return max((r["step"] for r in read_metrics(path)), default=0)
    except (ValueError, KeyError):  # caught mid-write
        return 0


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_cli("train", "vision", "--out", str(straight), *ARGS)

    proc = subprocess.Popen([sys.executable, "-m", "e2e", "train", "vision", "--out", str(killed),
                             *ARGS], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while logged_steps(killed) < 45 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "results.json").exists(), "the run finished before it could be killed"
    at_kill = load_checkpoint(killed / "checkpoints/last.pt")["state"]["step"]
    assert 0 < at_kill < 6 * (1437 // 32)

    run_cli("train", "--resume", str(killed), "--quiet")

    a = load_checkpoint(straight / "checkpoints/last.pt")
    b = load_checkpoint(killed / "checkpoints/last.pt")
    assert a["state"] == {**b["state"], "elapsed": a["state"]["elapsed"]}
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for key in sa:
            assert torch.equal(torch.as_tensor(sa[key]), torch.as_tensor(sb[key])), key
    best_a = load_checkpoint(straight / "model.safetensors")
    best_b = load_checkpoint(killed / "model.safetensors")
    assert best_a["step"] == best_b["step"]
    assert all(torch.equal(best_a["model"][k], best_b["model"][k]) for k in best_a["model"])
    # metrics.csv holds each step once, with the same values as the straight run
    rows_a = [(r["step"], r["metric"], r["value"]) for r in read_metrics(straight / "metrics.csv")]
    rows_b = [(r["step"], r["metric"], r["value"]) for r in read_metrics(killed / "metrics.csv")]
    assert rows_a == rows_b


def test_resume_from_a_corrupt_checkpoint_names_the_file(tmp_path):
    run = tmp_path / "run"
    run_cli("train", "vision", "--out", str(run), "--data", "digits", "--quiet",
            "--set", "train.epochs=1", "--set", "model.widths=[8,16]")
    last = run / "checkpoints/last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    proc = run_cli("train", "--resume", str(run), check=False)
    assert proc.returncode == 1
    assert str(last) in proc.stderr
    assert "corrupt" in proc.stderr or "truncated" in proc.stderr
    assert "Traceback" not in proc.stderr

"""Several machines and elastic restarts, on 127.0.0.1: real `e2e train` launches (torchrun,
c10d rendezvous, gloo).

- Two "machines" (two launchers, `--nnodes 2 --nproc 1`, node ranks 0 and 1, one rendezvous
  on a free local port) train to weights bit-equal to one machine with two processes
  (`--nproc 2`): the same global ranks see the same examples and the same random streams, and
  gloo sums two gradients in the same order whichever machine each rank is on.
- A run with `--max-restarts 1` whose rank 0 is killed (SIGKILL) after its first checkpoint is
  started again by torchrun; the new processes resume from RUN/checkpoints/last.pt and end on
  weights bit-equal to the uninterrupted run's.
- Inconsistent launch flags are refused with one line, before any process starts.

The config has no random augmentation (data.crop_pad=0): a resumed run of several processes
reseeds each rank's random stream at the step it resumes from (distributed.seed_rank), so
augmented runs resume to equally good but not bit-equal weights.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import free_port
from test_distributed import curve

from e2e.cli import main, without_launch_flags
from e2e.engine.checkpoint import load_checkpoint
from e2e.engine.distributed import Nodes, torchrun_command

STEPS = 120  # 6 epochs of digits at a global batch of 64: ~2 s on 2 cores
TRAIN = ["train", "vision", "--data", "digits", "--quiet", "--set", "model.widths=[8,16]",
         "data.crop_pad=0", "train.batch_size=64", f"train.max_steps={STEPS}",
         "train.eval_every=40", "train.checkpoint_every=5", "train.precision=fp32"]
# Bit-equality needs the same threads in every process of every run being compared.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
TIMEOUT = 180  # seconds for any one launch


def e2e(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "e2e", *args], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(*procs: subprocess.Popen) -> list[str]:
    """Wait for each launcher (killing all of them past TIMEOUT); their stderr, all succeeded."""
    deadline = time.monotonic() + TIMEOUT
    outputs = []
    try:
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                raise AssertionError(f"no end after {TIMEOUT} s:\n{out}\n{err}") from None
            assert proc.returncode == 0, f"exit {proc.returncode}:\n{out}\n{err}"
            outputs.append(err)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outputs


def weights(run: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(run / "checkpoints/last.pt")
    assert ckpt["state"]["step"] == STEPS
    return ckpt["model"]


def assert_equal_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name, tensor in wa.items():
        assert torch.equal(tensor, wb[name]), f"{name} differs between {a.name} and {b.name}"


@pytest.fixture(scope="module")
def one_machine(tmp_path_factory) -> Path:
    """The reference: one machine, two processes."""
    run = tmp_path_factory.mktemp("one-machine") / "run"
    finish(e2e(*TRAIN, "--out", str(run), "--nproc", "2"))
    return run


def test_two_machines_train_the_weights_of_one(one_machine, tmp_path):
    run, endpoint = tmp_path / "run", f"127.0.0.1:{free_port()}"
    nodes = [e2e(*TRAIN, "--out", str(run), "--nnodes", "2", "--nproc", "1", "--node-rank",
                 str(rank), "--rdzv-endpoint", endpoint, "--rdzv-id", "two-machines")
             for rank in (1, 0)]  # machine 1 first: it waits at the rendezvous for machine 0
    finish(*nodes)
    assert_equal_weights(one_machine, run)
    assert curve(run) == curve(one_machine), "the same losses, logged once, by rank 0 alone"
    assert not list(run.glob("**/*.tmp")), "a stray temporary file: two ranks wrote"


def test_a_killed_process_is_restarted_and_resumes_to_the_same_weights(one_machine, tmp_path):
    run = tmp_path / "run"
    launcher = e2e(*TRAIN, "--out", str(run), "--nproc", "2", "--max-restarts", "1")
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (run / "checkpoints/last.pt").exists():  # rank 0 wrote step 5
            assert launcher.poll() is None, launcher.communicate()
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.01)
        rank0 = int((run / ".lock").read_text())  # the writer of the run holds its lock
        os.kill(rank0, signal.SIGKILL)
        killed_at = load_checkpoint(run / "checkpoints/last.pt")["state"]["step"]
    finally:
        err, = finish(launcher)
    assert killed_at < STEPS, "the run ended before it was killed: nothing was restarted"
    assert "restart 1: resuming" in err, err
    assert_equal_weights(one_machine, run)
    assert curve(run) == curve(one_machine), "the same losses, each logged once"


@pytest.mark.parametrize("flags, message", [
    (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "n0:29500"],
     "--node-rank 2 is outside 0..1"),
    (["--nnodes", "2", "--node-rank", "0"], "--nnodes 2 needs --rdzv-endpoint HOST:PORT"),
    (["--nnodes", "2", "--rdzv-endpoint", "n0"], "--rdzv-endpoint 'n0' is not HOST:PORT"),
    (["--nnodes", "2", "--rdzv-endpoint", "n0:70000"], "is not HOST:PORT"),
    (["--nnodes", "0"], "--nnodes must be at least 1"),
    (["--nproc", "2", "--max-restarts", "-1"], "--max-restarts must be 0 or more"),
    (["--nproc", "2", "--rdzv-id", "my job"], "--rdzv-id 'my job' must be letters"),
])
def test_inconsistent_launch_flags_are_refused(flags, message, tmp_path, capsys):
    assert main([*TRAIN, "--out", str(tmp_path / "run"), *flags]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_several_machines_need_one_named_run_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*TRAIN, "--nnodes", "2", "--rdzv-endpoint", "n0:29500"]) == 1
    assert "--out" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_launch_flags_under_torchrun_are_refused(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "e2e")  # as in a process torchrun started
    assert main([*TRAIN, "--out", str(tmp_path / "run"), "--nproc", "2"]) == 1
    assert "under torchrun already" in capsys.readouterr().err


def test_the_launched_processes_get_the_command_without_launch_flags():
    argv = ["train", "vision", "--nproc", "2", "--nnodes=2", "--node-rank", "1",
            "--rdzv-endpoint", "[::1]:29500", "--rdzv-id", "7", "--max-rest", "3",
            "--set", "train.lr=0.1", "--out", "r"]
    assert without_launch_flags(argv) == ["train", "vision", "--set", "train.lr=0.1",
                                          "--out", "r"]
    cmd = torchrun_command(2, ["train"], Nodes(2, 1, "[::1]:29500", "7", 3))
    line = " ".join(cmd)
    assert ("--nnodes 2 --nproc-per-node 2 --rdzv-backend c10d --rdzv-endpoint [::1]:29500 "
            "--rdzv-id 7 --max-restarts 3 --rdzv-conf is_host=0 -m e2e train") in line

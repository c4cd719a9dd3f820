"""Distributed training: real torchrun launches of 2 gloo processes on the CPU.

- The same config (same *global* batch) trained by 1 and by 2 processes follows the same
  loss curve: every step's train/loss within 1e-4 (fp32; only the order of floating-point
  sums differs), final weights within 1e-4. The 2-process run stops half way and is resumed
  by a single process, so the second half checks resuming with another number of processes.
- `e2e train ... --nproc 2` writes one run directory (rank 0 only).
- A run scheduled by the clock (train.schedule_by_time) gives every rank the same learning
  rate, even when their clocks disagree, so their weights stay equal.
- Killing the launcher (SIGTERM) stops the processes it started.
- On each machine the first process builds the data before the others start to (caches are
  made once).

Run as a script (`torchrun --nproc-per-node 2 tests/test_distributed.py OUT STEPS`, `OUT
skew` or `OUT order`), this file trains the tests' blob task; the tests below launch it that way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import BlobsTask, blobs_config, run_cli

from e2e.cli import main
from e2e.engine import fit, trainer
from e2e.engine.batching import TensorData, train_batches
from e2e.engine.checkpoint import load_checkpoint
from e2e.engine.distributed import DistEnv, local_batch_size
from e2e.engine.progress import read_metrics
from e2e.errors import E2EError

# A constant learning rate: the schedule then does not depend on where a run stops.
TRAIN = dict(batch_size=32, lr=0.05, schedule="constant", eval_every=8)
STEPS = 48  # 3 epochs of 512 examples
TOLERANCE = 1e-4


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", str(nproc), *args], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def curve(run: Path, metric: str = "train/loss") -> dict[int, float]:
    rows = [r for r in read_metrics(run / "metrics.csv") if r["metric"] == metric]
    steps = [r["step"] for r in rows]
    assert len(steps) == len(set(steps)), f"{metric} logged twice for a step: only rank 0 logs"
    return {r["step"]: r["value"] for r in rows}


def test_two_processes_follow_the_single_process_loss_curve(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    fit(BlobsTask(), blobs_config(**TRAIN, max_steps=STEPS), one, quiet=True)
    torchrun(2, __file__, str(two), str(STEPS // 2))
    assert load_checkpoint(two / "checkpoints/last.pt")["state"]["step"] == STEPS // 2
    fit(BlobsTask(), blobs_config(**TRAIN, max_steps=STEPS), two, resume=True, quiet=True)

    a, b = curve(one), curve(two)
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))
    worst = max(abs(a[s] - b[s]) for s in a)
    assert worst <= TOLERANCE, f"loss curves differ by up to {worst:.2e}"
    assert a[STEPS] < 0.5 * a[1]  # and it did learn
    assert curve(one, "val/accuracy").keys() == curve(two, "val/accuracy").keys()

    wa = load_checkpoint(one / "checkpoints/last.pt")
    wb = load_checkpoint(two / "checkpoints/last.pt")
    assert wa["state"] == {**wb["state"], "elapsed": wa["state"]["elapsed"]}
    for name, tensor in wa["model"].items():
        assert torch.allclose(tensor, wb["model"][name], atol=TOLERANCE), name
    assert not list(two.glob("**/*.tmp")), "a stray temporary file: two ranks wrote"


@pytest.mark.slow
def test_cli_nproc_writes_one_run(tmp_path):
    run = tmp_path / "run"
    done = run_cli("train", "vision", "--data", "digits", "--out", str(run), "--nproc", "2",
                   "--set", "model.widths=[8,16]", "--set", "train.batch_size=64",
                   "--set", "train.max_steps=10", env={"OMP_NUM_THREADS": "1"})
    assert done.stdout.count("test/accuracy") == 1, "only rank 0 reports"
    assert "x 2 processes" in done.stderr
    state = load_checkpoint(run / "checkpoints/last.pt")["state"]
    assert (state["step"], state["batch_in_epoch"]) == (10, 10)
    assert list(curve(run)) == [1], "train/loss at step 1 (log_every=50), written once"


class LateClock:
    """`time` as seen by a process that reached the training loop a second after the others."""

    @staticmethod
    def time() -> float:
        return time.time() - 1.0


class SlowBlobs(BlobsTask):
    """Blobs with 20 ms steps, so that the clock, not the step count, drives the schedule;
    keeps its model, for the test to compare the ranks' weights."""

    def build_model(self, cfg, info):
        self.model = super().build_model(cfg, info)
        return self.model

    def loss(self, model, batch, cfg, info):
        time.sleep(0.02)
        return super().loss(model, batch, cfg, info)


def skewed_clock_run(out: str) -> None:
    """Train for 3 s by the clock, rank 1 a second behind; each rank saves its weights."""
    rank = int(os.environ["RANK"])
    if rank == 1:
        trainer.time = LateClock
    task = SlowBlobs()
    fit(task, blobs_config(lr=0.05, max_steps=1000, time_limit=3.0, schedule_by_time=True,
                           eval_every=1000, log_every=1000), out, quiet=True)
    torch.save(task.model.state_dict(), Path(out) / f"rank{rank}.pt")


class LoggedBlobs(BlobsTask):
    """Blobs whose data building takes 0.5 s and leaves its start and end in OUT/data.log."""

    def __init__(self, log: Path):
        super().__init__()
        self.log = log

    def build_data(self, cfg):
        rank = os.environ["RANK"]
        with open(self.log, "a") as f:
            f.write(f"start {rank}\n")
        time.sleep(0.5)
        splits = super().build_data(cfg)
        with open(self.log, "a") as f:
            f.write(f"end {rank}\n")
        return splits


def test_the_first_local_process_builds_the_data_before_the_others(tmp_path):
    torchrun(2, __file__, str(tmp_path), "order")
    events = (tmp_path / "data.log").read_text().split("\n")[:-1]
    assert events == ["start 0", "end 0", "start 1", "end 1"], events


def test_ranks_agree_on_the_clock_and_keep_equal_weights(tmp_path):
    torchrun(2, __file__, str(tmp_path), "skew")
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), f"{name} differs between the ranks"
    state = load_checkpoint(tmp_path / "checkpoints/last.pt")["state"]
    assert 20 < state["step"] < 1000, "the time limit (3 s), not max_steps, ended the run"


def test_batch_size_is_global_and_must_divide_among_processes():
    assert local_batch_size(64, DistEnv(rank=1, world=2)) == 32
    with pytest.raises(E2EError, match="train.batch_size=33 .* multiple of 2"):
        local_batch_size(33, DistEnv(world=2))


@pytest.mark.parametrize("bucketed", [False, True])
def test_a_step_sees_the_same_examples_whatever_the_number_of_processes(bucketed):
    data = TensorData(x=torch.arange(200))
    if bucketed:  # length-bucketed data (text): buckets are cut from the global batch
        data.lengths = torch.randint(1, 50, (200,), generator=torch.Generator().manual_seed(0))
    one = [b["x"] for b in train_batches(data, 24, 5, 1, 0, 8)]
    for world in (2, 4):
        shards = [list(train_batches(data, 24 // world, 5, 1, 0, 8, rank=r, world=world))
                  for r in range(world)]
        for step, expected in enumerate(one):
            got = torch.cat([shards[r][step]["x"] for r in range(world)])
            assert sorted(got.tolist()) == sorted(expected.tolist()), (world, step)


def test_torchrun_without_out_is_refused(tmp_path, monkeypatch, capsys):
    # as torchrun would start rank 0 of 2; refused before any process group is formed
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "vision", "--data", "digits"]) == 1
    assert "--out" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_terminated_launcher_stops_its_workers(tmp_path):
    # `kill` of `e2e train --nproc N` (or of bench/speech.py) must not leave torchrun training
    # on: the launcher forwards SIGTERM to its child and waits for it.
    pid_file = tmp_path / "child.pid"
    sleeper = (f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
               "time.sleep(120)")
    launcher = subprocess.Popen([sys.executable, "-c",
                                 "import sys; from e2e.engine.distributed import run_child; "
                                 f"sys.exit(run_child([sys.executable, '-c', {sleeper!r}], {{}}))"])
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    launcher.terminate()
    assert launcher.wait(timeout=30) == 128 + 15
    with pytest.raises(ProcessLookupError):  # reaped by the launcher, so no zombie answers
        os.kill(child, 0)


if __name__ == "__main__":  # one rank of a 2-process blob run: OUT STEPS, OUT skew, OUT order
    if sys.argv[2] == "skew":
        skewed_clock_run(sys.argv[1])
    elif sys.argv[2] == "order":
        fit(LoggedBlobs(Path(sys.argv[1]) / "data.log"), blobs_config(**TRAIN, max_steps=2),
            sys.argv[1], quiet=True)
    else:
        fit(BlobsTask(), blobs_config(**TRAIN, max_steps=int(sys.argv[2])), sys.argv[1],
            quiet=True)

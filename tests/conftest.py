"""Shared fixtures: a tiny task for engine tests and helpers to run the real CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from e2e.config import Config, TrainConfig
from e2e.engine.batching import TensorData, eval_batches
from e2e.tasks.base import Info, Serving, Splits, Task


@dataclass
class BlobsData:
    n: int = 512
    noise: float = 0.5


@dataclass
class MLPModel:
    hidden: int = 16
    detach_hidden: bool = False  # plant a broken end-to-end path
    freeze_first: bool = False


class MLP(nn.Module):
    def __init__(self, m: MLPModel):
        super().__init__()
        self.m = m
        self.fc1, self.fc2, self.out = nn.Linear(2, m.hidden), nn.Linear(m.hidden, m.hidden), \
            nn.Linear(m.hidden, 3)
        if m.freeze_first:
            self.fc1.requires_grad_(False)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        if self.m.detach_hidden:
            h = h.detach()
        return self.out(torch.tanh(self.fc2(h)))


@dataclass(kw_only=True)
class BlobsInfo(Info):
    classes: int


class BlobsServing(Serving):
    def predict(self, model, raw, cfg, info, **options):
        return model(raw).argmax(1)


class BlobsTask(Task):
    """Three Gaussian blobs in 2-D: a task small enough to train in a fraction of a second."""

    name = "blobs"
    DataConfig, ModelConfig = BlobsData, MLPModel
    Info, Serving = BlobsInfo, BlobsServing
    metrics = ("accuracy", "loss")
    channels_last = False
    nan_at_step: int | None = None  # make the loss NaN from this step on

    def __init__(self):
        super().__init__()
        self.steps = 0  # a test double's counter (nan_at_step), not an application's state

    def default_train(self):
        return TrainConfig()

    def build_data(self, cfg, info=None):
        g = torch.Generator().manual_seed(0)
        centers = torch.tensor([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])

        def make(n):
            y = torch.randint(0, 3, (n,), generator=g)
            return TensorData(x=centers[y] + cfg.data.noise * torch.randn(n, 2, generator=g), y=y)
        return Splits(make(cfg.data.n), make(128), make(128), BlobsInfo(classes=3))

    def build_model(self, cfg, info):
        return MLP(cfg.model)

    def prepare_batch(self, batch, train, cfg, info):
        return batch

    def loss(self, model, batch, cfg, info):
        self.steps += 1
        loss = F.cross_entropy(model(batch["x"]), batch["y"])
        if self.nan_at_step is not None and self.steps >= self.nan_at_step:
            loss = loss * float("nan")
        return loss

    def evaluate(self, model, split, cfg, info):
        correct, loss, n = 0, 0.0, 0
        for b in eval_batches(split, 64):
            out = model(b["x"])
            correct += int((out.argmax(1) == b["y"]).sum())
            loss += float(F.cross_entropy(out, b["y"], reduction="sum"))
            n += len(b["y"])
        return {"accuracy": correct / n, "loss": loss / n}

    def report(self, model, split, cfg, info, run_dir, metrics):
        return ""


@pytest.fixture
def blobs():
    return BlobsTask()


def blobs_config(**train) -> Config:
    base = dict(epochs=3, batch_size=32, lr=0.05, device="cpu", log_every=1, precision="fp32")
    return Config(task="blobs", train=TrainConfig(**{**base, **train}), data=BlobsData(),
                  model=MLPModel())


def heavy_imports(code: str) -> list[str]:
    """Run `code` in a fresh interpreter; which of torch and matplotlib it imported."""
    probe = code + ("\nimport json, sys\n"
                    "print(json.dumps([m for m in ('torch', 'matplotlib') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_cli(*args: str, cwd: Path | None = None, check: bool = True,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m e2e ARGS` in a fresh process, as a user would run `e2e ARGS`."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "e2e", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"e2e {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matrices: one thread is faster, above all on a busy shared machine.
    A module opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_process(*args: str):
    """`e2e serve ARGS... --port P` in its own process: (url, process) once /healthz answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "e2e", "serve", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise AssertionError(f"server did not start:\n{proc.stdout.read()}") from None
            time.sleep(0.2)
    try:
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def read_episode_frame():
    """A real CarRacing camera frame (track 5, a few steps after the zoom-in)."""
    import numpy as np

    from e2e.tasks.driving.sim import WARMUP, make_env, step_env

    env = make_env()
    obs, _ = env.reset(seed=5)
    for _ in range(WARMUP + 5):
        obs, *_ = step_env(env, np.array([0.0, 0.5, 0.0]))
    env.close()
    return obs

"""The run directory: everything about one run, enough to evaluate, resume or serve it.

    RUN/config.yaml        the resolved config (`--config RUN/config.yaml` accepts it back)
    RUN/metrics.csv        step, epoch, time_s, metric, value
    RUN/checkpoints/last.pt  full training state, for exact resume
    RUN/checkpoints/best.pt  weights with the best `train.monitor`
    RUN/model.safetensors  the same weights for any tool (safetensors); RUN/model.json its info
    RUN/gradflow.json      per-parameter gradient norms after the first backward pass
    RUN/results.json       final numbers; RUN/report.md and *.png
    RUN/.lock              held (flock) by the one process training the run; holds its PID

One writer per run directory: `fit` holds RUN/.lock for the whole run, resume included, so a
second `e2e train --out RUN` or `--resume RUN` is refused while the first runs. The kernel
drops the lock when its process dies, so the lock of a killed run is simply taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from e2e.config import Config
from e2e.engine.progress import read_metrics
from e2e.engine.results import is_detail
from e2e.errors import E2EError


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.csv"
        self.last = self.path / "checkpoints" / "last.pt"
        self.best = self.path / "checkpoints" / "best.pt"
        self.gradflow = self.path / "gradflow.json"
        self.results = self.path / "results.json"
        self.report = self.path / "report.md"
        self.lockfile = self.path / ".lock"

    @contextlib.contextmanager
    def writer(self, resume: bool = False) -> Iterator[None]:
        """Hold the run directory for this process alone while the block runs.

        Refuses an --out that is a file, or (for a new run) a non-empty folder that is not an
        e2e run; removes temporary checkpoint files a killed writer left behind."""
        if self.path.exists() and not self.path.is_dir():
            raise E2EError(f"--out {self.path} is a file, not a folder; choose a folder for "
                           "the run (it is created if missing)")
        if not resume and self.path.is_dir() and not self.is_run():
            names = sorted(p.name for p in self.path.iterdir())
            if names:
                shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
                raise E2EError(f"--out {self.path} is a folder that is not an e2e run and is "
                               f"not empty (it holds {shown}); choose a new or empty folder "
                               "so nothing of yours is overwritten")
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lockfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                who = f"process {holder}" if holder.isdigit() else "another process"
                raise E2EError(f"{self.path} is in use: e2e {who} is training it (it holds "
                               f"{self.lockfile}); wait for it to finish, stop it, or choose "
                               "another --out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self.remove_temporaries()
            yield
        finally:
            os.close(fd)  # releases the lock

    def is_run(self) -> bool:
        """True for a folder e2e trained in (now or before), whatever state it was left in."""
        return self.lockfile.exists() or self.last.exists() or self.best.exists()

    def remove_temporaries(self) -> list[Path]:
        """Delete the temporary files of interrupted atomic writes (`.NAME.XXXX.tmp`).
        Call only while holding the lock: a live writer's temporary file must stay."""
        removed = []
        for folder in (self.path, self.path / "checkpoints"):
            if folder.is_dir():
                for p in folder.glob(".*.tmp"):
                    p.unlink(missing_ok=True)
                    removed.append(p)
        return removed

    def create(self, cfg: Config) -> None:
        if self.last.exists():
            raise E2EError(f"{self.path} already holds a run; continue it with "
                           f"`e2e train --resume {self.path}` or choose another --out")
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        cfg.save(self.config)

    def require(self) -> None:
        if not self.config.exists():
            raise E2EError(f"{self.path} is not a run directory (no config.yaml); "
                           "pass the --out directory of an `e2e train` run")

    def weights(self) -> Path:
        """The checkpoint to predict with: best if one was chosen, else last."""
        for p in (self.best, self.last):
            if p.exists():
                return p
        raise E2EError(f"{self.path} has no checkpoint yet (checkpoints/best.pt or last.pt)")


def write_report(run: RunDir, cfg: Config, results: dict, extra: str = "") -> None:
    plot_curves(run)
    lines = [f"# {cfg.task} run: {run.path.name}", "",
             "| result | value |", "| --- | --- |"]
    for k, v in results.items():
        if isinstance(v, float):
            v = f"{v:.4f}"
        if not is_detail(k):
            lines.append(f"| {k} | {v} |")
    lines += ["", "![training curves](curves.png)", "", extra, "", "## Config", "",
              "```yaml", cfg.to_yaml().rstrip(), "```", ""]
    run.report.write_text("\n".join(lines))


def plot_curves(run: RunDir) -> None:
    rows = read_metrics(run.metrics)
    series: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        if r["metric"] == "train/loss" or (r["metric"].startswith("val/")
                                           and not is_detail(r["metric"])):
            series.setdefault(r["metric"], []).append((r["step"], r["value"]))
    if not series:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, points in series.items():
        ax = axes[0] if name.endswith("loss") else axes[1]
        ax.plot(*zip(*points), label=name, marker="." if name.startswith("val") else None)
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run.path / "curves.png", dpi=100)
    plt.close(fig)

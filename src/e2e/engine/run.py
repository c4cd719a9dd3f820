"""The run directory: everything about one run, enough to evaluate, resume or serve it.

    RUN/config.yaml        the resolved config (`--config RUN/config.yaml` accepts it back)
    RUN/metrics.csv        step, epoch, time_s, metric, value
    RUN/checkpoints/last.pt  full training state, for exact resume
    RUN/model.safetensors  the weights with the best `train.monitor`, for e2e and any other
                           tool (e2e.engine.weights); RUN/model.json its info
    RUN/gradflow.json      per-parameter gradient norms after the first backward pass
    RUN/results.json       final numbers; RUN/report.md and *.png
    RUN/.lock              held (flock) by the one process training the run; holds its PID
    RUN/.e2e-run           written first, when e2e takes a folder for a run: what tells an e2e
                           run from another tool's folder (which may well hold a config.yaml,
                           checkpoints/ or a .lock of its own)

Files another command reads are written atomically (e2e.atomic).

One writer per run directory: `fit` holds RUN/.lock for the whole run, resume included, so a
second `e2e train --out RUN` or `--resume RUN` is refused while the first runs. The kernel
drops the lock when its process dies, so the lock of a killed run is simply taken over.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Collection, Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import yaml

from e2e.atomic import write_atomic
from e2e.config import SECTIONS, Config
from e2e.engine.progress import read_metrics
from e2e.engine.results import is_detail
from e2e.errors import E2EError

MARKER = ".e2e-run"


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.csv"
        self.last = self.path / "checkpoints" / "last.pt"
        self.best = self.path / "model.safetensors"
        self.legacy_best = self.path / "checkpoints" / "best.pt"  # the best weights of an older e2e
        self.marker = self.path / MARKER
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
        if not self.marker.exists():
            write_atomic(self.marker, "a run directory of e2e (https://pypi.org/project/e2e)\n")
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
            try:
                yield
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise E2EError(self.disk_full(e)) from e
                raise
        finally:
            os.close(fd)  # releases the lock

    def disk_full(self, e: OSError) -> str:
        """The one line for a disk that filled up during the run: what is left, what to do."""
        where = f" ({e.filename})" if e.filename else ""
        if self.last.exists():  # written atomically: the old file or the new one, whole
            return (f"no space left on the device{where}: the last checkpoint {self.last} is "
                    f"intact; free some space, then continue with `e2e train --resume "
                    f"{self.path}`")
        return (f"no space left on the device{where} before the first checkpoint: there is "
                f"nothing to resume in {self.path}; free some space or choose another --out, "
                "then start the run again")

    def is_run(self) -> bool:
        """True for a folder e2e trained in (now or before), whatever state it was left in:
        it holds e2e's marker, or (runs made before the marker) a whole e2e config (task and
        every section) beside a metrics.csv. Another tool's config.yaml, checkpoints/ or .lock
        do not make a run."""
        if self.marker.is_file():
            return True
        if not self.metrics.is_file():
            return False
        try:
            raw = self.read_config()
        except E2EError:
            return False
        return all(isinstance(raw.get(s), dict) for s in SECTIONS)  # as e2e writes it: whole

    def read_config(self, known_tasks: Collection[str] = ()) -> dict:
        """RUN/config.yaml as written by e2e: a mapping naming an application (one of
        `known_tasks` when the caller knows the registry; the engine does not). Refuses
        (E2EError) an empty, unreadable or foreign file instead of falling back to defaults."""
        what = f"{self.config} (the run's settings)"
        try:
            text = self.config.read_text()
            raw = yaml.safe_load(text) if text.strip() else None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise E2EError(f"cannot read {what}: {reason}; restore it from a copy, or train a "
                           "new run (its settings cannot be guessed)") from None
        if raw is None:
            raise E2EError(f"{what} is empty; restore it from a copy, or train a new run "
                           "(its settings cannot be guessed: resuming with the defaults would "
                           "train another model)")
        if not isinstance(raw, dict):
            raise E2EError(f"{what} is not an e2e config (a mapping of task, train, data, "
                           "model); restore it from a copy, or train a new run")
        unknown = sorted(set(raw) - {"task", *SECTIONS})
        if unknown:
            raise E2EError(f"{what} is not an e2e config: unknown section(s) {unknown}; an "
                           f"e2e run's config has task, {', '.join(SECTIONS)}")
        task = raw.get("task")
        if not isinstance(task, str) or not task or (known_tasks and task not in known_tasks):
            known = f"; known: {', '.join(known_tasks)}" if known_tasks else ""
            raise E2EError(f"{what} names no known application (task: {task!r}{known}); "
                           "restore it from a copy, or train a new run")
        return raw

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

    def require(self, known_tasks: Collection[str] = ()) -> None:
        """Refuse a folder that is not a run, or whose config.yaml is empty or damaged."""
        if not self.config.exists():
            raise E2EError(f"{self.path} is not a run directory (no config.yaml); "
                           "pass the --out directory of an `e2e train` run")
        self.read_config(known_tasks)

    def weights(self) -> Path:
        """The weights to predict with: the best if chosen, else the last checkpoint."""
        from e2e.engine.weights import is_old_format

        # A run of an older e2e: its best.pt, where its model.safetensors is of a format that
        # is no longer trusted.
        old = self.legacy_best.exists() and self.best.exists() and is_old_format(self.best)
        for p in (self.legacy_best if old else self.best, self.legacy_best, self.last):
            if p.exists():
                return p
        raise E2EError(f"{self.path} has no weights yet (model.safetensors or "
                       "checkpoints/last.pt): it was stopped before its first evaluation or "
                       "checkpoint")


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
    write_atomic(run.report, "\n".join(lines))


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

"""Progress display and the metrics log.

On a terminal: a tqdm bar with the running loss. Elsewhere (CI, `> log.txt`, nohup):
a plain line every `log_every` steps, with elapsed time and ETA, so logs stay readable and
small. `Ticker` / `track` do the same for any other long step (rendering a corpus, recording
tracks, decoding a test set): every part of e2e that loops for long reports through them.
`metrics.csv` is long-format (`step,epoch,time_s,metric,value`), append-only, and is cut
back to the resumed step when a run resumes, so it never holds duplicate steps. With
`train.logger=tensorboard` the same rows also go to RUN/tensorboard/ as scalars.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from e2e.errors import E2EError

T = TypeVar("T")
LOGGERS = ("csv", "tensorboard")  # train.logger: metrics.csv always; tensorboard in addition


def duration(seconds: float) -> str:
    """1:02:03 or 4:05: short enough for a log line, unambiguous."""
    s = max(0, round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def timing(done: float, total: float | None, elapsed: float) -> str:
    """'elapsed 1:02, ETA 3:10' (no ETA before the first item, or without a total)."""
    text = f"elapsed {duration(elapsed)}"
    if total and done > 0:
        text += f", ETA {duration(elapsed / done * max(total - done, 0))}"
    return text


class Progress:
    def __init__(self, total_steps: int, start_step: int, log_every: int, enabled: bool = True,
                 stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total = total_steps
        self.log_every = max(1, log_every)
        self.started = time.time()
        self.start_step = start_step
        self.bar = None
        if enabled and self.stream.isatty():
            self.bar = tqdm(total=total_steps, initial=start_step, file=self.stream,
                            dynamic_ncols=True, unit="step")

    def step(self, step: int, **values: float) -> None:
        if not self.enabled:
            return
        text = " ".join(f"{k} {v:.4g}" for k, v in values.items())
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(text, refresh=False)
        elif step % self.log_every == 0 or step == self.total:
            elapsed = time.time() - self.started
            done = step - self.start_step  # this session's steps: a resumed run's rate is honest
            rate = done / max(elapsed, 1e-9)
            eta = timing(done, self.total - self.start_step, elapsed)
            print(f"step {step}/{self.total} {text} ({rate:.1f} steps/s, {eta})",
                  file=self.stream, flush=True)

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Ticker:
    """Progress of one long step: N of TOTAL, elapsed and ETA.

    Silent for its first `delay` seconds (short steps print nothing). Then on a terminal a
    tqdm bar that disappears when done; elsewhere a plain line at most every `interval`
    seconds, and one at the end. `interval=0` prints a line per update (with its `note`).
    """

    def __init__(self, total: int | None, desc: str, unit: str = "item", delay: float = 0.0,
                 interval: float = 10.0, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.desc, self.unit = total, desc, unit
        self.delay, self.interval, self.enabled = delay, interval, enabled
        self.n = 0
        self.started = time.time()
        self.last_line = None  # when the last plain line was printed
        self.bar = None
        if enabled and self.stream.isatty():
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, delay=delay,
                            leave=False, dynamic_ncols=True)

    def update(self, n: int = 1, note: str = "") -> None:
        self.n += n
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            if note:
                self.bar.set_postfix_str(note, refresh=False)
            return
        now = time.time()
        if now - self.started < self.delay:
            return
        finished = self.total is not None and self.n >= self.total
        if self.last_line is None or finished or now - self.last_line >= self.interval:
            self._line(note)

    def _line(self, note: str = "") -> None:
        self.last_line = time.time()
        of = f"/{self.total}" if self.total else ""
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        print(f"{self.desc}: {self.n}{of} {self.unit}{pct}, "
              f"{timing(self.n, self.total, self.last_line - self.started)}"
              + (f"; {note}" if note else ""), file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.last_line is not None and (self.total is None
                                                              or self.n < self.total):
            self._line("stopped early" if self.total else "done")

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], total: int | None = None, desc: str = "working",
          unit: str = "item", delay: float = 0.0, interval: float = 10.0,
          enabled: bool = True) -> Iterator[T]:
    """`items`, reporting progress as they are consumed (see Ticker)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Ticker(total, desc, unit, delay, interval, enabled) as ticker:
        for item in items:
            yield item
            ticker.update()


def check_logger(name: str) -> None:
    """Refuse an unknown train.logger, or tensorboard when it is not installed, before training."""
    if name not in LOGGERS:
        raise E2EError(f"train.logger must be one of {', '.join(LOGGERS)}, got '{name}'")
    if name == "tensorboard":
        _summary_writer_class()


def _summary_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise E2EError("train.logger=tensorboard needs the tensorboard package: "
                       'pip install "e2e[tensorboard]" (or: pip install tensorboard), or use '
                       "train.logger=csv") from None
    return SummaryWriter


class MetricsLog:
    FIELDS = ["step", "epoch", "time_s", "metric", "value"]

    def __init__(self, path: Path, resume_step: int | None = None, logger: str = "csv"):
        self.path = Path(path)
        check_logger(logger)
        self.tensorboard = None
        if logger == "tensorboard":
            # purge_step: a resumed run drops the events after its checkpoint, as the CSV does
            self.tensorboard = _summary_writer_class()(
                log_dir=str(self.path.parent / "tensorboard"),
                purge_step=None if resume_step is None else resume_step + 1)
        if resume_step is None or not self.path.exists():
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(self.FIELDS)
        else:
            self._truncate_after(resume_step)

    def log(self, step: int, epoch: int, time_s: float, metrics: dict[str, float]) -> None:
        with self.path.open("a", newline="") as f:
            w = csv.writer(f)
            for name, value in metrics.items():
                w.writerow([step, epoch, f"{time_s:.3f}", name, f"{value:.6g}"])
        if self.tensorboard is not None:
            for name, value in metrics.items():
                self.tensorboard.add_scalar(name, value, step)
            self.tensorboard.flush()  # a killed run keeps every row it logged, like the CSV

    def _truncate_after(self, step: int) -> None:
        """A resumed run: drop the rows logged after its checkpoint, and the test/* rows of an
        earlier end (the run's end measures the test split again, so one set stays, even when
        a finished run is resumed). Rewritten atomically: report and plots read this file."""
        from e2e.atomic import write_atomic

        with self.path.open(newline="") as f:
            rows = [r for r in csv.reader(f)][1:]
        kept = [r for r in rows if r and int(r[0]) <= step and not r[3].startswith("test/")]
        text = io.StringIO()
        w = csv.writer(text)
        w.writerow(self.FIELDS)
        w.writerows(kept)
        write_atomic(self.path, text.getvalue())


def read_metrics(path: Path) -> list[dict]:
    with Path(path).open(newline="") as f:
        return [{**r, "step": int(r["step"]), "value": float(r["value"])}
                for r in csv.DictReader(f)]

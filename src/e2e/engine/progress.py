"""Progress display and the metrics log.

On a terminal: a tqdm bar with the running loss. Elsewhere (CI, `> log.txt`, nohup):
a plain line every `log_every` steps, so logs stay readable and small.
`metrics.csv` is long-format (`step,epoch,time_s,metric,value`), append-only, and is cut
back to the resumed step when a run resumes, so it never holds duplicate steps.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

from tqdm import tqdm


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
            rate = (step - self.start_step) / max(time.time() - self.started, 1e-9)
            print(f"step {step}/{self.total} {text} ({rate:.1f} steps/s)", file=self.stream,
                  flush=True)

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


class MetricsLog:
    FIELDS = ["step", "epoch", "time_s", "metric", "value"]

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = Path(path)
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

    def _truncate_after(self, step: int) -> None:
        with self.path.open(newline="") as f:
            rows = [r for r in csv.reader(f)][1:]
        kept = [r for r in rows if r and int(r[0]) <= step]
        with self.path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.FIELDS)
            w.writerows(kept)


def read_metrics(path: Path) -> list[dict]:
    with Path(path).open(newline="") as f:
        return [{**r, "step": int(r["step"]), "value": float(r["value"])}
                for r in csv.DictReader(f)]

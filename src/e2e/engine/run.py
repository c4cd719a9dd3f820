"""The run directory: everything about one run, enough to evaluate, resume or serve it.

    RUN/config.yaml        the resolved config (`--config RUN/config.yaml` accepts it back)
    RUN/metrics.csv        step, epoch, time_s, metric, value
    RUN/checkpoints/last.pt  full training state, for exact resume
    RUN/checkpoints/best.pt  weights with the best `train.monitor`
    RUN/gradflow.json      per-parameter gradient norms after the first backward pass
    RUN/results.json       final numbers; RUN/report.md and *.png
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from e2e.config import Config
from e2e.engine.progress import read_metrics
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
        if isinstance(k, str) and k.count("/") <= 1:
            lines.append(f"| {k} | {v} |")
    lines += ["", "![training curves](curves.png)", "", extra, "", "## Config", "",
              "```yaml", cfg.to_yaml().rstrip(), "```", ""]
    run.report.write_text("\n".join(lines))


def plot_curves(run: RunDir) -> None:
    rows = read_metrics(run.metrics)
    series: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        if r["metric"] == "train/loss" or (r["metric"].startswith("val/")
                                           and r["metric"].count("/") == 1):
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

"""End to end vs stepwise, side by side, on the same split: `e2e compare APP`.

For each application both sides are trained and evaluated on the same train/test split,
and again on nested subsets of the training data (the data curve), so the report shows
where each side wins: quality, training time, inference time per example, and size
(parameters or features). The report (Markdown + PNG) goes into a run directory.

Each application's comparison lives beside its stepwise counterparts
(`e2e.stepwise.<app>.compare_<app>`, returning the report types of e2e.stepwise.report) and
is registered in COMPARISONS; one whose data is not installed is skipped with its install
command, the rest still run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # noqa: E402
import matplotlib.pyplot as plt
from tqdm import tqdm

from e2e.errors import DatasetMissing, E2EError
from e2e.stepwise.report import CompareOptions, Comparison, Metric, Row, nested_sizes

__all__ = ["COMPARISONS", "CompareOptions", "Comparison", "Metric", "Row", "compare",
           "nested_sizes"]


def _lazy(app: str, name: str) -> Callable:
    """A function of `e2e.stepwise.<app>`, imported when called: each application's
    dependencies (librosa, gymnasium, apertium) load only when it is compared."""
    def call(*args):
        return getattr(importlib.import_module(f"e2e.stepwise.{app}"), name)(*args)
    return call


# app -> (comparison, number of progress-bar steps it takes for the given options)
COMPARISONS: dict[str, tuple[Callable[[CompareOptions, tqdm], Comparison],
                             Callable[[CompareOptions], int]]] = {
    "vision": (_lazy("vision", "compare_vision"), _lazy("vision", "jobs")),
    "speech": (_lazy("speech", "compare_speech"), _lazy("speech", "jobs")),
    "text": (_lazy("text", "compare_text"), _lazy("text", "jobs")),
    "driving": (_lazy("driving", "compare_driving"), _lazy("driving", "jobs")),
}


def compare(apps: list[str], opts: CompareOptions) -> Path:
    if apps == ["all"]:
        apps = list(COMPARISONS)
    unknown = [a for a in apps if a not in COMPARISONS]
    if unknown:
        raise E2EError(f"no comparison for {unknown}; available: {', '.join(COMPARISONS)}")
    opts.out.mkdir(parents=True, exist_ok=True)
    sections = [f"# End to end vs stepwise\n\nCommand: `{command_line(apps, opts)}`\n"]
    bar = tqdm(total=sum(COMPARISONS[a][1](opts) for a in apps), unit="run",
               dynamic_ncols=True)
    for app in apps:
        try:
            result = COMPARISONS[app][0](opts, bar)
        except DatasetMissing as e:
            sections.append(f"## {app}\n\nSkipped: {e}\n")
            bar.write(f"{app}: skipped: {e}")
            continue
        plot = opts.out / f"{app}_data_curve.png"
        data_curve_png(result, plot, app)
        sections.append(section(app, result, plot.name))
    bar.close()
    report = opts.out / "report.md"
    report.write_text("\n".join(sections))
    return report


def command_line(apps: list[str], opts: CompareOptions) -> str:
    """The `e2e compare` command that reproduces this report (what the user set, no more)."""
    default = CompareOptions(opts.out, quick=opts.quick).fractions
    return " ".join([
        "e2e compare", *apps, *(["--data", opts.data] if opts.data else []),
        *(["--quick"] if opts.quick else []),
        *(["--fractions", ",".join(f"{f:g}" for f in opts.fractions)]
          if tuple(opts.fractions) != default else []),
        *[f"--set {kv}" for kv in opts.overrides]])


def section(app: str, result: Comparison, plot: str) -> str:
    rows, metric = result.rows, result.metric
    direction = "higher" if metric.higher_is_better else "lower"
    lines = [f"## {app}", "", result.notes, "",
             f"| system | training examples | {metric.name} ({direction} is better) | "
             "training time | inference / example | size |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        infer = "-" if r.infer_ms != r.infer_ms else f"{r.infer_ms:.3f} ms"
        examples = f"{r.train_examples:,}" if r.train_examples else "none (no learning)"
        lines.append(f"| {r.side} | {examples} | {r.quality:.4f} | "
                     f"{r.train_seconds:.1f} s | {infer} | {r.size} |")
    # Systems that learn nothing compete at every training-set size.
    fixed = [r for r in rows if r.train_examples == 0]
    largest = max(r.train_examples for r in rows)
    best = metric.best([r for r in rows if r.train_examples == largest] + fixed)
    lines += ["", f"At the largest size, {largest:,} training examples, the best is "
              f"**{best.side}** ({best.quality:.4f}).", ""]
    wins = []
    for n in sorted({r.train_examples for r in rows} - {0}):
        at_n = [r for r in rows if r.train_examples == n] + fixed
        if len(at_n) > 1:
            wins.append(f"{n:,}: {metric.best(at_n).side}")
    lines += ["Winner by training-set size: " + "; ".join(wins) + ".", "",
              f"![data curve]({plot})", ""]
    if result.details:
        lines += [result.details, ""]
    return "\n".join(lines)


def data_curve_png(result: Comparison, path: Path, app: str) -> None:
    rows = result.rows
    fig, ax = plt.subplots(figsize=(6, 4))
    for side in dict.fromkeys(r.side for r in rows if r.train_examples):
        points = sorted((r.train_examples, r.quality) for r in rows if r.side == side)
        ax.plot(*zip(*points), marker="o", label=side)
    for r in rows:  # a system that learns nothing is a horizontal line
        if not r.train_examples:
            ax.axhline(r.quality, linestyle="--", color="gray")
            ax.annotate(r.side, (0.01, r.quality), xycoords=("axes fraction", "data"),
                        fontsize=8, va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("training examples")
    direction = "higher" if result.metric.higher_is_better else "lower"
    ax.set_ylabel(f"{result.metric.name} ({direction} is better)")
    ax.set_title(f"{app}: end to end vs stepwise")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


"""End to end vs stepwise, side by side, on the same split: `e2e compare APP`.

For each application both sides are trained and evaluated on the same train/test split,
and again on nested subsets of the training data (the data curve), so the report shows
where each side wins: quality, training time, inference time per example, and size
(parameters or features). The report (Markdown + PNG) goes into a run directory.

Each application's comparison lives beside its stepwise counterparts
(`e2e.stepwise.<app>.compare_<app>`) and is registered in COMPARISONS; one whose data is not
installed is skipped with its install command, the rest still run.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # noqa: E402
import matplotlib.pyplot as plt
from tqdm import tqdm

from e2e import api
from e2e.config import with_overrides
from e2e.engine.batching import TensorData
from e2e.errors import DatasetMissing, E2EError
from e2e.tasks import load_config


@dataclass
class CompareOptions:
    out: Path
    data: str | None = None
    quick: bool = False  # a small version that finishes in minutes
    fractions: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    overrides: list[str] = field(default_factory=list)


@dataclass
class Row:
    """One trained system evaluated on the test split."""

    side: str  # "end to end" or "stepwise: ..."
    train_examples: int  # 0 for a system that learns nothing (rules, a fixed pipeline)
    quality: float
    train_seconds: float
    infer_ms: float  # per example
    size: str  # parameters or features


@dataclass
class Metric:
    """What `Row.quality` measures for an application, and which way is better."""

    name: str = "test accuracy"
    higher_is_better: bool = True

    def best(self, rows: list[Row]) -> Row:
        return (max if self.higher_is_better else min)(rows, key=lambda r: r.quality)


@dataclass
class Comparison:
    """What an application's comparison returns."""

    rows: list[Row]
    notes: str  # Markdown: the data, the split, what each side is
    metric: Metric = field(default_factory=Metric)


def nested_sizes(n: int, fractions: tuple[float, ...], minimum: int = 20) -> list[int]:
    """Training-set sizes for the data curve. Each subset is the first k examples of one fixed
    order, so smaller subsets are nested in larger ones and all are disjoint from val/test."""
    return sorted({max(minimum, min(n, round(f * n))) for f in fractions})


def compare_vision(opts: CompareOptions, bar: tqdm) -> Comparison:
    from e2e.stepwise.hog import HogConfig, fit_hog_classifier, hog_accuracy
    from e2e.stepwise.layerwise import train_layerwise
    from e2e.tasks.vision.task import VisionTask

    overrides = ([f"data.source={opts.data}"] if opts.data else []) + list(opts.overrides)
    if opts.quick:
        overrides = ["train.epochs=4", *overrides]
    cfg = load_config(None, "vision", overrides)
    task = VisionTask()
    splits = task.build_data(cfg)  # the same split for both sides
    if not isinstance(splits.train, TensorData):
        raise E2EError("e2e compare vision needs an in-memory source (fashion-mnist, mnist, "
                       "digits or IDX files); image folders are not supported yet")
    train_x, train_y = splits.train.tensors["x"], splits.train.tensors["y"]
    test_x, test_y = splits.test.tensors["x"], splits.test.tensors["y"]
    sizes = nested_sizes(len(train_y), opts.fractions)
    hog_cfg = HogConfig()
    rows: list[Row] = []
    for n in sizes:
        bar.set_description(f"vision: end to end on {n} examples")
        out = opts.out / "vision" / f"e2e-{n}"
        r = api.train(config=with_overrides(cfg, f"data.limit={n}"), out=out, quiet=True)
        model = api.load(out)
        started = time.time()
        model.evaluate("test")
        infer = (time.time() - started) / len(test_y)
        rows.append(Row("end to end (CNN)", n, r["test/accuracy"], r["train_seconds"],
                        1000 * infer, f"{r['parameters']:,} parameters"))
        bar.update()
        bar.set_description(f"vision: HOG + linear on {n} examples")
        classifier, n_features, seconds = fit_hog_classifier(train_x[:n], train_y[:n], hog_cfg)
        accuracy, infer = hog_accuracy(classifier, test_x, test_y, hog_cfg)
        rows.append(Row("stepwise: HOG + logistic regression", n, accuracy, seconds,
                        1000 * infer, f"{n_features:,} features"))
        bar.update()
    bar.set_description("vision: layer-wise CNN on all examples")
    lw = train_layerwise(cfg, opts.out / "vision" / "layerwise")
    rows.append(Row("stepwise: same CNN, layer-wise", len(train_y), lw["test/accuracy"],
                    lw["train_seconds"], float("nan"), f"{lw['parameters']:,} parameters"))
    bar.update()
    stages = ", ".join(f"after block {s['depth']}: {s['test/accuracy']:.4f}"
                       for s in lw["stages"])
    notes = (f"Data: {splits.info['source']}, {len(train_y):,} training / {len(test_y):,} test "
             f"examples; quality = test accuracy. Both CNN rows train for {cfg.train.epochs} "
             f"epochs in total (layer-wise: split evenly over {len(lw['stages'])} stages; "
             f"test accuracy {stages}).")
    return Comparison(rows, notes)


def vision_jobs(opts: CompareOptions) -> int:
    return 2 * len(opts.fractions) + 1


def _lazy(app: str, name: str) -> Callable:
    """A function of `e2e.stepwise.<app>`, imported when called: each application's
    dependencies (librosa, gymnasium, apertium) load only when it is compared."""
    def call(*args):
        return getattr(importlib.import_module(f"e2e.stepwise.{app}"), name)(*args)
    return call


# app -> (comparison, number of progress-bar steps it takes for the given options)
COMPARISONS: dict[str, tuple[Callable[[CompareOptions, tqdm], Comparison],
                             Callable[[CompareOptions], int]]] = {
    "vision": (compare_vision, vision_jobs),
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
    if opts.quick:
        opts.fractions = (0.1, 0.3, 1.0)
    opts.out.mkdir(parents=True, exist_ok=True)
    sections = [f"# End to end vs stepwise\n\nCommand: `e2e compare {' '.join(apps)}"
                + (f" --data {opts.data}" if opts.data else "")
                + (" --quick" if opts.quick else "") + "`\n"]
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
    lines += ["", f"With all {largest:,} training examples the best is **{best.side}** "
              f"({best.quality:.4f}).", ""]
    wins = []
    for n in sorted({r.train_examples for r in rows} - {0}):
        at_n = [r for r in rows if r.train_examples == n] + fixed
        if len(at_n) > 1:
            wins.append(f"{n:,}: {metric.best(at_n).side}")
    lines += ["Winner by training-set size: " + "; ".join(wins) + ".", "",
              f"![data curve]({plot})", ""]
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


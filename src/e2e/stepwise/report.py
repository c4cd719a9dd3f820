"""What a comparison reports: the systems trained, what quality means, the data curve's sizes.

Every `e2e.stepwise.<app>.compare_<app>` returns a `Comparison`; `e2e.compare` turns it
into the report's table and plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CompareOptions:
    out: Path
    data: str | None = None
    quick: bool = False  # a small version that finishes in minutes
    # the data curve's training-set sizes, as fractions of the training data; () = the
    # default: 1/3/10/30/100%, or 10/30/100% with quick (driving counts tracks instead)
    fractions: tuple[float, ...] = ()
    overrides: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.fractions:
            self.fractions = (0.1, 0.3, 1.0) if self.quick else (0.01, 0.03, 0.1, 0.3, 1.0)


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
    details: str = ""  # Markdown after the main table and plot (e.g. a robustness table)


def nested_sizes(n: int, fractions: tuple[float, ...], minimum: int = 20) -> list[int]:
    """Training-set sizes for the data curve. Each subset is the first k examples of one fixed
    order, so smaller subsets are nested in larger ones and all are disjoint from val/test."""
    return sorted({max(minimum, min(n, round(f * n))) for f in fractions})

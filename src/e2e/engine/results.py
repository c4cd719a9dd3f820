"""Result dicts: which keys are headlines."""

from __future__ import annotations

from typing import Any


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a results or metrics dict: `test/accuracy`, not the details
    (`test/class_accuracy/Coat`, one slash more) nor bookkeeping keys without a split."""
    return {k: v for k, v in results.items() if isinstance(k, str) and k.count("/") == 1}


def is_detail(key: Any) -> bool:
    """A per-class or per-track number (`val/track_score/1003`): kept in results.json and
    metrics.csv, left out of summaries."""
    return isinstance(key, str) and key.count("/") > 1

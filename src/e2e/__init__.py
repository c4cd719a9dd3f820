"""e2e: train neural networks end to end, and test the claim against stepwise pipelines.

    import e2e
    e2e.train("vision", out="runs/fmnist")     # or e2e.load(RUN), e2e.load_config(...)

The names below load on first use, so that `import e2e` (and the CLI's `--help`) does not
pay for torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
_LAZY = {"train": "e2e.api", "load": "e2e.api", "Predictor": "e2e.api",
         "Config": "e2e.config", "TrainConfig": "e2e.config", "E2EError": "e2e.errors",
         "load_config": "e2e.tasks", "register": "e2e.tasks"}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'e2e' has no attribute '{name}'")

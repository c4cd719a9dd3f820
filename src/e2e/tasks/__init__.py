"""Applications. Each module holds one task; `get_task(name)` returns an instance."""

from __future__ import annotations

import importlib

from e2e.errors import E2EError

TASKS = {"vision": "e2e.tasks.vision.task:VisionTask",
         "speech": "e2e.tasks.speech.task:SpeechTask",
         "text": "e2e.tasks.text.task:TextTask",
         "driving": "e2e.tasks.driving.task:DrivingTask"}


def get_task(name: str):
    if name not in TASKS:
        raise E2EError(f"unknown task '{name}'; available: {', '.join(sorted(TASKS))}")
    module, cls = TASKS[name].split(":")
    return getattr(importlib.import_module(module), cls)()

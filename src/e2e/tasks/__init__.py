"""The registry of applications, and configs built from a task's defaults.

Each built-in application is one package under `e2e/tasks/`, one line in TASKS. Any other
package adds applications the way the stepwise package adds its `speech-mfcc`: an entry point
in the group `e2e.tasks` (name = "module:TaskClass") and, for configs built without torch, one
in `e2e.task_configs` (name = "module" with `default_config(task)`), in its pyproject.toml.
Nothing here imports torch: `e2e --help` and `e2e config` stay fast, and an application's
modules load only when it is used.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from pathlib import Path

from e2e import recipes
from e2e.config import Config, merge, read_yaml
from e2e.errors import E2EError
from e2e.extras import missing_extra

# name -> "module:Class" of the task, then the installed packages' entry points. Tests and
# users may register more (see register).
TASKS = {"vision": "e2e.tasks.vision.task:VisionTask",
         "speech": "e2e.tasks.speech.task:SpeechTask",
         "text": "e2e.tasks.text.task:TextTask",
         "driving": "e2e.tasks.driving.task:DrivingTask",
         **{ep.name: ep.value for ep in entry_points(group="e2e.tasks")}}
# name -> the module of its config dataclasses and training recipe, which imports no torch:
# configs are built and checked without loading the application.
CONFIGS = {"vision": "e2e.tasks.vision.config",
           "speech": "e2e.tasks.speech.config",
           "text": "e2e.tasks.text.config",
           "driving": "e2e.tasks.driving.config",
           **{ep.name: ep.value for ep in entry_points(group="e2e.task_configs")}}
# name -> the module that adds the application's own commands to the CLI: it has
# `add_parsers(sub, data_sub)`, each parser with `set_defaults(handler=...)`, and imports
# nothing heavy at the top (e2e --help loads every one of them).
CLIS = {"vision": "e2e.tasks.vision.cli",
        "speech": "e2e.tasks.speech.cli",
        "text": "e2e.tasks.text.cli",
        "driving": "e2e.tasks.driving.cli"}


def register(name: str, target: str | type) -> None:
    """Add an application: `target` is a Task class or its "module:Class" path."""
    TASKS[name] = target


def get_task(name: str):
    """A fresh instance of the task registered as `name`."""
    if name not in TASKS:
        close = difflib.get_close_matches(name, list(TASKS), 1)
        raise E2EError(f"unknown application '{name}'"
                       + (f" (did you mean '{close[0]}'?)" if close else "")
                       + f"; available: {', '.join(TASKS)}")
    target = TASKS[name]
    if isinstance(target, str):
        module, cls = target.split(":")
        try:
            target = getattr(importlib.import_module(module), cls)
        except ImportError as e:  # an application whose extra is not installed
            if missing_extra(e) is None:
                raise
            raise E2EError(f"the {name} task: {missing_extra(e)}") from None
    return target()


def default_config(task: str) -> Config:
    """The task's own defaults, which ARE its measured recipe: its data and model configs and
    its training settings (a TrainConfig subclass)."""
    if task in CONFIGS:
        return importlib.import_module(CONFIGS[task]).default_config(task)
    return get_task(task).default_config()


def load_config(path: str | Path | None = None, task: str | None = None,
                overrides: list[str] | None = None) -> Config:
    """Config from the task's defaults, then a YAML file (a path, a run directory, or the name
    of one of the application's recipes in e2e/recipes/), then `key=value` overrides."""
    if path is not None:
        path = recipes.find(path, task)
    raw = read_yaml(path) if path is not None else {}
    task = task or raw.get("task") or "vision"
    return merge(default_config(task), raw, overrides, source=str(path))

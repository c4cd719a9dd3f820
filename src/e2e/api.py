"""The Python API; the CLI is a thin layer over these functions.

    import e2e
    result = e2e.train("vision", out="runs/fmnist", overrides=["train.epochs=2"])
    model = e2e.load("runs/fmnist")
    model.predict(["shoe.png"])        # -> [[("Sneaker", 0.97), ...]]
    model.evaluate()                   # -> {"test/accuracy": ...}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from e2e.config import Config, merge
from e2e.engine.restore import load_run, restore_model
from e2e.engine.run import RunDir
from e2e.engine.weights import FILENAME as WEIGHTS_FILE
from e2e.engine.weights import exported_config
from e2e.tasks import TASKS, default_config, get_task, load_config


def train(task: str | None = None, out: str | Path = "runs/latest",
          config: str | Path | Config | None = None, overrides: list[str] | None = None,
          data: str | None = None, resume: bool = False, quiet: bool = False) -> dict:
    """Train a task end to end, as the application trains (`Task.train`: the engine's fit;
    for driving with data.dagger_rounds, rounds of it); returns the final results (also in
    OUT/results.json)."""
    if resume:
        RunDir(out).require(TASKS)
        cfg = load_config(RunDir(out).config, None, overrides)
    elif isinstance(config, Config):
        cfg = config
    else:
        cfg = load_config(config, task, ([f"data.source={data}"] if data else []) +
                          list(overrides or []))
    return get_task(cfg.task).train(cfg, out, resume=resume, quiet=quiet)


class Predictor:
    """A trained run, loaded from its directory alone: predict, evaluate, inspect.

    `task` is the application's training side (data, evaluation), `serving` its deployment
    side (predict, output formats, export, demo page); `info` what the model knows of its
    data (the task's Info)."""

    def __init__(self, run: str | Path, device: str = "cpu", checkpoint: str = "best"):
        self.run = RunDir(run)
        exported = None if self.run.config.exists() else exported_config(self.run.path)
        if exported is not None:  # a run reduced to model.safetensors: its config is inside
            self.cfg = merge(default_config(exported["task"]), exported,
                             source=str(self.run.path / WEIGHTS_FILE))
        else:
            self.run.require(TASKS)
            self.cfg = load_config(self.run.config)
        self.task = get_task(self.cfg.task)
        self.serving = self.task.Serving()
        if exported is None:
            self.cfg, self.model, self.info, self.checkpoint = load_run(self.task, run, device,
                                                                        checkpoint)
        else:
            self.checkpoint = self.run.path / WEIGHTS_FILE
            self.model, self.info = restore_model(self.task, self.cfg, self.checkpoint, device)

    def predict(self, raw: Any, **kwargs) -> Any:
        with torch.no_grad():
            return self.serving.predict(self.model, raw, self.cfg, self.info, **kwargs)

    def evaluate(self, split: str = "test", data: str | None = None) -> dict[str, float]:
        """Re-evaluate on a split of the run's data (or of `data`, a source or folder)."""
        if data is not None:
            self.cfg.data.source = data
        splits = self.task.build_data(self.cfg, self.info)
        self.info.check_data(splits.info)
        with torch.no_grad():
            metrics = self.task.evaluate(self.model, getattr(splits, split), self.cfg, self.info)
        return {f"{split}/{k}": v for k, v in metrics.items()}

    def results(self) -> dict:
        return json.loads(self.run.results.read_text()) if self.run.results.exists() else {}


def load(run: str | Path, device: str = "cpu") -> Predictor:
    return Predictor(run, device=device)

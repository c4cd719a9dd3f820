"""A trained model back from its run directory: its config, the task's model, its info.

The engine's half of `e2e.load`. It is handed the task object, so it knows no application;
an application's own commands and DAgger reload runs through it without the public API,
and a run of another application is refused with a message that says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from e2e.config import Config, merge, read_yaml
from e2e.engine.checkpoint import load_checkpoint, load_model_state
from e2e.engine.run import RunDir
from e2e.engine.weights import load_as_checkpoint
from e2e.errors import E2EError


def checkpoint_path(run: RunDir, checkpoint: str = "best") -> Path:
    """`best` (RUN/model.safetensors; a run of an older e2e: checkpoints/best.pt; falling back
    to `last`), `last` (falling back to the best weights of a run kept as those alone), or a
    checkpoint file."""
    if checkpoint == "best":
        return run.weights()
    if checkpoint == "last":
        return run.last if run.last.exists() else run.weights()
    return Path(checkpoint)


def restore_model(task, cfg: Config, path: Path, device: str = "cpu") -> tuple[nn.Module, Any]:
    """The task's model with the weights in `path`, in eval mode, and the data info saved
    with them (the task's Info; saved as its dict form)."""
    ckpt = load_as_checkpoint(path, device) if path.suffix == ".safetensors" else \
        load_checkpoint(path, map_location=device)
    if not isinstance(ckpt.get("info"), dict) or "model" not in ckpt:
        raise E2EError(f"{path} is a checkpoint of an older or foreign format (it lacks "
                       "the model's data info); retrain it with this version of e2e")
    if ckpt.get("task", cfg.task) != cfg.task:
        raise E2EError(f"{path} holds a '{ckpt['task']}' model but the run's config says "
                       f"task '{cfg.task}'")
    info = task.Info.from_dict(ckpt["info"])
    model = task.build_model(cfg, info).to(device)
    load_model_state(model, ckpt["model"], path)
    return model.eval(), info


def load_run(task, run: str | Path, device: str = "cpu", checkpoint: str = "best",
             command: str = "") -> tuple[Config, nn.Module, Any, Path]:
    """(config, model in eval mode, data info, checkpoint path) of a run of `task`."""
    run_dir = RunDir(run)
    run_dir.require()
    raw = read_yaml(run_dir.config)
    if raw.get("task", task.name) != task.name:
        raise E2EError(f"{run} is a '{raw['task']}' run; "
                       f"{'`e2e ' + command + '`' if command else 'this'} needs a run of the "
                       f"{task.name} application (e2e train {task.name} ...)")
    cfg = merge(task.default_config(), raw, source=str(run_dir.config))
    path = checkpoint_path(run_dir, checkpoint)
    if not path.exists():
        raise E2EError(f"checkpoint {path} does not exist")
    model, info = restore_model(task, cfg, path, device)
    return cfg, model, info, path

"""The task contract: every hook that any part of e2e calls, its meaning and its default.

An application is a subclass of `Task` in its own package under `e2e/tasks/`, registered by
one line in `e2e/tasks/__init__.py`. The engine, the API, export, the demo server and the
CLI call only what is declared here: they never probe a task with `hasattr` and never branch
on its name. A hook an application has no use for keeps its default.

    who calls            hooks
    engine.fit           default_train, build_data, setup, build_model, collate,
                         prepare_batch, loss, evaluate, report
    e2e.load / predict   setup, build_model, predict, predict_inputs, format_prediction
    e2e evaluate         evaluate, signature
    e2e export           export_specs, from_exported
    e2e serve            demo_input, demo_page, demo_answer
    e2e train --dagger   train_with_expert
    the CLI              CLI (a module adding the application's own commands; see below)

The application's own commands (`e2e transcribe`, `e2e drive`, ...) live in its `cli.py`,
named by the registry, with `add_parsers(sub, data_sub) -> {command: handler}`; that module
imports nothing heavy at the top, so `e2e --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from e2e.config import Config, TrainConfig
from e2e.engine.batching import TensorData
from e2e.errors import E2EError

Split = TensorData | Dataset


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    # What the model needs to know about the data (classes, input shape, ...). Saved in every
    # checkpoint so a run can be loaded and served without its dataset.
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportSpec:
    """One graph to export: a module, its named example inputs, and how to make more."""

    module: nn.Module
    inputs: dict[str, torch.Tensor]  # example inputs, in the order `module.forward` takes them
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)  # axes that may vary
    # Random inputs of valid values and dtypes (the default draws like the example).
    random: Callable[[torch.Generator], dict[str, torch.Tensor]] | None = None
    # Real inputs from a batch of the task's test split.
    from_batch: Callable[[dict], dict[str, torch.Tensor]] | None = None
    # True: the graph needs the torch.export-based exporter (the TorchScript-based one bakes
    # some dynamic sizes, e.g. nn.MultiheadAttention's reshapes, into constants).
    dynamo: bool = False

    def random_inputs(self, g: torch.Generator) -> dict[str, torch.Tensor]:
        if self.random is not None:
            return self.random(g)
        return {k: _random_like(v, g) for k, v in self.inputs.items()}


def _random_like(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return torch.randint(0, 256, x.shape, generator=g, dtype=torch.uint8)
    if x.is_floating_point():
        return torch.randn(x.shape, generator=g, dtype=x.dtype)
    raise E2EError(f"no default random input for dtype {x.dtype}; give ExportSpec.random")


class Task:
    """One application. Subclasses set the class attributes and implement the hooks marked
    *required*; every other hook has a working default."""

    name: ClassVar[str] = ""
    DataConfig: ClassVar[type]  # dataclass of the `data` section
    ModelConfig: ClassVar[type]  # dataclass of the `model` section
    metrics: ClassVar[tuple[str, ...]] = ()  # what `evaluate` returns; train.monitor is one
    channels_last: ClassVar[bool] = False  # conv nets train faster with NHWC on CPU and GPU
    # The demo page's kind of input: image | audio | text | track; None = no demo page.
    demo_input: ClassVar[str | None] = None

    def __init__(self) -> None:
        self.signature = ""  # how the last evaluation scored, e.g. sacrebleu's signature

    # ---- configuration ----
    def default_config(self) -> Config:
        """The whole default config: the task's data and model sections, its recipe."""
        return Config(task=self.name, train=self.default_train(), data=self.DataConfig(),
                      model=self.ModelConfig())

    def default_train(self) -> TrainConfig:
        """The training recipe this application uses by default."""
        return TrainConfig(monitor=f"val/{self.metrics[0]}" if self.metrics else "val/loss")

    def setup(self, cfg: Config, info: dict[str, Any]) -> None:
        """Bind the config and the data's info before the model is built (for training,
        loading, export and serving alike)."""
        self._cfg, self._info = cfg, info

    # ---- training (engine.fit) ----
    def build_data(self, cfg: Config) -> Splits:
        """*Required.* Train, validation and test splits of raw examples, and their info."""
        raise NotImplementedError

    def build_model(self, cfg: Config, info: dict[str, Any]) -> nn.Module:
        """*Required.* A model that reads raw input."""
        raise NotImplementedError

    def collate(self, examples: list[dict]) -> dict:
        """Merge examples of a Dataset split into a batch (padding, say); TensorData splits
        are batched by slicing and never come here."""
        return default_collate(examples)

    def prepare_batch(self, batch: dict, train: bool) -> dict:
        """A batch already on the device -> what `loss` takes (augmentation goes here)."""
        return batch

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        """*Required.* The one training signal; backward goes through every layer."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, split: Split, cfg: Config) -> dict[str, float]:
        """*Required.* Metrics on a split; the engine calls it in eval mode under no_grad.
        Names with one more slash (`class_accuracy/Coat`) are details, not headlines."""
        raise NotImplementedError

    def report(self, model: nn.Module, split: Split, cfg: Config, run_dir: Path) -> str:
        """Markdown added to RUN/report.md after the test evaluation (and any plots it
        writes into run_dir)."""
        return ""

    # ---- using a trained model ----
    def predict(self, model: nn.Module, raw: Any, info: dict[str, Any], **options) -> list:
        """*Required.* Raw inputs -> one answer each."""
        raise NotImplementedError

    def predict_inputs(self, paths: list[str]) -> list:
        """What `e2e predict RUN INPUT...` passes to `predict`: by default the files
        themselves (images, audio, frames); a text application reads their lines."""
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise E2EError(f"input file {missing[0]} does not exist")
        return list(paths)

    def format_prediction(self, raw: Any, answer: Any) -> str:
        """One line of `e2e predict` output for one input and its answer."""
        return f"{raw}: {answer}"

    def prediction_json(self, raw: Any, answer: Any) -> Any:
        """The same, for `e2e predict --json`."""
        return {"input": str(raw), "answer": answer}

    # ---- export (e2e export) ----
    def export_specs(self, model: nn.Module, info: dict[str, Any]) -> dict[str, ExportSpec]:
        """The graphs that make up the model, each with example inputs."""
        raise E2EError(f"the {self.name} application does not support export")

    def from_exported(self, modules: dict[str, nn.Module], info: dict[str, Any]) -> nn.Module:
        """Assemble exported graphs into what `predict` takes (default: the one graph)."""
        if len(modules) != 1:
            raise E2EError(f"the {self.name} task exports {len(modules)} graphs and must say "
                           "how to assemble them (Task.from_exported)")
        return next(iter(modules.values()))

    # ---- the demo page (e2e serve) ----
    def demo_page(self, info: dict[str, Any]) -> dict[str, Any]:
        """Extra values for the page template (e.g. the tracks to pick from)."""
        return {}

    def demo_answer(self, model: nn.Module, raw: Any, info: dict[str, Any]) -> dict:
        """One input from the page -> its JSON answer: {"top": [...]}, {"text": ...} or
        {"gif": data-URL, "note": ...}."""
        raise E2EError(f"the {self.name} application has no demo page")

    # ---- learning from an expert (e2e train --dagger N) ----
    def train_with_expert(self, cfg: Config, out: str | Path, rounds: int,
                          quiet: bool = False) -> dict:
        """Rounds of interactive imitation (DAgger): only applications with an expert to
        ask (driving) have them."""
        raise E2EError(f"--dagger needs an application with an expert to ask (driving); "
                       f"'{self.name}' has none")

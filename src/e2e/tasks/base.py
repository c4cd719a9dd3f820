"""The task contract: every hook that any part of e2e calls, its meaning and its default.

An application is two classes in its own package under `e2e/tasks/`: a `Task` (the training
side: configs, data, model, loss, evaluation, report) and a `Serving` (the deployment side:
predict, output formats, export, demo page), which the task names as `Task.Serving`. What
the model needs to know about its data is one `Info` dataclass per application, named as
`Task.Info`, saved as JSON in checkpoints. Applications are registered by name in
`e2e.tasks.TASKS` (the built-in four) or by a package's entry point in the group `e2e.tasks`.

Hooks are stateless: no hook stores anything on the task or serving object; each takes what
it needs (`cfg`, `info`) as arguments. The engine, the API, export, the demo server and the
CLI call only what is declared here: they never probe with `hasattr` and never branch on an
application's name. A hook an application has no use for keeps its default.

    who calls              hooks
    e2e train / e2e.train  Task.train (default: engine.fit; driving: DAgger rounds of fit)
    engine.fit             Task.build_data, build_model, collate, prepare_batch, loss,
                           evaluate, report; Info.to_dict (checkpoints, model.safetensors)
    e2e config             Task.default_config, default_train
    e2e.load (restore)     Task.build_model; Info.from_dict
    e2e evaluate           Task.build_data, evaluate, signature; Info.check_data
    e2e predict            Serving.predict_inputs, predict, format_prediction, prediction_json
    e2e inspect            Info.describe
    e2e export             Serving.export_specs, from_exported; Info.to_dict / from_dict
    e2e serve              Serving.demo_input, demo_page, demo_answer
    the CLI                CLI (a module adding the application's own commands; see below)

The application's own commands (`e2e transcribe`, `e2e drive`, ...) live in its `cli.py`,
named by the registry, with `add_parsers(sub, data_sub) -> {command: handler}`; that module
imports nothing heavy at the top, so `e2e --help` stays fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from torch import nn
from torch.utils.data import Dataset, default_collate

from e2e.config import Config, TrainConfig
from e2e.data.columns import ColumnSpec
from e2e.engine.batching import TensorData
from e2e.errors import E2EError

Split = TensorData | Dataset


@dataclass(kw_only=True)
class Info:
    """What the model needs to know about its data (classes, input shape, vocabulary, ...):
    one dataclass per application. Saved in every checkpoint and in model.safetensors as
    `to_dict()` (JSON), so a run loads and serves without its dataset. Fields hold JSON
    types (lists, not tuples), so the JSON round trip gives back an equal Info."""

    source: str = ""  # where the data came from, in words (shown by e2e inspect)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | Info) -> Self:
        """From `to_dict`'s form, which is also the plain dict that runs saved before Info
        was typed hold (keys this version no longer has are ignored)."""
        if isinstance(d, cls):
            return d
        if not isinstance(d, Mapping):
            raise E2EError(f"the saved data info is a {type(d).__name__}, not a mapping; the "
                           "checkpoint is damaged or of a foreign format")
        known = {f.name for f in dataclasses.fields(cls)}
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if k not in d]
        if missing:
            raise E2EError(f"the saved data info lacks {', '.join(missing)}, which "
                           f"{cls.__name__} needs; retrain the run with this version of e2e")
        return cls(**{k: v for k, v in d.items() if k in known})

    def check_data(self, data: Info) -> None:
        """Raise E2EError when `data` (the info of freshly built splits) cannot be scored by
        a model trained with this info (e.g. other classes)."""

    def describe(self) -> str:
        """One line about the data, for `e2e inspect`."""
        return f"data: {self.source}"


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    info: Info = field(default_factory=Info)  # what the model needs to know about the data


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


class Serving:
    """The deployment side of one application: a trained model (and its config and info)
    answering raw inputs, in the CLI, the Python API, exported graphs and the demo page.
    Subclasses implement `predict`; every other hook has a working default."""

    # The demo page's kind of input: image | audio | text | track; None = no demo page.
    demo_input: ClassVar[str | None] = None

    def predict(self, model: nn.Module, raw: Any, cfg: Config, info: Info, **options) -> list:
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
    def export_specs(self, model: nn.Module, cfg: Config, info: Info) -> dict[str, ExportSpec]:
        """The graphs that make up the model, each with example inputs."""
        raise E2EError(f"the {cfg.task} application does not support export")

    def from_exported(self, modules: dict[str, nn.Module], cfg: Config, info: Info
                      ) -> nn.Module:
        """Assemble exported graphs into what `predict` takes (default: the one graph)."""
        if len(modules) != 1:
            raise E2EError(f"the {cfg.task} task exports {len(modules)} graphs and must say "
                           "how to assemble them (Serving.from_exported)")
        return next(iter(modules.values()))

    # ---- the demo page (e2e serve) ----
    def demo_page(self, cfg: Config, info: Info) -> dict[str, Any]:
        """Extra values for the page template (e.g. the classes, the tracks to pick from)."""
        return {}

    def demo_answer(self, model: nn.Module, raw: Any, cfg: Config, info: Info) -> dict:
        """One input from the page -> its JSON answer: {"top": [...]}, {"text": ...} or
        {"gif": data-URL, "note": ...}."""
        raise E2EError(f"the {cfg.task} application has no demo page")


class Task:
    """The training side of one application. Subclasses set the class attributes and
    implement the hooks marked *required*; every other hook has a working default."""

    name: ClassVar[str] = ""
    DataConfig: ClassVar[type]  # dataclass of the `data` section
    ModelConfig: ClassVar[type]  # dataclass of the `model` section
    Info: ClassVar[type[Info]] = Info  # what build_data learns about the data
    Serving: ClassVar[type[Serving]] = Serving  # the deployment side
    metrics: ClassVar[tuple[str, ...]] = ()  # what `evaluate` returns; train.monitor is one
    channels_last: ClassVar[bool] = False  # conv nets train faster with NHWC on CPU and GPU

    # ---- configuration ----
    def default_config(self) -> Config:
        """The whole default config: the task's data and model sections, its recipe."""
        return Config(task=self.name, train=self.default_train(), data=self.DataConfig(),
                      model=self.ModelConfig())

    def default_train(self) -> TrainConfig:
        """The training recipe this application uses by default."""
        return TrainConfig(monitor=f"val/{self.metrics[0]}" if self.metrics else "val/loss")

    def train(self, cfg: Config, out: str | Path, resume: bool = False,
              quiet: bool = False) -> dict:
        """How this application trains: one `engine.fit` by default (driving runs rounds
        of fit). Returns the final results."""
        from e2e.engine import fit

        return fit(self, cfg, out, resume=resume, quiet=quiet)

    # ---- training (engine.fit) ----
    def build_data(self, cfg: Config, info: Info | None = None) -> Splits:
        """*Required.* Train, validation and test splits of raw examples, and their info.
        `info`: a trained model's, when its data is rebuilt to evaluate it (what the model
        learned from its own data, such as a text vocabulary, is kept)."""
        raise NotImplementedError

    def build_model(self, cfg: Config, info: Info) -> nn.Module:
        """*Required.* A model that reads raw input."""
        raise NotImplementedError

    def collate(self, examples: list[dict]) -> dict:
        """Merge examples of a Dataset split into a batch (padding, say); TensorData splits
        are batched by slicing and never come here."""
        return default_collate(examples)

    def prepare_batch(self, batch: dict, train: bool, cfg: Config, info: Info) -> dict:
        """A batch already on the device -> what `loss` takes (augmentation goes here)."""
        return batch

    def loss(self, model: nn.Module, batch: dict, cfg: Config, info: Info) -> torch.Tensor:
        """*Required.* The one training signal; backward goes through every layer."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, split: Split, cfg: Config, info: Info
                 ) -> dict[str, float]:
        """*Required.* Metrics on a split; the engine calls it in eval mode under no_grad.
        Names with one more slash (`class_accuracy/Coat`) are details, not headlines."""
        raise NotImplementedError

    def signature(self, cfg: Config) -> str:
        """How `evaluate` scores, for readers comparing numbers (e.g. sacrebleu's
        signature); printed by `e2e evaluate` when not empty."""
        return ""

    def report(self, model: nn.Module, split: Split, cfg: Config, info: Info, run_dir: Path,
               metrics: dict[str, float]) -> str:
        """Markdown added to RUN/report.md after the test evaluation, whose `metrics`
        (without the `test/` prefix) it is given (and any plots it writes into run_dir)."""
        return ""

    # ---- a corpus on disk (e2e data prepare; data.source=FOLDER streams it) ----
    def corpus_columns(self, cfg: Config, meta: dict) -> dict[str, ColumnSpec]:
        """The columns of this application's prepared corpus (data/columns.py); `meta` is
        what corpus_rows or corpus_scan found (e.g. the image shape)."""
        raise E2EError(f"the {cfg.task} application has no on-disk corpus form "
                       "(e2e data prepare)")

    def corpus_rows(self, cfg: Config) -> tuple[dict[str, tuple[int, Callable]], dict]:
        """The application's own data as columns: {split: (count, rows)}, where rows() yields
        one {column: value} per example, and the meta to keep in columns.json."""
        raise E2EError(f"the {cfg.task} application cannot write its own data as a corpus")

    def corpus_fields(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """What a user's corpus maps to the columns: {column: what it holds} and the columns
        a record must have (`e2e data prepare APP --from CORPUS --column COLUMN=FIELD`)."""
        return {}, ()

    def corpus_scan(self, cfg: Config, splits: dict[str, Any]) -> dict:
        """A pass over a user's mapped records before writing ({split: iterator of (index,
        record)}), for what must be known first (e.g. the class names); the meta."""
        return {}

    def corpus_example(self, record: dict, cfg: Config, base: Path, meta: dict,
                       split: str) -> dict:
        """One mapped record of `split` of a user's corpus -> {column: value}; relative file
        paths are under `base`. A bad record raises E2EError saying what is wrong with it."""
        raise E2EError(f"the {cfg.task} application cannot read a user's corpus")

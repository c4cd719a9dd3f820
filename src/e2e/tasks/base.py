"""The shape every application has. The engine sees only this.

A task turns its raw source into splits of raw examples, builds a model that reads
raw input, gives the one loss, evaluates, and maps raw input to an answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from e2e.config import Config, TrainConfig
from e2e.engine.batching import TensorData

Split = TensorData | Dataset


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    # What the model needs to know about the data (classes, input shape, ...). Saved in every
    # checkpoint so a run can be loaded and served without its dataset.
    info: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    name: ClassVar[str]
    DataConfig: ClassVar[type]
    ModelConfig: ClassVar[type]
    metrics: ClassVar[tuple[str, ...]]  # names `evaluate` returns, checked against train.monitor
    channels_last: ClassVar[bool]
    # Optional: `collate(list_of_examples) -> batch` for Dataset splits (padding, say).

    def default_train(self) -> TrainConfig: ...
    def build_data(self, cfg: Config) -> Splits: ...
    def setup(self, cfg: Config, info: dict[str, Any]) -> None: ...  # bind config + data info
    def build_model(self, cfg: Config, info: dict[str, Any]) -> nn.Module: ...
    def prepare_batch(self, batch: dict, train: bool) -> dict: ...  # on device; augmentation
    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor: ...
    def evaluate(self, model: nn.Module, split: Split, cfg: Config) -> dict[str, float]: ...
    def predict(self, model: nn.Module, raw: Any, info: dict[str, Any]) -> Any: ...
    def report(self, model: nn.Module, split: Split, cfg: Config, run_dir: Path) -> str: ...

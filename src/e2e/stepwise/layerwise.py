"""Vision, layer by layer: the same CNN as the end-to-end model, trained greedily.

Stage k trains block k (stem = block 1) plus a temporary linear head on top, with blocks
1..k-1 frozen from the stages before; the last stage's head is the final classifier. Every
stage is an ordinary run of the one engine. Gradient-flow checking is switched off for these
runs on purpose: frozen layers that never see the final loss are exactly what makes this
training stepwise rather than end to end.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from torch import nn

from e2e.config import Config
from e2e.engine import fit
from e2e.tasks.vision import augment
from e2e.tasks.vision.info import VisionInfo
from e2e.tasks.vision.model import ResNetSmall
from e2e.tasks.vision.task import VisionTask


class GreedyStage(nn.Module):
    """Blocks 1..depth of `full` (all but the last frozen, in eval mode) + a temporary head."""

    def __init__(self, full: ResNetSmall, depth: int, classes: int):
        super().__init__()
        self.full = full  # shared across stages: training a stage trains the full net's block
        self.depth = depth
        blocks = self.blocks()
        for block in blocks[:-1]:
            block.requires_grad_(False)
        blocks[-1].requires_grad_(True)
        width = full.head.in_features if depth == len(self.all_blocks()) else \
            _out_width(blocks[-1])
        self.head = full.head if depth == len(self.all_blocks()) else nn.Linear(width, classes)

    def all_blocks(self) -> list[nn.Module]:
        return [self.full.stem, *self.full.stages]

    def blocks(self) -> list[nn.Module]:
        return self.all_blocks()[: self.depth]

    def train(self, mode: bool = True):
        super().train(mode)
        for block in self.blocks()[:-1]:  # frozen BatchNorm statistics stay frozen
            block.eval()
        return self

    def forward(self, pixels):
        x = self.full.normalize(pixels)
        for block in self.blocks():
            x = block(x)
        return self.head(x.amax(dim=(2, 3)))


class LayerwiseVisionTask(VisionTask):
    """The vision task whose model is one greedy stage of a shared, growing network."""

    def __init__(self, full: ResNetSmall, depth: int):
        super().__init__()
        self.full, self.depth = full, depth

    def build_model(self, cfg: Config, info: VisionInfo) -> nn.Module:
        return GreedyStage(self.full, self.depth, len(info.classes))


def train_layerwise(cfg: Config, out: Path, quiet: bool = True) -> dict:
    """Train the vision CNN of `cfg` greedily, one stage per block, splitting cfg.train.epochs
    evenly between stages (each example is seen as often as in the end-to-end run), on clean
    images: the stepwise baseline, without the end-to-end recipe's data.augment."""
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data,
                                                          augment=augment.off(cfg.data.augment)))
    task = VisionTask()
    splits = task.build_data(cfg)
    full = task.build_model(cfg, splits.info)
    stages = 1 + len(full.stages)
    results: dict = {"stages": [], "train_seconds": 0.0}
    for depth in range(1, stages + 1):
        epochs = math.ceil(cfg.train.epochs / stages)
        stage_train = dataclasses.replace(cfg.train, check_gradflow=False, epochs=epochs)
        stage_cfg = Config(task="vision", train=stage_train, data=cfg.data, model=cfg.model)
        r = fit(LayerwiseVisionTask(full, depth), stage_cfg, out / f"stage{depth}", quiet=quiet)
        results["stages"].append({"depth": depth, "test/accuracy": r["test/accuracy"],
                                  "train_seconds": r["train_seconds"]})
        results["train_seconds"] += r["train_seconds"]
    results["test/accuracy"] = results["stages"][-1]["test/accuracy"]
    results["parameters"] = sum(p.numel() for p in full.parameters())
    results["model"] = full.eval()  # trained greedily, block by block
    return results


def _out_width(block: nn.Module) -> int:
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels

"""The vision application's settings: the `data` and `model` sections of its config and its
training recipe. Nothing here imports torch, so `e2e config` answers at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from e2e.config import Config, TrainConfig


@dataclass
class VisionDataConfig:
    source: str = "fashion-mnist"  # fashion-mnist | mnist | digits | PATH (IDX or class folders)
    val_fraction: float = 0.1  # of the training split, held out to pick `best`
    test_fraction: float = 0.2  # for sources without a test split (digits, folders)
    split_seed: int = 0  # fixes the held-out examples, independent of train.seed
    limit: int = 0  # use only this many training examples; 0 = all
    image_size: int = 32  # folders only: images are resized to this square size
    channels: int = 3  # folders only: 1 = grayscale, 3 = RGB
    skip_bad: bool = False  # folders: skip unreadable images (and count them) instead of failing
    crop_pad: int = 2  # random-crop augmentation: pad by this many pixels; 0 = off
    flip: str = "auto"  # mirror augmentation: auto (when the source allows it) | yes | no
    # Keep the whole dataset, as one uint8 tensor, on the training device (a GPU): batches are
    # then sliced there, with no host-to-device copy per step. In-memory sources only.
    resident: bool = False

    RANGES: ClassVar[dict[str, str]] = {  # checked by e2e.config (interval notation)
        "val_fraction": "(0, 1)", "test_fraction": "(0, 1)", "split_seed": "[0, inf)",
        "limit": "[0, inf)", "image_size": "[4, 4096]", "channels": "[1, 3]",
        "crop_pad": "[0, inf)"}


@dataclass
class VisionModelConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)  # stem width, then one residual stage per width
    # Halve the resolution after the stem, for images of 16 px and more: ~4x fewer FLOPs per
    # image (Fashion-MNIST: 83 instead of 312 MFLOP per training image at these widths).
    stem_pool: bool = True
    dropout: float = 0.0
    label_smoothing: float = 0.1
    tta_flip: bool = True  # average with the mirrored image at test time, where flips are valid

    RANGES: ClassVar[dict[str, str]] = {"widths": "[1, inf)", "dropout": "[0, 1)",
                                        "label_smoothing": "[0, 1)"}


def train_recipe() -> TrainConfig:
    """The training recipe this application uses by default."""
    # Built for time to accuracy on plain CPUs (issue 16; bench/vision.py): the pooled stem
    # makes an epoch ~4x cheaper than the larger model's (configs/vision/accurate.yaml).
    # Measured on Fashion-MNIST: 92.17% test accuracy after 4 epochs, 93.63% after 12.
    return TrainConfig(epochs=18, batch_size=256, lr=4e-3, weight_decay=0.05,
                       monitor="val/accuracy", mode="max")


def default_config(task: str = "vision") -> Config:
    """The whole default config (a stepwise variant of the application passes its own name)."""
    return Config(task=task, train=train_recipe(), data=VisionDataConfig(),
                  model=VisionModelConfig())

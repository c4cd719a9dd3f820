"""The vision application's settings: the `data` and `model` sections of its config and its
training recipe. These defaults ARE the measured recipe (bench/vision.py's `default`); named
variants are overlays in e2e/recipes/vision/. Nothing here imports torch, so `e2e config`
answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from e2e.config import Config, TrainConfig


@dataclass
class VisionAugmentConfig:
    """Training-time changes of the pictures, drawn per image on the whole batch (augment.py):
    what changes when a camera and a scene change. Each `p_*` is the chance that an image gets
    that change; the value beside it is its strength. Off at evaluation."""

    p_contrast: float = 0.0  # contrast scaled by c about the image's mean
    contrast: tuple[float, float] = (0.25, 1.5)  # c, log-uniform in this range
    p_brightness: float = 0.0  # every pixel + b (b in [0, 1] units)
    brightness: float = 0.45  # b uniform in [-brightness, +brightness]
    p_gamma: float = 0.0  # x ** g: non-linear exposure
    gamma: tuple[float, float] = (0.5, 2.0)  # g, log-uniform in this range
    p_invert: float = 0.0  # 1 - x: dark object on a light ground
    p_noise: float = 0.0  # + N(0, s^2) per pixel
    noise: float = 0.25  # s uniform in [0, noise]
    p_blur: float = 0.0  # Gaussian blur
    blur: float = 1.5  # sigma uniform in [0.3, blur] pixels (per 28 pixels of image)
    p_affine: float = 0.0  # rotate, zoom and move in one resampling
    rotate: float = 25.0  # degrees, uniform in [-rotate, +rotate]
    scale: tuple[float, float] = (0.7, 1.4)  # zoom, log-uniform in this range
    shift: float = 3.0  # pixels (per 28), uniform in [-shift, +shift] on each axis
    p_erase: float = 0.0  # a rectangle of random grey (random erasing)
    erase: tuple[float, float] = (0.02, 0.25)  # its area as a fraction of the image

    RANGES: ClassVar[dict[str, str]] = {
        "p_contrast": "[0, 1]", "contrast": "(0, inf)", "p_brightness": "[0, 1]",
        "brightness": "[0, 1]", "p_gamma": "[0, 1]", "gamma": "(0, inf)", "p_invert": "[0, 1]",
        "p_noise": "[0, 1]", "noise": "[0, 1]", "p_blur": "[0, 1]", "blur": "[0.3, 10]",
        "p_affine": "[0, 1]", "rotate": "[0, 180]", "scale": "(0, inf)", "shift": "[0, inf)",
        "p_erase": "[0, 1]", "erase": "(0, 1]"}


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
    augment: VisionAugmentConfig = field(default_factory=VisionAugmentConfig)

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
    # What the network subtracts and divides by first: each image's own mean and std (image:
    # the same answer under any brightness and contrast), or the training set's (dataset).
    input_norm: str = "image"
    # The stem responds to |filter . image|: an image and its negative give the same features,
    # so with input_norm=image a polarity flip (light garment <-> dark) changes nothing.
    polarity_free: bool = True

    RANGES: ClassVar[dict[str, str]] = {"widths": "[1, inf)", "dropout": "[0, 1)",
                                        "label_smoothing": "[0, 1)"}
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"input_norm": ("dataset", "image")}


@dataclass
class VisionTrain(TrainConfig):
    """The training recipe: the engine's defaults (AdamW at 4e-3, one-cycle, batches of 256)
    for 18 epochs, built for time to accuracy on plain CPUs (bench/vision.py)."""

    epochs: int = 18  # the pooled stem makes an epoch ~4x cheaper than the accurate recipe's


def default_config(task: str = "vision") -> Config:
    """The whole default config (a stepwise variant of the application passes its own name)."""
    return Config(task=task, train=VisionTrain(), data=VisionDataConfig(),
                  model=VisionModelConfig())

"""The vision model: a small residual CNN that reads uint8 pixels and normalizes them itself."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.GELU())


class Magnitude(nn.Module):
    """|x|: a filter's response regardless of its sign, as HOG's unsigned gradients."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs()


def polarity_free_stem(c_in: int, c_out: int) -> nn.Sequential:
    """conv -> |.| -> BN: the same features for an image and its negative (with per-image
    normalization, an inverted picture: a dark garment on a light ground)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), Magnitude(),
                         nn.BatchNorm2d(c_out), nn.GELU())


class ResidualStage(nn.Module):
    """conv -> 2x2 max-pool -> residual conv: halves the resolution, changes the width."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = conv_bn(c_in, c_out)
        self.pool = nn.MaxPool2d(2)
        self.residual = conv_bn(c_out, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv(x))
        return x + self.residual(x)


class ResNetSmall(nn.Module):
    """uint8 pixels N x C x H x W -> class logits.

    `stem_pool` halves the resolution right after the first (narrow) convolution: every
    later layer then works on a quarter of the pixels, which is most of the compute of a
    small-image CNN (312 -> 83 MFLOP per training image for Fashion-MNIST at the default
    widths) for little accuracy: the time-to-accuracy trade that the fast recipe makes.
    """

    def __init__(self, channels: int, classes: int, widths: tuple[int, ...],
                 mean: list[float], std: list[float], dropout: float = 0.0,
                 stem_pool: bool = False, per_image: bool = False,
                 polarity_free: bool = False):
        super().__init__()
        self.per_image = per_image
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.stem = (polarity_free_stem if polarity_free else conv_bn)(channels, widths[0])
        if stem_pool:
            self.stem.append(nn.MaxPool2d(2))
        self.stages = nn.Sequential(*[ResidualStage(a, b) for a, b in zip(widths, widths[1:])])
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], classes)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float() / 255
        if self.per_image:  # each image by its own mean and spread: lighting drops out
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            return (x - mean) / (x - mean).square().mean(dim=(1, 2, 3), keepdim=True).add(
                1e-4).sqrt()
        return (x - self.mean) / self.std

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(self.normalize(pixels)))
        return self.head(self.dropout(x.amax(dim=(2, 3))))

"""The test images changed the way a camera and a scene change them: a corruption benchmark.

In the spirit of MNIST-C and ImageNet-C (Mu & Gilmer 2019; Hendrycks & Dietterich 2019), each
corruption is applied to the clean test images at three severities; a classifier's robustness
is its mean accuracy over all corruptions and severities, reported beside its clean accuracy.
Every corruption is deterministic: the same images, corruption, severity and seed give the
same pixels. Pixels are read as [0, 1] (uint8 / 255) and written back as uint8.

| family | corruption | what changes | severity 1 / 2 / 3 |
| --- | --- | --- | --- |
| lighting | brightness | every pixel + b (brighter light) | b = 0.15 / 0.3 / 0.45 |
| lighting | darkness | every pixel x g (less light) | g = 0.7 / 0.5 / 0.35 |
| contrast | contrast | pulled toward mid-grey: (x - 0.5) c + 0.5 | c = 0.6 / 0.4 / 0.25 |
| polarity | inversion | dark object on a light ground: (1 - x) l | ground l = 1 / 0.8 / 0.6 |
| noise | gaussian_noise | + N(0, s^2) per pixel (sensor read noise) | s = 0.08 / 0.16 / 0.26 |
| noise | shot_noise | Poisson(x k) / k (photon noise, k photons at white) | k = 60 / 25 / 10 |
| blur | blur | Gaussian blur (focus, motion) | sigma = 0.6 / 1.0 / 1.4 px |
| position | shift | moved d pixels in a random direction | d = 2 / 3 / 4 px |
| rotation | rotation | turned by +-a degrees (random sign) | a = 10 / 20 / 30 |
| scale | scale | zoomed by z or 1 / z about the centre | z = 0.85 / 0.75 / 0.65 |
| occlusion | occlusion | a square of random grey, at random | side = 8 / 11 / 14 px (of 28) |

Sizes in pixels are for 28 x 28 images and scale with the image (shift, blur, occlusion).
Values outside [0, 1] are clipped, as a sensor clips them. Geometric changes fill what
enters the frame with black (Fashion-MNIST's background).

    e2e robustness RUN                 a trained run on every corruption (this table)
    e2e data vision-corrupted OUT      the corrupted test sets as folders of class folders of
                                       PNGs, for `e2e evaluate RUN --data OUT/NAME-SEVERITY`
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

SEVERITIES = (1, 2, 3)
Fn = Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Corruption:
    name: str
    family: str
    levels: tuple[float, float, float]  # the parameter at severity 1, 2, 3
    apply: Fn  # (images in [0, 1], parameter, generator) -> images (unclipped)


def _per_image(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g)


def _brightness(x: torch.Tensor, b: float, g: torch.Generator) -> torch.Tensor:
    return x + b


def _darkness(x: torch.Tensor, gain: float, g: torch.Generator) -> torch.Tensor:
    return x * gain


def _contrast(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    return (x - 0.5) * c + 0.5


def _inversion(x: torch.Tensor, ground: float, g: torch.Generator) -> torch.Tensor:
    return (1 - x) * ground


def _gaussian_noise(x: torch.Tensor, s: float, g: torch.Generator) -> torch.Tensor:
    return x + s * torch.randn(x.shape, generator=g)


def _shot_noise(x: torch.Tensor, k: float, g: torch.Generator) -> torch.Tensor:
    return torch.poisson(x * k, generator=g) / k


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """Blur each image of N x C x H x W with its own sigma (pixels): a separable Gaussian
    as weighted sums of shifted copies (fast for small images), edges replicated."""
    n, _, h, w = x.shape
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(n).clamp_min(1e-3)
    radius = max(1, math.ceil(3 * float(sigma.max())))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-t**2 / (2 * sigma[:, None] ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).view(n, 1, 1, 1, -1)  # one per image
    padded = F.pad(x, (radius,) * 4, mode="replicate")
    taps = range(2 * radius + 1)
    rows = sum(kernel[..., i] * padded[:, :, :, i:i + w] for i in taps)
    return sum(kernel[..., i] * rows[:, :, i:i + h, :] for i in taps)


def _blur(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    return gaussian_blur(x, sigma * x.shape[-1] / 28)


def affine(x: torch.Tensor, angle: torch.Tensor, scale: torch.Tensor, dx: torch.Tensor,
           dy: torch.Tensor) -> torch.Tensor:
    """Rotate (radians), zoom (>1 = larger) and move (pixels) each image; black fills in."""
    n, _, h, w = x.shape
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid maps output to input coordinates in [-1, 1]: the inverse transform
    theta = torch.stack([torch.stack([cos, -sin, -2 * dx / w], 1),
                         torch.stack([sin, cos, -2 * dy / h], 1)], 1)
    theta[:, :, 2] = torch.einsum("nij,nj->ni", theta[:, :, :2], theta[:, :, 2])
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _shift(x: torch.Tensor, d: float, g: torch.Generator) -> torch.Tensor:
    n = len(x)
    direction = 2 * math.pi * _per_image(n, g)
    d = d * x.shape[-1] / 28
    return affine(x, torch.zeros(n), torch.ones(n), d * torch.cos(direction),
                  d * torch.sin(direction))


def _rotation(x: torch.Tensor, degrees: float, g: torch.Generator) -> torch.Tensor:
    n = len(x)
    sign = torch.where(_per_image(n, g) < 0.5, -1.0, 1.0)
    return affine(x, sign * math.radians(degrees), torch.ones(n), torch.zeros(n), torch.zeros(n))


def _scale(x: torch.Tensor, z: float, g: torch.Generator) -> torch.Tensor:
    n = len(x)
    zoom = torch.where(_per_image(n, g) < 0.5, z, 1 / z)
    return affine(x, torch.zeros(n), zoom, torch.zeros(n), torch.zeros(n))


def _occlusion(x: torch.Tensor, side: float, g: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    side = max(1, round(side * w / 28))
    top = (torch.rand(n, generator=g) * (h - side + 1)).long()
    left = (torch.rand(n, generator=g) * (w - side + 1)).long()
    grey = torch.rand(n, generator=g).view(n, 1, 1, 1)
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + side).view(n, 1, 1)) &
              (cols >= left.view(n, 1, 1)) & (cols < (left + side).view(n, 1, 1)))
    return torch.where(inside.unsqueeze(1), grey, x)


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in [
    Corruption("brightness", "lighting", (0.15, 0.3, 0.45), _brightness),
    Corruption("darkness", "lighting", (0.7, 0.5, 0.35), _darkness),
    Corruption("contrast", "contrast", (0.6, 0.4, 0.25), _contrast),
    Corruption("inversion", "polarity", (1.0, 0.8, 0.6), _inversion),
    Corruption("gaussian_noise", "noise", (0.08, 0.16, 0.26), _gaussian_noise),
    Corruption("shot_noise", "noise", (60, 25, 10), _shot_noise),
    Corruption("blur", "blur", (0.6, 1.0, 1.4), _blur),
    Corruption("shift", "position", (2, 3, 4), _shift),
    Corruption("rotation", "rotation", (10, 20, 30), _rotation),
    Corruption("scale", "scale", (0.85, 0.75, 0.65), _scale),
    Corruption("occlusion", "occlusion", (8, 11, 14), _occlusion),
]}


def corrupt(images: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """uint8 N x C x H x W -> the same images under corruption `name` at `severity` (1-3)."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption '{name}'; known: {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 1, 2 or 3, got {severity}")
    c = CORRUPTIONS[name]
    # one stream per (seed, corruption, severity): any subset of them reproduces alone
    g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()) + severity)
    x = images.detach().cpu().float() / 255
    out = c.apply(x, c.levels[severity - 1], g)
    return (out.clamp(0, 1) * 255).round().to(torch.uint8)


def corrupted_sets(images: torch.Tensor, seed: int = 0):
    """Yields (name, severity, corrupted images) for every corruption and severity."""
    for name in CORRUPTIONS:
        for severity in SEVERITIES:
            yield name, severity, corrupt(images, name, severity, seed)


@dataclass
class Robustness:
    """Accuracy on the clean images and on every (corruption, severity)."""

    clean: float
    accuracy: dict[str, list[float]]  # corruption -> accuracy at severity 1, 2, 3

    @property
    def mean(self) -> float:
        """Mean corruption accuracy: over every corruption and severity."""
        values = [a for accs in self.accuracy.values() for a in accs]
        return sum(values) / len(values)

    def by_corruption(self) -> dict[str, float]:
        return {name: sum(accs) / len(accs) for name, accs in self.accuracy.items()}

    def by_family(self) -> dict[str, float]:
        families: dict[str, list[float]] = {}
        for name, accs in self.accuracy.items():
            families.setdefault(CORRUPTIONS[name].family, []).extend(accs)
        return {f: sum(v) / len(v) for f, v in families.items()}

    def to_dict(self) -> dict:
        return {"clean": self.clean, "mean": self.mean, "accuracy": self.accuracy}

    @classmethod
    def from_dict(cls, d: dict) -> Robustness:
        return cls(d["clean"], d["accuracy"])


def robustness(predict: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
               labels: torch.Tensor, seed: int = 0) -> Robustness:
    """Accuracy of `predict` (uint8 images -> predicted labels) clean and corrupted."""
    def accuracy(x: torch.Tensor) -> float:
        return float((predict(x).cpu() == labels.cpu()).float().mean())

    result: dict[str, list[float]] = {}
    for name, _, x in corrupted_sets(images, seed):
        result.setdefault(name, []).append(accuracy(x))
    return Robustness(accuracy(images), result)


def model_labels(model: torch.nn.Module, info, tta: bool, batch: int = 1000
                 ) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 images -> a trained vision model's predicted labels (for `robustness`)."""
    from e2e.tasks.vision.serving import logits

    device = next(model.parameters()).device

    @torch.no_grad()
    def predict(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([logits(model, images[i:i + batch].to(device), info, tta).argmax(1).cpu()
                          for i in range(0, len(images), batch)])
    return predict


def table(results: dict[str, Robustness]) -> list[str]:
    """Markdown: one row per corruption (mean over severities), one column per system."""
    systems = list(results)
    lines = ["| family | corruption | " + " | ".join(systems) + " |",
             "| --- | --- | " + " | ".join("---" for _ in systems) + " |",
             "| | **clean** | " + " | ".join(f"{100 * r.clean:.1f}%" for r in
                                             results.values()) + " |"]
    per = {s: r.by_corruption() for s, r in results.items()}
    for name, c in CORRUPTIONS.items():
        lines.append(f"| {c.family} | {name} | " +
                     " | ".join(f"{100 * per[s][name]:.1f}%" for s in systems) + " |")
    lines.append("| | **mean corrupted** | " + " | ".join(f"**{100 * r.mean:.1f}%**" for r in
                                                        results.values()) + " |")
    return lines


def folder_name(label: str) -> str:
    """A class name as a folder name ('T-shirt/top' -> 'T-shirt-top')."""
    return label.replace("/", "-")


def write_folder(images: torch.Tensor, labels: torch.Tensor, classes: list[str],
                 out: Path) -> None:
    """uint8 images -> OUT/<class>/<index>.png, the layout `e2e evaluate --data` reads."""
    from PIL import Image

    for label in classes:
        (out / folder_name(label)).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels.tolist())):
        array = image.permute(1, 2, 0).squeeze(2).numpy()
        Image.fromarray(array).save(out / folder_name(classes[label]) / f"{i:05d}.png")

"""Augmentation for the pictures a camera and a scene bring: applied to a whole training batch
at once, on its device, as a few vectorized tensor operations (no per-image Python loop).

Each change is drawn per image with its probability in `VisionAugmentConfig` (data.augment):
geometry (rotate, zoom, move: one resampling), random erasing, the intensity changes
(contrast, brightness, gamma, inversion), blur, then sensor noise; values are clipped to the
sensor's range and the batch goes back to uint8, the model's input, like a real picture.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from e2e.tasks.vision.config import VisionAugmentConfig
from e2e.tasks.vision.corruptions import affine, gaussian_blur

CHANCES = ("p_contrast", "p_brightness", "p_gamma", "p_invert", "p_noise", "p_blur",
           "p_affine", "p_erase")


def enabled(cfg: VisionAugmentConfig) -> bool:
    return any(getattr(cfg, k) > 0 for k in CHANCES)


def off(cfg: VisionAugmentConfig) -> VisionAugmentConfig:
    """The same settings with every change switched off (clean training images)."""
    return dataclasses.replace(cfg, **{k: 0.0 for k in CHANCES})


def augment(pixels: torch.Tensor, cfg: VisionAugmentConfig) -> torch.Tensor:
    """uint8 N x C x H x W -> the same shape and dtype, each image changed at random."""
    n, _, h, w = pixels.shape
    device = pixels.device
    x = pixels.float() / 255
    per_28 = w / 28  # strengths in pixels are given for 28-pixel images

    def chosen(p: float) -> torch.Tensor:
        return (torch.rand(n, device=device) < p).view(n, 1, 1, 1)

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(n, device=device)).view(n, 1, 1, 1)

    def log_uniform(lo: float, hi: float) -> torch.Tensor:
        return uniform(math.log(lo), math.log(hi)).exp()

    def some(p: float) -> torch.Tensor:  # the indices of the images that get a costly change
        return (torch.rand(n, device=device) < p).nonzero().view(-1)

    if cfg.p_affine:
        i = some(cfg.p_affine)
        k = len(i)
        zoom = (math.log(cfg.scale[0]) + math.log(cfg.scale[1] / cfg.scale[0]) *
                torch.rand(k, device=device)).exp()
        angle = math.radians(cfg.rotate) * (2 * torch.rand(k, device=device) - 1)
        dx, dy = cfg.shift * per_28 * (2 * torch.rand(2, k, device=device) - 1)
        if k:
            x[i] = affine(x[i], angle, zoom, dx, dy)
    if cfg.p_erase:
        area = uniform(*cfg.erase).view(n) * h * w
        aspect = log_uniform(0.5, 2.0).view(n)
        eh = (area * aspect).sqrt().clamp(1, h)
        ew = (area / aspect).sqrt().clamp(1, w)
        top = torch.rand(n, device=device) * (h - eh)
        left = torch.rand(n, device=device) * (w - ew)
        rows = torch.arange(h, device=device).view(1, h, 1)
        cols = torch.arange(w, device=device).view(1, 1, w)
        inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1)) &
                  (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1)))
        x = torch.where(inside.unsqueeze(1) & chosen(cfg.p_erase), uniform(0, 1), x)
    if cfg.p_contrast:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        changed = (x - mean) * log_uniform(*cfg.contrast) + mean
        x = torch.where(chosen(cfg.p_contrast), changed, x)
    if cfg.p_brightness:
        x = torch.where(chosen(cfg.p_brightness),
                        x + uniform(-cfg.brightness, cfg.brightness), x)
    if cfg.p_gamma:
        x = x.clamp(0, 1)
        x = torch.where(chosen(cfg.p_gamma), x.pow(log_uniform(*cfg.gamma)), x)
    if cfg.p_invert:
        x = torch.where(chosen(cfg.p_invert), 1 - x.clamp(0, 1), x)
    if cfg.p_blur:
        i = some(cfg.p_blur)
        sigma = (0.3 + (cfg.blur - 0.3) * torch.rand(len(i), device=device)) * per_28
        if len(i):
            x[i] = gaussian_blur(x[i], sigma)
    if cfg.p_noise:
        noisy = x + uniform(0, cfg.noise) * torch.randn_like(x)
        x = torch.where(chosen(cfg.p_noise), noisy, x)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)

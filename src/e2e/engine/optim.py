"""Optimizers and learning-rate schedules.

The schedule is a pure function of the step (as in nanoGPT), so there is no scheduler
object whose state could drift: resuming at step k gives exactly the LR of step k.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from e2e.config import TrainConfig
from e2e.errors import E2EError


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # Weight decay on weight matrices and kernels only; never on norms and biases.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    raise E2EError(f"train.optimizer must be adamw or sgd, got '{cfg.optimizer}'")


def lr_at(step: float, total: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based) of `total`; a fractional step is a
    point between two (a schedule that follows the clock, see `train.schedule_by_time`)."""
    warmup = int(cfg.warmup * total)
    progress = (step - warmup) / max(1, total - warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress))))
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "onecycle":  # from lr/25 up to lr, then cosine down to lr/1e4
        if step < warmup:
            return cfg.lr / 25 + (cfg.lr - cfg.lr / 25) * step / warmup
        return cfg.lr / 1e4 + (cfg.lr - cfg.lr / 1e4) * cosine
    if cfg.schedule == "cosine":  # linear warmup from 0, cosine decay to 0
        if step < warmup:
            return cfg.lr * (step + 1) / warmup
        return cfg.lr * cosine
    raise E2EError(f"train.schedule must be onecycle, cosine or constant, got '{cfg.schedule}'")

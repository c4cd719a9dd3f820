"""Exponential moving average (EMA) of a model's weights: `train.ema`.

The average of the last ~1/(1 - decay) steps' weights is a better model than the last
weights alone while the learning rate is still high, so evaluations (and `best`) use it:
a short run reaches a given accuracy sooner. The decay warms up as min(decay,
(1 + step) / (10 + step)), so early on the average follows the weights closely instead of
remembering the random init. Buffers are averaged too (BatchNorm statistics); integer
buffers (counters) are copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightEMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold in the weights after optimizer step `step` (1-based)."""
        d = min(self.decay, (1 + step) / (10 + step))
        floats, targets = [], []
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                targets.append(self.shadow[k])
                floats.append(v.detach())
            else:
                self.shadow[k].copy_(v)
        torch._foreach_lerp_(targets, floats, 1 - d)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)

    @contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """Run the block with the averaged weights in `model`, then put the live ones back."""
        live = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield
        finally:
            model.load_state_dict(live)

"""Proof that training is end to end: every trainable parameter learns from the loss.

Call `check_gradflow(model)` right after the first backward pass. A parameter whose
gradient is missing (a stray `.detach()`, a `torch.no_grad()` block, a branch the loss
never reaches) or exactly zero, or a parameter frozen with `requires_grad=False`, means
some layer is not trained by the one loss; that fails loudly, naming the layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from e2e.errors import E2EError


class BrokenGradientFlow(E2EError):
    pass


@dataclass
class LayerGrad:
    name: str
    params: int
    grad_norm: float  # L2 norm of the gradient; -1 when there is no gradient at all
    status: str  # ok | no-grad | zero-grad | frozen


def gradient_report(model: nn.Module) -> list[LayerGrad]:
    rows = []
    for name, p in _unwrap(model).named_parameters():
        if not p.requires_grad:
            rows.append(LayerGrad(name, p.numel(), -1.0, "frozen"))
        elif p.grad is None:
            rows.append(LayerGrad(name, p.numel(), -1.0, "no-grad"))
        else:
            norm = float(p.grad.detach().float().norm())
            ok = norm > 0 and torch.isfinite(torch.tensor(norm))
            rows.append(LayerGrad(name, p.numel(), norm, "ok" if ok else "zero-grad"))
    return rows


def check_gradflow(model: nn.Module) -> list[LayerGrad]:
    """Return the per-parameter report; raise BrokenGradientFlow if any layer is cut off."""
    rows = gradient_report(model)
    broken = [r for r in rows if r.status != "ok"]
    if broken:
        listing = "\n".join(f"  {r.name} ({r.params:,} params): {r.status}" for r in broken)
        raise BrokenGradientFlow(
            f"{len(broken)} of {len(rows)} parameter tensors got no gradient from the loss, so "
            f"training is not end to end:\n{listing}\n"
            "Look for .detach(), torch.no_grad(), requires_grad=False or an unused branch in "
            "the model; set train.check_gradflow=false only if this is intended.")
    return rows


def summary(rows: list[LayerGrad]) -> str:
    total = sum(r.params for r in rows)
    norms = [r.grad_norm for r in rows if r.status == "ok"]
    return (f"gradient flow: {len(norms)}/{len(rows)} parameter tensors ({total:,} params) "
            f"receive gradient from the loss; norms {min(norms):.2e} .. {max(norms):.2e}")


def to_json(rows: list[LayerGrad]) -> list[dict]:
    return [asdict(r) for r in rows]


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel wraps the model

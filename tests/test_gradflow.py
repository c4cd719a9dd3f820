"""gradflow must pass an end-to-end model and catch every way of cutting it."""

import pytest
import torch
import torch.nn.functional as F
from conftest import MLP, MLPModel
from torch import nn

from e2e.engine.gradflow import BrokenGradientFlow, check_gradflow, gradient_report


def backward(model):
    x, y = torch.randn(16, 2), torch.randint(0, 3, (16,))
    F.cross_entropy(model(x), y).backward()


def test_end_to_end_model_passes():
    model = MLP(MLPModel())
    backward(model)
    rows = check_gradflow(model)
    assert len(rows) == 6 and all(r.status == "ok" for r in rows)


def test_reported_norms_match_pytorch_autograd():
    model = MLP(MLPModel())
    x, y = torch.randn(16, 2), torch.randint(0, 3, (16,))
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
    F.cross_entropy(model(x), y).backward()
    for row, g in zip(gradient_report(model), grads):
        assert row.grad_norm == pytest.approx(float(g.norm()), rel=1e-6)


def test_planted_detach_is_caught_and_named():
    model = MLP(MLPModel(detach_hidden=True))
    backward(model)
    with pytest.raises(BrokenGradientFlow) as err:
        check_gradflow(model)
    assert "fc1.weight" in str(err.value) and "fc1.bias" in str(err.value)
    assert "fc2" not in str(err.value)


def test_frozen_layer_is_caught():
    model = MLP(MLPModel(freeze_first=True))
    backward(model)
    with pytest.raises(BrokenGradientFlow, match=r"fc1.weight .*frozen"):
        check_gradflow(model)


def test_no_grad_block_and_unused_branch_are_caught():
    class Cut(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.unused = nn.Linear(2, 4), nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x):
            with torch.no_grad():
                h = self.a(x)
            return self.b(h)
    model = Cut()
    backward(model)
    with pytest.raises(BrokenGradientFlow) as err:
        check_gradflow(model)
    assert "a.weight" in str(err.value) and "unused.weight" in str(err.value)


def test_zero_gradient_is_caught():
    model = MLP(MLPModel())
    backward(model)
    model.fc2.bias.grad.zero_()
    with pytest.raises(BrokenGradientFlow, match="fc2.bias .*zero-grad"):
        check_gradflow(model)

"""Speech levers, off by default: intermediate CTC (the middle of the encoder spells the text
too, through the shared head) and a larger encoder; shapes and gradients on tiny input."""

from __future__ import annotations

import pytest
import torch

from e2e.errors import E2EError
from e2e.tasks import load_config
from e2e.tasks.speech.ctc import encode
from e2e.tasks.speech.info import SpeechInfo
from e2e.tasks.speech.task import SpeechTask, collate

VOCAB = SpeechInfo().vocab


def batch() -> dict:
    torch.manual_seed(0)
    items = [{"x": 0.1 * torch.randn(n), "y": torch.tensor(encode(t, VOCAB))}
             for n, t in ((16000, "one two"), (12000, "k"))]
    return collate(items)


def model_and_cfg(*overrides: str):
    cfg = load_config(None, "speech", ["model.dim=32", "model.heads=2", "model.filters=16",
                                       *overrides])
    torch.manual_seed(0)
    return SpeechTask().build_model(cfg, SpeechInfo()), cfg


def test_levers_are_off_by_default():
    m = load_config(None, "speech").model
    assert m.inter_ctc == 0 and (m.dim, m.layers) == (144, 4)


def test_intermediate_ctc_reads_the_middle_block_through_the_shared_head():
    model, cfg = model_and_cfg("model.layers=4", "model.inter_ctc=0.3")
    b = batch()
    logits, lengths, inter = model(b["x"], b["lengths"], intermediate=True)
    assert inter.shape == logits.shape and model.inter_layer == 2
    assert not torch.allclose(inter, logits)
    plain, plain_lengths = model(b["x"], b["lengths"])  # export and decoding: two outputs
    assert torch.equal(plain, logits) and torch.equal(plain_lengths, lengths)
    # the loss mixes both; the intermediate term alone reaches the blocks below it, not above
    task = SpeechTask()
    loss = task.loss(model, b, cfg, SpeechInfo())
    loss.backward()
    assert torch.isfinite(loss) and all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.zero_grad()
    w = cfg.model.inter_ctc
    from e2e.tasks.speech.ctc import ctc_loss

    _, _, inter = model(b["x"], b["lengths"], intermediate=True)
    ctc_loss(inter, lengths, b["y"], b["y_lengths"])[0].backward()
    assert model.blocks[0].ff1[1].weight.grad.abs().sum() > 0
    assert model.blocks[3].ff1[1].weight.grad is None or \
        model.blocks[3].ff1[1].weight.grad.abs().sum() == 0
    model.zero_grad()
    assert torch.isclose(task.loss(model, b, cfg, SpeechInfo()),
                         (1 - w) * ctc_loss(logits, lengths, b["y"], b["y_lengths"])[0]
                         + w * ctc_loss(inter, lengths, b["y"], b["y_lengths"])[0], atol=1e-5)


@pytest.mark.parametrize("overrides", [["model.encoder=gru", "model.inter_ctc=0.3"],
                                       ["model.layers=1", "model.inter_ctc=0.3"],
                                       ["model.layers=4", "model.inter_ctc=0.3",
                                        "model.inter_ctc_layer=4"]])
def test_intermediate_ctc_needs_a_conformer_block_below_the_top(overrides):
    with pytest.raises(E2EError, match="inter_ctc"):
        model_and_cfg(*overrides)


def test_intermediate_ctc_weight_is_range_checked():
    with pytest.raises(E2EError, match="inter_ctc"):
        load_config(None, "speech", ["model.inter_ctc=1"])


def test_a_larger_encoder_keeps_the_frame_rate_and_every_layer_learns():
    small, _ = model_and_cfg("model.layers=2")
    large, _ = model_and_cfg("model.dim=64", "model.heads=4", "model.layers=6")
    b = batch()
    (ls, ns), (ll, nl) = small(b["x"], b["lengths"]), large(b["x"], b["lengths"])
    assert torch.equal(ns, nl) and ls.shape == ll.shape  # 25 frames/s, the same vocabulary
    n = sum(p.numel() for p in large.parameters())
    assert n > 3 * sum(p.numel() for p in small.parameters())
    ll.logsumexp(-1).sum().backward()
    assert large.front.conv.weight.grad.abs().sum() > 0
    assert all(blk.ff2[4].weight.grad.abs().sum() > 0 for blk in large.blocks)

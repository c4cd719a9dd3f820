"""The training loop on a tiny model: it learns, logs, schedules, stops and fails loudly."""

import json
import math

import pytest
import torch
from conftest import BlobsTask, blobs_config

from e2e.config import TrainConfig
from e2e.engine import fit
from e2e.engine.batching import TensorData, epoch_order, micro_batches_per_epoch, train_batches
from e2e.engine.checkpoint import load_checkpoint
from e2e.engine.gradflow import BrokenGradientFlow
from e2e.engine.optim import lr_at
from e2e.engine.progress import read_metrics
from e2e.errors import E2EError, NonFiniteLoss


def test_fit_learns_and_writes_the_run_directory(blobs, tmp_path):
    results = fit(blobs, blobs_config(), tmp_path / "run", quiet=True)
    assert results["test/accuracy"] > 0.9
    run = tmp_path / "run"
    for name in ["config.yaml", "metrics.csv", "checkpoints/last.pt", "model.safetensors",
                 "gradflow.json", "results.json", "report.md", "curves.png"]:
        assert (run / name).exists(), name
    assert not (run / "checkpoints/best.pt").exists()  # the best weights are written once
    rows = read_metrics(run / "metrics.csv")
    losses = [r["value"] for r in rows if r["metric"] == "train/loss"]
    assert losses[-1] < losses[0] / 2
    assert json.loads((run / "results.json").read_text())["steps"] == 3 * (512 // 32)


def test_sgd_cosine_clip_and_accumulation(blobs, tmp_path):
    cfg = blobs_config(optimizer="sgd", schedule="cosine", clip_grad=0.5, grad_accum=2,
                       lr=0.2, epochs=4)
    results = fit(blobs, cfg, tmp_path / "run", quiet=True)
    assert results["test/accuracy"] > 0.9
    assert results["steps"] == 4 * (512 // 32) // 2
    assert any(r["metric"] == "train/grad_norm" for r in read_metrics(tmp_path / "run/metrics.csv"))


def test_gradient_accumulation_equals_the_big_batch(tmp_path):
    """2 micro-batches of 32 must give the same update as one batch of 64 (no BatchNorm)."""
    weights = []
    for name, bs, accum in [("big", 64, 1), ("accum", 32, 2)]:
        task = BlobsTask()
        cfg = blobs_config(batch_size=bs, grad_accum=accum, max_steps=1, schedule="constant",
                           lr=0.1)
        # the same 64 examples: one epoch order, cut into one batch or two micro-batches
        fit(task, cfg, tmp_path / name, quiet=True)
        weights.append(load_checkpoint(tmp_path / name / "checkpoints/last.pt")["model"])
    for k in weights[0]:
        torch.testing.assert_close(weights[0][k], weights[1][k], rtol=1e-5, atol=1e-6)


def test_schedules():
    cfg = TrainConfig(lr=1.0, warmup=0.1, schedule="onecycle")
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(1 / 25) and max(lrs) == pytest.approx(1.0)
    assert lrs[-1] < 1e-3 and lrs.index(max(lrs)) == 10
    cfg.schedule = "cosine"
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0) and lrs[-1] < 1e-3
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    cfg.schedule = "constant"
    assert lr_at(50, 100, cfg) == 1.0


def test_batches_resume_mid_epoch_and_shard():
    data = TensorData(x=torch.arange(100), y=torch.arange(100))
    full = [b["x"] for b in train_batches(data, 10, seed=3, epoch=2, start=0, limit=10)]
    tail = [b["x"] for b in train_batches(data, 10, seed=3, epoch=2, start=4, limit=10)]
    assert all(torch.equal(a, b) for a, b in zip(full[4:], tail))
    assert torch.equal(torch.cat(full).sort().values, torch.arange(100))
    assert not torch.equal(epoch_order(100, 3, 2), epoch_order(100, 3, 3))
    shards = [torch.cat([b["x"] for b in train_batches(data, 10, 3, 2, 0, 5, rank=r, world=2)])
              for r in range(2)]
    assert set(shards[0].tolist()).isdisjoint(shards[1].tolist())
    assert micro_batches_per_epoch(100, 10, 3) == 9


def test_early_stopping(blobs, tmp_path):
    cfg = blobs_config(epochs=50, eval_every=2, patience=2, monitor="val/loss", mode="min",
                       lr=0.0, schedule="constant")
    results = fit(blobs, cfg, tmp_path / "run", quiet=True)
    assert results["stopped"].startswith("early stop")
    assert results["steps"] < 50 * 16


def test_unknown_monitor_fails_before_training(blobs, tmp_path):
    with pytest.raises(E2EError, match="val/accuracy, val/loss"):
        fit(blobs, blobs_config(monitor="val/bleu"), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_monitor_missing_at_first_evaluation(tmp_path):
    task = BlobsTask()
    task.evaluate = lambda model, split, cfg, info: {"loss": 1.0}  # forgets 'accuracy'
    with pytest.raises(E2EError, match="was not produced by evaluation; it produced: val/loss"):
        fit(task, blobs_config(eval_every=2), tmp_path / "run", quiet=True)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    task = BlobsTask()
    task.nan_at_step = 20
    cfg = blobs_config(checkpoint_every=5, eval_every=5)
    with pytest.raises(NonFiniteLoss, match="step 20") as err:
        fit(task, cfg, tmp_path / "run", quiet=True)
    assert "last.pt" in str(err.value)
    ckpt = load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    assert ckpt["state"]["step"] == 15
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_broken_gradient_flow_stops_training(tmp_path):
    cfg = blobs_config()
    cfg.model.detach_hidden = True
    with pytest.raises(BrokenGradientFlow, match="fc1.weight"):
        fit(BlobsTask(), cfg, tmp_path / "run", quiet=True)
    cfg.train.check_gradflow = False  # the documented escape hatch
    fit(BlobsTask(), cfg, tmp_path / "run2", quiet=True)


def test_refuses_to_overwrite_a_run(blobs, tmp_path):
    fit(blobs, blobs_config(epochs=1), tmp_path / "run", quiet=True)
    with pytest.raises(E2EError, match="already holds a run"):
        fit(BlobsTask(), blobs_config(epochs=1), tmp_path / "run", quiet=True)


def test_time_limit(blobs, tmp_path):
    results = fit(blobs, blobs_config(epochs=10_000, time_limit=0.5), tmp_path / "r", quiet=True)
    assert results["stopped"].startswith("time limit") and results["steps"] < 10_000 * 16
    assert math.isfinite(results["test/accuracy"])


def test_schedule_by_time_anneals_when_the_time_runs_out(blobs, tmp_path):
    """A plan of far more steps than fit the time: stepping by the clock, the LR still reaches
    the end of its schedule; stepping by steps, it would still be near its peak."""
    cfg = blobs_config(max_steps=10**6, time_limit=1.0, schedule_by_time=True, log_every=1,
                       schedule="cosine", warmup=0.0)
    results = fit(blobs, cfg, tmp_path / "r", quiet=True)
    assert results["stopped"].startswith("time limit") and results["steps"] < 10**6
    lrs = [r["value"] for r in read_metrics(tmp_path / "r/metrics.csv")
           if r["metric"] == "train/lr"]
    assert lrs[0] > 0.99 * cfg.train.lr and lrs[-1] < 0.05 * cfg.train.lr
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # cosine decay, monotone


def test_seeded_runs_are_identical(tmp_path):
    a = fit(BlobsTask(), blobs_config(), tmp_path / "a", quiet=True)
    b = fit(BlobsTask(), blobs_config(), tmp_path / "b", quiet=True)
    assert a["test/loss"] == b["test/loss"]
    c = fit(BlobsTask(), blobs_config(seed=1), tmp_path / "c", quiet=True)
    assert c["test/loss"] != a["test/loss"]


def test_weight_ema_follows_the_formula():
    from e2e.engine.ema import WeightEMA

    model = torch.nn.Linear(2, 1)
    ema = WeightEMA(model, decay=0.5)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, step=100)  # warm-up over: decay 0.5
    torch.testing.assert_close(ema.state_dict()["weight"], start + 0.5)
    with ema.swapped_in(model):
        torch.testing.assert_close(model.weight.detach(), start + 0.5)
    torch.testing.assert_close(model.weight.detach(), start + 1.0)  # live weights back


def test_ema_is_evaluated_saved_as_best_and_resumed_exactly(tmp_path):
    """train.ema: `best` holds the averaged weights, not the last ones, and a run stopped and
    resumed ends with the same average as one that ran straight through."""
    steps = 3 * (512 // 32)
    common = dict(ema=0.9, schedule="constant", eval_every=steps)
    straight = fit(BlobsTask(), blobs_config(max_steps=steps, **common), tmp_path / "a",
                   quiet=True)
    assert straight["test/accuracy"] > 0.9
    last = load_checkpoint(tmp_path / "a/checkpoints/last.pt")
    best = load_checkpoint(tmp_path / "a/model.safetensors")
    assert best["step"] == steps
    for k in last["model"]:
        torch.testing.assert_close(best["model"][k], last["ema"][k])
    assert any(not torch.equal(last["ema"][k], last["model"][k]) for k in last["model"])

    fit(BlobsTask(), blobs_config(max_steps=steps // 2, **common), tmp_path / "b", quiet=True)
    fit(BlobsTask(), blobs_config(max_steps=steps, **common), tmp_path / "b", resume=True,
        quiet=True)
    resumed = load_checkpoint(tmp_path / "b/checkpoints/last.pt")
    for k in last["ema"]:
        torch.testing.assert_close(resumed["ema"][k], last["ema"][k], rtol=0, atol=0)


def test_freed_activations_stay_in_the_process():
    """fit calls keep_freed_memory: a step's big freed tensors are reused by the next step
    instead of being returned to the OS and page-faulted in again (20-25% of CPU time)."""
    import resource

    from e2e.engine.platform import keep_freed_memory

    keep_freed_memory()
    torch.empty(4 * 2**20).fill_(1)  # 16 MiB, allocated and freed once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.empty(4 * 2**20).fill_(1)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 8192, faults  # each of the 10 faulted in anew: 40,960 pages (37k seen)

"""The one training loop. Every application trains through `fit`.

What it does, in order: build data and model from the task; one optimizer over *all*
parameters; for each optimizer step, `grad_accum` micro-batches of forward, the task's
single loss, backward; after the very first backward, prove that every parameter got a
gradient (gradflow); clip, step, log; evaluate every `eval_every` steps, keep `best` by
`train.monitor`, stop early on `patience`; checkpoint `last` atomically so that a run
killed at any instant resumes to bit-identical weights. Finally reload `best`, evaluate
on the test split and write the report.

The loop knows nothing about pixels, audio or text: that is the task's business.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from e2e.config import Config, validate
from e2e.engine import distributed, gradflow
from e2e.engine.batching import micro_batches_per_epoch, to_device, train_batches
from e2e.engine.checkpoint import (
    NonFiniteWeights,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from e2e.engine.ema import WeightEMA
from e2e.engine.optim import build_optimizer, lr_at
from e2e.engine.progress import MetricsLog, Progress, check_logger
from e2e.engine.results import headline
from e2e.engine.run import RunDir, write_report
from e2e.engine.weights import save_best
from e2e.errors import E2EError, NonFiniteLoss


@dataclass
class TrainState:
    """Everything besides tensors that a resumed run needs to continue exactly."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches of this epoch already consumed
    best: float | None = None
    best_step: int = -1
    bad_evals: int = 0  # evaluations since the last improvement
    elapsed: float = 0.0  # training seconds, summed over resumes
    stopped: str = ""  # why training ended early, if it did


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise E2EError("train.device=cuda but no CUDA GPU is visible; use train.device=cpu or auto")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise E2EError(f"train.device must be auto, cpu or cuda, got '{name}'")
    return torch.device(name)


def autocast_for(device: torch.device, precision: str):
    """bf16 autocast where the hardware does bf16 matrix math fast, fp32 elsewhere."""
    if precision not in ("auto", "bf16", "fp32"):
        raise E2EError(f"train.precision must be auto, fp32 or bf16, got '{precision}'")
    fast_bf16 = device.type == "cuda" or (device.type == "cpu" and cpu_has_amx())
    bf16 = precision == "bf16" or (precision == "auto" and fast_bf16)
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def cpu_has_amx() -> bool:
    """Intel AMX (Sapphire Rapids and later) runs bf16 convolutions 2-3x faster than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_bf16" in f.read()
    except OSError:
        return False


def keep_freed_memory() -> None:
    """Stop glibc from handing each step's freed activations back to the OS.

    By default big blocks are mmap-ed and unmapped (and the heap trimmed) as soon as they are
    freed, so every training step page-faults its activations in again: measured on the
    vision model on one thread, 20-25% of the step's CPU time went to the kernel; with this,
    under 1%. Freed memory stays in the process for the next step. No-op without glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 2**20)  # glibc's largest allowed on 64-bit
    libc.mallopt(m_trim_threshold, 2**30)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit(task, cfg: Config, out: str | Path, resume: bool = False, quiet: bool = False) -> dict:
    """Train `task` with `cfg`, writing everything to the run directory `out`, which this
    process holds alone (RUN/.lock) for the whole run."""
    validate(cfg)  # every numeric value within its range, before anything runs
    run = RunDir(out)
    with run.writer(resume) if distributed.dist_env().is_main else nullcontext():
        return _fit(task, cfg, run, resume, quiet)


def _fit(task, cfg: Config, run: RunDir, resume: bool, quiet: bool) -> dict:
    tc = cfg.train
    env = distributed.dist_env()
    device = resolve_device(tc.device)
    if device.type == "cuda" and env.world > 1:
        device = torch.device("cuda", env.local_rank)
    distributed.setup(env, device)
    monitor_name = tc.monitor.split("/", 1)[-1]
    if monitor_name not in task.metrics:
        raise E2EError(f"train.monitor='{tc.monitor}' is not a metric the {task.name} task "
                       f"produces; choose one of: {', '.join('val/' + m for m in task.metrics)}")
    if tc.mode not in ("max", "min"):
        raise E2EError(f"train.mode must be max or min, got '{tc.mode}'")
    check_logger(tc.logger)  # before any data is built: tensorboard missing, or a typo

    seed_everything(tc.seed)
    keep_freed_memory()
    splits = task.build_data(cfg)
    task.setup(cfg, splits.info)
    model = task.build_model(cfg, splits.info).to(device)
    batch_size = distributed.local_batch_size(tc.batch_size, env)  # per process
    if task.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, tc)
    ema = WeightEMA(model, tc.ema) if tc.ema > 0 else None
    state = TrainState()

    if resume:
        ckpt = load_checkpoint(run.last, map_location=device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None:
            if "ema" not in ckpt:
                raise E2EError(f"{run.last} was saved without train.ema; resume it with "
                               "--set train.ema=0")
            ema.load_state_dict(ckpt["ema"])
        state = TrainState(**ckpt["state"])
        set_rng_state(ckpt["rng"])
        if env.is_main:  # values given with --resume --set are part of the run from now on
            cfg.save(run.config)
    elif env.is_main:
        run.create(cfg)
    distributed.barrier(env)
    distributed.seed_rank(env, tc.seed, state.step)

    # Micro-batches of the *global* batch, so the position in an epoch means the same
    # examples whatever the number of processes (a run may resume with another N).
    per_epoch = micro_batches_per_epoch(len(splits.train), batch_size, tc.grad_accum, env.world)
    if per_epoch == 0:
        raise E2EError(f"the training split has {len(splits.train)} examples, fewer than one "
                       f"step of train.batch_size={tc.batch_size} (global, over {env.world} "
                       f"process(es)) x train.grad_accum={tc.grad_accum}; lower "
                       "train.batch_size")
    total_steps = tc.max_steps or tc.epochs * per_epoch // tc.grad_accum
    eval_every = tc.eval_every or per_epoch // tc.grad_accum
    checkpoint_every = tc.checkpoint_every or eval_every
    ddp_model = distributed.wrap(model, env, device)
    # Only the training forward is compiled; evaluation and checkpoints use `model` itself,
    # whose parameters the compiled module shares.
    train_model = torch.compile(ddp_model) if tc.compile else ddp_model
    autocast = autocast_for(device, tc.precision)
    log = None
    if env.is_main:
        log = MetricsLog(run.metrics, resume_step=state.step if resume else None,
                         logger=tc.logger)
    progress = Progress(total_steps, state.step, tc.log_every, enabled=env.is_main and not quiet)
    n_params = sum(p.numel() for p in model.parameters())
    progress.write(f"{task.name}: {n_params:,} parameters, {len(splits.train):,} training "
                   f"examples, {total_steps:,} steps on {device}"
                   + (" (bf16 autocast)" if isinstance(autocast, torch.autocast) else "")
                   + (f" x {env.world} processes" if env.world > 1 else "")
                   + (f", resuming at step {state.step}" if resume else ""))

    def micro_batch_stream():
        """Micro-batches forever, advancing state.epoch / state.batch_in_epoch as it goes."""
        while True:
            for batch in train_batches(splits.train, batch_size, tc.seed, state.epoch,
                                       state.batch_in_epoch, per_epoch, env.rank, env.world,
                                       tc.num_workers, task.collate):
                state.batch_in_epoch += 1
                yield batch
            state.epoch += 1
            state.batch_in_epoch = 0

    def checkpoint_state() -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "state": dataclasses.asdict(state), "rng": rng_state(),
                "info": splits.info, "task": task.name,
                **({"ema": ema.state_dict()} if ema is not None else {})}

    def evaluate(split) -> dict[str, float]:
        model.eval()
        with torch.no_grad(), autocast, (ema.swapped_in(model) if ema else nullcontext()):
            metrics = task.evaluate(model, split, cfg)
        model.train()
        return metrics

    last_good = [state.step] if resume else []  # steps `last` was saved at: all finite

    def nonfinite(what: str, step: int) -> NonFiniteLoss:
        progress.close()
        kept = (f"the last good checkpoint is {run.last} (step {last_good[-1]})" if last_good
                else "there is no good checkpoint: none was written before it")
        return NonFiniteLoss(f"{what} at step {step} (epoch {state.epoch}); training stopped "
                             f"and {kept}. Try a lower train.lr (now {tc.lr}) or "
                             f"train.clip_grad (now {tc.clip_grad}).")

    def save(ckpt: dict[str, Any], path: Path) -> None:
        try:
            save_checkpoint(ckpt, path)  # refuses NaN / Inf anywhere: a checkpoint is good
        except NonFiniteWeights as e:
            raise nonfinite(f"the weights held NaN or Inf ({', '.join(e.names[:3])}) when "
                            "checkpointed", state.step) from None

    stream = micro_batch_stream()
    started = time.time() - state.elapsed
    # Seconds of training as all processes agree on them (their mean, at the end of the last
    # step): every rank then takes the same learning rate, so their weights stay equal.
    clock = state.elapsed
    model.train()
    while state.step < total_steps:
        # ---- one optimizer step: grad_accum micro-batches, one loss, backward through all ----
        schedule_step: float = state.step
        if tc.schedule_by_time and tc.time_limit > 0:
            # A budget in seconds, not steps: where the machine runs slower than planned, the
            # schedule still reaches its end (low LR, annealed weights) when the time runs out.
            schedule_step = max(schedule_step, total_steps * clock / tc.time_limit)
        lr = lr_at(schedule_step, total_steps, tc)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for micro in range(tc.grad_accum):
            batch = task.prepare_batch(to_device(next(stream), device), train=True)
            # DDP averages gradients only on the last micro-batch of an accumulation.
            sync = micro == tc.grad_accum - 1 or env.world == 1
            with autocast, (nullcontext() if sync else ddp_model.no_sync()):
                loss = task.loss(train_model, batch)
            (loss.float() / tc.grad_accum).backward()
            loss_sum += loss.item()
        loss_value, clock = distributed.step_summary(loss_sum / tc.grad_accum,
                                                     time.time() - started, env, device)
        out_of_time = tc.time_limit > 0 and clock >= tc.time_limit
        if not math.isfinite(loss_value):
            raise nonfinite(f"the loss became {loss_value}", state.step + 1)
        if state.step == 0 and tc.check_gradflow:
            rows = gradflow.check_gradflow(model)
            if env.is_main:
                run.gradflow.write_text(json.dumps(gradflow.to_json(rows), indent=1))
            progress.write(gradflow.summary(rows))
        grad_norm = None
        if tc.clip_grad > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_grad))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        if ema is not None:
            ema.update(model, state.step)
        state.elapsed = time.time() - started

        # ---- logging ----
        logged = {"train/loss": loss_value, "train/lr": lr}
        if grad_norm is not None:
            logged["train/grad_norm"] = grad_norm
        progress.step(state.step, loss=loss_value, lr=lr)
        if log and (state.step % tc.log_every == 0 or state.step == 1):
            log.log(state.step, state.epoch, state.elapsed, logged)

        # ---- evaluation, best checkpoint, early stopping ----
        last_step = state.step == total_steps or out_of_time
        if state.step % eval_every == 0 or last_step:
            distributed.sync_buffers(model, env)  # every rank evaluates rank 0's weights
            metrics = {f"val/{k}": v for k, v in evaluate(splits.val).items()}
            if tc.monitor not in metrics:
                raise E2EError(f"train.monitor='{tc.monitor}' was not produced by evaluation; "
                               f"it produced: {', '.join(sorted(metrics))}")
            value = distributed.mean_across(metrics[tc.monitor], env, device)
            improved = state.best is None or (value > state.best if tc.mode == "max"
                                              else value < state.best)
            if improved:
                state.best, state.best_step, state.bad_evals = value, state.step, 0
                if env.is_main:
                    weights = ema.state_dict() if ema else model.state_dict()  # as evaluated
                    best = {"model": weights, "info": splits.info,
                            "task": task.name, "step": state.step, "metrics": metrics}
                    save(best, run.best)
                    save_best(run.path, best, cfg.to_dict())  # model.safetensors, for elsewhere
            else:
                state.bad_evals += 1
            if log:
                log.log(state.step, state.epoch, state.elapsed, metrics)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in headline(metrics).items())
            progress.write(f"step {state.step} epoch {state.epoch}: {shown}"
                           + (" (best)" if improved else ""))
            if tc.patience and state.bad_evals >= tc.patience:
                state.stopped = (f"early stop: {tc.monitor} did not improve for {tc.patience} "
                                 f"evaluations (best {state.best:.4f} at step {state.best_step})")
        if out_of_time and not state.stopped:
            state.stopped = f"time limit of {tc.time_limit:.0f}s reached at step {state.step}"
        if env.is_main and (state.step % checkpoint_every == 0 or last_step or state.stopped):
            save(checkpoint_state(), run.last)
            last_good.append(state.step)
        if state.stopped:
            progress.write(state.stopped)
            break
    progress.close()
    train_seconds = state.elapsed

    # ---- final: best weights on the test split, report ----
    results: dict[str, Any] = {}
    if env.is_main:
        if run.best.exists():
            model.load_state_dict(load_checkpoint(run.best, map_location=device)["model"])
            ema = None  # `best` holds the averaged weights already
        test = {f"test/{k}": v for k, v in evaluate(splits.test).items()}
        model.eval()  # the report describes the model test/* measured: eval mode, no autograd
        with torch.no_grad(), autocast, (ema.swapped_in(model) if ema else nullcontext()):
            extra = task.report(model, splits.test, cfg, run.path)
        epochs_done = round(state.step * tc.grad_accum / per_epoch, 2)
        results = {"task": task.name, "steps": state.step, "epochs": epochs_done,
                   "train_seconds": round(train_seconds, 2), "parameters": n_params,
                   "best_step": state.best_step, f"best_{tc.monitor}": state.best,
                   "stopped": state.stopped, **test}
        run.results.write_text(json.dumps(results, indent=1))
        log.log(state.step, state.epoch, train_seconds, test)
        write_report(run, cfg, results, extra)
        progress.write("test: " + ", ".join(f"{k} {v:.4f}" for k, v in headline(test).items()))
    distributed.barrier(env)
    distributed.teardown(env)
    return results

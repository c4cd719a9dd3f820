"""The one training loop. Every application trains through `fit`.

What it does, in order: build data and model from the task; one optimizer over *all*
parameters; for each optimizer step, `grad_accum` micro-batches of forward, the task's
single loss, backward; after the very first backward, prove that every parameter got a
gradient (gradflow); clip, step, log; evaluate every `eval_every` steps, keep `best` by
`train.monitor`, stop early on `patience`; checkpoint `last` atomically so that a run
killed at any instant resumes to bit-identical weights. Finally reload `best`, evaluate
on the test split and write the report.

`fit` below is the whole loop; each stage it names (start, step, evaluate, finish) is a short
function further down. The loop knows nothing about pixels, audio or text: that is the task's
business. Platform tuning (device, precision, allocator) lives in engine/platform.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from e2e.atomic import write_atomic
from e2e.config import Config, validate
from e2e.engine import distributed, gradflow
from e2e.engine.batching import micro_batches_per_epoch, to_device, train_batches
from e2e.engine.checkpoint import (
    NonFiniteWeights,
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from e2e.engine.ema import WeightEMA
from e2e.engine.optim import build_optimizer, lr_at
from e2e.engine.platform import (  # noqa: F401  (autocast_for, cpu_has_amx: bench scripts)
    autocast_for,
    cpu_has_amx,
    keep_freed_memory,
    resolve_device,
    seed_everything,
)
from e2e.engine.progress import MetricsLog, Progress, check_logger
from e2e.engine.results import headline
from e2e.engine.run import RunDir, write_report
from e2e.engine.weights import load_weights, save_best
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


@dataclass
class Training:
    """What the stages of one run share: built by `start`, read and advanced by the others."""

    task: Any
    cfg: Config
    run: RunDir
    env: distributed.DistEnv
    device: torch.device
    splits: Any
    model: torch.nn.Module
    ddp_model: torch.nn.Module  # `model` wrapped for DDP (itself on one process)
    train_model: torch.nn.Module  # `ddp_model`, compiled if train.compile: what the step runs
    optimizer: torch.optim.Optimizer
    ema: WeightEMA | None
    autocast: Any
    state: TrainState
    per_epoch: int  # micro-batches per epoch
    total_steps: int
    eval_every: int
    checkpoint_every: int
    progress: Progress
    log: MetricsLog | None
    n_params: int
    last_good: list[int] = field(default_factory=list)  # steps `last` was saved at: all finite


def fit(task, cfg: Config, out: str | Path, resume: bool = False, quiet: bool = False) -> dict:
    """Train `task` with `cfg`, writing everything to the run directory `out`, which this
    process holds alone (RUN/.lock) for the whole run."""
    validate(cfg)  # every value within its range, before anything runs
    run = RunDir(out)
    with run.writer(resume) if distributed.dist_env().is_main else nullcontext():
        t = start(task, cfg, run, resume, quiet)
        tc, state = cfg.train, t.state
        batches = micro_batches(t)
        started = time.time() - state.elapsed
        # Seconds of training as all processes agree on them (their mean, at the end of the
        # last step): every rank then takes the same learning rate, so their weights stay equal.
        clock = state.elapsed
        t.model.train()
        while state.step < t.total_steps:
            # ---- one optimizer step: grad_accum micro-batches, one loss, backward through all
            schedule_step: float = state.step
            if tc.schedule_by_time and tc.time_limit > 0:
                # A budget in seconds, not steps: where the machine runs slower than planned,
                # the schedule still reaches its end (low LR) when the time runs out.
                schedule_step = max(schedule_step, t.total_steps * clock / tc.time_limit)
            lr = lr_at(schedule_step, t.total_steps, tc)
            for group in t.optimizer.param_groups:
                group["lr"] = lr
            loss_sum = sum(forward_backward(t, next(batches), micro)
                           for micro in range(tc.grad_accum))
            loss, clock = distributed.step_summary(loss_sum / tc.grad_accum,
                                                   time.time() - started, t.env, t.device)
            out_of_time = tc.time_limit > 0 and clock >= tc.time_limit
            if not math.isfinite(loss):
                raise nonfinite(t, f"the loss became {loss}", state.step + 1)
            if state.step == 0 and tc.check_gradflow:
                check_gradflow(t)
            grad_norm = None
            if tc.clip_grad > 0:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(t.model.parameters(),
                                                                 tc.clip_grad))
            t.optimizer.step()
            t.optimizer.zero_grad(set_to_none=True)
            state.step += 1
            if t.ema is not None:
                t.ema.update(t.model, state.step)
            state.elapsed = time.time() - started

            # ---- logging
            t.progress.step(state.step, loss=loss, lr=lr)
            if t.log and (state.step % tc.log_every == 0 or state.step == 1):
                logged = {"train/loss": loss, "train/lr": lr}
                if grad_norm is not None:
                    logged["train/grad_norm"] = grad_norm
                t.log.log(state.step, state.epoch, state.elapsed, logged)

            # ---- evaluation, best weights, early stopping, the `last` checkpoint
            last_step = state.step == t.total_steps or out_of_time
            if state.step % t.eval_every == 0 or last_step:
                evaluate_and_keep_best(t)
            if out_of_time and not state.stopped:
                state.stopped = f"time limit of {tc.time_limit:.0f}s reached at step {state.step}"
            if t.env.is_main and (state.step % t.checkpoint_every == 0 or last_step
                                  or state.stopped):
                with finite_weights(t, "checkpointed"):
                    save_checkpoint(checkpoint_state(t), t.run.last)
                t.last_good.append(state.step)
            if state.stopped:
                t.progress.write(state.stopped)
                break
        t.progress.close()
        return finish(t)


# ---- start: data, model, optimizer, and the state of a resumed run ----

def start(task, cfg: Config, run: RunDir, resume: bool, quiet: bool) -> Training:
    tc = cfg.train
    env = distributed.dist_env()
    device = resolve_device(tc.device)
    if device.type == "cuda" and env.world > 1:
        device = torch.device("cuda", env.local_rank)
    distributed.setup(env, device)
    if tc.monitor.split("/", 1)[-1] not in task.metrics:
        raise E2EError(f"train.monitor='{tc.monitor}' is not a metric the {task.name} task "
                       f"produces; choose one of: {', '.join('val/' + m for m in task.metrics)}")
    check_logger(tc.logger)  # before any data is built: tensorboard missing, or a typo

    seed_everything(tc.seed)
    keep_freed_memory()
    with distributed.local_main_first(env):
        splits = task.build_data(cfg)
    model = task.build_model(cfg, splits.info).to(device)
    if task.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, tc)
    ema = WeightEMA(model, tc.ema) if tc.ema > 0 else None
    state = TrainState()
    if resume:
        state = restore(run, model, optimizer, ema, device)
        if env.is_main:  # values given with --resume --set are part of the run from now on
            cfg.save(run.config)
    elif env.is_main:
        run.create(cfg)
    distributed.barrier(env)
    distributed.seed_rank(env, tc.seed, state.step)

    # Micro-batches of the *global* batch, so the position in an epoch means the same
    # examples whatever the number of processes (a run may resume with another N).
    batch_size = distributed.local_batch_size(tc.batch_size, env)  # per process
    per_epoch = micro_batches_per_epoch(len(splits.train), batch_size, tc.grad_accum, env.world)
    if per_epoch == 0:
        raise E2EError(f"the training split has {len(splits.train)} examples, fewer than one "
                       f"step of train.batch_size={tc.batch_size} (global, over {env.world} "
                       f"process(es)) x train.grad_accum={tc.grad_accum}; lower "
                       "train.batch_size")
    total_steps = tc.max_steps or tc.epochs * per_epoch // tc.grad_accum
    eval_every = tc.eval_every or per_epoch // tc.grad_accum
    ddp_model = distributed.wrap(model, env, device)
    # Only the training forward is compiled; evaluation and checkpoints use `model` itself,
    # whose parameters the compiled module shares.
    train_model = torch.compile(ddp_model) if tc.compile else ddp_model
    log = (MetricsLog(run.metrics, resume_step=state.step if resume else None, logger=tc.logger)
           if env.is_main else None)
    t = Training(task=task, cfg=cfg, run=run, env=env, device=device, splits=splits,
                 model=model, ddp_model=ddp_model, train_model=train_model,
                 optimizer=optimizer, ema=ema,
                 autocast=autocast_for(device, tc.precision), state=state, per_epoch=per_epoch,
                 total_steps=total_steps, eval_every=eval_every,
                 checkpoint_every=tc.checkpoint_every or eval_every,
                 progress=Progress(total_steps, state.step, tc.log_every,
                                   enabled=env.is_main and not quiet),
                 log=log, n_params=sum(p.numel() for p in model.parameters()),
                 last_good=[state.step] if resume else [])
    t.progress.write(f"{task.name}: {t.n_params:,} parameters, {len(splits.train):,} training "
                     f"examples, {total_steps:,} steps on {device}"
                     + (" (bf16 autocast)" if isinstance(t.autocast, torch.autocast) else "")
                     + (f" x {env.world} processes" if env.world > 1 else "")
                     + (f", resuming at step {state.step}" if resume else ""))
    return t


def restore(run: RunDir, model, optimizer, ema: WeightEMA | None, device) -> TrainState:
    """Weights, optimizer, EMA and RNG streams from RUN/checkpoints/last.pt."""
    ckpt = load_checkpoint(run.last, map_location=device)
    load_model_state(model, ckpt["model"], run.last)  # a --set model.* that changed it: 1 line
    optimizer.load_state_dict(ckpt["optimizer"])
    if ema is not None:
        if "ema" not in ckpt:
            raise E2EError(f"{run.last} was saved without train.ema; resume it with "
                           "--set train.ema=0")
        ema.load_state_dict(ckpt["ema"])
    set_rng_state(ckpt["rng"])
    return TrainState(**ckpt["state"])


# ---- the step ----

def micro_batches(t: Training) -> Iterator[dict]:
    """Micro-batches forever, advancing state.epoch / state.batch_in_epoch as it goes."""
    tc, state = t.cfg.train, t.state
    batch_size = distributed.local_batch_size(tc.batch_size, t.env)
    while True:
        for batch in train_batches(t.splits.train, batch_size, tc.seed, state.epoch,
                                   state.batch_in_epoch, t.per_epoch, t.env.rank, t.env.world,
                                   tc.num_workers, t.task.collate):
            state.batch_in_epoch += 1
            yield batch
        state.epoch += 1
        state.batch_in_epoch = 0


def forward_backward(t: Training, batch: dict, micro: int) -> float:
    """One micro-batch: the task's loss, backward through every layer; returns the loss."""
    grad_accum = t.cfg.train.grad_accum
    batch = t.task.prepare_batch(to_device(batch, t.device), True, t.cfg, t.splits.info)
    # DDP averages gradients only on the last micro-batch of an accumulation.
    sync = micro == grad_accum - 1 or t.env.world == 1
    with t.autocast, (nullcontext() if sync else t.ddp_model.no_sync()):
        loss = t.task.loss(t.train_model, batch, t.cfg, t.splits.info)
    (loss.float() / grad_accum).backward()
    return loss.item()


def check_gradflow(t: Training) -> None:
    """After the first backward: every parameter got gradient from the loss, or fail."""
    rows = gradflow.check_gradflow(t.model)
    if t.env.is_main:
        write_atomic(t.run.gradflow, json.dumps(gradflow.to_json(rows), indent=1))
    t.progress.write(gradflow.summary(rows))


# ---- evaluation and the best weights ----

def evaluate(t: Training, split) -> dict[str, float]:
    """The task's metrics on `split`, in eval mode, with the averaged weights if any."""
    t.model.eval()
    with torch.no_grad(), t.autocast, (t.ema.swapped_in(t.model) if t.ema else nullcontext()):
        metrics = t.task.evaluate(t.model, split, t.cfg, t.splits.info)
    t.model.train()
    return metrics


def evaluate_and_keep_best(t: Training) -> None:
    """Validate; on improvement write the best weights; count evaluations for patience."""
    tc, state = t.cfg.train, t.state
    distributed.sync_buffers(t.model, t.env)  # every rank evaluates rank 0's weights
    metrics = {f"val/{k}": v for k, v in evaluate(t, t.splits.val).items()}
    if tc.monitor not in metrics:
        raise E2EError(f"train.monitor='{tc.monitor}' was not produced by evaluation; "
                       f"it produced: {', '.join(sorted(metrics))}")
    value = distributed.mean_across(metrics[tc.monitor], t.env, t.device)
    improved = state.best is None or (value > state.best if tc.mode == "max"
                                      else value < state.best)
    if improved:
        state.best, state.best_step, state.bad_evals = value, state.step, 0
        if t.env.is_main:
            keep_best(t, metrics)
    else:
        state.bad_evals += 1
    if t.log:
        t.log.log(state.step, state.epoch, state.elapsed, metrics)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in headline(metrics).items())
    t.progress.write(f"step {state.step} epoch {state.epoch}: {shown}"
                     + (" (best)" if improved else ""))
    if tc.patience and state.bad_evals >= tc.patience:
        state.stopped = (f"early stop: {tc.monitor} did not improve for {tc.patience} "
                         f"evaluations (best {state.best:.4f} at step {state.best_step})")


def keep_best(t: Training, metrics: dict[str, float]) -> None:
    """The weights just evaluated (the EMA's, if on) become `best`: RUN/model.safetensors,
    written once, read by e2e.load and by any tool."""
    weights = t.ema.state_dict() if t.ema else t.model.state_dict()
    best = {"model": weights, "info": t.splits.info.to_dict(), "task": t.task.name,
            "step": t.state.step, "metrics": metrics}
    with finite_weights(t, "kept as the best"):
        save_best(t.run.path, best, t.cfg.to_dict())


# ---- checkpoints ----

def checkpoint_state(t: Training) -> dict[str, Any]:
    return {"model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(),
            "state": dataclasses.asdict(t.state), "rng": rng_state(),
            "info": t.splits.info.to_dict(), "task": t.task.name,
            **({"ema": t.ema.state_dict()} if t.ema is not None else {})}


@contextmanager
def finite_weights(t: Training, when: str) -> Iterator[None]:
    """Writers of weights refuse NaN / Inf anywhere (a saved file is a good one): stop the
    run with the message of a non-finite loss."""
    try:
        yield
    except NonFiniteWeights as e:
        raise nonfinite(t, f"the weights held NaN or Inf ({', '.join(e.names[:3])}) when "
                        f"{when}", t.state.step) from None


def nonfinite(t: Training, what: str, step: int) -> NonFiniteLoss:
    t.progress.close()
    kept = (f"the last good checkpoint is {t.run.last} (step {t.last_good[-1]})" if t.last_good
            else "there is no good checkpoint: none was written before it")
    tc = t.cfg.train
    return NonFiniteLoss(f"{what} at step {step} (epoch {t.state.epoch}); training stopped "
                         f"and {kept}. Try a lower train.lr (now {tc.lr}) or "
                         f"train.clip_grad (now {tc.clip_grad}).")


# ---- finish: the best weights on the test split, the report ----

def finish(t: Training) -> dict:
    tc, state = t.cfg.train, t.state
    results: dict[str, Any] = {}
    if t.env.is_main:
        if t.run.best.exists():
            state_dict, _ = load_weights(t.run.best)
            t.model.load_state_dict(state_dict)
            t.ema = None  # `best` holds the averaged weights already
        scores = evaluate(t, t.splits.test)
        test = {f"test/{k}": v for k, v in scores.items()}
        t.model.eval()  # the report describes the model test/* measured: eval mode, no autograd
        with torch.no_grad(), t.autocast, (t.ema.swapped_in(t.model) if t.ema else nullcontext()):
            extra = t.task.report(t.model, t.splits.test, t.cfg, t.splits.info, t.run.path,
                                  scores)
        results = {"task": t.task.name, "steps": state.step,
                   "epochs": round(state.step * tc.grad_accum / t.per_epoch, 2),
                   "train_seconds": round(state.elapsed, 2), "parameters": t.n_params,
                   "best_step": state.best_step, f"best_{tc.monitor}": state.best,
                   "stopped": state.stopped, **test}
        write_atomic(t.run.results, json.dumps(results, indent=1))  # inspect reads it
        t.log.log(state.step, state.epoch, state.elapsed, test)
        write_report(t.run, t.cfg, results, extra)
        t.progress.write("test: " + ", ".join(f"{k} {v:.4f}" for k, v in headline(test).items()))
    distributed.barrier(t.env)
    distributed.teardown(t.env)
    return results

"""torchrun / DistributedDataParallel glue. One process without torchrun is world size 1."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_env() -> DistEnv:
    """The process's place in a torchrun launch, read from the environment torchrun sets."""
    return DistEnv(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))


def setup(env: DistEnv, device: torch.device) -> None:
    if env.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def wrap(model: nn.Module, env: DistEnv, device: torch.device) -> nn.Module:
    if env.world == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def mean_across(value: float, env: DistEnv, device: torch.device) -> float:
    if env.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t) / env.world


def barrier(env: DistEnv) -> None:
    if env.world > 1:
        dist.barrier()


def teardown(env: DistEnv) -> None:
    if env.world > 1 and dist.is_initialized():
        dist.destroy_process_group()

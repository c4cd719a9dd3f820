"""What the machine can do, and tuning for it: device, precision, allocator, seeds.

Kept out of the training loop so that the loop reads as training. Nothing here knows about a
task; `fit` calls each once before the first step.
"""

from __future__ import annotations

import ctypes
import random
from contextlib import nullcontext

import numpy as np
import torch

from e2e.errors import E2EError


def resolve_device(name: str) -> torch.device:
    """train.device (auto | cpu | cuda | cuda:N) -> the device to train on."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise E2EError(f"train.device={name} but no CUDA GPU is visible; use train.device=cpu "
                       "or auto")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise E2EError(f"train.device must be auto, cpu, cuda or cuda:N, got '{name}'")
    return torch.device(name)


def autocast_for(device: torch.device, precision: str):
    """bf16 autocast where the hardware does bf16 matrix math fast, fp32 elsewhere.
    `precision` was checked by config.validate (auto | fp32 | bf16)."""
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
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

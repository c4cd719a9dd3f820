"""Batches for the training loop, in an order that can be resumed exactly.

An epoch's order is a pure function of (seed, epoch), so resuming at "epoch e, batch b"
needs only those two numbers. In-memory splits (`TensorData`) are sliced straight from
tensors, with no DataLoader or worker processes; any other `torch.utils.data.Dataset`
(file-backed) goes through a DataLoader fed the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset


class TensorData:
    """An in-memory split: named tensors that share their first dimension.

    `TensorData(x=images_uint8, y=labels)`; a batch is a dict with the same names.
    """

    def __init__(self, **tensors: torch.Tensor):
        lengths = {name: len(t) for name, t in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"TensorData tensors differ in length: {lengths}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: t[index] for name, t in self.tensors.items()}

    def subset(self, index: torch.Tensor) -> TensorData:
        return TensorData(**self.batch(index))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def train_batches(data: TensorData | Dataset, batch_size: int, seed: int, epoch: int,
                  start: int, limit: int, rank: int = 0, world: int = 1,
                  num_workers: int = 0, collate: Callable | None = None
                  ) -> Iterator[dict[str, torch.Tensor]]:
    """Batches `start .. limit-1` of this epoch's shuffled order (this rank's shard).

    With `world` processes, global batch i is `order[i*B:(i+1)*B]` (B = batch_size x world)
    and this rank takes every world-th example of it: a step sees the same examples whatever
    the number of processes, so a run may resume with another number.
    """
    span = batch_size * world
    order = epoch_order(len(data), seed, epoch)
    lengths = getattr(data, "lengths", None)
    if lengths is not None:
        order = bucket_by_length(order, lengths, span, seed, epoch)
    chunks = [order[i * span:(i + 1) * span][rank::world] for i in range(start, limit)]
    if isinstance(data, TensorData):
        for index in chunks:
            yield data.batch(index)
    else:
        loader = DataLoader(data, batch_sampler=[c.tolist() for c in chunks],
                            num_workers=num_workers, collate_fn=collate,
                            generator=_loader_seed(seed, epoch))
        yield from loader


def bucket_by_length(order: torch.Tensor, lengths: torch.Tensor, batch_size: int, seed: int,
                     epoch: int, window: int = 64) -> torch.Tensor:
    """Reorder so that each batch holds examples of similar length (less padding).

    For data with a `lengths` tensor (tokens per example). Within windows of `window`
    batches of the shuffled order, examples are sorted by length and cut into batches;
    the full batches are then shuffled. Still a pure function of (seed, epoch), so
    resume stays exact; the incomplete batch goes last, where the epoch drops it.
    """
    span = batch_size * window
    batches = []
    for w in range(0, len(order), span):
        part = order[w:w + span]
        part = part[torch.argsort(lengths[part], stable=True)]
        batches += list(part.split(batch_size))
    full = [b for b in batches if len(b) == batch_size]
    rest = [b for b in batches if len(b) < batch_size]
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 7_919)
    shuffled = [full[i] for i in torch.randperm(len(full), generator=g)]
    return torch.cat(shuffled + rest) if shuffled or rest else order


def eval_batches(data: TensorData | Dataset, batch_size: int, num_workers: int = 0,
                 collate: Callable | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Every example once, in order, the last batch possibly short.

    `collate` (for Datasets) merges a list of examples into a batch, e.g. padding
    variable-length sequences; the default stacks tensors.
    """
    if isinstance(data, TensorData):
        for i in range(0, len(data), batch_size):
            yield data.batch(torch.arange(i, min(i + batch_size, len(data))))
    else:
        yield from DataLoader(data, batch_size=batch_size, shuffle=False,
                              num_workers=num_workers, collate_fn=collate,
                              generator=_loader_seed(0, 0))


def _loader_seed(seed: int, epoch: int) -> torch.Generator:
    """A DataLoader draws its workers' base seed from this, not from the global RNG: the
    augmentation's random stream is then the same whether the data come from memory or disk,
    and whether a run was resumed mid-epoch (a fresh loader) or not."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch + 104_729)


def micro_batches_per_epoch(n: int, batch_size: int, grad_accum: int, world: int = 1) -> int:
    """Micro-batches used per epoch: whole batches, rounded down to whole optimizer steps."""
    per_rank = n // world
    return (per_rank // batch_size) // grad_accum * grad_accum


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}

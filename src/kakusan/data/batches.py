"""Structured mini-batches: a tensor, a tuple of tensors or a dict of tensors, all indexed by example.

A data set for :func:`kakusan.train.fit` is any of these with the same number of rows in every
tensor (images with their labels and caption ids, say). The batch of optimizer step ``s`` is a slice
of that epoch's permutation, which depends on (seed, epoch) alone, so a resumed run sees the same
batches as an uninterrupted one.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from kakusan.errors import DataError

Tensor = torch.Tensor
Batch = Any  # Tensor | tuple[Tensor, ...] | dict[str, Tensor]


def leaves(data: Batch) -> list[Tensor]:
    """The tensors of a structured batch, in order."""
    if isinstance(data, Tensor):
        return [data]
    if isinstance(data, dict):
        return list(data.values())
    if isinstance(data, (tuple, list)):
        return list(data)
    raise DataError(f"training data must be a tensor, a tuple or a dict of tensors, got {type(data).__name__}")


def batch_len(data: Batch) -> int:
    """Rows in a structured batch; an error naming the culprits when the tensors disagree."""
    tensors = leaves(data)
    if not tensors or not all(isinstance(t, Tensor) and t.ndim >= 1 for t in tensors):
        raise DataError("every entry of the training data must be a tensor with a first (example) dimension")
    sizes = {len(t) for t in tensors}
    if len(sizes) != 1:
        raise DataError(f"the tensors of the training data have different numbers of rows {sorted(sizes)}: "
                        "give every tensor one row per example")
    return sizes.pop()


def take(data: Batch, index: Tensor | slice) -> Batch:
    """Rows ``index`` of every tensor, keeping the structure."""
    if isinstance(data, Tensor):
        return data[index]
    if isinstance(data, dict):
        return {k: v[index] for k, v in data.items()}
    return type(data)(v[index] for v in data) if isinstance(data, tuple) else [v[index] for v in data]


def split(batch: Batch, parts: int) -> list[Batch]:
    """``batch`` cut into ``parts`` consecutive pieces of (nearly) equal size; empty pieces are left out."""
    n = batch_len(batch)
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [take(batch, slice(a, b)) for a, b in zip(bounds, bounds[1:]) if b > a]


def to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: v.to(device) for k, v in batch.items()}
    return type(batch)(v.to(device) for v in batch)


def device_of(data: Batch | None, default: torch.device) -> torch.device:
    """The device of the data's first tensor; ``default`` for None or an object passed whole (e.g. statistics)."""
    if isinstance(data, Tensor):
        return data.device
    if isinstance(data, (dict, tuple, list)) and data:
        first = leaves(data)[0]
        return first.device if isinstance(first, Tensor) else default
    return default


def steps_per_epoch(n: int, batch_size: int | None, drop_last: bool = True) -> int:
    """Optimizer steps in one pass over ``n`` examples."""
    if batch_size is None or batch_size >= n:
        return 1
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def batch_at(data: Batch, batch_size: int | None, step: int, seed: int, drop_last: bool = True) -> Batch:
    """The batch of optimizer step ``step``: all the data, or a slice of that epoch's permutation.

    With ``drop_last`` an epoch has ⌊n/B⌋ full batches (the rows left over change from epoch to epoch);
    without it, the epoch's last batch holds the remaining n mod B rows.
    """
    if batch_size is None:  # full batch: passed whole, whatever it is (a tensor, or e.g. sufficient statistics)
        return data
    n = batch_len(data)
    if batch_size >= n:
        return data
    per_epoch = steps_per_epoch(n, batch_size, drop_last)
    epoch, i = divmod(step, per_epoch)
    perm = _epoch_permutation(n, seed, epoch)
    return take(data, perm[i * batch_size: (i + 1) * batch_size].to(leaves(data)[0].device))


@functools.lru_cache(maxsize=2)
def _epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


__all__ = ["Batch", "batch_at", "batch_len", "device_of", "leaves", "split", "steps_per_epoch", "take", "to_device"]

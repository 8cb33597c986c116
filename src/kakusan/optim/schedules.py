"""Learning-rate schedules as ``torch.optim.lr_scheduler.LambdaLR`` factors of the step.

A schedule is a multiplier f(s) of the base learning rate after s optimizer steps of a run of S:

- ``constant``: 1;
- ``linear``: 1 − s/S (to zero at the end);
- ``cosine``: ½(1 + cos πs/S);

each optionally preceded by a linear warm-up over the first W steps, f(s) = (s + 1)/W for s < W,
the rest of the schedule then running over s − W of S − W. :func:`make_scheduler` wraps the factor in a
``LambdaLR``, whose state (the step count) is saved in every training checkpoint.
"""

from __future__ import annotations

import functools
import math

import torch

from kakusan.errors import KakusanError

SCHEDULES = ("constant", "linear", "cosine")


def lr_factor(schedule: str, step: int, total: int, warmup: int = 0, floor: float = 0.0) -> float:
    """The multiplier after ``step`` of ``total`` updates (see the module docstring); never below ``floor``."""
    if schedule not in SCHEDULES:
        raise KakusanError(f"unknown lr schedule {schedule!r}: choose {', '.join(SCHEDULES)}")
    if warmup and step < warmup:
        return (step + 1) / warmup
    t = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
    if schedule == "constant":
        f = 1.0
    elif schedule == "linear":
        f = 1.0 - t
    else:
        f = 0.5 * (1.0 + math.cos(math.pi * t))
    return floor + (1.0 - floor) * f


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str = "constant", total: int = 1, *, warmup: int = 0,
                   floor: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` over ``total`` steps: warm-up then ``schedule`` (``cosine``, ``linear``, ``constant``)."""
    if warmup < 0 or warmup > total:
        raise KakusanError(f"warm-up must be between 0 and the {total} training steps, got {warmup}")
    if not 0.0 <= floor <= 1.0:
        raise KakusanError(f"the schedule's floor is a fraction of the learning rate in [0, 1], got {floor}")
    lr_factor(schedule, 0, total)  # validates the name
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(lr_factor, schedule, total=total, warmup=warmup, floor=floor))


__all__ = ["SCHEDULES", "lr_factor", "make_scheduler"]

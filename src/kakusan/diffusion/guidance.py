"""Classifier-free guidance (Ho & Salimans 2022): one network, conditional and unconditional at once.

A class-conditional denoiser trained with label dropout predicts ε̂(x, t, y) for a label y and ε̂(x, t, ∅) for the
null label ∅ (= ``n_classes``). Guidance with weight w samples with

    ε̃(x, t, y) = ε̂(x, t, ∅) + w (ε̂(x, t, y) − ε̂(x, t, ∅)),

i.e. the score of q(x | ∅)^{1−w} q(x | y)^w: w = 1 is the conditional model, w = 0 the unconditional one, w > 1
sharpens towards the class. Both predictions come from one batched call on [x; x] with labels [y; ∅]
(w = 1 and w = 0 need only one of them and make a single call of n rows).

``classifier_free(eps_fn, w, null)`` returns a denoiser with the sampler contract ``(x, t, cond) -> ε̃``
(:mod:`~kakusan.diffusion.samplers`); with ``cond`` None it is ``eps_fn(x, t, None)``. ``null`` is the null label
(an int) of a class-conditional model, or, for a text-conditional one, the
:class:`~kakusan.diffusion.conditioning.TextCondition` of the empty prompt — or of a *negative prompt*: then
ε̃ = ε̂(x, neg) + w (ε̂(x, y) − ε̂(x, neg)) moves samples away from what the negative prompt describes, towards y.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from kakusan.diffusion.conditioning import TextCondition, cat_cond
from kakusan.errors import KakusanError, check_positive_int

Tensor = torch.Tensor


def _doubled_times(t, n: int):
    """t for the stacked batch [x; x]: a scalar stays one, a (n,) tensor is repeated."""
    if isinstance(t, Tensor) and t.ndim > 0:
        if t.numel() == 1:
            return t.reshape(())
        return torch.cat([t.reshape(n), t.reshape(n)])
    return t


def classifier_free(eps_fn: Callable[..., Tensor], w: float, null: int | TextCondition) -> Callable[..., Tensor]:
    """The guided denoiser ε̃ = ε̂(x, t, ∅) + w (ε̂(x, t, y) − ε̂(x, t, ∅)) (module docstring)."""
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
        raise KakusanError(f"the guidance weight must be a finite number, got {w!r}")
    text = isinstance(null, TextCondition)
    if not text:
        check_positive_int(null, "null_label", low=0)
    w = float(w)

    def guided(x: Tensor, t, cond=None) -> Tensor:
        if cond is None:
            return eps_fn(x, t, None)
        n = len(x)
        if text:
            cond = cond.expand(n)
            empty = null.to(x.device).expand(n)
        else:
            cond = torch.as_tensor(cond, device=x.device)
            if cond.ndim == 0:
                cond = cond.expand(n)
            empty = torch.full_like(cond, null)
        if w == 1.0:
            return eps_fn(x, t, cond)
        if w == 0.0:
            return eps_fn(x, t, empty)
        out = eps_fn(torch.cat([x, x]), _doubled_times(t, n), cat_cond(cond, empty))
        e_cond, e_null = out[:n], out[n:]
        return e_null + w * (e_cond - e_null)

    guided.guidance = w  # type: ignore[attr-defined]
    guided.null_label = null  # type: ignore[attr-defined]
    return guided


__all__ = ["classifier_free"]

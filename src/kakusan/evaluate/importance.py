"""Importance-sampling averages in log space: log (1/n) Σ_i w_i from log weights, with error and ESS.

Annealed importance sampling (E[w] = Z_K / Z_0, :mod:`kakusan.rbm.ais`) and the importance-weighted
bound (E[w] = p(x) for w = p(x, z)/q(z|x), log of the mean ≤ log p(x)) both end in the same
estimator. With r_i = w_i / max_j w_j (computed stably as exp(log w_i − max log w)),

    log ŵ = max log w + log r̄,      se(log ŵ) ≈ se(r̄) / r̄ = s_r / (√n r̄),      ESS = (Σ r)² / Σ r²,

where s_r is the sample standard deviation of the normalised weights (the delta method: the error of
the log of a mean is the relative error of the mean). ESS lies between 1 (one weight dominates) and n
(equal weights); a small ESS warns that se underestimates the true error.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from kakusan.errors import KakusanError

Tensor = torch.Tensor
F64 = torch.float64


class LogMeanExp(NamedTuple):
    """log of the mean weight ``value``, its delta-method standard error ``stderr``, the effective sample size
    ``ess`` (each a float64 tensor over the other dimensions, 0-d for a vector of weights), and ``n`` weights."""

    value: Tensor
    stderr: Tensor
    ess: Tensor
    n: int


def log_mean_exp(log_w: Tensor, dim: int = -1) -> LogMeanExp:
    """log (1/n) Σ_i exp(log_w_i) along ``dim``, stably in float64, with its standard error and ESS.

    Parameters
    ----------
    log_w : log importance weights, n ≥ 1 along ``dim`` (e.g. (n_runs,) for AIS, (batch, k) for IWAE).
    dim : the dimension of the weights.

    Returns
    -------
    :class:`LogMeanExp`; stderr is nan where n = 1. Rows whose weights are all 0 (log w = −inf) give −inf.
    """
    log_w = torch.as_tensor(log_w).to(F64)
    if log_w.ndim == 0 or log_w.shape[dim] == 0:
        raise KakusanError(f"log_mean_exp needs at least one weight along dim {dim}, got shape {tuple(log_w.shape)}")
    n = log_w.shape[dim]
    shift = log_w.amax(dim, keepdim=True)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    r = torch.exp(log_w - shift)  # weights / largest weight
    mean = r.mean(dim)
    value = shift.squeeze(dim) + torch.log(mean)
    stderr = r.std(dim) / math.sqrt(n) / mean if n > 1 else torch.full_like(mean, math.nan)
    ess = r.sum(dim) ** 2 / (r**2).sum(dim)
    return LogMeanExp(value, stderr, ess, n)


__all__ = ["LogMeanExp", "log_mean_exp"]

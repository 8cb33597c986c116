"""How heavy is the tail of a set of importance weights? The largest weight's share and the Pareto k̂.

An importance-sampling mean (AIS, the importance-weighted bound) is only as good as its weights' upper tail.
If the weights' distribution has a tail P(w > t) ~ t^{−1/k}, its variance is infinite for k ≥ 1/2 and its mean
for k ≥ 1; long before that, the rare large weights that carry the mean are seldom drawn, and the sample
variance — hence the delta-method standard error and the ESS — looks healthy exactly when the estimate is
furthest off. Vehtari, Simpson, Gelman, Yao & Gabry ("Pareto smoothed importance sampling", JMLR 25 (2024))
estimate k by fitting a generalised Pareto distribution to the largest M = min(n/5, 3√n) weights
(exceedances over the (M+1)-th largest), by the Zhang & Stephens (2009) posterior-mean fit with a weak prior
that pulls k̂ toward 0.5. Their rule for n draws: k̂ ≤ min(1 − 1/log₁₀ n, 0.7) is fine; above it the
estimate's error is much larger than any standard error computed from the same draws says.

>>> import torch
>>> d = weight_tail(torch.randn(1000, dtype=torch.float64))      # log-normal weights, σ = 1
>>> round(d.khat, 1) < 0.7, d.warning() is None
(True, True)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from kakusan.errors import KakusanError

KHAT_LIMIT = 0.7
MAX_SHARE_LIMIT = 0.25


def khat_threshold(n: int) -> float:
    """Vehtari et al.'s sample-size-dependent limit min(1 − 1/log₁₀ n, 0.7) (0.5 at n = 100, 0.7 from n = 2154)."""
    return min(1.0 - 1.0 / math.log10(n), KHAT_LIMIT) if n > 10 else 0.0


class WeightTail(NamedTuple):
    """The tail diagnostic of n importance weights.

    Attributes
    ----------
    khat : Pareto shape k̂ of the largest M weights (nan when n < 10 or the tail is flat).
    tail_size : M = min(n/5, 3√n), the number of weights fitted.
    max_share : the largest weight over the sum, between 1/n and 1.
    ess : (Σw)²/Σw².
    n : number of weights.
    threshold : the k̂ limit for this n, :func:`khat_threshold`.
    """

    khat: float
    tail_size: int
    max_share: float
    ess: float
    n: int
    threshold: float

    @property
    def reliable(self) -> bool:
        """k̂ within the limit for this n and no weight carrying more than 25 % of the sum."""
        return not (self.khat > self.threshold) and self.max_share <= MAX_SHARE_LIMIT

    def warning(self) -> str | None:
        """One line saying why the error bar cannot be trusted, or None."""
        if self.reliable:
            return None
        why = []
        if self.khat > self.threshold:
            why.append(f"Pareto k̂ = {self.khat:.2f} > {self.threshold:.2f}")
        if self.max_share > MAX_SHARE_LIMIT:
            why.append(f"the largest weight carries {100 * self.max_share:.0f} % of the sum")
        return ("heavy-tailed weights (" + "; ".join(why) + "): the estimate may be off by more than its "
                "standard error says — use more runs or more βs")

    def as_dict(self) -> dict:
        return {"khat": self.khat, "khat_threshold": self.threshold, "tail_size": self.tail_size,
                "max_weight_share": self.max_share, "ess": self.ess, "reliable": self.reliable}


def weight_tail(log_w) -> WeightTail:
    """Tail diagnostic of importance weights given as log weights (n,) (any scale: only ratios matter)."""
    lw = torch.as_tensor(log_w, dtype=torch.float64).detach().cpu().reshape(-1).numpy()
    n = len(lw)
    if n == 0 or not np.isfinite(lw).any():
        raise KakusanError("the tail diagnostic needs at least one finite log weight")
    r = np.exp(lw - lw[np.isfinite(lw)].max())
    r = np.where(np.isfinite(lw), r, 0.0)
    share = float(r.max() / r.sum())
    ess = float(r.sum() ** 2 / (r**2).sum())
    m = int(min(0.2 * n, 3 * math.sqrt(n)))
    return WeightTail(pareto_khat(lw), m, share, ess, n, khat_threshold(n))


def pareto_khat(log_w) -> float:
    """k̂ of the generalised Pareto fitted to the largest M = min(n/5, 3√n) weights (Vehtari et al., PSIS).

    nan when n < 10 (too few weights to fit) or when a quarter of the largest M + 1 weights are tied.
    """
    lw = np.sort(np.asarray(torch.as_tensor(log_w, dtype=torch.float64).detach().cpu().reshape(-1)))
    lw = lw[np.isfinite(lw)]
    n = len(lw)
    m = int(min(0.2 * n, 3 * math.sqrt(n)))
    if n < 10 or m < 5:
        return math.nan
    top = np.exp(lw[-(m + 1):] - lw[-1])  # the M + 1 largest weights / the largest
    exceed = top[1:] - top[0]
    if not exceed[int(m / 4 + 0.5) - 1] > 0:  # ties: no continuous tail to fit
        return math.nan
    return gpd_fit(exceed)[0]


def gpd_fit(x: np.ndarray, prior_k: float = 10.0, prior_bs: float = 3.0) -> tuple[float, float]:
    """Shape k and scale σ of a generalised Pareto fitted to positive exceedances ``x`` (ascending).

    Zhang & Stephens (Technometrics 51, 316 (2009)): the posterior mean of θ = −k/σ over a grid of 30 + √n
    points with the profile likelihood as weights, then k̂ = −mean log(1 − θ x) shrunk toward 0.5 by a weak
    prior worth ``prior_k`` observations (Vehtari et al., as in their ``loo`` and ArviZ's ``psislw``).
    """
    x = np.sort(np.asarray(x, dtype=np.float64))
    n = len(x)
    grid = 30 + int(math.sqrt(n))
    b = 1.0 - np.sqrt(grid / (np.arange(1, grid + 1, dtype=np.float64) - 0.5))
    b /= prior_bs * x[int(n / 4 + 0.5) - 1]
    b += 1.0 / x[-1]
    k = np.log1p(-b[:, None] * x).mean(axis=1)
    profile = n * (np.log(-(b / k)) - k - 1.0)
    weights = 1.0 / np.exp(profile - profile[:, None]).sum(axis=1)
    keep = weights >= 10 * np.finfo(float).eps
    b, weights = b[keep], weights[keep] / weights[keep].sum()
    b_post = float(np.sum(b * weights))
    k_post = float(np.log1p(-b_post * x).mean())
    sigma = -k_post / b_post
    k_post = (n * k_post + prior_k * 0.5) / (n + prior_k)
    return k_post, sigma


__all__ = ["KHAT_LIMIT", "MAX_SHARE_LIMIT", "WeightTail", "gpd_fit", "khat_threshold", "pareto_khat", "weight_tail"]

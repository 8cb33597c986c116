"""MCMC diagnostics: autocorrelation, τ_int (Sokal's window), ESS, split R-hat, blocking, error bars.

Shapes. A trace of an observable is (n_steps,) for one chain, or (n_steps, n_chains, ...) with
any trailing observable dimensions (e.g. (n_steps, n_chains, N) for every ⟨x_k⟩ at once); chains
are independent, and every statistic is computed separately for each trailing index.

References: A. D. Sokal, "Monte Carlo methods in statistical mechanics" (1997), §3; H. Flyvbjerg
and H. G. Petersen, J. Chem. Phys. 91, 461 (1989); M. Jonsson, Phys. Rev. E 98, 043304 (2018);
A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Bürkner, Bayesian Analysis 16, 667 (2021).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from scipy import stats

from kakusan.errors import KakusanError

Tensor = torch.Tensor
F64 = torch.float64


class Estimate(NamedTuple):
    """Mean over steps and chains, its Monte Carlo standard error σ = √(Var · τ_int / (n m)), τ_int and ESS."""

    mean: Tensor
    error: Tensor
    tau: Tensor
    ess: Tensor


class Blocking(NamedTuple):
    """Blocking analysis: ``mean``; ``error``, the standard error at the automatically chosen level;
    ``level`` (n_chains, ...), the number of halvings used (one level, chosen jointly, for all chains);
    ``errors`` (n_levels, ...), the naive standard error √(s²/(n_i − 1)) of the grand mean at each level (the Flyvbjerg–Petersen plateau)."""

    mean: Tensor
    error: Tensor
    level: Tensor
    errors: Tensor


def _as_chains(x) -> Tensor:
    """x as a float64 (n_steps, n_chains, ...) tensor; a 1-D trace is one chain."""
    x = torch.as_tensor(x).detach().to("cpu", F64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim < 2 or x.shape[0] < 2:
        raise KakusanError("a trace must be (n_steps,) or (n_steps, n_chains, ...) with n_steps ≥ 2, "
                           f"got {tuple(x.shape)}")
    return x


def autocorrelation(x, *, per_chain: bool = False) -> Tensor:
    """ρ(t) = C(t) / C(0), C(t) = (1/n) Σ_s (x_s − x̄)(x_{s+t} − x̄), by FFT: (n_steps, ...).

    By default every chain is centred on the grand mean (over steps and chains) and C(t) is averaged
    over chains before normalising, giving (n_steps, ...): chains that disagree then show up as slow
    correlations, and short chains bias ρ less than with per-chain means (that bias is ≈ −τ_int/n).
    ``per_chain`` centres each chain on its own mean and gives (n_steps, n_chains, ...). A constant
    series has ρ(0) = 1 and ρ(t > 0) = 0.
    """
    x = _as_chains(x)
    n = x.shape[0]
    centre = x.mean(0) if per_chain else x.mean((0, 1))
    xt = (x - centre).movedim(0, -1).contiguous()  # (n_chains, ..., n_steps): FFT along contiguous rows
    size = 1 << (2 * n - 1).bit_length()  # zero-padding to ≥ 2n: no wrap-around
    f = torch.fft.rfft(xt, n=size)
    power = f.real**2 + f.imag**2
    if not per_chain:
        power = power.mean(0)  # averaging C(t) over chains = averaging the power spectra
    acov = torch.fft.irfft(power, n=size)[..., :n].movedim(-1, 0) / n
    c0 = acov[0]
    rho = acov / torch.where(c0 > 0, c0, 1.0)
    rho[0] = 1.0
    return rho


def integrated_time(x, *, c: float = 5.0, per_chain: bool = False) -> Tensor:
    """τ_int = 1 + 2 Σ_{t=1}^{M} ρ(t) with Sokal's window: the smallest M with M ≥ c τ_int(M).

    Parameters
    ----------
    x : trace (n_steps,) or (n_steps, n_chains, ...).
    c : window constant (Sokal suggests 4–10; 5 as in emcee).
    per_chain : τ_int of each chain instead of that of the chain-averaged autocovariance.

    Returns
    -------
    τ_int, shape (...) (or (n_chains, ...) with ``per_chain``), in steps. If no M < n_steps
    qualifies the trace is too short and τ_int(n_steps − 1) is returned (an underestimate).
    """
    rho = autocorrelation(x, per_chain=per_chain)
    tau = 2.0 * torch.cumsum(rho, 0) - 1.0  # τ(M) = 1 + 2 Σ_{t=1}^{M} ρ(t)
    m = torch.arange(len(rho), dtype=F64).reshape(-1, *([1] * (rho.ndim - 1)))
    ok = m >= c * tau
    window = torch.where(ok.any(0), ok.to(torch.int8).argmax(0), len(rho) - 1)
    return tau.gather(0, window.unsqueeze(0)).squeeze(0).clamp(min=1.0 / len(rho))


def effective_sample_size(x, *, c: float = 5.0) -> Tensor:
    """ESS = n_steps · n_chains / τ_int (chain-averaged τ_int): (...)."""
    x = _as_chains(x)
    return x.shape[0] * x.shape[1] / integrated_time(x, c=c)


def mcse(x, *, c: float = 5.0) -> Tensor:
    """Monte Carlo standard error of the mean over steps and chains, √(Var x · τ_int / (n m)): (...).

    Calibrated (issue 16; ``benchmarks/results_calibration.md``): over 100 seeds of 4 heat-bath chains on 12-spin
    SK glasses at β = 1 and 1.5, z-scores of ⟨E/N⟩ and ⟨m⟩ against enumeration have sd 1.01–1.14 and ±2 s.e.
    coverage 92–97 %. With a slow tail in ρ(t) (glassy observables) the window cuts it off and the error
    comes out ~10 % low: sd(z) creeps toward the 1.33 limit.
    """
    x = _as_chains(x)
    n, m = x.shape[:2]
    var = x.reshape(n * m, *x.shape[2:]).var(0)
    return torch.sqrt(var * integrated_time(x, c=c) / (n * m))


def between_chain_error(x) -> Tensor:
    """Standard error of the grand mean from the spread of the chain means, sd(chain means) / √m: (...).

    Needs m ≥ 2 independent chains, each started afresh and equilibrated; then it holds whatever the
    autocorrelation within a chain, which τ_int from a short run can underestimate (a chain no longer than its own
    slow mode). With m chains it is itself uncertain by about 1/√(2(m − 1)) (18 % at m = 16).
    """
    x = _as_chains(x)
    m = x.shape[1]
    if m < 2:
        raise KakusanError(f"between_chain_error needs at least 2 chains, got {m}")
    return x.mean(0).std(0) / math.sqrt(m)


def estimate(x, *, c: float = 5.0) -> Estimate:
    """Mean, MCSE from τ_int, τ_int and ESS of a trace (n_steps, n_chains, ...) in one call."""
    x = _as_chains(x)
    n, m = x.shape[:2]
    tau = integrated_time(x, c=c)
    var = x.reshape(n * m, *x.shape[2:]).var(0)
    return Estimate(x.mean((0, 1)), torch.sqrt(var * tau / (n * m)), tau, n * m / tau)


def rhat(x) -> Tensor:
    """Rank-normalised split R-hat (Vehtari et al. 2021): max of the bulk and tail (folded) R-hat.

    Each chain is split in halves; draws are replaced by normal scores of their pooled ranks
    (z = Φ⁻¹((r − 3/8)/(S + 1/4)), ties averaged) and the classic R̂ = √(((n−1)/n W + B/n) / W)
    is computed from them; the tail version does the same for |x − median|. Needs n_steps ≥ 4;
    well-mixed chains give R̂ ≈ 1, and R̂ > 1.01 says run longer. Returns (...).
    """
    x = _as_chains(x)
    if x.shape[0] < 4:
        raise KakusanError(f"rhat needs at least 4 steps per chain, got {x.shape[0]}")
    half = x.shape[0] // 2
    split = torch.cat([x[:half], x[x.shape[0] - half :]], 1)  # (n/2, 2m, ...)
    folded = (split - split.flatten(0, 1).median(0).values).abs()
    return torch.maximum(_rhat_classic(_rank_normalise(split)), _rhat_classic(_rank_normalise(folded)))


def _rank_normalise(x: Tensor) -> Tensor:
    n, m = x.shape[:2]
    flat = x.reshape(n * m, -1).numpy()
    ranks = stats.rankdata(flat, axis=0)
    z = torch.from_numpy(stats.norm.ppf((ranks - 0.375) / (n * m + 0.25)))
    return z.reshape(x.shape)


def _rhat_classic(x: Tensor) -> Tensor:
    n = x.shape[0]
    w = x.var(0).mean(0)  # within-chain variance
    b_over_n = x.mean(0).var(0)  # between-chain variance / n
    return torch.sqrt(((n - 1) / n * w + b_over_n) / w)


def blocking(x) -> Blocking:
    """Standard error of the mean by blocking (Flyvbjerg–Petersen), level chosen at the plateau.

    Each chain is halved d = ⌊log₂ n⌋ times by averaging neighbouring pairs (dropping the oldest value when a
    level has an odd length, so every step counts). The naive error of the grand mean at level i,
    √(Σ_c s²_{c,i} / n_i) / n_chains from the n_i block means of each chain, is ``errors[i]``; it grows until
    the blocks outlast the correlations. The chains are pooled to choose one level for all of them (they
    sample the same law): the level is the higher of

    * Jonsson's (2018) test, pooled over chains: the first k with Σ_c M_{c,k} below the 99 % quantile of
      χ²(n_chains (d − k)), M_k = Σ_{i≥k} n_i ((n_i − 1) s_i²/n_i² + γ_i)² / s_i⁴ (γ_i the lag-1
      autocovariance), and
    * the Flyvbjerg–Petersen plateau: the first level whose error is within its own uncertainty of every higher
      level's, errors[j] ≤ errors[k] (1 + √(r_k² + r_j²)) for all j > k, with r_i = 1/√(2 n_chains (n_i − 1))
      the relative s.d. of errors[i] and only levels with ≥ 16 blocks in all compared.

    Jonsson's test alone stops early on short glassy traces (slow, small-amplitude correlations that a
    lag-1 test on few blocks cannot see): over 100 seeds of 4 heat-bath chains × 2000–4000 sweeps on
    12-spin SK glasses it gave z-score sd 1.29–1.46 (a lower bound on the uncertainty); with the plateau the
    error bar is calibrated there (``benchmarks/results_calibration.md``). On i.i.d. data the plateau
    sometimes climbs a few levels, which leaves the error unbiased but noisier. Needs ≥ 16 steps per chain.
    """
    x = _as_chains(x)
    n, m = x.shape[0], x.shape[1]
    d = int(math.log2(n))
    if d < 4:
        raise KakusanError(f"blocking needs at least 16 steps per chain, got {n}")
    y = x
    sizes, terms, errs = [], [], []
    for _ in range(d):
        n_i = y.shape[0]
        mu = y.mean(0)
        s2 = ((y - mu) ** 2).sum(0) / n_i  # biased, per chain
        gamma = ((y[:-1] - mu) * (y[1:] - mu)).sum(0) / n_i
        safe = torch.where(s2 > 0, s2, 1.0)
        terms.append(torch.where(s2 > 0, n_i * ((n_i - 1) * s2 / n_i**2 + gamma) ** 2 / safe**2, 0.0).sum(0))
        errs.append((s2 / (n_i - 1)).sum(0).sqrt() / m)
        sizes.append(n_i)
        y = y[y.shape[0] % 2 :]
        y = 0.5 * (y[0::2] + y[1::2])
    errors, shape = torch.stack(errs), (-1, *([1] * (x.ndim - 2)))
    n_i = torch.tensor(sizes, dtype=F64).reshape(shape)
    m_stat = torch.flip(torch.cumsum(torch.flip(torch.stack(terms), [0]), 0), [0])  # Σ_c M_{c,k}
    q = torch.from_numpy(stats.chi2.ppf(0.99, m * np.arange(d, 0, -1))).reshape(shape)
    ok = m_stat < q
    jonsson = torch.where(ok.any(0), ok.to(torch.int8).argmax(0), d - 1)
    rel = 1 / torch.sqrt(2 * m * (n_i - 1))
    last = max(i for i, s in enumerate(sizes) if m * s >= 16)
    upper = torch.triu(torch.ones(d, d, dtype=torch.bool), 1)  # [k, j]: j > k
    upper[:, last + 1 :] = False
    below = errors[None, :] <= errors[:, None] * (1 + torch.sqrt(rel[:, None] ** 2 + rel[None, :] ** 2))
    flat = (below | ~upper.reshape(d, d, *([1] * (x.ndim - 2)))).all(1)
    plateau = flat.to(torch.int8).argmax(0)
    level = torch.maximum(jonsson, plateau)
    error = errors.gather(0, level.unsqueeze(0)).squeeze(0)
    mean = x.mean(0).mean(0)
    return Blocking(mean, error, level.unsqueeze(0).expand(m, *level.shape).clone(), errors)

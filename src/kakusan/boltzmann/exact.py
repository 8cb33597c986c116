"""Exact enumeration of an Ising model's 2^N states: log Z, moments, KL(p0||q), exact samples.

The model is q(x) = exp(−β E(x)) / Z with E(x) = −½ xᵀJx − hᵀx over x ∈ {−1,+1}^N. State
index i encodes spin k in bit k: x_k = 2·bit_k(i) − 1 (:func:`all_states`, :func:`state_index`).

N ≤ 12 uses one table of all states; larger N the three-block contraction of
:mod:`kakusan.boltzmann.contraction` (three float64 GEMMs, exact to rounding for any finite J, h, β).
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple, Protocol

import torch
from tqdm.auto import tqdm

from kakusan.boltzmann.contraction import (CHUNK, energy_square, ising_energy, make_blocks, make_spin_table,
                                           make_weights, moments, pass_ac, pass_bc, spin_table)
from kakusan.data.spins import check_spins
from kakusan.errors import KakusanError
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor

MAX_SPINS = 32
"""Exact enumeration refuses models with more spins (2^32 states take seconds; 2^36 minutes)."""
MAX_TABLE_SPINS = 24
""":func:`log_prob_all` (one number per state) refuses more spins; :func:`all_states` refuses N > 20."""
_DENSE = 12  # up to this N one table of all states beats the contraction's fixed cost


class IsingLike(Protocol):
    """Anything with couplings ``J`` (N, N), symmetric with zero diagonal, and fields ``h`` (N,)."""

    J: Tensor
    h: Tensor


class IsingParams(NamedTuple):
    """Raw parameters, for calling the functions here without a model: ``J`` (N, N) and ``h`` (N,)."""

    J: Tensor
    h: Tensor


class ExactStats(NamedTuple):
    """Exact statistics of q(x) ∝ exp(−β E(x)).

    ``log_z`` is log Z (nats); ``mean`` (N,) is ⟨x_k⟩; ``corr`` (N, N) is ⟨x_k x_l⟩ (ones on the
    diagonal); ``energy_mean`` is ⟨E⟩ and ``energy_var`` Var(E) of the unscaled energy E (nan
    unless asked for); ``beta`` is the inverse temperature they were computed at.
    """

    log_z: float
    mean: Tensor
    corr: Tensor
    energy_mean: float
    energy_var: float
    beta: float


# ---------------------------------------------------------------- states and energies


def all_states(n: int, device: torch.device | str = "cpu") -> Tensor:
    """All 2^n spin states, (2^n, n) float64; row i has x_k = 2·bit_k(i) − 1."""
    _check_size(n, 20, "list every state")
    return make_spin_table(n, str(device))


def state_index(x: Tensor) -> Tensor:
    """Index i = Σ_k bit_k 2^k of each ±1 state (bit_k = 1 where x_k = +1): (B, N) -> (B,) int64."""
    bits = (x > 0).to(torch.int64)
    return (bits << torch.arange(x.shape[-1], device=x.device)).sum(-1)


def _params(model: IsingLike) -> tuple[Tensor, Tensor]:
    """Detached float64 (J, h), J symmetrised with zero diagonal; refuses too many spins."""
    J = model.J.detach().to(torch.float64)
    h = model.h.detach().to(torch.float64)
    _check_size(h.numel(), MAX_SPINS, "enumerate")
    J = 0.5 * (J + J.T)
    return J - torch.diag_embed(torch.diagonal(J)), h


def _check_size(n: int, limit: int, what: str) -> None:
    if n > limit:
        raise KakusanError(
            f"cannot {what} exactly for N = {n} spins (2^{n} states; the limit is N = {limit}): "
            "use an MCMC sampler for statistics and AIS for log Z"
        )


def _dense_stats(J: Tensor, h: Tensor, beta: float) -> tuple[float, Tensor, Tensor, float, float]:
    """Small N: log Z, ⟨x⟩, ⟨x xᵀ⟩, ⟨E⟩, Var E from one (2^N, N) table of all states."""
    X = spin_table(len(h), str(h.device))
    E = ising_energy(J, h, X)
    log_w = -beta * E
    lz = torch.logsumexp(log_w, 0)
    q = torch.exp(log_w - lz)
    e_mean = q @ E
    return float(lz), q @ X, X.T @ (q[:, None] * X), float(e_mean), float(q @ (E - e_mean) ** 2)


def _progress(n: int, passes: int, progress: bool | None) -> tqdm:
    show = progress if progress is not None else (n >= 30 and sys.stderr.isatty())
    return tqdm(total=passes * 2**n, unit="state", unit_scale=True, disable=not show, leave=False)


# ---------------------------------------------------------------- public functions


def log_z(model: IsingLike, *, beta: float = 1.0, progress: bool | None = None) -> float:
    """log Z = log Σ_x exp(−β E(x)), exact (one GEMM over 2^N states).

    Parameters
    ----------
    model : anything with ``J`` (N, N) and ``h`` (N,), e.g. an ``IsingModel`` or ``IsingParams``.
    beta : inverse temperature β.
    progress : show a progress bar; ``None`` shows one for N ≥ 30 on a terminal.
    """
    J, h = _params(model)
    if h.numel() <= _DENSE:
        return float(torch.logsumexp(-beta * ising_energy(J, h, spin_table(h.numel(), str(h.device))), 0))
    bk = make_blocks(J, h)
    with _progress(h.numel(), 1, progress) as bar:
        return pass_ac(bk, make_weights(bk, beta), beta, bar).log_z


def exact_stats(
    model: IsingLike, *, beta: float = 1.0, energy_var: bool = False, progress: bool | None = None
) -> ExactStats:
    """log Z, ⟨x_k⟩ and ⟨x_k x_l⟩ (and ⟨E⟩, Var E) of q(x) ∝ exp(−β E(x)), exact, in float64.

    Three GEMMs over 2^N states (three more with ``energy_var``); see :mod:`kakusan.boltzmann.contraction`.
    For N ≤ 12 a single table of all states is faster and is used instead.
    Runs on ``model.J``'s device with ``torch.get_num_threads()`` threads.

    Returns
    -------
    ExactStats with mean (N,) and corr (N, N) as float64 tensors.
    """
    J, h = _params(model)
    if h.numel() <= _DENSE:
        lz, mean, corr, e_mean, e_var = _dense_stats(J, h, beta)
        return ExactStats(lz, mean, corr, e_mean, e_var if energy_var else math.nan, float(beta))
    bk = make_blocks(J, h)
    wt = make_weights(bk, beta)
    with _progress(h.numel(), 2, progress) as bar:
        ac = pass_ac(bk, wt, beta, bar)
        pab, pbc = pass_bc(bk, wt, ac, beta, bar)
    mean, corr = moments(bk, pab, ac.pac, pbc)
    e_mean = float(-0.5 * (J * corr).sum() - h @ mean)
    e_var = math.nan
    if energy_var:
        e2 = energy_square(bk, wt, ac, pab, pbc, beta)
        e_var = float(e2 / ac.pac.sum() - (e_mean - ac.e0) ** 2)
    return ExactStats(ac.log_z, mean, corr, e_mean, e_var, float(beta))


def log_prob_all(model: IsingLike, *, beta: float = 1.0) -> Tensor:
    """log q(x_i) for every state index i (see :func:`state_index`): (2^N,) float64."""
    J, h = _params(model)
    _check_size(h.numel(), MAX_TABLE_SPINS, "tabulate log q(x) of every state")
    bk = make_blocks(J, h)
    logw = -beta * (bk.eab.T[None] + bk.eac.T[:, None, :] + bk.ebc.T[:, :, None])  # (C, B, A)
    logw = logw.reshape(-1)
    return logw - torch.logsumexp(logw, 0)


def exact_sample(
    model: IsingLike, n: int, *, beta: float = 1.0, generator: Seed = None, progress: bool | None = None
) -> Tensor:
    """n independent exact draws x ~ q(x) ∝ exp(−β E(x)): (n, N) float64 ±1.

    Draws (a, c) from p(a, c) by inverse CDF, then b from q(b | a, c) ∝ exp(−β(E_ab + E_bc)),
    with uniforms from ``generator`` (a ``torch.Generator`` or a seed), so a seed fixes the draws.
    """
    g = make_generator(generator, device="cpu")
    J, h = _params(model)
    bk = make_blocks(J, h)
    with _progress(h.numel(), 1, progress) as bar:
        pac = pass_ac(bk, make_weights(bk, beta), beta, bar).pac
    A = pac.shape[0]
    cdf = torch.cumsum(pac.T.reshape(-1), 0)  # index a + A c
    u = torch.rand(n, generator=g, dtype=torch.float64).to(cdf.device)
    k = torch.searchsorted(cdf, u * cdf[-1], right=True).clamp_(max=len(cdf) - 1)
    a, c = k % A, k // A
    b = torch.empty_like(a)
    step = max(1, CHUNK // bk.eab.shape[1])
    for i in range(0, n, step):
        logit = -beta * (bk.eab[a[i : i + step]] + bk.ebc.T[c[i : i + step]])  # (chunk, B)
        cdf_b = torch.cumsum(torch.softmax(logit, 1), 1)
        v = torch.rand(len(logit), 1, generator=g, dtype=torch.float64).to(cdf.device)
        b[i : i + step] = torch.searchsorted(cdf_b, v * cdf_b[:, -1:], right=True).squeeze(1)
    b.clamp_(max=bk.eab.shape[1] - 1)
    return torch.cat([bk.xa[a], bk.xb[b], bk.xc[c]], 1)


def _empirical(x: Tensor, weights: Tensor | None) -> tuple[Tensor, Tensor]:
    """Distinct rows of x and their probabilities p0 under the (weighted) empirical distribution."""
    w = torch.ones(len(x), dtype=torch.float64) if weights is None else weights.to(torch.float64).cpu()
    if w.shape != (len(x),) or not bool((w >= 0).all()) or not float(w.sum()) > 0:
        raise KakusanError(f"weights must be {len(x)} non-negative numbers with a positive sum")
    states, inverse = torch.unique(x.cpu(), dim=0, return_inverse=True)
    p0 = torch.zeros(len(states), dtype=torch.float64).index_add_(0, inverse, w)
    return states, p0 / p0.sum()


def mean_log_likelihood(
    model: IsingLike, data: Tensor, weights: Tensor | None = None, *, beta: float = 1.0
) -> float:
    """Σ_x p0(x) log q(x) (nats) with p0 the empirical distribution of the rows of ``data`` (M, N).

    ``weights`` (M,) makes p0 = Σ_i w_i δ(x − x_i) / Σ w (e.g. exact probabilities).
    """
    J, h = _params(model)
    states, p0 = _empirical(check_spins(data, h.numel()).to(torch.float64), weights)
    log_q = -beta * ising_energy(J.cpu(), h.cpu(), states) - log_z(model, beta=beta)
    return float(p0 @ log_q)


def kl_divergence(model: IsingLike, data: Tensor, weights: Tensor | None = None, *, beta: float = 1.0) -> float:
    """KL(p0||q) = Σ_x p0(x) log(p0(x)/q(x)) ≥ 0 (nats), p0 as in :func:`mean_log_likelihood`."""
    J, h = _params(model)
    states, p0 = _empirical(check_spins(data, h.numel()).to(torch.float64), weights)
    log_q = -beta * ising_energy(J.cpu(), h.cpu(), states) - log_z(model, beta=beta)
    keep = p0 > 0
    return float((p0[keep] * (torch.log(p0[keep]) - log_q[keep])).sum())

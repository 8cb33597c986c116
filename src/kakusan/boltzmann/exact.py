"""Exact enumeration of an Ising model's 2^N states: log Z, moments, KL(p0||q), exact samples.

The model is q(x) = exp(−β E(x)) / Z with E(x) = −½ xᵀJx − hᵀx over x ∈ {−1,+1}^N. State
index i encodes spin k in bit k: x_k = 2·bit_k(i) − 1 (:func:`all_states`, :func:`state_index`).

Algorithm (three-block contraction). Split the spins into blocks a, b, c of about N/3 spins,
with all states of each block in tables X_a (A, n_a), X_b (B, n_b), X_c (C, n_c). A pairwise
energy splits over the pairs of blocks,

    E(a, b, c) = E_ab[a, b] + E_ac[a, c] + E_bc[b, c]

(E_ab holds the energy inside a and b and between them, E_ac the energy inside c and between
a and c, E_bc the energy between b and c), so the Boltzmann weight factorises, w = M_ab N_ac P_bc
with M = exp(−β E_ab) etc., and each sum over 2^N states is a matrix product:

    Z = Σ_ac N_ac (M P)_ac,   p(a,c) ∝ N ⊙ (M P),   p(b,c) ∝ P ⊙ (Mᵀ N),   p(a,b) ∝ M ⊙ (N Pᵀ).

The three pair marginals give Z, every ⟨x_k⟩ and every ⟨x_k x_l⟩: three float64 GEMMs, i.e.
6 flops per state and O(2^{2N/3}) exponentials and memory in all, where plain enumeration
spends one exponential and O(N²) flops on each state.

Each table is shifted by its maximum (per column c for N and P), so nothing overflows. The product
of three shifted tables can still fall far below its largest term when the blocks frustrate each
other; a column c whose sum falls below 1e-200 is recomputed directly in log space, so results
are exact to rounding for any finite J, h and β.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Iterator
from typing import NamedTuple, Protocol

import torch
from tqdm.auto import tqdm

from kakusan.data.spins import check_spins
from kakusan.errors import KakusanError
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor

MAX_SPINS = 32
"""Exact enumeration refuses models with more spins (2^32 states take seconds; 2^36 minutes)."""
MAX_TABLE_SPINS = 24
""":func:`log_prob_all` (one number per state) refuses more spins; :func:`all_states` refuses N > 20."""
_TINY = 1e-200  # column sums below this are recomputed directly in log space
_CHUNK = 1 << 21  # elements of one (rows, chunk of c) temporary
_DIRECT = 1 << 22  # elements of one batch of directly computed columns
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


class _Blocks(NamedTuple):
    """Spin tables of blocks a, b, c and the energies E_ab (A, B), E_ac (A, C), E_bc (B, C)."""

    xa: Tensor
    xb: Tensor
    xc: Tensor
    eab: Tensor
    eac: Tensor
    ebc: Tensor


class _Weights(NamedTuple):
    """w(a,b,c) = m[a,b] · n[a,c] · p[b,c] · exp(shift[c]); each of m, n, p has maximum 1."""

    m: Tensor
    n: Tensor
    p: Tensor
    shift: Tensor


class _AC(NamedTuple):
    """Pass 1: p(a,c) (A, C) scaled by exp(−ref), column scales r (C,), directly computed columns,
    log Z, and e0 ≈ the energy of the likeliest states (to centre Var E)."""

    pac: Tensor
    r: Tensor
    direct: Tensor
    log_z: float
    e0: float


# ---------------------------------------------------------------- states and energies


def all_states(n: int, device: torch.device | str = "cpu") -> Tensor:
    """All 2^n spin states, (2^n, n) float64; row i has x_k = 2·bit_k(i) − 1."""
    _check_size(n, 20, "list every state")
    return _make_spin_table(n, str(device))


def state_index(x: Tensor) -> Tensor:
    """Index i = Σ_k bit_k 2^k of each ±1 state (bit_k = 1 where x_k = +1): (B, N) -> (B,) int64."""
    bits = (x > 0).to(torch.int64)
    return (bits << torch.arange(x.shape[-1], device=x.device)).sum(-1)


def _spin_table(n: int, device: str = "cpu") -> Tensor:
    """All 2^n states (2^n, n), cached up to n = 16: callers must not modify it."""
    return _cached_spin_table(n, device) if n <= 16 else _make_spin_table(n, device)


@functools.lru_cache(maxsize=64)
def _cached_spin_table(n: int, device: str) -> Tensor:
    return _make_spin_table(n, device)


def _make_spin_table(n: int, device: str) -> Tensor:
    i = torch.arange(1 << n, device=device).unsqueeze(1)
    return (2 * ((i >> torch.arange(n, device=device)) & 1) - 1).to(torch.float64)


def _energy(J: Tensor, h: Tensor, x: Tensor) -> Tensor:
    """E(x) = −½ xᵀJx − hᵀx for each row of x: (B, N) -> (B,)."""
    return -0.5 * ((x @ J) * x).sum(-1) - x @ h


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


def _split(n: int) -> tuple[int, int, int]:
    """Block sizes (n_a, n_b, n_c), n_a ≥ n_b ≥ n_c, about n/3 each."""
    nc = n // 3
    nb = (n - nc) // 2
    return n - nb - nc, nb, nc


def _blocks(J: Tensor, h: Tensor) -> _Blocks:
    na, nb, _ = _split(h.numel())
    a, b, c = slice(0, na), slice(na, na + nb), slice(na + nb, None)
    xa, xb, xc = (_spin_table(len(h[s]), str(h.device)) for s in (a, b, c))
    ea, eb, ec = (_energy(J[s, s], h[s], x) for s, x in ((a, xa), (b, xb), (c, xc)))
    eab = ea[:, None] + eb[None, :] - (xa @ J[a, b]) @ xb.T  # (A, B)
    eac = ec[None, :] - (xa @ J[a, c]) @ xc.T  # (A, C)
    ebc = -(xb @ J[b, c]) @ xc.T  # (B, C)
    return _Blocks(xa, xb, xc, eab, eac, ebc)


def _weights(bk: _Blocks, beta: float) -> _Weights:
    lab, lac, lbc = -beta * bk.eab, -beta * bk.eac, -beta * bk.ebc
    m0, s1, s2 = lab.max(), lac.amax(0), lbc.amax(0)
    return _Weights(torch.exp(lab - m0), torch.exp(lac - s1), torch.exp(lbc - s2), m0 + s1 + s2)


# ---------------------------------------------------------------- the contraction


def _chunks(rows: int, cols: int) -> Iterator[slice]:
    step = max(1, _CHUNK // rows)
    return (slice(i, min(i + step, cols)) for i in range(0, cols, step))


def _direct(bk: _Blocks, beta: float, cols: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Columns ``cols`` computed in log space: (cols, w (U, A, B) with max 1, log scale (U,))."""
    step = max(1, _DIRECT // bk.eab.numel())
    for i in range(0, len(cols), step):
        u = cols[i : i + step]
        logw = -beta * (bk.eab[None] + bk.eac.T[u][:, :, None] + bk.ebc.T[u][:, None, :])
        mx = logw.amax((1, 2))
        yield u, torch.exp(logw - mx[:, None, None]), mx


def _pass_ac(bk: _Blocks, wt: _Weights, beta: float, bar: tqdm) -> _AC:
    """p(a,c) = n ⊙ (m p) for every c (one GEMM), its normalisation and log Z."""
    g = torch.empty_like(wt.n)
    for cs in _chunks(wt.m.shape[0], g.shape[1]):
        g[:, cs] = (wt.m @ wt.p[:, cs]) * wt.n[:, cs]
        bar.update(wt.m.numel() * (cs.stop - cs.start))
    col = g.sum(0)
    direct = ~(col >= _TINY)
    log_col, log_scale = wt.shift + torch.log(col), wt.shift.clone()
    for u, w, mx in _direct(bk, beta, direct.nonzero().squeeze(1)):
        g[:, u] = w.sum(2).T
        log_col[u], log_scale[u] = mx + torch.log(w.sum((1, 2))), mx
    ref = log_col.max()
    r = torch.exp(log_scale - ref)
    log_z = float(ref + torch.log(torch.exp(log_col - ref).sum()))
    e0 = -float(log_scale[log_col.argmax()]) / beta if beta != 0 else 0.0
    return _AC(g * r, r, direct, log_z, e0)


def _pass_bc(bk: _Blocks, wt: _Weights, ac: _AC, beta: float, bar: tqdm) -> tuple[Tensor, Tensor]:
    """p(b,c) = p ⊙ (mᵀ n) (B, C) and p(a,b) = m ⊙ (n pᵀ) (A, B), scaled like ``ac.pac``: two GEMMs."""
    ns = wt.n * torch.where(ac.direct, 0.0, ac.r)  # (A, C)
    pbc, rab = torch.empty_like(wt.p), torch.zeros_like(wt.m)
    for cs in _chunks(wt.m.shape[1], ns.shape[1]):
        pbc[:, cs] = (wt.m.T @ ns[:, cs]) * wt.p[:, cs]
        rab += ns[:, cs] @ wt.p[:, cs].T
        bar.update(wt.m.numel() * (cs.stop - cs.start))
    pab = wt.m * rab
    for u, w, _ in _direct(bk, beta, ac.direct.nonzero().squeeze(1)):
        w = w * ac.r[u][:, None, None]
        pbc[:, u] = w.sum(1).T
        pab += w.sum(0)
    return pab, pbc


def _energy_square(bk: _Blocks, wt: _Weights, ac: _AC, pab: Tensor, pbc: Tensor, beta: float) -> Tensor:
    """Σ w (E − e0)², scaled like ``ac.pac``; centring keeps Var E = ⟨(E − e0)²⟩ − (⟨E⟩ − e0)² accurate.

    (E − e0)² = E_ab² + E_ac² + E_bc² + 2(E_ab E_ac + E_ac E_bc + E_ab E_bc) with E_ab shifted by e0:
    squares from the pair marginals, cross terms by three more GEMMs.
    """
    eab = bk.eab - ac.e0
    ns, me = wt.n * torch.where(ac.direct, 0.0, ac.r), wt.m * eab
    cross = torch.zeros((), dtype=ns.dtype, device=ns.device)
    for cs in _chunks(wt.m.shape[0], ns.shape[1]):
        p, pe = wt.p[:, cs], wt.p[:, cs] * bk.ebc[:, cs]
        cross += (ns[:, cs] * (bk.eac[:, cs] * (me @ p + wt.m @ pe) + me @ pe)).sum()
    for u, w, _ in _direct(bk, beta, ac.direct.nonzero().squeeze(1)):
        ec, bc = bk.eac.T[u][:, :, None], bk.ebc.T[u][:, None, :]
        cross += ac.r[u] @ (w * (eab * ec + ec * bc + eab * bc)).sum((1, 2))
    squares = (pab * eab**2).sum() + (ac.pac * bk.eac**2).sum() + (pbc * bk.ebc**2).sum()
    return squares + 2 * cross


def _moments(bk: _Blocks, pab: Tensor, pac: Tensor, pbc: Tensor) -> tuple[Tensor, Tensor]:
    """⟨x⟩ (N,) and ⟨x xᵀ⟩ (N, N) from the three pair marginals (normalised here)."""
    za, zb, zc = pab.sum(1), pab.sum(0), pac.sum(0)
    z = za.sum()
    xa, xb, xc = bk.xa, bk.xb, bk.xc
    mean = torch.cat([xa.T @ za, xb.T @ zb, xc.T @ zc]) / z
    ab, ac, bc = xa.T @ pab @ xb, xa.T @ pac @ xc, xb.T @ pbc @ xc
    corr = torch.cat(
        [
            torch.cat([xa.T @ (za[:, None] * xa), ab, ac], 1),
            torch.cat([ab.T, xb.T @ (zb[:, None] * xb), bc], 1),
            torch.cat([ac.T, bc.T, xc.T @ (zc[:, None] * xc)], 1),
        ]
    )
    return mean, corr / z


def _dense_stats(J: Tensor, h: Tensor, beta: float) -> tuple[float, Tensor, Tensor, float, float]:
    """Small N: log Z, ⟨x⟩, ⟨x xᵀ⟩, ⟨E⟩, Var E from one (2^N, N) table of all states."""
    X = _spin_table(len(h), str(h.device))
    E = _energy(J, h, X)
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
        return float(torch.logsumexp(-beta * _energy(J, h, _spin_table(h.numel(), str(h.device))), 0))
    bk = _blocks(J, h)
    with _progress(h.numel(), 1, progress) as bar:
        return _pass_ac(bk, _weights(bk, beta), beta, bar).log_z


def exact_stats(
    model: IsingLike, *, beta: float = 1.0, energy_var: bool = False, progress: bool | None = None
) -> ExactStats:
    """log Z, ⟨x_k⟩ and ⟨x_k x_l⟩ (and ⟨E⟩, Var E) of q(x) ∝ exp(−β E(x)), exact, in float64.

    Three GEMMs over 2^N states (three more with ``energy_var``); see the module docstring.
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
    bk = _blocks(J, h)
    wt = _weights(bk, beta)
    with _progress(h.numel(), 2, progress) as bar:
        ac = _pass_ac(bk, wt, beta, bar)
        pab, pbc = _pass_bc(bk, wt, ac, beta, bar)
    mean, corr = _moments(bk, pab, ac.pac, pbc)
    e_mean = float(-0.5 * (J * corr).sum() - h @ mean)
    e_var = math.nan
    if energy_var:
        e2 = _energy_square(bk, wt, ac, pab, pbc, beta)
        e_var = float(e2 / ac.pac.sum() - (e_mean - ac.e0) ** 2)
    return ExactStats(ac.log_z, mean, corr, e_mean, e_var, float(beta))


def log_prob_all(model: IsingLike, *, beta: float = 1.0) -> Tensor:
    """log q(x_i) for every state index i (see :func:`state_index`): (2^N,) float64."""
    J, h = _params(model)
    _check_size(h.numel(), MAX_TABLE_SPINS, "tabulate log q(x) of every state")
    bk = _blocks(J, h)
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
    bk = _blocks(J, h)
    with _progress(h.numel(), 1, progress) as bar:
        pac = _pass_ac(bk, _weights(bk, beta), beta, bar).pac
    A = pac.shape[0]
    cdf = torch.cumsum(pac.T.reshape(-1), 0)  # index a + A c
    u = torch.rand(n, generator=g, dtype=torch.float64).to(cdf.device)
    k = torch.searchsorted(cdf, u * cdf[-1], right=True).clamp_(max=len(cdf) - 1)
    a, c = k % A, k // A
    b = torch.empty_like(a)
    step = max(1, _CHUNK // bk.eab.shape[1])
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
    log_q = -beta * _energy(J.cpu(), h.cpu(), states) - log_z(model, beta=beta)
    return float(p0 @ log_q)


def kl_divergence(model: IsingLike, data: Tensor, weights: Tensor | None = None, *, beta: float = 1.0) -> float:
    """KL(p0||q) = Σ_x p0(x) log(p0(x)/q(x)) ≥ 0 (nats), p0 as in :func:`mean_log_likelihood`."""
    J, h = _params(model)
    states, p0 = _empirical(check_spins(data, h.numel()).to(torch.float64), weights)
    log_q = -beta * _energy(J.cpu(), h.cpu(), states) - log_z(model, beta=beta)
    keep = p0 > 0
    return float((p0[keep] * (torch.log(p0[keep]) - log_q[keep])).sum())

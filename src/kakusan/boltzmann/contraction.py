"""The three-block contraction behind :mod:`kakusan.boltzmann.exact`: sums over the 2^N states of an Ising
model as three matrix products.

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
from collections.abc import Iterator
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

Tensor = torch.Tensor

TINY = 1e-200  # column sums below this are recomputed directly in log space
CHUNK = 1 << 21  # elements of one (rows, chunk of c) temporary
DIRECT = 1 << 22  # elements of one batch of directly computed columns


class Blocks(NamedTuple):
    """Spin tables of blocks a, b, c and the energies E_ab (A, B), E_ac (A, C), E_bc (B, C)."""

    xa: Tensor
    xb: Tensor
    xc: Tensor
    eab: Tensor
    eac: Tensor
    ebc: Tensor


class Weights(NamedTuple):
    """w(a,b,c) = m[a,b] · n[a,c] · p[b,c] · exp(shift[c]); each of m, n, p has maximum 1."""

    m: Tensor
    n: Tensor
    p: Tensor
    shift: Tensor


class AC(NamedTuple):
    """Pass 1: p(a,c) (A, C) scaled by exp(−ref), column scales r (C,), directly computed columns,
    log Z, and e0 ≈ the energy of the likeliest states (to centre Var E)."""

    pac: Tensor
    r: Tensor
    direct: Tensor
    log_z: float
    e0: float


# ---------------------------------------------------------------- states, energies, blocks


def spin_table(n: int, device: str = "cpu") -> Tensor:
    """All 2^n states (2^n, n), cached up to n = 16: callers must not modify it."""
    return _cached_spin_table(n, device) if n <= 16 else make_spin_table(n, device)


@functools.lru_cache(maxsize=64)
def _cached_spin_table(n: int, device: str) -> Tensor:
    return make_spin_table(n, device)


def make_spin_table(n: int, device: str) -> Tensor:
    """All 2^n states (2^n, n) float64, a new table; row i has x_k = 2·bit_k(i) − 1."""
    i = torch.arange(1 << n, device=device).unsqueeze(1)
    return (2 * ((i >> torch.arange(n, device=device)) & 1) - 1).to(torch.float64)


def ising_energy(J: Tensor, h: Tensor, x: Tensor) -> Tensor:
    """E(x) = −½ xᵀJx − hᵀx for each row of x: (B, N) -> (B,)."""
    return -0.5 * ((x @ J) * x).sum(-1) - x @ h


def split_sizes(n: int) -> tuple[int, int, int]:
    """Block sizes (n_a, n_b, n_c), n_a ≥ n_b ≥ n_c, about n/3 each."""
    nc = n // 3
    nb = (n - nc) // 2
    return n - nb - nc, nb, nc


def make_blocks(J: Tensor, h: Tensor) -> Blocks:
    """The state tables of blocks a, b, c and the three pair energies of (J, h)."""
    na, nb, _ = split_sizes(h.numel())
    a, b, c = slice(0, na), slice(na, na + nb), slice(na + nb, None)
    xa, xb, xc = (spin_table(len(h[s]), str(h.device)) for s in (a, b, c))
    ea, eb, ec = (ising_energy(J[s, s], h[s], x) for s, x in ((a, xa), (b, xb), (c, xc)))
    eab = ea[:, None] + eb[None, :] - (xa @ J[a, b]) @ xb.T  # (A, B)
    eac = ec[None, :] - (xa @ J[a, c]) @ xc.T  # (A, C)
    ebc = -(xb @ J[b, c]) @ xc.T  # (B, C)
    return Blocks(xa, xb, xc, eab, eac, ebc)


def make_weights(bk: Blocks, beta: float) -> Weights:
    """The Boltzmann factors of the pair energies at β, each shifted to maximum 1."""
    lab, lac, lbc = -beta * bk.eab, -beta * bk.eac, -beta * bk.ebc
    m0, s1, s2 = lab.max(), lac.amax(0), lbc.amax(0)
    return Weights(torch.exp(lab - m0), torch.exp(lac - s1), torch.exp(lbc - s2), m0 + s1 + s2)


# ---------------------------------------------------------------- the contraction


def chunks(rows: int, cols: int) -> Iterator[slice]:
    """Column slices of a (rows, cols) table of about :data:`CHUNK` elements each."""
    step = max(1, CHUNK // rows)
    return (slice(i, min(i + step, cols)) for i in range(0, cols, step))


def direct_columns(bk: Blocks, beta: float, cols: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Columns ``cols`` computed in log space: (cols, w (U, A, B) with max 1, log scale (U,))."""
    step = max(1, DIRECT // bk.eab.numel())
    for i in range(0, len(cols), step):
        u = cols[i : i + step]
        logw = -beta * (bk.eab[None] + bk.eac.T[u][:, :, None] + bk.ebc.T[u][:, None, :])
        mx = logw.amax((1, 2))
        yield u, torch.exp(logw - mx[:, None, None]), mx


def pass_ac(bk: Blocks, wt: Weights, beta: float, bar: tqdm) -> AC:
    """p(a,c) = n ⊙ (m p) for every c (one GEMM), its normalisation and log Z."""
    g = torch.empty_like(wt.n)
    for cs in chunks(wt.m.shape[0], g.shape[1]):
        g[:, cs] = (wt.m @ wt.p[:, cs]) * wt.n[:, cs]
        bar.update(wt.m.numel() * (cs.stop - cs.start))
    col = g.sum(0)
    direct = ~(col >= TINY)
    log_col, log_scale = wt.shift + torch.log(col), wt.shift.clone()
    for u, w, mx in direct_columns(bk, beta, direct.nonzero().squeeze(1)):
        g[:, u] = w.sum(2).T
        log_col[u], log_scale[u] = mx + torch.log(w.sum((1, 2))), mx
    ref = log_col.max()
    r = torch.exp(log_scale - ref)
    log_z = float(ref + torch.log(torch.exp(log_col - ref).sum()))
    e0 = -float(log_scale[log_col.argmax()]) / beta if beta != 0 else 0.0
    return AC(g * r, r, direct, log_z, e0)


def pass_bc(bk: Blocks, wt: Weights, ac: AC, beta: float, bar: tqdm) -> tuple[Tensor, Tensor]:
    """p(b,c) = p ⊙ (mᵀ n) (B, C) and p(a,b) = m ⊙ (n pᵀ) (A, B), scaled like ``ac.pac``: two GEMMs."""
    ns = wt.n * torch.where(ac.direct, 0.0, ac.r)  # (A, C)
    pbc, rab = torch.empty_like(wt.p), torch.zeros_like(wt.m)
    for cs in chunks(wt.m.shape[1], ns.shape[1]):
        pbc[:, cs] = (wt.m.T @ ns[:, cs]) * wt.p[:, cs]
        rab += ns[:, cs] @ wt.p[:, cs].T
        bar.update(wt.m.numel() * (cs.stop - cs.start))
    pab = wt.m * rab
    for u, w, _ in direct_columns(bk, beta, ac.direct.nonzero().squeeze(1)):
        w = w * ac.r[u][:, None, None]
        pbc[:, u] = w.sum(1).T
        pab += w.sum(0)
    return pab, pbc


def energy_square(bk: Blocks, wt: Weights, ac: AC, pab: Tensor, pbc: Tensor, beta: float) -> Tensor:
    """Σ w (E − e0)², scaled like ``ac.pac``; centring keeps Var E = ⟨(E − e0)²⟩ − (⟨E⟩ − e0)² accurate.

    (E − e0)² = E_ab² + E_ac² + E_bc² + 2(E_ab E_ac + E_ac E_bc + E_ab E_bc) with E_ab shifted by e0:
    squares from the pair marginals, cross terms by three more GEMMs.
    """
    eab = bk.eab - ac.e0
    ns, me = wt.n * torch.where(ac.direct, 0.0, ac.r), wt.m * eab
    cross = torch.zeros((), dtype=ns.dtype, device=ns.device)
    for cs in chunks(wt.m.shape[0], ns.shape[1]):
        p, pe = wt.p[:, cs], wt.p[:, cs] * bk.ebc[:, cs]
        cross += (ns[:, cs] * (bk.eac[:, cs] * (me @ p + wt.m @ pe) + me @ pe)).sum()
    for u, w, _ in direct_columns(bk, beta, ac.direct.nonzero().squeeze(1)):
        ec, bc = bk.eac.T[u][:, :, None], bk.ebc.T[u][:, None, :]
        cross += ac.r[u] @ (w * (eab * ec + ec * bc + eab * bc)).sum((1, 2))
    squares = (pab * eab**2).sum() + (ac.pac * bk.eac**2).sum() + (pbc * bk.ebc**2).sum()
    return squares + 2 * cross


def moments(bk: Blocks, pab: Tensor, pac: Tensor, pbc: Tensor) -> tuple[Tensor, Tensor]:
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

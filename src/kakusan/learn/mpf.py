"""Minimum probability flow (MPF): min K(J, h) = ⟨Σ_k exp(½(E(x) − E(x with spin k flipped)))⟩_data.

Sohl-Dickstein, Battaglino & DeWeese, PRL 107, 220601 (2011). Start a master equation with rates
Γ(x → x') = exp(½(E(x) − E(x'))) between states one spin flip apart; its stationary distribution is
the model q, and K is the initial rate at which probability flows out of the data states when the
dynamics start at p0. If q = p0 nothing flows (detailed balance), and K is minimised there. For the Ising
energy, E(x^(k)) − E(x) = 2 x_k F_k with the local field F = X Jᵀ + h (M, N), so

    K = Σ_i w_i Σ_k exp(−x_ik F_ik),   G_ik = ∂K/∂F_ik = −w_i x_ik exp(−x_ik F_ik),
    ∂K/∂J_kl = (GᵀX)_kl + (GᵀX)_lk (a symmetric coupling),   ∂K/∂h_k = Σ_i G_ik:

two GEMMs per evaluation, no partition function, no sampling. The solver minimises log K, which has
the same minimiser, is convex too (a log-sum-exp of functions linear in θ) and is computed shifted so it
never overflows; its gradient is ∇K / K. L2 and L1 penalties on the couplings are added to log K (the
scale-free form: λ does not depend on the size of K); minimised by L-BFGS-B with the analytic gradient.

Assumptions: data from a pairwise model q(x) ∝ exp(½ xᵀJx + hᵀx); consistent as M → ∞ (at the truth the
expected gradient vanishes because p(x) Γ(x → x') is symmetric in x ↔ x', for any coupling strength).
Without a penalty it needs M > N rows and no constant spin. With single-flip connectivity it is closely
related to pseudo-likelihood (both only look at one-flip neighbours of the data); in the benchmark
(benchmarks/results_inverse.md) it is a little less accurate than PLM on the same samples.
"""

from __future__ import annotations

import time

import torch

from kakusan.data.spins import check_spin_data, compress_rows, row_blocks
from kakusan.learn.inverse_base import InverseResult, n_coupling_params, pack, pack_grad, unpack
from kakusan.optim.lbfgs import check_penalties, minimize_lbfgs, with_l2

Tensor = torch.Tensor


def flow_objective(x: Tensor, J: Tensor, h: Tensor, weights: Tensor | None = None) -> Tensor:
    """K = Σ_i w_i Σ_k exp(½(E(x_i) − E(x_i^(k)))) = Σ_i w_i Σ_k exp(−x_ik (Σ_l J_kl x_il + h_k)), by autograd.

    Computed from energies of the flipped states (not the local-field shortcut), as the definition reads:
    (M, N), (N, N) symmetric, (N,) -> 0-d. ``weights`` (M,) default to 1/M.
    """
    Jo = 0.5 * (J + J.T) - torch.diag_embed(torch.diagonal(J))
    w = torch.full((len(x),), 1.0 / len(x), dtype=x.dtype, device=x.device) if weights is None else weights

    def energy(s: Tensor) -> Tensor:
        return -0.5 * ((s @ Jo) * s).sum(-1) - s @ h

    n = x.shape[1]
    flips = x[:, None, :] * (1 - 2 * torch.eye(n, dtype=x.dtype, device=x.device))  # (M, N, N): row k flips k
    return w @ torch.exp(0.5 * (energy(x)[:, None] - energy(flips))).sum(1)


def value_and_grad(x: Tensor, w: Tensor, J: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """log K, ∂log K/∂J (N, N, entry by entry, zero diagonal) and ∂log K/∂h (N,): two GEMMs, in-place passes.

    log K = log Σ_i w_i Σ_k exp(a_ik), a = −x ⊙ F, is shifted by the running max of a (an online log-sum-exp
    over blocks of rows) so nothing overflows; its gradient is ∇K / K with G_ik = −w_i x_ik exp(a_ik) / K.
    J must have a zero diagonal; the sums are taken in float64.
    """
    top = torch.full((), -torch.inf, dtype=J.dtype, device=J.device)  # running max of a (online log-sum-exp)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    gJ, gh = torch.zeros_like(J), torch.zeros_like(h)
    for rows in row_blocks(x):  # blocks of rows that stay in cache
        xs, ws = x[rows], w[rows]
        a = torch.addmm(h, xs, J.T, beta=-1, alpha=-1).mul_(xs)  # (B, N): −x_ik F_ik
        new_top = torch.maximum(top, a.max())
        rescale = torch.exp(top - new_top)  # earlier blocks were scaled by exp(−top)
        total, top = total * rescale.to(torch.float64), new_top
        gJ.mul_(rescale)
        gh.mul_(rescale)
        flow = a.sub_(top).exp_()  # exp(a − max a) ≤ 1
        total += flow.sum(1).to(torch.float64) @ ws.to(torch.float64)  # rows in dtype, then float64
        G = flow.mul_(xs).mul_(-ws[:, None])  # (B, N): ∂K/∂F_ik · exp(−max a)
        gJ.addmm_(G.T, xs)
        gh += G.sum(0)
    scale = (1 / total).to(J.dtype)  # ∂log K = ∂K / K
    return top.to(torch.float64) + torch.log(total), gJ.fill_diagonal_(0.0).mul_(scale), gh.mul_(scale)


def solve_mpf(data, *, weights=None, l2: float = 0.0, l1: float = 0.0, max_iter: int = 1000, tol: float = 1e-5,
              dtype: torch.dtype | None = None) -> InverseResult:
    """Minimum probability flow: min log Σ_i w_i Σ_k exp(−x_ik (Σ_l J_kl x_il + h_k)) + penalties, by L-BFGS.

    Parameters
    ----------
    data : (M, N) ±1 tensor or array; the work runs on its device.
    weights : optional (M,) non-negative sample weights (e.g. exact probabilities of all 2^N states).
    l2, l1 : penalties (l2/2) Σ_{k<l} J_kl² and l1 Σ_{k<l} |J_kl| (not on h).
    max_iter, tol : L-BFGS-B iteration limit and tolerance on the largest gradient component of the mean
        objective; the default 1e-5 lies far below the gradient's sampling noise (~1/√M); with exact
        probabilities as weights pass ``tol=1e-10`` to get the true J, h to better than 1e-6.
    dtype : float32 or float64 for the work on the data; None (default) takes float32 for data of more
        than 2^20 entries (about 4× faster; the value is still accumulated in float64) and float64 below.

    Returns
    -------
    InverseResult with J (N, N) symmetric, zero diagonal, h (N,); ``objective`` is the final penalised log K.

    Notes
    -----
    Consistent as M → ∞ for any coupling strength; single-flip connectivity. Without a penalty it needs
    more than N samples (of positive weight).
    """
    t0 = time.perf_counter()
    check_penalties(l1, l2)
    x, w = check_spin_data(data, weights, dtype=dtype or torch.float32, more_rows_than_spins=not (l1 or l2),
                           why_rows="unregularised minimum probability flow")
    n = x.shape[1]
    x, w = compress_rows(x, w, dtype)  # distinct rows; float32 for large data unless dtype says otherwise
    p = n_coupling_params(n, True)
    h0 = torch.atanh(w.double() @ x.double()).to(x.dtype)  # at J = 0 the flow is minimised by h = atanh(m)
    theta0 = pack(torch.zeros(n, n, dtype=x.dtype, device=x.device), h0)

    def fun(theta: Tensor) -> tuple[Tensor, Tensor]:
        J, h = unpack(theta, n)
        value, gJ, gh = value_and_grad(x, w, J, h)
        return value, pack_grad(gJ, gh)

    theta, info = minimize_lbfgs(with_l2(fun, p, l2), theta0, n_l1=p, l1=l1, max_iter=max_iter, tol=tol)
    J, h = unpack(theta, n)
    return InverseResult(J, h, "mpf", info.iterations, info.converged, time.perf_counter() - t0, info.objective,
                         info.message)

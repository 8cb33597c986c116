"""Pseudo-likelihood (PLM): max Σ_k ⟨log q(x_k | x_rest)⟩_data, q(x_k | x_rest) = σ(2 x_k (Σ_l J_kl x_l + h_k)).

Each conditional of the Ising model is a logistic regression of spin k on the others, with no partition
function, so the objective and its gradient are two GEMMs over the data (Besag 1975; Ravikumar,
Wainwright, Lafferty 2010; Aurell & Ekeberg 2012). With local fields F = X Jᵀ + h (M, N),

    L(J, h) = Σ_i w_i Σ_k softplus(−2 x_ik F_ik)                      (= −Σ_i w_i Σ_k log q(x_ik | rest)),
    G_ik = ∂L/∂F_ik = −2 w_i x_ik σ(−2 x_ik F_ik),    ∂L/∂J_kl = (Gᵀ X)_kl,    ∂L/∂h_k = Σ_i G_ik.

Two variants: ``symmetric=True`` (one symmetric J, all sites jointly; ∂L/∂J_kl of a coupling is
(GᵀX)_kl + (GᵀX)_lk) and ``symmetric=False`` (each spin k its own row J_k·, N independent logistic
regressions solved together, then J ← (J + Jᵀ)/2, as Aurell & Ekeberg's asymmetric PLM). L2 adds
(l2/2) Σ θ_J² and L1 adds l1 Σ |θ_J| over the free couplings θ_J; the objective is a weighted mean, so the
penalties do not scale with M. Minimised by L-BFGS-B (:func:`kakusan.optim.lbfgs.minimize_lbfgs`).

Assumptions: the data come from a pairwise model q(x) ∝ exp(½ xᵀJx + hᵀx). The maximiser is consistent —
it converges to the true (J, h) as M → ∞ for any coupling strength — because each conditional is exactly
the true model's conditional, and the expected log-conditional is maximised at the truth (a sum of
conditional KL divergences). Unregularised PLM needs M > N rows and no constant spin; perfectly separable
data (possible at small M and strong couplings) make it diverge — add ``l2``.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from kakusan.data.spins import check_spin_data, compress_rows, row_blocks
from kakusan.learn.inverse_base import InverseResult, n_coupling_params, pack, pack_grad, unpack
from kakusan.optim.lbfgs import check_penalties, minimize_lbfgs, with_l2

Tensor = torch.Tensor


def neg_log_pseudolikelihood(x: Tensor, J: Tensor, h: Tensor, weights: Tensor | None = None) -> Tensor:
    """−Σ_i w_i Σ_k log σ(2 x_ik (Σ_l J_kl x_il + h_k)): (M, N), (N, N), (N,) -> 0-d; differentiable.

    Spin k uses row k of J (its diagonal is ignored); ``weights`` (M,) default to 1/M.
    """
    Jo = J - torch.diag_embed(torch.diagonal(J))
    w = torch.full((len(x),), 1.0 / len(x), dtype=x.dtype, device=x.device) if weights is None else weights
    return w @ F.softplus(-2 * x * (x @ Jo.T + h)).sum(1)


def value_and_grad(x: Tensor, w: Tensor, J: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """L, ∂L/∂J (N, N, entry by entry, zero diagonal) and ∂L/∂h (N,) of the negative log pseudo-likelihood.

    Two GEMMs, F = X Jᵀ + h and Gᵀ X, and four element-wise passes done in place, over blocks of rows that
    stay in cache; J must have a zero diagonal. The value is accumulated in float64 whatever the dtype.
    """
    value = torch.zeros((), dtype=torch.float64, device=x.device)
    gJ, gh = torch.zeros_like(J), torch.zeros_like(h)
    for rows in row_blocks(x):
        xs, ws = x[rows], w[rows]
        z = torch.addmm(h, xs, J.T, beta=-2, alpha=-2).mul_(xs)  # (B, N): −2 x_ik F_ik
        value += F.softplus(z).sum(1).to(torch.float64) @ ws.to(torch.float64)  # rows of N in dtype, then float64
        G = z.sigmoid_().mul_(xs).mul_(-2 * ws[:, None])  # (B, N): −2 w_i x_ik σ(−2 x_ik F_ik)
        gJ.addmm_(G.T, xs)
        gh += G.sum(0)
    return value, gJ.fill_diagonal_(0.0), gh


def solve_plm(data, *, weights=None, symmetric: bool = True, l2: float = 0.0, l1: float = 0.0,
              max_iter: int = 1000, tol: float = 1e-5, dtype: torch.dtype | None = None) -> InverseResult:
    """Pseudo-likelihood maximisation: max Σ_k ⟨log σ(2 x_k (Σ_l J_kl x_l + h_k))⟩_data − penalties, by L-BFGS.

    Parameters
    ----------
    data : (M, N) ±1 tensor or array; the work runs on its device (a CUDA tensor runs on the GPU).
    weights : optional (M,) non-negative sample weights (e.g. exact probabilities of all 2^N states).
    symmetric : one symmetric J for all sites (default), or one row per site then (J + Jᵀ)/2.
    l2, l1 : penalties (l2/2) Σ θ_J² and l1 Σ |θ_J| on the free couplings (not on h).
    max_iter, tol : L-BFGS-B iteration limit and tolerance on the largest gradient component of the mean
        objective; the default 1e-5 lies far below the gradient's sampling noise (~1/√M); with exact
        probabilities as weights pass ``tol=1e-10`` to get the true J, h to better than 1e-6.
    dtype : float32 or float64 for the work on the data; None (default) takes float32 for data of more
        than 2^20 entries (about 4× faster; the value is still accumulated in float64) and float64 below.

    Returns
    -------
    InverseResult with J (N, N) symmetric, zero diagonal, h (N,), on the data's device; ``method`` is
    ``"plm"`` or ``"plm-asym"``, ``objective`` the final penalised negative log pseudo-likelihood (nats).

    Notes
    -----
    Consistent as M → ∞ for any coupling strength (not only weak couplings). Without a penalty it needs
    more than N samples (of positive weight) and data that no site can separate perfectly.
    """
    t0 = time.perf_counter()
    check_penalties(l1, l2)
    x, w = check_spin_data(data, weights, dtype=dtype or torch.float32, more_rows_than_spins=not (l1 or l2),
                           why_rows="unregularised pseudo-likelihood")
    n = x.shape[1]
    x, w = compress_rows(x, w, dtype)  # distinct rows; float32 for large data unless dtype says otherwise
    p = n_coupling_params(n, symmetric)
    h0 = torch.atanh(w.double() @ x.double()).to(x.dtype)  # start at J = 0 and that J's optimal h = atanh(m)
    theta0 = pack(torch.zeros(n, n, dtype=x.dtype, device=x.device), h0, symmetric)

    def fun(theta: Tensor) -> tuple[Tensor, Tensor]:
        J, h = unpack(theta, n, symmetric)
        value, gJ, gh = value_and_grad(x, w, J, h)
        return value, pack_grad(gJ, gh, symmetric)

    theta, info = minimize_lbfgs(with_l2(fun, p, l2), theta0, n_l1=p, l1=l1, max_iter=max_iter, tol=tol)
    J, h = unpack(theta, n, symmetric)
    J = J if symmetric else 0.5 * (J + J.T)
    return InverseResult(J, h, "plm" if symmetric else "plm-asym", info.iterations, info.converged,
                         time.perf_counter() - t0, info.objective, info.message)

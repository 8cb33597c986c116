"""Closed-form inverse Ising: naive mean field, TAP and Sessak–Monasson from the data's m and C.

All three read only the magnetisations m_k = ⟨x_k⟩ and the connected correlations
C_kl = ⟨x_k x_l⟩ − m_k m_l, invert C once, and return J (N, N) and h (N,) of q(x) ∝ exp(½ xᵀJx + hᵀx).

* naive mean field (nMF): J = −(C⁻¹) off the diagonal, h_k = atanh(m_k) − Σ_l J_kl m_l
  (Kappen & Rodríguez 1998). From the mean-field equations m_k = tanh(h_k + Σ_l J_kl m_l),
  whose derivative ∂m_k/∂h_l = C_kl (linear response) gives (C⁻¹)_kl = δ_kl/(1 − m_k²) − J_kl.
* TAP: the second-order Plefka expansion adds the Onsager reaction term, so (C⁻¹)_kl = −J_kl − 2 J_kl² m_k m_l
  for k ≠ l, a quadratic per pair solved for its physical root (the one → −(C⁻¹)_kl as m → 0), and
  h_k = atanh(m_k) − Σ_l J_kl m_l + m_k Σ_l J_kl² (1 − m_l²) (Tanaka 1998; Roudi, Aurell, Hertz 2009).
* Sessak–Monasson (SM): J = J_nMF + J_IP − C_kl / ((1 − m_k²)(1 − m_l²) − C_kl²), the small-correlation
  expansion resummed: independent pairs J_IP (exact for two spins) plus mean-field loops, minus the
  term both count (Sessak & Monasson 2009; Roudi, Tyrcha, Hertz 2009 eq. 14). Fields from the TAP equation.

Assumptions: weak couplings (the expansions are in powers of J; errors grow as β and as the data approach
a phase transition), at least N + 1 samples so that C is invertible, and no constant spin. With zero
magnetisations (h = 0, paramagnet) TAP couplings equal nMF ones; TAP improves on nMF through m ≠ 0.
See docs/mcmc-free.md for the derivations.
"""

from __future__ import annotations

import time
from typing import Literal

import torch

from kakusan.errors import DataError, KakusanError
from kakusan.learn.base import Stats
from kakusan.data.spins import check_spin_data
from kakusan.learn.inverse_base import InverseResult

Tensor = torch.Tensor
NoRoot = Literal["vertex", "raise"]


# ---------------------------------------------------------------- moments and the inverse covariance


def data_moments(data, weights=None) -> Stats:
    """m (N,) and ⟨x xᵀ⟩ (N, N) in float64 of ±1 data (M > N rows checked), or ``data`` checked if it is Stats."""
    if isinstance(data, Stats):
        return _check_stats(data)
    counts = weights is None  # then Xᵀ X holds integers below M: exact in float32 while M < 2^24
    x, w = check_spin_data(data, weights, dtype=torch.float32 if counts else torch.float64, more_rows_than_spins=True,
                           why_rows="inverting the N×N covariance")
    if counts and len(x) < 1 << 24:
        m = len(x)
        return Stats(x.sum(0).to(torch.float64) / m, (x.T @ x).to(torch.float64) / m)
    return Stats.of(x, w)


def _check_stats(s: Stats) -> Stats:
    m, c = torch.as_tensor(s.mean, dtype=torch.float64), torch.as_tensor(s.corr, dtype=torch.float64)
    n = m.numel()
    if m.shape != (n,) or c.shape != (n, n):
        raise DataError(f"Stats must hold mean (N,) and corr (N, N), got {tuple(m.shape)} and {tuple(c.shape)}")
    if not bool(torch.isfinite(m).all() & torch.isfinite(c).all()):
        raise DataError("Stats contain NaN or infinite values")
    edge = (m.abs() >= 1).nonzero()
    if len(edge):
        k = int(edge[0])
        raise DataError(f"spin {k} has ⟨x_{k}⟩ = {float(m[k]):g}, so it is constant and its field infinite: "
                        "drop it")
    return Stats(m, 0.5 * (c + c.T))


def inverse_covariance(stats: Stats) -> Tensor:
    """C⁻¹ with C_kl = ⟨x_k x_l⟩ − m_k m_l, by Cholesky; a singular C is an error naming the culprits."""
    C = stats.covariance()
    L, info = torch.linalg.cholesky_ex(C)
    if int(info) == 0:
        inv = torch.cholesky_inverse(L)
        eye = torch.eye(len(C), dtype=C.dtype, device=C.device)
        if bool(torch.isfinite(inv).all()) and float((C @ inv - eye).abs().max()) < 1e-6:
            return 0.5 * (inv + inv.T)
    raise DataError(_singular_message(C))


def _singular_message(C: Tensor) -> str:
    d = C.diagonal().clamp_min(1e-300).sqrt()
    r = (C / d[:, None] / d[None, :]).fill_diagonal_(0.0).abs()
    k, l = divmod(int(r.argmax()), len(r))
    if float(r[k, l]) > 1 - 1e-9:
        return (f"the covariance matrix is singular: columns {k} and {l} are identical or opposite in every sample; "
                "drop one of them, or use plm/mpf with l2 > 0")
    return ("the covariance matrix is singular or nearly so (too few samples, or a column is a combination of "
            "others): collect more samples, or use plm/mpf with l2 > 0")


def _off_diagonal(A: Tensor) -> Tensor:
    """A with its diagonal set to 0 (whatever it held, inf and nan included)."""
    return A.masked_fill(torch.eye(len(A), dtype=torch.bool, device=A.device), 0.0)


def _result(J: Tensor, h: Tensor, method: str, t0: float, message: str = "") -> InverseResult:
    """The result with J made exactly symmetric (rounding in C⁻¹ leaves ~1e-16 asymmetries)."""
    return InverseResult(0.5 * (J + J.T), h, method, wall_time=time.perf_counter() - t0, message=message)


# ---------------------------------------------------------------- the three closed forms


def nmf_fields(J: Tensor, m: Tensor) -> Tensor:
    """h_k = atanh(m_k) − Σ_l J_kl m_l: the mean-field equation m = tanh(h + Jm) solved for h."""
    return torch.atanh(m) - J @ m


def tap_fields(J: Tensor, m: Tensor) -> Tensor:
    """h_k = atanh(m_k) − Σ_l J_kl m_l + m_k Σ_l J_kl² (1 − m_l²): the TAP equation solved for h."""
    return torch.atanh(m) - J @ m + m * ((J * J) @ (1 - m * m))


def solve_nmf(data, *, weights=None) -> InverseResult:
    """Naive mean-field inversion: J = −(C⁻¹)_kl (k ≠ l), h_k = atanh(m_k) − Σ_l J_kl m_l.

    Parameters
    ----------
    data : ±1 data (M, N) with M > N, or :class:`~kakusan.learn.base.Stats` (e.g. exact moments).
    weights : optional (M,) sample weights.

    Returns
    -------
    InverseResult with J (N, N) and h (N,) in float64.

    Notes
    -----
    Exact only as J → 0 (first order in the couplings); errors grow with the coupling strength.
    """
    t0 = time.perf_counter()
    stats = data_moments(data, weights)
    J = -_off_diagonal(inverse_covariance(stats))
    return _result(J, nmf_fields(J, stats.mean), "nmf", t0)


def tap_couplings(inv_cov: Tensor, m: Tensor, no_root: NoRoot = "vertex") -> tuple[Tensor, int]:
    """Physical root of 2 m_k m_l J² + J + (C⁻¹)_kl = 0: J = −2(C⁻¹)_kl / (1 + √(1 − 8 m_k m_l (C⁻¹)_kl)).

    This form is the root that tends to −(C⁻¹)_kl as m_k m_l → 0, without cancellation. A pair whose
    discriminant is negative has no real root: ``"raise"`` makes that an error, ``"vertex"`` takes the
    parabola's vertex J = −1/(4 m_k m_l), where the residual |2 m_k m_l J² + J + (C⁻¹)_kl| is smallest.
    Returns J (N, N) and the number of pairs k < l without a real root.
    """
    A, mm = _off_diagonal(inv_cov), torch.outer(m, m)
    disc = 1 - 8 * mm * A
    bad = torch.triu(disc < 0, 1)
    n_bad = int(bad.sum())
    if n_bad and no_root == "raise":
        k, l = (int(v) for v in bad.nonzero()[0])
        raise KakusanError(f"TAP has no real coupling for {n_bad} pair(s), e.g. ({k}, {l}) with 1 − 8 m_k m_l "
                           f"(C⁻¹)_kl = {float(disc[k, l]):.3g} < 0 (couplings too strong for TAP): "
                           "pass no_root='vertex' to take the closest value, or use nmf, plm or mpf")
    if no_root not in ("vertex", "raise"):
        raise KakusanError(f"no_root must be 'vertex' or 'raise', got {no_root!r}")
    J = -2 * A / (1 + torch.sqrt(disc.clamp_min(0.0)))
    return torch.where(disc < 0, -0.25 / mm, J), n_bad  # disc < 0 needs m_k m_l A_kl > 1/8, so mm ≠ 0


def solve_tap(data, *, weights=None, no_root: NoRoot = "vertex") -> InverseResult:
    """TAP: (C⁻¹)_kl = −J_kl − 2 J_kl² m_k m_l, h_k = atanh(m_k) − Σ_l J_kl m_l + m_k Σ_l J_kl²(1 − m_l²).

    Parameters
    ----------
    data : ±1 data (M, N) with M > N, or :class:`~kakusan.learn.base.Stats`.
    weights : optional (M,) sample weights.
    no_root : what to do with a pair whose quadratic has no real root (see :func:`tap_couplings`);
        the result's ``message`` counts such pairs.

    Notes
    -----
    Second order in the couplings (Plefka expansion): better than nMF for weak couplings with m ≠ 0,
    identical to it when m = 0, and without a real solution when couplings are too strong.
    """
    t0 = time.perf_counter()
    stats = data_moments(data, weights)
    J, n_bad = tap_couplings(inverse_covariance(stats), stats.mean, no_root)
    msg = f"{n_bad} pair(s) had no real TAP root; took the vertex J = −1/(4 m_k m_l)" if n_bad else ""
    return _result(J, tap_fields(J, stats.mean), "tap", t0, msg)


def independent_pair_couplings(stats: Stats) -> Tensor:
    """J_kl = ¼ log[p(++) p(−−) / (p(+−) p(−+))] of each pair's own two-spin marginal: exact for N = 2.

    With c = ⟨x_k x_l⟩: p(±±) = (1 ± m_k ± m_l + c)/4 and p(±∓) = (1 ± m_k ∓ m_l − c)/4.
    """
    m, c = stats.mean, stats.corr
    mk, ml = m[:, None], m[None, :]
    num = (1 + mk + ml + c) * (1 - mk - ml + c)
    den = (1 + mk - ml - c) * (1 - mk + ml - c)
    if bool(((num <= 0) | (den <= 0)).fill_diagonal_(False).any()):
        raise DataError("a pair of spins never shows one of its four joint states, so its independent-pair "
                        "coupling is infinite: collect more samples or use plm/mpf with l2 > 0")
    return _off_diagonal(0.25 * torch.log(num / den))


def solve_sm(data, *, weights=None) -> InverseResult:
    """Sessak–Monasson: J = −(C⁻¹)_kl + J^IP_kl − C_kl / ((1 − m_k²)(1 − m_l²) − C_kl²); TAP fields.

    Parameters
    ----------
    data : ±1 data (M, N) with M > N, or :class:`~kakusan.learn.base.Stats`.
    weights : optional (M,) sample weights.

    Notes
    -----
    Exact for two spins and for weak couplings to second order in the correlations; the fields use the
    TAP equation with these couplings (an approximation). Every pair must show all four joint states.
    """
    t0 = time.perf_counter()
    stats = data_moments(data, weights)
    C, m2 = stats.covariance(), 1 - stats.mean**2
    double = C / (torch.outer(m2, m2) - C * C)
    J = -_off_diagonal(inverse_covariance(stats)) + independent_pair_couplings(stats) - _off_diagonal(double)
    return _result(J, tap_fields(J, stats.mean), "sm", t0)

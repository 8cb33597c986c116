"""The gradient fit of a Gaussian: follow the analytic KL gradient from any start to the closed form.

For data with empirical distribution p0, precision L = Sigma^-1 and S_mu = (1/n) sum_i (x_i - mu)(x_i - mu)^T,

    E_{p0}[log q] = 1/2 ln det L - 1/2 tr(L S_mu) - D/2 ln 2 pi,
    d/dmu E_{p0}[log q] = L (xbar - mu),     d/dL E_{p0}[log q] = 1/2 (Sigma - S_mu)

(from d ln det L / dL = L^-T and d(x^T L x)/dL = x x^T, see :mod:`kakusan.linalg`); they vanish at the
closed form of :func:`kakusan.gaussian.model.fit_mle`, which :func:`fit_gradient` reaches by following them.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch

from kakusan import linalg
from kakusan.errors import KakusanError
from kakusan.gaussian.model import DTYPE, LOG_2PI, Gaussian, GaussianStats, check_nonsingular, sufficient_stats


class GaussianGrads(NamedTuple):
    """Gradients of E_{p0}[log q] with respect to ``mean`` (D,) and ``precision`` (D, D)."""

    mean: torch.Tensor
    precision: torch.Tensor


class GradientFit(NamedTuple):
    """Result of :func:`fit_gradient`.

    ``model`` the fitted Gaussian; ``nll`` (k+1,) -E_{p0}[log q] at the start and after each of the
    ``steps`` steps (nats); ``converged`` whether every gradient entry fell below ``tol``.
    """

    model: "Gaussian"
    nll: torch.Tensor
    steps: int
    converged: bool


def expected_log_prob(stats: GaussianStats, mean: torch.Tensor, precision: torch.Tensor,
                      reg: float = 0.0) -> torch.Tensor:
    """E_{p0}[log q] - reg/2 tr L = 1/2 ln det L - 1/2 tr(L S_mu) - reg/2 tr L - D/2 ln 2pi, with L the precision.

    S_mu = S + (xbar - mu)(xbar - mu)^T. Differentiable in ``mean`` (D,) and ``precision`` (D, D)
    (every entry of ``precision`` is treated as independent; it must have positive determinant).
    """
    diff = stats.mean - mean
    s_mu = stats.scatter + linalg.grad_quadratic_form_a(diff)
    d = mean.shape[0]
    return 0.5 * (torch.logdet(precision) - (precision * s_mu.T).sum() - reg * precision.trace() - d * LOG_2PI)


def analytic_gradients(stats: GaussianStats, mean: torch.Tensor, precision: torch.Tensor,
                       reg: float = 0.0) -> GaussianGrads:
    """d/dmu = 1/2 (L + L^T)(xbar - mu) = L (xbar - mu);  d/dL = 1/2 (L^-T - S_mu - reg I) = 1/2 (Sigma - S_mu - reg I).

    The gradients of :func:`expected_log_prob`, written with the identities of :mod:`kakusan.linalg`:
    d(x^T A x)/dx = (A + A^T) x, d(x^T A x)/dA = x x^T and d ln|det A|/dA = A^-T.
    """
    diff = stats.mean - mean  # (D,)
    g_mean = 0.5 * linalg.grad_quadratic_form_x(precision, diff)
    s_mu = stats.scatter + linalg.grad_quadratic_form_a(diff)  # (D, D)
    eye = torch.eye(mean.shape[0], dtype=precision.dtype)
    return GaussianGrads(g_mean, 0.5 * (linalg.grad_log_abs_det(precision) - s_mu - reg * eye))


def _direction(g: GaussianGrads, precision: torch.Tensor, method: str) -> GaussianGrads:
    """Plain: the gradient. Natural: the gradient under the Fisher metric, (Sigma g_mu, 2 L g_L L)."""
    if method == "plain":
        return g
    cov = torch.linalg.inv(precision)
    return GaussianGrads(cov @ g.mean, 2.0 * precision @ g.precision @ precision)


def _size(g: GaussianGrads) -> float:
    return max(float(g.mean.abs().max()), float(g.precision.abs().max()))


def _is_pd(matrix: torch.Tensor) -> bool:
    return torch.linalg.cholesky_ex(matrix).info.item() == 0


def _line_search(stats: GaussianStats, mean: torch.Tensor, precision: torch.Tensor, f0: torch.Tensor,
                 g: GaussianGrads, d: GaussianGrads, t: float, reg: float):
    """Backtracking from step ``t``: halve until L stays positive definite and the objective rises.

    A step is accepted when f rises by the Armijo amount, or, once f is flat to rounding (near
    the optimum, where f - f* ~ |g|^2 is below 1e-16), when the gradient shrinks. Returns
    (mean, precision, f, t) or None when no step of size > 1e-20 is accepted.
    """
    slope = float((g.mean * d.mean).sum() + (g.precision * d.precision).sum())
    flat = 1e-14 * max(1.0, abs(float(f0)))
    while t > 1e-20:
        new_mean = mean + t * d.mean
        new_prec = precision + t * d.precision
        new_prec = (new_prec + new_prec.T) / 2  # keep rounding from breaking symmetry
        if _is_pd(new_prec):
            f = expected_log_prob(stats, new_mean, new_prec, reg)
            if float(f) >= float(f0) + 1e-4 * t * slope:
                return new_mean, new_prec, f, t
            if abs(float(f - f0)) <= flat and _size(analytic_gradients(stats, new_mean, new_prec, reg)) < _size(g):
                return new_mean, new_prec, f, t
        t *= 0.5
    return None


def fit_gradient(x, steps: int = 2000, lr: float = 0.1, *, method: Literal["plain", "natural"] = "plain",
                 reg: float = 0.0, init: Gaussian | None = None, tol: float = 1e-9) -> GradientFit:
    """Maximise E_{p0}[log q] (minimise KL(p0 || q)) by gradient ascent in (mu, L = Sigma^-1).

    Each step moves along the analytic gradients of :func:`analytic_gradients` (``method="plain"``)
    or along the same gradients preconditioned by the Fisher metric (``"natural"``: Sigma g_mu and
    2 L g_L L, which with step 1 is mu <- xbar and the Newton-Schulz step L <- 2L - L S L). The step
    starts at ``lr`` and is adapted: halved until L stays positive definite and the objective
    rises (Armijo backtracking; near the optimum, where f is flat to rounding, until the gradient
    shrinks), then grown by 1.5 for the next step (for ``"natural"`` up to 1). So the fit never
    lowers the objective beyond rounding and L stays positive definite; it converges to
    :func:`fit_mle` (with the same ``reg``).

    Parameters
    ----------
    x : array or tensor (n, D), or (n,) for 1-D data
    steps : int
        Maximum number of steps.
    lr : float
        Initial step size.
    method : {"plain", "natural"}
    reg : float
        Maximises E_{p0}[log q] - reg/2 tr L, whose optimum is Sigma = S + reg I.
    init : Gaussian, optional
        Starting point; default N(0, I).
    tol : float
        Stop when every entry of both gradients is below ``tol`` in absolute value.

    Returns
    -------
    GradientFit
        ``nll`` records -E_{p0}[log q] (without the reg term) at the start and after each step;
        ``nll - nll_mle`` equals KL(q_mle || q_t) when reg = 0.

    Notes
    -----
    Plain gradient ascent slows down when Sigma is ill-conditioned or far from the scale of I
    (the curvature in L scales with Sigma^2); the natural method does not. In practice use
    :func:`fit_mle`; this exists to show that following the KL gradient reaches it.
    """
    if method not in ("plain", "natural"):
        raise KakusanError(f"method must be 'plain' or 'natural', got {method!r}")
    if steps < 0 or not lr > 0:
        raise KakusanError(f"need steps >= 0 and lr > 0, got steps={steps}, lr={lr}")
    stats = sufficient_stats(x)
    check_nonsingular(stats, reg)
    d = stats.mean.shape[0]
    start = init if init is not None else Gaussian(d)
    if start.dim != d:
        raise KakusanError(f"init has dim {start.dim} but the data have {d} columns: pass a Gaussian({d})")
    mean, prec = start.mean.detach().clone(), start.precision.detach().clone()
    f = expected_log_prob(stats, mean, prec, reg)
    nll = [float(-expected_log_prob(stats, mean, prec))]
    t, taken = float(lr), 0
    t_max = max(float(lr), 1.0) if method == "natural" else math.inf  # natural: 1 is the full Newton-like step
    for _ in range(steps):
        g = analytic_gradients(stats, mean, prec, reg)
        if _size(g) < tol:
            break
        found = _line_search(stats, mean, prec, f, g, _direction(g, prec, method), t, reg)
        if found is None:  # no step raises f any more: the optimum, up to rounding
            break
        mean, prec, f, t = found
        t, taken = min(1.5 * t, t_max), taken + 1
        nll.append(float(-expected_log_prob(stats, mean, prec)))
    converged = _size(analytic_gradients(stats, mean, prec, reg)) < tol
    return GradientFit(Gaussian.from_precision(mean, prec), torch.tensor(nll, dtype=DTYPE), taken, converged)

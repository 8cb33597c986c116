"""One L-BFGS-B driver for smooth objectives on torch tensors, with an exact L1 term and an L2 wrapper.

The MCMC-free inverse-Ising solvers (:mod:`kakusan.learn.pseudolikelihood`, :mod:`kakusan.learn.mpf`, and
maximum likelihood with exact statistics in :mod:`kakusan.learn.exact`) minimise their objectives here: the
objective and its gradient are computed by the caller's ``fun`` on θ's device, and only the (P,) parameter
vector crosses to scipy.

>>> import torch
>>> a = torch.tensor([3.0, -0.2, 1.0], dtype=torch.float64)
>>> theta, info = minimize_lbfgs(lambda t: (0.5 * ((t - a) ** 2).sum(), t - a), torch.zeros(3, dtype=torch.float64),
...                              n_l1=2, l1=0.5, tol=1e-12)
>>> [round(v, 6) for v in theta.tolist()], info.converged
([2.5, 0.0, 1.0], True)
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from kakusan.errors import KakusanError

Tensor = torch.Tensor
ValueAndGrad = Callable[[Tensor], tuple[Tensor, Tensor]]
"""θ (P,) -> (f (0-d), ∇f (P,)): an objective and its gradient, as tensors."""


def with_l2(fun: ValueAndGrad, n_l2: int, l2: float) -> ValueAndGrad:
    """f(θ) + (l2/2) Σ_{i<n_l2} θ_i², value and gradient."""
    if l2 == 0:
        return fun

    def penalised(theta: Tensor) -> tuple[Tensor, Tensor]:
        f, g = fun(theta)
        t = theta[:n_l2]
        return f + 0.5 * l2 * (t * t).sum(), torch.cat([g[:n_l2] + l2 * t, g[n_l2:]])

    return penalised


def check_penalties(l1: float, l2: float) -> None:
    """A :class:`~kakusan.errors.KakusanError` unless ``l1`` and ``l2`` are finite non-negative numbers."""
    for name, v in (("l1", l1), ("l2", l2)):
        if not (isinstance(v, (int, float)) and v >= 0 and np.isfinite(v)):
            raise KakusanError(f"{name} must be a non-negative number, got {v!r}")


class LbfgsInfo(NamedTuple):
    """What :func:`minimize_lbfgs` reports: iterations, success, final value, stop message."""

    iterations: int
    converged: bool
    objective: float
    message: str


def minimize_lbfgs(fun: ValueAndGrad, theta0: Tensor, *, n_l1: int = 0, l1: float = 0.0, max_iter: int = 1000,
                   tol: float = 1e-5, ftol: float | None = None) -> tuple[Tensor, LbfgsInfo]:
    """min_θ f(θ) + l1 Σ_{i<n_l1} |θ_i| by L-BFGS-B, with f and ∇f evaluated by ``fun`` on θ's device.

    The L1 term is made smooth by splitting θ_i = u_i − v_i with u, v ≥ 0 for the first ``n_l1``
    entries (the penalty becomes the linear l1 Σ (u + v) under bound constraints), which L-BFGS-B
    solves exactly. Only the (P,) parameter vector crosses to scipy; the work stays in ``fun``.

    Parameters
    ----------
    fun : θ (P,) -> (f (0-d), ∇f (P,)), tensors.
    theta0 : (P,) starting point; its dtype and device are those ``fun`` receives (θ is returned in float64).
    n_l1, l1 : how many leading entries carry the L1 penalty, and its weight λ ≥ 0.
    max_iter : L-BFGS-B iteration limit.
    tol : stop when every projected gradient component is ≤ ``tol``.
    ftol : or when a step lowers f by less than ``ftol``·max(|f|, 1); None: 1e-15 for float64 θ and 1e-10 for
        float32, where f (accumulated in float64 from float32 terms) cannot resolve smaller decreases.
    """
    from scipy.optimize import minimize

    like = theta0
    split = n_l1 if l1 > 0 else 0
    if ftol is None:
        ftol = 1e-15 if theta0.dtype == torch.float64 else 1e-10

    def to_theta(z: np.ndarray) -> Tensor:
        z = torch.as_tensor(z, dtype=like.dtype).to(like.device)
        return torch.cat([z[:split] - z[split:2 * split], z[2 * split:]]) if split else z

    def wrapped(z: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = fun(to_theta(z))
        f, g = float(f), g.detach().to(torch.float64).cpu().numpy()
        if not (np.isfinite(f) and np.isfinite(g).all()):
            raise KakusanError("the objective overflowed during the line search (parameters running off to "
                               "infinity, e.g. perfectly separable data): add a penalty such as l2=1e-3")
        if split:
            gl = g[:split]
            f = f + l1 * float(np.sum(z[:2 * split]))
            g = np.concatenate([gl + l1, l1 - gl, g[split:]])
        return float(f), g

    t0 = theta0.detach().to(torch.float64).cpu().numpy()
    z0 = np.concatenate([np.maximum(t0[:split], 0), np.maximum(-t0[:split], 0), t0[split:]]) if split else t0
    bounds = [(0.0, None)] * (2 * split) + [(None, None)] * (len(t0) - split) if split else None
    with _one_blas_thread():  # L-BFGS-B's own vector work is tiny: BLAS threads only add wake-up latency
        res = minimize(wrapped, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options=dict(maxiter=max_iter, gtol=tol, ftol=ftol, maxcor=20, maxls=40))
    message = res.message if isinstance(res.message, str) else res.message.decode()
    return to_theta(res.x).to(torch.float64), LbfgsInfo(int(res.nit), bool(res.success), float(res.fun), message)


def _one_blas_thread():
    """Limit NumPy/SciPy's BLAS (not torch's) to one thread, where threadpoolctl is installed."""
    controller = _blas_controller()
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


@functools.lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - comes with scikit-learn
        return None
    return ThreadpoolController()

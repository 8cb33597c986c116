"""The inverse Ising problem without MCMC: ``solve(data, method)`` dispatches to the solvers.

Every solver here takes ±1 data x (M, N) — optionally with sample weights w (M,), so that
p0(x) = Σ_i w_i δ(x − x_i) / Σ w (exact probabilities of all 2^N states make p0 = q exactly) — and
returns an :class:`InverseResult` with couplings J (N, N, symmetric, zero diagonal) and fields h (N,)
of q(x) ∝ exp(½ xᵀJx + hᵀx), plus diagnostics. ``solve(data, method)`` picks the method by name:

========  ==========================================================  =====================================
method    what it solves                                              file
========  ==========================================================  =====================================
``nmf``   naive mean field: J = −(C⁻¹) off the diagonal               :mod:`kakusan.learn.mean_field`
``tap``   TAP: (C⁻¹)_kl = −J_kl − 2 J_kl² m_k m_l                     :mod:`kakusan.learn.mean_field`
``sm``    Sessak–Monasson: nMF + independent pairs − double count     :mod:`kakusan.learn.mean_field`
``plm``   max Σ_k log q(x_k | x_rest) (pseudo-likelihood)             :mod:`kakusan.learn.pseudolikelihood`
``mpf``   min K = ⟨Σ_k exp(½(E(x) − E(x with k flipped)))⟩_data      :mod:`kakusan.learn.mpf`
``exact`` maximum likelihood with exact statistics (N ≲ 26)           :mod:`kakusan.learn.exact`
========  ==========================================================  =====================================

The solvers share their result type and parameter packing (:mod:`kakusan.learn.inverse_base`), the
data checks (:func:`kakusan.data.spins.check_spin_data`) and the L-BFGS driver (:mod:`kakusan.optim.lbfgs`).

>>> from kakusan.boltzmann import instances
>>> from kakusan.learn.inverse import solve
>>> truth = instances.sherrington_kirkpatrick(7, beta=0.5, field_std=0.3, seed=0)
>>> result = solve(truth.sample(5000, generator=1), "plm")
>>> result.J.shape, result.h.shape, result.converged
(torch.Size([7, 7]), torch.Size([7]), True)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Literal

from kakusan.errors import KakusanError
from kakusan.learn.exact import solve_exact
from kakusan.learn.inverse_base import InverseResult
from kakusan.learn.mean_field import solve_nmf, solve_sm, solve_tap
from kakusan.learn.mpf import solve_mpf
from kakusan.learn.pseudolikelihood import solve_plm

Method = Literal["nmf", "tap", "sm", "plm", "mpf", "exact"]

SOLVERS: dict[str, Callable[..., InverseResult]] = {"nmf": solve_nmf, "tap": solve_tap, "sm": solve_sm,
                                                    "plm": solve_plm, "mpf": solve_mpf, "exact": solve_exact}
"""Each method's ``solve_*`` function."""

METHODS: tuple[str, ...] = tuple(SOLVERS)
"""Names :func:`solve` accepts."""

__all__ = ["METHODS", "SOLVERS", "InverseResult", "Method", "solve"]


def solve(data, method: Method = "plm", *, weights=None, **options) -> InverseResult:
    """Couplings J and fields h of q(x) ∝ exp(½ xᵀJx + hᵀx) from ±1 data (M, N) by the named method.

    Parameters
    ----------
    data : (M, N) ±1 array or tensor (0/1 data: convert with ``kakusan.data.to_spins``).
    method : one of :data:`METHODS`; see the module docstring.
    weights : optional (M,) non-negative sample weights.
    **options : passed to the method's ``solve_*`` function (e.g. ``l2=0.01`` or ``symmetric=False`` for plm);
        an option the method does not take is a :class:`~kakusan.errors.KakusanError` listing those it does.

    Returns
    -------
    InverseResult
    """
    if method not in SOLVERS:
        raise KakusanError(f"unknown inverse-Ising method {method!r}: choose from {', '.join(METHODS)}")
    fn = SOLVERS[method]
    accepted = [p for p in inspect.signature(fn).parameters if p not in ("data", "weights")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise KakusanError(f"method {method!r} takes no option {', '.join(unknown)}: it takes {', '.join(accepted)}")
    return fn(data, weights=weights, **options)

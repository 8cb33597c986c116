"""Exact statistics by enumeration of all 2^N states (N ≲ 26), the accuracy ceiling: the model-statistics
estimator of moment matching, and maximum likelihood by L-BFGS on exact statistics (``solve_exact``)."""

from __future__ import annotations

import time

import torch

from kakusan.boltzmann import exact as enumeration
from kakusan.data.spins import check_spin_data
from kakusan.learn.base import Stats
from kakusan.learn.inverse_base import InverseResult, n_coupling_params, pack, unpack
from kakusan.optim.lbfgs import check_penalties, minimize_lbfgs, with_l2

Tensor = torch.Tensor


class ExactEstimator:
    """⟨x_k⟩ and ⟨x_k x_l⟩ under q by exact enumeration; caches log Z of the same parameters."""

    def __init__(self) -> None:
        self._cache: tuple[list[Tensor], float] | None = None

    def model_stats(self, model: torch.nn.Module, generator: torch.Generator | None = None) -> Stats:
        with torch.no_grad():
            s = enumeration.exact_stats(model.as_ising() if hasattr(model, "as_ising") else model)
        self._cache = (_snapshot(model), s.log_z)
        return Stats(s.mean, s.corr)

    def log_z(self, model: torch.nn.Module) -> float:
        """log Z of the model's current parameters (reused from the last ``model_stats`` when unchanged)."""
        if self._cache is not None and _same(self._cache[0], _snapshot(model)):
            return self._cache[1]
        with torch.no_grad():
            return enumeration.log_z(model.as_ising() if hasattr(model, "as_ising") else model)


def _snapshot(model: torch.nn.Module) -> list[Tensor]:
    """A copy of the parameters' values (N ≲ 26 spins: at most a few hundred numbers). Compared by value, not by
    torch's version counters, which a fused optimizer (``torch.optim.Adam(fused=True)``) does not bump."""
    return [p.detach().clone() for p in model.parameters()]


def _same(a: list[Tensor], b: list[Tensor]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b))


def solve_exact(data, *, weights=None, l2: float = 0.0, l1: float = 0.0, max_iter: int = 1000,
                tol: float = 1e-9) -> InverseResult:
    """Maximum likelihood, min_θ −θᵀ⟨φ⟩_data + log Z(θ) (= KL(p0||q) + H(p0)), by L-BFGS on exact statistics.

    The gradient ⟨φ⟩_model − ⟨φ⟩_data (φ = (x_k x_l, x_k)) comes from enumerating all 2^N states
    (:func:`kakusan.boltzmann.exact.exact_stats`), so this is the exact maximum-likelihood estimate — the
    accuracy ceiling of every method in :mod:`kakusan.learn.inverse` — for N ≲ 26. ``l2``/``l1`` penalise the
    couplings as in :func:`~kakusan.learn.pseudolikelihood.solve_plm`. :func:`kakusan.learn.fit_boltzmann`
    reaches the same optimum by moment matching with the η = 1/L method, in more (cheaper) steps.
    """
    t0 = time.perf_counter()
    check_penalties(l1, l2)
    x, w = check_spin_data(data, weights)
    n, data_stats = x.shape[1], Stats.of(x, w)
    phi_data = pack(data_stats.corr, data_stats.mean)

    def fun(theta: Tensor) -> tuple[Tensor, Tensor]:
        J, h = unpack(theta, n)
        s = enumeration.exact_stats(enumeration.IsingParams(J, h))
        return theta.new_tensor(s.log_z) - theta @ phi_data, pack(s.corr, s.mean) - phi_data

    p = n_coupling_params(n, True)
    theta0 = pack(torch.zeros(n, n, dtype=x.dtype, device=x.device), torch.atanh(data_stats.mean))
    theta, info = minimize_lbfgs(with_l2(fun, p, l2), theta0, n_l1=p, l1=l1, max_iter=max_iter, tol=tol)
    J, h = unpack(theta, n)
    return InverseResult(J, h, "exact", info.iterations, info.converged, time.perf_counter() - t0, info.objective,
                         info.message)

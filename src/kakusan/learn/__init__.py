"""Learning energy-based models by moment matching, with pluggable model-statistics estimators.

>>> from kakusan.boltzmann import instances
>>> from kakusan.learn import fit_boltzmann
>>> truth = instances.sherrington_kirkpatrick(8, beta=0.5, seed=0)
>>> data = truth.sample(2000, generator=1)
>>> model, result = fit_boltzmann(data, method="exact", steps=200, progress=False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from kakusan.errors import KakusanError
from kakusan.learn.base import MomentMatching, Stats, StatsEstimator, lipschitz_bound, mean_energy
from kakusan.optim.surrogate import make_optimizer
from kakusan.train import TrainConfig, TrainResult, fit

if TYPE_CHECKING:
    from kakusan.report.run_dir import RunDir


def _exact() -> StatsEstimator:
    from kakusan.learn.exact import ExactEstimator

    return ExactEstimator()


def _pcd(*, n_chains: int = 256, n_sweeps: int = 2, sampler: str = "gibbs", burn_in: int = 50) -> StatsEstimator:
    from kakusan.learn.pcd import PCDEstimator, kernel_factory

    return PCDEstimator(kernel_factory(sampler), n_chains, n_sweeps, burn_in=burn_in)


def _pt(*, n_systems: int = 32, n_sweeps: int = 2, n_replicas: int = 8, beta_min: float = 0.3, betas=None,
        sampler: str = "gibbs", burn_in: int = 50) -> StatsEstimator:
    from kakusan.learn.pcd import kernel_factory
    from kakusan.learn.tempered import TemperedEstimator

    return TemperedEstimator(kernel_factory(sampler), n_systems, n_sweeps, betas=betas, n_replicas=n_replicas,
                             beta_min=beta_min, burn_in=burn_in)


# Where the model statistics come from; later chapters add entries (mean field ...).
ESTIMATORS: dict[str, Callable[..., StatsEstimator]] = {"exact": _exact, "pcd": _pcd, "pt": _pt}
STOCHASTIC = ("pcd", "pt")
"""Methods whose statistics carry Monte Carlo noise: they default to Adam, and refuse backtracking."""


def make_estimator(method: str, **options) -> StatsEstimator:
    """The estimator ``method`` built with ``options`` (e.g. ``make_estimator("pcd", n_chains=512)``)."""
    import inspect

    if method not in ESTIMATORS:
        raise KakusanError(f"unknown learning method {method!r}: choose from {', '.join(ESTIMATORS)}")
    known = inspect.signature(ESTIMATORS[method]).parameters
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise KakusanError(f"method {method!r} has no option(s) {', '.join(unknown)}: "
                           f"its options are {', '.join(known) or 'none'}")
    return ESTIMATORS[method](**options)


def fit_boltzmann(data: torch.Tensor | Stats, model: torch.nn.Module | None = None, *, method: str = "exact",
                  optimizer: str | None = None, steps: int = 500, lr: float | None = None, l1: float = 0.0,
                  l2: float = 0.0, seed: int = 0, run: RunDir | None = None, progress: bool = True,
                  callback=None, options: dict | None = None) -> tuple[torch.nn.Module, TrainResult]:
    """Fit a Boltzmann machine to ±1 data (M, N) by minimising KL(p0||q) with moment matching.

    ``model`` defaults to a fully visible :class:`~kakusan.boltzmann.IsingModel` started at J = 0, h = 0.
    ``l1`` adds λ Σ_{k<l} |J_kl| by the surrogate method's proximal step; ``l2`` adds (l2/2) Σ_{k<l} J_kl².
    ``options`` configure the estimator (see :func:`make_estimator`; e.g. ``{"n_chains": 512}`` for
    ``"pcd"``). ``optimizer`` defaults to ``"backtracking"``, or to ``"adam"`` (lr 0.01) for the
    Monte Carlo methods in :data:`STOCHASTIC`, whose noisy statistics a line search cannot use.
    """
    from kakusan.boltzmann.ising import IsingModel

    estimator = make_estimator(method, **(options or {}))
    if optimizer is None:
        optimizer = "adam" if method in STOCHASTIC else "backtracking"
        lr = 0.01 if (lr is None and optimizer == "adam") else lr
    if optimizer == "backtracking" and method in STOCHASTIC:
        raise KakusanError(f"backtracking compares exact objective values, which method {method!r} does not give: "
                           "use adam, momentum, sgd or surrogate")
    if model is None:
        n = data.mean.numel() if isinstance(data, Stats) else data.shape[1]
        model = IsingModel(n)
    if optimizer in ("surrogate", "backtracking"):
        # λ Σ_{k<l} |J_kl| is λ/2 on each of the two mirror entries of the (N, N) parameter
        groups = [{"params": [p], "l1": l1 / 2 if name.endswith("J") else 0.0} for name, p in model.named_parameters()]
        opt = make_optimizer(optimizer, groups, lipschitz=lipschitz_bound(model))
    else:
        opt = make_optimizer(optimizer, model.parameters(), lr=lr, l1=l1)
    config = TrainConfig(steps=steps, seed=seed, progress=progress)
    result = fit(model, MomentMatching(estimator, l2=l2), data, opt, config, run=run, callback=callback)
    return model, result


from kakusan.learn.inverse import METHODS as INVERSE_METHODS  # noqa: E402  (MCMC-free solvers)
from kakusan.learn.inverse import InverseResult  # noqa: E402
from kakusan.learn.inverse import solve as solve_inverse  # noqa: E402

__all__ = ["ESTIMATORS", "INVERSE_METHODS", "InverseResult", "STOCHASTIC", "solve_inverse", "MomentMatching", "Stats", "StatsEstimator", "fit_boltzmann", "lipschitz_bound",
           "make_estimator", "mean_energy"]

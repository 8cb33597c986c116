"""Learning energy-based models by moment matching, with pluggable model-statistics estimators.

>>> from kakusan.boltzmann import instances
>>> from kakusan.learn import fit_boltzmann
>>> truth = instances.sherrington_kirkpatrick(8, beta=0.5, seed=0)
>>> data = truth.sample(2000, generator=1)
>>> model, result = fit_boltzmann(data, method="exact", steps=200, progress=False)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from kakusan.errors import KakusanError
from kakusan.learn.base import MomentMatching, Stats, StatsEstimator, lipschitz_bound, mean_energy
from kakusan.optim.surrogate import make_optimizer
from kakusan.report.run_dir import RunDir
from kakusan.train import TrainConfig, TrainResult, fit


def _exact() -> StatsEstimator:
    from kakusan.learn.exact import ExactEstimator

    return ExactEstimator()


# Where the model statistics come from; later chapters add entries (pcd, pt, mean field ...).
ESTIMATORS: dict[str, Callable[[], StatsEstimator]] = {"exact": _exact}


def make_estimator(method: str) -> StatsEstimator:
    if method not in ESTIMATORS:
        raise KakusanError(f"unknown learning method {method!r}: choose from {', '.join(ESTIMATORS)}")
    return ESTIMATORS[method]()


def fit_boltzmann(data: torch.Tensor | Stats, model: torch.nn.Module | None = None, *, method: str = "exact",
                  optimizer: str = "backtracking", steps: int = 500, lr: float | None = None, l1: float = 0.0,
                  l2: float = 0.0, seed: int = 0, run: RunDir | None = None, progress: bool = True,
                  callback=None) -> tuple[torch.nn.Module, TrainResult]:
    """Fit a Boltzmann machine to ±1 data (M, N) by minimising KL(p0||q) with moment matching.

    ``model`` defaults to a fully visible :class:`~kakusan.boltzmann.IsingModel` started at J = 0, h = 0.
    ``l1`` adds λ Σ_{k<l} |J_kl| by the surrogate method's proximal step; ``l2`` adds (l2/2) Σ_{k<l} J_kl².
    """
    from kakusan.boltzmann.ising import IsingModel

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
    result = fit(model, MomentMatching(make_estimator(method), l2=l2), data, opt, config, run=run, callback=callback)
    return model, result


__all__ = ["ESTIMATORS", "MomentMatching", "Stats", "StatsEstimator", "fit_boltzmann", "lipschitz_bound",
           "make_estimator", "mean_energy"]

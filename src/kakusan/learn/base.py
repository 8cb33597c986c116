"""Moment matching: the gradient of KL(p0 || q) for an exponential-family energy model.

For q(x) = exp(−E(x))/Z with E(x) = −θᵀφ(x) (for the Ising model φ = (x_k, x_k x_l)),

    ∂KL(p0||q)/∂θ = −⟨φ⟩_data + ⟨φ⟩_model,

data statistics minus model statistics. Where ⟨φ⟩_model comes from — exact enumeration, persistent
chains, replica exchange, mean field — is a pluggable :class:`StatsEstimator`; the training loop and the
optimizers stay the same. Because the mean energy is linear in the statistics, the surrogate loss

    ℓ(θ) = E(⟨φ⟩_data) − E(⟨φ⟩_model.detach())

has exactly that gradient, so any ``torch.optim`` optimizer (or the η = 1/L method) applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from kakusan.train import StepOutput


@dataclass(frozen=True)
class Stats:
    """Sufficient statistics of ±1 spins: ``mean`` ⟨x_k⟩ (N,) and ``corr`` ⟨x_k x_l⟩ (N, N), diagonal 1."""

    mean: torch.Tensor
    corr: torch.Tensor

    @classmethod
    def of(cls, x: torch.Tensor, weights: torch.Tensor | None = None) -> "Stats":
        """Statistics of samples ``x`` (M, N), optionally weighted by ``weights`` (M,) summing to 1."""
        x = x.to(torch.float64)
        if weights is None:
            return cls(x.mean(0), x.T @ x / len(x))
        w = weights.to(torch.float64)
        return cls(w @ x, x.T @ (w[:, None] * x))

    def covariance(self) -> torch.Tensor:
        """C_kl = ⟨x_k x_l⟩ − ⟨x_k⟩⟨x_l⟩, (N, N)."""
        return self.corr - torch.outer(self.mean, self.mean)


class StatsEstimator(Protocol):
    """Where the model statistics come from: ``model_stats(model, generator) -> Stats``."""

    def model_stats(self, model: torch.nn.Module, generator: torch.Generator) -> Stats: ...


def mean_energy(model: torch.nn.Module, stats: Stats) -> torch.Tensor:
    """⟨E⟩ = −½ Σ_kl J_kl ⟨x_k x_l⟩ − Σ_k h_k ⟨x_k⟩: the mean energy is linear in the statistics."""
    return -0.5 * (model.couplings() * stats.corr).sum() - model.h @ stats.mean


class MomentMatching:
    """The objective ``(model, batch, generator) -> StepOutput`` whose gradient is model minus data statistics.

    ``batch`` is ±1 data (M, N) or precomputed data :class:`Stats`; a model with hidden units supplies
    the clamped statistics itself (``model.clamped_stats(batch)``, the E-step). ``l2`` adds
    (l2/2) Σ_{k<l} J_kl² to the loss; an L1 penalty is applied by the surrogate optimizer's proximal step.
    When the estimator is exact (it has ``log_z(model)``), ``value`` is the exact mean negative
    log-likelihood (= KL(p0||q) + H(p0)) plus the penalty, which line-search optimizers compare.
    An estimator with persistent chains hands them to the checkpoint through :meth:`state_dict`.
    """

    def __init__(self, estimator: StatsEstimator, l2: float = 0.0):
        self.estimator, self.l2 = estimator, l2

    def __call__(self, model: torch.nn.Module, batch, generator: torch.Generator) -> StepOutput:
        data = self.data_stats(model, batch)
        model_stats = self.estimator.model_stats(model, generator)
        penalty = 0.25 * self.l2 * (model.couplings() ** 2).sum()
        loss = mean_energy(model, data) - mean_energy(model, model_stats) + penalty
        metrics = {"moment_error": float(max((data.mean - model_stats.mean).abs().max(),
                                             (data.corr - model_stats.corr).abs().max()))}
        value = None
        if hasattr(self.estimator, "log_z"):
            nll = self.exact_nll(model, batch, data)
            value = nll + float(penalty.detach())
            metrics["nll"] = nll
        return StepOutput(loss=loss, value=value, metrics=metrics)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The estimator's own state (its persistent chains), kept with a training checkpoint; {} for exact ones."""
        get = getattr(self.estimator, "state_dict", None)
        return {} if get is None else {f"estimator.{k}": v for k, v in get().items()}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Give the estimator back what :meth:`state_dict` saved (a resumed run continues its chains)."""
        load = getattr(self.estimator, "load_state_dict", None)
        if load is not None:
            load({k.removeprefix("estimator."): v for k, v in tensors.items() if k.startswith("estimator.")})

    @staticmethod
    def data_stats(model: torch.nn.Module, batch) -> Stats:
        """Clamped statistics: of the data themselves, or with hidden units averaged over q(h|v)."""
        if isinstance(batch, Stats):
            return batch
        clamped = getattr(model, "clamped_stats", None)
        return clamped(batch) if clamped is not None else Stats.of(batch)

    def exact_nll(self, model: torch.nn.Module, batch, data: Stats) -> float:
        """−⟨log q(x)⟩_data in nats: ⟨E⟩_data + log Z for a fully visible model, −⟨log q(v)⟩ with hidden units."""
        with torch.no_grad():
            if hasattr(model, "clamped_stats"):
                return float(-model.log_prob(batch).mean())
            return float(mean_energy(model, data) + self.estimator.log_z(model))


def lipschitz_bound(model: torch.nn.Module) -> float:
    """L = N(N+1)/2 bounds the curvature of the mean NLL in θ = (h_k, J_{k<l}), for any parameters.

    The Hessian of log Z is the covariance of the sufficient statistics φ = (x_k, x_k x_l), and
    λ_max(Cov φ) ≤ tr Cov φ ≤ E‖φ‖² = N + N(N−1)/2 since every |φ_i| = 1. With hidden units the
    Hessian of −log q(v) is Cov_free φ − ⟨Cov_{q(h|v)} φ⟩_data ⪯ Cov_free φ, so the same L holds.
    """
    n = model.h.numel()
    return n * (n + 1) / 2

"""Latent distributions: the encoder's q(z|x) and the fixed prior p(z), batched over examples.

Two families, each with its prior and a closed-form KL (per latent unit, since both factorise):

- Gaussian: q(z|x) = N(μ, diag σ²) (:class:`DiagonalGaussian`, reparameterised z = μ + σ ε) against the
  standard normal p(z) = N(0, I):  KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²).
- Bernoulli: q(z|x) = Π_j Bernoulli(z_j; π_j) (:class:`FactorisedBernoulli`, not reparameterisable: its
  gradients use the score function) against the uniform prior p(z) = 2^{−L}:
  KL = Σ_j π_j log π_j + (1 − π_j) log(1 − π_j) + log 2.

Samples have shape (k, n, L): k draws for each of n examples.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from kakusan.runtime import make_generator

Tensor = torch.Tensor
LOG_2PI = math.log(2 * math.pi)
LatentName = Literal["gaussian", "bernoulli"]


class DiagonalGaussian(NamedTuple):
    """q(z|x) = N(mean, diag exp(log_var)); ``mean``, ``log_var`` of shape (n, L)."""

    mean: Tensor
    log_var: Tensor

    reparameterised = True

    def sample(self, k: int, generator: torch.Generator | None = None) -> Tensor:
        """z = μ + σ ε, ε ~ N(0, I): (k, n, L), differentiable in μ and σ (the reparameterisation trick)."""
        eps = torch.randn((k, *self.mean.shape), generator=make_generator(generator, self.mean.device),
                          dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + torch.exp(0.5 * self.log_var) * eps

    def log_prob_units(self, z: Tensor) -> Tensor:
        """log q(z_j|x) per unit: (..., n, L)."""
        return -0.5 * (LOG_2PI + self.log_var + (z - self.mean) ** 2 * torch.exp(-self.log_var))

    def kl_units(self) -> Tensor:
        """KL(q ‖ N(0, I)) per unit in closed form: ½ (μ² + σ² − 1 − log σ²), (n, L)."""
        return 0.5 * (self.mean**2 + torch.exp(self.log_var) - 1 - self.log_var)

    def mode(self) -> Tensor:
        return self.mean

    @staticmethod
    def prior_log_prob_units(z: Tensor) -> Tensor:
        """log N(z_j; 0, 1) per unit."""
        return -0.5 * (LOG_2PI + z * z)

    @staticmethod
    def prior_sample(n: int, n_latent: int, generator: torch.Generator, dtype, device) -> Tensor:
        return torch.randn((n, n_latent), generator=generator, dtype=dtype, device=device)


class FactorisedBernoulli(NamedTuple):
    """q(z|x) = Π_j Bernoulli(z_j; sigmoid(logits_j)); ``logits`` of shape (n, L)."""

    logits: Tensor

    reparameterised = False

    def sample(self, k: int, generator: torch.Generator | None = None) -> Tensor:
        """z ∈ {0, 1}: (k, n, L), not differentiable (use the score function for gradients)."""
        p = torch.sigmoid(self.logits.detach()).expand(k, *self.logits.shape)
        return torch.bernoulli(p, generator=make_generator(generator, self.logits.device))

    def log_prob_units(self, z: Tensor) -> Tensor:
        """log q(z_j|x) = z_j ℓ_j − softplus(ℓ_j) per unit."""
        return z * self.logits - F.softplus(self.logits)

    def kl_units(self) -> Tensor:
        """KL(q ‖ uniform) per unit: π log π + (1 − π) log(1 − π) + log 2, (n, L)."""
        p = torch.sigmoid(self.logits)
        return p * F.logsigmoid(self.logits) + (1 - p) * F.logsigmoid(-self.logits) + math.log(2)

    def mode(self) -> Tensor:
        return (self.logits > 0).to(self.logits.dtype)

    @staticmethod
    def prior_log_prob_units(z: Tensor) -> Tensor:
        """log ½ per unit (uniform prior)."""
        return torch.full_like(z, -math.log(2))

    @staticmethod
    def prior_sample(n: int, n_latent: int, generator: torch.Generator, dtype, device) -> Tensor:
        return torch.bernoulli(torch.full((n, n_latent), 0.5, dtype=dtype, device=device), generator=generator)


FAMILIES = {"gaussian": DiagonalGaussian, "bernoulli": FactorisedBernoulli}
PARAMS_PER_UNIT = {"gaussian": 2, "bernoulli": 1}


def posterior(family: LatentName, raw: Tensor) -> DiagonalGaussian | FactorisedBernoulli:
    """q(z|x) from the encoder's output (n, P·L): Gaussian (μ, log σ²) halves, or Bernoulli logits."""
    if family == "gaussian":
        mean, log_var = raw.chunk(2, dim=-1)
        return DiagonalGaussian(mean, log_var)
    return FactorisedBernoulli(raw)


__all__ = ["DiagonalGaussian", "FAMILIES", "FactorisedBernoulli", "LatentName", "PARAMS_PER_UNIT", "posterior"]

"""Binary unit types of an RBM layer: 0/1 (Bernoulli) and ±1 (spins).

A layer of binary units s_j ∈ {lo, hi} that sees a field x_j contributes exp(s_j x_j) to the Boltzmann
weight, so summing one unit out gives the log-partition φ(x) = log(e^{lo·x} + e^{hi·x}):

    0/1:  φ(x) = log(1 + e^x) = softplus(x),     P(s = 1) = σ(x),     E[s] = σ(x)
    ±1:   φ(x) = log(2 cosh x) = softplus(2x) − x, P(s = +1) = σ(2x),  E[s] = tanh(x)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def softplus(x: Tensor) -> Tensor:
    """log(1 + e^x), accurate to rounding in float64 too (torch's default cut-over at x = 20 is not)."""
    return F.softplus(x, beta=1.0, threshold=40.0)


@dataclass(frozen=True)
class Units:
    """A binary unit type: values (lo, hi) with hi − lo ∈ {1, 2}; ``name`` is "bernoulli" or "spin"."""

    name: str
    lo: float
    hi: float

    @property
    def values(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def log_partition(self, x: Tensor) -> Tensor:
        """φ(x) = log Σ_{s∈{lo,hi}} e^{s x}, elementwise."""
        if self.lo == 0.0:
            return softplus(x)
        return softplus(2.0 * x) - x

    def prob(self, x: Tensor) -> Tensor:
        """P(s = hi | field x) = σ((hi − lo) x), elementwise."""
        return torch.sigmoid(x if self.hi - self.lo == 1.0 else (self.hi - self.lo) * x)

    def mean(self, x: Tensor) -> Tensor:
        """E[s | field x]: σ(x) for 0/1, tanh(x) for ±1."""
        return torch.sigmoid(x) if self.lo == 0.0 else torch.tanh(x)

    def sample(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        """s ~ P(s | field x) independently per element, in x's dtype."""
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        on = u < self.prob(x)
        if self.lo == 0.0:
            return on.to(x.dtype)
        return on.to(x.dtype) * 2.0 - 1.0

    def random(self, shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
               device: torch.device | str = "cpu") -> Tensor:
        """Uniform random units (the β = 0 distribution)."""
        return self.sample(torch.zeros(shape, dtype=dtype, device=device), generator)


BERNOULLI = Units("bernoulli", 0.0, 1.0)
SPIN = Units("spin", -1.0, 1.0)

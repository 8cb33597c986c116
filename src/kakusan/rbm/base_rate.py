"""Independent visible models q_A(v) with a known log Z: the start of AIS and its reverse.

Salakhutdinov & Murray (2008, §4.1) start annealed importance sampling from the "base-rate" model, the
RBM with W = 0 whose visible biases match the data's marginals; its partition function is a product
over units. :meth:`kakusan.rbm.RBM.base_rate` builds one from data; the model's visible conditional
accepts it as ``base`` to sample the geometric path q_A^{1−β} q_B^{β}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from kakusan.rbm.units import Units

Tensor = torch.Tensor


@dataclass(frozen=True)
class BinaryBase:
    """q_A(v) ∝ exp(biasᵀv) on binary units v ∈ {lo, hi}^n; log Z_A = Σ_i φ(bias_i).

    Attributes
    ----------
    bias : (n_visible,) float64 field of each unit.
    units : the visible unit type (0/1 or ±1).
    """

    bias: Tensor
    units: Units

    def energy(self, v: Tensor) -> Tensor:
        """E_A(v) = −biasᵀv: (B, n) -> (B,) float64."""
        return -(v.to(torch.float64) @ self.bias)

    def log_z(self) -> float:
        """log Z_A = Σ_i log Σ_{s∈{lo,hi}} e^{s·bias_i}."""
        return float(self.units.log_partition(self.bias).sum())

    def sample(self, n: int, generator: torch.Generator | None, dtype: torch.dtype = torch.float64) -> Tensor:
        """n exact draws (n, n_visible) in ``dtype``, on the device of ``bias``."""
        return self.units.sample(self.bias.to(dtype).expand(n, -1), generator)

    def to(self, device: torch.device | str) -> BinaryBase:
        """The same model with its tensors on ``device``."""
        return BinaryBase(self.bias.to(device), self.units)


@dataclass(frozen=True)
class GaussianBase:
    """q_A(v) = Π_i N(v_i; mean_i, var_i); log Z_A = Σ_i ½ log(2π var_i) for E_A(v) = Σ_i (v_i − mean_i)²/(2 var_i).

    Attributes
    ----------
    mean, var : (n_visible,) float64.
    """

    mean: Tensor
    var: Tensor

    def energy(self, v: Tensor) -> Tensor:
        """E_A(v) = Σ_i (v_i − mean_i)² / (2 var_i): (B, n) -> (B,) float64."""
        return ((v.to(torch.float64) - self.mean) ** 2 / (2.0 * self.var)).sum(-1)

    def log_z(self) -> float:
        """log Z_A = ½ Σ_i log(2π var_i)."""
        return float(0.5 * torch.log(2.0 * math.pi * self.var).sum())

    def sample(self, n: int, generator: torch.Generator | None, dtype: torch.dtype = torch.float64) -> Tensor:
        """n exact draws (n, n_visible) in ``dtype``, on the device of ``mean``."""
        z = torch.randn((n, len(self.mean)), generator=generator, dtype=torch.float64, device=self.mean.device)
        return (self.mean + self.var.sqrt() * z).to(dtype)

    def to(self, device: torch.device | str) -> GaussianBase:
        """The same model with its tensors on ``device``."""
        return GaussianBase(self.mean.to(device), self.var.to(device))


VisibleBase = BinaryBase | GaussianBase


def marginal_logit(p: Tensor, units: Units) -> Tensor:
    """The field b with P(v = hi) = p for a lone unit: log(p/(1−p)) / (hi − lo)."""
    return torch.log(p / (1.0 - p)) / (units.hi - units.lo)


def binary_base_rate(data: Tensor, units: Units, smoothing: float = 1.0) -> BinaryBase:
    """The base-rate model of binary data (M, n): P(v_i = hi) = (#hi + α) / (M + 2α), α = ``smoothing``."""
    x = data.to(torch.float64)
    on = ((x - units.lo) / (units.hi - units.lo)).sum(0)
    p = (on + smoothing) / (len(x) + 2.0 * smoothing)
    return BinaryBase(marginal_logit(p, units), units)

"""Posterior-collapse diagnostics for any VAE or HVAE: active units and the KL per unit and per layer.

- **Active units** (Burda et al. 2016, §5.2): unit u of a latent group is active when its posterior mean
  moves with the data, A_u = Cov_x(E_q[z_u|x]) > 10⁻². A collapsed unit has q(z_u|·) = p(z_u|·) whatever x
  is, so A_u = 0. For an HVAE, E_q[z_u|x] of a layer whose q depends on drawn latents is a Monte Carlo
  average over ``n_samples`` draws (:meth:`~kakusan.vae.HVAE.posterior_means`); the variance across x of an
  average of S draws is A_u + E_x[Var_MC]/S, so the mean Monte Carlo variance is subtracted (an unbiased
  estimate of A_u) and a collapsed unit does not look active from sampling noise alone. Note that in a
  hierarchy a unit whose q equals its prior p(z_u|z_{l+1}) still moves with x when z_{l+1} does: the
  criterion measures whether the unit's mean depends on x, not whether the unit adds information.
- **KL per unit**: the mean over examples of each unit's KL term in :meth:`elbo` (analytic where the model
  has it), {group: (L_g,)}; :func:`kl_per_layer` sums it per group. A collapsed unit has KL ≈ 0.

Both run in batches without gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from kakusan.errors import KakusanError, check_positive_int
from kakusan.runtime import Seed, make_generator
from kakusan.vae.latents import FactorisedBernoulli

Tensor = torch.Tensor


class Activity(NamedTuple):
    """Active units of one latent group: ``n_active`` units whose ``variance`` Cov_x(E_q[z_u|x]) (L,) exceeds
    ``threshold``."""

    n_active: int
    variance: Tensor
    threshold: float


def _batches(x: Tensor, cond: Tensor | None, batch_size: int):
    for i in range(0, len(x), batch_size):
        yield x[i:i + batch_size], (None if cond is None else cond[i:i + batch_size])


@torch.no_grad()
def posterior_means(model, x: Tensor, cond: Tensor | None = None, *, n_samples: int = 50, generator: Seed = None,
                    batch_size: int = 500) -> dict[str, tuple[Tensor, Tensor]]:
    """E_q[z|x] per latent group, {group: (mean (n, L), Monte Carlo variance of that mean (n, L))}.

    A one-layer VAE's group "z" is exact (q's mean; the probabilities of a binary latent); an HVAE's layers
    come from :meth:`~kakusan.vae.HVAE.posterior_means`.
    """
    check_positive_int(batch_size, "batch_size")
    g = make_generator(generator, x.device)
    parts: dict[str, list[tuple[Tensor, Tensor]]] = {}
    for xb, cb in _batches(x, cond, batch_size):
        if hasattr(model, "posterior_means"):
            out = model.posterior_means(xb, cb, n_samples=n_samples, generator=g)
        else:
            q = model.encode(xb, cb)
            mean = torch.sigmoid(q.logits) if isinstance(q, FactorisedBernoulli) else q.mean
            out = {"z": (mean, torch.zeros_like(mean))}
        for name, pair in out.items():
            parts.setdefault(name, []).append(pair)
    return {name: (torch.cat([m for m, _ in v]), torch.cat([s for _, s in v])) for name, v in parts.items()}


@torch.no_grad()
def active_units(model, x: Tensor, cond: Tensor | None = None, threshold: float = 1e-2, *, n_samples: int = 50,
                 generator: Seed = None, batch_size: int = 500) -> dict[str, Activity]:
    """Burda's active units per latent group: {group: Activity(n_active, variance (L,), threshold)}.

    variance_u = Var_x(Ê_q[z_u|x]) − mean_x Var_MC (clamped at 0), with the unbiased (n − 1) divisor over the
    n examples of x (at least 2).
    """
    if len(x) < 2:
        raise KakusanError(f"active units need at least 2 examples to estimate a covariance over x, got {len(x)}")
    out = {}
    for name, (mean, mc_var) in posterior_means(model, x, cond, n_samples=n_samples, generator=generator,
                                                 batch_size=batch_size).items():
        variance = (mean.double().var(0) - mc_var.double().mean(0)).clamp(min=0)
        out[name] = Activity(int((variance > threshold).sum()), variance, threshold)
    return out


@torch.no_grad()
def kl_per_unit(model, x: Tensor, cond: Tensor | None = None, *, n_samples: int = 1, generator: Seed = None,
                batch_size: int = 500) -> dict[str, Tensor]:
    """The KL of each latent unit averaged over the examples (and ``n_samples`` draws), {group: (L,)} float64."""
    check_positive_int(batch_size, "batch_size")
    g = make_generator(generator, x.device)
    sums: dict[str, Tensor] = {}
    for xb, cb in _batches(x, cond, batch_size):
        for name, units in model.elbo(xb, cb, g, n_samples=n_samples).kl_units.items():
            total = units.double().sum(0)
            sums[name] = total if name not in sums else sums[name] + total
    return {name: v / len(x) for name, v in sums.items()}


def kl_per_layer(model, x: Tensor, cond: Tensor | None = None, **kwargs) -> dict[str, float]:
    """The KL of each latent group averaged over the examples, {group: nats} (the sum of :func:`kl_per_unit`)."""
    return {name: float(v.sum()) for name, v in kl_per_unit(model, x, cond, **kwargs).items()}


__all__ = ["Activity", "active_units", "kl_per_layer", "kl_per_unit", "posterior_means"]

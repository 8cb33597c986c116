"""Building blocks of the hierarchical VAE: Gaussian layers, the precision-weighted merge, the Gaussian KL.

- :func:`merge` — the ladder VAE's precision weighting (Sønderby et al. 2016, eqs. 19–21): the bottom-up
  estimate N(μ̂, σ̂²) and the top-down prior N(μ_p, σ_p²) combine like two measurements of z,

      σ_q² = 1 / (σ̂⁻² + σ_p⁻²),      μ_q = (μ̂ σ̂⁻² + μ_p σ_p⁻²) σ_q²,

  computed in log space: log σ_q² = −logaddexp(−log σ̂², −log σ_p²) and μ_q = w μ̂ + (1 − w) μ_p with
  w = σ̂⁻² σ_q² = sigmoid(log σ_p² − log σ̂²), so no precision is ever formed (no overflow for tiny
  variances). The product of the two Gaussian densities is proportional to N(μ_q, σ_q²), which is why the
  merge is exact when N(μ̂, σ̂²) is the exact likelihood of z_l given x (see
  :mod:`kakusan.vae.linear_hierarchy`).
- :func:`gaussian_kl_units` — KL(N(μ_q, σ_q²) ‖ N(μ_p, σ_p²)) per unit, in closed form:
  ½ [log σ_p² − log σ_q² + (σ_q² + (μ_q − μ_p)²) / σ_p² − 1].
- :class:`Trunk` and :class:`GaussianHead` — a deterministic net and the affine map to a diagonal Gaussian
  (mean, log-variance). With ``LinearConfig`` the trunk is the identity and the head's log-variance is a
  learned constant, so a stack of linear layers is a linear-Gaussian model with an exact marginal.
"""

from __future__ import annotations

import torch
from torch import nn

from kakusan.errors import KakusanError
from kakusan.runtime import make_generator
from kakusan.vae.latents import DiagonalGaussian
from kakusan.vae.nets import ConvConfig, LinearConfig, MLPConfig, NetConfig, _act, _image_dims, _mlp, _with

Tensor = torch.Tensor


def merge(bottom_up: DiagonalGaussian, prior: DiagonalGaussian) -> DiagonalGaussian:
    """The precision-weighted combination of N(μ̂, σ̂²) and N(μ_p, σ_p²) (module docstring), broadcasting."""
    log_var = -torch.logaddexp(-bottom_up.log_var, -prior.log_var)
    w = torch.sigmoid(prior.log_var - bottom_up.log_var)  # σ̂⁻² σ_q²
    return DiagonalGaussian(w * bottom_up.mean + (1 - w) * prior.mean, log_var)


def gaussian_kl_units(q: DiagonalGaussian, p: DiagonalGaussian) -> Tensor:
    """KL(q ‖ p) per unit for diagonal Gaussians, broadcasting: ½ [log σ_p² − log σ_q² + (σ_q² + Δμ²)/σ_p² − 1]."""
    return 0.5 * (p.log_var - q.log_var + (torch.exp(q.log_var) + (q.mean - p.mean) ** 2) * torch.exp(-p.log_var)
                  - 1)


def standard_normal_kl_units(q: DiagonalGaussian) -> Tensor:
    """KL(q ‖ N(0, I)) per unit: ½ (μ² + σ² − 1 − log σ²)."""
    return 0.5 * (q.mean**2 + torch.exp(q.log_var) - 1 - q.log_var)


def draw(q: DiagonalGaussian, generator: torch.Generator | None) -> Tensor:
    """One reparameterised draw z = μ + σ ε of the shape of q's mean."""
    eps = torch.randn(q.mean.shape, generator=make_generator(generator, q.mean.device), dtype=q.mean.dtype,
                      device=q.mean.device)
    return q.mean + torch.exp(0.5 * q.log_var) * eps


class Trunk(nn.Module):
    """A deterministic net: [input, c] → features (…, n_out).

    ``MLPConfig``: the widths ``hidden``, each followed by the activation; ``LinearConfig``: the identity
    (features = [input, c]); ``ConvConfig`` (data side only): two stride-2 convolutions, flattened, [+ c], then a
    dense layer of width ``hidden`` if > 0 — all followed by the activation.
    """

    def __init__(self, config: NetConfig, n_in: int, n_cond: int, image: tuple[int, ...] | None = None):
        super().__init__()
        self.conv: nn.Module | None = None
        if isinstance(config, MLPConfig):
            widths = [n_in + n_cond, *config.hidden]
            self.net = nn.Sequential(_mlp(widths, config.activation), _act(config.activation)) if config.hidden \
                else nn.Identity()
            self.n_out = widths[-1]
        elif isinstance(config, LinearConfig):
            self.net, self.n_out = nn.Identity(), n_in + n_cond
        elif isinstance(config, ConvConfig):
            if image is None:
                raise KakusanError("a ConvConfig fits only the data side of the first layer: use MLPConfig or "
                                   "LinearConfig between latent layers")
            self.image = _image_dims(image)
            c, h, w = self.image
            c1, c2 = config.channels
            self.conv = nn.Sequential(nn.Conv2d(c, c1, 4, 2, 1), _act(config.activation),
                                      nn.Conv2d(c1, c2, 4, 2, 1), _act(config.activation), nn.Flatten())
            n_flat = c2 * (h // 4) * (w // 4) + n_cond
            self.net = nn.Sequential(nn.Linear(n_flat, config.hidden), _act(config.activation)) if config.hidden \
                else nn.Identity()
            self.n_out = config.hidden or n_flat
        else:
            raise KakusanError(f"unknown net config {type(config).__name__}: use MLPConfig, ConvConfig or LinearConfig")

    def forward(self, h: Tensor, c: Tensor | None = None) -> Tensor:
        if self.conv is not None:
            lead = h.shape[:-1]
            h = self.conv(h.reshape(-1, *self.image)).reshape(*lead, -1)
        return self.net(_with(h, c))


class GaussianHead(nn.Module):
    """features (…, n_in) → DiagonalGaussian(mean, log_var) of n_out units: an affine mean, and an affine
    log-variance (``constant_variance=False``) or a learned constant one (``True``, the linear-Gaussian case)."""

    def __init__(self, n_in: int, n_out: int, constant_variance: bool = False):
        super().__init__()
        self.mean = nn.Linear(n_in, n_out)
        if constant_variance:
            self.log_var = nn.Parameter(torch.zeros(n_out))
        else:
            self.log_var = nn.Linear(n_in, n_out)

    def forward(self, h: Tensor) -> DiagonalGaussian:
        mean = self.mean(h)
        log_var = self.log_var(h) if isinstance(self.log_var, nn.Linear) else self.log_var.expand_as(mean)
        return DiagonalGaussian(mean, log_var)


class GaussianLayer(nn.Module):
    """A trunk and a Gaussian head: [input, c] → N(mean, diag exp(log_var)); used for q(z_l|z_{l−1}) (Markov
    inference) and for the generative p(z_l|z_{l+1})."""

    def __init__(self, config: NetConfig, n_in: int, n_cond: int, n_out: int):
        super().__init__()
        self.trunk = Trunk(config, n_in, n_cond)
        self.head = GaussianHead(self.trunk.n_out, n_out, isinstance(config, LinearConfig))

    def forward(self, h: Tensor, c: Tensor | None = None) -> DiagonalGaussian:
        return self.head(self.trunk(h, c))


__all__ = ["GaussianHead", "GaussianLayer", "Trunk", "draw", "gaussian_kl_units", "merge",
           "standard_normal_kl_units"]

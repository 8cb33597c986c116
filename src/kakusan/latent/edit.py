"""Image to image with a prompt: SDEdit, and inpainting with a mask — both start the reverse process part-way.

**SDEdit** (Meng et al. 2022). Encode the image, z_0 = E(x); noise it to time t_0 = strength · T,
z_{t_0} = α(t_0) z_0 + σ(t_0) ε; run the sampler from t_0 to 0 with the prompt (``t_start``, with
⌈strength · steps⌉ steps); decode. The noise erases detail below the scale σ(t_0)/α(t_0): a small strength
keeps the picture and changes its texture, strength 1 is plain generation.

**Inpainting** (the replacement method of latent diffusion; Lugmayr et al. 2022 without resampling). ``mask``
(28×28, 1 = repaint, 0 = keep) is taken to the latent grid by a 4×4 max-pool (a latent whose patch holds any
pixel to repaint is repainted). After every sampler step, the kept latents are replaced by the known ones noised
to the step's time with one fixed ε, α(t) z_0 + σ(t) ε, so the repainted region is generated in agreement with
the known one; at the end the kept pixels are pasted back exactly.
"""

from __future__ import annotations

import math

import torch

from kakusan.errors import DataError
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor


def _check_strength(strength: float) -> float:
    strength = float(strength)
    if not 0.0 < strength <= 1.0:
        raise DataError(f"the strength must lie in (0, 1] (the fraction of the noise schedule to redo), got {strength:g}")
    return strength


def _check_mask(mask, images: Tensor) -> Tensor:
    mask = torch.as_tensor(mask, dtype=torch.float32)
    if mask.ndim == 2:
        mask = mask.expand(len(images), *mask.shape)
    if tuple(mask.shape) != tuple(images.shape):
        raise DataError(f"the mask must have the images' shape {tuple(images.shape[1:])} (or one per image), got "
                        f"{tuple(mask.shape)}")
    if not torch.all((mask == 0) | (mask == 1)):
        raise DataError("the mask must hold only 0 (keep) and 1 (repaint)")
    return mask.to(images.device)


@torch.no_grad()
def edit(model, images: Tensor, prompt, strength: float = 0.6, mask=None, generator: Seed = None,
         sampler: str = "dpm++2m", steps: int = 20, guidance: float = 3.0, negative=None) -> Tensor:
    """SDEdit of ``images`` (n, 28, 28) in [0, 1] towards ``prompt``; with ``mask``, inpainting (module docstring).
    Returns (n, 28, 28) in [0, 1]."""
    strength = _check_strength(strength)
    ae, diff = model.autoencoder, model.diffusion
    x = ae.check_images(images)[:, 0]
    n, device = len(x), x.device
    g = make_generator(generator, device)
    z0 = ae.encode(x)
    eps = torch.randn(z0.shape, generator=g, device=device, dtype=z0.dtype)
    T = diff.schedule.T
    t0 = max(1.0, round(strength * T))
    a0, s0 = (v.item() for v in diff.schedule.alpha_sigma(torch.tensor([t0], dtype=torch.float64)))
    z_start = a0 * z0 + s0 * eps
    n_steps = max(1, min(int(t0), math.ceil(strength * steps)))
    callback, keep = None, None
    if mask is not None:
        m = _check_mask(mask, x)
        keep = 1.0 - torch.nn.functional.max_pool2d(m[:, None], 4, 4, ceil_mode=True).expand_as(z0)

        def callback(i, t_next, z, z0_hat):  # noqa: ARG001 — the sampler's callback signature
            a, s = (v.item() for v in diff.schedule.alpha_sigma(torch.tensor([t_next], dtype=torch.float64)))
            z.mul_(1 - keep).add_(keep * (a * z0 + s * eps))
    out = model.generate(prompt, n=n, generator=g, sampler=sampler, steps=n_steps, guidance=guidance,
                         negative=negative, z_T=z_start, t_start=t0, callback=callback)
    if mask is not None:
        out = m * out + (1 - m) * x
    return out


__all__ = ["edit"]

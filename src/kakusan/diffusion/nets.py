"""Denoiser networks and what they share: the sinusoidal time embedding, the class embedding, the MLP.

The denoiser contract: ``net(x_t, t, cond=None) -> out`` with x_t (n, *data_shape), t (n,) float step indices
in [0, T] (fractional times are allowed: ODE samplers and the probability-flow likelihood ask for them),
cond (n,) integer labels in 0 … n_classes, where the label ``n_classes`` is the *null* class (the
unconditional model of classifier-free guidance; label dropout in training). ``out`` has the shape of x_t,
with ``out_channels`` = 2 × channels when the model learns its variances (the second half are the
interpolation coefficients of Nichol & Dhariwal 2021). Every net has ``config``, ``out_mult`` and
``gflop_per_example()`` (a forward pass, multiply-adds × 2, from counted layers).

``MLPDenoiserConfig(hidden=256, depth=3, time_dim=64)`` — an MLP for vector data (D ≤ a few hundred):
[x, emb(t), emb(y)] → SiLU residual blocks → out. The UNet is :mod:`kakusan.diffusion.unet`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from kakusan.errors import DataError

Tensor = torch.Tensor


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0, scale: float = 1.0) -> Tensor:
    """Sinusoidal features of t (n,) → (n, dim): [cos(t·ω_k), sin(t·ω_k)], ω_k = max_period^(−k/half)
    (Vaswani et al. 2017; Ho et al. 2020). ``scale`` multiplies t first (1000/T keeps the frequencies of a
    T = 1000 model)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * scale)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return nn.functional.pad(emb, (0, dim - 2 * half)) if dim % 2 else emb


class TimeClassEmbedding(nn.Module):
    """emb(t) → Linear-SiLU-Linear, plus a learned embedding of the class (with a null class) when conditional, or,
    with ``context_dim`` > 0 (text conditioning), a linear map of the condition's pooled sentence embedding
    (Imagen's pooled conditioning; the token states go to the UNet's cross-attention)."""

    def __init__(self, dim: int, out: int, T: int, n_classes: int = 0, context_dim: int = 0):
        super().__init__()
        self.dim, self.scale, self.n_classes = dim, 1000.0 / T, n_classes
        self.mlp = nn.Sequential(nn.Linear(dim, out), nn.SiLU(), nn.Linear(out, out))
        self.classes = nn.Embedding(n_classes + 1, out) if n_classes else None
        self.text = nn.Linear(context_dim, out) if context_dim else None

    def forward(self, t: Tensor, cond) -> Tensor:
        emb = self.mlp(timestep_embedding(t, self.dim, scale=self.scale).to(self.mlp[0].weight.dtype))
        if self.text is not None:
            from kakusan.diffusion.conditioning import TextCondition

            if not isinstance(cond, TextCondition):
                raise DataError("this denoiser is text-conditional: give cond as a TextCondition (the empty prompt's "
                                "for the unconditional model)")
            return emb + self.text(cond.pooled.to(emb.dtype))
        if self.classes is not None:
            if cond is None:  # an unconditional call of a conditional net: the null class
                cond = torch.full((len(t),), self.n_classes, device=t.device, dtype=torch.long)
            emb = emb + self.classes(cond.long())
        elif cond is not None:
            raise DataError("this denoiser is unconditional (n_classes=0): leave cond out")
        return emb


@dataclass(frozen=True)
class MLPDenoiserConfig:
    """An MLP denoiser: ``depth`` residual blocks of width ``hidden``; ``time_dim`` sinusoidal features."""

    hidden: int = 256
    depth: int = 3
    time_dim: int = 64


class _Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.net = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        return h + self.net(nn.functional.silu(self.norm(h + emb)))


class MLPDenoiser(nn.Module):
    """The MLP denoiser for vector data x (n, D) (module docstring)."""

    def __init__(self, config: MLPDenoiserConfig, data_shape: tuple[int, ...], T: int, n_classes: int = 0,
                 out_mult: int = 1):
        super().__init__()
        if len(data_shape) != 1:
            raise DataError(f"the MLP denoiser takes vectors (D,), got data of shape {data_shape}: use the UNet for "
                            "images")
        self.config, self.out_mult = config, out_mult
        (D,) = data_shape
        w = config.hidden
        self.embed = TimeClassEmbedding(config.time_dim, w, T, n_classes)
        self.inp = nn.Linear(D, w)
        self.blocks = nn.ModuleList(_Block(w) for _ in range(config.depth))
        self.out = nn.Sequential(nn.LayerNorm(w), nn.SiLU(), nn.Linear(w, D * out_mult))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)
        self._flops = 2 * (D * w + config.depth * 2 * w * w + w * D * out_mult + config.time_dim * w + w * w)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        emb = self.embed(t, cond)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)

    def gflop_per_example(self) -> float:
        return self._flops / 1e9


__all__ = ["timestep_embedding", "TimeClassEmbedding", "MLPDenoiserConfig", "MLPDenoiser"]

"""Encoder and decoder networks: MLP (Burda et al. 2016), small convolutional, and linear.

An encoder maps flat data x (N, D) — and, for a conditional VAE, a one-hot label c (N, C) — to the
parameters of q(z|x) (N, P_z·L). A decoder maps z (N, L) and c to the parameters of p(x|z) as (N, P, D):
P numbers per data dimension (logits, mean and log-scale …). The label enters by concatenation: with x
or z at the input of MLP and linear nets, with the flattened features (encoder) or z (decoder) in conv nets.

- :class:`MLPConfig` — the nets of Burda et al. (2016, §5): two deterministic layers of 200 tanh units
  on each side of a 50-unit stochastic layer.
- :class:`ConvConfig` — two stride-2 4×4 convolutions (H, W → H/4, W/4; 28×28 → 7×7, 8×8 → 2×2) and
  their transposes; H and W must be multiples of 4.
- :class:`LinearConfig` — one affine map each way; with a Gaussian likelihood of ``shared`` variance the
  decoder is probabilistic PCA, whose marginal likelihood is exact (:mod:`kakusan.vae.linear_gaussian`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from kakusan.errors import KakusanError

Tensor = torch.Tensor
Activation = Literal["tanh", "relu", "softplus", "elu", "silu"]
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus, "elu": nn.ELU, "silu": nn.SiLU}


@dataclass(frozen=True)
class MLPConfig:
    """Fully connected layers of widths ``hidden`` with ``activation`` (Burda et al.: (200, 200), tanh)."""

    hidden: tuple[int, ...] = (200, 200)
    activation: Activation = "tanh"


@dataclass(frozen=True)
class ConvConfig:
    """Two stride-2 convolutions with ``channels`` filters, then (if ``hidden`` > 0) a dense layer of that width."""

    channels: tuple[int, int] = (32, 64)
    hidden: int = 0
    activation: Activation = "relu"


@dataclass(frozen=True)
class LinearConfig:
    """One affine map: x → q's parameters, z → p(x|z)'s parameters."""


NetConfig = MLPConfig | ConvConfig | LinearConfig


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise KakusanError(f"unknown activation {name!r}: choose {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive ``sizes``, the activation after every one but the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(_act(activation))
    return nn.Sequential(*layers)


def _with(x: Tensor, c: Tensor | None) -> Tensor:
    return x if c is None else torch.cat([x, c], dim=-1)


class DenseEncoder(nn.Module):
    """MLP or linear encoder: [x, c] → (N, n_out)."""

    def __init__(self, config: MLPConfig | LinearConfig, n_features: int, n_cond: int, n_out: int):
        super().__init__()
        hidden = list(config.hidden) if isinstance(config, MLPConfig) else []
        self.net = _mlp([n_features + n_cond, *hidden, n_out], getattr(config, "activation", "tanh"))

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        return self.net(_with(x, c))


class DenseDecoder(nn.Module):
    """MLP or linear decoder: [z, c] → (N, P, D)."""

    def __init__(self, config: MLPConfig | LinearConfig, n_latent: int, n_cond: int, n_features: int,
                 n_params: int):
        super().__init__()
        hidden = list(config.hidden) if isinstance(config, MLPConfig) else []
        self.n_params, self.n_features = n_params, n_features
        self.net = _mlp([n_latent + n_cond, *hidden, n_params * n_features], getattr(config, "activation", "tanh"))

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        return self.net(_with(z, c)).unflatten(-1, (self.n_params, self.n_features))


def _image_dims(data_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of an image shape (H, W) or (C, H, W); H and W multiples of 4."""
    if len(data_shape) not in (2, 3) or data_shape[-1] % 4 or data_shape[-2] % 4:
        raise KakusanError(f"conv nets need images of shape (H, W) or (C, H, W) with H and W multiples of 4, got "
                           f"data shape {tuple(data_shape)}: use MLPConfig for other shapes")
    return (1, *data_shape) if len(data_shape) == 2 else tuple(data_shape)  # type: ignore[return-value]


class ConvEncoder(nn.Module):
    """x (N, C·H·W) → conv 4×4/2 → conv 4×4/2 → flatten [+ c] → (dense) → (N, n_out)."""

    def __init__(self, config: ConvConfig, data_shape: tuple[int, ...], n_cond: int, n_out: int):
        super().__init__()
        self.image = _image_dims(data_shape)
        c, h, w = self.image
        c1, c2 = config.channels
        self.features = nn.Sequential(nn.Conv2d(c, c1, 4, 2, 1), _act(config.activation),
                                      nn.Conv2d(c1, c2, 4, 2, 1), _act(config.activation), nn.Flatten())
        n_flat = c2 * (h // 4) * (w // 4)
        widths = [n_flat + n_cond, *([config.hidden] if config.hidden else []), n_out]
        self.head = _mlp(widths, config.activation)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        lead = x.shape[:-1]
        h = self.features(x.reshape(-1, *self.image))  # (N, c2·H/4·W/4)
        return self.head(_with(h.reshape(*lead, -1), c))


class ConvDecoder(nn.Module):
    """[z, c] → (dense) → (c2, H/4, W/4) → deconv 4×4/2 → deconv 4×4/2 → (N, P, C·H·W)."""

    def __init__(self, config: ConvConfig, n_latent: int, n_cond: int, data_shape: tuple[int, ...], n_params: int):
        super().__init__()
        self.image = _image_dims(data_shape)
        c, h, w = self.image
        c1, c2 = config.channels
        self.grid = (c2, h // 4, w // 4)
        widths = [n_latent + n_cond, *([config.hidden] if config.hidden else []), math.prod(self.grid)]
        self.head = nn.Sequential(_mlp(widths, config.activation), _act(config.activation))
        self.body = nn.Sequential(nn.ConvTranspose2d(c2, c1, 4, 2, 1), _act(config.activation),
                                  nn.ConvTranspose2d(c1, n_params * c, 4, 2, 1))
        self.n_params, self.n_features = n_params, c * h * w

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        lead = z.shape[:-1]
        h = self.head(_with(z, c)).reshape(-1, *self.grid)
        out = self.body(h)  # (N, P·C, H, W): parameter p in channels p·C … (p+1)·C − 1
        return out.reshape(*lead, self.n_params, self.n_features)


def build_encoder(config: NetConfig, data_shape: tuple[int, ...], n_cond: int, n_out: int) -> nn.Module:
    """The encoder for ``config``: flat x (N, D) [+ one-hot c (N, n_cond)] → (N, n_out)."""
    if isinstance(config, ConvConfig):
        return ConvEncoder(config, data_shape, n_cond, n_out)
    if isinstance(config, (MLPConfig, LinearConfig)):
        return DenseEncoder(config, math.prod(data_shape), n_cond, n_out)
    raise KakusanError(f"unknown encoder config {type(config).__name__}: use MLPConfig, ConvConfig or LinearConfig")


def build_decoder(config: NetConfig, n_latent: int, n_cond: int, data_shape: tuple[int, ...],
                  n_params: int) -> nn.Module:
    """The decoder for ``config``: z (N, L) [+ c] → (N, n_params, D)."""
    if isinstance(config, ConvConfig):
        return ConvDecoder(config, n_latent, n_cond, data_shape, n_params)
    if isinstance(config, (MLPConfig, LinearConfig)):
        return DenseDecoder(config, n_latent, n_cond, math.prod(data_shape), n_params)
    raise KakusanError(f"unknown decoder config {type(config).__name__}: use MLPConfig, ConvConfig or LinearConfig")


def width(config: NetConfig, data_shape: tuple[int, ...]) -> int:
    """Roughly how many activations one example's pass through the net keeps (to size IWAE chunks)."""
    if isinstance(config, MLPConfig):
        return sum(config.hidden)
    if isinstance(config, ConvConfig):
        c, h, w = _image_dims(data_shape)
        return (config.channels[0] * h * w) // 4 + (config.channels[1] * h * w) // 16 + config.hidden
    return 0


__all__ = ["ACTIVATIONS", "ConvConfig", "ConvDecoder", "ConvEncoder", "DenseDecoder", "DenseEncoder",
           "LinearConfig", "MLPConfig", "NetConfig", "build_decoder", "build_encoder", "width"]

"""Observation models p(x|z): the decoder gives P numbers per data dimension, the likelihood turns them into
log p(x|z) summed over the D dimensions.

- :class:`BernoulliLikelihood` — binary 0/1 data, decoder output = logits ℓ:
  log p(x|z) = Σ_d x_d ℓ_d − softplus(ℓ_d).
- :class:`GaussianLikelihood` — continuous data, decoder output = mean μ (and log σ when the decoder predicts it):
  log p(x|z) = Σ_d −½ log 2π − log σ_d − (x_d − μ_d)² / (2σ_d²), with σ fixed, one learned σ for all
  dimensions (``shared``; the linear decoder is then probabilistic PCA), one per dimension (``per_dim``;
  factor analysis) or predicted by the decoder (``decoder``).
- :class:`DiscretisedLogistic` — 8-bit images (Salimans et al. 2017, PixelCNN++, eq. 2), decoder output =
  mean μ and log-scale log s; see its docstring for the edge bins. Reported in bits/dim (:func:`bits_per_dim`).

Every likelihood checks its data (:meth:`check`) and raises a one-line :class:`~kakusan.errors.DataError`
naming the fix, e.g. for continuous data given to a Bernoulli likelihood.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from kakusan.errors import DataError, KakusanError

Tensor = torch.Tensor
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class BernoulliConfig:
    """p(x_d = 1 | z) = sigmoid(decoder logits); data must be 0/1."""


@dataclass(frozen=True)
class GaussianConfig:
    """p(x_d | z) = N(μ_d(z), σ_d²); ``variance`` says where σ comes from, ``std`` its fixed or initial value."""

    variance: Literal["fixed", "shared", "per_dim", "decoder"] = "shared"
    std: float = 1.0


@dataclass(frozen=True)
class LogisticConfig:
    """Discretised logistic for data on ``levels`` equally spaced values in [0, 1] (k / (levels − 1))."""

    levels: int = 256


LikelihoodConfig = BernoulliConfig | GaussianConfig | LogisticConfig


def bits_per_dim(log_likelihood: Tensor | float, n_dims: int) -> Tensor | float:
    """Negative log-likelihood in bits per dimension: −log p(x) / (D ln 2), from log p(x) in nats."""
    return -log_likelihood / (n_dims * math.log(2))


class BernoulliLikelihood(nn.Module):
    """log p(x|z) = Σ_d x_d ℓ_d − softplus(ℓ_d) for logits ℓ (P = 1 number per dimension)."""

    n_params = 1
    unit = "nats"

    def __init__(self, config: BernoulliConfig, n_features: int):
        super().__init__()
        self.config, self.n_features = config, n_features

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """params (..., 1, D) logits, x (..., D) broadcastable → (...,) nats."""
        logits = params[..., 0, :]
        return (x * logits - F.softplus(logits)).sum(-1)

    def mean(self, params: Tensor) -> Tensor:
        """E[x|z] = sigmoid(ℓ), (..., D)."""
        return torch.sigmoid(params[..., 0, :])

    def check(self, x: Tensor) -> None:
        bad = (x != 0) & (x != 1)
        if bool(bad.any()):
            value = float(x[bad][0])
            raise DataError(f"a Bernoulli likelihood needs binary 0/1 data, found {value:g}: binarise it (transform="
                            "kakusan.vae.dynamic_binarisation, or kakusan.data.stochastic_binarise) or use "
                            "GaussianConfig for continuous data")


class GaussianLikelihood(nn.Module):
    """log p(x|z) = Σ_d −½ log 2π − log σ_d − (x_d − μ_d)² / (2σ_d²); σ fixed, shared, per dimension or decoded."""

    unit = "nats"

    def __init__(self, config: GaussianConfig, n_features: int):
        super().__init__()
        if config.variance not in ("fixed", "shared", "per_dim", "decoder"):
            raise KakusanError(f"unknown Gaussian variance {config.variance!r}: choose fixed, shared, per_dim or "
                               "decoder")
        if not config.std > 0:
            raise KakusanError(f"the Gaussian likelihood's std must be positive, got {config.std}")
        self.config, self.n_features = config, n_features
        self.n_params = 2 if config.variance == "decoder" else 1
        size = {"fixed": 1, "shared": 1, "per_dim": n_features, "decoder": 0}[config.variance]
        log_std = torch.full((size,), math.log(config.std))
        if config.variance == "fixed":
            self.register_buffer("log_std", log_std)
        elif size:
            self.log_std = nn.Parameter(log_std)

    def scale_log(self, params: Tensor) -> Tensor:
        """log σ, broadcastable to (..., D)."""
        return params[..., 1, :] if self.config.variance == "decoder" else self.log_std

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """params (..., P, D) with μ = params[..., 0, :], x (..., D) → (...,) nats."""
        mu, log_std = params[..., 0, :], self.scale_log(params)
        z = (x - mu) * torch.exp(-log_std)
        return (-0.5 * LOG_2PI - log_std - 0.5 * z * z).sum(-1)  # log σ (1,), (D,) or (..., D) broadcasts

    def mean(self, params: Tensor) -> Tensor:
        return params[..., 0, :]

    def check(self, x: Tensor) -> None:
        if not bool(torch.isfinite(x).all()):
            raise DataError("the data hold NaN or infinite values: clean them before fitting a Gaussian likelihood")


class DiscretisedLogistic(nn.Module):
    """Discretised logistic p(x|μ, s) for x on the grid {0, 1/(K−1), …, 1} (K = ``levels``, 256 for 8 bits).

    With half a bin h = 1/(2(K−1)) and the logistic CDF F(y) = sigmoid((y − μ)/s), each dimension gets

        P(x) = F(x + h) − F(x − h)     for interior values,
        P(0) = F(h)                    (the left edge bin takes the whole left tail),
        P(1) = 1 − F(1 − h)            (the right edge bin takes the whole right tail),

    so the K probabilities sum to 1 exactly. In log space, with a = (x + h − μ)/s and b = (x − h − μ)/s
    (a − b = 2h/s > 0), stably:

        log P(x) = log sigmoid(a) + log sigmoid(−b) + log(1 − e^{−(a−b)})    (interior; exact identity),
        log P(0) = log sigmoid(a),        log P(1) = log sigmoid(−b).

    Decoder output: params[..., 0, :] = μ (in data units), params[..., 1, :] = log s, clamped below at
    ``min_log_scale``. Report −log p / (D ln 2) in bits/dim (:func:`bits_per_dim`).
    """

    n_params = 2
    unit = "bits/dim"
    min_log_scale = -10.0

    def __init__(self, config: LogisticConfig, n_features: int):
        super().__init__()
        if not isinstance(config.levels, int) or config.levels < 2:
            raise KakusanError(f"a discretised logistic needs at least 2 levels, got {config.levels!r}")
        self.config, self.n_features = config, n_features

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """params (..., 2, D), x (..., D) on the grid → (...,) nats."""
        mu, log_s = params[..., 0, :], params[..., 1, :].clamp(min=self.min_log_scale)
        inv_s = torch.exp(-log_s)
        h = 0.5 / (self.config.levels - 1)
        a, b = (x + h - mu) * inv_s, (x - h - mu) * inv_s
        left, right = F.logsigmoid(a), F.logsigmoid(-b)
        interior = left + right + torch.log(-torch.expm1(-2 * h * inv_s))
        lp = torch.where(x < h, left, torch.where(x > 1 - h, right, interior))
        return lp.sum(-1)

    def mean(self, params: Tensor) -> Tensor:
        """The location μ clipped to [0, 1] (the logistic's mean before discretisation)."""
        return params[..., 0, :].clamp(0, 1)

    def check(self, x: Tensor) -> None:
        k = x * (self.config.levels - 1)
        bad = ~((x >= 0) & (x <= 1) & ((k - k.round()).abs() < 1e-3))
        if bool(bad.any()):
            value = float(x[bad][0])
            raise DataError(f"a discretised logistic needs values k/{self.config.levels - 1} in [0, 1], found "
                            f"{value:g}: scale 8-bit images by 1/255 (set LogisticConfig(levels=...) to match the data)")


def build_likelihood(config: LikelihoodConfig, n_features: int) -> nn.Module:
    """The likelihood module for ``config`` over ``n_features`` data dimensions."""
    if isinstance(config, BernoulliConfig):
        return BernoulliLikelihood(config, n_features)
    if isinstance(config, GaussianConfig):
        return GaussianLikelihood(config, n_features)
    if isinstance(config, LogisticConfig):
        return DiscretisedLogistic(config, n_features)
    raise KakusanError(f"unknown likelihood config {type(config).__name__}: use BernoulliConfig, GaussianConfig or "
                       "LogisticConfig")


__all__ = ["BernoulliConfig", "BernoulliLikelihood", "DiscretisedLogistic", "GaussianConfig", "GaussianLikelihood",
           "LikelihoodConfig", "LogisticConfig", "bits_per_dim", "build_likelihood"]

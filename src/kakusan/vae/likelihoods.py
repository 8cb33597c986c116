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
- :class:`AutoregressiveBernoulli` — binary images whose pixels depend on z *and* on the pixels above and to the
  left inside a K×K window (a masked convolution, PixelCNN's mask A): log p(x|z) = Σ_i log p(x_i | x_<i, z) is
  still exact and evaluated in one parallel pass; drawing from it takes one pass per pixel.

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


@dataclass(frozen=True)
class AutoregressiveBernoulliConfig:
    """Binary images with a local autoregressive decoder: pixel i sees z and the pixels before it (raster order)
    inside a ``kernel`` × ``kernel`` window; ``channels`` hidden units per pixel (0: the neighbours enter the logit
    linearly). ``image`` is (H, W); empty takes the model's data shape."""

    kernel: int = 5
    channels: int = 16
    image: tuple[int, ...] = ()


LikelihoodConfig = BernoulliConfig | GaussianConfig | LogisticConfig | AutoregressiveBernoulliConfig


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

    def mean(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
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

    def mean(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
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

    def mean(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The location μ clipped to [0, 1] (the logistic's mean before discretisation)."""
        return params[..., 0, :].clamp(0, 1)

    def check(self, x: Tensor) -> None:
        k = x * (self.config.levels - 1)
        bad = ~((x >= 0) & (x <= 1) & ((k - k.round()).abs() < 1e-3))
        if bool(bad.any()):
            value = float(x[bad][0])
            raise DataError(f"a discretised logistic needs values k/{self.config.levels - 1} in [0, 1], found "
                            f"{value:g}: scale 8-bit images by 1/255 (set LogisticConfig(levels=...) to match the data)")


class AutoregressiveBernoulli(nn.Module):
    """A local autoregressive Bernoulli decoder for binary H × W images (PixelCNN's masked convolution, shallow).

    The decoder net gives one logit map ℓ(z) (P = 1); pixel i, in raster order, then has the logit

        a_i = ℓ_i + Σ_c v_c · elu(Σ_{j ∈ W(i)} w_cj x_j + u_c ℓ_i + b_c) + b      (``channels`` C > 0)
        a_i = ℓ_i + Σ_{j ∈ W(i)} w_j x_j + b                                       (C = 0),

    where W(i) holds the pixels of the K × K window centred on i that come *before* i: the rows above, and the
    pixels to the left in i's own row (mask A of van den Oord et al. 2016). So p(x|z) = Π_i p(x_i | x_<i, z) with
    p(x_i = 1 | x_<i, z) = sigmoid(a_i) is normalised for every z, and log p(x|z) = Σ_i x_i a_i − softplus(a_i)
    is exact; all a_i come from one masked convolution of the observed x. The pixels before i carry the local
    detail (stroke continuity) that a factorised decoder must put into z, so z is left the global shape. Small K
    keeps z in use: the window cannot see the whole image, so the shape must still come through z (Chen et al. 2017,
    the variational lossy autoencoder; Gulrajani et al. 2017, PixelVAE) — though it needs fewer nats of KL to carry.

    Drawing x ~ p(x|z) takes one step per pixel (:meth:`sample`); :meth:`mean` returns the conditional
    probabilities sigmoid(a_i) along such a draw — the image of p(x_i = 1 | x_<i, z), the nearest thing to E[x|z]
    that costs one draw (E[x|z] itself would need the marginal of every pixel).
    """

    n_params = 1
    unit = "nats"

    def __init__(self, config: AutoregressiveBernoulliConfig, n_features: int, data_shape: tuple[int, ...] = ()):
        super().__init__()
        image = tuple(config.image) or tuple(s for s in data_shape if s != 1)
        if len(image) != 2 or image[0] * image[1] != n_features:
            raise KakusanError(f"an autoregressive Bernoulli decoder needs single-channel images (H, W), got data "
                               f"shape {tuple(data_shape) or (n_features,)}: use BernoulliConfig for other data")
        if not isinstance(config.kernel, int) or config.kernel < 3 or config.kernel % 2 == 0:
            raise KakusanError(f"the autoregressive window must be an odd size ≥ 3, got kernel={config.kernel!r}")
        if not isinstance(config.channels, int) or config.channels < 0:
            raise KakusanError(f"channels must be a whole number ≥ 0 (0: linear), got {config.channels!r}")
        self.config, self.n_features, self.image = config, n_features, image
        K, C = config.kernel, config.channels
        self.width = (2 * C + 1) * n_features  # activations per (sample, example) beyond the decoder's: IWAE chunks
        self.window = nn.Conv2d(1, max(C, 1), K, padding=K // 2)
        mask = torch.ones(1, 1, K, K)
        mask[..., K // 2, K // 2:] = 0  # the centre pixel and those right of it
        mask[..., K // 2 + 1:, :] = 0  # the rows below
        self.register_buffer("mask", mask)
        if C:
            self.gain = nn.Parameter(torch.zeros(C))  # u: how ℓ enters each hidden unit
            self.out = nn.Parameter(torch.zeros(C))  # v: starts at 0, so training begins from the factorised model
            self.out_bias = nn.Parameter(torch.zeros(()))
        else:
            with torch.no_grad():
                self.window.weight.zero_()
                self.window.bias.zero_()

    def _weight(self) -> Tensor:
        return self.window.weight * self.mask

    def logits(self, params: Tensor, x: Tensor) -> Tensor:
        """a (..., D): the logit of every pixel given z (through ℓ = params[..., 0, :]) and the pixels before it
        in x (..., D); leading dimensions broadcast (ℓ (k, n, 1, D) against x (n, D))."""
        ell = params[..., 0, :]
        H, W = self.image
        lead = x.shape[:-1]
        feats = F.conv2d(x.reshape(-1, 1, H, W).to(ell.dtype), self._weight(), self.window.bias,
                         padding=self.window.padding)
        feats = feats.reshape(*lead, -1, H * W)  # (..., C', D)
        if not self.config.channels:
            return ell + feats[..., 0, :]
        h = F.elu(torch.addcmul(feats, self.gain[:, None], ell.unsqueeze(-2)))  # (..., C, D)
        return ell + torch.einsum("...cd,c->...d", h, self.out) + self.out_bias

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """params (..., 1, D) logits ℓ, x (..., D) broadcastable → (...,) nats."""
        a = self.logits(params, x)
        return (x * a - F.softplus(a)).sum(-1)

    @torch.no_grad()
    def sample(self, params: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """One draw x ~ p(x|z) pixel by pixel, for params (n, 1, D): returns (x, p) with p_i = p(x_i = 1 | x_<i, z)
        at the drawn pixels, both (n, D). Each step computes pixel i's logit from its window alone (the same
        numbers as :meth:`logits` at the drawn x: tested)."""
        ell = params[:, 0, :]
        n, (H, W), K = len(ell), self.image, self.config.kernel
        r = K // 2
        w = self._weight().reshape(-1, K * K)  # (C', K²)
        bias = self.window.bias
        u = torch.rand((n, H * W), generator=generator, dtype=ell.dtype, device=ell.device)
        padded = torch.zeros((n, H + 2 * r, W + 2 * r), dtype=ell.dtype, device=ell.device)
        probs = torch.empty_like(ell)
        for i in range(H * W):
            row, col = divmod(i, W)
            patch = padded[:, row:row + K, col:col + K].reshape(n, K * K)
            f = patch @ w.T + bias  # (n, C')
            if self.config.channels:
                a = ell[:, i] + F.elu(f + self.gain * ell[:, i:i + 1]) @ self.out + self.out_bias
            else:
                a = ell[:, i] + f[:, 0]
            probs[:, i] = torch.sigmoid(a)
            padded[:, row + r, col + r] = (u[:, i] < probs[:, i]).to(ell.dtype)
        return padded[:, r:r + H, r:r + W].reshape(n, H * W), probs

    def mean(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """p(x_i = 1 | x_<i, z) along one draw x ~ p(x|z) (see the class docstring), (..., D)."""
        lead = params.shape[:-2]
        _, probs = self.sample(params.reshape(-1, *params.shape[-2:]), generator)
        return probs.reshape(*lead, -1)

    check = BernoulliLikelihood.check


def build_likelihood(config: LikelihoodConfig, n_features: int, data_shape: tuple[int, ...] = ()) -> nn.Module:
    """The likelihood module for ``config`` over ``n_features`` data dimensions (``data_shape``: one example's
    shape, which the autoregressive decoder needs)."""
    if isinstance(config, BernoulliConfig):
        return BernoulliLikelihood(config, n_features)
    if isinstance(config, GaussianConfig):
        return GaussianLikelihood(config, n_features)
    if isinstance(config, LogisticConfig):
        return DiscretisedLogistic(config, n_features)
    if isinstance(config, AutoregressiveBernoulliConfig):
        return AutoregressiveBernoulli(config, n_features, data_shape)
    raise KakusanError(f"unknown likelihood config {type(config).__name__}: use BernoulliConfig, GaussianConfig, "
                       "LogisticConfig or AutoregressiveBernoulliConfig")


__all__ = ["AutoregressiveBernoulli", "AutoregressiveBernoulliConfig", "BernoulliConfig", "BernoulliLikelihood", "DiscretisedLogistic", "GaussianConfig", "GaussianLikelihood",
           "LikelihoodConfig", "LogisticConfig", "bits_per_dim", "build_likelihood"]

"""A learned decoder p_θ(x_0 | x_1) for the VLB, and the floor that the fixed one puts under it.

**Why.** The VLB's last step, L_0 = −log p_θ(x_0 | x_1), uses by default the discretised Gaussian N(x̂_0, β_1)
(Ho et al. 2020): its variance is the forward step's, the same for every pixel, whether the network is sure of
the pixel or not. On the cosine schedule √β_1 = 0.0064, 0.82 of a grid step of 8-bit data in [−1, 1] (2/255),
so even a perfect x̂_0 = x_0 (clipped to [−1, 1], as the VLB's evaluation does) gives a pixel at most the mass
Φ(δ/√β_1) = 0.73 at the ends of the grid and 2Φ(δ/√β_1) − 1 = 0.46 inside (δ = 1/255, half a step):
:func:`fixed_decoder_floor`. On MNIST, where 81 % of the pixels are 0, that is 0.58 bits/dim that no network can
remove from L_0. It is also far above what x_1 leaves unknown: the VLB decomposes (for any reverse process) as

    VLB ≥ I(x_0; x_1) + E[−log p_θ(x_0 | x_1)] = H(x_0) + E[−log p_θ(x_0 | x_1)] − H(x_0 | x_1),

(the KL terms t ≥ 2 and L_T are at least the information x_1 carries about x_0, I(x_0; x_1) − I(x_0; x_T) +
I(x_0; x_T)), and H(x_0 | x_1) ≤ Σ_i H(x_0,i | x_1,i), which the pixels' marginals bound at 0.31 bits/dim on MNIST
(docs/diffusion.md §8). So the fixed decoder keeps the bound at least 0.27 bits/dim above the data's entropy.

**The learned decoder.** A small convolutional head (an MLP for vector data) reads x_1/α_1 and the network's
x̂_0 and gives each dimension its own mean and variance: p_θ(x_0 | x_1) = N(x̂_0 + √β_1 m, β_1 e^s) (discretised
for 8-bit data), with (m, s) from the head. It can be sharp where the pixel is sure (the background of a digit)
and wide where it is not, and it can move the mean past the grid's end, where the end value's bin reaches to
∓∞. Its last layer starts at zero, so a fresh head *is* the fixed decoder, and any (m, s) is a proper
distribution over the grid (a function of x_1 alone): the VLB stays a bound. Only L_0 changes.

**The first steps too** (``steps`` K > 1). The Gaussian steps p_θ(x_{t−1} | x_t) of small t have the same trouble:
a pixel is still in doubt by about a grid step while the step removes SNR fastest, and the fixed variance β̃_t pays
½ r per dimension (r = (SNR(t−1) − SNR(t)) (x_0 − x̂_0)²) where a variance β̃_t e^s of its own pays
½ [s + (1 + r) e^−s − 1], at best ½ log(1 + E[r | x_t]) (docs/diffusion.md §2). The same head, told the noise
level log(σ_t/α_t) − log(σ_1/α_1) by one more input plane, gives the steps t = 2 … K a mean x̂_0 + σ_t m and a
variance offset s (per dimension) as well; fresh, it is again the fixed model, and only the terms t ≤ K change.
Sampling and the probability-flow likelihood do not use the head: the samplers keep the denoiser's mean and fixed
variances, which differ from the model the VLB bounds only in the last K steps, whose noise is of the order of a
grid step.

:class:`DecoderLoss` trains the head alone on its terms (the denoiser frozen, x̂_0 computed as the VLB's
evaluation computes it), through :func:`kakusan.train.fit` (``kakusan diffusion train --loss decoder
[--decoder-steps K] --init RUN``); :func:`with_decoder` gives a model the head.

API: ``DecoderConfig(width, depth, steps)``, ``DecoderHead``, ``with_decoder(model, config)``,
``DecoderLoss(cond_drop)``, ``decoder_term(model, x0, cond, generator)``, ``head_term(model, x0, t, cond,
generator)``, ``fixed_decoder_floor(x0, schedule, levels, low, high)``,
``pixel_posterior_entropy(x0, schedule, levels, low, high)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kakusan.errors import KakusanError, check_positive_int
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
OFFSET_RANGE = (-30.0, 5.0)  # s = log Σ − log β_1 is clamped here: σ from e^−15 to e^2.5 times √β_1


@dataclass(frozen=True)
class DecoderConfig:
    """The learned decoder's head: ``depth`` 3×3 convolutions of ``width`` channels (images) or hidden layers of
    ``width`` units (vectors), SiLU between them. ``steps`` K: the head serves the reverse steps t = 1 … K — the
    decoder (K = 1, the default) and, for K > 1, the Gaussian steps p_θ(x_{t−1} | x_t) for t = 2 … K, told the
    noise level by one more input plane."""

    width: int = 32
    depth: int = 3
    steps: int = 1

    def check(self) -> "DecoderConfig":
        check_positive_int(self.width, "decoder width")
        check_positive_int(self.depth, "decoder depth", low=2)
        check_positive_int(self.steps, "decoder steps")
        return self


class DecoderHead(nn.Module):
    """(m, s)(x_t/α_t, x̂_0[, level]): the mean's shift in units of σ_t (√β_1 at t = 1) and the log-variance offset
    per dimension, each (n, *net_shape), from two inputs of that shape and, when the head serves more than one
    step, the noise level (n,) as one more constant plane (or unit)."""

    def __init__(self, config: DecoderConfig, net_shape: tuple[int, ...]):
        super().__init__()
        config.check()
        self.config, self.net_shape = config, tuple(net_shape)
        image = len(self.net_shape) == 3
        c = self.net_shape[0] if image else math.prod(self.net_shape)
        self.levelled = config.steps > 1
        widths = [2 * c + self.levelled] + [config.width] * (config.depth - 1) + [2 * c]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Conv2d(a, b, 3, padding=1) if image else nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.SiLU())
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.body = nn.Sequential(*layers)

    def forward(self, xt_scaled: Tensor, x0_hat: Tensor, level: Tensor | None = None) -> tuple[Tensor, Tensor]:
        n = len(xt_scaled)  # net_shape is (C, H, W) for images, (D,) for vectors: channels (or units) are dim 1
        parts = [xt_scaled.reshape(n, *self.net_shape), x0_hat.reshape(n, *self.net_shape)]
        if self.levelled:
            if level is None:
                raise KakusanError("a head that serves several steps needs the noise level of each example")
            parts.append(level.to(parts[0]).reshape(n, 1, *([1] * (len(self.net_shape) - 1)))
                         .expand(n, 1, *self.net_shape[1:]))
        out = self.body(torch.cat(parts, dim=1)).reshape(n, 2, *self.net_shape)
        return out[:, 0], out[:, 1].clamp(*OFFSET_RANGE)


def with_decoder(model, config: DecoderConfig | None = None):
    """A copy of the Diffusion ``model`` (same weights) with a fresh learned decoder head (``config``, default
    ``DecoderConfig()``), which starts as the fixed decoder N(x̂_0, β_1)."""
    from kakusan.diffusion.model import Diffusion

    if not isinstance(model, Diffusion):
        raise KakusanError(f"a learned decoder belongs to a Diffusion model, got {type(model).__name__}")
    if model.config.decoder is not None:
        raise KakusanError("this model has a learned decoder already: train it further with --resume, or start from "
                           "the run it was fitted to")
    config = (config or DecoderConfig()).check()
    new = Diffusion(dataclasses.replace(model.config, decoder=config)).to(next(model.parameters()).device)
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("decoder_head.") for k in missing):
        raise KakusanError(f"cannot attach a decoder: state mismatch (missing {missing[:3]}, unexpected "
                           f"{unexpected[:3]})")
    return new


def decoder_term(model, x0: Tensor, cond: Tensor | None = None, generator: Seed = None, *,
                 eps: Tensor | None = None, clip_x0: bool | None = None) -> Tensor:
    """L_0 = −log p_θ(x_0 | x_1) per example, (n,) float64 nats, x0 in the network's space: draws x_1 = α_1 x_0 +
    σ_1 ε (ε given, or from ``generator``) and evaluates the model's decoder (learned if it has one, else fixed)
    with x̂_0 clipped as the VLB's evaluation clips it (default: for ``levels`` > 0) — the same number as
    :func:`~kakusan.diffusion.vlb.vlb_term` at t = 1. x̂_0 is computed without gradients, so only the decoder
    head's parameters get them."""
    return head_term(model, x0, 1, cond, generator, eps=eps, clip_x0=clip_x0)


def head_term(model, x0: Tensor, t, cond: Tensor | None = None, generator: Seed = None, *,
              eps: Tensor | None = None, clip_x0: bool | None = None) -> Tensor:
    """L_{t−1} per example at integer steps t (n,) (or one int), (n,) float64 nats, as
    :func:`~kakusan.diffusion.vlb.vlb_term` computes it, but with x̂_0 computed without gradients: only the head
    (which serves t ≤ ``steps``) gets them. ε given, or drawn from ``generator``."""
    from kakusan.diffusion.vlb import _col, _cond, _integer_t, _levels, _x0_hat, term_from_prediction

    n = len(x0)
    if eps is None:
        eps = torch.randn(x0.shape, generator=make_generator(generator, x0.device), device=x0.device, dtype=x0.dtype)
    t = _integer_t(model.schedule, t, n)
    alpha, sigma = (a.to(x0) for a in model.schedule.alpha_sigma(t.to(torch.float64)))
    x_t = _col(alpha, x0) * x0 + _col(sigma, x0) * eps
    clip = bool(_levels(model)) if clip_x0 is None else clip_x0
    with torch.no_grad():
        x0_hat, v = _x0_hat(model, x_t, t, _cond(model, cond, n), clip)
    return term_from_prediction(model, x0, x_t, t, x0_hat, v)


class DecoderLoss:
    """The objective of ``--loss decoder``: the terms the head serves, in bits per dimension, for
    :func:`kakusan.train.fit` — L_0 for a decoder of one step; for ``steps`` K > 1 the one-t unbiased estimate
    K · L_{t−1} of L_0 + … + L_{K−1}, t uniform in 1 … K per example.

    The denoiser is held fixed (its x̂_0 computed without gradients); only the head learns. Labels are
    dropped to the null class with probability ``cond_drop``, as in the denoiser's training, so the decoder
    serves the conditional and the unconditional model. Randomness from the loop's generator, in this order: the
    dropout uniforms (conditional models with labels), t (n,) (K > 1 only), ε (the batch's shape).
    """

    def __init__(self, cond_drop: float = 0.1):
        self.cond_drop = float(cond_drop)

    def __repr__(self) -> str:
        return f"DecoderLoss(cond_drop={self.cond_drop})"

    def __call__(self, model, batch: Any, generator: torch.Generator):
        from kakusan.diffusion.objectives import drop_labels
        from kakusan.diffusion.vlb import _cond
        from kakusan.train import StepOutput
        from kakusan.vae.objectives import split_batch

        if getattr(model, "decoder_head", None) is None:
            raise KakusanError("the decoder loss trains a learned decoder: give the model one with with_decoder(model)")
        data, cond = split_batch(batch)
        x0 = model.to_model(data)
        g = make_generator(generator, x0.device)
        cond = drop_labels(_cond(model, cond, len(x0)), getattr(model, "n_classes", 0), self.cond_drop, g)
        K = model.head_steps()
        t = torch.randint(1, K + 1, (len(x0),), generator=g, device=g.device).cpu() if K > 1 else 1
        eps = torch.randn(x0.shape, generator=g, device=x0.device, dtype=x0.dtype)
        bpd = K * head_term(model, x0, t, cond, eps=eps) / (x0[0].numel() * math.log(2))
        return StepOutput(loss=bpd.mean().to(x0.dtype), metrics={"decoder_bpd": bpd.detach()})

    def state_dict(self) -> dict[str, Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        return None


def fixed_decoder_floor(x0: Tensor, schedule, levels: int = 256, low: float = -1.0, high: float = 1.0) -> Tensor:
    """The least L_0 that the fixed decoder N(x̂_0, β_1) with x̂_0 clipped to [low, high] can reach on ``x0`` (n, …)
    (network space, on the grid of ``levels`` values), per example in nats: each end value of the grid has mass at
    most Φ(δ/√β_1), each inner value 2Φ(δ/√β_1) − 1 (δ half a grid step), reached by x̂_0 = x_0."""
    check_positive_int(levels, "levels", low=2)
    delta = (high - low) / (2 * (levels - 1))
    phi = float(torch.special.ndtr(torch.tensor(delta / math.sqrt(float(schedule.betas[0])), dtype=torch.float64)))
    end, inner = -math.log(phi), -math.log(2 * phi - 1)
    k = torch.round((x0.double().reshape(len(x0), -1) - low) / (2 * delta))
    at_end = (k <= 0) | (k >= levels - 1)
    cost = torch.tensor([inner, end], dtype=torch.float64, device=k.device)
    return cost[at_end.long()].sum(1)


def pixel_posterior_entropy(x0: Tensor, schedule, levels: int = 256, low: float = -1.0, high: float = 1.0,
                            points: int = 1000) -> float:
    """Σ_i H(x_0,i | x_1,i) in nats per example: the entropy each dimension keeps after x_1, with x_0,i drawn from
    its own empirical marginal over the rows of ``x0`` (n, …) (network space, on the grid) and x_1,i = α_1 x_0,i +
    σ_1 ε. An upper bound on H(x_0 | x_1) (conditioning on less, and on each dimension alone, loses no entropy),
    and so with :func:`fixed_decoder_floor` a lower bound on what the fixed decoder costs above the data's entropy
    (module docstring). Integrated over x_1 on ``points`` nodes per dimension (trapezoid rule)."""
    check_positive_int(levels, "levels", low=2)
    delta = (high - low) / (2 * (levels - 1))
    alpha, sigma = (float(v) for v in schedule.alpha_sigma(torch.ones(1, dtype=torch.float64)))
    grid = torch.linspace(low, high, levels, dtype=torch.float64)
    k = torch.round((x0.double().reshape(len(x0), -1) - low) / (2 * delta)).long().clamp(0, levels - 1)
    counts = torch.zeros(k.shape[1], levels, dtype=torch.float64).scatter_add_(1, k.T, torch.ones_like(k.T,
                                                                                          dtype=torch.float64))
    y = torch.linspace(alpha * low - 8 * sigma, alpha * high + 8 * sigma, points, dtype=torch.float64)
    log_lik = -0.5 * ((y[:, None] - alpha * grid[None, :]) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))
    total = 0.0
    for prior in counts / len(x0):  # one dimension at a time: (points, levels) at most
        support = prior > 0
        joint = log_lik[:, support] + prior[support].log()  # log p(x_0 = v, x_1 = y)
        log_py = torch.logsumexp(joint, 1, keepdim=True)
        post = (joint - log_py).exp()
        h = -(post * (joint - log_py)).sum(1)  # H(x_0 | x_1 = y)
        total += float(torch.trapezoid(log_py.exp()[:, 0] * h, y))
    return total


__all__ = ["DecoderConfig", "DecoderHead", "DecoderLoss", "with_decoder", "decoder_term", "head_term",
           "fixed_decoder_floor", "pixel_posterior_entropy", "OFFSET_RANGE"]

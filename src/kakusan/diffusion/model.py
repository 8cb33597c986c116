"""The diffusion model: a denoiser network, its schedule and its target, in data space.

``Diffusion(DiffusionConfig(...))`` holds the denoiser (:mod:`~kakusan.diffusion.nets` MLP, or the
:mod:`~kakusan.diffusion.unet` UNet) and the schedule. The network works on x = (data − shift) / scale
(images: data in [0, 1], shift = scale = ½, so x ∈ [−1, 1]); ``sample`` returns data space again and
likelihoods add the log-Jacobian D·log(1/scale). ``levels`` = 256 marks 8-bit data: the VLB's decoder is
then the discretised Gaussian and the probability-flow likelihood dequantises.

Predictions: ``model(x_t, t, cond)`` is the raw network output; :meth:`Diffusion.predict` splits off the
learned variance; :meth:`eps` / :meth:`x0` convert the prediction of ``target`` (eps, x0 or v) with the
schedule's α(t), σ(t). :meth:`denoiser` gives the sampler contract ``(x, t, cond) -> ε̂`` with optional
classifier-free guidance, which every sampler in :mod:`~kakusan.diffusion.samplers` takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from kakusan.diffusion.nets import MLPDenoiser, MLPDenoiserConfig
from kakusan.diffusion.process import Schedule, ScheduleConfig, Target, check_target, to_eps, to_x0
from kakusan.errors import DataError, KakusanError, check_positive_int
from kakusan.registry import register_model
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
Denoiser = Callable[..., Tensor]


@dataclass(frozen=True)
class DiffusionConfig:
    """A diffusion model's hyper-parameters.

    data_shape : one example's shape: (D,) vectors, (H, W) gray images or (C, H, W) images.
    schedule : :class:`~kakusan.diffusion.process.ScheduleConfig` (kind, T).
    target : what the network predicts: ``"eps"``, ``"x0"`` or ``"v"``.
    denoiser : ``MLPDenoiserConfig`` (vectors) or ``UNetConfig`` (images).
    n_classes : > 0 makes a class-conditional model (label ``n_classes`` is the null class).
    learn_variance : the network also outputs the reverse variances (interpolated between β̃_t and β_t).
    shift, scale : data = shift + scale · x (the network sees x).
    levels : 256 for 8-bit data on the grid k/255 (discretised decoder, dequantisation); 0 for continuous data.
    decoder : a :class:`~kakusan.diffusion.decoder.DecoderConfig` gives the VLB's L_0 (and, with ``steps`` K > 1,
        the reverse steps t = 2 … K) a learned per-dimension mean shift and variance
        (:mod:`~kakusan.diffusion.decoder`); None (default): the fixed N(x̂_0, β_1) and fixed variances.
    """

    data_shape: tuple[int, ...] = (2,)
    schedule: ScheduleConfig = ScheduleConfig()
    target: Target = "eps"
    denoiser: Any = MLPDenoiserConfig()
    n_classes: int = 0
    learn_variance: bool = False
    shift: float = 0.0
    scale: float = 1.0
    levels: int = 0
    decoder: Any = None


def net_shape(data_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape the network sees: gray images (H, W) get a channel, (1, H, W); others as they are."""
    return (1, *data_shape) if len(data_shape) == 2 else tuple(data_shape)


def build_denoiser(config: DiffusionConfig) -> nn.Module:
    out_mult = 2 if config.learn_variance else 1
    args = (net_shape(tuple(config.data_shape)), config.schedule.T, config.n_classes, out_mult)
    if isinstance(config.denoiser, MLPDenoiserConfig):
        return MLPDenoiser(config.denoiser, *args)
    from kakusan.diffusion.unet import UNet, UNetConfig

    if isinstance(config.denoiser, UNetConfig):
        return UNet(config.denoiser, *args)
    raise KakusanError(f"unknown denoiser config {type(config.denoiser).__name__}: use MLPDenoiserConfig or "
                       "UNetConfig")


@register_model
class Diffusion(nn.Module):
    """A denoising diffusion model (module docstring); ``Diffusion(DiffusionConfig(...))``."""

    def __init__(self, config: DiffusionConfig = DiffusionConfig()):
        super().__init__()
        shape = tuple(config.data_shape)
        if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise KakusanError(f"data_shape must be a tuple of positive sizes, got {config.data_shape!r}")
        check_target(config.target)
        check_positive_int(config.n_classes, "n_classes", low=0)
        if not config.scale > 0:
            raise KakusanError(f"scale must be positive, got {config.scale}")
        self.config, self.data_shape, self.n_features = config, shape, math.prod(shape)
        self.schedule = Schedule(config.schedule)
        self.target, self.n_classes = config.target, config.n_classes
        self.image_shape: tuple[int, ...] | None = shape if len(shape) >= 2 else None
        self.net = build_denoiser(config)
        self._net_shape = net_shape(shape)
        self.decoder_head = None
        if config.decoder is not None:
            from kakusan.diffusion.decoder import DecoderConfig, DecoderHead

            if not isinstance(config.decoder, DecoderConfig):
                raise KakusanError(f"decoder must be a DecoderConfig or None, got {type(config.decoder).__name__}")
            if config.decoder.steps > self.schedule.T:
                raise KakusanError(f"the decoder head's steps ({config.decoder.steps}) exceed the schedule's T = "
                                   f"{self.schedule.T}: use steps ≤ T")
            self.decoder_head = DecoderHead(config.decoder, self._net_shape)

    @classmethod
    def from_config(cls, config: DiffusionConfig) -> "Diffusion":
        return cls(config)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def gflop_per_example(self) -> float:
        """GFLOP of one denoiser evaluation on one example (multiply-adds × 2)."""
        return self.net.gflop_per_example()

    # -- data space --------------------------------------------------------------------------------------

    def check_x(self, x: Tensor) -> Tensor:
        """x (n, *data_shape) as a tensor on the model's device and dtype; a one-line error otherwise."""
        if not isinstance(x, Tensor):
            raise DataError(f"x must be a tensor of shape (n, {', '.join(map(str, self.data_shape))}), got "
                            f"{type(x).__name__}")
        if x.ndim < 1 or tuple(x.shape[1:]) != self.data_shape:
            if x.ndim >= 1 and x.shape[1:].numel() == self.n_features:
                x = x.reshape(len(x), *self.data_shape)
            else:
                raise DataError(f"x must have shape (n, {', '.join(map(str, self.data_shape))}), got "
                                f"{tuple(x.shape)}")
        return x.to(self._device(), self._dtype())

    def to_model(self, data: Tensor) -> Tensor:
        """Data → the network's space x = (data − shift) / scale."""
        return (self.check_x(data) - self.config.shift) / self.config.scale

    def to_data(self, x: Tensor) -> Tensor:
        return self.config.shift + self.config.scale * x

    def log_jacobian(self) -> float:
        """log |d x / d data| per example = −D log scale (added to log-likelihoods computed on x)."""
        return -self.n_features * math.log(self.config.scale)

    def check_cond(self, cond: Tensor | None, n: int, allow_null: bool = True) -> Tensor | None:
        """(n,) integer labels on the model's device; the null label n_classes is allowed when ``allow_null``. A
        text-conditional model takes a :class:`~kakusan.diffusion.conditioning.TextCondition` of n rows instead."""
        from kakusan.diffusion.conditioning import TextCondition

        text = bool(getattr(self.config.denoiser, "context_dim", 0))
        if isinstance(cond, TextCondition) or text:
            if not text:
                raise KakusanError("this diffusion model is not text-conditional: give labels, not a TextCondition")
            if not isinstance(cond, TextCondition):
                raise DataError("this diffusion model is text-conditional: give cond as a TextCondition (the empty "
                                "prompt's for the unconditional model)")
            return cond.to(self._device(), self._dtype()).expand(n)
        if self.n_classes == 0:
            if cond is not None:
                raise KakusanError("this diffusion model is not conditional (n_classes=0): leave the labels out")
            return None
        if cond is None:
            return None  # the null class: the unconditional model
        cond = torch.as_tensor(cond, device=self._device())
        if cond.ndim == 0:
            cond = cond.expand(n)
        if cond.shape != (n,) or cond.is_floating_point() or cond.dtype == torch.bool:
            raise DataError(f"labels must be integers of shape ({n},), got {cond.dtype} {tuple(cond.shape)}")
        top = self.n_classes if allow_null else self.n_classes - 1
        if n and not (0 <= int(cond.min()) and int(cond.max()) <= top):
            raise DataError(f"labels must lie in 0..{self.n_classes - 1}, found {int(cond.min())}..{int(cond.max())}")
        return cond.long()

    # -- predictions -------------------------------------------------------------------------------------

    def _times(self, t, n: int) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64)
        return (t.expand(n) if t.ndim == 0 else t.reshape(n)).cpu()

    def alpha_sigma(self, t, like: Tensor) -> tuple[Tensor, Tensor]:
        """α(t), σ(t) as (n,) tensors in ``like``'s dtype and device."""
        a, s = self.schedule.alpha_sigma(self._times(t, len(like)))
        return a.to(like.device, like.dtype), s.to(like.device, like.dtype)

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """The raw network output at x_t (n, *shape), times t (n,) float: (n, out_mult, *shape) — the prediction,
        then (with learned variances) the variance logits."""
        t = torch.as_tensor(t, dtype=torch.float32, device=x_t.device)
        n = len(x_t)
        out = self.net(x_t.reshape(n, *self._net_shape), t.expand(n) if t.ndim == 0 else t, cond)
        return out.reshape(n, -1, *self.data_shape)

    def predict(self, x_t: Tensor, t, cond: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(prediction of the target, variance interpolation v ∈ (0, 1) per pixel or None)."""
        out = self(x_t, self._times(t, len(x_t)), cond)
        if not self.config.learn_variance:
            return out[:, 0], None
        return out[:, 0], torch.sigmoid(out[:, 1])

    def head_steps(self) -> int:
        """K, the reverse steps t = 1 … K the learned head serves (0 without one)."""
        return 0 if self.decoder_head is None else int(self.config.decoder.steps)

    def head_params(self, x_t: Tensor, t, x0_hat: Tensor) -> tuple[Tensor, Tensor]:
        """(mean of x_0, s) from the learned head at integer steps t (n,) in 1 … K, each (n, D) float64:
        the mean x̂_0 + σ_t m (√β_1 m at t = 1) and s, the offset of log Σ_t from the fixed variance, with (m, s)
        from the head on (x_t/α_t, x̂_0) and, for K > 1, the noise level log(σ_t/α_t) − log(σ_1/α_1)
        (:mod:`~kakusan.diffusion.decoder`). Needs ``config.decoder``."""
        if self.decoder_head is None:
            raise KakusanError("this model's decoder is the fixed N(x̂_0, β_1): give it a learned one with "
                               "kakusan.diffusion.decoder.with_decoder")
        n, dtype = len(x_t), self._dtype()
        t = torch.as_tensor(t).reshape(-1).cpu().long().expand(n)
        if n and (int(t.min()) < 1 or int(t.max()) > self.head_steps()):
            raise KakusanError(f"the learned head serves t = 1 … {self.head_steps()}, got t up to {int(t.max())}")
        alpha, sigma = self.schedule.alpha_sigma(t.to(torch.float64))
        shift = torch.where(t == 1, math.sqrt(float(self.schedule.betas[0])), sigma).to(x_t.device)
        level = None
        if self.head_steps() > 1:
            a1, s1 = (float(v) for v in self.schedule.alpha_sigma(torch.ones(1, dtype=torch.float64)))
            level = ((sigma / alpha).log() - math.log(s1 / a1)).to(x_t.device, dtype)
        scaled = x_t.to(dtype) / alpha.to(x_t.device, dtype).reshape(n, *([1] * (x_t.ndim - 1)))
        m, s = self.decoder_head(scaled, x0_hat.to(dtype), level)
        mean = x0_hat.double().reshape(n, -1) + shift[:, None] * m.double().reshape(n, -1)
        return mean, s.double().reshape(n, -1)

    def decoder_params(self, x1: Tensor, x0_hat: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, log Σ) of the learned decoder p_θ(x_0 | x_1) = N(mean, Σ) per dimension, each (n, D) float64:
        mean = x̂_0 + √β_1 m, log Σ = log β_1 + s, with (m, s) from the head on (x_1/α_1, x̂_0)
        (:meth:`head_params` at t = 1). Needs ``config.decoder``."""
        mean, s = self.head_params(x1, torch.ones(len(x1), dtype=torch.long), x0_hat)
        return mean, math.log(float(self.schedule.betas[0])) + s

    def eps(self, x_t: Tensor, t, cond: Tensor | None = None) -> Tensor:
        """ε̂(x_t, t)."""
        a, s = self.alpha_sigma(t, x_t)
        return to_eps(self.predict(x_t, t, cond)[0], self.target, x_t, a, s)

    def x0(self, x_t: Tensor, t, cond: Tensor | None = None) -> Tensor:
        """x̂_0(x_t, t)."""
        a, s = self.alpha_sigma(t, x_t)
        return to_x0(self.predict(x_t, t, cond)[0], self.target, x_t, a, s)

    def denoiser(self, guidance: float = 1.0, clip_x0: bool | None = None, null=None) -> Denoiser:
        """The sampler contract ``(x, t, cond) -> ε̂``; with labels and ``guidance`` w ≠ 1, classifier-free
        guidance ε̃ = ε̂(x, ∅) + w (ε̂(x, y) − ε̂(x, ∅)) (w = 0: unconditional, 1: conditional).

        A text-conditional model (a UNet with ``context_dim``) takes ``null``, the
        :class:`~kakusan.diffusion.conditioning.TextCondition` of the empty (or a negative) prompt, to guide with.

        ``clip_x0`` (default: on for images, whose x lies in [−1, 1]) clips x̂_0 = (x − σ ε̃)/α to [−1, 1] and
        returns the ε̂ that goes with it (Ho et al.'s "clip_denoised"). Near t = T, α is tiny (5·10⁻⁵ for the
        cosine schedule), so x̂_0 amplifies any error of ε̂ by 1/α; every sampler's first steps multiply x̂_0 by
        α_{t'}, and without the clip an ε-model's small errors there become visible blow-ups.
        """
        eps = self.eps
        if guidance != 1.0 and (self.n_classes or null is not None):
            from kakusan.diffusion.guidance import classifier_free

            eps = classifier_free(self.eps, guidance, self.n_classes if null is None else null)
        if clip_x0 is None:
            clip_x0 = bool(self.config.levels)
        if not clip_x0:
            return eps

        def clipped(x: Tensor, t, cond: Tensor | None = None) -> Tensor:
            a, s = self.alpha_sigma(t, x)
            shape = (-1,) + (1,) * (x.ndim - 1)
            a, s = a.reshape(shape), s.reshape(shape)
            e = eps(x, t, cond)
            x0 = ((x - s * e) / a).clamp(-1, 1)
            return (x - a * x0) / s

        return clipped

    # -- drawing -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: Seed = None, sampler: str = "dpm++2m", steps: int = 20,
               labels: Tensor | int | None = None, guidance: float = 1.0, callback=None,
               x_T: Tensor | None = None, unconditional: bool = False) -> Tensor:
        """n samples in data space (images (n, C, H, W) in [0, 1] for 8-bit data): ``sampler`` (ddpm, ddim,
        dpm++2m, heun) over ``steps`` steps. A conditional model takes ``labels`` ((n,) or one int), or draws
        them uniformly; ``guidance`` w is classifier-free guidance (1: none). ``unconditional=True`` samples a
        class-conditional model's null class: the unconditional model that its label dropout trained (one
        network call per step; ``guidance=0`` samples the same distribution at two)."""
        from kakusan.diffusion.samplers import get_sampler

        check_positive_int(n, "n")
        run = get_sampler(sampler)
        if unconditional:
            if not self.n_classes:
                raise KakusanError("unconditional=True applies to a class-conditional model; this one is "
                                   "unconditional already: leave it out")
            if labels is not None or guidance != 1.0:
                raise KakusanError("unconditional=True samples the null class: leave out labels and guidance")
        g = make_generator(generator, self._device())
        if self.n_classes and labels is None and not unconditional:
            labels = torch.randint(0, self.n_classes, (n,), generator=g, device=self._device())
        cond = self.check_cond(labels, n, allow_null=False) if labels is not None else None
        if x_T is None:
            x_T = torch.randn((n, *self.data_shape), generator=g, device=self._device(), dtype=self._dtype())
        x = run(self.denoiser(guidance), x_T, self.schedule, steps, g, cond=cond, callback=callback)
        data = self.to_data(x)
        if self.config.levels:
            data = data.clamp(0, 1)
        return data


__all__ = ["Diffusion", "DiffusionConfig", "build_denoiser"]

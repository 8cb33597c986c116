"""The forward (noising) process as data: variance-preserving schedules, the log-SNR view, ε ↔ x0 ↔ v ↔ score.

Discrete time (Ho et al. 2020). Steps i = 1 … T add noise, q(x_i | x_{i−1}) = N(√(1−β_i) x_{i−1}, β_i I), so

    q(x_i | x_0) = N(α_i x_0, σ_i² I),   α_i² = ᾱ_i = Π_{j≤i} (1 − β_j),   σ_i² = 1 − ᾱ_i,

computed in float64. Two schedules: ``linear`` (β_i from 1e-4 to 0.02 over T = 1000; Ho et al.) and
``cosine`` (ᾱ(s) = f(s)/f(0), f(s) = cos²((s/T + c)/(1 + c) · π/2), c = 0.008, β clipped at 0.999; Nichol &
Dhariwal 2021).

Continuous time. Time is the step index t ∈ [0, T], a float: ``log ᾱ(t)`` is interpolated linearly between
the integers (exact at every step, log ᾱ(0) = 0 so σ(0) = 0), which makes α(t), σ(t) and the log-SNR
λ(t) = log(α²/σ²) continuous and monotone, and lets a network trained at integer steps be asked at any t
(ODE samplers, the probability-flow likelihood). VP means α² + σ² = 1 everywhere.

Parametrisations of one prediction, for x_t = α x_0 + σ ε (all in one place here):

    x_0 = (x_t − σ ε) / α,   ε = (x_t − α x_0) / σ,   v = α ε − σ x_0 (Salimans & Ho 2022),
    x_0 = α x_t − σ v,   ε = σ x_t + α v,   score ∇ log q(x_t) = −ε / σ.

Squared errors convert by weights of the SNR = α²/σ²: ‖ε − ε̂‖² = SNR ‖x_0 − x̂_0‖² = α² ‖v − v̂‖².

API: ``Schedule(kind="linear"|"cosine", T=1000)`` with ``alpha_bar`` (T+1,), ``betas`` (T,),
``alpha_sigma(t)``, ``log_snr(t)``, ``snr(t)``, ``t_from_log_snr(lam)``, ``timesteps(steps)``;
``ScheduleConfig``; ``to_x0``, ``to_eps``, ``to_v``, ``eps_to_score``, ``convert(pred, target, to, x_t,
alpha, sigma)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from kakusan.errors import KakusanError, check_positive_int

Tensor = torch.Tensor
Kind = Literal["linear", "cosine"]
Target = Literal["eps", "x0", "v"]
KINDS = ("linear", "cosine")
TARGETS = ("eps", "x0", "v")
COSINE_OFFSET = 0.008
MAX_BETA = 0.999


@dataclass(frozen=True)
class ScheduleConfig:
    """A schedule's definition: ``kind``, the number of steps ``T``, and the linear schedule's β range."""

    kind: Kind = "linear"
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """β_i = β_start + (β_end − β_start)(i − 1)/(T − 1), i = 1 … T, float64 (Ho et al. scale them for T ≠ 1000
    by 1000/T so that ᾱ_T stays near 0; so do we)."""
    scale = 1000.0 / T
    return torch.linspace(scale * beta_start, min(scale * beta_end, MAX_BETA), T, dtype=torch.float64)


def cosine_alpha_bar(T: int, offset: float = COSINE_OFFSET) -> Tensor:
    """ᾱ_i = f(i)/f(0), f(i) = cos²((i/T + c)/(1 + c) · π/2), i = 0 … T, with β_i = 1 − ᾱ_i/ᾱ_{i−1} ≤ 0.999."""
    i = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((i / T + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=MAX_BETA)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


class Schedule:
    """A variance-preserving noise schedule over T steps (module docstring); every table is float64 on the CPU.

    ``alpha_bar[i]`` = ᾱ_i for i = 0 … T (ᾱ_0 = 1); ``betas[i − 1]`` = β_i; ``log_alpha_bar`` likewise.
    Methods take t as a float tensor (any shape) of step indices in [0, T] and return float64 tensors of the
    same shape; move them to the data's device and dtype with ``.to(x)``.
    """

    def __init__(self, kind: Kind | ScheduleConfig = "linear", T: int = 1000, *, beta_start: float = 1e-4,
                 beta_end: float = 0.02):
        config = kind if isinstance(kind, ScheduleConfig) else ScheduleConfig(kind, T, beta_start, beta_end)
        check_positive_int(config.T, "T")
        if config.kind not in KINDS:
            raise KakusanError(f"unknown schedule {config.kind!r}: choose {' or '.join(KINDS)}")
        self.config, self.kind, self.T = config, config.kind, config.T
        if config.kind == "linear":
            if not 0 < config.beta_start <= config.beta_end < 1:
                raise KakusanError(f"the linear schedule needs 0 < beta_start ≤ beta_end < 1, got "
                                   f"{config.beta_start}, {config.beta_end}")
            betas = linear_betas(config.T, config.beta_start, config.beta_end)
            self.alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])
        else:
            self.alpha_bar = cosine_alpha_bar(config.T)
        self.betas = 1 - self.alpha_bar[1:] / self.alpha_bar[:-1]
        self.log_alpha_bar = torch.log(self.alpha_bar)

    def __repr__(self) -> str:
        return f"Schedule({self.kind!r}, T={self.T})"

    # -- continuous time -----------------------------------------------------------------------------

    def _t(self, t) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64, device="cpu")
        if t.numel() and (float(t.min()) < 0 or float(t.max()) > self.T):
            raise KakusanError(f"diffusion times must lie in [0, {self.T}], got [{float(t.min()):g}, "
                               f"{float(t.max()):g}]")
        return t

    def log_alpha_bar_at(self, t) -> Tensor:
        """log ᾱ(t), linear between integer steps (exact at them); t float in [0, T]."""
        t = self._t(t)
        lo = t.floor().clamp(max=self.T - 1).long()
        w = t - lo
        return (1 - w) * self.log_alpha_bar[lo] + w * self.log_alpha_bar[lo + 1]

    def alpha_sigma(self, t) -> tuple[Tensor, Tensor]:
        """(α(t), σ(t)) with α² = ᾱ(t), σ² = 1 − ᾱ(t)."""
        la = self.log_alpha_bar_at(t)
        return torch.exp(la / 2), torch.sqrt(-torch.expm1(la))

    def log_snr(self, t) -> Tensor:
        """λ(t) = log(α²/σ²) = log ᾱ − log(1 − ᾱ); +∞ at t = 0."""
        la = self.log_alpha_bar_at(t)
        return la - torch.log(-torch.expm1(la))

    def snr(self, t) -> Tensor:
        return torch.exp(self.log_snr(t))

    def t_from_log_snr(self, lam) -> Tensor:
        """The time t whose log-SNR is λ (λ must lie in [λ(T), ∞]); inverse of :meth:`log_snr`."""
        lam = torch.as_tensor(lam, dtype=torch.float64)
        la = -torch.nn.functional.softplus(-lam)  # log ᾱ = log sigmoid(λ)
        table = self.log_alpha_bar  # decreasing in i
        if lam.numel() and float(la.min()) < float(table[-1]) - 1e-12:
            raise KakusanError(f"log-SNR {float(lam.min()):g} is below the schedule's end λ(T) = "
                               f"{float(self.log_snr(self.T)):g}")
        # index of the interval [i, i+1] holding la: table[i] ≥ la ≥ table[i+1]
        i = torch.searchsorted(-table, -la.reshape(-1).clamp(max=0), right=True).clamp(1, self.T) - 1
        lo, hi = table[i], table[i + 1]
        w = ((lo - la.reshape(-1)) / (lo - hi)).clamp(0, 1)
        return (i.to(torch.float64) + w).reshape(lam.shape)

    def timesteps(self, steps: int, t_start: float | None = None) -> Tensor:
        """The sampling grid: ``steps + 1`` integer times from T (or ``t_start``, for a start part-way: SDEdit,
        inpainting) down to 0, evenly spaced (respacing; float64)."""
        check_positive_int(steps, "steps")
        top = self.T if t_start is None else float(t_start)
        if not 0 < top <= self.T:
            raise KakusanError(f"the start time must lie in (0, T = {self.T}], got {t_start}")
        if steps > top:
            what = f"the schedule's T = {self.T}" if t_start is None else f"the {top:g} time steps from t_start"
            raise KakusanError(f"{steps} sampling steps exceed {what}: use at most {int(top)}")
        return torch.linspace(top, 0, steps + 1, dtype=torch.float64).round()

    def state(self) -> dict:
        return {"kind": self.kind, "T": self.T}


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise KakusanError(f"unknown target {target!r}: choose {', '.join(TARGETS)}")
    return target


def _b(a: Tensor, x: Tensor) -> Tensor:
    """α or σ of shape (n,) (or a scalar) broadcast against x (n, …), in x's dtype and device."""
    a = torch.as_tensor(a).to(device=x.device, dtype=x.dtype)
    return a.reshape(a.shape + (1,) * (x.ndim - a.ndim)) if a.ndim else a


def to_x0(pred: Tensor, target: Target, x_t: Tensor, alpha, sigma) -> Tensor:
    """x̂_0 from a prediction of ``target`` at x_t (α, σ of shape (n,) or scalars)."""
    a, s = _b(alpha, x_t), _b(sigma, x_t)
    if target == "x0":
        return pred
    if target == "eps":
        return (x_t - s * pred) / a
    if target == "v":
        return a * x_t - s * pred
    raise KakusanError(f"unknown target {target!r}: choose {', '.join(TARGETS)}")


def to_eps(pred: Tensor, target: Target, x_t: Tensor, alpha, sigma) -> Tensor:
    """ε̂ from a prediction of ``target`` at x_t."""
    a, s = _b(alpha, x_t), _b(sigma, x_t)
    if target == "eps":
        return pred
    if target == "x0":
        return (x_t - a * pred) / s
    if target == "v":
        return s * x_t + a * pred
    raise KakusanError(f"unknown target {target!r}: choose {', '.join(TARGETS)}")


def to_v(pred: Tensor, target: Target, x_t: Tensor, alpha, sigma) -> Tensor:
    """v̂ = α ε̂ − σ x̂_0 from a prediction of ``target`` at x_t."""
    if target == "v":
        return pred
    a, s = _b(alpha, x_t), _b(sigma, x_t)
    return a * to_eps(pred, target, x_t, alpha, sigma) - s * to_x0(pred, target, x_t, alpha, sigma)


def eps_to_score(eps: Tensor, sigma) -> Tensor:
    """∇_x log q(x_t) = −ε / σ."""
    return -eps / _b(sigma, eps)


def convert(pred: Tensor, target: Target, to: Target | Literal["score"], x_t: Tensor, alpha, sigma) -> Tensor:
    """A prediction of ``target`` as ``to`` (eps, x0, v or score)."""
    if to == "score":
        return eps_to_score(to_eps(pred, target, x_t, alpha, sigma), sigma)
    return {"x0": to_x0, "eps": to_eps, "v": to_v}[check_target(to)](pred, target, x_t, alpha, sigma)


def q_sample(x0: Tensor, alpha, sigma, eps: Tensor) -> Tensor:
    """x_t = α x_0 + σ ε."""
    return _b(alpha, x0) * x0 + _b(sigma, x0) * eps


__all__ = ["Schedule", "ScheduleConfig", "linear_betas", "cosine_alpha_bar", "to_x0", "to_eps", "to_v",
           "eps_to_score", "convert", "q_sample", "check_target", "KINDS", "TARGETS"]

"""The variational bound (VLB) of a discrete-time diffusion model: a hierarchical VAE with a fixed encoder.

The encoder is the forward process q(x_{1:T} | x_0); the decoder is p(x_T) = N(0, I) and the learned
p_θ(x_{t−1} | x_t). Jensen's inequality gives (Sohl-Dickstein et al. 2015; Ho et al. 2020, eq. 5)

    −log p_θ(x_0) ≤ L_T + Σ_{t=2}^T L_{t−1} + L_0,
    L_T     = KL(q(x_T | x_0) ‖ N(0, I))                      (no parameters; closed form)
    L_{t−1} = E_q KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))   (Gaussian KL, summed over dims)
    L_0     = E_q −log p_θ(x_0 | x_1).

**The posterior.** q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I) with

    μ̃_t = c_0 x_0 + c_t x_t,   c_0 = √ᾱ_{t−1} β_t / (1 − ᾱ_t),   c_t = √(1 − β_t)(1 − ᾱ_{t−1}) / (1 − ᾱ_t),
    β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t).

**The reverse step.** p_θ(x_{t−1} | x_t) = N(μ̃(x_t, x̂_0), Σ_t) with x̂_0 the model's prediction (whatever
its target, converted by :func:`~kakusan.diffusion.process.to_x0`). Σ_t is fixed — ``"posterior"`` β̃_t (the
default) or ``"beta"`` β_t — or learned (Nichol & Dhariwal 2021, eq. 15): log Σ = v log β_t + (1 − v) log β̃_t
per dimension, v ∈ (0, 1) from ``model.predict``. β̃_1 = 0, so wherever log β̃_1 is needed β̃_2 stands in
(Nichol's clipped log-variance) and the fixed ``"posterior"`` choice uses β_1 at t = 1. Both Gaussians share
the mean's x_t part, so μ̃(x_t, x_0) − μ̃(x_t, x̂_0) = c_0 (x_0 − x̂_0) and, per dimension,

    KL = ½ [log Σ − log β̃_t + (β̃_t + c_0² (x_0 − x̂_0)²) / Σ − 1];

with Σ = β̃_t this is ½ (SNR(t−1) − SNR(t)) ‖x_0 − x̂_0‖²  (c_0²/β̃_t = SNR(t−1) − SNR(t)).

**The decoder L_0.** Its mean is μ̃(x_1, x̂_0) = x̂_0 (c_0 = 1, c_t = 0 at t = 1), its variance Σ_1 (β_1 unless
learned; a model with a learned decoder, :mod:`~kakusan.diffusion.decoder`, gives each dimension its own mean and
Σ_1; with ``steps`` K > 1 the head also shifts x̂_0 and Σ_t of the steps t = 2 … K, the KL above with x̂_0 + σ_t m
and log Σ_t + s). For continuous data (``config.levels`` = 0) L_0 = −log N(x_0; x̂_0, Σ_1), a density, and the
VLB bounds the NLL of the continuous data. For ``levels`` = L > 0 (8-bit data: 256 values k/255 in data space) the
decoder is the discretised Gaussian (Ho et al. eq. 13): the mass of the bin [x − δ, x + δ] (δ half a grid step in the
network's space, 1/255 for images in [−1, 1]), with the first and last bins extended to ∓∞, so the masses of the
L values sum to one; it is computed from log-CDFs (stable far in the tails and for bins narrow against the scale).

**Units and the Jacobian.** The terms are computed on the network's x = (data − shift)/scale. For
``levels`` > 0 the bound is on −log P(data) of the discrete values themselves (a probability mass, the same in
every space), so no Jacobian enters and bits/dim = nats / (D ln 2) is the conventional 8-bit number. For
``levels`` = 0 the reported value is the bound on the data-space density: −log p(data) = −log p(x) −
log|dx/d data|, i.e. the network-space bound minus ``model.log_jacobian()``.

**Estimators.** Each L_{t−1} is itself an expectation over x_t ~ q(x_t | x_0). :func:`vlb_term` computes it
at given integer t per example with one draw of x_t and one network call. :func:`vlb_exact` sums *all* T
terms — exact in the sum over t, one Monte Carlo draw of x_t per (example, t) — for small sets.
:func:`vlb_estimate` computes the first K = ``exact_steps`` terms L_0 … L_{K−1} (K = 1 unless a learned head
serves more steps) and L_T for every example, as the exact sum does, and stratifies the rest: K + 1 … T is cut into
``n_t`` contiguous strata (T − K at most), one t drawn uniformly in each and weighted by the stratum's size
((T − K)/n_t) — unbiased for the same sum with K + n_t network calls. L_0 is
kept out of the strata because it is large and of the other sign (≈ −51 nats for D = 16 at β_1 = 10⁻⁴): drawn
with weight T/n_t by a tenth of the examples it made the per-example values bimodal (sd 163 nats, 27 without;
benchmarks/results_calibration.md). Both report the mean over examples with the standard error across examples
(which contains the Monte Carlo noise). :class:`ImportanceSampler` draws t for the VLB loss with
p_t ∝ √E[L_t²] (Nichol & Dhariwal §3.3).

**Models.** Every function takes a model with ``schedule``, ``predict(x_t, t, cond) -> (prediction of
target, v or None)``, ``target`` and ``config.levels``/``shift``/``scale`` — a
:class:`~kakusan.diffusion.model.Diffusion`, or :class:`EpsModel`, which wraps any denoiser
``(x, t, cond) -> ε̂`` (e.g. the exact :class:`~kakusan.diffusion.truth.MixtureTruth`).

API: ``q_posterior(schedule, x0, x_t, t)``, ``reverse_log_variance(schedule, t, v=None, variance=…)``,
``prior_kl(schedule, x0)``, ``discretised_gaussian_log_prob(x, mean, log_var, levels, low, high)``,
``gaussian_log_prob``, ``term_from_prediction(model, x0, x_t, t, x0_hat, v)``, ``vlb_term(model, x0, t,
cond, generator)``, ``vlb_exact(model, x0, …) -> VLBResult``, ``vlb_estimate(model, x0, …, n_t, exact_steps) ->
VLBResult``, ``strata(T, n_t)``, ``ImportanceSampler(T, history=10, uniform=0.001)``, ``EpsModel(denoiser,
schedule, levels=…, shift=…, scale=…)``, ``log_jacobian(model, D)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable, Literal

import torch

from kakusan.diffusion.process import Schedule, to_x0
from kakusan.errors import DataError, KakusanError, check_positive_int
from kakusan.evaluate import Estimate
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
Variance = Literal["posterior", "beta", "learned"]
VARIANCES = ("posterior", "beta", "learned")
LOG_2PI = math.log(2 * math.pi)


# -- the posterior and the reverse variances ---------------------------------------------------------------

def _integer_t(schedule: Schedule, t, n: int | None = None) -> Tensor:
    """t as a (n,) int64 CPU tensor of steps in 1 … T (a scalar is expanded to n)."""
    t = torch.as_tensor(t)
    if t.is_floating_point():
        if t.numel() and not bool((t == t.round()).all()):
            raise KakusanError("the VLB's terms live at integer steps t = 1 … T: round the times")
    t = t.reshape(-1).cpu().long()
    if n is not None and t.numel() == 1 and n != 1:
        t = t.expand(n)
    if t.numel() and (int(t.min()) < 1 or int(t.max()) > schedule.T):
        raise KakusanError(f"VLB steps must lie in 1 … {schedule.T}, got {int(t.min())} … {int(t.max())}")
    return t


def _coefficients(schedule: Schedule, t: Tensor, like: Tensor) -> SimpleNamespace:
    """Float64 (n,) tables at integer steps t (n,) on ``like``'s device: ᾱ_t, ᾱ_{t−1}, β_t, β̃_t (raw and with
    β̃_1 → β̃_2), c_0, c_t."""
    ab, beta = schedule.alpha_bar, schedule.betas
    ab_t, ab_prev, b = ab[t], ab[t - 1], beta[t - 1]
    post = b * (1 - ab_prev) / (1 - ab_t)
    post_all = beta * (1 - ab[:-1]) / (1 - ab[1:])
    post_clip = post_all[1] if schedule.T > 1 else beta[0]
    post_safe = torch.where(t == 1, post_clip, post)
    c0 = ab_prev.sqrt() * b / (1 - ab_t)
    ct = (1 - b).sqrt() * (1 - ab_prev) / (1 - ab_t)
    dev = dict(device=like.device, dtype=torch.float64)
    return SimpleNamespace(ab_t=ab_t.to(**dev), ab_prev=ab_prev.to(**dev), beta=b.to(**dev), post=post.to(**dev),
                           post_safe=post_safe.to(**dev), c0=c0.to(**dev), ct=ct.to(**dev))


def _col(a: Tensor, x: Tensor) -> Tensor:
    """(n,) → (n, 1, …) against x (n, …)."""
    return a.reshape(a.shape + (1,) * (x.ndim - 1))


def q_posterior(schedule: Schedule, x0: Tensor, x_t: Tensor, t) -> tuple[Tensor, Tensor]:
    """q(x_{t−1} | x_t, x_0) = N(mean, var): (mean like x_0 in float64, var (n,) = β̃_t float64)."""
    t = _integer_t(schedule, t, len(x0))
    c = _coefficients(schedule, t, x0)
    return _col(c.c0, x0) * x0.double() + _col(c.ct, x0) * x_t.double(), c.post


def reverse_log_variance(schedule: Schedule, t, v: Tensor | None = None, variance: Variance = "posterior",
                         like: Tensor | None = None) -> Tensor:
    """log Σ_t of p_θ(x_{t−1} | x_t), float64: (n,) for a fixed choice, v's shape when learned.

    ``"posterior"``: log β̃_t (log β_1 at t = 1); ``"beta"``: log β_t; ``"learned"``: v log β_t + (1 − v) log β̃_t
    with β̃_1 → β̃_2 (Nichol & Dhariwal's clipping), v ∈ (0, 1) per dimension.
    """
    like = v if v is not None else (like if like is not None else torch.zeros(0))
    t = _integer_t(schedule, t, len(like) if like.ndim and like.numel() else None)
    c = _coefficients(schedule, t, like)
    if variance == "learned":
        if v is None:
            raise KakusanError("a learned variance needs v from the model: use a model with learn_variance=True, or "
                               "variance='posterior' or 'beta'")
        lo, hi = _col(c.post_safe.log(), v), _col(c.beta.log(), v)
        vd = v.double()
        return vd * hi + (1 - vd) * lo
    if variance == "beta":
        return c.beta.log()
    if variance == "posterior":
        return torch.where(t.to(c.beta.device) == 1, c.beta, c.post_safe).log()
    raise KakusanError(f"unknown variance {variance!r}: choose {', '.join(VARIANCES)}")


def prior_kl(schedule: Schedule, x0: Tensor) -> Tensor:
    """L_T = KL(N(α_T x_0, σ_T² I) ‖ N(0, I)) = ½ [ᾱ_T (‖x_0‖² − D) − D log(1 − ᾱ_T)], (n,) float64."""
    x = x0.double().reshape(len(x0), -1)
    D = x.shape[1]
    ab = float(schedule.alpha_bar[-1])
    return 0.5 * (ab * ((x * x).sum(1) - D) - D * math.log1p(-ab))


# -- decoders ----------------------------------------------------------------------------------------------

def gaussian_log_prob(x: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """log N(x; mean, exp(log_var)) per dimension, float64 (broadcasting)."""
    d = x.double() - mean.double()
    return -0.5 * (LOG_2PI + log_var + d * d * torch.exp(-log_var))


def _log_diff_cdf(a: Tensor, b: Tensor) -> Tensor:
    """log(Φ(b) − Φ(a)) for a < b, stable: reflected so the bin's centre is ≤ 0, then
    log Φ(b) + log(1 − exp(log Φ(a) − log Φ(b)))."""
    flip = (a + b) > 0
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)
    lb, la = torch.special.log_ndtr(b), torch.special.log_ndtr(a)
    return lb + torch.log((-torch.expm1(la - lb)).clamp(min=1e-300))


def discretised_gaussian_log_prob(x: Tensor, mean: Tensor, log_var: Tensor, levels: int = 256, low: float = -1.0,
                                  high: float = 1.0) -> Tensor:
    """log P(x) per dimension under the discretised Gaussian (Ho et al. 2020, eq. 13), float64.

    x lies on the grid of ``levels`` values from ``low`` to ``high`` (images: 256 values in [−1, 1]); the mass of
    x is that of N(mean, exp(log_var)) on [x − δ, x + δ], δ = (high − low) / (2 (levels − 1)), with the lowest
    bin's left edge at −∞ and the highest bin's right edge at +∞ (so the masses sum to one).
    """
    check_positive_int(levels, "levels", low=2)
    x, mean = x.double(), mean.double()
    delta = (high - low) / (2 * (levels - 1))
    inv_s = torch.exp(-0.5 * log_var)
    a, b = (x - delta - mean) * inv_s, (x + delta - mean) * inv_s
    k = torch.round((x - low) / (2 * delta))
    bottom, top = k <= 0, k >= levels - 1
    mid = _log_diff_cdf(torch.where(bottom | top, torch.zeros_like(a) - 1, a),
                        torch.where(bottom | top, torch.zeros_like(b), b))
    out = torch.where(bottom, torch.special.log_ndtr(b), mid)
    return torch.where(top, torch.special.log_ndtr(-a), out)


# -- models ------------------------------------------------------------------------------------------------

class EpsModel:
    """Any denoiser ``(x, t, cond) -> ε̂`` as a model for the VLB and the objectives (target ``"eps"``, no learned
    variance). ``levels``/``shift``/``scale`` describe the data as in
    :class:`~kakusan.diffusion.model.DiffusionConfig`; ``dtype`` is the network space's (float64 for the exact
    mixture). Examples asked at different times are grouped by time, one denoiser call per distinct t."""

    target = "eps"
    n_classes = 0

    def __init__(self, denoiser: Callable[..., Tensor], schedule: Schedule | None = None, *, levels: int = 0,
                 shift: float = 0.0, scale: float = 1.0, dtype: torch.dtype = torch.float64):
        schedule = schedule if schedule is not None else getattr(denoiser, "schedule", None)
        if not isinstance(schedule, Schedule):
            raise KakusanError("EpsModel needs the denoiser's schedule: pass schedule=Schedule(...)")
        if not scale > 0:
            raise KakusanError(f"scale must be positive, got {scale}")
        self.denoiser, self.schedule, self.dtype = denoiser, schedule, dtype
        self.config = SimpleNamespace(levels=levels, shift=shift, scale=scale, learn_variance=False, target="eps")

    def predict(self, x_t: Tensor, t, cond: Tensor | None = None) -> tuple[Tensor, None]:
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).cpu()
        if t.numel() == 1:
            return self.denoiser(x_t, t.expand(len(x_t)), cond), None
        out = torch.empty_like(x_t)
        for s in torch.unique(t):
            idx = (t == s).nonzero().reshape(-1).to(x_t.device)
            c = None if cond is None else cond[idx]
            out[idx] = self.denoiser(x_t[idx], s.expand(len(idx)), c).to(x_t.dtype)
        return out, None

    def eps(self, x_t: Tensor, t, cond: Tensor | None = None) -> Tensor:
        return self.predict(x_t, t, cond)[0]

    def to_model(self, data: Tensor) -> Tensor:
        return (torch.as_tensor(data).to(self.dtype) - self.config.shift) / self.config.scale

    def to_data(self, x: Tensor) -> Tensor:
        return self.config.shift + self.config.scale * x


def _levels(model) -> int:
    return int(getattr(model.config, "levels", 0) or 0)


def _data_range(model) -> tuple[float, float]:
    """The network-space images of data 0 and 1 (the grid's ends for ``levels`` > 0)."""
    shift, scale = float(getattr(model.config, "shift", 0.0)), float(getattr(model.config, "scale", 1.0))
    return (0.0 - shift) / scale, (1.0 - shift) / scale


def log_jacobian(model, n_features: int) -> float:
    """log |dx/d data| per example = −D log scale (``model.log_jacobian()`` when the model has one)."""
    if hasattr(model, "log_jacobian") and getattr(model, "n_features", None) == n_features:
        return float(model.log_jacobian())
    return -n_features * math.log(float(getattr(model.config, "scale", 1.0)))


def _resolve_variance(model, v: Tensor | None, variance: Variance | None) -> Variance:
    if variance is None:
        return "learned" if v is not None else "posterior"
    if variance not in VARIANCES:
        raise KakusanError(f"unknown variance {variance!r}: choose {', '.join(VARIANCES)}")
    if variance == "learned" and v is None:
        raise KakusanError("variance='learned' needs a model with learn_variance=True: use 'posterior' or 'beta'")
    return variance


def _cond(model, cond, n: int):
    return model.check_cond(cond, n) if hasattr(model, "check_cond") else cond


# -- the terms ---------------------------------------------------------------------------------------------

def term_from_prediction(model, x0: Tensor, x_t: Tensor, t, x0_hat: Tensor, v: Tensor | None = None,
                         variance: Variance | None = None) -> Tensor:
    """L_{t−1} per example (n,) float64 in nats, from the model's x̂_0 (and v) at x_t: the Gaussian KL for t ≥ 2,
    the decoder's −log p(x_0 | x_1) for t = 1 (module docstring). x0, x_t, x̂_0 in the network's space.
    Differentiable in x̂_0 and v (each branch is computed on its own examples only, so no NaN gradients)."""
    schedule = model.schedule
    n = len(x0)
    t = _integer_t(schedule, t, n)
    variance = _resolve_variance(model, v, variance)
    x0d = x0.double().reshape(n, -1)
    diff = x0d - x0_hat.double().reshape(n, -1)
    vv = None if v is None or variance != "learned" else v.reshape(n, -1)
    out = torch.zeros(n, dtype=torch.float64, device=x0.device)
    first = (t == 1).to(x0.device)
    rest = ~first
    steps = model.head_steps() if hasattr(model, "head_steps") else 0  # t ≤ steps: the learned head's
    if bool(rest.any()):
        idx = rest.nonzero().reshape(-1)
        ti = t[idx.cpu()]
        c = _coefficients(schedule, ti, x0d)
        headed = (ti <= steps).nonzero().reshape(-1)
        if variance == "posterior" and not len(headed):
            out = out.index_put((idx,), (0.5 * (c.c0**2 / c.post)[:, None] * diff[idx] ** 2).sum(1))
        else:
            log_var = reverse_log_variance(schedule, ti, None if vv is None else vv[idx], variance, like=x0d[idx])
            log_var = (log_var if log_var.ndim == 2 else log_var[:, None]).expand(len(idx), x0d.shape[1])
            d = diff[idx]
            if len(headed):  # the head's mean of x_0 and its offset of log Σ_t (kakusan.diffusion.decoder)
                rows = idx[headed.to(idx.device)]
                mean, s = model.head_params(x_t[rows], ti[headed], x0_hat[rows])
                h = headed.to(idx.device)
                d = d.index_put((h,), x0d[rows] - mean)
                log_var = log_var.index_put((h,), log_var[h] + s)
            post = c.post[:, None]
            kl = 0.5 * (log_var - post.log() + (post + (c.c0**2)[:, None] * d**2) * torch.exp(-log_var) - 1)
            out = out.index_put((idx,), kl.sum(1))
    if bool(first.any()):
        idx = first.nonzero().reshape(-1)
        ti = t[idx.cpu()]
        if getattr(model, "decoder_head", None) is not None:  # the learned decoder (kakusan.diffusion.decoder)
            mean, log_var = model.decoder_params(x_t[idx], x0_hat[idx])
        else:
            log_var = reverse_log_variance(schedule, ti, None if vv is None else vv[idx], variance, like=x0d[idx])
            log_var = log_var if log_var.ndim == 2 else log_var[:, None].expand(len(idx), x0d.shape[1])
            mean = x0d[idx] - diff[idx]  # = x̂_0
        levels = _levels(model)
        if levels:
            low, high = _data_range(model)
            logp = discretised_gaussian_log_prob(x0d[idx], mean, log_var, levels, low, high)
        else:
            logp = gaussian_log_prob(x0d[idx], mean, log_var)
        out = out.index_put((idx,), -logp.sum(1))
    return out


def _x0_hat(model, x_t: Tensor, t: Tensor, cond, clip_x0: bool) -> tuple[Tensor, Tensor | None]:
    pred, v = model.predict(x_t, t.to(torch.float64), cond)
    alpha, sigma = model.schedule.alpha_sigma(t.to(torch.float64))
    x0_hat = to_x0(pred, model.target, x_t, alpha.to(x_t), sigma.to(x_t))
    if clip_x0:
        low, high = _data_range(model)
        x0_hat = x0_hat.clamp(low, high)
    return x0_hat, v


def vlb_term(model, x0: Tensor, t, cond: Tensor | None = None, generator: Seed = None, *, eps: Tensor | None = None,
             variance: Variance | None = None, clip_x0: bool = False) -> Tensor:
    """L_{t−1} at integer steps t (n,) (or one int) per example, (n,) float64 nats: draws x_t = α_t x_0 + σ_t ε
    (ε given, or from ``generator``), calls the network once, and evaluates :func:`term_from_prediction`.
    x0 is in the network's space. Gradients flow when enabled. ``clip_x0`` clamps x̂_0 to the data's range."""
    schedule = model.schedule
    t = _integer_t(schedule, t, len(x0))
    if eps is None:
        g = make_generator(generator, x0.device)
        eps = torch.randn(x0.shape, generator=g, device=x0.device, dtype=x0.dtype)
    alpha, sigma = schedule.alpha_sigma(t.to(torch.float64))
    x_t = _col(alpha.to(x0), x0) * x0 + _col(sigma.to(x0), x0) * eps
    x0_hat, v = _x0_hat(model, x_t, t, _cond(model, cond, len(x0)), clip_x0)
    return term_from_prediction(model, x0, x_t, t, x0_hat, v, variance)


# -- the whole bound ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VLBResult:
    """The VLB of a set of examples.

    values : (n,) float64, the bound on −log p(data) per example, nats (data space; module docstring).
    estimate : their mean with the standard error across examples, in ``unit`` (nats or bits/dim).
    terms : (n, T + 1) float64 for :func:`vlb_exact`: column t − 1 holds L_{t−1} (t = 1 … T; column 0 = L_0),
        column T holds L_T (network space); None for :func:`vlb_estimate`.
    decoder : (n,) float64, the decoder term L_0 = −log p_θ(x_0 | x_1) of each example in nats (one draw of x_1;
        network space, like ``terms``), part of ``values``: where a bound on 8-bit data spends its bits
        (:mod:`~kakusan.diffusion.decoder`).
    early : (n,) float64, L_1 + … + L_{K−1} of each example in nats (network space), the first steps after the
        decoder that :func:`vlb_estimate` computed exactly (``exact_steps`` K > 1); None otherwise.
    """

    values: Tensor
    estimate: Estimate
    terms: Tensor | None = None
    decoder: Tensor | None = None
    early: Tensor | None = None

    @property
    def nats(self) -> Estimate:
        """The mean bound in nats per example (whatever ``unit`` was asked)."""
        return Estimate.of_mean(self.values, method=self.estimate.method, unit="nats")

    def bits_per_dim(self, n_features: int) -> Estimate:
        """The mean bound in bits per dimension: nats / (D ln 2), D = ``n_features``."""
        return Estimate.of_mean(self.values / (n_features * math.log(2)), method=self.estimate.method,
                                unit="bits/dim")


def _unit(model, unit: str | None) -> str:
    unit = unit or ("bits/dim" if _levels(model) else "nats")
    if unit not in ("nats", "bits/dim"):
        raise KakusanError(f"unknown unit {unit!r}: choose nats or bits/dim")
    return unit


def _prepare(model, x0: Tensor, cond) -> tuple[Tensor, Tensor | None]:
    x = model.to_model(x0)
    if x.ndim < 2:
        raise DataError(f"x0 must be a batch of examples (n, …), got shape {tuple(x.shape)}")
    return x, _cond(model, cond, len(x))


def _result(model, x: Tensor, nll_x: Tensor, unit: str, method: str, terms: Tensor | None,
            decoder: Tensor, early: Tensor | None = None) -> VLBResult:
    D = x[0].numel()
    values = nll_x if _levels(model) else nll_x - log_jacobian(model, D)
    per = values / (D * math.log(2)) if unit == "bits/dim" else values
    return VLBResult(values, Estimate.of_mean(per, method=method, unit=unit), terms, decoder, early)


@torch.no_grad()
def vlb_exact(model, x0: Tensor, cond: Tensor | None = None, generator: Seed = None, batch: int = 1000, *,
              variance: Variance | None = None, clip_x0: bool | None = None, unit: str | None = None) -> VLBResult:
    """The VLB summed over *all* T terms per example: exact in the sum over t, one draw of x_t per (example, t).

    x0 : (n, …) data in data space (what the data set holds; ``model.to_model`` converts it).
    batch : examples per network call (T calls per batch).
    variance : the fixed reverse variance (``"posterior"`` or ``"beta"``) for a model that does not learn it.
    clip_x0 : clamp x̂_0 to the data's range (default: for ``levels`` > 0, as Ho et al. and Nichol & Dhariwal).
    unit : nats or bits/dim (default bits/dim for ``levels`` > 0).

    Draws: for each batch of examples, for t = 1 … T, one ε ~ N(0, I) of the batch's shape from ``generator``.
    """
    check_positive_int(batch, "batch")
    unit = _unit(model, unit)
    x, cond = _prepare(model, x0, cond)
    schedule, T = model.schedule, model.schedule.T
    clip = bool(_levels(model)) if clip_x0 is None else clip_x0
    g = make_generator(generator, x.device)
    terms = torch.zeros(len(x), T + 1, dtype=torch.float64)
    for i in range(0, len(x), batch):
        xb, cb = x[i:i + batch], None if cond is None else cond[i:i + batch]
        for t in range(1, T + 1):
            eps = torch.randn(xb.shape, generator=g, device=xb.device, dtype=xb.dtype)
            terms[i:i + len(xb), t - 1] = vlb_term(model, xb, t, cb, eps=eps, variance=variance, clip_x0=clip).cpu()
        terms[i:i + len(xb), T] = prior_kl(schedule, xb).cpu()
    return _result(model, x, terms.sum(1), unit, f"VLB exact sum over T={T} (one x_t draw per term)", terms,
                   terms[:, 0].clone())


def strata(T: int, n_t: int) -> tuple[Tensor, Tensor]:
    """(starts, sizes) of n_t contiguous strata covering 1 … T (sizes differ by at most one), int64."""
    check_positive_int(n_t, "n_t")
    if n_t > T:
        raise KakusanError(f"n_t = {n_t} strata exceed the T = {T} steps: use n_t ≤ {T}")
    edges = torch.div(torch.arange(n_t + 1) * T, n_t, rounding_mode="floor")
    return edges[:-1] + 1, edges[1:] - edges[:-1]


@torch.no_grad()
def vlb_estimate(model, x0: Tensor, cond: Tensor | None = None, generator: Seed = None, n_t: int = 50, *,
                 batch: int = 1000, variance: Variance | None = None, clip_x0: bool | None = None,
                 unit: str | None = None, exact_steps: int | None = None) -> VLBResult:
    """The VLB per example by stratified sampling of t, unbiased for the sum over all T terms.

    The first K = ``exact_steps`` terms L_0 … L_{K−1} (t = 1 … K; L_0 the decoder) and L_T are computed for every
    example; K + 1 … T is cut into min(``n_t``, T − K) contiguous strata (:func:`strata`), in each every example
    draws its own t uniformly and one x_t, and the term is weighted by the stratum's size ((T − K) / n_t).
    K + n_t network calls per batch of examples (T at most); with K + n_t ≥ T every term is computed once, and for
    K = 1 the result equals :func:`vlb_exact`'s for the same ``generator`` and ``batch``. K defaults to the steps a
    learned head serves (:mod:`~kakusan.diffusion.decoder`; 1 without one): the first terms are the largest.
    Other arguments as in :func:`vlb_exact`; n_t ≤ T.

    Draws: per batch, ε for t = 1 … K in turn, then per stratum t (n,) (none when the stratum is one step) and ε
    of the batch's shape, from ``generator``.
    """
    check_positive_int(batch, "batch")
    check_positive_int(n_t, "n_t")
    T = model.schedule.T
    if n_t > T:
        raise KakusanError(f"n_t = {n_t} strata exceed the T = {T} steps: use n_t ≤ {T}")
    K = exact_steps
    if K is None:
        K = max(1, model.head_steps() if hasattr(model, "head_steps") else 0)
    check_positive_int(K, "exact_steps")
    if K > T:
        raise KakusanError(f"exact_steps = {K} exceeds the T = {T} steps: use exact_steps ≤ {T}")
    unit = _unit(model, unit)
    x, cond = _prepare(model, x0, cond)
    schedule = model.schedule
    starts, sizes = strata(T - K, min(n_t, T - K)) if T > K else (torch.zeros(0, dtype=torch.long),) * 2
    clip = bool(_levels(model)) if clip_x0 is None else clip_x0
    g = make_generator(generator, x.device)
    nll = torch.zeros(len(x), dtype=torch.float64)
    decoder = torch.zeros(len(x), dtype=torch.float64)
    early = torch.zeros(len(x), dtype=torch.float64)
    for i in range(0, len(x), batch):
        xb, cb = x[i:i + batch], None if cond is None else cond[i:i + batch]
        terms = torch.zeros(len(xb), K + len(starts) + 1, dtype=torch.float64)  # L_0 … L_{K−1}, the strata, L_T
        for t in range(1, K + 1):
            eps = torch.randn(xb.shape, generator=g, device=xb.device, dtype=xb.dtype)
            terms[:, t - 1] = vlb_term(model, xb, t, cb, eps=eps, variance=variance, clip_x0=clip).cpu()
        for k, (start, size) in enumerate(zip(starts.tolist(), sizes.tolist())):
            t = start + K  # strata of 1 … T − K, shifted onto K + 1 … T
            if size > 1:
                t = t + torch.randint(0, size, (len(xb),), generator=g, device=xb.device).cpu()
            eps = torch.randn(xb.shape, generator=g, device=xb.device, dtype=xb.dtype)
            terms[:, K + k] = size * vlb_term(model, xb, t, cb, eps=eps, variance=variance, clip_x0=clip).cpu()
        terms[:, -1] = prior_kl(schedule, xb).cpu()
        nll[i:i + len(xb)] = terms.sum(1)
        decoder[i:i + len(xb)] = terms[:, 0]
        early[i:i + len(xb)] = terms[:, 1:K].sum(1)
    first = "L_0 and L_T" if K == 1 else f"L_0 … L_{K - 1} and L_T"
    method = f"VLB stratified, {first} exact + {len(starts)} strata of t = {K + 1}…{T}"
    return _result(model, x, nll, unit, method, None, decoder, early if K > 1 else None)


# -- importance sampling of t ------------------------------------------------------------------------------

class ImportanceSampler:
    """Importance sampling of t ∈ 1 … T for the VLB loss (Nichol & Dhariwal 2021, §3.3).

    It keeps the last ``history`` values of each term L_{t−1} (per t); until every t has ``history`` of them it
    samples t uniformly, then with p_t ∝ √(mean of the kept L_t²), mixed with the uniform law,
    p ← (1 − uniform) p + uniform / T (their code's 0.001; it keeps every weight bounded). ``sample`` returns the
    weights 1/(T p_t) that make T · weight · L_{t−1} unbiased for Σ_t L_{t−1}. The history is state
    (``state_dict``/``load_state_dict``), so training resumes exactly.
    """

    def __init__(self, T: int, history: int = 10, uniform: float = 0.001):
        check_positive_int(T, "T")
        check_positive_int(history, "history")
        if not 0 <= uniform <= 1:
            raise KakusanError(f"uniform must lie in [0, 1], got {uniform}")
        self.T, self.uniform = T, float(uniform)
        self.history = torch.zeros(T, history, dtype=torch.float64)
        self.counts = torch.zeros(T, dtype=torch.int64)

    @property
    def warmed_up(self) -> bool:
        return bool((self.counts == self.history.shape[1]).all())

    def probabilities(self) -> Tensor:
        """p_t for t = 1 … T, (T,) float64."""
        if not self.warmed_up:
            return torch.full((self.T,), 1.0 / self.T, dtype=torch.float64)
        w = (self.history**2).mean(1).sqrt()
        if not float(w.sum()) > 0:
            return torch.full((self.T,), 1.0 / self.T, dtype=torch.float64)
        return (1 - self.uniform) * w / w.sum() + self.uniform / self.T

    def sample(self, n: int, generator: Seed = None, device=None) -> tuple[Tensor, Tensor]:
        """(t (n,) int64 in 1 … T, weights (n,) float64 = 1/(T p_t)) on ``device`` (the generator's by default)."""
        g = make_generator(generator, device)
        p = self.probabilities()
        idx = torch.multinomial(p.to(g.device), n, replacement=True, generator=g)
        weights = (1.0 / (self.T * p)).to(g.device)[idx]
        return idx + 1, weights

    def update(self, t: Tensor, losses: Tensor) -> None:
        """Record the terms ``losses`` (n,) observed at steps t (n,), in order."""
        K = self.history.shape[1]
        for ti, li in zip(torch.as_tensor(t).reshape(-1).tolist(), torch.as_tensor(losses).reshape(-1).tolist()):
            row, c = ti - 1, int(self.counts[ti - 1])
            if c == K:
                self.history[row, :-1] = self.history[row, 1:].clone()
                self.history[row, -1] = li
            else:
                self.history[row, c] = li
                self.counts[row] = c + 1

    def state_dict(self) -> dict[str, Tensor]:
        return {"history": self.history.clone(), "counts": self.counts.clone(),
                "uniform": torch.tensor([self.uniform], dtype=torch.float64)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        history = state["history"].to(torch.float64).cpu()
        self.T = history.shape[0]
        self.history, self.counts = history.clone(), state["counts"].to(torch.int64).cpu().clone()
        if "uniform" in state:
            self.uniform = float(state["uniform"].reshape(-1)[0])


__all__ = ["EpsModel", "ImportanceSampler", "VLBResult", "discretised_gaussian_log_prob", "gaussian_log_prob",
           "log_jacobian", "prior_kl", "q_posterior", "reverse_log_variance", "strata", "term_from_prediction",
           "vlb_estimate", "vlb_exact", "vlb_term"]

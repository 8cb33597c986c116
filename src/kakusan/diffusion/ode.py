"""The probability-flow ODE likelihood of a diffusion model (Song et al. 2021): exact log-density by a flow.

The VP process x_t = α(t) x_0 + σ(t) ε (α² + σ² = 1) is the SDE dx = f x dt + g dW with f = d log α/dt and
g² = −σ² dλ/dt (λ = log α²/σ², the log-SNR). Its marginals q_t are shared by the deterministic
probability-flow ODE

    dx/dt = f(t) x − ½ g(t)² ∇ log q_t(x) = f x + ½ g² ε̂(x, t)/σ        (∇ log q_t = −ε/σ),

a bijection x_0 ↦ x_T, and along it the instantaneous change of variables (Chen et al. 2018) gives

    d log p_t(x_t)/dt = −∇·(dx/dt).

In t the field is stiff near the data: ½ g²/σ ~ β/(2σ) blows up like t^(−1/2) as σ → 0.
This module therefore integrates against σ̃ = σ/α = e^(−λ/2), the noise-to-signal ratio (α² = 1/(1 + σ̃²),
σ = σ̃ α). With x̃ = x/α the flow is the DDIM ODE dx̃/dσ̃ = ε̂(α x̃, t(σ̃)); we keep the bounded state x
itself. From dσ̃/dt = σ̃' the t-field above equals σ̃' α (ε̂ − σ x) (use f = −σ̃ α² σ̃' and
½ g²/σ = α σ̃'), so

    dx/dσ̃ = α (ε̂(x, t) − σ x) = α² v̂(x, t),                   v = α ε − σ x_0,
    d log p(x_σ̃)/dσ̃ = −α (tr ∂ε̂/∂x − σ D),

where t = t(σ̃) is the schedule's time with that log-SNR (:meth:`Schedule.t_from_log_snr`). Both right-hand
sides are finite at σ̃ = 0 (an exact ε* has ∂ε/∂x ~ σ̃ Σ⁻¹ there), the field is Lipschitz with constant
about 1/(2 s) for data of length scale s, and for large σ̃ (q_t ≈ N(0, I), ε̂ ≈ σ x) both decay like 1/σ̃²:
no stiffness at either end. Integrating from σ̃_0 = σ̃(t_min) (0 by default: the data) to σ̃_1 = σ̃(t_max),

    log p_{t_min}(x) = log p_{t_max}(x_{t_max}) + ∫_{σ̃_0}^{σ̃_1} α (tr ∂ε̂/∂x − σ D) dσ̃.

Check (Gaussian data N(0, s² I), ε* = σ x/(α² s² + σ²)): the integrand is D σ̃ [1/(s² + σ̃²) − 1/(1 + σ̃²)],
whose integral over [0, ∞) is −D log s, and the flow maps x ↦ x/s:
log N(x/s; 0, I) − D log s = log N(x; 0, s² I).

The prior. ``log p_{t_max}`` is the standard normal N(0, I) by default, the diffusion's prior. With the exact
score the error this makes at a point is log N(x_T) − log q_T(x_T) = O(α_T ‖x‖), and on average
−KL(q_T ‖ N(0, I)) ≥ −L_T, the VLB's prior term L_T = E KL(q(x_T | x_0) ‖ N(0, I)) ≈ ½ α_T² E‖x_0‖²
(linear schedule, T = 1000: α_T² ≈ 4·10⁻⁵). ``prior`` swaps in another log-density (e.g. the exact q_T).

Where a network's errors count. For large σ̃ the exact ε* → σ x, so tr ∂ε̂/∂x − σ D cancels; an error δ in
the trace costs about δ per e-fold of σ̃ (α dσ̃ ≈ d log σ̃). The cosine schedule reaches σ̃_T ≈ 2·10⁴ (ᾱ_T ≈ 2·10⁻⁹,
some 10 e-folds above σ̃ = 1; the linear one σ̃_T ≈ 160), and an ε-network's Jacobian errors at high noise
enter undamped, while a v-network's (ε̂ = σ x + α v̂) are damped by α. On a 2-D mixture, MLPs trained briefly
with L_simple came within ≈ 0.01 nats of the exact density with v and the linear schedule, ≈ 0.03 with v and
cosine, ≈ 0.13 with ε and cosine.

Divergence. ``"exact"`` is tr ∂ε̂/∂x from D one-hot vector-Jacobian products, batched as one pass of the
denoiser over D replicas of the batch (chunked to ``EXACT_ROWS`` rows); ``"hutchinson"`` is z·(∂ε̂/∂x)ᵀz with
one probe z per example (Rademacher or Gaussian, E zzᵀ = I) drawn once per solve, which makes the log-density an
unbiased estimate for the fixed path of x (its step sizes aside); ``"auto"`` is exact for D ≤ 64.

The solver is Dormand–Prince 5(4) in torch (FSAL, Hairer's initial step, the standard step-size
controller), on the float64 state [x, ∫ div] of the whole batch with one shared step: the error of each
example is max(RMS over its D coordinates, that of its log-density), each scaled by atol + rtol·|y|, and the
step is accepted when the worst example's is ≤ 1 (so each example meets the tolerance whatever its batch).
NFE counts evaluations of the field (each one denoiser pass over the batch plus its vector-Jacobian
products; exact divergence runs D replicas).

Data space. The network works on x = (data − shift)/scale: log p_data = log p_x − D log scale
(``model.log_jacobian()``). 8-bit data (``levels`` = 256) sit on the grid k/255 ∈ [0, 1]; dequantisation
y = (k + u)/256, u ~ U[0, 1)^D puts each value in its own bin [k/256, (k + 1)/256) (k/255 lies inside it),
the bins tile [0, 1], and Jensen gives the bound on the discrete likelihood

    log P(k) = log ∫_bin p(y) dy ≥ E_u[log p((k + u)/256)] − D log 256,

reported, one draw of u per example, as bits/dim = −(log p − D log 256)/(D ln 2).

API: ``probability_flow(denoiser, schedule, x, cond=None, *, divergence, probe, rtol, atol, t_min, t_max, prior,
generator, max_steps) -> FlowLikelihood`` (log_prob, log_prior, delta, x_end, nfe, steps, rejected);
``ode_log_likelihood(...)`` its (n,) log_prob in nats in the network space; ``ode_nll(model, data, cond=None,
*, dequantise=True, generator=None, batch_size=100, ...) -> ODEEstimate`` (an
:class:`~kakusan.evaluate.Estimate` in nats or bits/dim with ``per_example`` and ``nfe``).
"""

from __future__ import annotations

import inspect
import math
import sys
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from kakusan.diffusion.process import Schedule
from kakusan.errors import DataError, KakusanError, check_positive_int
from kakusan.evaluate import Estimate
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
DIVERGENCES = ("auto", "exact", "hutchinson")
PROBES = ("rademacher", "gaussian")
EXACT_MAX_DIM = 64  # "auto" computes the exact divergence up to this many dimensions
EXACT_ROWS = 8192  # rows per denoiser pass of the exact divergence (replicas × examples)

# Dormand–Prince 5(4): nodes, stages, 5th-order weights, and the error weights b − b̂ (b̂: the 4th-order solution)
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = ((),
      (1 / 5,),
      (3 / 40, 9 / 40),
      (44 / 45, -56 / 15, 32 / 9),
      (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
      (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656))
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)


@dataclass(frozen=True)
class FlowLikelihood:
    """One probability-flow solve (module docstring), all per example (n,) float64 in the network space.

    log_prob : log p_{t_min}(x) = log_prior + delta.
    log_prior : log p_{t_max}(x_end) (the standard normal unless another prior was given).
    delta : ∫ α (tr ∂ε̂/∂x − σ D) dσ̃ from σ̃(t_min) to σ̃(t_max).
    x_end : (n, *shape) the flowed points at t_max.
    nfe, steps, rejected : field evaluations, accepted and rejected steps.
    """

    log_prob: Tensor
    log_prior: Tensor
    delta: Tensor
    x_end: Tensor
    nfe: int
    steps: int
    rejected: int


@dataclass(frozen=True)
class ODEEstimate(Estimate):
    """The data set's PF-ODE NLL (an :class:`Estimate`: mean ± s.e. across examples) with the per-example
    values (n,) in ``unit`` and the total number of field evaluations ``nfe`` over all batches."""

    per_example: Tensor | None = field(default=None, compare=False, repr=False)
    nfe: int = 0


def standard_normal_log_prob(x: Tensor) -> Tensor:
    """log N(x; 0, I) per example, (n,) float64."""
    x = x.reshape(len(x), -1).to(torch.float64)
    return -0.5 * (x.pow(2).sum(-1) + x.shape[1] * math.log(2 * math.pi))


def sigma_tilde(schedule: Schedule, t: float) -> float:
    """σ̃(t) = σ/α = √(1/ᾱ(t) − 1)."""
    la = float(schedule.log_alpha_bar_at(torch.tensor(float(t))))
    return math.sqrt(math.expm1(-la))


def _time(schedule: Schedule, s: float, t_lo: float, t_hi: float) -> float:
    """The schedule time with σ̃(t) = s (λ = −2 log s), kept inside [t_lo, t_hi] against rounding."""
    if s <= 0:
        return t_lo
    t = float(schedule.t_from_log_snr(torch.tensor(-2.0 * math.log(s), dtype=torch.float64)))
    return min(max(t, t_lo), t_hi)


def _denoise(denoiser, x: Tensor, t: float, cond) -> Tensor:
    out = denoiser(x, torch.full((len(x),), t, dtype=torch.float64), cond)
    if not isinstance(out, Tensor) or out.shape != x.shape:
        raise KakusanError(f"the denoiser must return ε̂ of the input's shape {tuple(x.shape)}, got "
                           f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}")
    if not out.requires_grad:
        raise KakusanError("the denoiser's output carries no gradient with respect to x, which the divergence "
                           "needs: don't wrap it in torch.no_grad")
    return out


def _exact_trace(denoiser, x: Tensor, t: float, cond) -> tuple[Tensor, Tensor]:
    """(ε̂ (n, D), tr ∂ε̂/∂x (n,)) by one-hot vector-Jacobian products on replicas of the batch."""
    n, D = len(x), x[0].numel()
    per_pass = max(1, min(D, EXACT_ROWS // max(n, 1)))
    trace = torch.zeros(n, dtype=torch.float64, device=x.device)
    eps = None
    for start in range(0, D, per_pass):
        k = min(per_pass, D - start)
        xr = x.detach().unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:]).requires_grad_(True)
        cr = None if cond is None else cond.repeat(k)
        with torch.enable_grad():
            out = _denoise(denoiser, xr, t, cr)
        rows = torch.arange(k, device=x.device)
        v = torch.zeros(k, n, D, dtype=out.dtype, device=x.device)
        v[rows, :, start + rows] = 1
        (g,) = torch.autograd.grad(out, xr, v.reshape(out.shape))
        trace += g.reshape(k, n, D)[rows, :, start + rows].sum(0).to(torch.float64)
        if eps is None:
            eps = out.detach().reshape(k, n, D)[0].to(torch.float64)
    return eps, trace


def _hutchinson_trace(denoiser, x: Tensor, t: float, cond, z: Tensor) -> tuple[Tensor, Tensor]:
    """(ε̂ (n, D), zᵀ (∂ε̂/∂x) z (n,)) with one vector-Jacobian product."""
    xr = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = _denoise(denoiser, xr, t, cond)
    (g,) = torch.autograd.grad(out, xr, z.reshape(out.shape).to(out.dtype))
    n = len(x)
    return out.detach().reshape(n, -1).to(torch.float64), (g.reshape(n, -1).to(torch.float64) * z).sum(-1)


def _error_norm(err: Tensor, y0: Tensor, y1: Tensor, rtol: float, atol: float) -> float:
    """The worst example's max(RMS of its scaled x-errors, its scaled log-density error)."""
    r = err / (atol + rtol * torch.maximum(y0.abs(), y1.abs()))
    per = torch.maximum(r[:, :-1].pow(2).mean(-1).sqrt(), r[:, -1].abs())
    return float(per.max())


def _dopri5(f, s0: float, s1: float, y: Tensor, rtol: float, atol: float, max_steps: int):
    """Integrate y' = f(s, y) from s0 to s1 (> s0); returns (y(s1), nfe, accepted, rejected)."""
    k1 = f(s0, y)
    nfe = 1
    # Hairer, Nørsett & Wanner (1993), II.4: the initial step
    scale = atol + rtol * y.abs()
    d0, d1 = float((y / scale).pow(2).mean().sqrt()), float((k1 / scale).pow(2).mean().sqrt())
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, s1 - s0)
    k2 = f(s0 + h0, y + h0 * k1)
    nfe += 1
    d2 = float(((k2 - k1) / scale).pow(2).mean().sqrt()) / h0
    h = (0.01 / max(d1, d2)) ** 0.2 if max(d1, d2) > 1e-15 else max(1e-6, h0 * 1e-3)
    h = min(100 * h0, h, s1 - s0)
    s, accepted, rejected = s0, 0, 0
    while s < s1:
        if accepted + rejected >= max_steps:
            raise KakusanError(f"the probability-flow ODE took more than {max_steps} steps (reached σ̃ = {s:.3g} of "
                               f"{s1:.3g}): loosen rtol/atol, or check that the denoiser is smooth and finite")
        last = s + h >= s1 or (s1 - (s + h)) < 1e-12 * max(1.0, s1)
        if last:
            h = s1 - s
        ks = [k1]
        for i in range(1, 6):
            yi = y + h * sum(a * k for a, k in zip(_A[i], ks) if a)
            ks.append(f(s + _C[i] * h, yi))
        y_new = y + h * sum(b * k for b, k in zip(_B, ks) if b)
        k7 = f(s1 if last else s + h, y_new)
        ks.append(k7)
        nfe += 6
        err = h * sum(e * k for e, k in zip(_E, ks) if e)
        if not bool(torch.isfinite(y_new).all()):
            raise KakusanError(f"the probability-flow ODE produced non-finite values at σ̃ = {s:.3g}: check the "
                               "denoiser's outputs (and the data's range)")
        en = _error_norm(err, y, y_new, rtol, atol)
        if en <= 1.0:
            s = s1 if last else s + h
            y, k1 = y_new, k7
            accepted += 1
            factor = 10.0 if en == 0 else min(10.0, 0.9 * en ** -0.2)
        else:
            rejected += 1
            factor = max(0.2, 0.9 * en ** -0.2)
        h = h * factor
    return y, nfe, accepted, rejected


def _check_options(divergence: str, probe: str, rtol: float, atol: float) -> None:
    if divergence not in DIVERGENCES:
        raise KakusanError(f"unknown divergence {divergence!r}: choose {', '.join(DIVERGENCES)}")
    if probe not in PROBES:
        raise KakusanError(f"unknown probe {probe!r}: choose {' or '.join(PROBES)}")
    if not (rtol > 0 and atol > 0):
        raise KakusanError(f"rtol and atol must be positive, got {rtol:g} and {atol:g}")


def probability_flow(denoiser, schedule: Schedule, x: Tensor, cond: Tensor | None = None, *,
                     divergence: str = "auto", probe: str = "rademacher", rtol: float = 1e-5, atol: float = 1e-5,
                     t_min: float = 0.0, t_max: float | None = None,
                     prior: Callable[[Tensor], Tensor] | None = None, generator: Seed = None,
                     max_steps: int = 10_000) -> FlowLikelihood:
    """Solve the probability-flow ODE from x at t_min to t_max (default T) and return log p_{t_min}(x).

    Parameters
    ----------
    denoiser : ``(x, t, cond) -> ε̂`` (x (n, *shape), t (n,) float64 step indices); it must be differentiable
        in x (no ``torch.no_grad`` inside) and treat examples independently.
    schedule : the :class:`~kakusan.diffusion.process.Schedule` the denoiser was trained with.
    x : (n, *shape) points in the network's space at time t_min; the denoiser sees them in x's dtype.
    divergence : ``"exact"``, ``"hutchinson"`` or ``"auto"`` (exact for D ≤ 64); probe : ``"rademacher"`` or
        ``"gaussian"`` for Hutchinson, drawn once per solve from ``generator``.
    rtol, atol : the Dormand–Prince tolerances.
    prior : log-density at t_max of (n, *shape) → (n,) (default log N(0, I)).

    See the module docstring for the ODE, its variable σ̃ and the error control.
    """
    _check_options(divergence, probe, rtol, atol)
    check_positive_int(max_steps, "max_steps")
    if not isinstance(x, Tensor) or x.ndim < 2 or len(x) == 0:
        raise DataError(f"x must be a tensor (n, *shape) with n ≥ 1, got "
                        f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    T = schedule.T
    t_max = float(T) if t_max is None else float(t_max)
    if not 0 <= t_min < t_max <= T:
        raise KakusanError(f"need 0 ≤ t_min < t_max ≤ T = {T}, got t_min = {t_min:g}, t_max = {t_max:g}")
    n, shape, D = len(x), tuple(x.shape[1:]), x[0].numel()
    in_dtype, device = x.dtype, x.device
    state_dtype = torch.float32 if device.type == "mps" else torch.float64
    exact = divergence == "exact" or (divergence == "auto" and D <= EXACT_MAX_DIM)
    z = None
    if not exact:
        g = make_generator(generator, device)
        if probe == "rademacher":
            z = torch.randint(0, 2, (n, D), generator=g, device=device).to(state_dtype) * 2 - 1
        else:
            z = torch.randn(n, D, generator=g, device=device, dtype=state_dtype)
    s0, s1 = sigma_tilde(schedule, t_min), sigma_tilde(schedule, t_max)

    def field(s: float, y: Tensor) -> Tensor:
        t = _time(schedule, s, t_min, t_max)
        alpha = 1.0 / math.sqrt(1.0 + s * s)
        sigma = s * alpha
        xs = y[:, :D].to(in_dtype).reshape(n, *shape)
        eps, trace = (_exact_trace(denoiser, xs, t, cond) if exact
                      else _hutchinson_trace(denoiser, xs, t, cond, z))
        dx = alpha * (eps.to(state_dtype) - sigma * y[:, :D])
        dl = alpha * (trace.to(state_dtype) - sigma * D)
        return torch.cat([dx, dl[:, None]], dim=1)

    y0 = torch.cat([x.detach().reshape(n, D).to(state_dtype),
                    torch.zeros(n, 1, dtype=state_dtype, device=device)], dim=1)
    y, nfe, steps, rejected = _dopri5(field, s0, s1, y0, rtol, atol, max_steps)
    x_end = y[:, :D].reshape(n, *shape)
    log_prior = (standard_normal_log_prob(x_end) if prior is None
                 else torch.as_tensor(prior(x_end.to(in_dtype))).to(torch.float64).reshape(n))
    delta = y[:, D].to(torch.float64)
    return FlowLikelihood(log_prior + delta, log_prior, delta, x_end, nfe, steps, rejected)


def ode_log_likelihood(denoiser, schedule: Schedule, x: Tensor, cond: Tensor | None = None, *,
                       divergence: str = "auto", rtol: float = 1e-5, atol: float = 1e-5, t_min: float = 0.0,
                       generator: Seed = None, **options) -> Tensor:
    """log p_{t_min}(x) per example, (n,) float64 nats in the network's space, by the probability-flow ODE
    (:func:`probability_flow`, which takes the further ``options``: probe, t_max, prior, max_steps)."""
    return probability_flow(denoiser, schedule, x, cond, divergence=divergence, rtol=rtol, atol=atol, t_min=t_min,
                            generator=generator, **options).log_prob


def ode_nll(model, data: Tensor, cond: Tensor | None = None, *, dequantise: bool = True, generator: Seed = None,
            batch_size: int = 100, divergence: str = "auto", probe: str = "rademacher", rtol: float = 1e-5,
            atol: float = 1e-5, t_min: float = 0.0, guidance: float = 1.0, unit: str | None = None,
            progress: bool | None = None, callback: Callable[[int, Tensor], None] | None = None) -> ODEEstimate:
    """The data set's negative log-likelihood in data space by the probability-flow ODE, mean ± s.e. over examples.

    ``model`` is a :class:`~kakusan.diffusion.model.Diffusion` (or anything with ``denoiser(guidance)``,
    ``schedule``, ``to_model``, ``log_jacobian()`` and ``config.levels``); its denoiser runs without clipping
    x̂_0. Continuous data (levels = 0): nats per example of −log p_data = −(log p_x + log_jacobian). 8-bit data
    (levels = L > 0, values on the grid k/(L−1)): with ``dequantise`` each example becomes (k + u)/L,
    u ~ U[0, 1)^D from ``generator``, and the value is the bound −(log p_data(y) − D log L) (module docstring);
    without, the density at the grid points times the bin volume (a midpoint rule, not a bound). ``unit``:
    "nats" or "bits/dim" (÷ D ln 2; default bits/dim for 8-bit data, else nats). ``callback(done, values)`` runs
    after each batch with the per-example
    values so far; ``progress`` shows a bar (default: on a terminal, for more than one batch).
    """
    check_positive_int(batch_size, "batch_size")
    _check_options(divergence, probe, rtol, atol)
    levels = int(getattr(model.config, "levels", 0) or 0)
    unit = ("bits/dim" if levels else "nats") if unit is None else unit
    if unit not in ("nats", "bits/dim"):
        raise KakusanError(f"unknown unit {unit!r}: choose nats or bits/dim")
    if not isinstance(data, Tensor) or data.ndim < 1 or len(data) == 0:
        raise DataError("data must be a non-empty tensor (n, *data_shape)")
    n = len(data)
    D = data[0].numel()
    if levels:
        k = torch.round(data.to(torch.float64) * (levels - 1))
        if bool(((data.to(torch.float64) * (levels - 1) - k).abs() > 1e-3).any()) or float(k.min()) < 0 \
                or float(k.max()) > levels - 1:
            raise DataError(f"{levels}-level data must lie on the grid k/{levels - 1} in [0, 1]: scale 8-bit "
                            f"images by 1/{levels - 1} (or build the model with levels=0 for continuous data)")
    if cond is not None and hasattr(model, "check_cond"):
        cond = model.check_cond(cond, n)
    # the raw ε̂: a sampler's clipping of x̂_0 would make the field non-smooth (and divide by σ = 0 at the data)
    clip = {"clip_x0": False} if "clip_x0" in inspect.signature(model.denoiser).parameters else {}
    denoiser = model.denoiser(guidance, **clip)
    training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    g = make_generator(generator, data.device)
    values, nfe = [], 0
    show = progress if progress is not None else (n > batch_size and sys.stderr.isatty())
    try:
        with tqdm(total=n, unit="ex", desc="PF-ODE", disable=not show, leave=False) as bar:
            for i in range(0, n, batch_size):
                d = data[i:i + batch_size]
                c = None if cond is None else cond[i:i + batch_size]
                if levels:
                    kb = k[i:i + batch_size]
                    d = ((kb + torch.rand(kb.shape, generator=g, device=data.device, dtype=torch.float64)) / levels
                         if dequantise else kb / (levels - 1))
                x = model.to_model(d)
                flow = probability_flow(denoiser, model.schedule, x, c, divergence=divergence, probe=probe,
                                        rtol=rtol, atol=atol, t_min=t_min, generator=g)
                log_p = flow.log_prob + model.log_jacobian()
                if levels:
                    log_p = log_p - D * math.log(levels)
                values.append(-log_p)
                nfe += flow.nfe
                bar.update(len(d))
                bar.set_postfix(nfe=flow.nfe)
                if callback is not None:
                    callback(min(i + batch_size, n), torch.cat(values))
    finally:
        if hasattr(model, "train"):
            model.train(training)
    nll = torch.cat(values)
    if unit == "bits/dim":
        nll = nll / (D * math.log(2))
    how = ("uniform dequantisation" if dequantise else "grid points, no dequantisation") if levels else "continuous"
    est = Estimate.of_mean(nll, f"PF-ODE ({how}, rtol={rtol:g})", unit)
    return ODEEstimate(est.value, est.stderr, est.n, est.method, est.unit, per_example=nll, nfe=nfe)


__all__ = ["DIVERGENCES", "PROBES", "FlowLikelihood", "ODEEstimate", "ode_log_likelihood", "ode_nll",
           "probability_flow", "sigma_tilde", "standard_normal_log_prob"]

"""Samplers: from x_T ~ N(0, I) to x_0 by a denoiser ε̂(x_t, t), on a grid of the schedule's integer times.

Every sampler has one signature,

    sampler(denoiser, x_T, schedule, steps, generator=None, cond=None, callback=None, **options) -> x_0,

with ``denoiser(x, t, cond) -> ε̂`` (x of shape (n, …); t a (n,) float64 tensor of step indices, on the CPU;
``cond`` passed through untouched), ``schedule`` a :class:`~kakusan.diffusion.process.Schedule` and the grid
``schedule.timesteps(steps)``: t_0 = T > t_1 > … > t_N = 0, N = ``steps`` ≤ T (respacing, Nichol & Dhariwal
2021). Write α_k, σ_k for α(t_k), σ(t_k) (float64; α² + σ² = 1, σ_N = 0, α_N = 1), ᾱ_k = α_k², and for the
prediction made at x_k

    x̂0_k = (x_k − σ_k ε̂(x_k, t_k)) / α_k.

Step k → k+1 is written below for a current point (α_c, σ_c) = (α_k, σ_k) and a next one (α_n, σ_n) =
(α_{k+1}, σ_{k+1}). Every coefficient is computed in float64 (Python floats) and applied to x in its own
dtype. The last step goes to σ = 0 and lands exactly on x̂0 of the last evaluation, in every sampler.
``callback(i, t, x, x0_hat)``, if given, is called after each step: i = 0 … N−1 the step just taken, t the
time t_{i+1} now reached, x the new state, x0_hat the x̂0 made in that step (so it is called ``steps`` times).
The samplers run under ``torch.no_grad``; the result has x_T's shape, dtype and device.

``ddpm`` — ancestral sampling (Ho et al. 2020) on the respaced grid. The respaced chain has
β'_{k+1} = 1 − ᾱ_k / ᾱ_{k+1} (i.e. 1 − ᾱ_c/ᾱ_n: the step's own β, Nichol & Dhariwal), and the reverse step is the
forward posterior q(x_n | x_c, x_0) at x_0 = x̂0:

    μ̃ = α_n β' / σ_c² · x̂0 + (α_c/α_n) σ_n² / σ_c² · x_c  =  (α_n/α_c) (x_c − β'/σ_c · ε̂),
    β̃ = σ_n² / σ_c² · β',      x_n = μ̃ + √v z,   z ~ N(0, I) from ``generator``,

with v = β̃ (``variance="small"``, the default: exact when x_0 is a point) or v = β' (``"large"``: exact when x_0 ~
N(0, I)). The last step (σ_n = 0, β' = σ_c²) has μ̃ = x̂0 and adds no noise.

``ddim`` — Song et al. 2021 with ``eta`` η ∈ [0, 1]:

    σ_η = η √(σ_n²/σ_c² · (1 − ᾱ_c/ᾱ_n)) = η √β̃,
    x_n = α_n x̂0 + √(σ_n² − σ_η²) ε̂ + σ_η z.

η = 0 (the default) is deterministic: the exact first-order solver of the probability-flow ODE in
(x/α, σ/α) (DPM-Solver-1). η = 1 gives σ_η² = β̃ and is the same chain as ``ddpm`` with the small variance (with the
same generator it draws the same noise and gives the same samples).

``dpm++2m`` — DPM-Solver++(2M) (Lu et al. 2022), multistep second order in the data prediction, with the
half log-SNR λ = log(α/σ) (λ_N = +∞). With h_{k+1} = λ_{k+1} − λ_k (the step's length), r = h_k / h_{k+1} (the
previous step's over this one's) and

    D = (1 + 1/(2r)) x̂0_k − 1/(2r) x̂0_{k−1},
    x_{k+1} = (σ_{k+1}/σ_k) x_k − α_{k+1} (e^{−h_{k+1}} − 1) D.

The first step has no x̂0_{k−1} and uses D = x̂0_k (first order, = DDIM); the final step to σ = 0 (h = ∞) is
first order too, x_N = x̂0_{N−1}. One evaluation per step.

``dpm++2m-sde`` — SDE-DPM-Solver++(2M) (Lu et al. 2022, §5 and appendix; diffusers' "sde-dpmsolver++", the
"DPM++ 2M SDE" of image tools): the same D, integrated along the reverse SDE instead of the ODE,

    x_{k+1} = (σ_{k+1}/σ_k) e^{−h} x_k + α_{k+1} (1 − e^{−2h}) D + σ_{k+1} √(1 − e^{−2h}) z,   h = h_{k+1}.

With D = x̂0_k (its first step) this *is* DDPM's ancestral step with the small variance: e^{−h} = α_c σ_n /
(σ_c α_n), so (σ_n/σ_c) e^{−h} = (α_c/α_n) σ_n²/σ_c², α_n (1 − e^{−2h}) = α_n β'/σ_c² and σ_n² (1 − e^{−2h}) =
β̃ — the posterior q(x_n | x_c, x̂0). Fresh noise at every step but the last (to σ = 0: x_N = x̂0, no noise);
one evaluation per step. Like DDPM, the noise washes out part of a learned score's error, which the ODE solvers
carry to the end: on the twice-trained MNIST model its FD at 20 steps is DDPM-1000's within the error, the ODE
solvers' is not (benchmarks/results_diffusion_samplers_r2.md). On Gaussian data, where the law of x_0 is exact
(tests/diffusion/test_samplers.py), its variance error falls as N^−1.4 … N^−1.9 between N = 250 and 1000 against
DDPM's ≈ N^−0.9, and at N = T it is 16–30× smaller (DDPM keeps β̃'s bias, exact only for a point x_0).

``heun`` — Heun's second-order method (Karras et al. 2022, EDM) on the probability-flow ODE in EDM's
variables x̃ = x/α, σ̃ = σ/α, where it reads dx̃/dσ̃ = ε̂(α x̃, t(σ̃)):

    d = ε̂(x_c, t_c),   x̃' = x̃_c + (σ̃_n − σ̃_c) d                       (Euler: the DDIM step),
    d' = ε̂(α_n x̃', t_n),   x̃_n = x̃_c + (σ̃_n − σ̃_c) (d + d') / 2           (trapezoid corrector),

and x_n = α_n x̃_n. The grid's σ̃ are those of integer times, so t(σ̃) is the grid time itself (any other σ̃
would be timed by ``schedule.t_from_log_snr(−2 log σ̃)``). The corrector is skipped on the final step to
σ̃ = 0 (Euler: x_N = x̂0), so a run costs 2N − 1 evaluations (:func:`nfe`).

Orders, measured in tests/diffusion/test_samplers.py with the exact Gaussian-mixture denoiser on the linear
schedule: the integration error (the state at t = 200 against a 1000-step reference) falls as N^−1 for DDIM
and N^−2 for DPM-Solver++(2M) and Heun. The last step, to σ = 0 from t_{N−1} = T/N, errs by O(σ̃(T/N)²), and
on a grid uniform in t both schedules have σ̃(t)² ∝ t near 0, so the error of x_0 carries an O(1/N) term: over
20–250 steps Heun's x_0 error is that final Euler jump's (≈ N^−1.5), DPM-Solver++(2M)'s still falls as
≈ N^−2 (its earlier steps' errors largely cancel the jump's), DDIM's as N^−1; as N → ∞ all are first order.
The cosine schedule's clipped last β gives α_T ≈ 5·10⁻⁵, σ̃_T ≈ 2·10⁴: a trapezoid over its first step (σ̃
from 2·10⁴ to O(1)) was off by O(1) in x_0 at 50 steps (a trained MNIST model: FD 4600, samples of noise). So,
as EDM bounds σ by σ_max = 80, Heun takes the Euler (DDIM) step from any σ̃ above 80 and the trapezoid below.

Every sampler takes ``t_start`` (keyword): the grid then runs from that time, not T, down to 0, and x_T is the
state at t_start — SDEdit and inpainting start part-way (:mod:`kakusan.latent.edit`). A ``callback`` may change
``x`` in place (inpainting puts the known region back after every step).

API: ``ddpm``, ``ddim``, ``dpm_pp_2m``, ``dpm_pp_2m_sde``, ``heun``; ``SAMPLERS`` (name → function), ``get_sampler(name)``,
``nfe(name, steps)``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from kakusan.diffusion.process import Schedule
from kakusan.errors import DataError, KakusanError, check_positive_int
from kakusan.runtime import make_generator

Tensor = torch.Tensor
Denoiser = Callable[..., Tensor]
Callback = Callable[[int, float, Tensor, Tensor], None]
VARIANCES = ("small", "large")


# -- shared pieces -------------------------------------------------------------------------------------------


def _grid(schedule: Schedule, steps: int, t_start: float | None = None) -> tuple[list[float], list[float], list[float]]:
    """Grid times t_0 = T (or ``t_start``) … t_N = 0 and α, σ there, as Python floats (float64); checks ``steps``."""
    if not isinstance(schedule, Schedule):
        raise KakusanError(f"schedule must be a kakusan.diffusion.process.Schedule, got {type(schedule).__name__}")
    ts = schedule.timesteps(steps, t_start)  # one-line errors for steps < 1 and steps > T
    alpha, sigma = schedule.alpha_sigma(ts)
    return ts.tolist(), alpha.tolist(), sigma.tolist()


def _start(x_T: Tensor) -> Tensor:
    if not isinstance(x_T, Tensor) or not x_T.is_floating_point() or x_T.ndim < 1:
        what = f"{x_T.dtype} {tuple(x_T.shape)}" if isinstance(x_T, Tensor) else type(x_T).__name__
        raise DataError(f"x_T must be a floating-point tensor of shape (n, …), got {what}")
    return x_T.clone()


def _eps(denoiser: Denoiser, x: Tensor, t: float, cond) -> Tensor:
    """ε̂(x, t) with t given to the denoiser as a (n,) float64 tensor."""
    out = denoiser(x, torch.full((len(x),), t, dtype=torch.float64), cond)
    if not isinstance(out, Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise DataError(f"the denoiser must return ε̂ of x's shape {tuple(x.shape)}, got {got}")
    return out.to(x.dtype)


def _noise(x: Tensor, generator: torch.Generator) -> Tensor:
    """z ~ N(0, I) of x's shape, dtype and device (the one place a sampler draws noise)."""
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _x0(x: Tensor, eps: Tensor, alpha: float, sigma: float) -> Tensor:
    return (x - sigma * eps) / alpha


# -- the samplers ----------------------------------------------------------------------------------------------


@torch.no_grad()
def ddpm(denoiser: Denoiser, x_T: Tensor, schedule: Schedule, steps: int, generator=None, cond=None,
         callback: Callback | None = None, *, variance: str = "small", t_start: float | None = None) -> Tensor:
    """Ancestral DDPM sampling on the respaced grid; ``variance`` "small" (β̃, default) or "large" (β')."""
    if variance not in VARIANCES:
        raise KakusanError(f"unknown DDPM variance {variance!r}: choose {' or '.join(VARIANCES)}")
    ts, al, si = _grid(schedule, steps, t_start)
    x = _start(x_T)
    g = make_generator(generator, x.device)
    for i in range(steps):
        ac, sc, an, sn = al[i], si[i], al[i + 1], si[i + 1]
        eps = _eps(denoiser, x, ts[i], cond)
        x0 = _x0(x, eps, ac, sc)
        if sn == 0.0:
            x = x0
        else:
            beta = -math.expm1(2.0 * (math.log(ac) - math.log(an)))  # β' = 1 − ᾱ_c/ᾱ_n
            var = beta * sn**2 / sc**2 if variance == "small" else beta
            x = (an / ac) * x - (an / ac * beta / sc) * eps + math.sqrt(var) * _noise(x, g)
        if callback is not None:
            callback(i, ts[i + 1], x, x0)
    return x


@torch.no_grad()
def ddim(denoiser: Denoiser, x_T: Tensor, schedule: Schedule, steps: int, generator=None, cond=None,
         callback: Callback | None = None, *, eta: float = 0.0, t_start: float | None = None) -> Tensor:
    """DDIM; ``eta`` = 0 (default) deterministic, 1 the DDPM chain with variance β̃."""
    eta = float(eta)
    if not 0.0 <= eta <= 1.0:
        raise KakusanError(f"DDIM's eta must lie in [0, 1], got {eta:g}")
    ts, al, si = _grid(schedule, steps, t_start)
    x = _start(x_T)
    g = make_generator(generator, x.device) if eta > 0 else None
    for i in range(steps):
        ac, sc, an, sn = al[i], si[i], al[i + 1], si[i + 1]
        eps = _eps(denoiser, x, ts[i], cond)
        x0 = _x0(x, eps, ac, sc)
        if sn == 0.0:
            x = x0
        else:
            s_eta = eta * math.sqrt(sn**2 / sc**2 * -math.expm1(2.0 * (math.log(ac) - math.log(an))))
            c = math.sqrt(max(sn**2 - s_eta**2, 0.0))
            # α_n x̂0 + c ε̂ = (α_n/α_c) x + (c − α_n σ_c/α_c) ε̂
            x = (an / ac) * x + (c - an * sc / ac) * eps
            if s_eta > 0:
                x = x + s_eta * _noise(x, g)
        if callback is not None:
            callback(i, ts[i + 1], x, x0)
    return x


@torch.no_grad()
def dpm_pp_2m(denoiser: Denoiser, x_T: Tensor, schedule: Schedule, steps: int, generator=None, cond=None,
              callback: Callback | None = None, *, t_start: float | None = None) -> Tensor:
    """DPM-Solver++(2M) in λ = log(α/σ); first order on the first step and on the final step to σ = 0."""
    return _dpm_pp_2m(denoiser, x_T, schedule, steps, None, cond, callback, t_start, sde=False)


@torch.no_grad()
def dpm_pp_2m_sde(denoiser: Denoiser, x_T: Tensor, schedule: Schedule, steps: int, generator=None, cond=None,
                  callback: Callback | None = None, *, t_start: float | None = None) -> Tensor:
    """SDE-DPM-Solver++(2M): the same multistep D, on the reverse SDE (fresh noise every step but the last); its
    first-order form is DDPM's ancestral step with the small variance."""
    return _dpm_pp_2m(denoiser, x_T, schedule, steps, generator, cond, callback, t_start, sde=True)


def _dpm_pp_2m(denoiser, x_T, schedule, steps, generator, cond, callback, t_start, *, sde: bool) -> Tensor:
    ts, al, si = _grid(schedule, steps, t_start)
    lam = [math.log(a / s) if s > 0 else math.inf for a, s in zip(al, si)]
    x = _start(x_T)
    g = make_generator(generator, x.device) if sde else None
    x0_prev, h_prev = None, None
    for i in range(steps):
        ac, sc, an, sn = al[i], si[i], al[i + 1], si[i + 1]
        eps = _eps(denoiser, x, ts[i], cond)
        x0 = _x0(x, eps, ac, sc)
        if sn == 0.0:
            x = x0
        else:
            h = lam[i + 1] - lam[i]
            if x0_prev is None:
                d = x0
            else:
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            if sde:  # with D = x̂0 this is DDPM's step with variance β̃ (module docstring)
                e2 = -math.expm1(-2.0 * h)
                x = (sn / sc * math.exp(-h)) * x + (an * e2) * d + (sn * math.sqrt(e2)) * _noise(x, g)
            else:
                x = (sn / sc) * x - (an * math.expm1(-h)) * d
            x0_prev, h_prev = x0, h
        if callback is not None:
            callback(i, ts[i + 1], x, x0)
    return x


SIGMA_MAX = 80.0  # EDM's σ_max: Heun's trapezoid is used only on steps that start at σ̃ ≤ this


@torch.no_grad()
def heun(denoiser: Denoiser, x_T: Tensor, schedule: Schedule, steps: int, generator=None, cond=None,
         callback: Callback | None = None, sigma_max: float = SIGMA_MAX, *, t_start: float | None = None) -> Tensor:
    """EDM's Heun method on dx̃/dσ̃ = ε̂ (x̃ = x/α, σ̃ = σ/α); Euler on the final step to σ̃ = 0, and on steps that
    start above ``sigma_max`` (EDM's σ_max = 80): the cosine schedule starts at σ̃_T ≈ 2·10⁴, where the first
    step spans four decades of σ̃ and the trapezoid's average of ε̂ at its two ends, times that span, is wrong by
    O(10⁴) (the linear schedule starts at 156). Euler there is the exact DDIM step."""
    ts, al, si = _grid(schedule, steps, t_start)
    x = _start(x_T)
    for i in range(steps):
        ac, sc, an, sn = al[i], si[i], al[i + 1], si[i + 1]
        d = _eps(denoiser, x, ts[i], cond)
        x0 = _x0(x, d, ac, sc)
        if sn == 0.0:
            x = x0
        else:
            # x_n = α_n (x̃_c + (σ̃_n − σ̃_c) · slope) = (α_n/α_c) x_c + α_n (σ̃_n − σ̃_c) · slope
            a, b = an / ac, an * (sn / an - sc / ac)
            x_euler = a * x + b * d
            if sc / ac > sigma_max:
                x = x_euler
            else:
                d2 = _eps(denoiser, x_euler, ts[i + 1], cond)
                x = a * x + (b / 2) * (d + d2)
        if callback is not None:
            callback(i, ts[i + 1], x, x0)
    return x


SAMPLERS: dict[str, Callable[..., Tensor]] = {"ddpm": ddpm, "ddim": ddim, "dpm++2m": dpm_pp_2m,
                                              "dpm++2m-sde": dpm_pp_2m_sde, "heun": heun}


def get_sampler(name: str) -> Callable[..., Tensor]:
    """The sampler called ``name`` (a key of :data:`SAMPLERS`); a one-line error listing them otherwise."""
    if not isinstance(name, str) or name not in SAMPLERS:
        raise KakusanError(f"unknown sampler {name!r}: choose {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def nfe(name: str, steps: int, schedule: Schedule | None = None) -> int:
    """Denoiser evaluations a run of ``steps`` steps costs (classifier-free guidance doubles each one's batch):
    ``steps`` for ddpm, ddim, dpm++2m and dpm++2m-sde; for heun 2·steps − 1 less one for each step that starts above σ_max
    (counted on ``schedule``'s grid; without a schedule, the upper bound 2·steps − 1)."""
    get_sampler(name)
    check_positive_int(steps, "steps")
    if name != "heun":
        return steps
    if schedule is None:
        return 2 * steps - 1
    _, al, si = _grid(schedule, steps)
    euler = sum(1 for i in range(steps - 1) if si[i] / al[i] > SIGMA_MAX)
    return 2 * steps - 1 - euler


__all__ = ["ddpm", "ddim", "dpm_pp_2m", "dpm_pp_2m_sde", "heun", "SAMPLERS", "get_sampler", "nfe", "VARIANCES"]

"""Temperature ladders for replica exchange: checked, geometric, linear, adapted to equal swap acceptance;
log Z along them. Every ladder in the library comes from here.

Between two temperatures whose energy distributions are Gaussian with the same width σ_E, the
swap acceptance is A = erfc(Δβ σ_E / 2) (mean energy gap σ_E² Δβ, from d⟨E⟩/dβ = −Var E). So

    d_t = 2 erfc⁻¹(A_t) ≈ Δβ_t σ_E(β_t)

measures each gap in units of energy fluctuations (its "thermodynamic length"), and a ladder with
equal d_t — equal acceptance — spreads the temperatures where the energy fluctuates. The adaptive
ladder measures A_t, converts to d_t, assumes the length density d_t/Δβ_t constant inside each
gap, and re-places the inner temperatures at equal length (Rathore, Chopra & de Pablo, J. Chem.
Phys. 122, 024111 (2005); Katzgraber et al., J. Stat. Mech. P03018 (2006) for the
round-trip-optimised alternative). Each update is damped, keeps β_0 and β_{R−1} fixed and the
ladder increasing, and lets no gap grow or shrink by more than a factor ``max_ratio``: a gap
only widens where its acceptance was measured above the target, by a bounded factor, so no
update can open a gap with no swaps.

A run over a ladder also gives the free energy along it: log Z(β_t) − log Z(β_0) by thermodynamic
integration of ⟨E⟩_β or by Bennett's acceptance ratio between neighbours (:func:`ladder_log_z`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple

import torch
from scipy import optimize, special

from kakusan.errors import KakusanError, check_positive_int
from kakusan.mcmc import diagnostics
from kakusan.mcmc.base import F64
from kakusan.runtime import Seed, make_generator

if TYPE_CHECKING:  # tempering imports check_ladder from here
    from kakusan.mcmc.tempering import ReplicaExchange, TemperingState

Tensor = torch.Tensor


def check_ladder(betas: Tensor | Sequence[float]) -> Tensor:
    """β as an (R,) float64 CPU tensor, R ≥ 2, finite, ≥ 0 and strictly increasing; refuses anything else."""
    b = torch.as_tensor(betas, dtype=F64).detach().cpu().reshape(-1).clone()
    if len(b) < 2:
        raise KakusanError(f"replica exchange needs at least 2 temperatures, got {len(b)}")
    if not bool(torch.isfinite(b).all()) or bool((b < 0).any()) or not bool((b[1:] > b[:-1]).all()):
        shown = [round(v, 4) for v in b.tolist()]
        raise KakusanError(f"betas must be finite, ≥ 0 and strictly increasing, got {shown}")
    return b


def geometric_ladder(beta_min: float, beta_max: float, n_replicas: int) -> Tensor:
    """β_t = β_min (β_max/β_min)^{t/(R−1)}, t = 0 … R−1: (R,) float64 (constant ratio, 0 < β_min < β_max)."""
    if not 0 < beta_min < beta_max or not math.isfinite(beta_max):
        raise KakusanError(f"a geometric ladder needs 0 < beta_min < beta_max < inf, got {beta_min}, {beta_max}")
    check_positive_int(n_replicas, "n_replicas", 2)
    t = torch.arange(n_replicas, dtype=F64) / (n_replicas - 1)
    b = beta_min * (beta_max / beta_min) ** t
    b[0], b[-1] = beta_min, beta_max
    return b


def linear_ladder(beta_min: float, beta_max: float, n_replicas: int) -> Tensor:
    """β_t evenly spaced from β_min to β_max, t = 0 … R−1: (R,) float64 (0 ≤ β_min < β_max; β_min = 0 allowed)."""
    if not 0 <= beta_min < beta_max or not math.isfinite(beta_max):
        raise KakusanError(f"a linear ladder needs 0 ≤ beta_min < beta_max < inf, got {beta_min}, {beta_max}")
    check_positive_int(n_replicas, "n_replicas", 2)
    return torch.linspace(beta_min, beta_max, n_replicas, dtype=F64)


def gap_lengths(acceptance: Tensor, *, a_min: float = 1e-3, a_max: float = 0.999) -> Tensor:
    """d_t = 2 erfc⁻¹(A_t), the gap t, t+1 in units of σ_E, with A_t clipped to [a_min, a_max]: (R−1,)."""
    a = torch.as_tensor(acceptance, dtype=F64).clamp(a_min, a_max)
    return 2.0 * torch.from_numpy(special.erfcinv(a.numpy()))


def equalise_acceptance(
    betas: Tensor, acceptance: Tensor, *, damping: float = 0.5, max_ratio: float = 2.0
) -> Tensor:
    """One update of the ladder toward equal swap acceptance: (R,) -> (R,).

    Parameters
    ----------
    betas : (R,) increasing ladder.
    acceptance : (R−1,) measured swap acceptance of each pair t, t+1.
    damping : γ ∈ (0, 1]; the new gaps are (1 − γ)·old + γ·target.
    max_ratio : no gap grows or shrinks by more than this factor (> 1).

    Returns
    -------
    (R,) float64 with the same β_0 and β_{R−1}, strictly increasing.

    Notes
    -----
    The target places β_t at equal cumulative length Σ d (piecewise linear in β inside each
    gap, :func:`gap_lengths`); damping and the per-gap bound are applied to the gap widths, and the
    widths are then rescaled (by bisection on one factor, within the bounds) to span β_0 … β_{R−1}.
    """
    b = check_ladder(betas)
    acc = torch.as_tensor(acceptance, dtype=F64).reshape(-1)
    if len(acc) != len(b) - 1 or not bool(torch.isfinite(acc).all()):
        raise KakusanError(f"acceptance must be {len(b) - 1} finite numbers (one per pair), got {acc.tolist()}")
    if not 0 < damping <= 1 or not max_ratio > 1:
        raise KakusanError(f"need 0 < damping ≤ 1 and max_ratio > 1, got {damping}, {max_ratio}")
    cum = torch.cat([torch.zeros(1, dtype=F64), torch.cumsum(gap_lengths(acc), 0)])
    goal = torch.linspace(0.0, float(cum[-1]), len(b), dtype=F64)
    target = _interp(goal, cum, b)
    old_w, new_w = b.diff(), target.diff()
    w = (1.0 - damping) * old_w + damping * new_w
    w = _fit_widths(w, old_w / max_ratio, old_w * max_ratio, float(b[-1] - b[0]))
    out = b[0] + torch.cat([torch.zeros(1, dtype=F64), torch.cumsum(w, 0)])
    out[-1] = b[-1]
    return out


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear interpolation of (xp, fp) at x; xp increasing."""
    i = torch.searchsorted(xp, x, right=True).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    return f0 + (f1 - f0) * ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)


def _fit_widths(w: Tensor, lo: Tensor, hi: Tensor, total: float) -> Tensor:
    """clip(c·w, lo, hi) with the one factor c that makes the widths sum to ``total`` (bisection)."""
    c_lo, c_hi = 0.0, 1.0
    while float(torch.minimum(torch.maximum(c_hi * w, lo), hi).sum()) < total:
        c_hi *= 2.0
    for _ in range(100):
        c = 0.5 * (c_lo + c_hi)
        if float(torch.minimum(torch.maximum(c * w, lo), hi).sum()) < total:
            c_lo = c
        else:
            c_hi = c
    return torch.minimum(torch.maximum(c_hi * w, lo), hi)


class LadderHistory(NamedTuple):
    """The adaptation: ``betas`` (rounds + 1, R), the ladder before each round and after the last;
    ``acceptance`` (rounds, R−1), the swap acceptance measured in each round."""

    betas: Tensor
    acceptance: Tensor


def adapt_ladder(
    pt: ReplicaExchange,
    state: TemperingState,
    *,
    rounds: int = 10,
    steps: int = 500,
    growth: float = 1.0,
    damping: float = 0.5,
    max_ratio: float = 2.0,
    generator: Seed = None,
) -> tuple[TemperingState, LadderHistory]:
    """Iterate: run ``steps`` replica-exchange steps, measure A_t, move the ladder by :func:`equalise_acceptance`.

    ``steps`` is multiplied by ``growth`` after each round (longer rounds, less noise). Returns the
    state on the final ladder (statistics reset) and the :class:`LadderHistory`. The chains keep
    running throughout, so the adaptation doubles as burn-in.
    """
    g = make_generator(generator, device=state.chains.x.device)
    ladders, accs = [state.betas.clone()], []
    n = float(steps)
    for _ in range(rounds):
        state = pt.reset_statistics(state)
        for _ in range(max(2, int(round(n)))):
            state, _ = pt.step(state, g)
        acc = pt.stats(state).acceptance
        state = pt.set_ladder(state, equalise_acceptance(state.betas, acc, damping=damping, max_ratio=max_ratio))
        ladders.append(state.betas.clone())
        accs.append(acc)
        n *= growth
    empty = torch.empty(0, len(state.betas) - 1, dtype=F64)
    return state, LadderHistory(torch.stack(ladders), torch.stack(accs) if accs else empty)


# ---------------------------------------------------------------- log Z along the ladder


class LadderLogZ(NamedTuple):
    """log Z(β_t) at every temperature of a ladder and its standard error (nats).

    ``log_z`` (R,) with ``log_z[0]`` the given log Z(β_0); ``error`` (R,) the standard error of
    each (0 at β_0); ``method`` "bar" or "ti".
    """

    betas: Tensor
    log_z: Tensor
    error: Tensor
    method: str


def ladder_log_z(
    betas: Tensor, energy: Tensor, *, log_z0: float, method: Literal["bar", "ti"] = "bar"
) -> LadderLogZ:
    """log Z(β_t) = log Z(β_0) + Σ_{k<t} log(Z_{k+1}/Z_k) from energies sampled at each β_t.

    Parameters
    ----------
    betas : (R,) increasing ladder.
    energy : (n_steps, R) or (n_steps, n_chains, R) energies E(x) at each temperature (e.g.
        ``TemperingTrace.energy``); chains are independent, steps may be autocorrelated.
    log_z0 : log Z(β_0), e.g. N log 2 for an Ising model when β_0 = 0.
    method : ``"bar"`` — Bennett's acceptance ratio between neighbours (:func:`bar`); ``"ti"`` —
        thermodynamic integration d log Z/dβ = −⟨E⟩_β with the Euler–Maclaurin end correction
        (:func:`thermodynamic_integration`).

    Notes
    -----
    Errors are τ_int-corrected Monte Carlo errors of the whole sum along the ladder, so they count that
    neighbouring pairs share samples and that swaps correlate the temperatures; TI adds an estimate of
    its discretisation error. Both are 1 standard error and calibrated (issue 16,
    ``benchmarks/results_calibration.md``): over 100 seeds of 4 systems on a 12-spin SK glass with a 10-β ladder
    to β = 2 and 3, z-scores against enumeration have sd 0.91–1.11 and ±2 s.e. coverage 95–97 %.
    """
    b = check_ladder(betas)
    e = _energy_table(energy, len(b))
    if method == "ti":
        return thermodynamic_integration(b, e, log_z0=log_z0)
    if method != "bar":
        raise KakusanError(f"method must be 'bar' or 'ti', got {method!r}")
    pairs = [_bar_solve(float(b[k + 1] - b[k]), e[..., k], e[..., k + 1]) for k in range(len(b) - 1)]
    delta = torch.tensor([0.0] + [p.delta for p in pairs], dtype=F64)
    return LadderLogZ(b, log_z0 + torch.cumsum(delta, 0), _bar_ladder_error(pairs), "bar")


def _energy_table(energy: Tensor, n_replicas: int) -> Tensor:
    """Energies as a float64 CPU (n_steps, n_chains, R) tensor; (n_steps, R) is one chain."""
    e = torch.as_tensor(energy, dtype=F64).cpu()
    if e.ndim == 2:
        e = e[:, None, :]
    if e.ndim != 3 or e.shape[-1] != n_replicas or e.shape[0] < 4:
        raise KakusanError(f"energy must be (n_steps ≥ 4, [n_chains,] R = {n_replicas}), got {tuple(e.shape)}")
    return e


class _BarPair(NamedTuple):
    """BAR between neighbours: log(Z_hi/Z_lo), the Fermi terms of each side (n_steps, n_chains), the slope."""

    delta: float
    psi_lo: Tensor
    psi_hi: Tensor
    slope: float


def _bar_solve(delta_beta: float, energy_lo: Tensor, energy_hi: Tensor) -> _BarPair:
    """Solve Bennett's equation for Δf by Brent's method (the balance is increasing in Δf)."""
    wf = delta_beta * torch.as_tensor(energy_lo, dtype=F64)
    wr = -delta_beta * torch.as_tensor(energy_hi, dtype=F64)
    nf, nr = wf.numel(), wr.numel()
    m = math.log(nf / nr)
    wf_np, wr_np = wf.reshape(-1).numpy(), wr.reshape(-1).numpy()

    def balance(df: float) -> float:
        return float(special.expit(-(m + wf_np - df)).sum() - special.expit(-(-m + wr_np + df)).sum())

    lo = float(min(wf_np.min(), -wr_np.max())) - 50.0
    hi = float(max(wf_np.max(), -wr_np.min())) + 50.0
    df = optimize.brentq(balance, lo, hi, xtol=1e-14, rtol=1e-14)
    pf, pr = torch.sigmoid(-(m + wf - df)), torch.sigmoid(-(-m + wr + df))
    slope = nf * float((pf * (1 - pf)).mean()) + nr * float((pr * (1 - pr)).mean())
    return _BarPair(-df, pf, pr, slope)


def bar(delta_beta: float, energy_lo: Tensor, energy_hi: Tensor) -> tuple[float, float]:
    """log(Z_hi / Z_lo) between β and β + Δβ by Bennett's acceptance ratio, and its standard error.

    With works w_F = Δβ E on samples at β (``energy_lo``, (n_steps, n_chains)) and w_R = −Δβ E
    on samples at β + Δβ (``energy_hi``), Δf = −log(Z_hi/Z_lo) solves
    Σ_F σ(−(M + w_F − Δf)) = Σ_R σ(−(−M + w_R + Δf)), M = log(n_F/n_R) (Bennett 1976; Shirts
    et al., PRL 91, 140601 (2003)). The error is the delta method with τ_int-corrected errors
    of both sides' means (:func:`~kakusan.mcmc.diagnostics.mcse`).
    """
    p = _bar_solve(delta_beta, energy_lo, energy_hi)
    var = (p.psi_lo.numel() * _mcse(p.psi_lo)) ** 2 + (p.psi_hi.numel() * _mcse(p.psi_hi)) ** 2
    return p.delta, math.sqrt(var) / p.slope


def _bar_ladder_error(pairs: list[_BarPair]) -> Tensor:
    """Standard error of each cumulative Σ_{k<t} log(Z_{k+1}/Z_k) by the delta method on the whole sum.

    The error of pair k is (n ψ̄_lo − n ψ̄_hi)/slope; summed over pairs it is the mean over steps and chains
    of one observable G_t = Σ_{k<t} n (ψ_lo,k − ψ_hi,k)/slope_k, whose τ_int-corrected error counts that
    the samples at β_t enter two pairs and that replica exchange correlates neighbouring temperatures.
    """
    total = torch.zeros_like(pairs[0].psi_lo)
    errors = [0.0]
    for p in pairs:
        total = total + (p.psi_lo * p.psi_lo.numel() - p.psi_hi * p.psi_hi.numel()) / p.slope
        errors.append(_mcse(total))
    return torch.tensor(errors, dtype=F64)


def thermodynamic_integration(betas: Tensor, energy: Tensor, *, log_z0: float) -> LadderLogZ:
    """log Z(β_t) = log Z(β_0) − ∫_{β_0}^{β_t} ⟨E⟩_β dβ by the trapezoid rule with the Euler–Maclaurin correction.

    The derivatives of ⟨E⟩ are cumulants of E: d⟨E⟩/dβ = −κ₂, d³⟨E⟩/dβ³ = −κ₄. On each interval
    [a, b] of width h, ∫ ⟨E⟩ dβ ≈ h(⟨E⟩_a + ⟨E⟩_b)/2 + h²(κ₂(b) − κ₂(a))/12 (exact for cubic ⟨E⟩);
    the next term, h⁴(κ₄(a) − κ₄(b))/720, estimates what remains. ``energy`` is
    (n_steps, [n_chains,] R); the error adds the statistical error of the trapezoid sum (taken as one
    observable per step and chain, τ_int-corrected) and the summed sizes of that next term in quadrature.
    """
    b = check_ladder(betas)
    e = _energy_table(energy, len(b))  # (n_steps, n_chains, R)
    mean = e.mean((0, 1))
    centred = e.reshape(-1, e.shape[-1]) - mean
    k2 = centred.pow(2).mean(0)
    k4 = centred.pow(4).mean(0) - 3.0 * k2**2
    h = b.diff()
    trap = 0.5 * h * (mean[1:] + mean[:-1]) + h**2 * k2.diff() / 12.0
    rest = torch.cumsum((h**4 * k4.diff() / 720.0).abs(), 0)
    # statistical error: the trapezoid sum as one observable per step and chain (temperatures correlate)
    partial = torch.cumsum(0.5 * h * (e[..., 1:] + e[..., :-1]), -1)  # (n_steps, n_chains, R − 1)
    stat = torch.tensor([_mcse(partial[..., k]) for k in range(len(h))], dtype=F64)
    zero = torch.zeros(1, dtype=F64)
    log_z = log_z0 - torch.cat([zero, torch.cumsum(trap, 0)])
    return LadderLogZ(b, log_z, torch.cat([zero, (stat**2 + rest**2).sqrt()]), "ti")


def _mcse(v: Tensor) -> float:
    """Monte Carlo error of the mean of a (n_steps, n_chains) trace; plain √(var/n) for short traces."""
    if v.shape[0] < 4 or float(v.var()) == 0.0:
        return float(v.std() / math.sqrt(max(v.numel(), 1))) if v.numel() > 1 else 0.0
    return float(diagnostics.mcse(v))

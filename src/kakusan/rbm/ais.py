"""Annealed importance sampling of log Z for RBMs, forward and reverse, with error bars and a weight-tail diagnostic.

Salakhutdinov & Murray (ICML 2008, §3–4) estimate the partition function Z_B of an RBM q_B from a
base-rate model q_A (W = 0, visible marginals of the data, Z_A known) through the path

    p*_β(v, h) = q*_A(v)^{1−β} exp(−β E_B(v, h)),      0 = β_0 < β_1 < … < β_K = 1,

whose marginal −log p*_β(v) = (1−β) E_A(v) + β E_v(v) − Σ_j φ(β a_j(v)) is closed-form. Starting from
exact draws v_1 ~ p_0 and moving each run by one block-Gibbs sweep T_k that leaves p_k invariant, the
importance weight

    w = Π_{k=1}^{K} p*_k(v_k) / p*_{k−1}(v_k)       satisfies       E[w] = Z_K / Z_0,

so Ẑ_B = Z_0 · mean(w) with Z_0 = Z_A · 2^{n_hidden}. Its logarithm is biased low (Jensen): E[log Ẑ] ≤ log Z,
so a test log-likelihood computed with it is optimistic *on average*. *Reverse* AIS (Burda, Grosse &
Salakhutdinov, AISTATS 2015) runs the same path backwards from samples of the model, estimating Z_0 / Z_K;
with exact model samples its log Ẑ is biased *high* on average. These are bounds in expectation only: a single
forward estimate can land above log Z and a single reverse one below it (by a few standard errors; both were
seen in one run), so the pair is not a bracket of log Z for any one run — with approximate (Gibbs) start
samples not even in expectation. Runs are vectorised; the weights accumulate in float64; log mean w, its
standard error (the delta method, se(mean w) / mean w, 1 s.e.) and the effective sample size come from the
shared :func:`kakusan.evaluate.log_mean_exp`, and the weights' tail diagnostic (the largest weight's share,
Pareto k̂) from :func:`kakusan.evaluate.tails.weight_tail`: when it warns, the standard error may understate
the real error.
"""

from __future__ import annotations

import math
import sys
from typing import Literal, NamedTuple

import torch
from tqdm.auto import tqdm

from kakusan.errors import KakusanError, check_positive_int
from kakusan.evaluate import Estimate, log_mean_exp
from kakusan.evaluate.tails import WeightTail, weight_tail
from kakusan.rbm.base import RBM
from kakusan.rbm.base_rate import BinaryBase, GaussianBase, VisibleBase
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
F64 = torch.float64


class AISResult(NamedTuple):
    """An AIS estimate of log Z.

    Attributes
    ----------
    log_z : log Ẑ in nats.
    log_z_stderr : 1 standard error of log Ẑ (delta method over the runs; see :attr:`tail` for when it understates).
    log_w : (n_runs,) float64 log importance weights (forward: log Z_K/Z_0 per run; reverse: log Z_0/Z_K).
    log_z_base : log Z_0 = log Z_A + n_hidden log 2.
    ess : effective sample size (Σw)² / Σw² of the weights, between 1 and n_runs.
    direction : ``"forward"`` (log Ẑ biased low) or ``"reverse"`` (biased high from exact start samples).
    n_betas : K + 1, the number of inverse temperatures.
    tail : :class:`~kakusan.evaluate.tails.WeightTail` of the weights (largest share, Pareto k̂).
    states : forward only: (n_runs, n_visible) the runs' last visible states, each drawn at the last β before 1
        (approximate model samples: their law is the annealing's, which the weights correct and the states alone
        do not; ``rbm evaluate`` starts reverse AIS from them above its exact-sampling limit). None for reverse AIS.
    """

    log_z: float
    log_z_stderr: float
    log_w: Tensor
    log_z_base: float
    ess: float
    direction: Literal["forward", "reverse"]
    n_betas: int
    tail: WeightTail | None = None
    states: Tensor | None = None

    @property
    def warning(self) -> str | None:
        """One line when the weights' tail makes the standard error unreliable (:meth:`WeightTail.warning`)."""
        return None if self.tail is None else self.tail.warning()

    def estimate(self) -> Estimate:
        """The common result type: log Ẑ ± its standard error in nats over the runs."""
        return Estimate(self.log_z, self.log_z_stderr, len(self.log_w), f"AIS {self.direction}", "nats")

    def interval(self, k: float = 3.0) -> tuple[float, float]:
        """log(mean w ± k·se) mapped to log Z, the interval Salakhutdinov & Murray report (k = 3).

        An interval for this one estimate (asymmetric in log Z), not a bound: it rests on the same sample
        standard deviation as :attr:`log_z_stderr`, and can miss when :attr:`warning` is set."""
        r = torch.exp(self.log_w - self.log_w.max())
        mean, se = float(r.mean()), float(r.std() / math.sqrt(len(r))) if len(r) > 1 else 0.0
        lo, hi = math.log(max(mean - k * se, 1e-300)), math.log(mean + k * se)
        shift = float(self.log_w.max())
        if self.direction == "forward":
            return self.log_z_base + shift + lo, self.log_z_base + shift + hi
        return self.log_z_base - shift - hi, self.log_z_base - shift - lo


class AISInterval(NamedTuple):
    """An interval for log Z from a forward and a reverse AIS estimate (:func:`sandwich`).

    Attributes
    ----------
    low : forward log Ẑ − k·se (forward AIS errs low; this end fails only if it overshoots by more than k s.e.).
    high : reverse log Ẑ + k·se (reverse AIS errs high; this end fails only if it undershoots by more than k s.e.).
    k : the multiple of each side's standard error.
    """

    low: float
    high: float
    k: float

    @property
    def consistent(self) -> bool:
        """False when the two estimates disagree beyond their error bars (low > high): one of them is wrong."""
        return self.low <= self.high

    def shifted(self, offset: float) -> tuple[float, float]:
        """(offset − high, offset − low): the interval of a quantity that falls as log Z rises, e.g. a mean
        log-likelihood −F̄(v) − log Z with ``offset`` = −F̄(v)."""
        return offset - self.high, offset - self.low


def sandwich(forward: AISResult, reverse: AISResult, k: float = 2.0) -> AISInterval:
    """[forward log Ẑ − k·se, reverse log Ẑ + k·se]: the forward/reverse pair as an interval for log Z.

    The low end fails only when the forward estimate overshoots log Z by more than k s.e.: forward AIS errs low
    (E[Ẑ] = Z, so E[log Ẑ] ≤ log Z) and its delta-method ± is calibrated where measured, so at k = 2 that is a
    one-sided tail of about 2.5 %. The high end fails only when the reverse estimate undershoots by more than k s.e.:
    reverse AIS errs high (from exact starts E[1/Ẑ] = 1/Z; by Markov's inequality P(log Ẑ < log Z − c) ≤ e^{−c}),
    and where its ± is too narrow the large errors are overshoots, which this end tolerates. How often the interval
    holds the exact log Z is measured, not assumed: ``benchmarks/bench_calibration.py --only sandwich``
    (:data:`CALIBRATION`).
    """
    if forward.direction != "forward" or reverse.direction != "reverse":
        raise KakusanError(f"sandwich needs a forward and a reverse AIS result, got {forward.direction!r} and "
                           f"{reverse.direction!r}: pass ais(...) first and reverse_ais(...) second")
    if not (math.isfinite(k) and k >= 0):
        raise KakusanError(f"k must be a finite number ≥ 0 (standard errors on each side), got {k}")
    return AISInterval(forward.log_z - k * forward.log_z_stderr, reverse.log_z + k * reverse.log_z_stderr, float(k))


#: What the calibration harness (``benchmarks/bench_calibration.py``, ``benchmarks/results_calibration.md``) measured
#: for the delta-method standard error at the defaults of ``kakusan rbm evaluate`` (runs, βs).
CALIBRATION = {
    "settings": (100, 14500),
    "short": ("forward calibrated on MNIST RBMs (784-16 … 784-24) — sd(z) 0.85–1.18; reverse sd(z) 1.08–1.91: "
              "too narrow on one"),
    "status": ("Calibration: at these settings the ± was measured against exact log Z on MNIST RBMs (784-18 CD-1 lr 0.2, "
               "784-16 CD-1 lr 0.25, 784-17 PCD-1 lr 0.2, 784-24 CD-1 lr 0.2; 3 epochs, seed 7), each by 50–100 "
               "independent 100-run estimates: forward sd(z) 0.85–1.18, ±2 s.e. coverage 90–98 %, calibrated on all "
               "four; reverse from exact samples sd(z) 1.08–1.91, coverage 60–92 %: calibrated on three, too narrow on "
               "the 784-24 RBM (0.17 nats high on average, its misses in estimates the tail warning did not flag), "
               "so read the reverse ± as a lower bound on its uncertainty (benchmarks/results_calibration.md). "
               "Other models may differ: heed the tail warning."),
    # the forward/reverse interval of :func:`sandwich` at k = 2 (``bench_calibration.py --only sandwich``)
    "sandwich_short": "92–100 % of 50 estimates on each of four MNIST RBMs",
    "sandwich": ("Calibration of the interval: over 50 pairs of 100-run estimates at these settings on each of four "
                 "MNIST RBMs (784-24, 784-18 and 784-16 CD-1, 784-17 PCD-1; 3 epochs) it held the exact log Z in "
                 "92–100 % — calibrated on all four, including the 784-24 RBM whose reverse ± alone is too narrow "
                 "(98 % with exact starts, 100 % with the annealed starts used above 20 hidden units; 0.73–0.74 nats wide "
                 "there) (benchmarks/results_calibration.md). Other models may differ."),
    # away from the defaults, (runs, βs) -> what the harness measured (``bench_calibration.py --only ais
    # --ais-runs R --ais-groups G``: groups of R runs cut from the same 5,000 cached runs per RBM and direction)
    "other": {
        (20, 14500): ("Calibration: at 20 runs (14,500 β) the ± was measured against exact log Z on the same four MNIST "
                      "RBMs as the defaults, by 250 independent 20-run estimates each: forward sd(z) 1.04–1.15, "
                      "coverage 90–94 %, calibrated on all four; reverse from exact samples sd(z) 1.03–1.74, coverage "
                      "66–94 %: calibrated on two, too narrow on the 784-17 PCD and 784-24 RBMs, so read the reverse ± "
                      "as a lower bound on its uncertainty (benchmarks/results_calibration.md)."),
        (50, 14500): ("Calibration: at 50 runs (14,500 β) the ± was measured against exact log Z on the same four MNIST "
                      "RBMs as the defaults, by 100 independent 50-run estimates each: forward sd(z) 0.91–1.08, "
                      "coverage 91–97 %, calibrated on all four; reverse from exact samples sd(z) 0.98–1.74, coverage "
                      "63–96 %: calibrated on two, short of 90 % coverage on the 784-17 PCD RBM and too narrow on the "
                      "784-24 one, so read the reverse ± as a lower bound on its uncertainty "
                      "(benchmarks/results_calibration.md)."),
        (100, 1450): ("Calibration: at 1,450 β (100 runs) the ± was measured against exact log Z on the same four MNIST "
                      "RBMs as the defaults, by 60 independent 100-run estimates each: forward sd(z) 1.19–1.81, "
                      "coverage 80–90 %, calibrated on one, too narrow or short of 90 % coverage on three; reverse from "
                      "exact samples sd(z) 1.01–3.36, coverage 22–93 %, calibrated on one. Read both ± as lower bounds "
                      "on the uncertainty at this schedule (which also biases forward AIS 0.03–0.05 nats low), and use "
                      "the default 14,500 β for a trustworthy one (benchmarks/results_calibration.md)."),
    },
    # the interval away from the defaults (``bench_calibration.py --only sandwich --ais-runs R --ais-groups G``)
    "sandwich_other": {
        (20, 14500): ("Calibration of the interval: at 20 runs (14,500 β), over 250 pairs of 20-run estimates on each "
                      "of the same four MNIST RBMs, it held the exact log Z in 95–97 % — calibrated on all four "
                      "(benchmarks/results_calibration.md)."),
        (50, 14500): ("Calibration of the interval: at 50 runs (14,500 β), over 100 pairs of 50-run estimates on each "
                      "of the same four MNIST RBMs, it held the exact log Z in 93–100 % — calibrated on all four "
                      "(benchmarks/results_calibration.md)."),
        (100, 1450): ("Calibration of the interval: at 1,450 β (100 runs), over 60 pairs of estimates on each of the "
                      "same four MNIST RBMs, it held the exact log Z in 97–98 % with exact reverse starts (up to 20 "
                      "hidden units) — calibrated on all four, but 0.56–2.70 nats wide; with the annealed starts used "
                      "above 20 hidden units it held it in 0 % on the 784-24 RBM (reverse AIS 7.1 nats low, every pair "
                      "flagged as inconsistent): there, use the default 14,500 β (benchmarks/results_calibration.md)."),
    },
    # reverse AIS from approximate starts (rbm evaluate above EXACT_START_LIMIT hidden units)
    "annealed_starts": ("Reverse AIS from approximate starts (the forward runs' last states + Gibbs sweeps) is not "
                        "calibrated: on a 784-24 MNIST RBM (CD-1, lr 0.2, 3 epochs) it came out 0.12 ± 0.04 nats above "
                        "the exact log Z on average, its ±2 s.e. covering it in 68 % of 50 estimates "
                        "(benchmarks/results_calibration.md) — like exact starts there (0.17 above): the weights' "
                        "tail, not the starts. Read its ± as a lower bound on the uncertainty. (Starts from test rows, "
                        "used before, put it 7.41 nats below. At --betas 1450 these starts put it 7.13 nats below, "
                        "in 60 of 60 estimates: use the default βs.)"),
}


def default_betas(n_low: int = 500, n_mid: int = 4000, n_high: int = 10000) -> Tensor:
    """The schedule of Salakhutdinov & Murray (2008): n_low βs in [0, 0.5), n_mid in [0.5, 0.9), n_high in [0.9, 1].

    Returns (n_low + n_mid + n_high,) float64 from 0 to 1 (14,500 by default).
    """
    for value, name in ((n_low, "n_low"), (n_mid, "n_mid")):
        check_positive_int(value, name)
    check_positive_int(n_high, "n_high", low=2)  # the last segment runs from 0.9 to exactly 1
    parts = [torch.linspace(0.0, 0.5, n_low + 1, dtype=F64)[:-1], torch.linspace(0.5, 0.9, n_mid + 1, dtype=F64)[:-1],
             torch.linspace(0.9, 1.0, n_high, dtype=F64)]
    return torch.cat(parts)


def scaled_betas(n: int) -> Tensor:
    """About n inverse temperatures in :func:`default_betas`' proportions (500 : 4000 : 10000), at least 4 — the
    schedule of ``kakusan rbm evaluate --betas n`` (1,450 gives ``default_betas(50, 400, 1000)``)."""
    check_positive_int(n, "n")
    n = max(n, 4)
    low, mid = max(1, round(n * 500 / 14500)), max(1, round(n * 4000 / 14500))
    return default_betas(low, mid, max(2, n - low - mid))


def check_betas(betas: Tensor | None) -> Tensor:
    """β as a (K+1,) float64 tensor from 0 to 1, non-decreasing, K ≥ 1 (default: :func:`default_betas`)."""
    b = default_betas() if betas is None else torch.as_tensor(betas, dtype=F64).reshape(-1)
    if len(b) < 2 or float(b[0]) != 0.0 or float(b[-1]) != 1.0 or bool((b[1:] < b[:-1]).any()):
        raise KakusanError("betas must rise from exactly 0 to exactly 1 (non-decreasing, at least 2 values): "
                           "use kakusan.rbm.ais.default_betas()")
    return b


def resolve_base(model: RBM, base: VisibleBase | Tensor | None) -> VisibleBase:
    """A base-rate model: given, built from data (M, n_visible), or the W = 0 model with no data (uniform units)."""
    if isinstance(base, (BinaryBase, GaussianBase)):
        return base
    if base is not None:
        return model.base_rate(base)
    if model.visible_units is None:
        return GaussianBase(model.b.detach().to(F64), model.var.detach().to(F64))
    return BinaryBase(torch.zeros(model.n_visible, dtype=F64), model.visible_units)


@torch.no_grad()
def anneal(model: RBM, base: VisibleBase, v: Tensor, betas: Tensor, generator: torch.Generator,
           progress: bool | None = None) -> Tensor:
    """Run every row of v along β_0 → β_1 → … (the order given) and return the log weights (B,) float64.

    At each step log w += log p*_{β_k}(v) − log p*_{β_{k−1}}(v), then v moves by one block-Gibbs sweep
    at β_k (h ~ p_k(h|v), v ~ p_k(v|h)), except after the last β.
    """
    return _anneal(model, base, v, betas, generator, progress)[0]


def _anneal(model: RBM, base: VisibleBase, v: Tensor, betas: Tensor, generator: torch.Generator,
            progress: bool | None = None) -> tuple[Tensor, Tensor]:
    """:func:`anneal`'s log weights and the rows' last states (B, n_visible)."""
    log_w = torch.zeros(len(v), dtype=F64, device=v.device)
    b = betas.tolist()
    show = progress if progress is not None else (len(b) >= 2000 and sys.stderr.isatty())
    units = model.hidden_units
    for k in tqdm(range(1, len(b)), desc="AIS", unit="β", disable=not show, leave=False):
        a = model.hidden_field(v)
        a64 = a.to(F64)
        log_w += (b[k - 1] - b[k]) * (model.visible_energy(v).to(F64) - base.energy(v))
        log_w += (units.log_partition(b[k] * a64) - units.log_partition(b[k - 1] * a64)).sum(-1)
        if k < len(b) - 1:
            h = units.sample(b[k] * a, generator)
            v = model.sample_visible(h, generator, beta=b[k], base=base)
    return log_w, v


def ais_from_weights(log_w: Tensor, log_z0: float, direction: Literal["forward", "reverse"],
                     n_betas: int) -> AISResult:
    """The :class:`AISResult` of given log weights (n_runs,): log Ẑ, its delta-method s.e., ESS and tail diagnostic.

    Used by :func:`ais` and :func:`reverse_ais`, and to re-score subsets of runs (the calibration benchmark
    splits one large batch into independent groups of 100 runs).
    """
    log_w = torch.as_tensor(log_w, dtype=F64).reshape(-1)
    lme = log_mean_exp(log_w)  # log mean w, its delta-method error, the ESS
    log_z = log_z0 + float(lme.value) if direction == "forward" else log_z0 - float(lme.value)
    tail = weight_tail(log_w) if bool(torch.isfinite(log_w).any()) else None
    return AISResult(log_z, float(lme.stderr), log_w.cpu(), log_z0, float(lme.ess), direction, n_betas, tail)


_result = ais_from_weights


def _prepare(model: RBM, base, betas, dtype):
    model = model if dtype is None or dtype == model.dtype else (model.to_float64() if dtype == F64 else
                                                                    _copy_as(model, dtype))
    return model, resolve_base(model, base).to(model.device), check_betas(betas).to(model.device)


def _copy_as(model: RBM, dtype: torch.dtype) -> RBM:
    import copy

    return copy.deepcopy(model).to(dtype)


@torch.no_grad()
def ais(model: RBM, base: VisibleBase | Tensor | None = None, *, n_runs: int = 100, betas: Tensor | None = None,
        generator: Seed = None, dtype: torch.dtype | None = None, progress: bool | None = None) -> AISResult:
    """Forward AIS: log Z of ``model`` annealed from the base-rate model, with its standard error.

    Parameters
    ----------
    model : an RBM of :mod:`kakusan.rbm`.
    base : a base model (:meth:`RBM.base_rate`), or data (M, n_visible) to build one from (recommended:
        the training data), or None for the W = 0 model with uniform (binary) or N(b, σ²) units.
    n_runs : independent annealing runs (batched).
    betas : (K+1,) schedule from 0 to 1; default :func:`default_betas` (14,500 values).
    generator : torch.Generator or seed.
    dtype : dtype of the sampling (default: the model's); log weights are float64 regardless.

    Returns
    -------
    :class:`AISResult` with ``direction="forward"``; E[Ẑ] = Z, hence E[log Ẑ] ≤ log Z: a lower bound *on average*,
    not for every run (one estimate can exceed log Z by its error).
    """
    model, base, b = _prepare(model, base, betas, dtype)
    g = make_generator(generator, model.device)
    v = base.sample(n_runs, g, model.dtype)
    log_z0 = base.log_z() + model.n_hidden * math.log(2.0)
    log_w, last = _anneal(model, base, v, b, g, progress)
    return _result(log_w, log_z0, "forward", len(b))._replace(states=last)


@torch.no_grad()
def reverse_ais(model: RBM, v0: Tensor, base: VisibleBase | Tensor | None = None, *, betas: Tensor | None = None,
                generator: Seed = None, dtype: torch.dtype | None = None, progress: bool | None = None) -> AISResult:
    """Reverse AIS (Burda et al. 2015): anneal model samples ``v0`` (n_runs, n_visible) from β = 1 back to 0.

    The weights estimate Z_0 / Z_B, so log Ẑ_B = log Z_0 − log mean w; with exact samples of the model
    E[log Ẑ] ≥ log Z (an upper bound on average, not for every run). Start samples from long Gibbs chains (``model.sample``)
    or persistent training chains are approximate: the bound holds only as far as they have mixed.
    Other parameters as :func:`ais`.
    """
    model, base, b = _prepare(model, base, betas, dtype)
    g = make_generator(generator, model.device)
    v = model.check_visible(v0)
    log_z0 = base.log_z() + model.n_hidden * math.log(2.0)
    return _result(anneal(model, base, v, b.flip(0), g, progress), log_z0, "reverse", len(b))


__all__ = ["AISInterval", "AISResult", "ais", "ais_from_weights", "anneal", "check_betas", "default_betas",
           "resolve_base", "reverse_ais", "sandwich", "scaled_betas"]

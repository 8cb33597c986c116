"""Are the error bars true? Run an estimator over many seeds on problems with exact answers and score its z-scores.

An estimator that reports a value v and a standard error s is *calibrated* on a problem with exact answer x when
its z-scores z = (v − x) / s behave like draws of N(0, 1) across independent seeds: their standard deviation is
about 1 (below: the bars are too wide; above: too narrow) and ±2 s.e. covers x about 95 % of the time. The
project's rule (issue 16): over at least :data:`MIN_SEEDS` = 50 seeds,

    sd(z) ∈ [0.75, 1.33]      and      coverage of ±2 s.e. ≥ 90 %.

For estimators that are bounds in expectation (forward AIS: E[log Ẑ] ≤ log Z; reverse AIS: ≥; the IWAE NLL:
E[NLL_k] ≥ NLL), the mean error and its standard error sd(v − x)/√n say whether the bias has the sign the bound
promises; where E[v] is known (e.g. from a long reference run), :meth:`Calibration.about` scores the same
estimates about it, which calibrates the noise alone. :meth:`Calibration.rescaled` is the negative control: a
halved or doubled s.e. formula must fail.

**Ground truths for the deep-model bounds** (the rows of ``benchmarks/bench_calibration.py --only deep`` and
``tests/evaluate/test_calibration_deep.py``): :func:`ppca_vae` (a linear VAE whose log p(x) is Gaussian, with
the mean-field encoder), :func:`binary_vae` (8 binary latents, log p(x) by enumeration), :func:`iwae_gap` (the
expected IWAE gap at k, by a reference run against the exact log p), :func:`gaussian_vlb`
(the expected VLB of Gaussian data under the exact denoiser, in closed form), :class:`MixtureFlow` (a
:class:`~kakusan.diffusion.truth.MixtureTruth` as the model ``ode_nll`` takes) and :func:`stream_seed`
(independent seeds for a seed's test set and its Monte Carlo draws).

>>> import numpy as np
>>> cal = calibrate(lambda seed: (1.0 + 0.1 * np.random.default_rng(seed).standard_normal(), 0.1), 1.0,
...                 range(200), estimator="toy", case="N(1, 0.1²)")
>>> cal.calibrated
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Literal

import numpy as np
import torch

from kakusan.errors import KakusanError

MIN_SEEDS = 50
SD_RANGE = (0.75, 1.33)
MIN_COVERAGE = 0.90
Bound = Literal["lower", "upper"] | None


@dataclass(frozen=True)
class Calibration:
    """z-scores of one estimator on one case over many seeds, and whether its error bars are calibrated.

    Attributes
    ----------
    estimator, case : what was run, on what.
    exact : the exact answer.
    values, stderrs : (n_seeds,) float64 estimates and the standard errors they reported.
    cpu_seconds : CPU time of all the runs (process time), 0 when not measured.
    bound : "lower" or "upper" when the estimator is a bound in expectation, else None.
    note : free text (e.g. how the seeds were drawn).
    """

    estimator: str
    case: str
    exact: float
    values: np.ndarray
    stderrs: np.ndarray
    cpu_seconds: float = 0.0
    bound: Bound = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n_seeds(self) -> int:
        return len(self.values)

    @property
    def errors(self) -> np.ndarray:
        """v − x per seed."""
        return self.values - self.exact

    @property
    def z(self) -> np.ndarray:
        """(v − x) / s per seed (±inf where s = 0 and v ≠ x)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.errors == 0, 0.0, self.errors / self.stderrs)

    @property
    def z_mean(self) -> float:
        return float(np.mean(self.z))

    @property
    def z_sd(self) -> float:
        """Standard deviation of the z-scores (n − 1 divisor); 1 for a calibrated error bar."""
        return float(np.std(self.z, ddof=1)) if self.n_seeds > 1 else math.nan

    def coverage(self, k: float = 2.0) -> float:
        """Fraction of seeds with |v − x| ≤ k·s (0.954 for k = 2 under N(0, 1))."""
        return float(np.mean(np.abs(self.z) <= k))

    @property
    def max_abs_z(self) -> float:
        return float(np.max(np.abs(self.z)))

    @property
    def bias(self) -> tuple[float, float]:
        """Mean error and its standard error sd(v − x)/√n."""
        e = self.errors
        return float(e.mean()), float(e.std(ddof=1) / math.sqrt(len(e))) if len(e) > 1 else math.nan

    @property
    def bias_sign(self) -> str:
        """"−" or "+" when the mean error is more than 2 of its standard errors from 0, else "0"."""
        mean, se = self.bias
        return "0" if not abs(mean) > 2 * se else ("+" if mean > 0 else "−")

    @property
    def bound_holds(self) -> bool | None:
        """For a bound: the mean error does not significantly (2 s.e.) contradict its direction; None otherwise."""
        if self.bound is None:
            return None
        return self.bias_sign != ("+" if self.bound == "lower" else "−")

    @property
    def calibrated(self) -> bool:
        """At least 50 seeds, sd(z) ∈ [0.75, 1.33] and coverage of ±2 s.e. ≥ 90 %."""
        return (self.n_seeds >= MIN_SEEDS and SD_RANGE[0] <= self.z_sd <= SD_RANGE[1]
                and self.coverage(2.0) >= MIN_COVERAGE)

    @property
    def verdict(self) -> str:
        """"calibrated", "too narrow", "too wide", "low coverage" or "too few seeds (n < 50)"."""
        if self.calibrated:
            return "calibrated"
        if self.n_seeds < MIN_SEEDS:
            return f"too few seeds ({self.n_seeds} < {MIN_SEEDS})"
        if self.z_sd > SD_RANGE[1]:
            return "too narrow"
        if self.z_sd < SD_RANGE[0]:
            return "too wide"
        return "low coverage"

    def rescaled(self, factor: float) -> Calibration:
        """The same estimates with every standard error multiplied by ``factor`` — the negative control: a test
        that passes a calibrated error bar must fail it halved (sd(z) ≈ 2) and doubled (sd(z) ≈ ½)."""
        return replace(self, stderrs=self.stderrs * factor, estimator=f"{self.estimator} (s.e. × {factor:g})")

    def about(self, centre: float, case: str | None = None) -> Calibration:
        """The same estimates scored about ``centre`` instead of the exact answer (no bound): about E[v] of a
        biased estimator (a bound at finite k) this calibrates its noise alone, the bias left out."""
        return replace(self, exact=float(centre), bound=None, case=self.case if case is None else case)

    def row(self) -> dict:
        """The calibration-table row as plain numbers."""
        mean, se = self.bias
        return {"estimator": self.estimator, "case": self.case, "seeds": self.n_seeds, "exact": self.exact,
                "z_mean": self.z_mean, "z_sd": self.z_sd, "coverage_2se": self.coverage(2.0),
                "max_abs_z": self.max_abs_z, "mean_stderr": float(np.mean(self.stderrs)), "bias": mean,
                "bias_stderr": se, "bias_sign": self.bias_sign, "bound": self.bound, "bound_holds": self.bound_holds,
                "verdict": self.verdict, "cpu_seconds": self.cpu_seconds, "note": self.note, **self.extra}

    def __str__(self) -> str:
        return (f"{self.estimator} on {self.case}: {self.n_seeds} seeds, z mean {self.z_mean:+.2f}, sd {self.z_sd:.2f}, "
                f"±2 s.e. coverage {100 * self.coverage():.0f} %, max |z| {self.max_abs_z:.1f} — {self.verdict}")


def from_estimates(values: Iterable[float], stderrs: Iterable[float], exact: float, *, estimator: str, case: str,
                   bound: Bound = None, cpu_seconds: float = 0.0, note: str = "", **extra) -> Calibration:
    """A :class:`Calibration` of estimates already computed (one per independent seed)."""
    v = np.asarray(list(values), dtype=np.float64).reshape(-1)
    s = np.asarray(list(stderrs), dtype=np.float64).reshape(-1)
    if len(v) == 0 or len(v) != len(s):
        raise KakusanError(f"need as many standard errors as values (≥ 1), got {len(v)} and {len(s)}")
    if not (np.isfinite(v).all() and np.isfinite(s).all() and (s >= 0).all()):
        raise KakusanError("values must be finite and standard errors finite and ≥ 0")
    if bound not in (None, "lower", "upper"):
        raise KakusanError(f"bound must be 'lower', 'upper' or None, got {bound!r}")
    return Calibration(estimator, case, float(exact), v, s, float(cpu_seconds), bound, note, dict(extra))


def calibrate(run: Callable[[int], object], exact: float, seeds: Sequence[int] | int, *, estimator: str = "",
              case: str = "", bound: Bound = None, note: str = "") -> Calibration:
    """Run ``run(seed)`` for every seed and score its z-scores against ``exact``.

    Parameters
    ----------
    run : seed -> (value, stderr), or anything with ``value``/``stderr`` (:class:`~kakusan.evaluate.Estimate`)
        or ``log_z``/``log_z_stderr`` (:class:`~kakusan.rbm.ais.AISResult`) attributes. Each seed must give
        an independent estimate.
    exact : the exact answer.
    seeds : the seeds, or a number n for range(n).
    estimator, case, bound, note : labels.

    Returns
    -------
    :class:`Calibration` with the CPU time of all the runs.
    """
    seeds = range(seeds) if isinstance(seeds, int) else list(seeds)
    values, stderrs = [], []
    t0 = time.process_time()
    for seed in seeds:
        v, s = _value_stderr(run(seed))
        values.append(v)
        stderrs.append(s)
    return from_estimates(values, stderrs, exact, estimator=estimator, case=case, bound=bound,
                          cpu_seconds=time.process_time() - t0, note=note)


def _value_stderr(result) -> tuple[float, float]:
    if isinstance(result, tuple) and len(result) == 2:
        return float(result[0]), float(result[1])
    for value, stderr in (("value", "stderr"), ("log_z", "log_z_stderr"), ("mean", "error")):
        if hasattr(result, value) and hasattr(result, stderr):
            return float(getattr(result, value)), float(getattr(result, stderr))
    raise KakusanError(f"an estimator must return (value, stderr) or an Estimate, got {type(result).__name__}")


def markdown_table(results: Sequence[Calibration]) -> str:
    """The calibration table: estimator, case, seeds, mean and sd of z, coverage, max |z|, bias, verdict, CPU-s."""
    lines = ["| estimator | case | seeds | z mean | z sd | ±2 s.e. coverage | max \\|z\\| | mean s.e. | mean error "
             "(± s.e.) | verdict | CPU-s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in results:
        mean, se = c.bias
        bound = "" if c.bound is None else f" ({c.bound} bound: {'holds' if c.bound_holds else 'VIOLATED'})"
        lines.append(f"| {c.estimator} | {c.case} | {c.n_seeds} | {c.z_mean:+.2f} | {c.z_sd:.2f} | "
                     f"{100 * c.coverage():.0f} % | {c.max_abs_z:.1f} | {np.mean(c.stderrs):.3g} | "
                     f"{mean:+.3g} ± {se:.2g}{bound} | {c.verdict} | {c.cpu_seconds:.1f} |")
    return "\n".join(lines)


# -- ground truths for the deep-model bounds ------------------------------------------------------------------


def stream_seed(seed: int, stream: int) -> int:
    """A seed for draw stream ``stream`` (0: the test set, 1: the estimator's Monte Carlo, …) of run ``seed``,
    independent of every other (seed, stream) pair. Seeding two streams with the same integer correlates them
    (the same uniforms draw the data and the importance samples), which biases a calibration."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> 1)


def ppca_vae(n_features: int = 16, n_latent: int = 4, rho: float = 0.5, noise: float = 0.5, seed: int = 0):
    """Probabilistic PCA as a float64 linear VAE with the *mean-field* encoder, and its data law.

    The decoder is p(x|z) = N(W z + b, σ² I) with W = G chol(M)ᵀ, G (D, L) and b (D,) standard normal draws and
    M = (1 − ρ) I + ρ 11ᵀ, so W's columns — and the latents of the posterior p(z|x) = N(m(x), P⁻¹),
    P = I + WᵀW/σ² — are correlated. The encoder is q(z|x) = N(m(x), diag(1/P_jj)): the exact mean with the
    conditional variances, the diagonal q that maximises the ELBO (what training a linear VAE converges to).
    It is narrower than p(z|x) along the correlations, so the importance weights are heavy-tailed (of infinite
    variance when 2P − diag P is not positive definite, as at the default ρ = 0.5).

    Returns (vae, sample, exact_nll): ``sample(n, seed)`` draws n points of p(x) = N(b, C), C = W Wᵀ + σ² I,
    and exact_nll = −E log p(x) = ½ (D log 2πe + log det C), the population NLL.
    """
    from kakusan.vae import VAE
    from kakusan.vae import linear_gaussian as lg

    D, L, f64 = n_features, n_latent, torch.float64
    g = torch.Generator().manual_seed(seed)
    mix = (1 - rho) * torch.eye(L, dtype=f64) + rho
    W = torch.randn(D, L, generator=g, dtype=f64) @ torch.linalg.cholesky(mix).T
    b = torch.randn(D, generator=g, dtype=f64)
    with torch.random.fork_rng(devices=[]):
        vae = VAE(lg.linear_config(D, L)).to(f64)  # every parameter is set below
    lg.set_decoder(vae, b, W, noise**2)
    precision = torch.eye(L, dtype=f64) + W.T @ W / noise**2
    gain = torch.linalg.solve(precision, W.T / noise**2)  # m(x) = gain (x − b)
    with torch.no_grad():
        layer = vae.encoder.net[0]
        layer.weight.zero_()
        layer.weight[:L] = gain
        layer.bias[:L] = -gain @ b
        layer.bias[L:] = -torch.log(torch.diagonal(precision))
    cov = W @ W.T + noise**2 * torch.eye(D, dtype=f64)
    exact_nll = 0.5 * (D * math.log(2 * math.pi * math.e) + float(torch.logdet(cov)))

    def sample(n: int, seed: int) -> torch.Tensor:
        gs = torch.Generator().manual_seed(seed)
        z, eps = torch.randn(n, L, generator=gs, dtype=f64), torch.randn(n, D, generator=gs, dtype=f64)
        return b + z @ W.T + noise * eps

    return vae, sample, exact_nll


def binary_vae(n_features: int = 10, n_latent: int = 8, decoder_scale: float = 3.0, encoder_offset: float = 2.0,
               seed: int = 3):
    """A float64 VAE with binary latents (MLP 16 hidden, Bernoulli likelihood) and its own law as the data.

    Random weights from ``seed``; the decoder's scaled by ``decoder_scale`` (a sharp p(x|z), so p(z|x) is
    peaked and far from the prior) and the encoder's output logits shifted by a fixed N(0, encoder_offset²)
    draw per unit (a deliberately poor q). log p(x) = log Σ_z 2^−L p(x|z) by enumeration
    (``exact_log_likelihood``); test sets are drawn from the model, so the population NLL is the entropy
    H(p) = −Σ_x p(x) log p(x), exact by enumerating all 2^D binary x (D ≤ 16).

    Returns (vae, sample, exact_nll) as :func:`ppca_vae`.
    """
    import itertools

    from kakusan.vae import VAE, MLPConfig, VAEConfig

    D, L, f64 = n_features, n_latent, torch.float64
    if D > 16:
        raise KakusanError(f"the exact entropy enumerates 2^D data points: D ≤ 16, got {D}")
    config = VAEConfig(data_shape=(D,), n_latent=L, encoder=MLPConfig((16,)), decoder=MLPConfig((16,)),
                       latent="bernoulli")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = VAE(config).to(f64)
    with torch.no_grad():
        for p in vae.decoder.parameters():
            p.mul_(decoder_scale)
        last = vae.encoder.net[-1].bias
        last.add_(encoder_offset * torch.randn(last.shape, generator=torch.Generator().manual_seed(seed + 1),
                                               dtype=f64))
    every_x = torch.tensor(list(itertools.product([0.0, 1.0], repeat=D)), dtype=f64)
    log_p = vae.exact_log_likelihood(every_x)
    exact_nll = float(-(log_p.exp() * log_p).sum())

    def sample(n: int, seed: int) -> torch.Tensor:
        gs = torch.Generator().manual_seed(seed)
        return torch.bernoulli(vae.sample(n, gs), generator=gs)

    return vae, sample, exact_nll


def iwae_gap(vae, sample, k: int, n_ref: int = 10_000, seed: int = 10**6) -> tuple[float, float]:
    """E[NLL_k] − NLL = E_x[log p(x) − log ŵ_k(x)], the IWAE bound's gap at k, with its standard error: one draw of
    log ŵ_k on each of ``n_ref`` fresh examples of ``sample(n, seed)``, minus the exact log p(x), in batches of
    1000 (seeds ``seed`` + i, independent of the runs being calibrated)."""
    gaps = []
    for i in range(0, n_ref, 1000):
        x = sample(min(1000, n_ref - i), stream_seed(seed + i, 0))
        log_w = vae.importance_log_likelihood(x, k, generator=stream_seed(seed + i, 1)).value
        gaps.append(vae.exact_log_likelihood(x) - log_w)
    g = torch.cat(gaps)
    return float(g.mean()), float(g.std() / math.sqrt(len(g)))


def gaussian_vlb(schedule, sd: float, mean: float, sq_dev, sq_norm, n_features: int):
    """E over x_{1:T} of the whole VLB (all T terms and L_T, reverse variance β̃_t, β_1 at t = 1) of data
    N(mean·1, sd² I) under its exact denoiser, for x_0 with ‖x_0 − mean·1‖² = ``sq_dev`` and ‖x_0‖² = ``sq_norm``
    (tensors per example, or their expectations D sd² and D (sd² + mean²) for the population value), nats.

    x̂_0 = mean + κ (x_t − α mean), κ = α sd²/(α² sd² + σ²), so E ‖x_0 − x̂_0‖² = (1 − κα)² sq_dev + D κ² σ²;
    the term is ½ (c_0²/β̃_t) of it for t ≥ 2, ½ D log 2πβ_1 + (…)/2β_1 at t = 1, and L_T is the closed-form KL.
    """
    D, T = n_features, schedule.T
    t = torch.arange(1, T + 1, dtype=torch.float64)
    alpha, sigma = schedule.alpha_sigma(t)
    kappa = alpha * sd**2 / (alpha**2 * sd**2 + sigma**2)
    a_dev, a_const = (1 - kappa * alpha) ** 2, D * kappa**2 * sigma**2  # E ‖x_0 − x̂_0‖² = a_dev sq_dev + a_const
    ab, beta = schedule.alpha_bar, schedule.betas
    weight = torch.empty(T, dtype=torch.float64)  # c_0²/β̃_t = ᾱ_{t−1} β_t / ((1 − ᾱ_t)(1 − ᾱ_{t−1})) for t ≥ 2
    weight[1:] = ab[1:-1] * beta[1:] / ((1 - ab[2:]) * (1 - ab[1:-1]))
    weight[0] = 1 / beta[0]  # the decoder N(x̂_0, β_1 I) at t = 1
    ab_T = float(ab[-1])
    const = 0.5 * D * math.log(2 * math.pi * float(beta[0])) + 0.5 * float((weight * a_const).sum()) \
        - 0.5 * D * (ab_T + math.log1p(-ab_T))
    return const + 0.5 * float((weight * a_dev).sum()) * sq_dev + 0.5 * ab_T * sq_norm


class MixtureFlow:
    """A :class:`~kakusan.diffusion.truth.MixtureTruth` as the model :func:`~kakusan.diffusion.ode.ode_nll`
    takes: its exact denoiser, continuous data (no levels), the network space the data space."""

    def __init__(self, truth):
        self.truth, self.schedule = truth, truth.schedule
        self.config = SimpleNamespace(levels=0)

    def denoiser(self, guidance: float = 1.0):
        return self.truth

    def to_model(self, data: torch.Tensor) -> torch.Tensor:
        return data.to(torch.float64)

    def log_jacobian(self) -> float:
        return 0.0


__all__ = ["MIN_COVERAGE", "MIN_SEEDS", "SD_RANGE", "Calibration", "MixtureFlow", "binary_vae", "calibrate",
           "from_estimates", "gaussian_vlb", "iwae_gap", "markdown_table", "ppca_vae", "stream_seed"]

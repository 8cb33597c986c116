"""Are the error bars true? Run an estimator over many seeds on problems with exact answers and score its z-scores.

An estimator that reports a value v and a standard error s is *calibrated* on a problem with exact answer x when
its z-scores z = (v − x) / s behave like draws of N(0, 1) across independent seeds: their standard deviation is
about 1 (below: the bars are too wide; above: too narrow) and ±2 s.e. covers x about 95 % of the time. The
project's rule (issue 16): over at least :data:`MIN_SEEDS` = 50 seeds,

    sd(z) ∈ [0.75, 1.33]      and      coverage of ±2 s.e. ≥ 90 %.

For estimators that are bounds in expectation (forward AIS: E[log Ẑ] ≤ log Z; reverse AIS: ≥), the mean error
and its standard error sd(v − x)/√n say whether the bias has the sign the bound promises.

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
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

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


__all__ = ["MIN_COVERAGE", "MIN_SEEDS", "SD_RANGE", "Calibration", "calibrate", "from_estimates", "markdown_table"]

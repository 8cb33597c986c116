"""The lecture note's three intuition figures: ln t ≤ t − 1, Jensen's inequality, and the quadratic upper bound.

Each figure has a function that computes what it draws (a NamedTuple of arrays, which the tests check against
the inequality it illustrates) and a function that draws it. Running the module writes all three PNGs::

    python -m kakusan.report.intuition docs/figures

into ``intuition_log.png``, ``intuition_jensen.png`` and ``intuition_surrogate.png`` (the figures of
``docs/divergence-gaussian.md`` and ``docs/boltzmann.md``).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kakusan.report.figures import _save, plt

FILES = {"log": "intuition_log.png", "jensen": "intuition_jensen.png", "surrogate": "intuition_surrogate.png"}


class LogBound(NamedTuple):
    """ln t and the line t − 1 on a grid of t > 0 that contains t = 1, where they touch."""

    t: np.ndarray  # (n,)
    log_t: np.ndarray  # (n,) ln t
    line: np.ndarray  # (n,) t − 1


def log_bound_curves(t_max: float = 4.0, n: int = 400) -> LogBound:
    """ln t ≤ t − 1 on (0, t_max], with equality only at t = 1 (included in the grid)."""
    t = np.union1d(np.linspace(t_max / n, t_max, n), [1.0])
    return LogBound(t, np.log(t), t - 1.0)


class JensenPoints(NamedTuple):
    """A two-point X, the concave ln, the chord between (x_i, ln x_i), and E[ln X] ≤ ln E[X]."""

    x: np.ndarray  # (n,) grid for the curve
    log_x: np.ndarray  # (n,) ln x
    points: np.ndarray  # (2,) the values X takes
    weights: np.ndarray  # (2,) their probabilities
    chord_x: np.ndarray  # (m,) between the two points
    chord: np.ndarray  # (m,) the chord's height
    mean: float  # E[X]
    mean_log: float  # E[ln X], on the chord above E[X]
    log_mean: float  # ln E[X], on the curve above E[X]


def jensen_points(points: Sequence[float] = (0.5, 4.0), weights: Sequence[float] = (0.5, 0.5),
                  n: int = 400) -> JensenPoints:
    """The picture of Jensen's inequality for X taking ``points`` with probabilities ``weights``."""
    p, w = np.asarray(points, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    x = np.linspace(0.2, 1.25 * p.max(), n)
    chord_x = np.linspace(p[0], p[1], n)
    slope = (math.log(p[1]) - math.log(p[0])) / (p[1] - p[0])
    mean = float(w @ p)
    return JensenPoints(x, np.log(x), p, w, chord_x, math.log(p[0]) + slope * (chord_x - p[0]), mean,
                        float(w @ np.log(p)), math.log(mean))


class QuadraticBound(NamedTuple):
    """f, its quadratic upper bound g(θ' | θ) touching it at θ, and the step θ − f'(θ)/L that minimises g.

    f is the mean negative log-likelihood of a one-spin Boltzmann machine, f(h) = ln(2 cosh h) − m h with
    m = ⟨x⟩_data, whose curvature f''(h) = 1 − tanh²h never exceeds L = N(N+1)/2 = 1.
    """

    theta_grid: np.ndarray  # (n,) θ'
    f: np.ndarray  # (n,) f(θ')
    bound: np.ndarray  # (n,) g(θ' | θ) = f(θ) + f'(θ)(θ' − θ) + L/2 (θ' − θ)²
    theta: float  # the current point, where g touches f
    step: float  # θ − f'(θ)/L, the minimiser of g
    lipschitz: float  # L
    data_mean: float  # m


def one_spin_nll(h: np.ndarray | float, data_mean: float) -> np.ndarray:
    """f(h) = −⟨ln q(x)⟩_data = ln(2 cosh h) − m h for q(x) = e^{hx}/(2 cosh h), x = ±1 (overflow-safe)."""
    h = np.asarray(h, dtype=np.float64)
    return np.logaddexp(h, -h) - data_mean * h


def quadratic_bound(theta: float = -1.0, data_mean: float = 0.6, lipschitz: float = 1.0,
                    span: tuple[float, float] = (-2.5, 2.5), n: int = 401) -> QuadraticBound:
    """The surrogate g(θ' | θ) of the one-spin NLL at ``theta`` and its minimiser, on a grid containing both."""
    grad = math.tanh(theta) - data_mean  # f'(θ) = ⟨x⟩_model − ⟨x⟩_data
    step = theta - grad / lipschitz
    grid = np.union1d(np.linspace(*span, n), [theta, step])
    d = grid - theta
    bound = float(one_spin_nll(theta, data_mean)) + grad * d + 0.5 * lipschitz * d**2
    return QuadraticBound(grid, one_spin_nll(grid, data_mean), bound, theta, step, lipschitz, data_mean)


def _axes():
    return plt.subplots(figsize=(5.5, 3.6), dpi=110, layout="constrained")


def log_bound_figure(path: str | Path, curves: LogBound | None = None) -> Path:
    """ln t below the line t − 1, touching it at t = 1 (Gibbs' inequality)."""
    c = curves or log_bound_curves()
    fig, ax = _axes()
    ax.fill_between(c.t, c.log_t, c.line, color="C1", alpha=0.12, lw=0)
    ax.plot(c.t, c.line, color="C1", label="$t - 1$")
    ax.plot(c.t, c.log_t, color="C0", label=r"$\ln t$")
    ax.plot([1.0], [0.0], "ko", ms=5)
    ax.annotate("equal only at $t = 1$", (1.0, 0.0), xytext=(1.6, -1.6), arrowprops={"arrowstyle": "->"})
    ax.set_ylim(max(float(c.log_t.min()), -3.5), float(c.line.max()) + 0.2)
    ax.axhline(0.0, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("$t$")
    ax.set_title(r"$\ln t \leq t - 1$")
    ax.legend(loc="upper left", frameon=False)
    return _save(fig, path)


def jensen_figure(path: str | Path, pts: JensenPoints | None = None) -> Path:
    """The concave ln, the chord between two values of X, and E[ln X] (on the chord) below ln E[X] (on the curve)."""
    j = pts or jensen_points()
    fig, ax = _axes()
    ax.plot(j.x, j.log_x, color="C0", label=r"$\ln x$")
    ax.plot(j.chord_x, j.chord, color="C1", label="chord")
    ax.plot(j.points, np.log(j.points), "o", color="C1", ms=5)
    for k, (p, w) in enumerate(zip(j.points, j.weights), start=1):
        ax.annotate(f"$x_{k}$ (prob. {w:g})", (p, math.log(p)), xytext=(6, -14), textcoords="offset points")
    ax.vlines(j.mean, j.mean_log, j.log_mean, color="C3", lw=2)
    ax.plot([j.mean], [j.log_mean], "o", color="C0", ms=5)
    ax.plot([j.mean], [j.mean_log], "s", color="C1", ms=5)
    ax.annotate(r"$\ln \mathbb{E}[X]$", (j.mean, j.log_mean), xytext=(-62, 8), textcoords="offset points")
    ax.annotate(r"$\mathbb{E}[\ln X]$", (j.mean, j.mean_log), xytext=(8, -14), textcoords="offset points")
    ax.axvline(j.mean, color="0.8", lw=0.8, ls="--", zorder=0)
    ax.set_xlabel("$x$")
    ax.set_title(r"Jensen: $\mathbb{E}[\ln X] \leq \ln \mathbb{E}[X]$")
    ax.legend(loc="lower right", frameon=False)
    return _save(fig, path)


def surrogate_figure(path: str | Path, qb: QuadraticBound | None = None) -> Path:
    """f, its quadratic upper bound touching it at θ, and the step θ' = θ − f'(θ)/L to the bound's minimum."""
    q = qb or quadratic_bound()
    fig, ax = _axes()
    ax.plot(q.theta_grid, q.bound, color="C1", label=rf"bound $g(\theta'\,|\,\theta)$, $L = {q.lipschitz:g}$")
    data = rf"$\langle x\rangle_{{\mathrm{{data}}}} = {q.data_mean:g}$"
    ax.plot(q.theta_grid, q.f, color="C0", label=rf"$f(\theta')$: one-spin NLL, {data}")
    f_theta = float(one_spin_nll(q.theta, q.data_mean))
    f_step = float(one_spin_nll(q.step, q.data_mean))
    g_step = f_theta - 0.5 * q.lipschitz * (q.step - q.theta) ** 2
    ax.plot([q.theta], [f_theta], "ko", ms=5)
    ax.annotate(r"touch at $\theta$", (q.theta, f_theta), xytext=(10, 8), textcoords="offset points")
    ax.plot([q.step], [g_step], "s", color="C1", ms=5)
    ax.plot([q.step], [f_step], "o", color="C0", ms=5)
    ax.vlines(q.step, f_step, g_step, color="C3", lw=2)
    ax.annotate(r"$\theta - f'(\theta)/L$", (q.step, f_step), xytext=(8, -16), textcoords="offset points")
    ax.set_ylim(float(q.f.min()) - 0.3, f_theta + 1.2)
    ax.set_xlabel(r"$\theta'$")
    ax.set_title("the quadratic upper bound and its minimiser")
    ax.legend(loc="upper right", frameon=False, fontsize="small")
    return _save(fig, path)


def write_all(out_dir: str | Path) -> list[Path]:
    """Write the three intuition figures into ``out_dir`` (made if missing); return their paths."""
    out = Path(out_dir)
    return [log_bound_figure(out / FILES["log"]), jensen_figure(out / FILES["jensen"]),
            surrogate_figure(out / FILES["surrogate"])]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kakusan.report.intuition",
                                     description="Write the three intuition figures of the docs.")
    parser.add_argument("out_dir", nargs="?", default="docs/figures", help="folder for the PNGs (default docs/figures)")
    for path in write_all(parser.parse_args(argv).out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

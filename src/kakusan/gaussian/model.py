"""The Gaussian N(mu, Sigma) in D dimensions: log-density, sampling, data checks, closed-form MLE, KL.

:func:`fit_mle` is the closed form mu = xbar, Sigma = S (the biased, 1/n covariance) of maximum
likelihood; :mod:`kakusan.gaussian.gradient` reaches it by following the KL gradient. Everything is float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from kakusan.errors import KakusanError, check_positive_int
from kakusan.registry import register_model
from kakusan.runtime import Seed, make_generator

LOG_2PI = math.log(2 * math.pi)
DTYPE = torch.float64


@dataclass(frozen=True)
class GaussianConfig:
    """Hyper-parameters of :class:`Gaussian`: the dimension D."""

    dim: int


class GaussianStats(NamedTuple):
    """Sufficient statistics of data (n, D): ``n``, ``mean`` xbar (D,), ``scatter`` S (D, D).

    S = (1/n) sum_i (x_i - xbar)(x_i - xbar)^T, the biased sample covariance.
    """

    n: int
    mean: torch.Tensor
    scatter: torch.Tensor


def as_data(x, dim: int | None = None) -> torch.Tensor:
    """Samples as a float64 (n, D) tensor; (n,) is read as n samples of 1-D data.

    Raises :class:`~kakusan.errors.KakusanError` for other shapes, no samples, NaN/inf, or a
    dimension other than ``dim``.
    """
    t = torch.as_tensor(x)
    if t.is_complex() or t.dtype == torch.bool:
        raise KakusanError(f"data must be real numbers, got dtype {t.dtype}: convert it to float")
    t = t.to(DTYPE)
    if t.ndim == 1 and dim in (None, 1):
        t = t[:, None]
    want = "(n,) or (n, D)" if dim in (None, 1) else f"(n, {dim})"
    if t.ndim != 2 or (dim is not None and t.shape[1] != dim):
        raise KakusanError(f"data must have shape {want} (one sample per row), got {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise KakusanError(f"data has no samples or no dimensions (shape {tuple(t.shape)}): pass at least one row")
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).any(1).sum())
        raise KakusanError(f"data contains NaN or inf in {bad} of {t.shape[0]} rows: remove or impute them first")
    return t


def sufficient_stats(x) -> GaussianStats:
    """xbar = (1/n) sum_i x_i and S = (1/n) sum_i (x_i - xbar)(x_i - xbar)^T of data (n, D) or (n,)."""
    x = as_data(x)
    mean = x.mean(0)
    centred = x - mean  # (n, D)
    scatter = centred.T @ centred / x.shape[0]
    if not torch.isfinite(scatter).all():
        raise KakusanError("data are too large for float64 second moments (overflow): rescale them first")
    return GaussianStats(x.shape[0], mean, scatter)


def _constant_columns(stats: GaussianStats) -> list[int]:
    std = stats.scatter.diagonal().clamp_min(0).sqrt()
    return [j for j in range(std.shape[0]) if float(std[j]) <= 1e-12 * max(float(stats.mean[j].abs()), 1e-300)]


def _rank(scatter: torch.Tensor) -> int:
    """Numerical rank of a covariance, judged on its correlation matrix (so scale does not matter)."""
    std = scatter.diagonal().clamp_min(0).sqrt()
    live = std > 0
    corr = scatter[live][:, live] / (std[live, None] * std[None, live])
    return int((torch.linalg.eigvalsh(corr) > 1e-10).sum()) if live.any() else 0


def check_nonsingular(stats: GaussianStats, reg: float = 0.0) -> None:
    """Raise a :class:`~kakusan.errors.KakusanError` naming the cause if S + reg I is singular."""
    if not (math.isfinite(reg) and reg >= 0):
        raise KakusanError(f"reg must be a finite number >= 0, got {reg!r}")
    if reg > 0:
        return
    n, d = stats.n, stats.mean.shape[0]
    fix = "pass reg=1e-6 (--reg 1e-6) to add reg·I"
    if n <= d:
        raise KakusanError(f"covariance is singular ({n} samples span at most {n - 1} of {d} dimensions; "
                           f"need n > D): {fix}, or use more samples")
    const = _constant_columns(stats)
    if const:
        names = ", ".join(str(j) for j in const[:5]) + (" ..." if len(const) > 5 else "")
        raise KakusanError(f"covariance is singular (column {names} is constant): {fix}, or drop the column")
    rank = _rank(stats.scatter)
    if rank < d:
        raise KakusanError(f"covariance is singular (data span {rank} of {d} dimensions; some columns are "
                           f"linear combinations of others): {fix}, or drop the dependent columns")


def _cholesky(matrix: torch.Tensor, what: str) -> torch.Tensor:
    chol, info = torch.linalg.cholesky_ex(matrix)
    if info.item() != 0 or not torch.isfinite(chol).all():
        raise KakusanError(f"{what} is not positive definite: pass a larger reg (--reg) to add reg·I")
    return chol


@register_model
class Gaussian(torch.nn.Module):
    """q(x) = N(x; mu, Sigma) = exp(-1/2 (x-mu)^T Sigma^-1 (x-mu)) / sqrt((2 pi)^D det Sigma).

    Parameters live on the module in float64: ``mean`` (D,) and ``scale_tril`` (D, D), the lower
    Cholesky factor L of Sigma = L L^T (only its lower triangle is used), so Sigma is positive
    semi-definite by construction. A new module is the standard normal N(0, I).

    Parameters
    ----------
    dim : int
        Dimension D (1 for 1-D data, which may then be passed as shape (n,)).
    """

    def __init__(self, dim: int):
        super().__init__()
        check_positive_int(dim, "Gaussian dim")
        self.config = GaussianConfig(dim)
        self.mean = torch.nn.Parameter(torch.zeros(dim, dtype=DTYPE))
        self.scale_tril = torch.nn.Parameter(torch.eye(dim, dtype=DTYPE))

    @classmethod
    def from_params(cls, mean, cov) -> "Gaussian":
        """N(mean, cov) from a mean (D,) and a symmetric positive definite covariance (D, D)."""
        mean = torch.as_tensor(mean, dtype=DTYPE).reshape(-1)
        cov = torch.as_tensor(cov, dtype=DTYPE)
        d = mean.shape[0]
        if d == 1 and cov.numel() == 1:
            cov = cov.reshape(1, 1)  # 1-D: a variance
        if cov.shape != (d, d):
            raise KakusanError(f"cov must have shape ({d}, {d}) to match mean ({d},), got {tuple(cov.shape)}")
        if not torch.allclose(cov, cov.T, rtol=1e-10, atol=1e-12):
            raise KakusanError("cov must be symmetric: pass (cov + cov.T) / 2")
        model = cls(d)
        with torch.no_grad():
            model.mean.copy_(mean)
            model.scale_tril.copy_(_cholesky(cov, "cov"))
        return model

    @classmethod
    def from_precision(cls, mean, precision) -> "Gaussian":
        """N(mean, precision^-1) from a mean (D,) and a positive definite precision matrix (D, D)."""
        precision = torch.as_tensor(precision, dtype=DTYPE)
        cov = torch.cholesky_inverse(_cholesky(precision, "precision"))
        return cls.from_params(mean, (cov + cov.T) / 2)

    @property
    def dim(self) -> int:
        return self.config.dim

    def _tril(self) -> torch.Tensor:
        return torch.tril(self.scale_tril)

    @property
    def cov(self) -> torch.Tensor:
        """Sigma = L L^T, (D, D)."""
        chol = self._tril()
        return chol @ chol.T

    @property
    def precision(self) -> torch.Tensor:
        """Lambda = Sigma^-1, (D, D), via the Cholesky factor."""
        return torch.cholesky_inverse(self._tril())

    def log_det_cov(self) -> torch.Tensor:
        """ln det Sigma = 2 sum_i ln|L_ii|."""
        return 2.0 * self._tril().diagonal().abs().log().sum()

    def log_prob(self, x) -> torch.Tensor:
        """log N(x; mu, Sigma) = -1/2 [D ln 2pi + ln det Sigma + (x-mu)^T Sigma^-1 (x-mu)].

        Parameters
        ----------
        x : tensor (n, D), or (n,) when D = 1

        Returns
        -------
        tensor (n,)
            float64 log-densities in nats.
        """
        x = as_data(x, self.dim)
        z = torch.linalg.solve_triangular(self._tril(), (x - self.mean).T, upper=False)  # (D, n): L^-1 (x - mu)
        return -0.5 * (self.dim * LOG_2PI + self.log_det_cov() + (z**2).sum(0))

    def sample(self, n: int, generator: Seed = None) -> torch.Tensor:
        """x = mu + L z with z ~ N(0, I); returns (n, D) float64 (also for D = 1).

        ``generator`` is a ``torch.Generator`` or an int seed; the same seed gives the same samples.
        """
        g = make_generator(generator)
        with torch.no_grad():
            z = torch.randn(n, self.dim, generator=g, dtype=DTYPE)  # (n, D)
            return self.mean + z @ self._tril().T

    def entropy(self) -> torch.Tensor:
        """H(q) = D/2 (1 + ln 2pi) + 1/2 ln det Sigma, in nats."""
        return 0.5 * self.dim * (1.0 + LOG_2PI) + 0.5 * self.log_det_cov()

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def solve(stats: GaussianStats, reg: float = 0.0) -> Gaussian:
    """The maximiser of E_{p0}[log q] - reg/2 tr Sigma^-1: mu = xbar, Sigma = S + reg I.

    Raises :class:`~kakusan.errors.KakusanError` naming the cause (n <= D, a constant column,
    collinear columns) if S is singular and ``reg`` is 0.
    """
    check_nonsingular(stats, reg)
    d = stats.mean.shape[0]
    cov = stats.scatter + reg * torch.eye(d, dtype=DTYPE)
    _cholesky(cov, f"covariance (+ reg={reg:g}·I)")
    return Gaussian.from_params(stats.mean, (cov + cov.T) / 2)


def fit_mle(x, *, reg: float = 0.0) -> Gaussian:
    """Closed-form maximum likelihood: mu = (1/n) sum x_i, Sigma = (1/n) sum (x_i - mu)(x_i - mu)^T + reg I.

    Parameters
    ----------
    x : array or tensor (n, D), or (n,) for 1-D data
    reg : float
        Added to the diagonal of the (biased, 1/n) covariance; needed when the data do not span
        all D dimensions.

    Returns
    -------
    Gaussian
    """
    return solve(sufficient_stats(x), reg)


def kl_gaussians(p: Gaussian, q: Gaussian) -> torch.Tensor:
    """KL(p || q) = 1/2 [tr(Sq^-1 Sp) + (mq - mp)^T Sq^-1 (mq - mp) - D + ln det Sq - ln det Sp], nats."""
    if p.dim != q.dim:
        raise KakusanError(f"KL between Gaussians of different dimensions ({p.dim} and {q.dim}) is undefined")
    lq = q._tril()
    m = torch.linalg.solve_triangular(lq, p._tril(), upper=False)  # Lq^-1 Lp: tr(Sq^-1 Sp) = |m|_F^2
    d = torch.linalg.solve_triangular(lq, (q.mean - p.mean)[:, None], upper=False)
    kl = 0.5 * ((m**2).sum() + (d**2).sum() - p.dim + q.log_det_cov() - p.log_det_cov())
    return kl.clamp_min(0.0)

"""Gaussian mixture q(x) = Σ_k π_k N(x | μ_k, Σ_k): the simplest model with a hidden variable.

The hidden variable is the component label z ∈ {0, …, K−1} with q(z = k) = π_k and
q(x | z = k) = N(x | μ_k, Σ_k). Summing z out gives an exact :meth:`GaussianMixture.log_prob`
(a ``logsumexp`` over components); the posterior q(z | x) is
:meth:`GaussianMixture.responsibilities`. The model is fitted by EM (:mod:`kakusan.optim.em`),
which minimises a Jensen surrogate of the negative log-likelihood; see ``docs/hidden-em.md``.

Everything is float64: mixtures are small models and EM is compared with references to 1e-6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from kakusan.errors import KakusanError
from kakusan.registry import register_model
from kakusan.runtime import Seed, make_generator

CovarianceType = Literal["full", "diag"]
COVARIANCE_TYPES: tuple[str, ...] = ("full", "diag")
DTYPE = torch.float64


@dataclass(frozen=True)
class GaussianMixtureConfig:
    """Hyper-parameters of :class:`GaussianMixture`: K components in D dimensions."""

    n_components: int
    dim: int
    covariance_type: CovarianceType = "full"


@dataclass(frozen=True)
class MixtureParams:
    """The parameters θ = (π, μ, Σ) of a Gaussian mixture.

    Attributes
    ----------
    weights : Tensor, shape (K,)
        Mixing proportions π_k > 0, summing to one.
    means : Tensor, shape (K, D)
        Component means μ_k.
    covariances : Tensor, shape (K, D, D) for ``"full"`` or (K, D) for ``"diag"``
        Component covariances Σ_k (the diagonal only for ``"diag"``).
    """

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor


def check_points(x: torch.Tensor | np.ndarray, dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Return data points as a float64 tensor of shape (n, D), or raise a one-line :class:`KakusanError`.

    Parameters
    ----------
    x : array-like, shape (n, D)
        Data points, one per row.
    dim : int
        The dimension D the model expects.
    device : torch.device or str
        Where the returned tensor lives.
    """
    if not isinstance(x, torch.Tensor):
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise KakusanError(f"data must be real numbers, got numpy dtype {arr.dtype}: convert it to float")
        x = torch.from_numpy(arr)
    if x.ndim != 2:
        raise KakusanError(f"data must be 2-D of shape (n, {dim}), got {x.ndim}-D shape {tuple(x.shape)}: reshape it")
    if x.shape[1] != dim:
        raise KakusanError(f"data has {x.shape[1]} columns but the model has dim={dim}: pass (n, {dim}) data")
    if x.shape[0] == 0:
        raise KakusanError("data has no rows: pass at least one point")
    if x.is_complex():
        raise KakusanError(f"data must be real numbers, got dtype {x.dtype}: convert it to float")
    x = x.to(device=device, dtype=DTYPE)
    if not torch.isfinite(x).all():
        raise KakusanError("data contains NaN or infinite values: drop or impute them first")
    return x


def cholesky_factor(covariances: torch.Tensor) -> torch.Tensor:
    """Lower Cholesky factors L_k with Σ_k = L_k L_kᵀ, shape (K, D, D); a clear error if Σ_k is singular."""
    chol, info = torch.linalg.cholesky_ex(covariances)
    bad = torch.nonzero(info).flatten()
    if len(bad):
        raise KakusanError(
            f"covariance of component {int(bad[0])} is not positive definite (a collapsed component): "
            "fit with reg_covar > 0, e.g. 1e-6"
        )
    return chol


def gaussian_log_density(x: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> torch.Tensor:
    """log N(x_i | μ_k, Σ_k) for every point and component, via Cholesky; shape (n, K).

    Parameters
    ----------
    x : Tensor, shape (n, D)
    means : Tensor, shape (K, D)
    covariances : Tensor, shape (K, D, D) (full) or (K, D) (diagonal)

    Notes
    -----
    With Σ = L Lᵀ and y = L⁻¹(x − μ): log N = −½ (D log 2π + 2 Σ_j log L_jj + |y|²).
    """
    d = x.shape[1]
    diff = x[None, :, :] - means[:, None, :]  # (K, n, D)
    if covariances.ndim == 2:  # diagonal
        if (covariances <= 0).any():
            raise KakusanError("a diagonal covariance has a non-positive entry (a collapsed component): use reg_covar > 0")
        maha = (diff**2 / covariances[:, None, :]).sum(-1)  # (K, n)
        log_det = covariances.log().sum(-1)  # (K,)
    else:
        chol = cholesky_factor(covariances)  # (K, D, D)
        y = torch.linalg.solve_triangular(chol, diff.transpose(1, 2), upper=False)  # (K, D, n)
        maha = (y**2).sum(1)  # (K, n)
        log_det = 2 * torch.diagonal(chol, dim1=-2, dim2=-1).log().sum(-1)  # (K,)
    return (-0.5 * (d * math.log(2 * math.pi) + log_det[:, None] + maha)).T  # (n, K)


@register_model
class GaussianMixture(torch.nn.Module):
    """Gaussian mixture q(x) = Σ_k π_k N(x | μ_k, Σ_k) with K components in D dimensions (float64).

    Parameters
    ----------
    n_components : int
        K ≥ 1, the number of components (values of the hidden label z).
    dim : int
        D ≥ 1, the dimension of x.
    covariance_type : {"full", "diag"}
        Full covariance matrices (K, D, D) or diagonal ones stored as (K, D).

    Notes
    -----
    A new mixture has π_k = 1/K, μ_k = 0 and Σ_k = I; fit it with :func:`kakusan.optim.em.fit_em`.
    The parameters are ``nn.Parameter``s with ``requires_grad=False`` because EM sets them in
    closed form; ``log_prob`` is differentiable if a user turns gradients on.

    Examples
    --------
    >>> gm = GaussianMixture(n_components=2, dim=3)
    >>> gm.log_prob(torch.zeros(5, 3)).shape
    torch.Size([5])
    """

    def __init__(self, n_components: int, dim: int, covariance_type: CovarianceType = "full") -> None:
        super().__init__()
        _check_config(n_components, dim, covariance_type)
        self.config = GaussianMixtureConfig(int(n_components), int(dim), covariance_type)
        k, d = self.config.n_components, self.config.dim
        cov = torch.eye(d, dtype=DTYPE).expand(k, d, d).clone() if covariance_type == "full" else torch.ones(k, d, dtype=DTYPE)
        self.weights = torch.nn.Parameter(torch.full((k,), 1.0 / k, dtype=DTYPE), requires_grad=False)  # (K,)
        self.means = torch.nn.Parameter(torch.zeros(k, d, dtype=DTYPE), requires_grad=False)  # (K, D)
        self.covariances = torch.nn.Parameter(cov, requires_grad=False)  # (K, D, D) or (K, D)

    @property
    def n_components(self) -> int:
        return self.config.n_components

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def covariance_type(self) -> CovarianceType:
        return self.config.covariance_type

    def get_params(self) -> MixtureParams:
        """A detached copy of θ = (π, μ, Σ)."""
        return MixtureParams(self.weights.detach().clone(), self.means.detach().clone(), self.covariances.detach().clone())

    def set_params(self, params: MixtureParams) -> None:
        """Set θ = (π, μ, Σ) after checking shapes and that π is a probability vector."""
        k, d = self.n_components, self.dim
        cov_shape = (k, d, d) if self.covariance_type == "full" else (k, d)
        for name, value, shape in (("weights", params.weights, (k,)), ("means", params.means, (k, d)),
                                   ("covariances", params.covariances, cov_shape)):
            if tuple(value.shape) != shape:
                raise KakusanError(f"{name} has shape {tuple(value.shape)} but this mixture needs {shape}")
            if not torch.isfinite(torch.as_tensor(value)).all():
                raise KakusanError(f"{name} contains NaN or infinite values: pass finite parameters")
        w = torch.as_tensor(params.weights, dtype=DTYPE)
        if (w < 0).any() or abs(float(w.sum()) - 1.0) > 1e-8:
            raise KakusanError("weights must be non-negative and sum to one: normalise them")
        with torch.no_grad():
            self.weights.copy_(w)
            self.means.copy_(torch.as_tensor(params.means, dtype=DTYPE))
            self.covariances.copy_(torch.as_tensor(params.covariances, dtype=DTYPE))

    def joint_log_prob(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """log q(x_i, z = k) = log π_k + log N(x_i | μ_k, Σ_k); shape (n, K).

        Parameters
        ----------
        x : array-like, shape (n, D)
        """
        x = check_points(x, self.dim, self.means.device)
        return self.weights.log()[None, :] + gaussian_log_density(x, self.means, self.covariances)

    def log_prob(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """log q(x_i) = logsumexp_k [log π_k + log N(x_i | μ_k, Σ_k)], exact; shape (n,)."""
        return torch.logsumexp(self.joint_log_prob(x), dim=1)

    def responsibilities(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Posterior r_ik = q(z = k | x_i) = π_k N(x_i | μ_k, Σ_k) / q(x_i); shape (n, K), rows sum to 1."""
        return torch.softmax(self.joint_log_prob(x), dim=1)

    def sample_with_labels(self, n: int, generator: Seed = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw (x_i, z_i) ~ q(x, z): z ~ Categorical(π), then x = μ_z + L_z ε with ε ~ N(0, I).

        Parameters
        ----------
        n : int
            Number of samples.
        generator : torch.Generator, int or None
            Source of randomness; the same seed gives the same samples.

        Returns
        -------
        x : Tensor, shape (n, D)
        z : Tensor of int64, shape (n,)
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise KakusanError(f"number of samples must be a non-negative integer, got {n!r}")
        g = make_generator(generator, device=self.means.device)
        z = torch.multinomial(self.weights.detach(), n, replacement=True, generator=g) if n else torch.zeros(0, dtype=torch.long)
        eps = torch.randn(n, self.dim, generator=g, dtype=DTYPE, device=self.means.device)  # (n, D)
        if self.covariance_type == "full":
            noise = (cholesky_factor(self.covariances.detach())[z] @ eps[:, :, None]).squeeze(-1)  # (n, D)
        else:
            noise = self.covariances.detach()[z].sqrt() * eps
        return self.means.detach()[z] + noise, z

    def sample(self, n: int, generator: Seed = None) -> torch.Tensor:
        """Draw x_i ~ q(x) = Σ_k π_k N(x | μ_k, Σ_k); shape (n, D). See :meth:`sample_with_labels`."""
        return self.sample_with_labels(n, generator)[0]

    def mean(self) -> torch.Tensor:
        """E_q[x] = Σ_k π_k μ_k; shape (D,)."""
        return self.weights.detach() @ self.means.detach()

    def covariance(self) -> torch.Tensor:
        """Cov_q[x] = Σ_k π_k (Σ_k + μ_k μ_kᵀ) − E[x] E[x]ᵀ; shape (D, D)."""
        cov = self.covariances.detach()
        cov = cov if self.covariance_type == "full" else torch.diag_embed(cov)
        mu, w = self.means.detach(), self.weights.detach()
        second = torch.einsum("k,kij->ij", w, cov + mu[:, :, None] * mu[:, None, :])
        m = self.mean()
        return second - torch.outer(m, m)


def _check_config(n_components: int, dim: int, covariance_type: str) -> None:
    for name, value in (("n_components", n_components), ("dim", dim)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise KakusanError(f"{name} must be a positive integer, got {value!r}")
    if covariance_type not in COVARIANCE_TYPES:
        raise KakusanError(f"unknown covariance_type {covariance_type!r}: use one of {', '.join(COVARIANCE_TYPES)}")

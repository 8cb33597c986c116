"""Ground truth for diffusion: Gaussian-mixture data, whose noised marginals, scores and denoisers are closed form.

If x_0 ~ Σ_k π_k N(μ_k, Σ_k) then x_t = α x_0 + σ ε is again a mixture,

    q_t(x) = Σ_k π_k N(x; α μ_k, C_k),   C_k = α² Σ_k + σ² I,

so its score is ∇ log q_t(x) = −Σ_k r_k(x) C_k⁻¹ (x − α μ_k) with responsibilities r_k(x) ∝ π_k N(x; α μ_k, C_k),
and the exact (MMSE) noise prediction is ε*(x, t) = −σ ∇ log q_t(x) = E[ε | x_t = x]. Samplers driven by
ε* must reproduce the mixture; the probability-flow likelihood with ε* must equal log q_0; the VLB must
bound it. Everything is float64.

``MixtureTruth(weights (K,), means (K, D), covariances (K, D, D), schedule)`` is a denoiser with the sampler
contract ``truth(x, t, cond=None) -> ε*`` and has ``log_prob(x, t=0)``, ``score(x, t)``, ``x0(x, t)``,
``sample(n, generator)``; ``MixtureTruth.example(D, K=…, seed=…)`` draws a well-separated test mixture.
"""

from __future__ import annotations

import math

import torch

from kakusan.diffusion.process import Schedule
from kakusan.errors import DataError
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor


class MixtureTruth:
    """A Gaussian mixture in D dimensions seen through a diffusion schedule (module docstring)."""

    def __init__(self, weights: Tensor, means: Tensor, covariances: Tensor, schedule: Schedule):
        f = dict(dtype=torch.float64)
        self.weights = torch.as_tensor(weights, **f)
        self.means = torch.as_tensor(means, **f)
        self.covariances = torch.as_tensor(covariances, **f)
        K, D = self.means.shape
        if self.weights.shape != (K,) or self.covariances.shape != (K, D, D):
            raise DataError(f"a mixture of {K} components in {D} dimensions needs weights ({K},) and covariances "
                            f"({K}, {D}, {D}), got {tuple(self.weights.shape)} and {tuple(self.covariances.shape)}")
        self.weights = self.weights / self.weights.sum()
        self.schedule, self.dim = schedule, D
        self._chol0 = torch.linalg.cholesky(self.covariances)

    @classmethod
    def example(cls, dim: int, n_components: int = 3, schedule: Schedule | None = None, seed: int = 0,
                spread: float = 2.0, scale: float = 0.3) -> "MixtureTruth":
        """A random mixture: means ~ N(0, spread²/D · I)·√D-ish, anisotropic covariances of scale ``scale``."""
        g = torch.Generator().manual_seed(seed)
        means = spread * torch.randn(n_components, dim, generator=g, dtype=torch.float64)
        a = torch.randn(n_components, dim, dim, generator=g, dtype=torch.float64) / math.sqrt(dim)
        covs = scale**2 * (a @ a.transpose(1, 2) + 0.3 * torch.eye(dim, dtype=torch.float64))
        weights = torch.rand(n_components, generator=g, dtype=torch.float64) + 0.5
        return cls(weights, means, covs, schedule or Schedule("linear", 1000))

    # -- the noised marginal ----------------------------------------------------------------------------

    def _components(self, t) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(α, σ, α μ_k, C_k) at a scalar time t."""
        alpha, sigma = (float(v) for v in self.schedule.alpha_sigma(torch.as_tensor(float(t), dtype=torch.float64)))
        eye = torch.eye(self.dim, dtype=torch.float64)
        return alpha, sigma, alpha * self.means, alpha**2 * self.covariances + sigma**2 * eye

    def _log_joint(self, x: Tensor, mean: Tensor, cov: Tensor) -> tuple[Tensor, Tensor]:
        """log π_k N(x; mean_k, cov_k): (n, K), and C_k⁻¹ (x − mean_k): (n, K, D)."""
        chol = torch.linalg.cholesky(cov)  # (K, D, D)
        diff = x[:, None, :] - mean[None]  # (n, K, D)
        sol = torch.cholesky_solve(diff.permute(1, 2, 0), chol)  # (K, D, n)
        maha = (diff.permute(1, 2, 0) * sol).sum(1).T  # (n, K)
        logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        log_n = -0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))
        return torch.log(self.weights) + log_n, sol.permute(2, 0, 1)

    def _x(self, x: Tensor) -> Tensor:
        x = torch.as_tensor(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise DataError(f"points must have shape (n, {self.dim}), got {tuple(x.shape)}")
        return x.to(torch.float64)

    def log_prob(self, x: Tensor, t: float = 0.0) -> Tensor:
        """log q_t(x), (n,) float64."""
        _, _, mean, cov = self._components(t)
        return torch.logsumexp(self._log_joint(self._x(x), mean, cov)[0], dim=1)

    def score(self, x: Tensor, t: float) -> Tensor:
        """∇ log q_t(x), (n, D) float64."""
        _, _, mean, cov = self._components(t)
        log_joint, sol = self._log_joint(self._x(x), mean, cov)
        r = torch.softmax(log_joint, dim=1)
        return -(r[:, :, None] * sol).sum(1)

    def eps(self, x: Tensor, t: float) -> Tensor:
        """ε*(x, t) = −σ ∇ log q_t(x) = E[ε | x_t = x] (float64)."""
        _, sigma, _, _ = self._components(t)
        return -sigma * self.score(x, t)

    def x0(self, x: Tensor, t: float) -> Tensor:
        """E[x_0 | x_t = x] = (x + σ² ∇ log q_t(x)) / α (Tweedie)."""
        alpha, sigma, _, _ = self._components(t)
        return (self._x(x) + sigma**2 * self.score(x, t)) / alpha

    def __call__(self, x: Tensor, t: Tensor, cond=None) -> Tensor:
        """The sampler contract: ε* for x (n, D) at times t (n,) or a scalar, returned in x's dtype."""
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        xd = self._x(x)
        if t.numel() == 1 or bool((t == t[0]).all()):
            out = self.eps(xd, float(t[0]))
        else:
            out = torch.cat([self.eps(xd[i:i + 1], float(t[i])) for i in range(len(xd))])
        return out.to(x.dtype)

    # -- drawing -------------------------------------------------------------------------------------

    def sample_with_labels(self, n: int, generator: Seed = None) -> tuple[Tensor, Tensor]:
        g = make_generator(generator)
        k = torch.multinomial(self.weights, n, replacement=True, generator=g)
        z = torch.randn(n, self.dim, generator=g, dtype=torch.float64)
        return self.means[k] + (self._chol0[k] @ z[:, :, None])[..., 0], k

    def sample(self, n: int, generator: Seed = None) -> Tensor:
        """n draws of x_0, (n, D) float64."""
        return self.sample_with_labels(n, generator)[0]

    def entropy_mc(self, n: int = 200_000, generator: Seed = 0) -> float:
        """−E log q_0(x) by Monte Carlo (nats per example) — the best NLL a model can reach."""
        return float(-self.log_prob(self.sample(n, generator)).mean())


__all__ = ["MixtureTruth"]

"""The linear-Gaussian VAE in closed form: probabilistic PCA (Tipping & Bishop 1999) and factor analysis.

With p(z) = N(0, I_L) and a linear decoder p(x|z) = N(W z + b, Ψ), Ψ = diag(ψ) (ψ = σ² 1 for pPCA; a
conditional decoder adds V c to the mean), everything a VAE approximates is exact:

    marginal     p(x) = N(x; b, C),  C = W Wᵀ + Ψ,
                 log p(x) = −½ [D log 2π + log det C + (x − b)ᵀ C⁻¹ (x − b)]     (Cholesky C = R Rᵀ),
    posterior    p(z|x) = N(m, Σ),  Σ = (I + Wᵀ Ψ⁻¹ W)⁻¹,  m = Σ Wᵀ Ψ⁻¹ (x − b),
    pPCA MLE     S = (1/n) Σ_i (x_i − x̄)(x_i − x̄)ᵀ = U Λ Uᵀ, λ₁ ≥ … ≥ λ_D;
                 σ²_ML = (1/(D − L)) Σ_{j>L} λ_j,  W_ML = U_L (Λ_L − σ²_ML I)^{1/2},  b_ML = x̄,
                 (1/n) Σ_i log p(x_i) = −½ [D log 2π + Σ_{j≤L} log λ_j + (D − L) log σ²_ML + D]
    (Tipping & Bishop 1999, eqs. 7, 8 and 15; the last line because tr(C⁻¹S) = D at the optimum).

The exact posterior has a diagonal covariance exactly when Wᵀ Ψ⁻¹ W is diagonal (orthogonal columns for
pPCA, as W_ML has), so a VAE with a diagonal-Gaussian linear encoder can then hold it
(:func:`set_exact_posterior`), and its ELBO equals log p(x) (Lucas et al. 2019).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch

from kakusan.errors import DataError, KakusanError
from kakusan.vae.likelihoods import GaussianConfig, GaussianLikelihood
from kakusan.vae.nets import DenseEncoder, LinearConfig

Tensor = torch.Tensor
LOG_2PI = math.log(2 * math.pi)


class PPCA(NamedTuple):
    """pPCA parameters: ``mean`` b (D,), ``weight`` W (D, L), ``noise_var`` σ², and the mean ``log_likelihood``
    per example of the data it was fitted to (nats)."""

    mean: Tensor
    weight: Tensor
    noise_var: float
    log_likelihood: float


def linear_config(n_features: int, n_latent: int,
                  variance: Literal["fixed", "shared", "per_dim"] = "shared", n_classes: int = 0):
    """A :class:`~kakusan.vae.VAEConfig` for a linear VAE: pPCA (``shared``) or factor analysis (``per_dim``)."""
    from kakusan.vae.model import VAEConfig

    return VAEConfig(data_shape=(n_features,), n_latent=n_latent, encoder=LinearConfig(), decoder=LinearConfig(),
                     likelihood=GaussianConfig(variance), n_classes=n_classes)


def is_linear_gaussian(model) -> bool:
    """Whether ``model`` is a VAE whose marginal is Gaussian: linear decoder, Gaussian latent and likelihood."""
    return (isinstance(model.config.decoder, LinearConfig) and model.config.latent == "gaussian"
            and isinstance(model.likelihood, GaussianLikelihood) and model.likelihood.config.variance != "decoder")


def _check(model) -> None:
    if not is_linear_gaussian(model):
        raise KakusanError("this needs a linear decoder with a Gaussian likelihood of fixed, shared or per_dim "
                           "variance: build the VAE with kakusan.vae.linear_gaussian.linear_config")


def decoder_parts(model) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """(W (D, L), b (D,), V (D, C) or None, ψ (D,)) of a linear-Gaussian VAE's decoder."""
    _check(model)
    layer = model.decoder.net[0]
    L = model.n_latent
    W, V = layer.weight[:, :L], (layer.weight[:, L:] if model.n_classes else None)
    psi = torch.exp(2 * model.likelihood.log_std).expand(model.n_features)
    return W, layer.bias, V, psi


def _centre(model, xf: Tensor, c: Tensor | None) -> Tensor:
    W, b, V, _ = decoder_parts(model)
    return xf - b - (0 if c is None else c @ V.T)


def log_marginal(model, xf: Tensor, c: Tensor | None = None) -> Tensor:
    """log N(x; b + V c, W Wᵀ + Ψ) for flat x (n, D) and one-hot c: (n,) (see the module docstring)."""
    W, _, _, psi = decoder_parts(model)
    cov = W @ W.T + torch.diag(psi)
    R = torch.linalg.cholesky(cov)
    r = torch.linalg.solve_triangular(R, _centre(model, xf, c).T, upper=False)  # (D, n)
    log_det = 2 * torch.log(torch.diagonal(R)).sum()
    return -0.5 * (model.n_features * LOG_2PI + log_det + (r * r).sum(0))


def exact_posterior(model, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """p(z|x) = N(m, Σ): m (n, L) and Σ (L, L), Σ = (I + Wᵀ Ψ⁻¹ W)⁻¹, m = Σ Wᵀ Ψ⁻¹ (x − b − V c)."""
    xf, c = model._inputs(x, cond)
    W, _, _, psi = decoder_parts(model)
    A = W.T / psi  # Wᵀ Ψ⁻¹ (L, D)
    cov = torch.linalg.inv(torch.eye(model.n_latent, dtype=W.dtype, device=W.device) + A @ W)
    return _centre(model, xf, c) @ (cov @ A).T, cov


def posterior_gap(model, x: Tensor, cond: Tensor | None = None) -> Tensor:
    """KL(q(z|x) ‖ p(z|x)) = log p(x) − ELBO(x) in closed form for the model's own encoder, (n,).

    KL(N(μ, diag s²) ‖ N(m, Σ)) = ½ [tr(Σ⁻¹ diag s²) + (m − μ)ᵀ Σ⁻¹ (m − μ) − L + log det Σ − Σ_j log s_j²].
    """
    m, cov = exact_posterior(model, x, cond)
    q = model.encode(x, cond)
    prec = torch.linalg.inv(cov)
    d = m - q.mean
    trace = (torch.diagonal(prec) * torch.exp(q.log_var)).sum(-1)
    maha = ((d @ prec) * d).sum(-1)
    return 0.5 * (trace + maha - model.n_latent + torch.logdet(cov) - q.log_var.sum(-1))


@torch.no_grad()
def set_exact_posterior(model, tol: float = 1e-6) -> None:
    """Set a linear encoder to the exact posterior: mean m(x) and log-variance log diag Σ (input-free).

    Needs Wᵀ Ψ⁻¹ W diagonal (then Σ is diagonal); otherwise a diagonal q cannot equal p(z|x).
    """
    _check(model)
    if not (isinstance(model.encoder, DenseEncoder) and isinstance(model.config.encoder, LinearConfig)):
        raise KakusanError("set_exact_posterior needs a linear encoder (encoder=LinearConfig())")
    W, b, V, psi = decoder_parts(model)
    A = W.T / psi
    cov = torch.linalg.inv(torch.eye(model.n_latent, dtype=W.dtype, device=W.device) + A @ W)
    off = cov - torch.diag(torch.diagonal(cov))
    if float(off.abs().max()) > tol * float(torch.diagonal(cov).abs().max()):
        raise KakusanError("the exact posterior has correlated latents (WᵀΨ⁻¹W is not diagonal), which a diagonal "
                           "q cannot hold: orthogonalise W's columns (pPCA's W_ML has orthogonal columns)")
    gain = cov @ A  # (L, D): m = gain (x − b − V c)
    layer, L = model.encoder.net[0], model.n_latent
    layer.weight.zero_()
    layer.weight[:L, :model.n_features] = gain
    if V is not None:
        layer.weight[:L, model.n_features:] = -gain @ V
    layer.bias[:L] = -gain @ b
    layer.bias[L:] = torch.log(torch.diagonal(cov))


def ppca_max_likelihood(x: Tensor, n_latent: int) -> PPCA:
    """The pPCA maximum-likelihood fit of data x (n, D) in closed form (see the module docstring)."""
    if x.ndim != 2 or not 0 < n_latent < x.shape[1]:
        raise DataError(f"pPCA needs data of shape (n, D) with 0 < n_latent < D, got {tuple(x.shape)} and "
                        f"n_latent={n_latent}")
    n, D = x.shape
    mean = x.mean(0)
    S = (x - mean).T @ (x - mean) / n
    lam, U = torch.linalg.eigh(S)
    lam, U = lam.flip(0), U.flip(1)  # descending
    sigma2 = float(lam[n_latent:].mean())
    W = U[:, :n_latent] * torch.sqrt(torch.clamp(lam[:n_latent] - sigma2, min=0))
    ll = -0.5 * (D * LOG_2PI + float(torch.log(lam[:n_latent]).sum()) + (D - n_latent) * math.log(sigma2) + D)
    return PPCA(mean, W, sigma2, ll)


@torch.no_grad()
def set_decoder(model, mean: Tensor, weight: Tensor, noise_var: float | Tensor) -> None:
    """Load pPCA / factor-analysis parameters b (D,), W (D, L), ψ (scalar or (D,)) into a linear-Gaussian VAE."""
    _check(model)
    layer, L = model.decoder.net[0], model.n_latent
    layer.weight[:, :L] = weight
    layer.bias.copy_(mean)
    model.likelihood.log_std.copy_(0.5 * torch.log(torch.as_tensor(noise_var, dtype=layer.weight.dtype)).expand_as(
        model.likelihood.log_std))


__all__ = ["PPCA", "decoder_parts", "exact_posterior", "is_linear_gaussian", "linear_config", "log_marginal",
           "posterior_gap", "ppca_max_likelihood", "set_decoder", "set_exact_posterior"]

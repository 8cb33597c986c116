"""The linear-Gaussian hierarchy in closed form: exact marginal and exact posteriors of a linear HVAE.

With every net of an :class:`~kakusan.vae.HVAE` a ``LinearConfig`` and a Gaussian likelihood, the model is

    z_L ~ N(0, I),   z_l | z_{l+1} ~ N(A_l z_{l+1} + a_l, D_l),   x | z_1 ~ N(B z_1 + b, Ψ)

(D_l, Ψ diagonal; a conditional model adds V c to each mean), so every marginal is Gaussian. Top-down,

    m_L = 0, Σ_L = I;   m_l = A_l m_{l+1} + a_l,  Σ_l = A_l Σ_{l+1} A_lᵀ + D_l;
    x ~ N(B m_1 + b, B Σ_1 Bᵀ + Ψ)

— for two layers x ~ N(B a_1 + b, B (A_1 A_1ᵀ + D_1) Bᵀ + Ψ) — and :func:`log_marginal` evaluates it by a
Cholesky factorisation.

Exact posteriors (:func:`set_exact_posterior`, unconditional models). The posterior of a Markov chain is
Markov the other way, p(z|x) = p(z_1|x) Π_{l≥2} p(z_l|z_{l−1}), with

    p(z_1|x):        precision Σ_1⁻¹ + Bᵀ Ψ⁻¹ B,
                     mean S (Σ_1⁻¹ m_1 + Bᵀ Ψ⁻¹ (x − b)),
    p(z_l|z_{l−1}):  precision Σ_l⁻¹ + A_{l−1}ᵀ D_{l−1}⁻¹ A_{l−1},
                     mean S (Σ_l⁻¹ m_l + A_{l−1}ᵀ D_{l−1}⁻¹ (z_{l−1} − a_{l−1}))

(S the inverse precision), which the Markov HVAE's linear layers hold when each S is diagonal. The ladder
factorises the other way, p(z_l | z_{l+1}, x) ∝ p(z_l|z_{l+1}) p(x|z_l), and with x | z_l ~ N(B_l z_l + o_l, C_l)
(B_1 = B, o_1 = b, C_1 = Ψ; B_{l+1} = B_l A_l, o_{l+1} = B_l a_l + o_l, C_{l+1} = B_l D_l B_lᵀ + C_l) the
likelihood of z_l is ∝ N(z_l; μ̂_l, P_l⁻¹), P_l = B_lᵀ C_l⁻¹ B_l, μ̂_l = P_l⁻¹ B_lᵀ C_l⁻¹ (x − o_l): exactly
what the precision-weighted merge combines with the prior, so a ladder whose bottom-up heads output
(μ̂_l, diag P_l⁻¹) — and p(z_L|x) at the top — is exact when each P_l is diagonal. Then every draw's
log p(x, z) − log q(z|x) equals log p(x).

Diagonal structure that admits both: B = U diag(s) with orthonormal U and Ψ = σ² I, each A_l zero off its
diagonal (A_l[i, i] = t_i), D_l diagonal.
"""

from __future__ import annotations

import math

import torch

from kakusan.errors import KakusanError
from kakusan.vae.likelihoods import GaussianLikelihood
from kakusan.vae.nets import LinearConfig

Tensor = torch.Tensor
LOG_2PI = math.log(2 * math.pi)


def is_linear_gaussian(model) -> bool:
    """Whether an HVAE is a linear-Gaussian hierarchy (all nets linear, Gaussian likelihood without a decoded
    variance)."""
    return (all(isinstance(h, LinearConfig) for h in model.config.hidden)
            and isinstance(model.likelihood, GaussianLikelihood) and model.likelihood.config.variance != "decoder")


def _check(model) -> None:
    if not is_linear_gaussian(model):
        raise KakusanError("this needs a linear-Gaussian HVAE: every hidden entry LinearConfig() and a Gaussian "
                           "likelihood of fixed, shared or per_dim variance; use estimate_nll for other models")


def prior_parts(model, l: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """(A_l (L_l, L_{l+1}), a_l, V_l (L_l, C) or None, D_l (L_l,) variances) of p(z_l | z_{l+1}), l = 1 … L−1."""
    _check(model)
    head = model.priors[l - 1].head
    n = model.latents[l]
    W = head.mean.weight
    return W[:, :n], head.mean.bias, (W[:, n:] if model.n_classes else None), torch.exp(head.log_var)


def decoder_parts(model) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """(B (D, L_1), b (D,), V (D, C) or None, ψ (D,) variances) of p(x | z_1)."""
    _check(model)
    layer, n = model.decoder.net[0], model.latents[0]
    psi = torch.exp(2 * model.likelihood.log_std).expand(model.n_features)
    return layer.weight[:, :n], layer.bias, (layer.weight[:, n:] if model.n_classes else None), psi


def marginals(model, c: Tensor | None = None) -> tuple[list[Tensor], list[Tensor]]:
    """The means (n or 1, L_l) and covariances (L_l, L_l) of z_1 … z_L (module docstring), bottom first."""
    _check(model)
    dtype, device = model._dtype(), model._device()
    m = torch.zeros(1, model.latents[-1], dtype=dtype, device=device)
    S = torch.eye(model.latents[-1], dtype=dtype, device=device)
    means, covs = [m], [S]
    for l in reversed(range(1, model.n_layers)):
        A, a, V, d = prior_parts(model, l)
        m = m @ A.T + a + (0 if c is None else c @ V.T)
        S = A @ S @ A.T + torch.diag(d)
        means.insert(0, m)
        covs.insert(0, S)
    return means, covs


def log_marginal(model, xf: Tensor, c: Tensor | None = None) -> Tensor:
    """log N(x; B m_1 + b (+ V c), B Σ_1 Bᵀ + Ψ) for flat x (n, D): (n,)."""
    means, covs = marginals(model, c)
    B, b, V, psi = decoder_parts(model)
    mean = means[0] @ B.T + b + (0 if c is None else c @ V.T)
    R = torch.linalg.cholesky(B @ covs[0] @ B.T + torch.diag(psi))
    r = torch.linalg.solve_triangular(R, (xf - mean).T, upper=False)  # (D, n)
    return -0.5 * (model.n_features * LOG_2PI + 2 * torch.log(torch.diagonal(R)).sum() + (r * r).sum(0))


@torch.no_grad()
def set_linear_hierarchy(model, priors: list[tuple[Tensor, Tensor, Tensor]], decoder: tuple[Tensor, Tensor, Tensor]
                         ) -> None:
    """Load a linear-Gaussian hierarchy: ``priors`` [(A_1, a_1, D_1), …, (A_{L−1}, a_{L−1}, D_{L−1})] (D_l the
    (L_l,) variances) and ``decoder`` (B, b, ψ) (ψ a scalar or (D,) variances, as the likelihood allows)."""
    _check(model)
    if len(priors) != model.n_layers - 1:
        raise KakusanError(f"need {model.n_layers - 1} prior layers (A, a, D), got {len(priors)}")
    for l, (A, a, d) in enumerate(priors, start=1):
        head, n = model.priors[l - 1].head, model.latents[l]
        head.mean.weight[:, :n] = A
        head.mean.bias.copy_(a)
        head.log_var.copy_(torch.log(torch.as_tensor(d, dtype=head.log_var.dtype)).expand_as(head.log_var))
    B, b, psi = decoder
    layer = model.decoder.net[0]
    layer.weight[:, :model.latents[0]] = B
    layer.bias.copy_(b)
    log_std = 0.5 * torch.log(torch.as_tensor(psi, dtype=layer.weight.dtype)).flatten()
    target = model.likelihood.log_std
    if log_std.numel() not in (1, target.numel()):
        raise KakusanError(f"the likelihood holds {target.numel()} noise variance(s), got {log_std.numel()}: "
                           "per-dimension variances need GaussianConfig('per_dim')")
    target.copy_(log_std.expand_as(target))


def _diagonal(S: Tensor, tol: float, what: str) -> Tensor:
    off = S - torch.diag(torch.diagonal(S))
    if float(off.abs().max()) > tol * float(torch.diagonal(S).abs().max()):
        raise KakusanError(f"the exact {what} has correlated units, which a diagonal Gaussian cannot hold: use the "
                           "diagonal structure in kakusan.vae.linear_hierarchy's docstring")
    return torch.diagonal(S)


@torch.no_grad()
def set_exact_posterior(model, tol: float = 1e-8) -> None:
    """Set a linear HVAE's inference layers to the exact posterior (module docstring), Markov or ladder.

    Needs an unconditional model whose posterior conditionals are diagonal; otherwise a one-line error.
    """
    _check(model)
    if model.n_classes:
        raise KakusanError("set_exact_posterior takes an unconditional HVAE (n_classes=0)")
    means, covs = marginals(model)
    B, b, _, psi = decoder_parts(model)
    eye = [torch.eye(n, dtype=B.dtype, device=B.device) for n in model.latents]
    heads = model.up_heads
    if model.inference == "markov":
        for l in range(model.n_layers):
            prec_prior = torch.linalg.inv(covs[l])
            if l == 0:
                M, off, noise = B, b, psi  # parent x = B z_1 + b + noise
            else:
                M, off, _, noise = prior_parts(model, l)
            gain_in = M.T / noise  # Mᵀ N⁻¹
            S = torch.linalg.inv(prec_prior + gain_in @ M)
            var = _diagonal(S, tol, f"posterior of z{l + 1}")
            G = torch.diag(var) @ gain_in
            g = (torch.diag(var) @ (prec_prior @ means[l][0])) - G @ off
            _set_head(heads[l], G, g, var)
        return
    Bl, ol, Cl = B, b, torch.diag(psi)
    for l in range(model.n_layers):
        gain_in = torch.linalg.solve(Cl, Bl).T  # B_lᵀ C_l⁻¹
        P = gain_in @ Bl
        if l == model.n_layers - 1:  # the top layer's q is p(z_L|x) itself
            S = torch.linalg.inv(eye[l] + P)
            var = _diagonal(S, tol, f"posterior of z{l + 1}")
        else:
            var = 1 / _diagonal(P, tol, f"likelihood precision of z{l + 1}")
        G = torch.diag(var) @ gain_in
        _set_head(heads[l], G, -G @ ol, var)
        if l < model.n_layers - 1:
            A, a, _, d = prior_parts(model, l + 1)
            Bl, ol, Cl = Bl @ A, Bl @ a + ol, Bl @ torch.diag(d) @ Bl.T + Cl


def _set_head(head, G: Tensor, g: Tensor, var: Tensor) -> None:
    head.mean.weight.copy_(G)
    head.mean.bias.copy_(g)
    head.log_var.copy_(torch.log(var))


__all__ = ["decoder_parts", "is_linear_gaussian", "log_marginal", "marginals", "prior_parts", "set_exact_posterior",
           "set_linear_hierarchy"]

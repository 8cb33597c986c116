"""EM: maximum likelihood with hidden variables by minimising a Jensen surrogate of the NLL.

For a model q_θ(x, z) with a hidden variable z and any distribution r(z) over it, Jensen's
inequality gives the evidence lower bound

    log q_θ(x) ≥ F(r, θ; x) = Σ_z r(z) [log q_θ(x, z) − log r(z)],

with equality when r(z) = q_θ(z | x). So −F(r_t, ·) is a surrogate (majoriser) of the negative
log-likelihood that touches it at θ_t. One EM iteration is

1. E-step: r_t = q_{θ_t}(z | x) (:func:`e_step`), making the bound tight at θ_t;
2. M-step: θ_{t+1} = argmax_θ Σ_i F(r_t, θ; x_i) (:func:`m_step`, closed form for a Gaussian mixture);

hence  ℓ(θ_t) = F(r_t, θ_t) ≤ F(r_t, θ_{t+1}) ≤ ℓ(θ_{t+1}),  and the NLL never increases.
Reference: Dempster, Laird & Rubin (1977); Neal & Hinton (1998), "A view of the EM algorithm".

:func:`e_step` and :func:`jensen_bound` work for any model whose hidden variable can be listed,
i.e. one that exposes ``joint_log_prob(x) -> (n, K)``; :func:`m_step` is the Gaussian-mixture
closed form. :func:`fit_em` is the driver. The mathematics is in ``docs/hidden-em.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import torch

from kakusan.errors import KakusanError
from kakusan.mixture import DTYPE, GaussianMixture, MixtureParams, check_points
from kakusan.runtime import Seed, make_generator

InitMethod = Literal["kmeans++", "random", "model"]
INIT_METHODS: tuple[str, ...] = ("kmeans++", "random", "model")


class LatentModel(Protocol):
    """A model whose hidden variable takes K listable values: log q(x_i, z = k) for all i, k."""

    def joint_log_prob(self, x: torch.Tensor) -> torch.Tensor:  # (n, D) -> (n, K)
        ...


@dataclass(frozen=True)
class Posterior:
    """The E-step's output: r_ik = q_θ(z = k | x_i) and log q_θ(x_i) at the θ it was computed for.

    Attributes
    ----------
    resp : Tensor, shape (n, K)
        Responsibilities; rows sum to one.
    log_prob : Tensor, shape (n,)
        log q_θ(x_i), which equals the Jensen bound F(resp, θ; x_i).
    """

    resp: torch.Tensor
    log_prob: torch.Tensor

    @property
    def log_likelihood(self) -> float:
        """Mean log-likelihood (1/n) Σ_i log q_θ(x_i) in nats."""
        return float(self.log_prob.mean())


@dataclass(frozen=True)
class EMProgress:
    """What :func:`fit_em` hands its callback after iteration ``iteration`` (1-based).

    ``log_likelihood`` is ℓ(θ_t) after the M-step; ``bound`` is (1/n) Σ_i F(r_{t−1}, θ_t; x_i),
    the surrogate's value at the new θ (mean per sample, nats).
    """

    iteration: int
    log_likelihood: float
    bound: float


@dataclass
class EMResult:
    """The outcome of :func:`fit_em`.

    Attributes
    ----------
    model : GaussianMixture
        The fitted model (the same object that was passed in).
    log_likelihood : list of float, length n_iter + 1
        Mean log-likelihood ℓ(θ_t) in nats per sample for t = 0 (after initialisation) … n_iter.
    bound : list of float, length n_iter
        bound[t] = (1/n) Σ_i F(r_t, θ_{t+1}; x_i), so log_likelihood[t] ≤ bound[t] ≤ log_likelihood[t+1].
    n_iter : int
        Number of EM iterations (M-steps) done.
    converged : bool
        Whether |ℓ(θ_{t+1}) − ℓ(θ_t)| < tol was reached before max_iter.
    max_decrease : float
        The largest drop ℓ(θ_t) − ℓ(θ_{t+1}) seen (0.0 if the likelihood never fell). EM never
        lowers the likelihood, so anything above rounding (or, with reg_covar > 0, O(reg_covar)
        effects) signals a problem.
    """

    model: GaussianMixture
    log_likelihood: list[float] = field(default_factory=list)
    bound: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    max_decrease: float = 0.0


def e_step(model: LatentModel, x: torch.Tensor) -> Posterior:
    """E-step: r_ik = q_θ(z = k | x_i) = exp(log q_θ(x_i, k) − log q_θ(x_i)), making the Jensen bound tight.

    Parameters
    ----------
    model : LatentModel
        Anything with ``joint_log_prob(x) -> (n, K)``.
    x : Tensor, shape (n, D)

    Returns
    -------
    Posterior
        Responsibilities (n, K) and log q_θ(x_i) (n,).
    """
    with torch.no_grad():
        joint = model.joint_log_prob(x)  # (n, K)
        log_prob = torch.logsumexp(joint, dim=1)  # (n,)
        return Posterior(resp=torch.exp(joint - log_prob[:, None]), log_prob=log_prob)


def jensen_bound(model: LatentModel, x: torch.Tensor, resp: torch.Tensor) -> torch.Tensor:
    """Jensen (evidence lower) bound F(r, θ; x_i) = Σ_k r_ik [log q_θ(x_i, k) − log r_ik] ≤ log q_θ(x_i); shape (n,).

    Parameters
    ----------
    model : LatentModel
        Anything with ``joint_log_prob(x) -> (n, K)``.
    x : Tensor, shape (n, D)
    resp : Tensor, shape (n, K)
        Any distribution r_i over the hidden variable for each point (rows sum to one); 0 log 0 = 0.

    Notes
    -----
    F = log q_θ(x_i) − KL(r_i || q_θ(· | x_i)), so F equals the log-likelihood exactly when r is the
    posterior and is smaller otherwise.
    """
    joint = model.joint_log_prob(x)  # (n, K)
    cross = torch.where(resp > 0, resp * joint, torch.zeros((), dtype=joint.dtype))
    return cross.sum(1) - torch.special.xlogy(resp, resp).sum(1)


def m_step(model: GaussianMixture, x: torch.Tensor, resp: torch.Tensor, *, reg_covar: float = 1e-6) -> MixtureParams:
    """M-step: θ = argmax_θ Σ_i F(r_i, θ; x_i) in closed form, set on ``model`` and returned.

    With N_k = Σ_i r_ik:  π_k = N_k / n,  μ_k = Σ_i r_ik x_i / N_k,
    Σ_k = Σ_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ / N_k + reg_covar · I  (diagonal only for ``"diag"``).

    Parameters
    ----------
    model : GaussianMixture
    x : Tensor, shape (n, D)
    resp : Tensor, shape (n, K)
        Responsibilities from :func:`e_step` (or one-hot labels).
    reg_covar : float
        Added to each covariance's diagonal so that a component collapsing onto a few points keeps
        a positive-definite covariance. With reg_covar = 0 the step is the exact maximiser.

    Notes
    -----
    N_k gets 10·eps added (as scikit-learn does) so that an empty component gives μ_k ≈ 0 and
    Σ_k = reg_covar · I instead of NaN.
    """
    with torch.no_grad():
        x = x.to(DTYPE)
        resp = resp.to(DTYPE)
        nk = resp.sum(0) + 10 * torch.finfo(DTYPE).eps  # (K,)
        means = (resp.T @ x) / nk[:, None]  # (K, D)
        diff = x[None, :, :] - means[:, None, :]  # (K, n, D)
        if model.covariance_type == "full":
            cov = torch.einsum("nk,kni,knj->kij", resp, diff, diff) / nk[:, None, None]  # (K, D, D)
            cov = cov + reg_covar * torch.eye(model.dim, dtype=DTYPE, device=x.device)
        else:
            cov = torch.einsum("nk,kni->ki", resp, diff**2) / nk[:, None] + reg_covar  # (K, D)
        weights = nk / nk.sum()
        params = MixtureParams(weights, means, cov)
        model.set_params(params)
        return params


def kmeans_plusplus(x: torch.Tensor, n_components: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: first centre uniform, each next one drawn ∝ squared distance to the nearest; (K, D).

    Reference: Arthur & Vassilvitskii (2007), "k-means++: the advantages of careful seeding".
    """
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=generator, device=x.device))
    centres = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)  # (n,)
    for _ in range(1, n_components):
        probs = d2 if float(d2.sum()) > 0 else torch.ones_like(d2)
        idx = int(torch.multinomial(probs, 1, generator=generator))
        centres.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    return torch.stack(centres)


def nearest_centre_resp(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """One-hot responsibilities assigning each point to its nearest centre (Euclidean); shape (n, K)."""
    labels = torch.cdist(x, centres).argmin(1)  # (n,)
    return torch.nn.functional.one_hot(labels, centres.shape[0]).to(DTYPE)


def initialize(
    model: GaussianMixture,
    x: torch.Tensor,
    init: InitMethod | MixtureParams = "kmeans++",
    *,
    reg_covar: float = 1e-6,
    generator: Seed = None,
) -> MixtureParams:
    """Set the starting θ_0 on ``model`` and return it.

    Parameters
    ----------
    model : GaussianMixture
    x : Tensor, shape (n, D)
    init : {"kmeans++", "random", "model"} or MixtureParams
        ``"kmeans++"``: k-means++ centres, points assigned to the nearest, then one M-step.
        ``"random"``: K distinct data points drawn uniformly as centres, then the same.
        ``"model"``: keep the model's current parameters. A :class:`MixtureParams`: use it as θ_0.
    reg_covar : float
        Passed to the M-step that turns the hard assignment into θ_0.
    generator : torch.Generator, int or None
        Randomness for the centres.
    """
    if isinstance(init, MixtureParams):
        model.set_params(init)
        return model.get_params()
    if init not in INIT_METHODS:
        raise KakusanError(f"unknown init {init!r}: use one of {', '.join(INIT_METHODS)} or a MixtureParams")
    if init == "model":
        return model.get_params()
    g = make_generator(generator, device=x.device)
    if init == "kmeans++":
        centres = kmeans_plusplus(x, model.n_components, g)
    else:
        centres = x[torch.randperm(x.shape[0], generator=g, device=x.device)[: model.n_components]]
    return m_step(model, x, nearest_centre_resp(x, centres), reg_covar=reg_covar)


def fit_em(
    model: GaussianMixture,
    x: torch.Tensor | np.ndarray,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    reg_covar: float = 1e-6,
    init: InitMethod | MixtureParams = "kmeans++",
    generator: Seed = None,
    callback: Callable[[EMProgress], None] | None = None,
) -> EMResult:
    """Fit a Gaussian mixture by EM: alternate :func:`e_step` and :func:`m_step` until ℓ changes by < tol.

    Parameters
    ----------
    model : GaussianMixture
        Fitted in place.
    x : array-like, shape (n, D)
        Data, n ≥ K finite points.
    max_iter : int
        Most EM iterations (M-steps); 0 only initialises.
    tol : float
        Stop when the mean log-likelihood (nats per sample) changes by less than this.
    reg_covar : float
        Ridge added to every covariance's diagonal; keeps collapsed components finite.
    init : {"kmeans++", "random", "model"} or MixtureParams
        How θ_0 is chosen; see :func:`initialize`.
    generator : torch.Generator, int or None
        Randomness for the initialisation; the same seed gives the same fit.
    callback : callable, optional
        Called with an :class:`EMProgress` after each iteration.

    Returns
    -------
    EMResult
        The model, ℓ(θ_t) for t = 0 … n_iter, the surrogate values, n_iter, converged, max_decrease.
    """
    x = _check_fit_args(model, x, max_iter, tol, reg_covar)
    initialize(model, x, init, reg_covar=reg_covar, generator=generator)
    post = e_step(model, x)
    result = EMResult(model=model, log_likelihood=[post.log_likelihood])
    for it in range(1, max_iter + 1):
        m_step(model, x, post.resp, reg_covar=reg_covar)
        with torch.no_grad():
            bound = float(jensen_bound(model, x, post.resp).mean())
        post = e_step(model, x)
        result.bound.append(bound)
        result.log_likelihood.append(post.log_likelihood)
        result.n_iter = it
        change = result.log_likelihood[-1] - result.log_likelihood[-2]
        result.max_decrease = max(result.max_decrease, -change)
        if callback is not None:
            callback(EMProgress(it, post.log_likelihood, bound))
        if abs(change) < tol:
            result.converged = True
            break
    return result


def _check_fit_args(model: GaussianMixture, x: torch.Tensor | np.ndarray, max_iter: int, tol: float,
                    reg_covar: float) -> torch.Tensor:
    if not isinstance(model, GaussianMixture):
        raise KakusanError(f"fit_em fits a GaussianMixture, got {type(model).__name__}")
    x = check_points(x, model.dim, model.means.device)
    if x.shape[0] < model.n_components:
        raise KakusanError(
            f"{x.shape[0]} data points cannot fit {model.n_components} components: use n_components ≤ {x.shape[0]}"
        )
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 0:
        raise KakusanError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    if not tol >= 0:
        raise KakusanError(f"tol must be >= 0, got {tol!r}")
    if not reg_covar >= 0:
        raise KakusanError(f"reg_covar must be >= 0, got {reg_covar!r}")
    return x

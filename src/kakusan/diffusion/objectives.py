"""Training objectives for diffusion models, for :func:`kakusan.train.fit`: L_simple, the VLB, and their hybrid.

One step of :class:`DiffusionLoss` on a batch x_0 (data space, converted by ``model.to_model``): t ~ uniform
{1 … T} (or importance-sampled), ε ~ N(0, I), x_t = α_t x_0 + σ_t ε, one network call, then

- ``"simple"`` (Ho et al. 2020): L_simple = ‖ε − ε̂‖² / D, the mean over dimensions of the ε error, *whatever
  the model's target*. It is computed as the target's own squared error times its SNR weight —
  ‖ε − ε̂‖² = SNR(t) ‖x_0 − x̂_0‖² = α_t² ‖v − v̂‖² at the same x_t (:mod:`~kakusan.diffusion.process`) — which
  is the same number and the same gradient as converting the prediction with ``to_eps``, without dividing
  by a small σ_t; so every target optimises the same L_simple.
- ``"vlb"``: the one-t unbiased estimate of the VLB (:mod:`~kakusan.diffusion.vlb`),
  T · w_t · L_{t−1} + L_T with w_t = 1 (uniform t) or 1/(T p_t) (importance sampling, Nichol & Dhariwal
  §3.3), where L_0 is the decoder term at t = 1; as a loss it is divided by D ln 2 (bits per dimension).
- ``"hybrid"`` (Nichol & Dhariwal 2021, eq. 16): L_simple + λ · L_vlb with the reverse mean held fixed
  (x̂_0 detached) in L_vlb, so the VLB trains only the learned variances and L_simple the mean; L_vlb in
  bits per dimension as above, so λ = 0.001 is their weighting. Needs ``learn_variance=True``.

Classifier-free guidance: with probability ``cond_drop`` a label becomes the null label ``model.n_classes``
(Ho & Salimans 2022). Batches are x, (x, labels) or {"x": x, "cond": labels}, in data space (8-bit images
stay on their grid k/255: the VLB's discretised decoder is a likelihood of exactly those values).

Randomness, all from the loop's generator (on the data's device), in this order: the dropout uniforms (n,)
(conditional models with labels only), t (n,), ε (the batch's shape). The importance sampler's history is the
objective's state (``state_dict``), saved with every checkpoint, so a run resumes exactly; it is updated only
when gradients are enabled (training), in the order of the examples.

``metrics`` per example: ``mse`` (L_simple), ``vlb`` (the one-t VLB estimate in nats per example, data space:
the Jacobian is added for continuous data) and ``bpd`` (the same in bits per dimension, 8-bit data only).

API: ``DiffusionLoss(loss, t_sampling, cond_drop, hybrid_weight, variance)`` with ``__call__(model, batch,
generator) -> StepOutput``, ``terms(model, x0, t, eps, cond, weights)``, ``state_dict``/``load_state_dict``;
``drop_labels(cond, n_classes, p, generator)``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from kakusan.diffusion.process import to_x0
from kakusan.diffusion.vlb import ImportanceSampler, Variance, log_jacobian, prior_kl, term_from_prediction
from kakusan.errors import KakusanError
from kakusan.runtime import make_generator
from kakusan.train import StepOutput
from kakusan.vae.objectives import split_batch

Tensor = torch.Tensor
LOSSES = ("simple", "vlb", "hybrid")
T_SAMPLING = ("uniform", "importance")


def drop_labels(cond: Tensor | None, n_classes: int, p: float, generator: torch.Generator) -> Tensor | None:
    """Each label replaced by the null label ``n_classes`` with probability p (draws n uniforms; none when there
    are no labels, the model is unconditional or p = 0)."""
    if cond is None or not n_classes or p <= 0:
        return cond
    u = torch.rand(len(cond), generator=generator, device=generator.device).to(cond.device)
    return torch.where(u < p, torch.full_like(cond, n_classes), cond)


def _col(a: Tensor, x: Tensor) -> Tensor:
    return a.reshape(a.shape + (1,) * (x.ndim - 1))


class DiffusionLoss:
    """A diffusion training objective: ``"simple"``, ``"vlb"`` or ``"hybrid"`` (module docstring).

    Parameters
    ----------
    loss : ``"simple"`` (L_simple), ``"vlb"`` (the VLB) or ``"hybrid"`` (L_simple + λ L_vlb, learned variances).
    t_sampling : ``"uniform"``, or ``"importance"`` (p_t ∝ √E[L_t²], :class:`~kakusan.diffusion.vlb.
        ImportanceSampler`; for ``loss="vlb"`` only, as L_simple's weighting would change).
    cond_drop : probability that a label becomes the null label (classifier-free guidance).
    hybrid_weight : λ of the hybrid loss.
    variance : the fixed reverse variance for the VLB of a model that does not learn it (``"posterior"`` β̃_t,
        the default, or ``"beta"`` β_t).
    weighting : the space in which the squared error of ``"simple"`` (and ``"hybrid"``) is measured, whatever the
        network predicts: ``"eps"`` ‖ε − ε̂‖² (L_simple, the default), ``"x0"`` ‖x_0 − x̂_0‖² = ‖ε − ε̂‖²/SNR, or
        ``"v"`` ‖v − v̂‖² = ‖ε − ε̂‖²/α² (the v-loss, Salimans & Ho 2022). The metric ``mse`` stays the ε-MSE.
    """

    def __init__(self, loss: Literal["simple", "vlb", "hybrid"] = "simple",
                 t_sampling: Literal["uniform", "importance"] = "uniform", cond_drop: float = 0.1,
                 hybrid_weight: float = 0.001, variance: Variance | None = None,
                 weighting: Literal["eps", "x0", "v"] = "eps"):
        if loss not in LOSSES:
            raise KakusanError(f"unknown diffusion loss {loss!r}: choose {', '.join(LOSSES)}")
        if t_sampling not in T_SAMPLING:
            raise KakusanError(f"unknown t_sampling {t_sampling!r}: choose uniform or importance")
        if t_sampling == "importance" and loss != "vlb":
            raise KakusanError(f"importance sampling of t reweights the VLB only: use loss='vlb', or "
                               f"t_sampling='uniform' with loss={loss!r}")
        if not 0 <= cond_drop <= 1:
            raise KakusanError(f"cond_drop must lie in [0, 1], got {cond_drop}")
        if not hybrid_weight >= 0:
            raise KakusanError(f"hybrid_weight must be non-negative, got {hybrid_weight}")
        if weighting not in ("eps", "x0", "v"):
            raise KakusanError(f"unknown weighting {weighting!r}: choose eps, x0 or v")
        self.loss, self.t_sampling, self.weighting = loss, t_sampling, weighting
        self.cond_drop, self.hybrid_weight, self.variance = float(cond_drop), float(hybrid_weight), variance
        self.sampler: ImportanceSampler | None = None

    def __repr__(self) -> str:
        return (f"DiffusionLoss({self.loss!r}, t_sampling={self.t_sampling!r}, cond_drop={self.cond_drop}, "
                f"hybrid_weight={self.hybrid_weight})")

    # -- one step ----------------------------------------------------------------------------------------

    def __call__(self, model, batch: Any, generator: torch.Generator) -> StepOutput:
        data, cond = split_batch(batch)
        x0 = model.to_model(data)
        n, T = len(x0), model.schedule.T
        g = make_generator(generator, x0.device)
        if hasattr(model, "check_cond"):
            cond = model.check_cond(cond, n)
        cond = drop_labels(cond, getattr(model, "n_classes", 0), self.cond_drop, g)
        if self.t_sampling == "importance":
            if self.sampler is None or self.sampler.T != T:
                self.sampler = ImportanceSampler(T)
            t, weights = self.sampler.sample(n, g, x0.device)
        else:
            t, weights = torch.randint(1, T + 1, (n,), generator=g, device=g.device), None
        eps = torch.randn(x0.shape, generator=g, device=x0.device, dtype=x0.dtype)
        per_example, metrics, term = self.terms(model, x0, t, eps, cond, weights)
        if self.sampler is not None and torch.is_grad_enabled():
            self.sampler.update(t.cpu(), term.detach().cpu())
        return StepOutput(loss=per_example.mean(), metrics=metrics)

    def terms(self, model, x0: Tensor, t: Tensor, eps: Tensor, cond: Tensor | None = None,
              weights: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """The loss at given steps t (n,) and noise ε (x0's shape), x0 in the network's space:
        (per-example loss (n,), metrics, the VLB term L_{t−1} (n,) float64 nats). ``weights`` (n,) multiply
        T · L_{t−1} (importance sampling; 1 by default)."""
        schedule, target = model.schedule, model.target
        n, T = len(x0), schedule.T
        t = t.reshape(-1)
        tc = t.cpu().to(torch.float64)
        alpha, sigma = (a.to(x0) for a in schedule.alpha_sigma(tc))
        a, s = _col(alpha, x0), _col(sigma, x0)
        x_t = a * x0 + s * eps
        pred, v = model.predict(x_t, tc, cond)
        if self.loss == "hybrid" and v is None:
            raise KakusanError("the hybrid loss trains learned variances: build the model with learn_variance=True, "
                               "or use loss='simple' or 'vlb'")
        dims = tuple(range(1, x0.ndim))
        if target == "eps":
            natural, weight = eps, torch.ones_like(alpha)
        elif target == "x0":
            natural, weight = x0, (alpha / sigma) ** 2
        else:  # v = α ε − σ x_0, ‖ε − ε̂‖² = α² ‖v − v̂‖²
            natural, weight = a * eps - s * x0, alpha**2
        ct = torch.promote_types(x0.dtype, torch.float32)  # bf16 autocast outputs are squared in float32
        mse = (weight.to(ct) * ((pred.to(ct) - natural.to(ct)) ** 2).mean(dims)).to(x0.dtype)
        x0_hat = to_x0(pred, target, x_t, alpha, sigma)
        # the VLB term: through mean and variance ("vlb"), through the variance only ("hybrid": x̂_0 held
        # fixed), or as a metric without gradients ("simple")
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.loss != "simple"):
            mean = x0_hat if self.loss == "vlb" else x0_hat.detach()
            term = term_from_prediction(model, x0, x_t, t.cpu(), mean, v, self.variance)
        w = torch.ones(n, dtype=torch.float64, device=x0.device) if weights is None else weights.to(x0.device,
                                                                                                   torch.float64)
        vlb = T * w * term + prior_kl(schedule, x0)  # nats per example, network space
        D = x0[0].numel()
        bpd = vlb / (D * math.log(2))
        fitted = mse
        if self.weighting != "eps":  # ‖x_0 − x̂_0‖² = ‖ε − ε̂‖² σ²/α²;  ‖v − v̂‖² = ‖ε − ε̂‖²/α²
            factor = (sigma / alpha) ** 2 if self.weighting == "x0" else alpha**-2
            fitted = mse * factor.to(mse.dtype)
        if self.loss == "simple":
            per_example = fitted
        elif self.loss == "vlb":
            per_example = bpd.to(x0.dtype)
        else:
            per_example = fitted + self.hybrid_weight * bpd.to(x0.dtype)
        levels = int(getattr(model.config, "levels", 0) or 0)
        data_vlb = vlb if levels else vlb - log_jacobian(model, D)
        metrics = {"mse": mse.detach(), "vlb": data_vlb.detach()}
        if levels:
            metrics["bpd"] = bpd.detach()
        return per_example, metrics, term.detach()

    # -- state -------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Tensor]:
        """The importance sampler's history (empty for uniform t), saved with every training checkpoint."""
        return {} if self.sampler is None else self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if state and "history" in state:
            self.sampler = ImportanceSampler(state["history"].shape[0])
            self.sampler.load_state_dict(state)


__all__ = ["DiffusionLoss", "drop_labels", "LOSSES", "T_SAMPLING"]

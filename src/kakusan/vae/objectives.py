"""Training objectives for :func:`kakusan.train.fit`: the ELBO (with β, KL warm-up and free bits) and the IWAE.

Each is ``objective(model, batch, generator) -> StepOutput``; the batch is x, (x, labels) or
{"x": x, "cond": labels}. ``metrics`` hold the per-example terms (reconstruction, kl, kl_<group>, elbo).

- :class:`ELBO`: loss = −mean_i [log p(x_i|z_i) − β KL_i]; β ramps linearly 0 → ``beta`` over
  ``warmup_steps`` optimizer steps (Bowman et al. 2016; Sønderby et al. 2016), so the objective keeps its
  step count (``state_dict``) and resumes bit-exactly. ``free_bits`` λ replaces the KL of each latent unit by
  max(λ, its batch mean) (Kingma et al. 2016, eq. 15), so no unit is pushed below λ nats. Gradients are
  reparameterised for Gaussian latents, and score-function (REINFORCE) for binary ones:
  ∇_φ E_q[f(z)] = E_q[(f(z) − b) ∇_φ log q(z|x)] with b the leave-one-out mean of the other draws.
- :class:`IWAE`: loss = −mean_i log (1/k) Σ_j w_ij (Burda et al. 2016, eq. 8), reparameterised.

:func:`dynamic_binarisation` is the ``transform`` that draws fresh binary data x ~ Bernoulli(pixel intensity)
at every step from the loop's generator (binarised MNIST's usual training protocol).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from kakusan.errors import DataError, KakusanError, check_positive_int
from kakusan.train import StepOutput
from kakusan.vae.bounds import ELBOTerms

Tensor = torch.Tensor
Estimator = Literal["auto", "reparameterised", "score_function"]


def split_batch(batch: Any) -> tuple[Tensor, Tensor | None]:
    """(x, cond) from a batch: a tensor, a tuple (x, labels) or a dict with "x" and optionally "cond"."""
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and len(batch) in (1, 2):
        return batch[0], (batch[1] if len(batch) == 2 else None)
    if isinstance(batch, dict) and "x" in batch:
        return batch["x"], batch.get("cond")
    raise DataError("a VAE batch must be x, (x, labels) or a dict with keys 'x' and optionally 'cond'")


def dynamic_binarisation(batch: Any, generator: torch.Generator) -> Any:
    """x ~ Bernoulli(x) drawn anew for every batch (labels pass through); x must lie in [0, 1]."""
    x, cond = split_batch(batch)
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise DataError(f"dynamic binarisation needs intensities in [0, 1], found [{lo:g}, {hi:g}]: scale the data")
    bits = torch.bernoulli(x, generator=generator)
    if isinstance(batch, Tensor):
        return bits
    if isinstance(batch, dict):
        return {**batch, "x": bits}
    return type(batch)([bits, *batch[1:]])


class ELBO:
    """The negative ELBO as a training loss, with β, linear KL warm-up and free bits (module docstring).

    Parameters
    ----------
    beta : the KL weight after warm-up (1 = the ELBO; β-VAE otherwise).
    warmup_steps : optimizer steps over which the KL weight rises linearly from 0 to ``beta``.
    free_bits : λ ≥ 0 nats per latent unit (0 = off).
    n_samples : draws z ~ q per example.
    estimator : ``"reparameterised"``, ``"score_function"`` or ``"auto"`` (reparameterised where possible).

    Notes
    -----
    :func:`kakusan.train.fit` tells the objective each optimizer step's number (:meth:`set_step`), so the
    warm-up follows the loop whatever the optimizer. Called outside ``fit``, the step count advances when the
    model's parameters have changed since the last call (so micro-batches of one step, and closure
    re-evaluations, share a step) — which needs an optimizer that bumps the tensors' version counters: torch's
    fused Adam does not, so ``fit`` is the way to train with it. The count is saved with the checkpoint.
    """

    def __init__(self, beta: float = 1.0, warmup_steps: int = 0, free_bits: float = 0.0, n_samples: int = 1,
                 estimator: Estimator = "auto"):
        if not beta >= 0 or not free_bits >= 0:
            raise KakusanError(f"beta and free_bits must be non-negative, got beta={beta}, free_bits={free_bits}")
        if estimator not in ("auto", "reparameterised", "score_function"):
            raise KakusanError(f"unknown estimator {estimator!r}: choose auto, reparameterised or score_function")
        self.beta, self.free_bits = float(beta), float(free_bits)
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps", low=0)
        self.n_samples = check_positive_int(n_samples, "n_samples")
        self.estimator = estimator
        self.steps = 0  # optimizer steps seen (the current one included)
        self._version: int | None = None
        self._told = False  # the step count was set by train.fit (set_step), not counted from the parameters

    def beta_at(self, step: int) -> float:
        """The KL weight at optimizer step ``step`` (0-based): β min(1, step / warmup_steps)."""
        return self.beta if self.warmup_steps == 0 else self.beta * min(1.0, step / self.warmup_steps)

    def set_step(self, step: int) -> None:
        """The optimizer step (0-based) about to be taken; :func:`kakusan.train.fit` calls it before each one."""
        self.steps, self._told = int(step) + 1, True

    def _advance(self, model: torch.nn.Module) -> int:
        if torch.is_grad_enabled() and not self._told:
            version = sum(p._version for p in model.parameters())  # bumped by every in-place update
            if version != self._version:
                self.steps, self._version = self.steps + 1, version
        return max(self.steps - 1, 0)

    def __call__(self, model, batch: Any, generator: torch.Generator) -> StepOutput:
        x, cond = split_batch(batch)
        beta = self.beta_at(self._advance(model))
        estimator = self.estimator
        if estimator == "auto":
            estimator = "reparameterised" if _latent(model) == "gaussian" else "score_function"
        if estimator == "reparameterised":
            if _latent(model) != "gaussian":
                raise KakusanError("a binary latent is not reparameterisable: use estimator='score_function'")
            terms = model.elbo(x, cond, generator, n_samples=self.n_samples)
            surrogate = terms.reconstruction
        else:
            terms, surrogate = _score_function_terms(model, x, cond, generator, self.n_samples)
        loss = -surrogate.mean() + beta * self._kl_loss(terms)
        metrics: dict[str, Any] = terms.metrics()
        if self.warmup_steps or self.beta != 1.0:
            metrics["beta"] = beta
        return StepOutput(loss=loss, metrics=metrics)

    def _kl_loss(self, terms: ELBOTerms) -> Tensor:
        if not self.free_bits:
            return terms.kl_total.mean()
        return sum(units.mean(0).clamp(min=self.free_bits).sum() for units in terms.kl_units.values())

    def state_dict(self) -> dict[str, Tensor]:
        """The step count (for the warm-up), saved with every training checkpoint."""
        return {"steps": torch.tensor([self.steps], dtype=torch.int64)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.steps, self._version, self._told = int(state["steps"][0]), None, False


def _latent(model) -> str:
    """The latent family of a model (a model without the choice has Gaussian latents)."""
    return getattr(model.config, "latent", "gaussian")


def _score_function_terms(model, x: Tensor, cond: Tensor | None, generator: torch.Generator,
                          n_samples: int) -> tuple[ELBOTerms, Tensor]:
    """ELBO terms and the reconstruction surrogate log p(x|z) + (f − b) log q(z|x), z held fixed (n,)."""
    q = model.encode(x, cond)
    z = q.sample(n_samples, generator).detach()  # (S, n, L)
    log_px = model.reconstruction_log_prob(x, z, cond)  # (S, n)
    log_q = q.log_prob_units(z).sum(-1)  # (S, n)
    f = log_px.detach()
    baseline = (f.sum(0, keepdim=True) - f) / (n_samples - 1) if n_samples > 1 else torch.zeros_like(f)
    surrogate = (log_px + (f - baseline) * log_q).mean(0)
    return ELBOTerms(log_px.mean(0), {"z": q.kl_units()}), surrogate


class IWAE:
    """The negative importance-weighted bound −mean_i log (1/k) Σ_j w_ij as the loss (Burda et al. 2016).

    ``metrics``: ``iwae`` (the bound), ``elbo`` (mean_j log w_ij, a one-sample-per-draw ELBO estimate) and
    ``ess`` ((Σ w)² / Σ w², between 1 and k), per example.
    """

    def __init__(self, k: int = 50):
        self.k = check_positive_int(k, "k")

    def __call__(self, model, batch: Any, generator: torch.Generator) -> StepOutput:
        if _latent(model) != "gaussian":
            raise KakusanError("the IWAE objective needs a reparameterisable (gaussian) latent")
        x, cond = split_batch(batch)
        log_w = model.log_weights(x, self.k, cond, generator)  # (k, n)
        lse = torch.logsumexp(log_w, dim=0)
        bound = lse - math.log(self.k)
        ess = torch.exp(2 * lse - torch.logsumexp(2 * log_w, dim=0))
        metrics = {"iwae": bound.detach(), "elbo": log_w.detach().mean(0), "ess": ess.detach()}
        return StepOutput(loss=-bound.mean(), metrics=metrics)


__all__ = ["ELBO", "IWAE", "dynamic_binarisation", "split_batch"]

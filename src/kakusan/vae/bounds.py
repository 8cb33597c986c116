"""Bounds on log p(x) as named per-example terms, and the importance-sampled likelihood estimator.

For any q(z|x), Jensen's inequality gives the evidence lower bound

    log p(x) ≥ ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) = log p(x) − KL(q(z|x) ‖ p(z|x)),

and the importance-weighted bound (Burda et al. 2016, eq. 8) with w_i = p(x, z_i) / q(z_i|x), z_i ~ q,

    L_k(x) = E[log (1/k) Σ_{i=1}^k w_i],    ELBO = L_1 ≤ L_k ≤ L_{k+1} ≤ log p(x),  L_k → log p(x) as k → ∞.

A model plugs in by providing ``log_weights(x, k, cond=None, generator=None) -> (k, n)``; everything here
streams over chunks of k (:class:`~kakusan.evaluate.streaming.LogMeanExpStream`) so k = 5000 runs in the
memory of one chunk.

The single draw log ŵ = log (1/k) Σ w_i is also the importance-sampling estimate of log p(x); its
delta-method standard error (:func:`kakusan.evaluate.log_mean_exp`) is se ≈ s_w / (√k w̄). The test-set
NLL is then the mean of −log ŵ over examples, with the standard error across examples, std/√n, which
already contains the per-example Monte Carlo noise. Notes: log ŵ is biased low by about se²/2 (Jensen), so
the NLL estimate is an upper bound in expectation; a small ESS warns that se underestimates the error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from kakusan.errors import KakusanError, check_positive_int
from kakusan.evaluate import Estimate, LogMeanExp
from kakusan.evaluate.streaming import LogMeanExpStream
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
CHUNK_BUDGET = 2**22  # activations held by one chunk of an importance-weighted bound (16 MiB of float32)


@dataclass(frozen=True)
class ELBOTerms:
    """The ELBO of each example as named terms, nats.

    Attributes
    ----------
    reconstruction : (n,) log p(x|z), z ~ q(z|x) (the mean over the draws when there are several).
    kl_units : {group: (n, L_g)} KL(q ‖ p) of each latent unit of each latent group (analytic, or Monte
        Carlo log q(z|x) − log p(z) at the same draws).
    """

    reconstruction: Tensor
    kl_units: dict[str, Tensor] = field(default_factory=dict)

    @property
    def kl(self) -> dict[str, Tensor]:
        """{group: (n,)} the KL of each latent group."""
        return {name: v.sum(-1) for name, v in self.kl_units.items()}

    @property
    def kl_total(self) -> Tensor:
        """(n,) the KL summed over groups."""
        return sum(self.kl.values(), torch.zeros_like(self.reconstruction))

    @property
    def elbo(self) -> Tensor:
        """(n,) reconstruction − Σ_groups KL."""
        return self.reconstruction - self.kl_total

    def metrics(self) -> dict[str, Tensor]:
        """Per-example terms for a training log: reconstruction, kl, kl_<group> per group, elbo (detached)."""
        out = {"reconstruction": self.reconstruction.detach(), "kl": self.kl_total.detach()}
        out.update({f"kl_{name}": v.detach() for name, v in self.kl.items()})
        out["elbo"] = self.elbo.detach()
        return out


def auto_chunk(k: int, n: int, width: int, budget: int = CHUNK_BUDGET) -> int:
    """Samples per chunk so that chunk · n · width activations fit ``budget`` (at least 1, at most k)."""
    return max(1, min(k, budget // max(1, n * width)))


def _chunks(k: int, chunk: int):
    done = 0
    while done < k:
        size = min(chunk, k - done)
        yield size
        done += size


@torch.no_grad()
def importance_log_likelihood(model, x: Tensor, k: int, cond: Tensor | None = None, generator: Seed = None,
                              chunk: int | None = None) -> LogMeanExp:
    """log (1/k) Σ_i p(x, z_i)/q(z_i|x) for each example, with its delta-method s.e. and ESS, chunked over k.

    Parameters
    ----------
    model : provides ``log_weights(x, k, cond, generator) -> (k, n)`` and ``chunk_width`` (activations per
        sample and example); a VAE.
    x : (n, ...) data; cond : (n,) labels for a conditional model.
    k : importance samples per example; chunk : samples per pass (default from a 16 MiB budget).

    Returns
    -------
    :class:`~kakusan.evaluate.LogMeanExp` with value, stderr, ess of shape (n,), float64.
    """
    check_positive_int(k, "k")
    n = len(x)
    chunk = auto_chunk(k, n, getattr(model, "chunk_width", 1024)) if chunk is None else check_positive_int(
        chunk, "chunk")
    g = make_generator(generator, x.device)
    acc = LogMeanExpStream(dim=0)
    for size in _chunks(k, chunk):
        acc.add(model.log_weights(x, size, cond=cond, generator=g))  # (size, n)
    return acc.result()


def iwae_bound(model, x: Tensor, k: int, cond: Tensor | None = None, generator: Seed = None,
               chunk: int | None = None) -> Tensor:
    """One draw of the importance-weighted bound L_k per example, (n,) float64 (see the module docstring).

    Evaluation only (no gradients); the IWAE training objective is :class:`kakusan.vae.objectives.IWAE`.
    """
    return importance_log_likelihood(model, x, k, cond, generator, chunk).value


def estimate_nll(model, x: Tensor, k: int = 5000, cond: Tensor | None = None, generator: Seed = None,
                 batch_size: int = 100, chunk: int | None = None, unit: str = "nats") -> Estimate:
    """The data set's NLL, mean over examples of −log ŵ_k(x), with the standard error across examples.

    ``unit="bits/dim"`` divides by D ln 2 (D values per example). The estimate is biased high by about the
    mean of se²/2 (see the module docstring).
    """
    check_positive_int(batch_size, "batch_size")
    if unit not in ("nats", "bits/dim"):
        raise KakusanError(f"unknown unit {unit!r}: choose nats or bits/dim")
    g = make_generator(generator, x.device)
    values = []
    for i in range(0, len(x), batch_size):
        c = None if cond is None else cond[i:i + batch_size]
        values.append(importance_log_likelihood(model, x[i:i + batch_size], k, c, g, chunk).value)
    nll = -torch.cat(values)
    if unit == "bits/dim":
        nll = nll / (model.n_features * math.log(2))
    return Estimate.of_mean(nll, method=f"IWAE k={k}", unit=unit)


class ImportanceBounds:
    """The importance-weighted bounds as methods, for any model with ``log_weights(x, k, cond, generator)``,
    ``chunk_width`` and ``likelihood.unit`` (the VAE and the hierarchical VAE)."""

    def iwae_bound(self, x: torch.Tensor, k: int, cond: torch.Tensor | None = None, generator: Seed = None,
                   chunk: int | None = None) -> torch.Tensor:
        """L_k(x) = log (1/k) Σ_i p(x, z_i)/q(z_i|x) per example, (n,) float64, chunked over k (no gradients)."""
        return iwae_bound(self, x, k, cond, generator, chunk)

    def importance_log_likelihood(self, x: torch.Tensor, k: int, cond: torch.Tensor | None = None,
                                  generator: Seed = None, chunk: int | None = None) -> LogMeanExp:
        """Per example: the estimate log ŵ_k of log p(x) with its delta-method s.e. and ESS (see ``bounds``)."""
        return importance_log_likelihood(self, x, k, cond, generator, chunk)

    def estimate_nll(self, x: torch.Tensor, k: int = 5000, cond: torch.Tensor | None = None,
                     generator: Seed = None, *, batch_size: int = 100, chunk: int | None = None, unit: str | None = None) -> Estimate:
        """The data set's NLL by importance sampling (mean over examples, s.e. across them); unit nats or
        bits/dim (default: bits/dim for the discretised logistic, else nats)."""
        unit = self.likelihood.unit if unit is None else unit
        return estimate_nll(self, x, k, cond, generator, batch_size, chunk, unit)


__all__ = ["CHUNK_BUDGET", "ELBOTerms", "ImportanceBounds", "auto_chunk", "estimate_nll", "importance_log_likelihood",
           "iwae_bound"]

"""Empirical distributions, entropy, cross-entropy and the KL divergence of discrete distributions.

Every model in kakusan is learned by minimising KL(p0 || q) from the empirical distribution
p0(x) = (1/n) sum_i delta(x - x_i) of the data to the model q. For discrete data

    KL(p0 || q) = sum_x p0(x) log p0(x)/q(x) = -H(p0) - (1/n) sum_i log q(x_i),

so minimising the KL divergence is maximising the mean log-likelihood (the entropy H(p0) does not
depend on q). Everything here is float64; the conventions 0 log 0 = 0 and p log(p/0) = +inf
(for p > 0) are applied exactly rather than by adding a small epsilon.

>>> import torch
>>> p = torch.tensor([0.5, 0.5]); q = torch.tensor([0.25, 0.75])
>>> round(float(kl_divergence(p, q)), 6)
0.143841
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from kakusan.errors import KakusanError

Table = tuple[torch.Tensor, torch.Tensor]


class Empirical(NamedTuple):
    """The empirical distribution p0: the distinct ``states`` (m, D) or (m,) and their ``probs`` (m,)."""

    states: torch.Tensor
    probs: torch.Tensor


def _as_float64(p, name: str) -> torch.Tensor:
    t = torch.as_tensor(p)
    if t.is_complex():
        raise KakusanError(f"{name} must be real, got dtype {t.dtype}: pass real probabilities")
    return t.to(torch.float64)


def check_distribution(p, name: str = "p", atol: float = 1e-6) -> torch.Tensor:
    """Return ``p`` (..., K) as float64 after checking it is a distribution over its last axis.

    Raises :class:`~kakusan.errors.KakusanError` if an entry is negative or not finite, or if a
    row does not sum to one within ``atol``.
    """
    t = _as_float64(p, name)
    if t.ndim == 0 or t.shape[-1] == 0:
        raise KakusanError(f"{name} must have at least one state on its last axis, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise KakusanError(f"{name} contains NaN or inf: pass finite probabilities")
    if (t < 0).any():
        raise KakusanError(f"{name} has negative entries (min {float(t.min()):.3g}): pass probabilities >= 0")
    total = t.sum(-1)
    if not torch.allclose(total, torch.ones_like(total), rtol=0.0, atol=atol):
        worst = float(total.flatten()[(total - 1).abs().argmax()])
        raise KakusanError(f"{name} sums to {worst:.10g}, not 1: normalise it (p / p.sum(-1, keepdim=True))")
    return t


def _pair(p, q) -> tuple[torch.Tensor, torch.Tensor]:
    p, q = check_distribution(p, "p"), check_distribution(q, "q")
    if p.shape[-1] != q.shape[-1]:
        raise KakusanError(f"p and q are over different numbers of states ({p.shape[-1]} vs {q.shape[-1]}): "
                           "put both on the same index set")
    return p, q


def _xlogy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x log y with 0 log y = 0 for every y (including 0), and x log 0 = -inf for x > 0."""
    return torch.xlogy(x, y)


def entropy(p) -> torch.Tensor:
    """H(p) = -sum_x p(x) log p(x) in nats, with 0 log 0 = 0.

    Parameters
    ----------
    p : tensor (..., K)
        Probabilities over the last axis.

    Returns
    -------
    tensor (...)
        float64 entropy, in [0, log K].
    """
    p = check_distribution(p, "p")
    return -_xlogy(p, p).sum(-1)


def cross_entropy(p, q) -> torch.Tensor:
    """H(p, q) = -sum_x p(x) log q(x) in nats; +inf if q(x) = 0 where p(x) > 0.

    Parameters
    ----------
    p, q : tensor (..., K)
        Probabilities over the same K states (broadcast over leading axes).

    Returns
    -------
    tensor (...)
        float64 cross-entropy, >= H(p).
    """
    p, q = _pair(p, q)
    return -_xlogy(p, q).sum(-1)


def kl_divergence(p, q) -> torch.Tensor:
    """KL(p || q) = sum_x p(x) log p(x)/q(x) in nats, with 0 log 0/q = 0 and p log p/0 = +inf.

    KL(p || q) >= 0 with equality iff p = q (Gibbs' inequality), and in general
    KL(p || q) != KL(q || p).

    Parameters
    ----------
    p, q : tensor (..., K)
        Probabilities over the same K states (broadcast over leading axes).

    Returns
    -------
    tensor (...)
        float64 divergence; +inf where q puts zero mass on a state that p does not.
    """
    p, q = _pair(p, q)
    terms = _xlogy(p, p) - _xlogy(p, q)  # +inf exactly where p > 0 = q; 0 where p = 0
    return terms.sum(-1).clamp_min(0.0)  # clamp: rounding can give -1e-17 when p == q


def empirical_distribution(x) -> Empirical:
    """p0(s) = (1/n) #{i : x_i = s} over the distinct rows s of discrete data ``x``.

    Parameters
    ----------
    x : tensor (n, D) or (n,)
        Discrete data, one sample per row (integers, or floats taking few values).

    Returns
    -------
    Empirical
        ``states`` (m, D) or (m,), the distinct rows in lexicographic order, and ``probs`` (m,)
        float64, summing to one.
    """
    t = torch.as_tensor(x)
    if t.ndim not in (1, 2) or t.shape[0] == 0:
        raise KakusanError(f"data must have shape (n,) or (n, D) with n >= 1, got {tuple(t.shape)}")
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise KakusanError("data contains NaN or inf: remove those rows first")
    states, counts = torch.unique(t, dim=0, return_counts=True)
    return Empirical(states, counts.to(torch.float64) / t.shape[0])


def state_index(x, n_values: int) -> torch.Tensor:
    """Index of each row of ``x`` in {0, ..., n_values - 1}^D: sum_d x_d n_values^(D-1-d).

    Parameters
    ----------
    x : tensor (n, D) or (n,)
        Integer-valued data with entries in {0, ..., n_values - 1}.
    n_values : int
        Alphabet size.

    Returns
    -------
    tensor (n,) int64
        Row indices in {0, ..., n_values**D - 1} (the first column is the most significant digit).
    """
    t = torch.as_tensor(x)
    t = t[:, None] if t.ndim == 1 else t
    if t.ndim != 2:
        raise KakusanError(f"data must have shape (n,) or (n, D), got {tuple(t.shape)}")
    if t.is_floating_point() and not torch.equal(t, t.round()):
        raise KakusanError("state_index needs integer-valued data: map the values to 0..n_values-1 first")
    t = t.long()
    if t.numel() and (t.min() < 0 or t.max() >= n_values):
        raise KakusanError(f"data values must lie in 0..{n_values - 1}, got range {int(t.min())}..{int(t.max())}")
    weights = n_values ** torch.arange(t.shape[1] - 1, -1, -1, dtype=torch.int64)
    return t @ weights


def empirical_probs(index, n_states: int) -> torch.Tensor:
    """p0(k) = (1/n) #{i : index_i = k} on the whole index set {0, ..., n_states - 1}.

    Parameters
    ----------
    index : tensor (n,) of int
        State index of each sample (e.g. from :func:`state_index`).
    n_states : int
        Size of the index set.

    Returns
    -------
    tensor (n_states,)
        float64 probabilities, zero for states not seen in the data.
    """
    idx = torch.as_tensor(index).long().reshape(-1)
    if idx.numel() == 0:
        raise KakusanError("no samples: the empirical distribution of an empty data set is undefined")
    if idx.min() < 0 or idx.max() >= n_states:
        raise KakusanError(f"state indices must lie in 0..{n_states - 1}, got {int(idx.min())}..{int(idx.max())}")
    return torch.bincount(idx, minlength=n_states).to(torch.float64) / idx.numel()


def _lookup(x: torch.Tensor, states: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """q(x_i) for each row of ``x`` from a table of ``states`` and ``probs`` (0 for unlisted rows)."""
    rows = x.reshape(x.shape[0], -1).to(torch.float64)
    table = states.reshape(states.shape[0], -1).to(torch.float64)
    if rows.shape[1] != table.shape[1]:
        raise KakusanError(f"data rows have {rows.shape[1]} entries but the table's states have {table.shape[1]}")
    match = (rows[:, None, :] == table[None, :, :]).all(-1)  # (n, m)
    return (match.to(torch.float64) * probs.to(torch.float64)).sum(-1)


def log_likelihoods(x, model: Callable[[torch.Tensor], torch.Tensor] | torch.Tensor | Table) -> torch.Tensor:
    """log q(x_i) for each sample, from a ``log_prob`` callable or a probability table.

    Parameters
    ----------
    x : tensor (n, ...)
        Data, one sample per row.
    model : callable, tensor (K,) or (states, probs)
        ``log_prob(x) -> (n,)``; or probabilities q (K,) over an index set, with ``x`` (n,)
        integer indices; or a table of ``states`` (m, D) and ``probs`` (m,) (rows of ``x`` not in
        the table have q = 0).

    Returns
    -------
    tensor (n,)
        float64 log-likelihoods (-inf where q(x_i) = 0).
    """
    x = torch.as_tensor(x)
    if x.ndim == 0 or x.shape[0] == 0:
        raise KakusanError(f"need at least one sample to compute a log-likelihood, got shape {tuple(x.shape)}")
    if callable(model):
        out = torch.as_tensor(model(x)).to(torch.float64)
        if out.shape != (x.shape[0],):
            raise KakusanError(f"log_prob returned shape {tuple(out.shape)}, expected ({x.shape[0]},): one per sample")
        return out
    if isinstance(model, Sequence) and len(model) == 2:
        states, probs = model
        return torch.log(_lookup(x, torch.as_tensor(states), check_distribution(probs, "table probs")))
    q = check_distribution(model, "q")
    if q.ndim != 1:
        raise KakusanError(f"a probability table must be 1-D (K,), got shape {tuple(q.shape)}")
    idx = x.reshape(-1).long()
    if x.ndim != 1 or idx.min() < 0 or idx.max() >= q.shape[0]:
        raise KakusanError(f"with a table q of {q.shape[0]} states, x must be (n,) indices in 0..{q.shape[0] - 1}")
    return torch.log(q[idx])


def mean_log_likelihood(x, model: Callable[[torch.Tensor], torch.Tensor] | torch.Tensor | Table) -> torch.Tensor:
    """(1/n) sum_i log q(x_i) = E_{p0}[log q] in nats, for any model accepted by :func:`log_likelihoods`.

    KL(p0 || q) = -H(p0) - mean_log_likelihood(x, q), so maximising this minimises the divergence.

    Returns
    -------
    tensor ()
        float64 scalar; -inf if some sample has q(x_i) = 0.
    """
    return log_likelihoods(x, model).mean()

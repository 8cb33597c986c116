"""Log-mean-exp over weights that arrive in chunks, with the same standard error and ESS as in one piece.

:func:`kakusan.evaluate.log_mean_exp` needs all n weights at once; an importance-weighted bound with
k = 5000 samples per example would then hold k decoder passes in memory. This accumulator keeps, per row,
only the two power sums of the weights in log space,

    log S₁ = log Σ_i w_i,      log S₂ = log Σ_i w_i²,

each chunk's being recovered from its :class:`~kakusan.evaluate.LogMeanExp` (S₁ = n_c · mean,
S₂ = S₁² / ESS) and merged by ``logaddexp``. At the end, with ρ = n S₂ / S₁² = n / ESS,

    log ŵ = log S₁ − log n,      se(log ŵ) = √((ρ − 1) / (n − 1)),      ESS = S₁² / S₂,

which is exactly :func:`log_mean_exp`'s delta-method error s_r / (√n r̄) (s_r with the n − 1 divisor)
written through the power sums. Memory is that of one chunk, whatever n.
"""

from __future__ import annotations

import math

import torch

from kakusan.errors import KakusanError
from kakusan.evaluate.importance import LogMeanExp, log_mean_exp

Tensor = torch.Tensor


class LogMeanExpStream:
    """Accumulate log weights chunk by chunk along ``dim``; :meth:`result` gives the :class:`LogMeanExp` of all.

    >>> import torch
    >>> w = torch.randn(3, 10, dtype=torch.float64)
    >>> acc = LogMeanExpStream(dim=-1)
    >>> for part in w.split(4, dim=-1):
    ...     acc.add(part)
    >>> bool(torch.allclose(acc.result().value, log_mean_exp(w, dim=-1).value))
    True
    """

    def __init__(self, dim: int = -1):
        self.dim = dim
        self.log_s1: Tensor | None = None
        self.log_s2: Tensor | None = None
        self.n = 0

    def add(self, log_w: Tensor) -> None:
        """Take one chunk of log weights (same shape as the others except along ``dim``)."""
        part = log_mean_exp(log_w, self.dim)
        log_s1 = part.value + math.log(part.n)
        log_s2 = 2 * log_s1 - torch.log(part.ess)
        log_s2 = torch.where(torch.isfinite(log_s1), log_s2, log_s1)  # rows of zero weights stay −inf
        if self.log_s1 is None:
            self.log_s1, self.log_s2 = log_s1, log_s2
        else:
            self.log_s1 = torch.logaddexp(self.log_s1, log_s1)
            self.log_s2 = torch.logaddexp(self.log_s2, log_s2)
        self.n += part.n

    def result(self) -> LogMeanExp:
        """log of the mean of all weights so far, its delta-method standard error and ESS."""
        if self.log_s1 is None:
            raise KakusanError("no weights were added: add at least one chunk before asking for the result")
        n = self.n
        value = self.log_s1 - math.log(n)
        ess = torch.exp(2 * self.log_s1 - self.log_s2)
        if n > 1:
            rho = torch.exp(self.log_s2 - 2 * self.log_s1 + math.log(n))
            stderr = torch.sqrt(torch.clamp(rho - 1, min=0) / (n - 1))
        else:
            stderr = torch.full_like(value, math.nan)
        return LogMeanExp(value, stderr, ess, n)


__all__ = ["LogMeanExpStream"]

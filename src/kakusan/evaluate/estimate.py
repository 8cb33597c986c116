"""The result every likelihood estimator and sample metric returns: a value, its standard error, and what it is.

>>> from kakusan.evaluate import Estimate
>>> print(Estimate(-85.4613, 0.0912, 10000, "AIS", "nats"))
-85.46 ± 0.09 nats
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from kakusan.errors import KakusanError


@dataclass(frozen=True)
class Estimate:
    """An estimate with its standard error.

    Attributes
    ----------
    value : the estimate (e.g. a mean test log-likelihood, a log Z).
    stderr : its standard error (nan when it cannot be estimated, e.g. from one sample).
    n : the number of samples (examples, runs, importance weights) it rests on.
    method : how it was obtained ("exact", "AIS forward", "IWAE k=5000", …).
    unit : of value and stderr ("nats", "bits/dim", …).
    """

    value: float
    stderr: float
    n: int
    method: str
    unit: str = "nats"

    def __str__(self) -> str:
        return f"{self.value:.2f} ± {self.stderr:.2f} {self.unit}"

    def interval(self, k: float = 2.0) -> tuple[float, float]:
        """value ∓ k standard errors."""
        return self.value - k * self.stderr, self.value + k * self.stderr

    @classmethod
    def of_mean(cls, values: torch.Tensor, method: str, unit: str = "nats") -> Estimate:
        """The mean of independent per-example values (n,) with its standard error s/√n (s: sample std)."""
        v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
        if len(v) == 0:
            raise KakusanError("an estimate needs at least one value")
        stderr = float(v.std() / math.sqrt(len(v))) if len(v) > 1 else math.nan
        return cls(float(v.mean()), stderr, len(v), method, unit)


__all__ = ["Estimate"]

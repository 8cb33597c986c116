"""Model statistics by exact enumeration of all 2^N states (N ≲ 26): the accuracy ceiling."""

from __future__ import annotations

import torch

from kakusan.boltzmann import exact as enumeration
from kakusan.learn.base import Stats


class ExactEstimator:
    """⟨x_k⟩ and ⟨x_k x_l⟩ under q by exact enumeration; caches log Z of the same parameters."""

    def __init__(self) -> None:
        self._cache: tuple[tuple[int, ...], float] | None = None

    def model_stats(self, model: torch.nn.Module, generator: torch.Generator | None = None) -> Stats:
        with torch.no_grad():
            s = enumeration.exact_stats(model.as_ising() if hasattr(model, "as_ising") else model)
        self._cache = (_version(model), s.log_z)
        return Stats(s.mean, s.corr)

    def log_z(self, model: torch.nn.Module) -> float:
        """log Z of the model's current parameters (reused from the last ``model_stats`` when unchanged)."""
        if self._cache is not None and self._cache[0] == _version(model):
            return self._cache[1]
        with torch.no_grad():
            return enumeration.log_z(model.as_ising() if hasattr(model, "as_ising") else model)


def _version(model: torch.nn.Module) -> tuple[int, ...]:
    """Changes whenever a parameter is modified in place (torch's version counters) or replaced."""
    return tuple(v for p in model.parameters() for v in (id(p), p._version))

"""Helpers for the VAE tests: seeded construction without touching the global RNG, pPCA data."""

import torch

F64 = torch.float64


def seeded(build, seed: int):
    """``build()`` with torch's default initialisers drawing from ``seed``; the global RNG is restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def ppca_data(n: int, D: int, L: int, noise: float, seed: int) -> torch.Tensor:
    """n float64 draws x = W z + b + noise·ε from a random pPCA model."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(D, L, generator=g, dtype=F64)
    b = torch.randn(D, generator=g, dtype=F64)
    return torch.randn(n, L, generator=g, dtype=F64) @ W.T + b + noise * torch.randn(n, D, generator=g, dtype=F64)

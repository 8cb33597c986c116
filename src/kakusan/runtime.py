"""One way to pick a device, a random generator and the thread count."""

from __future__ import annotations

import os

import torch

from kakusan.errors import KakusanError

Seed = int | torch.Generator | None


def pick_device(name: str | None = None) -> torch.device:
    """Return ``torch.device(name)``; ``None`` or ``"auto"`` picks CUDA when present, else CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise KakusanError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise KakusanError(f"device {name!r} asked for but no CUDA GPU is available: use --device cpu")
    return device


def make_generator(seed: Seed = None, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` from a seed (``None`` draws a fresh seed); a generator passes through.

    The library never seeds torch's global generator: every random function takes the
    generator this returns, so the same seed gives the same result.
    """
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise KakusanError(f"seed must be a non-negative integer, got {seed!r}")
        g.manual_seed(seed)
    return g


def set_threads(n: int | None = None) -> int:
    """Size torch's intra-op thread pool to the cores this process may use (or to ``n``)."""
    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            n = os.cpu_count() or 1
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()

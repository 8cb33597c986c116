"""Transforms between the value conventions the models use (tensors in, tensors out).

- images in [0, 1]                (:func:`kakusan.data.load` gives these)
- binary 0/1 units                (:func:`binarise`, :func:`stochastic_binarise`; RBMs, VAEs with Bernoulli decoders)
- spins ±1                        (:func:`to_spins`, :func:`from_spins`; Ising and Boltzmann machines, MCMC)
- symmetric values in [-1, 1]     (:func:`to_symmetric`, :func:`from_symmetric`; diffusion models)
- flat vectors (n, D)             (:func:`flatten`, :func:`unflatten`)

Every function checks its input's values and raises :class:`~kakusan.errors.DataError` with
the fix when they are not what it expects; none changes its input in place.
"""

from __future__ import annotations

import math

import torch

from kakusan.errors import DataError
from kakusan.runtime import Seed, make_generator


def _float(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a floating tensor (float32 unless it already floats)."""
    return x if x.is_floating_point() else x.to(torch.float32)


def _check_unit_interval(x: torch.Tensor, what: str) -> None:
    """DataError unless every value of ``x`` is finite and in [0, 1]."""
    if x.numel() == 0:
        return
    lo, hi = x.min().item(), x.max().item()
    if not (lo >= 0.0 and hi <= 1.0):  # also False for NaN
        raise DataError(
            f"{what} expects values in [0, 1], found [{lo:g}, {hi:g}]; "
            "scale the data first (images from kakusan.data.load are in [0, 1])"
        )


def _check_values(x: torch.Tensor, allowed: tuple[float, float], what: str, fix: str) -> None:
    """DataError naming an offending value unless every value of ``x`` is one of ``allowed``."""
    bad = (x != allowed[0]) & (x != allowed[1])
    if bad.any():
        value = x[bad].flatten()[0].item()
        raise DataError(f"{what} expects only the values {allowed[0]:g} and {allowed[1]:g}, found {value:g}; {fix}")


def binarise(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Deterministic binarisation: 1 where ``x > threshold``, else 0.

    Parameters
    ----------
    x : Tensor, shape (n, ...)
        Values, typically images in [0, 1].
    threshold : float
        Values strictly above it become 1.

    Returns
    -------
    Tensor, shape (n, ...)
        0/1 values, of ``x``'s floating dtype (float32 for integer input).
    """
    return (x > threshold).to(_float(x).dtype)


def stochastic_binarise(x: torch.Tensor, generator: Seed = None) -> torch.Tensor:
    """Sample binary units b ~ Bernoulli(x) independently per value (the usual "dynamic" binarised MNIST).

    Parameters
    ----------
    x : Tensor, shape (n, ...)
        Probabilities in [0, 1].
    generator : torch.Generator, int or None
        Source of randomness; the same seed gives the same sample. ``None`` draws a fresh seed.

    Returns
    -------
    Tensor, shape (n, ...)
        0/1 values with E[b] = x, of ``x``'s floating dtype.
    """
    x = _float(x)
    _check_unit_interval(x, "stochastic_binarise")
    return torch.bernoulli(x, generator=make_generator(generator, device=x.device))


def to_spins(b: torch.Tensor) -> torch.Tensor:
    """Map binary units to spins: s = 2b − 1, so 0 → −1 and 1 → +1.

    Parameters
    ----------
    b : Tensor, shape (n, ...)
        Only the values 0 and 1.

    Returns
    -------
    Tensor, shape (n, ...)
        Only the values −1 and +1, of ``b``'s floating dtype.
    """
    b = _float(b)
    _check_values(b, (0.0, 1.0), "to_spins", "binarise the data first (kakusan.data.binarise)")
    return 2 * b - 1


def from_spins(s: torch.Tensor) -> torch.Tensor:
    """Map spins to binary units: b = (s + 1) / 2, so −1 → 0 and +1 → 1.

    Parameters
    ----------
    s : Tensor, shape (n, ...)
        Only the values −1 and +1.

    Returns
    -------
    Tensor, shape (n, ...)
        Only the values 0 and 1, of ``s``'s floating dtype.
    """
    s = _float(s)
    _check_values(s, (-1.0, 1.0), "from_spins", "pass spins (kakusan.data.to_spins makes them from 0/1 data)")
    return (s + 1) / 2


def to_symmetric(x: torch.Tensor) -> torch.Tensor:
    """Rescale [0, 1] to [−1, 1]: y = 2x − 1 (the range diffusion models work in).

    Parameters
    ----------
    x : Tensor, shape (n, ...)
        Values in [0, 1].

    Returns
    -------
    Tensor, shape (n, ...)
        Values in [−1, 1], of ``x``'s floating dtype.
    """
    x = _float(x)
    _check_unit_interval(x, "to_symmetric")
    return 2 * x - 1


def from_symmetric(y: torch.Tensor, *, clamp: bool = False) -> torch.Tensor:
    """Rescale [−1, 1] back to [0, 1]: x = (y + 1) / 2.

    Values are not checked, since model samples may stray outside [−1, 1].

    Parameters
    ----------
    y : Tensor, shape (n, ...)
        Values, nominally in [−1, 1].
    clamp : bool
        Clip the result to [0, 1] (for showing samples as images).

    Returns
    -------
    Tensor, shape (n, ...)
    """
    x = (_float(y) + 1) / 2
    return x.clamp(0, 1) if clamp else x


def flatten(x: torch.Tensor) -> torch.Tensor:
    """Flatten every example to a vector: (n, ...) → (n, D), D the product of the other sizes.

    Parameters
    ----------
    x : Tensor, shape (n, d1, d2, ...)

    Returns
    -------
    Tensor, shape (n, d1 * d2 * ...)
        A view where possible.
    """
    if x.dim() == 0:
        raise DataError("flatten expects a batch of shape (n, ...), got a scalar; add a batch dimension")
    return x.reshape(x.shape[0], -1)


def unflatten(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Undo :func:`flatten`: (n, D) → (n, *shape), e.g. ``unflatten(v, (28, 28))``.

    Parameters
    ----------
    x : Tensor, shape (n, D)
    shape : tuple of int
        The shape of one example; its product must be D.

    Returns
    -------
    Tensor, shape (n, *shape)
    """
    if x.dim() != 2 or math.prod(shape) != x.shape[1]:
        raise DataError(f"cannot unflatten shape {tuple(x.shape)} to (n, {', '.join(map(str, shape))}); D must match")
    return x.reshape(x.shape[0], *shape)

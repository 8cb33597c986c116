"""Data recipes: a data set flattened and turned into the values a model's units take.

* ``bernoulli``: 0/1 pixels — ``stochastic`` binarisation b ~ Bernoulli(x) with a fixed seed (the usual
  protocol for binarised MNIST; the same seed gives the same bits) or ``threshold`` (x > 0.5);
* ``spin``: the same bits mapped to ±1;
* ``gaussian``: real values standardised per unit with the training set's mean and standard deviation.

The recipe (:class:`DataSpec`) is saved in a run's ``config.json`` (its fields as a dict under ``"data"``),
so sampling and evaluation rebuild exactly the training and test arrays. The RBM chapter uses it today;
the VAE and diffusion chapters read their data through it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from kakusan.errors import DataError

Tensor = torch.Tensor
UnitsName = Literal["bernoulli", "spin", "gaussian"]
Binarisation = Literal["stochastic", "threshold"]


@dataclass(frozen=True)
class DataSpec:
    """Which data and how to turn them into unit values."""

    data: str = "digits"
    units: UnitsName = "bernoulli"
    binarisation: Binarisation = "stochastic"
    data_seed: int = 0
    holdout: float = 0.0  # for data without a test split: this fraction of the rows becomes the test split


class PreparedData(NamedTuple):
    """``train`` (n, D) and ``test`` (m, D) or None, float32; ``shape`` of one image (or (D,)); for Gaussian
    units the ``mean`` and ``std`` (D,) used to standardise (else None)."""

    train: Tensor
    test: Tensor | None
    shape: tuple[int, ...]
    mean: Tensor | None = None
    std: Tensor | None = None


def prepare(spec: DataSpec) -> PreparedData:
    """Load ``spec.data`` (a name for :func:`kakusan.data.load` or a file path) and convert it for ``spec.units``."""
    from kakusan.data import flatten, load

    ds = load(spec.data)
    train = flatten(ds.x_train).to(torch.float32)
    test = None if ds.x_test is None else flatten(ds.x_test).to(torch.float32)
    if spec.holdout:
        train, test = hold_out(train, test, spec.holdout, spec.data_seed, spec.data)
    shape = tuple(ds.shape) if len(ds.shape) >= 2 else (train.shape[1],)
    if spec.units == "gaussian":
        mean, std = train.mean(0), train.std(0).clamp_min(1e-2)
        return PreparedData((train - mean) / std, None if test is None else (test - mean) / std, shape, mean, std)
    if spec.units not in ("bernoulli", "spin"):
        raise DataError(f"unknown units {spec.units!r}: choose bernoulli, spin or gaussian")
    train, test = (None if x is None else _bits(x, spec, offset) for x, offset in ((train, 0), (test, 1)))
    if spec.units == "spin":
        train, test = 2 * train - 1, None if test is None else 2 * test - 1
    return PreparedData(train, test, shape)


def hold_out(train: Tensor, test: Tensor | None, fraction: float, seed: int, name: str) -> tuple[Tensor, Tensor]:
    """(train, test): a random ``fraction`` of the rows (a permutation from ``seed``) held out as the test split, for
    data that has none; a one-line error when the data has its own split or too few rows."""
    if test is not None:
        raise DataError(f"{name} has its own test split: leave out --holdout (it is for data without one)")
    if not 0.0 < fraction < 1.0:
        raise DataError(f"--holdout must be a fraction in (0, 1), got {fraction:g}")
    n = len(train)
    k = int(round(fraction * n))
    if k < 1 or k > n - 1:
        raise DataError(f"--holdout {fraction:g} of {n} rows leaves no {'test' if k < 1 else 'training'} rows: "
                        "choose another fraction")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed) + 7919))
    return train[perm[k:]], train[perm[:k]]


def _bits(x: Tensor, spec: DataSpec, offset: int) -> Tensor:
    from kakusan.data import binarise, stochastic_binarise

    if spec.binarisation == "threshold":
        return binarise(x)
    if spec.binarisation != "stochastic":
        raise DataError(f"unknown binarisation {spec.binarisation!r}: choose stochastic or threshold")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(f"stochastic binarisation needs values in [0, 1], found [{lo:g}, {hi:g}]: "
                        "use --binarise threshold or scale the data")
    return stochastic_binarise(x, generator=spec.data_seed * 2 + offset)  # train and test get their own streams

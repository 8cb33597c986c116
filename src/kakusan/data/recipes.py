"""Data recipes: a data set flattened and turned into the values a model's units take.

* ``bernoulli``: 0/1 pixels — ``stochastic`` binarisation b ~ Bernoulli(x) with a fixed seed (the usual
  protocol for binarised MNIST; the same seed gives the same bits) or ``threshold`` (x > 0.5);
* ``spin``: the same bits mapped to ±1;
* ``gaussian``: real values standardised per unit with the training set's mean and standard deviation.

The recipe (:class:`DataSpec`) is saved in a run's ``config.json`` (its fields as a dict under ``"data"``),
so sampling and evaluation rebuild exactly the training and test arrays. The RBM chapter uses it today;
the VAE and diffusion chapters read their data through it too.

Data without a test split (a user's ``.npy``, or an ``.npz`` without ``x_test``) get one only when asked
(:func:`explicit_split`, the training commands' ``--holdout FRACTION`` and ``--test FILE``); data with their own
split refuse both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import torch

from kakusan.errors import DataError

if TYPE_CHECKING:
    from kakusan.data.dataset import Dataset

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
    test: str | None = None  # for data without a test split: a file whose rows are the test split


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

    ds = explicit_split(load(spec.data), spec.data, holdout=spec.holdout, test=spec.test, seed=spec.data_seed)
    train = flatten(ds.x_train).to(torch.float32)
    test = None if ds.x_test is None else flatten(ds.x_test).to(torch.float32)
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


def explicit_split(ds: Dataset, name: str, *, holdout: float = 0.0, test: str | None = None,
                   seed: int = 0) -> Dataset:
    """``ds`` with the test split a run asked for: a seeded random ``holdout`` fraction of its rows
    (:func:`hold_out`), or the rows of the file ``test`` (:func:`with_test_file`); ``ds`` itself when neither is given.

    Data with their own test split (digits, MNIST, Fashion-MNIST, an ``.npz`` with ``x_test``) refuse both, and the
    two exclude each other; every refusal is one line naming the option (``name`` is the data as the user named it).
    """
    if not holdout and test is None:
        return ds
    if holdout and test is not None:
        raise DataError("--holdout and --test both give the test split: choose one")
    option = "--holdout" if holdout else "--test"
    if ds.x_test is not None:
        raise DataError(f"{name} has its own test split: leave out {option} (it is for data without one)")
    if test is not None:
        return with_test_file(ds, name, test)
    keep, held = hold_out(len(ds.x_train), holdout, seed)
    rows = lambda t, index: None if t is None else t[index]  # noqa: E731
    return dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=rows(ds.y_train, keep), x_test=ds.x_train[held],
                               y_test=rows(ds.y_train, held))


def hold_out(n: int, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """(training rows, test rows): indices of ``n`` rows, a random ``fraction`` of them (a permutation from ``seed``)
    held out; a one-line error when either part would be empty."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"--holdout must be a fraction in (0, 1), got {fraction:g}")
    k = int(round(fraction * n))
    if k < 1 or k > n - 1:
        raise DataError(f"--holdout {fraction:g} of {n} rows leaves no {'test' if k < 1 else 'training'} rows: "
                        "choose another fraction")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed) + 7919))
    return perm[k:], perm[:k]


def with_test_file(ds: Dataset, name: str, path: str) -> Dataset:
    """``ds`` with the rows of the user's file ``path`` as its test split: read and checked by the one loader of
    user arrays (:func:`kakusan.data.load_file`), rows of the training rows' shape; labels kept where both have
    them (and the test labels name only classes the training data know)."""
    from kakusan.data.user_files import load_file

    extra = load_file(path)
    if extra.x_test is not None:
        raise DataError(f"--test {path} has a split of its own (x_train and x_test): give the test rows alone, as an "
                        ".npy, or an .npz with x (and y)")
    if extra.shape != ds.shape:
        raise DataError(f"--test {path}: its rows have shape {extra.shape}, the training rows of {name} have shape "
                        f"{ds.shape}: they must match")
    labels = None if ds.y_train is None else extra.y_train
    if labels is not None and len(labels):
        known = len(ds.class_names) or int(ds.y_train.max()) + 1
        if int(labels.max()) >= known:
            raise DataError(f"--test {path} has label {int(labels.max())}, and the training data of {name} know "
                            f"classes 0 … {known - 1} only")
    return dataclasses.replace(ds, x_test=extra.x_train, y_test=labels)


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

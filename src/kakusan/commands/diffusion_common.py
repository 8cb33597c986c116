"""What ``kakusan diffusion train|sample|evaluate`` share: the data recipe and reading a run.

The recipe (:class:`DiffusionDataSpec`, saved in a run's ``config.json``) keeps data in data space:

- images on a grid k/(K − 1) in [0, 1] (8-bit MNIST and Fashion-MNIST: K = 256; scikit-learn's digits: K = 17)
  stay as they are, (n, H, W); the model sees x = 2·data − 1 ∈ [−1, 1] (shift = scale = ½) and knows the grid
  (``levels`` = K) for the discretised decoder, dequantisation and bits/dim;
- anything else (vectors (n, D), off-grid images) is continuous: one shift (the mean) and one scale (the standard
  deviation) over all values, so the model sees unit-scale data; likelihoods come back in nats per example of the
  data as given (the Jacobian −D log scale is added).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

Tensor = torch.Tensor
LEVELS = (256, 17, 2)  # grids k/(K−1) recognised as discrete images: 8-bit, 4-bit (digits), binary


@dataclass(frozen=True)
class DiffusionDataSpec:
    """Which data; ``conditional`` keeps the class labels; the test split of data without one (``holdout``
    fraction, its rows chosen with seed 0 as the other commands' default ``--data-seed``, or ``test`` file)."""

    data: str = "digits"
    conditional: bool = False
    holdout: float = 0.0
    test: str | None = None


class DiffusionData(NamedTuple):
    train: Tensor
    train_labels: Tensor | None
    test: Tensor
    test_labels: Tensor | None
    shape: tuple[int, ...]
    split: str  # "test", or "train" when the data have no test split (nor one from --holdout or --test)
    class_names: tuple[str, ...]
    levels: int  # K of the grid, or 0 for continuous data
    shift: float
    scale: float
    n_classes: int


def _on_grid(x: Tensor, levels: int) -> bool:
    k = x.double() * (levels - 1)
    return bool(((x >= 0) & (x <= 1)).all()) and bool(((k - k.round()).abs() < 1e-3).all())


def _error(name: str, message: str):
    from kakusan.errors import DataError

    return DataError(f"--data {name}: {message}")


def prepare_data(spec: DiffusionDataSpec) -> DiffusionData:
    """Load ``spec.data`` (digits, mnist, fashion-mnist or a .npy/.npz/IDX file) and apply the recipe."""
    from kakusan.data import load
    from kakusan.data.recipes import explicit_split

    ds = explicit_split(load(spec.data), spec.data, holdout=spec.holdout, test=spec.test)
    x = ds.x_train.to(torch.float32)
    if x.ndim < 2 or len(x) < 2:
        raise _error(spec.data, f"a diffusion model needs examples of shape (n, D) or (n, H, W), got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise _error(spec.data, "the data hold NaN or infinite values: clean them first")
    has_test = ds.x_test is not None and len(ds.x_test) > 0
    test = ds.x_test.to(torch.float32) if has_test else x
    test_labels = ds.y_test if has_test else ds.y_train
    both = torch.cat([x.reshape(-1), test.reshape(-1)])
    levels = next((k for k in LEVELS if _on_grid(both, k)), 0) if x.ndim >= 3 else 0
    if levels:
        shift = scale = 0.5
    else:
        shift, scale = float(x.mean()), float(x.std())
        if not scale > 0:
            raise _error(spec.data, "the data are constant: there is nothing to model")
    n_classes = 0
    if spec.conditional:
        if ds.y_train is None:
            raise _error(spec.data, "--conditional needs class labels, and these data have none: leave it out")
        if has_test and ds.y_test is None:
            where = f"--test {spec.test}" if spec.test else "its test split"
            raise _error(spec.data, f"--conditional needs class labels for the test rows too, and {where} has none: "
                                    "give the test rows with their labels (y)")
        n_classes = int(ds.y_train.max()) + 1
        if ds.class_names:
            n_classes = max(n_classes, len(ds.class_names))
    return DiffusionData(x, ds.y_train, test, test_labels, tuple(x.shape[1:]), "test" if has_test else "train",
                         tuple(ds.class_names or ()), levels, shift, scale, n_classes)


def read_config(run: str | Path) -> dict:
    """A diffusion run's ``config.json``; a one-line error if it is not one."""
    from kakusan.commands.args import read_run_config

    return read_run_config(run, "diffusion train")

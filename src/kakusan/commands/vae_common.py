"""What ``kakusan vae train|evaluate|reconstruct`` share: the data recipe, reading a run, bounds over a data set.

The data recipe (:class:`VAEDataSpec`, saved in a run's ``config.json``) follows the binarised-MNIST protocol
for a Bernoulli likelihood: training intensities stay in [0, 1] and are binarised anew at every step from
the loop's generator (``kakusan.vae.dynamic_binarisation``), while the test images are binarised once, by
``kakusan.data.stochastic_binarise(x_test, generator=test_seed)``, so every evaluation sees the same bits.
Gaussian and discretised-logistic likelihoods take the data as they are (no standardisation: numbers and
samples stay in data space).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

Tensor = torch.Tensor
LIKELIHOODS = ("bernoulli", "gaussian", "logistic")
LEVELS = (2, 17, 256)  # grids k/(K−1) a discretised logistic recognises: binary, 4-bit (digits), 8-bit
EVAL_BATCH = 500  # examples per pass when a bound is taken over a data set


@dataclass(frozen=True)
class VAEDataSpec:
    """Which data, for which likelihood, the seed of the test set's one-time binarisation (and of the ``holdout``
    rows), and the test split of data without one (``holdout`` fraction or ``test`` file)."""

    data: str = "digits"
    likelihood: str = "bernoulli"
    test_seed: int = 0
    holdout: float = 0.0
    test: str | None = None


class VAEData(NamedTuple):
    """``train`` (n, *shape): intensities in [0, 1] for a Bernoulli likelihood (binarised at every step), else the
    values; ``test`` (m, *shape): binarised once for a Bernoulli likelihood; ``split`` is "test", or "train"
    when the data have no test split, nor one from ``--holdout``/``--test`` (then the training data are
    evaluated); ``levels`` of a logistic grid."""

    train: Tensor
    train_labels: Tensor | None
    test: Tensor
    test_labels: Tensor | None
    shape: tuple[int, ...]
    split: str
    class_names: tuple[str, ...] = ()
    levels: int | None = None


def prepare_data(spec: VAEDataSpec) -> VAEData:
    """Load ``spec.data`` (digits, mnist, fashion-mnist or a file) and apply the recipe (module docstring)."""
    from kakusan.data import load
    from kakusan.data.recipes import explicit_split

    ds = explicit_split(load(spec.data), spec.data, holdout=spec.holdout, test=spec.test, seed=spec.test_seed)
    x = ds.x_train.to(torch.float32)
    if x.ndim < 2 or len(x) == 0:
        raise _data_error(spec.data, "a VAE needs examples of shape (n, D) or (n, H, W), got an array of shape "
                                     f"{tuple(x.shape)}")
    has_test = ds.x_test is not None and len(ds.x_test) > 0
    test, labels, split = (ds.x_test.to(torch.float32), ds.y_test, "test") if has_test else (x, ds.y_train, "train")
    test, levels = check_values(spec, x, test)
    return VAEData(x, ds.y_train, test, labels, tuple(x.shape[1:]), split, tuple(ds.class_names), levels)


def check_values(spec: VAEDataSpec, train: Tensor, test: Tensor) -> tuple[Tensor, int | None]:
    """Check the values fit the likelihood; return the test set as evaluated (binarised once) and the logistic's
    levels."""
    from kakusan.data import stochastic_binarise

    if spec.likelihood not in LIKELIHOODS:
        raise _data_error(spec.data, f"unknown likelihood {spec.likelihood!r}: choose {', '.join(LIKELIHOODS)}")
    both = torch.cat([train.reshape(-1), test.reshape(-1)])
    if not bool(torch.isfinite(both).all()):
        raise _data_error(spec.data, "the data hold NaN or infinite values: clean them first")
    lo, hi = float(both.min()), float(both.max())
    if spec.likelihood == "bernoulli":
        if lo < 0 or hi > 1:
            raise _data_error(spec.data, f"continuous values in [{lo:g}, {hi:g}] cannot have a Bernoulli likelihood "
                                         "(it needs 0/1 data, or intensities in [0, 1] to binarise): use "
                                         "--likelihood gaussian")
        return stochastic_binarise(test, generator=spec.test_seed), None
    if spec.likelihood == "logistic":
        levels = next((k for k in LEVELS if _on_grid(both, k)), None)
        if levels is None:
            raise _data_error(spec.data, f"a discretised logistic needs values k/255 (8-bit) or k/16 in [0, 1], "
                                         f"found values in [{lo:g}, {hi:g}] off those grids: use --likelihood "
                                         "gaussian")
        return test, levels
    return test, None


def _on_grid(x: Tensor, levels: int) -> bool:
    k = x.double() * (levels - 1)
    return bool(((x >= 0) & (x <= 1)).all()) and bool(((k - k.round()).abs() < 1e-3).all())


def _data_error(name: str, message: str):
    from kakusan.errors import DataError

    return DataError(f"--data {name}: {message}")


def user_test_data(path: str, spec: VAEDataSpec, shape: tuple[int, ...]) -> Tensor:
    """``--data FILE`` for evaluate/reconstruct: its examples (its test split if it has one), checked against
    the model's shape and likelihood, binarised once with the run's test seed for a Bernoulli likelihood."""
    import math

    from kakusan.data import load
    from kakusan.errors import DataError

    ds = load(path)
    x = (ds.x_test if ds.x_test is not None and len(ds.x_test) else ds.x_train).to(torch.float32)
    want = f"(n, {', '.join(map(str, shape))})" + (f" or (n, {math.prod(shape)})" if len(shape) > 1 else "")
    if x.ndim < 2 or (tuple(x.shape[1:]) != shape and tuple(x.shape[1:]) != (math.prod(shape),)):
        raise DataError(f"--data {path}: the model takes examples of shape {want}, got {tuple(x.shape)}")
    test, _ = check_values(VAEDataSpec(path, spec.likelihood, spec.test_seed), x, x)
    return test.reshape(len(x), *shape)


# ---------------------------------------------------------------- reading a run


def read_config(run: str | Path) -> dict:
    """The ``config.json`` of a run written by ``kakusan vae train`` (one-line error otherwise)."""
    from kakusan.commands.args import read_run_config

    return read_run_config(run, "vae train")


def load_run(run: str | Path, weights: str = "ema", device: str = "cpu"):
    """(model, config, data) of a ``vae train`` run: the model by ``kakusan.load`` (EMA weights by default)."""
    import kakusan

    from kakusan.commands.args import config_part

    config = read_config(run)
    spec = config_part(config, "data", VAEDataSpec, run)
    model = kakusan.load(run, weights=weights, device=device).eval()
    return model, config, prepare_data(spec)


# ---------------------------------------------------------------- bounds and latent statistics over a data set


def batches(x: Tensor, size: int = EVAL_BATCH):
    for i in range(0, len(x), size):
        yield x[i:i + size]


@torch.no_grad()
def elbo_terms(model, x: Tensor, generator: torch.Generator, n_samples: int = 1) -> tuple[Tensor, dict[str, Tensor]]:
    """The ELBO of each example (n,) and the KL of each latent unit, {group: (n, L_g)}, averaged over
    ``n_samples`` draws z ~ q(z|x) each (the KL analytic where the model has it)."""
    device = next(model.parameters()).device
    elbos, units = [], {}
    for xb in batches(x):
        terms = model.elbo(xb.to(device), generator=generator, n_samples=n_samples)
        elbos.append(terms.elbo.double().cpu())
        for name, v in terms.kl_units.items():
            units.setdefault(name, []).append(v.double().cpu())
    return torch.cat(elbos), {name: torch.cat(v) for name, v in units.items()}


@torch.no_grad()
def active_units(model, x: Tensor, seed: int = 0) -> dict[str, Tensor]:
    """Burda et al. (2016, §5.2): unit u is active when Cov_x(E_q[z_u|x]) > 10⁻², {group: (L_g,) bool}
    (``kakusan.vae.diagnostics.active_units``: every layer of a hierarchical VAE, Monte Carlo noise removed)."""
    device = next(model.parameters()).device
    try:
        from kakusan.vae import diagnostics
    except ImportError:  # a one-layer VAE's posterior means are exact
        means = torch.cat([model.encode(xb.to(device)).mean.double().cpu() for xb in batches(x)])
        return {"z": means.var(0) > 1e-2}
    found = diagnostics.active_units(model, x.to(device), generator=seed)
    return {name: (a.variance > a.threshold).cpu() for name, a in found.items()}

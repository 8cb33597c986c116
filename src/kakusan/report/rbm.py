"""Figures of an RBM: filters (columns of W as images), samples from long chains, the likelihood curve, AIS.

The report layer sits on top of the models: this module imports :mod:`kakusan.rbm`, never the reverse.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from kakusan.rbm.base import RBM
from kakusan.report.figures import _save, image_grid, line_plot

Tensor = torch.Tensor


def filter_images(model: RBM, shape: tuple[int, ...], n: int = 100) -> Tensor:
    """The weights of the first ``n`` hidden units as images (n, *shape), each scaled to [0, 1] around 0
    (grey = 0, white = the largest positive weight of that unit, black = its most negative)."""
    W = model.W.detach().to(torch.float64)[:, :n].T  # (n, n_visible)
    scale = W.abs().amax(1, keepdim=True).clamp_min(1e-12)
    return (0.5 + 0.5 * W / scale).reshape(-1, *shape)


def filters_figure(model: RBM, shape: tuple[int, ...], path: str | Path, n: int = 100) -> Path:
    """Write :func:`filter_images` as one PNG grid."""
    images = filter_images(model, shape, n)
    return image_grid(images, path, nrow=math.ceil(math.sqrt(len(images))), scale=_scale(shape))


def as_images(model: RBM, v: Tensor, shape: tuple[int, ...], mean: Tensor | None = None,
              std: Tensor | None = None) -> Tensor:
    """Visible vectors (n, n_visible) as images in [0, 1]: ±1 spins mapped to 0/1, Gaussian units
    de-standardised with ``mean``, ``std`` when given."""
    x = v.detach().to(torch.float64)
    if model.visible_units is not None and model.visible_units.lo == -1.0:
        x = (x + 1) / 2
    if model.visible_units is None and mean is not None and std is not None:
        x = x * std.to(x.dtype) + mean.to(x.dtype)
    return x.clamp(0, 1).reshape(-1, *shape)


def samples_figure(images: Tensor, path: str | Path, shape: tuple[int, ...]) -> Path:
    """Write images (n, *shape) in [0, 1] as one PNG grid."""
    return image_grid(images, path, nrow=math.ceil(math.sqrt(len(images))), scale=_scale(shape))


def likelihood_figure(evaluations: list[dict], path: str | Path, title: str | None = None) -> Path | None:
    """Train/test mean log-likelihood (exact) or the proxy against epochs; None when there is nothing to plot."""
    if not evaluations:
        return None
    exact = evaluations[0].get("kind") == "exact"
    key = "log_likelihood" if exact else next((k.removeprefix("train_") for k in evaluations[0]
                                               if k.startswith("train_") and k != "train_log_likelihood"), None)
    if key is None:
        return None
    series = {f"{split} ({'exact' if exact else 'proxy'})": [e[f"{split}_{key}"] for e in evaluations]
              for split in ("train", "test") if f"{split}_{key}" in evaluations[0]}
    return line_plot(series, path, x=[e["epoch"] for e in evaluations], xlabel="epoch",
                     ylabel=f"mean {key.replace('_', ' ')} (nats)" if exact else key.replace("_", " "), title=title)


def _scale(shape: tuple[int, ...]) -> int:
    return max(1, 112 // max(shape[0], 1)) if len(shape) >= 2 else 1


def ais_figure(estimates: dict[str, list], exact_log_z: float | None, path: str | Path,
               title: str | None = None) -> Path:
    """log Ẑ with ±2 standard errors against the number of βs, one series per direction, and the exact log Z.

    ``estimates`` maps a label ("forward", "reverse") to a list of :class:`~kakusan.rbm.ais.AISResult`.
    """
    import matplotlib.pyplot as plt  # after kakusan.report.figures chose the backend

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for k, (label, results) in enumerate(estimates.items()):
        n = [r.n_betas * (1.03 if k else 0.97) for r in results]  # side by side
        ax.errorbar(n, [r.log_z for r in results], yerr=[2 * r.log_z_stderr for r in results], fmt="o-", capsize=3,
                    label=f"{label} AIS ±2 s.e.")
    if exact_log_z is not None:
        ax.axhline(exact_log_z, ls="--", color="k", lw=1, label="exact")
    ax.set_xscale("log")
    ax.set_xlabel("number of inverse temperatures")
    ax.set_ylabel("log Z")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    return _save(fig, path)


__all__ = ["ais_figure", "as_images", "filter_images", "filters_figure", "likelihood_figure", "samples_figure"]

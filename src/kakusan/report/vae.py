"""Figures of a VAE: samples, reconstructions, the 2-D latent map, the bound against k, KL per layer and unit.

The report layer sits on top of the models: this module takes a model (anything with the VAE API:
``sample``, ``decode``, ``encode``, ``image_shape``) or plain numbers, and never the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from kakusan.report.figures import _legend_below, _save, image_grid, line_plot

Tensor = torch.Tensor


def image_shape(model, n_features: int | None = None) -> tuple[int, ...] | None:
    """The (H, W) or (C, H, W) that a model's examples are drawn as: its ``image_shape``, or a square side
    for square vectors of at least 4×4 (64 → 8×8); None when they are not images."""
    shape = getattr(model, "image_shape", None)
    if shape is not None:
        return tuple(shape)
    n = n_features if n_features is not None else getattr(model, "n_features", 0)
    side = int(round(math.sqrt(n))) if n else 0
    return (side, side) if side >= 4 and side * side == n else None


def as_images(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Examples (n, ...) as (n, H, W) or (n, 3, H, W) images (one channel squeezed), float64."""
    x = torch.as_tensor(x).detach().cpu().to(torch.float64).reshape(len(x), *shape)
    return x[:, 0] if x.ndim == 4 and x.shape[1] == 1 else x


def value_range(*arrays: Tensor) -> tuple[float, float]:
    """(0, 1) for data in [0, 1] (images, probabilities), else the arrays' own (min, max)."""
    lo = min(float(torch.as_tensor(a).min()) for a in arrays)
    hi = max(float(torch.as_tensor(a).max()) for a in arrays)
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return lo, hi if hi > lo else lo + 1.0


def _scale(shape: tuple[int, ...]) -> int:
    return max(1, 112 // max(shape[-2], 1))


def samples_figure(samples: Tensor, path: str | Path, shape: tuple[int, ...]) -> Path:
    """Samples (n, ...) drawn as one image grid (E[x|z] for z ~ p(z): probabilities or means)."""
    images = as_images(samples, shape)
    return image_grid(images, path, nrow=math.ceil(math.sqrt(len(images))), value_range=value_range(images),
                      scale=_scale(shape))


def reconstructions_figure(originals: Tensor, reconstructions: Tensor, path: str | Path,
                           shape: tuple[int, ...], per_row: int = 16) -> Path:
    """Originals and their reconstructions in pairs of rows: a row of up to ``per_row`` originals, then the
    same examples reconstructed (E[x|z] at the mode of q(z|x)) below them."""
    a, b = as_images(originals, shape), as_images(reconstructions, shape)
    n, cols = len(a), min(per_row, len(a))
    rows = []
    for start in range(0, n, cols):
        block = slice(start, min(start + cols, n))
        for part in (a[block], b[block]):
            pad = cols - len(part)  # blank (white) cells finish a last short row
            rows.append(torch.cat([part, torch.full((pad, *part.shape[1:]), float("nan"))]) if pad else part)
    images = torch.cat(rows)
    lo, hi = value_range(a, b)
    images = torch.nan_to_num(images, nan=hi)
    return image_grid(images, path, nrow=cols, value_range=(lo, hi), scale=_scale(shape))


def latent_map_figure(model, x: Tensor, labels: Tensor | None, path: str | Path, *, grid: int = 15,
                      class_names: Sequence[str] = ()) -> Path:
    """A 2-latent model's map: the decoder's means over a grid of the latent plane (at the standard normal's
    quantiles 0.05 … 0.95, as Kingma & Welling's Fig. 4), beside the posterior means E[z|x] of the data x,
    coloured by class."""
    import matplotlib.pyplot as plt  # after kakusan.report.figures chose the backend
    from matplotlib import colormaps

    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, grid, dtype=torch.float64))
    shape = image_shape(model)
    with torch.no_grad():
        means = model.encode(x).mean.detach().cpu().double().numpy()  # (n, 2)
        zs = torch.stack(torch.meshgrid(q, q.flip(0), indexing="xy"), -1).reshape(-1, 2)  # rows: z2 high → low
        decoded = model.decode(zs.to(next(model.parameters()).dtype)) if shape is not None else None
    panels = 2 if decoded is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.4), dpi=110, layout="constrained", squeeze=False)
    if decoded is not None:
        from kakusan.report.figures import tile_images

        images = as_images(decoded, shape)
        lo, hi = value_range(images)
        tiles = tile_images(((images - lo) / (hi - lo)).clamp(0, 1), nrow=grid, pad=1)
        ext = (float(q[0]), float(q[-1]), float(q[0]), float(q[-1]))
        axes[0, 0].imshow(tiles, cmap="gray" if tiles.ndim == 2 else None, vmin=0, vmax=1, extent=ext)
        axes[0, 0].set(xlabel="$z_1$", ylabel="$z_2$", title="decoder means over the latent plane")
    ax = axes[0, -1]
    if labels is None:
        ax.scatter(means[:, 0], means[:, 1], s=4, alpha=0.6)
    else:
        labels = torch.as_tensor(labels).cpu().numpy()
        cmap = colormaps["tab10"]
        for c in np.unique(labels):
            pick = labels == c
            name = class_names[c] if c < len(class_names) else str(c)
            ax.scatter(means[pick, 0], means[pick, 1], s=4, alpha=0.7, color=cmap(int(c) % 10), label=name)
        ax.legend(markerscale=3, fontsize="x-small", frameon=False, ncols=2, loc="best")
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title="posterior means E[z|x] of the test set")
    return _save(fig, path)


def bound_figure(bounds: Mapping[int, tuple[float, float]], path: str | Path, *, elbo: float | None = None,
                 exact: float | None = None, title: str | None = None, unit: str = "nats") -> Path:
    """The importance-weighted bound L_k (mean over examples ± 2 s.e.) against k, on a log axis, with the ELBO
    (k = 1 with the analytic KL) and, where known, the exact log-likelihood as reference lines."""
    import matplotlib.pyplot as plt

    ks = sorted(bounds)
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110, layout="constrained")
    ax.errorbar(ks, [bounds[k][0] for k in ks], yerr=[2 * bounds[k][1] for k in ks], fmt="o-", capsize=3,
                label="IWAE bound $L_k$ ± 2 s.e.")
    if elbo is not None:
        ax.axhline(elbo, ls="--", color="C1", label="ELBO (analytic KL)")
    if exact is not None:
        ax.axhline(exact, ls="--", color="k", label="exact log p(x)")
    ax.set_xscale("log")
    ax.set(xlabel="importance samples k", ylabel=f"mean bound ({unit})")
    if title:
        ax.set_title(title)
    _legend_below(fig, 1 + (elbo is not None) + (exact is not None))
    return _save(fig, path)


def kl_units_figure(kl_units: Mapping[str, Tensor], path: str | Path, *,
                    active: Mapping[str, Tensor] | None = None, title: str | None = None) -> Path:
    """KL(q ‖ p) of each latent unit (mean over examples, nats), one panel per latent group (layer), units
    sorted by KL; the panel title gives the layer's total and, with ``active`` masks, its active units."""
    import matplotlib.pyplot as plt

    groups = list(kl_units)
    fig, axes = plt.subplots(1, len(groups), figsize=(max(4.5, 3.2 * len(groups)), 3.4), dpi=110,
                             layout="constrained", squeeze=False, sharey=True)
    for ax, name in zip(axes[0], groups):
        kl = torch.as_tensor(kl_units[name]).detach().cpu().double()
        order = torch.argsort(kl, descending=True)
        colours = "C0"
        caption = f"{name}: {float(kl.sum()):.2f} nats"
        if active is not None and name in active:
            mask = torch.as_tensor(active[name]).cpu().bool()[order]
            colours = ["C0" if m else "C7" for m in mask.tolist()]
            caption += f", {int(mask.sum())}/{len(mask)} active"
        ax.bar(np.arange(len(kl)), kl[order].numpy(), color=colours, width=0.85)
        ax.set(xlabel="unit (sorted)", title=caption)
    axes[0, 0].set_ylabel("KL per unit (nats)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def training_figure(evaluations: Sequence[dict], history: Sequence[dict], path: str | Path, *,
                    steps_per_epoch: int, title: str | None = None, unit: str = "nats") -> Path | None:
    """The training bound (interval means) and the test ELBO (raw and EMA weights) against epochs."""
    series, xs = {}, {}
    key = next((k for k in ("iwae", "elbo") if history and k in history[-1]), None)
    if key is not None:
        rows, label = [r for r in history if key in r], f"train {key.upper()}"
        series[label], xs[label] = [r[key] for r in rows], [r["step"] / steps_per_epoch for r in rows]
    for name, label in (("test_elbo", "test ELBO"), ("test_elbo_ema", "test ELBO (EMA weights)"),
                        ("train_elbo", "ELBO on the training rows (no test split)"),
                        ("train_elbo_ema", "ELBO on the training rows (EMA weights)")):
        rows = [e for e in evaluations if name in e]
        if rows:
            series[label], xs[label] = [e[name] for e in rows], [e["epoch"] for e in rows]
    if not series:
        return None
    return line_plot(series, path, xs=xs, xlabel="epoch", ylabel=f"mean per example ({unit})", title=title)


__all__ = ["as_images", "bound_figure", "image_shape", "kl_units_figure", "latent_map_figure",
           "reconstructions_figure", "samples_figure", "training_figure", "value_range"]

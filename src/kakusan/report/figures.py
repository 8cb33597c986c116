"""PNG figures with matplotlib (Agg, no screen): image grids, line plots, 2-D density contours.

Every function writes one PNG and returns its path; none needs torchvision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from kakusan.errors import KakusanError  # noqa: E402


def _as_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def tile_images(images, nrow: int | None = None, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile ``images`` of shape (n, H, W) or (n, C, H, W) (C = 1 or 3) into one (H', W'[, 3]) array."""
    x = _as_numpy(images).astype(np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise KakusanError(f"image grid needs images of shape (n, H, W) or (n, C, H, W) with C in (1, 3), got {x.shape}")
    n, c, h, w = x.shape
    ncol = nrow or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncol)
    grid = np.full((c, nrows * (h + pad) + pad, ncol * (w + pad) + pad), pad_value)
    for i in range(n):
        r, q = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[:, top : top + h, left : left + w] = x[i]
    return grid[0] if c == 1 else np.transpose(grid, (1, 2, 0))


def image_grid(images, path: str | Path, nrow: int | None = None, *, value_range: tuple[float, float] = (0.0, 1.0),
               scale: int = 4) -> Path:
    """Write images (n, H, W) or (n, C, H, W), values in ``value_range``, as one PNG grid, ``nrow`` per row."""
    lo, hi = value_range
    x = (np.clip(_as_numpy(images).astype(np.float64), lo, hi) - lo) / (hi - lo)
    grid = tile_images(x, nrow=nrow)
    if scale > 1:  # nearest-neighbour upscaling so small digits stay visible in a report
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, grid, cmap="gray" if grid.ndim == 2 else None, vmin=0.0, vmax=1.0)
    return path


def line_plot(series: Mapping[str, Sequence[float]], path: str | Path, *, x: Sequence[float] | None = None,
              xlabel: str = "step", ylabel: str = "", title: str | None = None, logy: bool = False,
              hlines: Mapping[str, float] | None = None, xs: Mapping[str, Sequence[float]] | None = None,
              logx: bool = False, marker: str | None = None) -> Path:
    """Plot each named series against ``x`` (default 0, 1, ...) or its own ``xs[name]``; ``hlines`` adds
    labelled reference lines. With more than one line, the legend goes below the axes, where it covers no data."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110, layout="constrained")
    for label, ys in series.items():
        ys = _as_numpy(ys)
        at = xs[label] if xs is not None and label in xs else x
        ax.plot(np.arange(len(ys)) if at is None else _as_numpy(at), ys, label=label, marker=marker, ms=3)
    for k, (label, y) in enumerate((hlines or {}).items()):
        ax.axhline(y, ls="--", color=f"C{len(series) + k}", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    if title:
        ax.set_title(title)
    _legend_below(fig, len(series) + len(hlines or {}))
    return _save(fig, path)


def _legend_below(fig, n_lines: int, max_cols: int = 3) -> None:
    """With more than one line, a legend below the axes (it covers no data), in as many columns (up to
    ``max_cols``) as fit the figure's width; the figure grows by its rows."""
    if n_lines < 2:
        return
    renderer = fig.canvas.get_renderer()
    for ncols in range(min(n_lines, max_cols), 0, -1):
        legend = fig.legend(loc="outside lower center", ncols=ncols, frameon=False, fontsize="small")
        if ncols == 1 or legend.get_window_extent(renderer).width <= 0.98 * fig.bbox.width:
            break
        legend.remove()
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + 0.2 * math.ceil(n_lines / ncols))


def scatter_plot(x, y, path: str | Path, *, xlabel: str = "", ylabel: str = "", title: str | None = None,
                 diagonal: bool = True) -> Path:
    """Scatter ``y`` against ``x`` (e.g. learned against true couplings), with the line y = x."""
    x, y = _as_numpy(x).ravel(), _as_numpy(y).ravel()
    fig, ax = plt.subplots(figsize=(4.2, 4.0), dpi=110)
    ax.scatter(x, y, s=8, alpha=0.7)
    if diagonal and x.size:
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def density_contour(log_density: Callable[[np.ndarray], np.ndarray], points, path: str | Path, *,
                    title: str | None = None, levels: int = 12, margin: float = 0.15, grid: int = 150,
                    xlabel: str = "$x_1$", ylabel: str = "$x_2$") -> Path:
    """Contours of a 2-D density, given as ``log_density((m, 2) array) -> (m,)``, over the data ``points`` (n, 2)."""
    pts = _as_numpy(points)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise KakusanError(f"a density contour plot needs 2-D points of shape (n, 2), got {pts.shape}")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - margin * span, hi + margin * span
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    z = _as_numpy(log_density(np.stack([gx.ravel(), gy.ravel()], axis=1))).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=110)
    cs = ax.contourf(gx, gy, np.exp(z - z.max()), levels=levels, cmap="viridis", alpha=0.85)
    fig.colorbar(cs, ax=ax, label="density / max")
    ax.scatter(pts[:, 0], pts[:, 1], s=4, c="white", edgecolors="black", linewidths=0.2, alpha=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def heatmap(matrix, path: str | Path, *, title: str | None = None, cmap: str = "RdBu_r", symmetric: bool = True) -> Path:
    """A matrix (e.g. couplings J) as a colour map, centred on zero when ``symmetric``."""
    m = _as_numpy(matrix)
    fig, ax = plt.subplots(figsize=(4.4, 3.8), dpi=110)
    v = float(np.abs(m).max()) or 1.0
    im = ax.imshow(m, cmap=cmap, vmin=-v if symmetric else None, vmax=v if symmetric else None)
    fig.colorbar(im, ax=ax)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

"""Figures of the prompt → image model: samples by prompt, a guidance sweep, paraphrase accuracy, the diffusion
classifier's confusion matrix and its rankings, and image edits (SDEdit, inpainting).

The report layer sits on top of the models: ``prompt_grid`` and ``guidance_sweep`` take a
:class:`~kakusan.latent.model.LatentDiffusion` (its ``generate`` API) and draw from it; the other functions take
plain numbers or images. Every function writes one PNG and returns its path; bad input gets a one-line
:class:`~kakusan.errors.DataError`.

Both drawing functions use one z_T per column, shared by every row (and, in the sweep, by every guidance value),
so that what differs between two cells is the prompt or the guidance weight, not the noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from kakusan.errors import DataError, check_positive_int
from kakusan.report.figures import _as_numpy, _save, plt, tile_images

Tensor = torch.Tensor
GOAL = 0.8  # the chapter's goal for class-prompt and paraphrase accuracy


def class_names(n: int = 20) -> tuple[str, ...]:
    """Names of the joint classes 0–19 (MNIST's digits, then Fashion-MNIST's clothes); the first ``n``."""
    from kakusan.data.datasets import DIGIT_NAMES, FASHION_NAMES

    names = tuple(DIGIT_NAMES) + tuple(FASHION_NAMES)
    if not 1 <= n <= len(names):
        raise DataError(f"the joint classes number 1 to {len(names)}, got {n}")
    return names[:n]


# ---------------------------------------------------------------- helpers


def _images(x, what: str = "images") -> np.ndarray:
    """(n, H, W) float64 in [0, 1] from (n, H, W), (n, 1, H, W) or one (H, W); one-line errors otherwise."""
    a = _as_numpy(x)
    if a.dtype.kind not in "fiub":
        raise DataError(f"{what} must be numbers in [0, 1], got {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3 or len(a) == 0 or min(a.shape[1:]) == 0:
        raise DataError(f"{what} must have shape (n, H, W) with n ≥ 1, got {tuple(a.shape)}")
    if not np.isfinite(a).all():
        raise DataError(f"{what} hold NaN or infinite values")
    return np.clip(a, 0.0, 1.0)


def _prompt_list(prompts) -> list[str]:
    from kakusan.text import check_prompt

    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise DataError("no prompts given: pass a list such as [\"a handwritten 7\", \"a pair of trousers\"]")
    return [check_prompt(p) for p in prompts]


def _check_guidance(w) -> float:
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or not 0 <= w <= 50:
        raise DataError(f"a guidance weight must be a number in [0, 50] (1: none, 3: the default), got {w!r}")
    return float(w)


def _noise(model, n: int, seed) -> Tensor:
    """n latent noises z_T from ``seed`` on the model's device."""
    from kakusan.runtime import make_generator

    device = next(model.parameters()).device
    g = make_generator(seed, device)
    return torch.randn((n, *model.diffusion.data_shape), generator=g, device=device)


@torch.no_grad()
def _draw(model, prompts: list[str], z: Tensor, guidance: float, steps: int, sampler: str, negative=None) -> Tensor:
    """One image per (prompt, column): (len(prompts), len(z), H, W) on the CPU, the columns' z_T shared by rows."""
    k, n = len(prompts), len(z)
    cond = model.encode_text(prompts).take(torch.arange(k).repeat_interleave(n))
    out = model.generate(cond, n=k * n, sampler=sampler, steps=steps, guidance=guidance, negative=negative,
                         z_T=z.repeat(k, *([1] * (z.ndim - 1))))
    return out.float().cpu().reshape(k, n, *out.shape[1:])


def _blank(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _label_width(labels: Sequence[str]) -> float:
    """Inches that labels of this length take at font size 8 (about 0.058 in per character)."""
    return min(4.0, 0.15 + 0.058 * max((len(s) for s in labels), default=0))


def _rgb(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a


def _mosaic(cells: Sequence[Sequence[np.ndarray]], gap: tuple[int, int] = (4, 4)):
    """Cells (rows of (H, W) or (H, W, 3) arrays in [0, 1]) on one white RGB canvas, ``gap`` = (between rows,
    between columns) pixels apart; returns the canvas, the row centres, the column centres and the cell size."""
    cells = [[_rgb(c) for c in row] for row in cells]
    ch = max(c.shape[0] for row in cells for c in row)
    cw = max(c.shape[1] for row in cells for c in row)
    nr, nc = len(cells), max(len(row) for row in cells)
    gy, gx = gap
    canvas = np.ones((nr * ch + (nr - 1) * gy, nc * cw + (nc - 1) * gx, 3))
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            top, left = i * (ch + gy), j * (cw + gx)
            canvas[top:top + c.shape[0], left:left + c.shape[1]] = c
    rows = [i * (ch + gy) + (ch - 1) / 2 for i in range(nr)]
    cols = [j * (cw + gx) + (cw - 1) / 2 for j in range(nc)]
    return canvas, rows, cols, (ch, cw)


def _text_width(fig, texts: Sequence[str], fontsize: float) -> float:
    """The width in inches of the widest of ``texts`` as the figure would draw it."""
    renderer = fig.canvas.get_renderer()
    width = 0.0
    for text in texts:
        t = fig.text(0, 0, text, fontsize=fontsize)
        width = max(width, t.get_window_extent(renderer).width)
        t.remove()
    return width / fig.dpi


def _show(canvas: np.ndarray, rows: Sequence[float], row_labels: Sequence[str], *,
          cols: Sequence[float] = (), col_labels: Sequence[str] = (), title: str | None = None,
          inch_per_px: float = 0.02):
    """A figure of one canvas with row labels left of the row centres ``rows`` (and column labels on top);
    returns (fig, ax). The axes is placed by hand, its margins measured from the rendered labels: a layout engine
    with a fixed-aspect image may leave long labels cut off at the figure's edge."""
    fig = plt.figure(dpi=110)
    h, w = canvas.shape[:2]
    left = _text_width(fig, row_labels, 8) + 0.12
    right, bottom = 0.08, 0.06
    top = 0.06 + (0.22 if col_labels else 0.0) + (0.22 * (1 + title.count("\n")) if title else 0.0)
    if title:  # a long title widens the figure rather than leave it
        right = max(right, _text_width(fig, title.split("\n"), 8) + 0.1 - left - w * inch_per_px)
    width, height = left + w * inch_per_px + right, bottom + h * inch_per_px + top
    fig.set_size_inches(width, height)
    ax = fig.add_axes((left / width, bottom / height, w * inch_per_px / width, h * inch_per_px / height))
    ax.imshow(canvas, vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    _blank(ax)
    ax.set_yticks(rows, row_labels, fontsize=8)
    if col_labels:
        ax.xaxis.tick_top()
        ax.set_xticks(cols, col_labels, fontsize=8)
    ax.tick_params(length=0, pad=4)
    if title:
        ax.set_title(title, fontsize=8)
    return fig, ax


def _save_as_placed(fig, path: str | Path) -> Path:
    """Save a figure whose axes were placed by hand (no layout pass); close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def labelled_rows(rows: Sequence[tuple[str, object]], path: str | Path, *, title: str | None = None,
                  ncol: int | None = None) -> Path:
    """Rows of images, each (label, images (n, H, W)) with its label at the left; ``ncol`` images per line of a
    row (default: all of them)."""
    rows = [(str(label), _images(x, f"the images of row {label!r}")) for label, x in rows]
    if not rows:
        raise DataError("no rows of images given")
    shapes = {x.shape[1:] for _, x in rows}
    if len(shapes) > 1:
        raise DataError(f"every row needs images of one shape, got {sorted(shapes)}")
    ncol = ncol or max(len(x) for _, x in rows)
    canvas, centres, _, _ = _mosaic([[tile_images(x, nrow=ncol)] for _, x in rows], gap=(6, 0))
    return _save_as_placed(_show(canvas, centres, [label for label, _ in rows], title=title)[0], path)


# ---------------------------------------------------------------- drawing from the model


def prompt_grid(model, prompts, path: str | Path, n_per_prompt: int = 8, seed=0, guidance: float = 3.0,
                steps: int = 20, *, sampler: str = "dpm++2m", negative=None, title: str | None = None) -> Path:
    """``n_per_prompt`` images of each prompt, one row per prompt with the prompt at its left.

    Column j of every row starts from the same z_T (drawn from ``seed``), so rows differ only by their prompt."""
    prompts = _prompt_list(prompts)
    check_positive_int(n_per_prompt, "n_per_prompt")
    check_positive_int(steps, "steps")
    guidance = _check_guidance(guidance)
    images = _draw(model, prompts, _noise(model, n_per_prompt, seed), guidance, steps, sampler, negative)
    if title is None:
        title = f"{sampler}, {steps} steps, guidance w = {guidance:g}; the same z_T in each column"
    return labelled_rows([(f"“{p}”", x) for p, x in zip(prompts, images)], path, title=title)


def guidance_sweep(model, prompt_or_prompts, path: str | Path, guidances: Sequence[float] = (0, 1, 2, 3, 5, 8),
                   n: int = 6, seed=0, *, steps: int = 20, sampler: str = "dpm++2m", negative=None) -> Path:
    """Images of each prompt (rows) at each guidance weight w (columns), ``n`` per cell, the same ``n`` z_T in
    every cell: as w grows the images sharpen towards the prompt and grow alike (guidance trades diversity for
    fidelity). Under each cell, the pixels' standard deviation across its ``n`` images (its diversity)."""
    prompts = _prompt_list(prompt_or_prompts)
    guidances = [_check_guidance(w) for w in guidances]
    if not guidances:
        raise DataError("no guidance weights given: pass e.g. guidances=(0, 1, 3, 8)")
    check_positive_int(n, "n")
    check_positive_int(steps, "steps")
    z = _noise(model, n, seed)
    cells = [_draw(model, prompts, z, w, steps, sampler, negative) for w in guidances]  # each (k, n, H, W)
    per_line = math.ceil(math.sqrt(n)) if n > 3 else n
    gap_y = 14  # room for the s.d. under each cell
    canvas, rows, cols, (ch, _) = _mosaic([[tile_images(cells[j][i].numpy(), nrow=per_line)
                                             for j in range(len(guidances))] for i in range(len(prompts))],
                                           gap=(gap_y, 8))
    canvas = np.concatenate([canvas, np.ones((gap_y, canvas.shape[1], 3))])  # the last row's s.d. too
    fig, ax = _show(canvas, rows, [f"“{p}”" for p in prompts], cols=cols,
                    col_labels=[f"w = {w:g}" for w in guidances], inch_per_px=0.016,
                    title=f"classifier-free guidance w ({sampler}, {steps} steps); the same z_T in every column; "
                          "s.d. = pixel spread across a cell")
    for i in range(len(prompts)):
        for j in range(len(guidances)):
            spread = cells[j][i].numpy().std(axis=0).mean()
            ax.text(cols[j], rows[i] + ch / 2 + gap_y / 2, f"s.d. {spread:.3f}", ha="center", va="center",
                    fontsize=6.5)
    return _save_as_placed(fig, path)


# ---------------------------------------------------------------- numbers


def paraphrase_table(rows: Sequence[tuple], path: str | Path, *, goal: float = GOAL,
                     title: str | None = None) -> Path:
    """Accuracy by prompt as horizontal bars, best at the top, with the goal as a dashed line.

    ``rows``: (prompt, class_name, accuracy) or (prompt, class_name, accuracy, n_images), accuracy a fraction in
    [0, 1] (e.g. of the prompt's images that the metric network classifies as the class); with ``n_images`` the
    bars get ±1 s.e. = √(a(1 − a)/n)."""
    rows = list(rows)
    if not rows:
        raise DataError("no rows given: pass (prompt, class_name, accuracy) tuples")
    parsed = []
    for r in rows:
        if not isinstance(r, (tuple, list)) or len(r) not in (3, 4):
            raise DataError(f"each row is (prompt, class_name, accuracy[, n_images]), got {r!r}")
        prompt, name, acc = str(r[0]), str(r[1]), r[2]
        try:
            acc = float(acc)
        except (TypeError, ValueError):
            raise DataError(f"the accuracy of {prompt!r} must be a number, got {r[2]!r}") from None
        if not 0.0 <= acc <= 1.0:
            raise DataError(f"accuracies are fractions in [0, 1], got {acc:g} for {prompt!r} (divide percentages "
                            "by 100)")
        n = None
        if len(r) == 4:
            n = r[3]
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise DataError(f"n_images of {prompt!r} must be a positive integer, got {n!r}")
        parsed.append((prompt, name, acc, n))
    parsed.sort(key=lambda r: r[2])  # barh draws bottom-up: best at the top
    labels = [f"“{p}”  ({c})" for p, c, _, _ in parsed]
    acc = np.array([a for _, _, a, _ in parsed])
    err = np.array([math.sqrt(a * (1 - a) / n) if n else 0.0 for _, _, a, n in parsed])
    fig, ax = plt.subplots(figsize=(3.8 + _label_width(labels), 0.9 + 0.2 * len(parsed)), dpi=110,
                           layout="constrained")
    y = np.arange(len(parsed))
    colours = np.where(acc >= goal, "C0", "C3")
    ax.barh(y, acc, color=colours, xerr=err if err.any() else None, error_kw={"lw": 0.8, "capsize": 2})
    ax.axvline(goal, ls="--", color="k", lw=1, label=f"goal {goal:.0%}")
    for yi, a in zip(y, acc):
        inside = a > 0.88  # the number inside the bar's end, where a label right of it would leave the axes
        ax.text(a - 0.01 if inside else a + 0.01, yi, f"{a:.0%}", va="center", ha="right" if inside else "left",
                fontsize=7, color="white" if inside else "black")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, len(parsed) - 0.4)
    ax.set_xlabel("accuracy")
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    met = int((acc >= goal).sum())
    ax.set_title(title or f"{met} of {len(parsed)} prompts at or above the goal ({goal:.0%})", fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    return _save(fig, path)


def _labels(labels, n: int) -> list[str]:
    if labels is None:
        if n in (10, 20):
            return list(class_names(20)[:n])
        raise DataError(f"give the labels of a {n}×{n} confusion matrix (names, or class indices 0–19)")
    labels = list(labels)
    if len(labels) != n:
        raise DataError(f"{len(labels)} labels for a {n}×{n} confusion matrix: give one per row")
    names = class_names(20)
    out = []
    for lab in labels:
        if isinstance(lab, (int, np.integer)) and not isinstance(lab, bool):
            if not 0 <= lab < len(names):
                raise DataError(f"class indices lie in 0–{len(names) - 1}, got {lab}")
            out.append(names[lab])
        else:
            out.append(str(lab))
    return out


def confusion_figure(matrix, labels, path: str | Path, title: str | None = None, *, normalise: bool = True) -> Path:
    """A confusion matrix as a heat map: rows the true class, columns the predicted one.

    ``matrix`` (K, K) of counts (or already row-normalised fractions); ``labels`` K class names, or class
    indices 0–19 named by :func:`class_names`, or None for the 10 digits or all 20 joint classes.
    ``normalise`` divides each row by its sum (the cells read as fractions of the true class). With counts the
    title adds the accuracy, trace/total. A 20×20 matrix over the joint classes gets a line between the
    domains."""
    m = _as_numpy(matrix)
    if m.dtype.kind not in "fiub":
        raise DataError(f"a confusion matrix holds numbers, got {m.dtype}")
    m = m.astype(np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise DataError(f"a confusion matrix must be square (K, K) with K ≥ 1, got shape {tuple(m.shape)}")
    if not np.isfinite(m).all() or (m < 0).any():
        raise DataError("a confusion matrix holds finite counts or fractions ≥ 0")
    k = m.shape[0]
    names = _labels(labels, k)
    counts = bool(np.all(m == np.round(m))) and m.sum() > 0 and m.max() > 1
    total = m.sum()
    shown = m / np.where(m.sum(1, keepdims=True) > 0, m.sum(1, keepdims=True), 1.0) if normalise else m
    side = 1.6 + 0.32 * k
    fig, ax = plt.subplots(figsize=(side + 1.2, side), dpi=110, layout="constrained")
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalise else max(float(shown.max()), 1e-12))
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of the true class" if normalise else "images")
    size = 7 if k <= 12 else 5
    vmax = 1 if normalise else max(float(shown.max()), 1e-12)
    for i in range(k):
        for j in range(k):
            v = shown[i, j]
            if v > 0:
                text = f"{100 * v:.0f}" if normalise else (f"{v:.0f}" if counts else f"{v:.2f}")
                ax.text(j, i, text, ha="center", va="center", fontsize=size,
                        color="white" if v > 0.6 * vmax else "black")
    ax.set_xticks(range(k), names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k == 20 and names == list(class_names(20)):
        for pos in (9.5,):
            ax.axhline(pos, color="k", lw=0.8)
            ax.axvline(pos, color="k", lw=0.8)
    heading = title or "confusion matrix"
    if counts:
        heading += f"\naccuracy {np.trace(m) / total:.1%} of {total:.0f} images"
    ax.set_title(heading + (" (cells: % of the row)" if normalise else ""), fontsize=9)
    return _save(fig, path)


def ranking_figure(images, scores, prompts: Sequence[str], path: str | Path, *, truth: Sequence[int] | None = None,
                   top: int = 3) -> Path:
    """The diffusion classifier's view of each image: the image, then its ``top`` prompts by score (higher is more
    likely). ``scores`` (n, K) for K ``prompts``; ``truth`` (n,) the index of each image's own prompt marks the
    best prompt green when it is right, red when not."""
    x = _images(images)
    s = _as_numpy(scores).astype(np.float64)
    prompts = [str(p) for p in prompts]
    if s.ndim != 2 or s.shape != (len(x), len(prompts)):
        raise DataError(f"scores must have shape (n images, K prompts) = ({len(x)}, {len(prompts)}), got "
                        f"{tuple(s.shape)}")
    if truth is not None and len(truth) != len(x):
        raise DataError(f"{len(truth)} true indices for {len(x)} images: give one per image")
    check_positive_int(top, "top")
    top = min(top, len(prompts))
    ncol = min(3, len(x))
    nrow = math.ceil(len(x) / ncol)
    fig, axes = plt.subplots(nrow, 2 * ncol, figsize=(ncol * 3.4, nrow * 0.95 + 0.3), dpi=110, layout="constrained",
                             squeeze=False, gridspec_kw={"width_ratios": [1, 2.6] * ncol})
    for ax in axes.ravel():
        _blank(ax)
    for i in range(len(x)):
        r, c = divmod(i, ncol)
        axes[r, 2 * c].imshow(x[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        order = np.argsort(-s[i])[:top]
        for rank, k in enumerate(order):
            colour = "black"
            if truth is not None and rank == 0:
                colour = "tab:green" if k == int(truth[i]) else "tab:red"
            axes[r, 2 * c + 1].text(0.0, 0.85 - 0.33 * rank, f"{rank + 1}. {prompts[k]}  {s[i, k]:+.4f}",
                                    fontsize=6.5, color=colour, transform=axes[r, 2 * c + 1].transAxes, va="center")
    fig.suptitle("the diffusion classifier: prompts ranked by −E‖ε − ε̂‖²/D (higher is more likely)", fontsize=8)
    return _save(fig, path)


# ---------------------------------------------------------------- editing


def edit_figure(originals, edited, path: str | Path, *, mask=None, title: str | None = None,
                labels: Sequence[str] | None = None) -> Path:
    """Originals in the top row, each edit below them, column by column.

    ``edited``: images (n, H, W), or a mapping label → images (n, H, W) for several rows (e.g. SDEdit at
    several strengths); ``mask`` (H, W) or (n, H, W) of 1 = repainted, 0 = kept (inpainting) adds a row of the
    originals with the repainted region tinted red. ``labels`` names the rows (default: "original", "repainted
    region" with a mask, then the mapping's keys, or "edited")."""
    x = _images(originals, "the originals")
    rows = dict(edited) if isinstance(edited, Mapping) else {"edited": edited}
    if not rows:
        raise DataError("no edited images given")
    out = []
    for name, e in rows.items():
        e = _images(e, f"the edited images {name!r}")
        if e.shape != x.shape:
            raise DataError(f"the edited images {name!r} have shape {tuple(e.shape)}, the originals "
                            f"{tuple(x.shape)}: give one edit per original")
        out.append((str(name), e))
    tiles = [np.repeat(x[..., None], 3, axis=-1)]
    names = ["original"]
    if mask is not None:
        m = _as_numpy(mask)
        if m.ndim == 2:
            m = np.broadcast_to(m, x.shape)
        if m.shape != x.shape:
            raise DataError(f"the mask must have the images' shape {tuple(x.shape[1:])} (or one per image), got "
                            f"{tuple(m.shape)}")
        if not np.isin(m, (0, 1)).all():
            raise DataError("the mask must hold only 0 (keep) and 1 (repaint)")
        tint = tiles[0].copy()
        tint[m == 1] = 0.55 * tint[m == 1] + 0.45 * np.array([1.0, 0.1, 0.1])
        tiles.append(tint)
        names.append("repainted region")
    tiles += [np.repeat(e[..., None], 3, axis=-1) for _, e in out]
    names += [name for name, _ in out]
    if labels is not None:
        labels = [str(s) for s in labels]
        if len(labels) != len(names):
            raise DataError(f"{len(labels)} labels for {len(names)} rows ({', '.join(names)})")
        names = labels
    canvas, rows, _, _ = _mosaic([[tile_images(np.transpose(t, (0, 3, 1, 2)), nrow=len(x))] for t in tiles],
                                 gap=(6, 0))
    return _save_as_placed(_show(canvas, rows, names, title=title, inch_per_px=0.022)[0], path)


__all__ = ["GOAL", "class_names", "confusion_figure", "edit_figure", "guidance_sweep", "labelled_rows",
           "paraphrase_table", "prompt_grid", "ranking_figure"]

"""Figures of a diffusion model: samples, the forward process on an image, samples by sampler and number of steps,
FD against the number of network evaluations, the VLB's bits/dim against t, training curves.

The report layer sits on top of the models: these functions take a model (the ``Diffusion`` API) or plain
numbers, and never the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from kakusan.errors import KakusanError
from kakusan.report.figures import _save, image_grid, line_plot, plt

Tensor = torch.Tensor


def _gray(images: Tensor) -> Tensor:
    """(n, H, W), (n, 1, H, W) → (n, H, W); colour (n, 3, H, W) stays."""
    return images[:, 0] if images.ndim == 4 and images.shape[1] == 1 else images


def samples_figure(samples: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Image samples in data space ([0, 1]) as one grid."""
    images = _gray(samples.detach().float().cpu())
    return image_grid(images, path, nrow=nrow or math.ceil(math.sqrt(len(images))), value_range=(0.0, 1.0))


def scatter_figure(data: Tensor, samples: Tensor, path: str | Path, title: str | None = None) -> Path:
    """2-D (first two coordinates) scatter of data and model samples side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.6), dpi=110, sharex=True, sharey=True, layout="constrained")
    for ax, x, name in zip(axes, (data, samples), ("data", "samples")):
        x = x.detach().float().cpu().reshape(len(x), -1).numpy()
        ax.scatter(x[:, 0], x[:, 1] if x.shape[1] > 1 else np.zeros(len(x)), s=2, alpha=0.4)
        ax.set_title(name)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


@torch.no_grad()
def forward_process_figure(model, image: Tensor, path: str | Path, generator=None, n_cols: int = 8) -> Path:
    """One image x_0 (data space) noised by q(x_t | x_0) at ``n_cols`` times from 0 to T (same ε), with the
    model's x̂_0 below each: the forward process and what the denoiser recovers."""
    from kakusan.diffusion.process import q_sample

    T = model.schedule.T
    times = torch.linspace(0, T, n_cols).round()
    x0 = model.to_model(image[:1]).expand(n_cols, *model.data_shape)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    a, s = model.alpha_sigma(times, x0)
    xt = q_sample(x0, a, s, eps)
    x0_hat = model.x0(xt, times.clamp(min=1))
    x0_hat[0] = x0[0]
    rows = torch.cat([model.to_data(xt), model.to_data(x0_hat)]).clamp(0, 1).cpu()
    fig, axes = plt.subplots(2, n_cols, figsize=(1.3 * n_cols, 3.0), dpi=110, layout="constrained")
    for j in range(n_cols):
        for i in range(2):
            ax = axes[i, j]
            img = _gray(rows[i * n_cols + j : i * n_cols + j + 1])[0]
            ax.imshow(img.numpy() if img.ndim == 2 else img.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(f"t = {int(times[j])}", fontsize=8)
    axes[0, 0].set_ylabel("x_t", fontsize=8)
    axes[1, 0].set_ylabel("x̂_0(x_t)", fontsize=8)
    return _save(fig, path)


def sampler_grid_figure(samples: Mapping[str, Mapping[int, Tensor]], path: str | Path, n_show: int = 8) -> Path:
    """Samples by sampler (rows) and number of steps (columns; ``n_show`` images each, same x_T)."""
    names = list(samples)
    steps = sorted({s for v in samples.values() for s in v})
    fig, axes = plt.subplots(len(names), len(steps), figsize=(1.9 * len(steps), 1.9 * len(names) * 0.55 + 0.4),
                             dpi=110, layout="constrained", squeeze=False)
    from kakusan.report.figures import tile_images

    for i, name in enumerate(names):
        for j, s in enumerate(steps):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if s in samples[name]:
                imgs = _gray(samples[name][s][:n_show].float().cpu()).clamp(0, 1).numpy()
                ax.imshow(tile_images(imgs, nrow=n_show // 2 or 1), cmap="gray", vmin=0, vmax=1)
            if i == 0:
                ax.set_title(f"{s} steps", fontsize=8)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    return _save(fig, path)


def fd_nfe_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path,
                  floor: float | None = None) -> Path:
    """Fréchet distance against network evaluations, one curve per sampler; the train-vs-test floor dashed."""
    series = {name: fd for name, (_, fd) in curves.items()}
    xs = {name: nfe for name, (nfe, _) in curves.items()}
    return line_plot(series, path, xs=xs, xlabel="network evaluations (NFE)", ylabel="FD (metric-net features)",
                     logx=True, logy=True, marker="o", hlines=None if floor is None else {"train vs test": floor})


def vlb_per_t(result, n_features: int) -> np.ndarray:
    """The VLB's terms in bits/dim, mean over examples, (T + 1,) float64: entry t − 1 is L_{t−1} (t = 1 … T; entry
    0 the decoder L_0), entry T the prior L_T. ``result`` is :func:`~kakusan.diffusion.vlb.vlb_exact`'s
    ``VLBResult``; D = ``n_features``. The terms are computed in the network's space; for continuous data the
    data-space Jacobian (−log|dx/d data|, zero for 8-bit data) belongs to the decoder and is added to L_0, so the
    entries sum to ``result.bits_per_dim(n_features).value``."""
    terms = getattr(result, "terms", None)
    if terms is None:
        raise KakusanError("the per-t terms need the exact sum over t: use vlb_exact, not vlb_estimate")
    terms = torch.as_tensor(terms, dtype=torch.float64).cpu()
    values = torch.as_tensor(result.values, dtype=torch.float64).cpu()
    per = terms.mean(0)
    per[0] += float((values - terms.sum(1)).mean())  # the Jacobian, on the decoder term
    return (per / (n_features * math.log(2))).numpy()


def vlb_t_figure(result, n_features: int, path: str | Path, title: str | None = None, learned=None) -> Path:
    """Bits/dim contributed by each term of the VLB against t (log–log; L_0 and L_T marked), and their running sum
    Σ_{s ≤ t} L_{s−1} (L_T added at t = T), which ends at the total bound. ``result`` comes from
    :func:`~kakusan.diffusion.vlb.vlb_exact`; the numbers plotted are :func:`vlb_per_t`'s. ``learned`` ((n,) or
    (n, K) nats: the terms L_0 … L_{K−1} of a learned head, :mod:`~kakusan.diffusion.decoder`, on the same examples
    and draws of x_t) adds those terms and the bound with them in place of the fixed ones (every later term is the
    same)."""
    per = vlb_per_t(result, n_features)
    T = len(per) - 1
    t = np.arange(1, T + 1)
    total = result.bits_per_dim(n_features)
    cum = np.cumsum(per[:T])
    cum[-1] += per[T]
    bits = n_features * math.log(2)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 5.4), dpi=110, sharex=True, layout="constrained")
    kl = np.where(per[1:T] > 0, per[1:T], np.nan)  # a zero term has no place on a log axis
    top.plot(t[1:], kl, lw=0.8, color="C0", label="$L_{t-1}$, Gaussian KL (t ≥ 2)")
    fixed = "$L_0$ (decoder)" if learned is None else "$L_0$, fixed decoder"
    for x, y, name, style in ((1, per[0], fixed, dict(marker="o", color="C1")),
                              (T, per[T], "$L_T$ (prior)", dict(marker="s", color="C3"))):
        top.plot([x] if y > 0 else [], [y] if y > 0 else [], ls="none", ms=7, label=f"{name} = {y:.3g}", **style)
    if learned is not None:
        terms = torch.as_tensor(learned, dtype=torch.float64)
        terms = (terms[:, None] if terms.ndim == 1 else terms) / bits  # (n, K) bits/dim
        K = terms.shape[1]
        delta = (terms.mean(0) - result.terms[:, :K].mean(0) / bits).numpy()  # the change of each term
        head = per[:K] + delta  # (L_0 keeps the Jacobian that vlb_per_t puts on it for continuous data)
        name = "learned decoder" if K == 1 else f"learned head, t ≤ {K}"
        top.plot([1], [head[0]], ls="none", ms=7, marker="D", color="C2", label=f"$L_0$, {name} = {head[0]:.3g}")
        if K > 1:
            top.plot(t[1:K], head[1:], lw=1.2, color="C2", label=f"$L_{{t-1}}$, {name}")
        values = result.values / bits + (terms.sum(1) - result.terms[:, :K].sum(1) / bits)
        shifted = cum + np.cumsum(np.concatenate([delta, np.zeros(T - K)]))
        bottom.plot(t, shifted, color="C2", lw=0.9, label=f"running sum, {name}")
        bottom.axhline(float(values.mean()), ls=":", color="C2",
                       label=f"VLB {float(values.mean()):.4g} ± {float(values.std()) / len(values) ** 0.5:.2g} "
                             f"with the {name}")
    top.set_yscale("log")
    top.set_ylabel("bits/dim of the term")
    bottom.plot(t, cum, color="C0", label="running sum")
    bottom.axhline(total.value, ls="--", color="k",
                   label=f"VLB {total.value:.4g} ± {total.stderr:.2g} bits/dim ({total.n} examples)")
    bottom.set_xscale("log")
    bottom.set(xlabel="step t", ylabel="bits/dim, terms up to t")
    if title:
        top.set_title(title)
    top.legend(fontsize="small", frameon=False)
    bottom.legend(fontsize="small", frameon=False, loc="lower right")
    return _save(fig, path)


def training_figure(evaluations: Sequence[dict], history: Sequence[dict], path: str | Path, *,
                    steps_per_epoch: int) -> Path | None:
    """The training loss (interval means) and the test L_simple (raw and EMA weights) against epochs."""
    series, xs = {}, {}
    rows = [r for r in history if "loss" in r]
    if rows:
        series["train loss"], xs["train loss"] = [r["loss"] for r in rows], [r["step"] / steps_per_epoch for r in rows]
    for name, label in (("test_mse", "test L_simple"), ("test_mse_ema", "test L_simple (EMA)"),
                        ("train_mse", "L_simple on the training rows (no test split)"),
                        ("train_mse_ema", "L_simple on the training rows (EMA)")):
        ev = [e for e in evaluations if name in e]
        if ev:
            series[label], xs[label] = [e[name] for e in ev], [e["step"] / steps_per_epoch for e in ev]
    if not series:
        return None
    return line_plot(series, path, xs=xs, xlabel="epoch", ylabel="mean per dimension", logy=True)


__all__ = ["fd_nfe_figure", "forward_process_figure", "sampler_grid_figure", "samples_figure", "scatter_figure",
           "training_figure", "vlb_per_t", "vlb_t_figure"]

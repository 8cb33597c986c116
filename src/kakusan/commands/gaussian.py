"""``kakusan gaussian fit DATA.npy``: the closed-form maximum-likelihood Gaussian of an array of samples.

Writes a run directory (config.json, argv.json, metrics.jsonl, checkpoints/model.*, figures/) and
prints a summary, or with ``--json`` exactly one JSON object ``{"mean", "cov", "log_likelihood"}``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from kakusan.files import dumps_strict
from kakusan.commands.args import harden_run_options, nonneg_float
from kakusan.errors import DataError, KakusanError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("gaussian", help="fit a Gaussian to data by maximum likelihood",
                                   description="Gaussian models learned by minimising KL(p0 || q).")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    fit = sub.add_parser("fit", help="closed-form MLE (mean, biased 1/n covariance) of DATA.npy",
                         description="Fit N(mu, Sigma) to DATA.npy (rows are samples; a 1-D array is 1-D data) "
                                     "by maximum likelihood, i.e. by minimising KL(p0 || q).")
    fit.add_argument("data", metavar="DATA.npy", help="NumPy .npy array of shape (n,) or (n, D)")
    fit.add_argument("--reg", type=nonneg_float, default=0.0,
                     help="add REG to the covariance diagonal (needed when the data do not span all D dimensions)")
    fit.add_argument("--json", action="store_true",
                     help='print only {"mean", "cov", "log_likelihood"} as one JSON object on stdout')
    harden_run_options(fit, seed_option=False)
    fit.set_defaults(run=run_fit)
    parser.set_defaults(run=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def load_samples(path: str | Path) -> np.ndarray:
    """Read a numeric (n,) or (n, D) ``.npy`` array without unpickling; float64, finite."""
    from kakusan.data.user_files import check_array, read_npy

    path = Path(path)
    if path.suffix != ".npy":
        raise DataError(f"{path} is not a .npy file: save the samples with numpy.save('data.npy', x)")
    x = check_array(read_npy(path), str(path), dtype=np.float64, what="samples")
    if x.ndim not in (1, 2):
        raise DataError(f"{path} has shape {x.shape}: need (n,) or (n, D) samples, one per row")
    return x


def run_fit(args: argparse.Namespace) -> int:
    from kakusan.gaussian import fit_mle
    from kakusan.checkpoint import save_model
    from kakusan.report.run_dir import RunDir

    if not (math.isfinite(args.reg) and args.reg >= 0):
        raise KakusanError(f"--reg must be a finite number >= 0, got {args.reg}")
    x = load_samples(args.data)
    model = fit_mle(x, reg=args.reg)  # raises a KakusanError naming the fix for singular data
    with torch.no_grad():
        result = {"mean": model.mean.tolist(), "cov": model.cov.tolist(),
                  "log_likelihood": float(model.log_prob(x).mean())}
        entropy = float(model.entropy())
    run = RunDir.create("gaussian-fit", args.run_dir, args.runs_root)
    run.write_config({"command": "gaussian fit", "class": "Gaussian", "config": model.config,
                      "data": str(Path(args.data).resolve()), "n_samples": x.shape[0], "reg": args.reg},
                     argv=args.argv)
    run.log_metrics(log_likelihood=result["log_likelihood"], nll=-result["log_likelihood"], entropy=entropy,
                    n_samples=x.shape[0], dim=model.dim, units="nats")
    save_model(run.checkpoints, model, meta={"log_likelihood": result["log_likelihood"]})
    figure = _plot(model, x, run.figures)
    if args.json:
        print(dumps_strict(result))
        print(f"kakusan: wrote {run.path}", file=sys.stderr)
    else:
        _summary(model, x, result, run.path, figure)
    return 0


def _plot(model, x: np.ndarray, figures: Path) -> Path:
    """2-D: contours over the data; 1-D: histogram and pdf; D > 2: the (x1, x2) marginal."""
    from kakusan.gaussian import Gaussian
    from kakusan.report.figures import density_contour

    if model.dim == 1:
        return _histogram(model, x.reshape(-1), figures / "density.png")
    marginal = model if model.dim == 2 else Gaussian.from_params(model.mean[:2].detach(), model.cov[:2, :2].detach())
    title = "fitted Gaussian" if model.dim == 2 else f"fitted Gaussian: (x1, x2) marginal of {model.dim}-D"

    def log_density(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return marginal.log_prob(torch.from_numpy(points)).numpy()

    return density_contour(log_density, x[:, :2], figures / "density.png", title=title)


def _histogram(model, x: np.ndarray, path: Path) -> Path:
    import matplotlib.pyplot as plt  # Agg already chosen by kakusan.report.figures

    with torch.no_grad():
        mu, sd = float(model.mean[0]), float(model.cov[0, 0]) ** 0.5
        grid = np.linspace(min(x.min(), mu - 4 * sd), max(x.max(), mu + 4 * sd), 400)
        pdf = np.exp(model.log_prob(torch.from_numpy(grid)).numpy())
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    ax.hist(x, bins=min(60, max(10, int(len(x) ** 0.5))), density=True, alpha=0.5, label="data")
    ax.plot(grid, pdf, label=f"N({mu:.3g}, {sd:.3g}²)")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(a: np.ndarray) -> str:
    return np.array2string(a, precision=4, suppress_small=True, max_line_width=100)


def _summary(model, x: np.ndarray, result: dict, run_path: Path, figure: Path) -> None:
    n, d = x.shape[0], model.dim
    print(f"Gaussian fit to {n} samples in {d} dimension{'s' if d > 1 else ''} (maximum likelihood)")
    print(f"  mean log-likelihood: {result['log_likelihood']:.6g} nats per sample")
    with torch.no_grad():
        print(f"  mean: {_fmt(model.mean.numpy())}")
        if d <= 8:
            print("  cov:\n    " + _fmt(model.cov.numpy()).replace("\n", "\n    "))
        else:
            print(f"  cov: {d}x{d}, diagonal {_fmt(model.cov.diagonal().numpy())}")
    print(f"  run directory: {run_path} (figure: {figure.relative_to(run_path)})")

"""``kakusan ising fit``: learn J and h from ±1 or 0/1 data by minimising KL(p0||q).

Moment matching takes the model statistics from enumeration (``exact``), persistent chains (``pcd``) or
persistent replica exchange (``pt``); the MCMC-free solvers (``nmf``, ``tap``, ``sm``, ``plm``, ``mpf``) are
one call each (:mod:`kakusan.commands.ising_inverse`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kakusan.commands import fresh_output
from kakusan.commands.ising_common import EXACT_CHECK_SPINS, INVERSE_METHODS, check_enumerable, parse_ladder
from kakusan.commands.ising_inverse import run_inverse_fit
from kakusan.errors import DataError, KakusanError, check_positive_int


def load_spin_data(path: str):
    """An (M, N) .npy of ±1 or 0/1 values as float64 ±1 spins; anything else is a clear error."""
    import numpy as np
    import torch

    from kakusan.data.transforms import to_spins

    p = Path(path)
    if p.suffix != ".npy":
        raise DataError(f"{p}: data must be an .npy array of shape (M, N) with ±1 or 0/1 values")
    if not p.is_file():
        raise DataError(f"no such file {p}: give an .npy array of shape (M, N) with ±1 or 0/1 values")
    try:
        x = np.load(p, allow_pickle=False)
    except ValueError as e:
        raise DataError(f"cannot read {p} as .npy ({e}): save it with numpy.save") from None
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise DataError(f"{p}: data must have shape (M, N) (rows are samples), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number) and x.dtype != bool:
        raise DataError(f"{p}: data must be numbers (±1 or 0/1), got dtype {x.dtype}")
    values = set(np.unique(x).tolist())
    t = torch.as_tensor(x.astype(np.float64))
    if values <= {-1.0, 1.0}:
        return t
    if values <= {0.0, 1.0}:
        return to_spins(t)
    shown = sorted(values)[:5]
    raise DataError(f"{p}: data must be ±1 or 0/1, found values {shown}: binarise them first")


def run_fit(args: argparse.Namespace) -> int:
    import torch

    from kakusan.boltzmann import load_ising_npz, save_ising_npz
    from kakusan.checkpoint import save_model
    from kakusan.learn import fit_boltzmann
    from kakusan.learn.base import Stats
    from kakusan.report import figures
    from kakusan.report.run_dir import RunDir

    out = fresh_output(args.out, ".npz")
    data = load_spin_data(args.data)
    n = data.shape[1]
    if args.method == "exact":
        check_enumerable(n)
    truth = load_ising_npz(args.truth) if args.truth else None
    if truth is not None and truth.n_visible != n:
        raise KakusanError(f"--truth has N = {truth.n_visible} spins but the data have {n} columns")
    if args.method in INVERSE_METHODS:
        return run_inverse_fit(args, data, truth, out)
    check_positive_int(args.steps, "--steps")
    options = _estimator_options(args)
    run = RunDir.create("ising-fit", args.run_dir, args.runs_root)
    run.write_config({"command": "ising fit", "class": "IsingModel", "n_visible": n, "options": options,
                      **{k: getattr(args, k) for k in ("data", "method", "optimizer", "steps", "lr", "l1", "l2",
                                                       "seed", "truth")}}, argv=args.argv)
    model, result = fit_boltzmann(data, method=args.method, optimizer=args.optimizer, steps=args.steps, lr=args.lr,
                                  l1=args.l1, l2=args.l2, seed=args.seed, run=run, options=options)
    save_ising_npz(out, model)
    save_model(run.checkpoints, model)
    summary = _fit_curves(args.method, model, data, result, run)
    model_stats = _final_model_stats(model, args.method == "exact" or n <= EXACT_CHECK_SPINS, args.seed)
    d = Stats.of(data)
    iu = torch.triu_indices(n, n, 1)
    figures.scatter_plot(d.corr[iu[0], iu[1]], model_stats.corr[iu[0], iu[1]], run.figures / "moments.png",
                         xlabel="data <x_k x_l>", ylabel="model <x_k x_l>", title="moment match")
    if truth is not None:
        tJ, lJ = truth.couplings().detach()[iu[0], iu[1]], model.couplings().detach()[iu[0], iu[1]]
        figures.scatter_plot(tJ, lJ, run.figures / "couplings.png", xlabel="true J", ylabel="learned J")
        summary["relative_error_J"] = float((lJ - tJ).norm() / tJ.norm().clamp_min(1e-300))
    run.write_json("summary.json", summary)
    if "kl" in summary:
        print(f"KL(p0||q) = {summary['kl']:.6g} nats; wrote {out}; run: {run.path}")
    else:
        print(f"moment error (Monte Carlo) = {summary['moment_error']:.3g}; wrote {out}; run: {run.path}")
    return 0


def _estimator_options(args: argparse.Namespace) -> dict:
    """Estimator options from --chains, --sweeps, --sampler, --replicas, --beta-min, --betas (only those given)."""
    given = {k: getattr(args, k) for k in ("chains", "sweeps", "sampler", "replicas", "beta_min", "betas")
             if getattr(args, k) is not None}
    if args.method == "exact" and given:
        raise KakusanError(f"--{next(iter(given)).replace('_', '-')} is an option of --method pcd or pt, not exact")
    if args.method == "pcd" and set(given) & {"replicas", "beta_min", "betas"}:
        raise KakusanError("--replicas, --beta-min and --betas are options of --method pt")
    names = {"chains": "n_chains" if args.method == "pcd" else "n_systems", "sweeps": "n_sweeps",
             "sampler": "sampler", "replicas": "n_replicas", "beta_min": "beta_min", "betas": "betas"}
    options = {names[k]: v for k, v in given.items()}
    if "betas" in options:
        options["betas"] = parse_ladder(argparse.Namespace(betas=options["betas"], beta_min=None, replicas=None)).tolist()
    return options


def _fit_curves(method: str, model, data, result, run) -> dict:
    """The per-step curve (exact KL, or the Monte Carlo moment error) as a figure, and the summary numbers."""
    from kakusan.boltzmann import kl_divergence, mean_log_likelihood
    from kakusan.divergence import empirical_distribution, entropy
    from kakusan.report import figures

    if method == "exact":
        h0 = float(entropy(empirical_distribution(data).probs))  # KL(p0||q) = NLL − H(p0)
        figures.line_plot({"KL(p0||q)": [max(r["nll"] - h0, 1e-16) for r in result.history]},
                          run.figures / "kl.png", ylabel="nats", logy=True, title="exact KL per step")
        return {"kl": kl_divergence(model, data),
                "mean_log_likelihood": -result.history[-1]["nll"] if result.history else None}
    figures.line_plot({"max |data − model| moment": [r["moment_error"] for r in result.history]},
                      run.figures / "moment_error.png", ylabel="moment error", logy=True,
                      title=f"{method}: moment error per step (Monte Carlo)")
    summary = {"moment_error": result.history[-1]["moment_error"] if result.history else None}
    if data.shape[1] <= EXACT_CHECK_SPINS:
        summary.update(kl=kl_divergence(model, data), mean_log_likelihood=mean_log_likelihood(model, data))
    return summary


def _final_model_stats(model, exact: bool, seed: int):
    """The learned model's ⟨x⟩ and ⟨x xᵀ⟩: exact, or from 256 heat-bath chains (200 + 200 sweeps)."""
    from kakusan.learn.base import Stats
    from kakusan.runtime import make_generator

    if exact:
        from kakusan.boltzmann import exact_stats

        s = exact_stats(model)
        return Stats(s.mean, s.corr)
    from kakusan.learn.pcd import PCDEstimator

    return PCDEstimator(n_chains=256, n_sweeps=200, burn_in=200).model_stats(model, make_generator(seed))

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
    from kakusan.data.user_files import check_array, check_value_set, read_npy

    p = Path(path)
    if p.suffix != ".npy":
        raise DataError(f"{p}: data must be an .npy array of shape (M, N) with ±1 or 0/1 values")
    x = check_array(read_npy(p), str(p), dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"{p}: data must have shape (M, N) (rows are samples), got {x.shape}")
    check_value_set(x, (-1.0, 0.0, 1.0), str(p), "±1 or 0/1", "binarise them first")
    if (x == -1).any() and (x == 0).any():
        raise DataError(f"{p}: data mix −1 and 0: use ±1 or 0/1, not both")
    t = torch.as_tensor(x)
    return to_spins(t) if (x == 0).any() else t


def run_fit(args: argparse.Namespace) -> int:
    import torch

    from kakusan.boltzmann import IsingModel, load_ising_npz, save_ising_npz
    from kakusan.checkpoint import save_model
    from kakusan.commands.guard import DivergenceGuard
    from kakusan.learn import STOCHASTIC, fit_boltzmann
    from kakusan.learn.base import Stats
    from kakusan.report import figures
    from kakusan.report.run_dir import RunDir

    out = fresh_output(args.out, ".npz")
    _check_applicable(args)
    data = load_spin_data(args.data)
    n = data.shape[1]
    if args.method == "exact":
        check_enumerable(n)
    truth = load_ising_npz(args.truth) if args.truth else None
    if truth is not None and truth.n_visible != n:
        raise KakusanError(f"--truth has N = {truth.n_visible} spins but the data have {n} columns")
    if args.method in INVERSE_METHODS:
        return run_inverse_fit(args, data, truth, out)
    args.steps = 500 if args.steps is None else args.steps
    check_positive_int(args.steps, "--steps")
    options = _estimator_options(args)
    run = RunDir.create("ising-fit", args.run_dir, args.runs_root)
    run.write_config({"command": "ising fit", "class": "IsingModel", "n_visible": n, "options": options,
                      **{k: getattr(args, k) for k in ("data", "method", "optimizer", "steps", "lr", "l1", "l2",
                                                       "seed", "truth")}}, argv=args.argv)
    model = IsingModel(n)
    lr = args.lr if args.lr is not None else (0.01 if args.method in STOCHASTIC and args.optimizer is None else None)
    guard = DivergenceGuard(model, None if args.optimizer in ("surrogate", "backtracking") or lr is None
                            else f"--lr {lr:g}")
    with guard.naming_lr():
        model, result = fit_boltzmann(data, model, method=args.method, optimizer=args.optimizer, steps=args.steps,
                                      lr=args.lr, l1=args.l1, l2=args.l2, seed=args.seed, run=run, options=options,
                                      callback=guard)
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


def _check_applicable(args: argparse.Namespace) -> None:
    """A one-line error for an option the chosen --method or --optimizer does not use (never silently ignored)."""
    from kakusan.commands.args import refuse_unused

    if args.method != "plm":
        refuse_unused(args, ("asymmetric",), f"to --method {args.method}, only to --method plm")
    if args.method in INVERSE_METHODS:
        refuse_unused(args, ("optimizer", "lr", "steps", "chains", "sweeps", "sampler", "replicas", "beta_min", "betas"),
                      f"to --method {args.method} (one solver call, no optimizer or sampler)")
        return
    optimizer = args.optimizer or ("adam" if args.method in ("pcd", "pt") else "backtracking")
    if optimizer in ("surrogate", "backtracking"):
        refuse_unused(args, ("lr",), f"to --optimizer {optimizer} (its step is 1/L), only to momentum, adam and sgd")
    elif args.l1:
        raise KakusanError(f"--l1 is applied by the proximal step of --optimizer surrogate or backtracking, not by "
                           f"{optimizer}: use one of those, or leave --l1 out")
    if args.betas is not None and (args.replicas is not None or args.beta_min is not None):
        raise KakusanError("--replicas and --beta-min make the default ladder, which --betas replaces: give one or "
                           "the other")


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

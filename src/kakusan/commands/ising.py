"""``kakusan ising exact|sample|fit``: the fully visible Boltzmann machine from the command line.

A model file is an ``.npz`` with ``J`` (N, N, symmetric, zero diagonal) and ``h`` (N,);
E(x) = −½ xᵀJx − hᵀx on x ∈ {−1,+1}^N.

``sample`` draws exactly (enumeration, N ≤ 32) or by MCMC for any N (``gibbs``, ``metropolis``, ``pt`` =
replica exchange), printing and saving a diagnostics table (mean, MCSE, τ_int, ESS, R-hat; swap acceptance
and round trips for ``pt``); ``fit`` takes the model statistics from enumeration or from persistent chains
(``pcd``) or persistent replica exchange (``pt``), or from one MCMC-free solver call.

This module is the parser and ``exact``; the bodies of ``sample`` and ``fit`` live in
:mod:`kakusan.commands.ising_sample`, :mod:`kakusan.commands.ising_fit` and :mod:`kakusan.commands.ising_inverse`,
and what they share in :mod:`kakusan.commands.ising_common`.
"""

from __future__ import annotations

import argparse

from kakusan.files import dumps_strict
from kakusan.commands.args import (
    harden_run_options,
    nonneg_float,
    nonneg_int,
    open_unit,
    positive_float,
    positive_int,
)
from kakusan.commands.ising_common import FIT_METHODS, SAMPLE_METHODS, add_ladder_options, check_enumerable
from kakusan.commands.ising_fit import run_fit
from kakusan.commands.ising_sample import run_sample


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ising", help="Ising / Boltzmann machine: exact answers, sampling, learning")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))

    ex = sub.add_parser("exact", help="log Z, magnetisation and correlations by exact enumeration (N ≤ 32)")
    ex.add_argument("model", help="model .npz with J (N, N) and h (N,)")
    ex.add_argument("--json", action="store_true", help="print one JSON object: log_z, magnetization, correlation")
    harden_run_options(ex, seed_option=False)

    sa = sub.add_parser("sample", help="draw samples of a model: exact, or by MCMC with diagnostics")
    sa.add_argument("model", help="model .npz with J (N, N) and h (N,)")
    sa.add_argument("-n", "--n-samples", type=positive_int, default=1000, help="number of samples")
    sa.add_argument("--out", required=True, help="write the (n, N) array of ±1 here (.npy; must not exist)")
    sa.add_argument("--method", choices=SAMPLE_METHODS, default="exact",
                    help="exact: independent draws by enumeration (N ≤ 32); gibbs (heat bath), metropolis: "
                         "single-site MCMC; pt: replica exchange over heat bath, samples from β = 1")
    sa.add_argument("--chains", type=positive_int, default=None,
                    help="MCMC: independent chains (pt: independent PT systems; default 16)")
    sa.add_argument("--burn-in", type=nonneg_int, default=None,
                    help="MCMC: sweeps discarded first (default 1000; pt: also adapts --adapt)")
    sa.add_argument("--thin", type=positive_int, default=None, help="MCMC: keep every T-th sweep (default 1)")
    add_ladder_options(sa)
    sa.add_argument("--adapt", type=nonneg_int, default=None, metavar="ROUNDS",
                    help="pt: adapt the ladder to equal swap acceptance in ROUNDS rounds during burn-in")
    harden_run_options(sa)

    fi = sub.add_parser("fit", help="learn J and h from ±1 or 0/1 data by minimising KL(p0||q)")
    fi.add_argument("data", help="(M, N) array of ±1 or 0/1 (.npy)")
    fi.add_argument("--out", required=True, help="write the learned model here (.npz; must not exist)")
    fi.add_argument("--method", choices=FIT_METHODS, default="exact",
                    help="moment matching with statistics from exact enumeration (N ≤ 32), pcd (persistent chains) "
                         "or pt (persistent replica exchange); or an MCMC-free solver: nmf (naive mean field), tap, "
                         "sm (Sessak-Monasson), plm (pseudo-likelihood), mpf (minimum probability flow)")
    fi.add_argument("--asymmetric", action="store_true", help="plm: one coupling row per spin, then (J + Jᵀ)/2")
    fi.add_argument("--optimizer", choices=("backtracking", "surrogate", "momentum", "adam", "sgd"), default=None,
                    help="surrogate: η = 1/L with L = N(N+1)/2; backtracking: adaptive L (default for exact); "
                         "adam (default for pcd and pt, lr 0.01)")
    fi.add_argument("--chains", type=positive_int, default=None, help="pcd: persistent chains (256); pt: PT systems (32)")
    fi.add_argument("--sweeps", type=positive_int, default=None, help="pcd, pt: sweeps per optimizer step (2)")
    fi.add_argument("--sampler", choices=("gibbs", "metropolis"), default=None, help="pcd, pt: the kernel (gibbs)")
    fi.add_argument("--replicas", type=positive_int, default=None, help="pt: temperatures, geometric from --beta-min to 1 (8)")
    fi.add_argument("--beta-min", type=open_unit, default=None, help="pt: lowest β of the ladder (0.3)")
    fi.add_argument("--betas", default=None, help="pt: the ladder, comma-separated increasing β ending at 1")
    fi.add_argument("--steps", type=positive_int, default=None,
                    help="optimizer steps of the moment-matching methods (exact, pcd, pt; default 500)")
    fi.add_argument("--lr", type=positive_float, default=None, help="learning rate (momentum, adam, sgd)")
    fi.add_argument("--l1", type=nonneg_float, default=0.0,
                    help="L1 penalty λ Σ|J_kl| (exact with a surrogate optimizer; plm; mpf)")
    fi.add_argument("--l2", type=nonneg_float, default=0.0, help="L2 penalty (l2/2) Σ J_kl² (all but nmf, tap, sm)")
    fi.add_argument("--truth", default=None, help="true model .npz: adds a learned-vs-true couplings figure")
    harden_run_options(fi)
    p.set_defaults(run=run, ising_parser=p)


def run(args: argparse.Namespace) -> int:
    actions = {"exact": run_exact, "sample": run_sample, "fit": run_fit}
    if args.action not in actions:
        args.ising_parser.print_help()
        return 2
    return actions[args.action](args)


def run_exact(args: argparse.Namespace) -> int:
    from kakusan.boltzmann import exact_stats, load_ising_npz
    from kakusan.report.run_dir import RunDir

    model = load_ising_npz(args.model)
    check_enumerable(model.n_visible)
    s = exact_stats(model, energy_var=True)
    result = {"log_z": s.log_z, "magnetization": s.mean.tolist(), "correlation": s.corr.tolist()}
    run = RunDir.create("ising-exact", args.run_dir, args.runs_root)
    run.write_config({"command": "ising exact", "class": "IsingModel", "model": str(args.model),
                      "n_visible": model.n_visible}, argv=args.argv)
    run.write_json("exact.json", {**result, "energy_mean": s.energy_mean, "energy_var": s.energy_var})
    if args.json:
        print(dumps_strict(result))
    else:
        print(f"N = {model.n_visible}   log Z = {s.log_z:.10g}   <E> = {s.energy_mean:.6g}   Var E = {s.energy_var:.6g}")
        print("magnetization:", " ".join(f"{m:+.4f}" for m in s.mean.tolist()))
        print(f"run: {run.path}")
    return 0

"""``kakusan ising exact|sample|fit``: the fully visible Boltzmann machine from the command line.

A model file is an ``.npz`` with ``J`` (N, N, symmetric, zero diagonal) and ``h`` (N,);
E(x) = −½ xᵀJx − hᵀx on x ∈ {−1,+1}^N.

``sample`` draws exactly (enumeration, N ≤ 32) or by MCMC for any N (``gibbs``, ``metropolis``, ``pt`` =
replica exchange), printing and saving a diagnostics table (mean, MCSE, τ_int, ESS, R-hat; swap acceptance
and round trips for ``pt``); ``fit`` takes the model statistics from enumeration or from persistent chains
(``pcd``) or persistent replica exchange (``pt``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kakusan.commands import add_run_options, fresh_output


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ising", help="Ising / Boltzmann machine: exact answers, sampling, learning")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))

    ex = sub.add_parser("exact", help="log Z, magnetisation and correlations by exact enumeration (N ≤ 32)")
    ex.add_argument("model", help="model .npz with J (N, N) and h (N,)")
    ex.add_argument("--json", action="store_true", help="print one JSON object: log_z, magnetization, correlation")
    add_run_options(ex, seed=False)

    sa = sub.add_parser("sample", help="draw samples of a model: exact, or by MCMC with diagnostics")
    sa.add_argument("model", help="model .npz with J (N, N) and h (N,)")
    sa.add_argument("-n", "--n-samples", type=int, default=1000, help="number of samples")
    sa.add_argument("--out", required=True, help="write the (n, N) array of ±1 here (.npy; must not exist)")
    sa.add_argument("--method", choices=SAMPLE_METHODS, default="exact",
                    help="exact: independent draws by enumeration (N ≤ 32); gibbs (heat bath), metropolis: "
                         "single-site MCMC; pt: replica exchange over heat bath, samples from β = 1")
    sa.add_argument("--chains", type=int, default=16, help="independent chains (pt: independent PT systems)")
    sa.add_argument("--burn-in", type=int, default=1000, help="sweeps discarded first (pt: also adapts --adapt)")
    sa.add_argument("--thin", type=int, default=1, help="keep every T-th sweep")
    _add_ladder_options(sa)
    sa.add_argument("--adapt", type=int, default=0, metavar="ROUNDS",
                    help="pt: adapt the ladder to equal swap acceptance in ROUNDS rounds during burn-in")
    add_run_options(sa)

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
    fi.add_argument("--chains", type=int, default=None, help="pcd: persistent chains (256); pt: PT systems (32)")
    fi.add_argument("--sweeps", type=int, default=None, help="pcd, pt: sweeps per optimizer step (2)")
    fi.add_argument("--sampler", choices=("gibbs", "metropolis"), default=None, help="pcd, pt: the kernel (gibbs)")
    fi.add_argument("--replicas", type=int, default=None, help="pt: temperatures, geometric from --beta-min to 1 (8)")
    fi.add_argument("--beta-min", type=float, default=None, help="pt: lowest β of the ladder (0.3)")
    fi.add_argument("--betas", default=None, help="pt: the ladder, comma-separated increasing β ending at 1")
    fi.add_argument("--steps", type=int, default=500)
    fi.add_argument("--lr", type=float, default=None, help="learning rate (momentum, adam, sgd)")
    fi.add_argument("--l1", type=float, default=0.0,
                    help="L1 penalty λ Σ|J_kl| (exact with a surrogate optimizer; plm; mpf)")
    fi.add_argument("--l2", type=float, default=0.0, help="L2 penalty (l2/2) Σ J_kl² (all but nmf, tap, sm)")
    fi.add_argument("--truth", default=None, help="true model .npz: adds a learned-vs-true couplings figure")
    add_run_options(fi)
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
    _check_enumerable(model.n_visible)
    s = exact_stats(model, energy_var=True)
    result = {"log_z": s.log_z, "magnetization": s.mean.tolist(), "correlation": s.corr.tolist()}
    run = RunDir.create("ising-exact", args.run_dir, args.runs_root)
    run.write_config({"command": "ising exact", "class": "IsingModel", "model": str(args.model),
                      "n_visible": model.n_visible}, argv=args.argv)
    run.write_json("exact.json", {**result, "energy_mean": s.energy_mean, "energy_var": s.energy_var})
    if args.json:
        print(json.dumps(result))
    else:
        print(f"N = {model.n_visible}   log Z = {s.log_z:.10g}   <E> = {s.energy_mean:.6g}   Var E = {s.energy_var:.6g}")
        print("magnetization:", " ".join(f"{m:+.4f}" for m in s.mean.tolist()))
        print(f"run: {run.path}")
    return 0


def _check_enumerable(n: int) -> None:
    from kakusan.boltzmann.exact import MAX_SPINS
    from kakusan.errors import KakusanError

    if n > MAX_SPINS:
        raise KakusanError(f"N = {n} spins is too many to enumerate (limit {MAX_SPINS}): use a sampler")


def run_sample(args: argparse.Namespace) -> int:
    from kakusan.boltzmann import load_ising_npz
    from kakusan.errors import KakusanError
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import make_generator

    out = fresh_output(args.out, ".npy")
    if args.n_samples < 1:
        raise KakusanError(f"-n must be a positive number of samples, got {args.n_samples}")
    model = load_ising_npz(args.model)
    if args.method == "exact":
        _check_enumerable(model.n_visible)
    else:
        _check_mcmc_options(args)
    betas = _ladder(args) if args.method == "pt" else None
    run = RunDir.create("ising-sample", args.run_dir, args.runs_root)
    config = {"command": "ising sample", "class": "IsingModel", "model": str(args.model), "method": args.method,
              "n_samples": args.n_samples, "seed": args.seed, "out": str(out)}
    if args.method != "exact":
        config.update(chains=args.chains, burn_in=args.burn_in, thin=args.thin)
    if betas is not None:
        config.update(betas=betas.tolist(), adapt=args.adapt)
    run.write_config(config, argv=args.argv)
    g = make_generator(args.seed)
    if args.method == "exact":
        x = model.sample(args.n_samples, g)
    else:
        x = _sample_mcmc(args, model, betas, run, g)
    _save_spins(out, x)
    run.log_metrics(mean_magnetization=float(x.to(float).mean()), n_samples=args.n_samples)
    print(f"wrote {out} ({args.n_samples} x {model.n_visible} spins); run: {run.path}")
    return 0


SAMPLE_METHODS = ("exact", "gibbs", "metropolis", "pt")
FIT_METHODS = ("exact", "pcd", "pt", "nmf", "tap", "sm", "plm", "mpf")
EXACT_CHECK_SPINS = 20
"""Up to this N, ``ising sample`` adds exact ⟨E⟩ and ⟨m⟩ to its diagnostics and ``ising fit --method pcd|pt``
reports the exact KL (enumeration takes milliseconds)."""


def _add_ladder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--betas", default=None,
                   help="pt: the ladder, comma-separated increasing β ending at 1 (default: geometric, see below)")
    p.add_argument("--replicas", type=int, default=12, help="pt: temperatures of the default geometric ladder")
    p.add_argument("--beta-min", type=float, default=0.2, help="pt: lowest β of the default geometric ladder")


def _ladder(args: argparse.Namespace):
    """The PT ladder from --betas, or geometric from --beta-min to 1 with --replicas temperatures; ends at β = 1."""
    from kakusan.errors import KakusanError
    from kakusan.mcmc.ladders import geometric_ladder
    from kakusan.mcmc.tempering import check_ladder

    if args.betas is None:
        if not 0 < args.beta_min < 1:
            raise KakusanError(f"--beta-min must be in (0, 1), got {args.beta_min}")
        return geometric_ladder(args.beta_min, 1.0, args.replicas)
    try:
        values = [float(v) for v in args.betas.split(",") if v.strip()]
    except ValueError:
        raise KakusanError(f"--betas must be comma-separated numbers, got {args.betas!r}") from None
    betas = check_ladder(values)
    if abs(float(betas[-1]) - 1.0) > 1e-12:
        raise KakusanError(f"--betas must end at 1 (the model's temperature, where samples are taken), "
                           f"got largest β = {float(betas[-1])}")
    betas[-1] = 1.0
    return betas


def _check_mcmc_options(args: argparse.Namespace) -> None:
    from kakusan.errors import KakusanError

    for name, low in (("chains", 1), ("burn_in", 0), ("thin", 1), ("adapt", 0)):
        value = getattr(args, name)
        if value < low:
            raise KakusanError(f"--{name.replace('_', '-')} must be ≥ {low}, got {value}")
    if args.adapt and args.burn_in < 2 * args.adapt:
        raise KakusanError(f"--adapt {args.adapt} needs --burn-in ≥ {2 * args.adapt} (the rounds run during burn-in)")


def _save_spins(out: Path, x) -> None:
    from kakusan.report.run_dir import atomic_save_npy

    atomic_save_npy(out, x.numpy().astype("int8"))


def _sample_mcmc(args: argparse.Namespace, model, betas, run, g):
    """Run the chains (or PT systems), write diagnostics.json and figures, print the table; (n, N) samples."""
    import math

    from kakusan.learn.pcd import kernel_factory
    from kakusan.mcmc import random_spins, run_chain

    n, N, C = args.n_samples, model.n_visible, args.chains
    n_kept = max(math.ceil(n / C), 20)
    sampler = "gibbs" if args.method == "pt" else args.method
    kernel = kernel_factory(sampler)(model)
    tempering = None
    if args.method == "pt":
        trace, tempering = _run_pt(args, kernel, betas, n_kept, g)
    else:
        state = kernel.init(random_spins(C, N, g))
        trace = run_chain(kernel, state, n_kept * args.thin, burn_in=args.burn_in, thin=args.thin, generator=g,
                          observables=("energy", "magnetization", "x"))
        trace = trace.observables
    table = _diagnostics(trace, model)
    report = {"method": args.method, "n_chains": C, "n_kept": n_kept, "burn_in": args.burn_in, "thin": args.thin,
              "observables": table}
    if tempering is not None:
        report["tempering"] = tempering
    run.write_json("diagnostics.json", report)
    _print_table(table, tempering)
    _sample_figures(trace, tempering, run)
    return trace["x"].reshape(-1, N)[:n]


def _run_pt(args: argparse.Namespace, kernel, betas, n_kept: int, g):
    """PT systems: β = 1 observables (n_kept, C, ...), the walk of system 0, and the swap statistics."""
    import torch

    from kakusan.mcmc import random_spins
    from kakusan.mcmc.ladders import adapt_ladder
    from kakusan.mcmc.tempering import ReplicaExchange, run_tempering

    pt = ReplicaExchange(kernel, betas, n_systems=args.chains)
    state = pt.init(random_spins(pt.n_chains, kernel.graph.n_spins, g))
    burn_in = args.burn_in
    if args.adapt:
        per_round = burn_in // (2 * args.adapt)
        state, _ = adapt_ladder(pt, state, rounds=args.adapt, steps=per_round, generator=g)
        burn_in -= per_round * args.adapt
    top = pt.n_replicas - 1
    observables = {"energy": lambda s: s.at(top).energy.clone(),
                   "magnetization": lambda s: s.at(top).x.to(torch.float64).mean(1),
                   "x": lambda s: s.at(top).x.to(torch.int8), "walk": lambda s: s.slot[0].clone()}
    result = run_tempering(pt, state, n_kept * args.thin, burn_in=burn_in, thin=args.thin, generator=g,
                           observables=observables)
    st = result.stats
    tempering = {"betas": st.betas.tolist(), "swap_acceptance": st.acceptance.tolist(),
                 "rejection_sum": st.rejection_sum, "round_trips": st.round_trips,
                 "round_trips_per_10k_sweeps": st.round_trips_per_10k, "n_sweeps": st.n_sweeps}
    return result.trace.observables, tempering


def _diagnostics(trace: dict, model) -> dict:
    """Per observable: mean, MCSE, τ_int, ESS, R-hat (and the exact mean for N ≤ EXACT_CHECK_SPINS)."""
    from kakusan.mcmc import diagnostics

    exact = {}
    if model.n_visible <= EXACT_CHECK_SPINS:
        from kakusan.boltzmann import exact_stats

        s = exact_stats(model)
        exact = {"energy": s.energy_mean, "magnetization": float(s.mean.mean())}
        exact = {k: 0.0 if abs(v) < 1e-12 else v for k, v in exact.items()}  # no −1e−17 for a symmetric model
    table = {}
    for name in ("energy", "magnetization"):
        est = diagnostics.estimate(trace[name])
        row = {"mean": float(est.mean), "mcse": float(est.error), "tau_int": float(est.tau), "ess": float(est.ess),
               "rhat": float(diagnostics.rhat(trace[name]))}
        if name in exact:
            row["exact"] = exact[name]
        table[name] = row
    return table


def _print_table(table: dict, tempering: dict | None) -> None:
    has_exact = any("exact" in row for row in table.values())
    head = f"{'observable':<14}{'mean':>12}{'MCSE':>11}{'tau_int':>9}{'ESS':>10}{'R-hat':>8}"
    print(head + (f"{'exact':>12}" if has_exact else ""))
    for name, r in table.items():
        line = f"{name:<14}{r['mean']:>12.5g}{r['mcse']:>11.2g}{r['tau_int']:>9.3g}{r['ess']:>10.4g}{r['rhat']:>8.4f}"
        print(line + (f"{r['exact']:>12.5g}" if "exact" in r else ""))
    if tempering is not None:
        print("swap acceptance per pair:", " ".join(f"{a:.2f}" for a in tempering["swap_acceptance"]))
        print(f"round trips: {tempering['round_trips']} ({tempering['round_trips_per_10k_sweeps']:.3g} per 10^4 "
              f"sweeps per system; Λ = Σ(1 − A) = {tempering['rejection_sum']:.3g})")


def _sample_figures(trace: dict, tempering: dict | None, run) -> None:
    from kakusan.mcmc import diagnostics
    from kakusan.report import figures

    energy = trace["energy"]
    shown = {f"chain {c}": energy[:, c] for c in range(min(4, energy.shape[1]))}
    figures.line_plot(shown, run.figures / "energy_trace.png", xlabel="kept sweep", ylabel="E(x)",
                      title="energy traces (β = 1)")
    rho = diagnostics.autocorrelation(energy)
    lags = min(len(rho), max(10, int(10 * float(diagnostics.integrated_time(energy)))))
    figures.line_plot({"energy": rho[:lags]}, run.figures / "autocorrelation.png", xlabel="lag (kept sweeps)",
                      ylabel="ρ(t)", title="autocorrelation of E")
    if tempering is None:
        return
    import numpy as np

    betas = np.asarray(tempering["betas"])
    figures.line_plot({"swap acceptance": tempering["swap_acceptance"]}, run.figures / "swap_acceptance.png",
                      x=0.5 * (betas[1:] + betas[:-1]), xlabel="β (pair midpoint)", ylabel="acceptance",
                      title="swap acceptance per pair")
    walk = trace["walk"][: min(2000, len(trace["walk"]))]
    figures.line_plot({f"replica {r}": walk[:, r] for r in range(min(4, walk.shape[1]))},
                      run.figures / "replica_walk.png", xlabel="kept sweep", ylabel="temperature index",
                      title="replica walks (system 0)")


def load_spin_data(path: str):
    """An (M, N) .npy of ±1 or 0/1 values as float64 ±1 spins; anything else is a clear error."""
    import numpy as np
    import torch

    from kakusan.data.transforms import to_spins
    from kakusan.errors import DataError

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
    from kakusan.errors import KakusanError
    from kakusan.learn import fit_boltzmann
    from kakusan.learn.base import Stats
    from kakusan.report import figures
    from kakusan.report.checkpoint import save_model
    from kakusan.report.run_dir import RunDir

    out = fresh_output(args.out, ".npz")
    data = load_spin_data(args.data)
    n = data.shape[1]
    if args.method == "exact":
        _check_enumerable(n)
    truth = load_ising_npz(args.truth) if args.truth else None
    if truth is not None and truth.n_visible != n:
        raise KakusanError(f"--truth has N = {truth.n_visible} spins but the data have {n} columns")
    from kakusan.commands.ising_inverse import INVERSE_METHODS, run_inverse_fit

    if args.method in INVERSE_METHODS:
        return run_inverse_fit(args, data, truth, out)
    if args.steps < 1:
        raise KakusanError(f"--steps must be positive, got {args.steps}")
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
    from kakusan.errors import KakusanError

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
        options["betas"] = _ladder(argparse.Namespace(betas=options["betas"], beta_min=None, replicas=None)).tolist()
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

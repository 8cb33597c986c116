"""``kakusan ising sample``: exact draws by enumeration, or MCMC (gibbs, metropolis, pt) with diagnostics.

MCMC runs print and save a diagnostics table (mean, MCSE, τ_int, ESS, R-hat; the exact means for
N ≤ :data:`~kakusan.commands.ising_common.EXACT_CHECK_SPINS`; swap acceptance and round trips for ``pt``)
and figures of the energy traces, the autocorrelation and, for ``pt``, the swaps and replica walks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kakusan.commands import fresh_output
from kakusan.commands.ising_common import EXACT_CHECK_SPINS, check_enumerable, parse_ladder
from kakusan.errors import KakusanError, check_positive_int


def run_sample(args: argparse.Namespace) -> int:
    from kakusan.boltzmann import load_ising_npz
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import make_generator

    out = fresh_output(args.out, ".npy")
    check_positive_int(args.n_samples, "-n")
    model = load_ising_npz(args.model)
    if args.method == "exact":
        check_enumerable(model.n_visible)
    _check_applicable(args)
    if args.method != "exact":
        _check_mcmc_options(args)
    betas = parse_ladder(args) if args.method == "pt" else None
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


def _check_applicable(args: argparse.Namespace) -> None:
    """Options of the MCMC methods are an error with --method exact, and the ladder's outside --method pt; the
    MCMC defaults are filled in (chains 16, burn-in 1000, thin 1, adapt 0)."""
    from kakusan.commands.args import or_default, refuse_unused

    ladder = ("adapt", "betas", "replicas", "beta_min")
    if args.method == "exact":
        refuse_unused(args, ("chains", "burn_in", "thin", *ladder),
                      "to --method exact (independent draws by enumeration), only to the MCMC methods")
        return
    if args.method != "pt":
        refuse_unused(args, ladder, f"to --method {args.method}, only to --method pt")
    args.chains, args.burn_in = or_default(args.chains, 16), or_default(args.burn_in, 1000)
    args.thin, args.adapt = or_default(args.thin, 1), or_default(args.adapt, 0)


def _check_mcmc_options(args: argparse.Namespace) -> None:
    for name, low in (("chains", 1), ("burn_in", 0), ("thin", 1), ("adapt", 0)):
        check_positive_int(getattr(args, name), f"--{name.replace('_', '-')}", low)
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


# Above this R-hat the chains disagree and the MCSE, which assumes they sample one distribution, is a lower bound on
# the uncertainty. 1.1 (Gelman et al.), not 1.01: at the default 63 kept sweeps R-hat is noisy. On the 12-spin SK
# glass at β = 2 (benchmarks/results_calibration.md, 40 seeds) replica exchange, calibrated, gave R-hat ≤ 1.11 for
# m and ≤ 1.05 for E; single-site Gibbs gave 1.06–1.18 for E (calibrated) and 1.38–1.93 for m (±2 MCSE covering 89 %).
RHAT_LIMIT = 1.1
MCSE_MEANS = ("MCSE: one standard error of the mean, the larger of the τ_int error (Sokal window, c = 5) and the "
              "spread of the chain means; calibrated against exact means across seeds "
              f"(benchmarks/results_calibration.md) where R-hat ≤ {RHAT_LIMIT}")


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
        between = float(diagnostics.between_chain_error(trace[name]))
        rhat = float(diagnostics.rhat(trace[name]))
        row = {"mean": float(est.mean), "mcse": max(float(est.error), between), "mcse_tau": float(est.error),
               "mcse_between": between, "tau_int": float(est.tau), "ess": float(est.ess), "rhat": rhat,
               "mcse_is_lower_bound": not rhat <= RHAT_LIMIT}
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
    print(MCSE_MEANS)
    for name, r in table.items():
        if r["mcse_is_lower_bound"]:
            print(f"warning: R-hat of {name} is {r['rhat']:.3g} > {RHAT_LIMIT}: the chains disagree, so its MCSE is a "
                  "lower bound on the true uncertainty; run longer (-n, --burn-in)"
                  + ("" if tempering is not None else " or use --method pt"))
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

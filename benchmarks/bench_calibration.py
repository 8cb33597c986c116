"""Calibration of every error bar kakusan prints: z-scores against exact answers over many seeds (issue 16).

Each estimator runs on small problems with exact answers, once per seed; :mod:`kakusan.evaluate.calibration`
scores the z-scores (estimate − exact) / reported s.e. (calibrated: ≥ 50 seeds, sd(z) ∈ [0.75, 1.33], ±2 s.e.
coverage ≥ 90 %). Cases:

* **MCMC means** (``diagnostics.estimate``: MCSE from τ_int with Sokal's window; ``diagnostics.blocking``) of
  E/N and of the mean spin m on 12-spin SK glasses with random fields (heat bath, 4 chains, numba), against
  :func:`kakusan.boltzmann.exact.exact_stats`.
* **log Z along a replica-exchange ladder** by BAR and by thermodynamic integration
  (:func:`kakusan.mcmc.ladders.ladder_log_z`), against :func:`kakusan.boltzmann.exact.log_z`.
* **Replica exchange** (``--only pt``): the ⟨E⟩ and ⟨m⟩ ± MCSE that ``kakusan ising sample --method pt`` prints, run
  by the command's own functions at its defaults with ``--seed 0 … 99`` on a 12-spin SK glass at β = 2 (no fields),
  the same for ``--method gibbs`` (the contrast: single-site chains keep the sign of m), and the per-temperature
  ⟨E⟩ ± MCSE of the tour's PT run (coldest β and all temperatures pooled). About 35 CPU-seconds. PCD/PT training
  (``rbm train``, ``ising fit``) and :mod:`kakusan.mcmc.persistent` report no error bar, so there is none to score.
* **AIS** forward (stochastic lower bound in expectation of Z) and reverse from exact model samples, at the
  defaults of ``kakusan rbm evaluate`` (100 runs, 14,500 βs), on MNIST RBMs with exact log Z: the 784-18 CD-1
  RBM of issue 16 (lr 0.2, 3 epochs, seed 7; log Z 213.2024), a 784-16 CD-1 RBM at lr 0.25 and a 784-17 PCD-1
  RBM at lr 0.2 (forward only; ``--ais-cases``). All runs of a
  case are annealed as one batch and split into groups of 100 consecutive runs — one group is exactly one
  ``rbm evaluate`` call with its own seed (runs are i.i.d.), at a third less CPU. Each group is scored with the
  delta-method s.e. and with the tail diagnostic (:mod:`kakusan.evaluate.tails`); the raw log weights are kept
  in ``--raw`` so the table can be recomputed without re-annealing.

* **The forward/reverse AIS interval** (``--only sandwich``): [forward log Ẑ − 2 s.e., reverse log Ẑ + 2 s.e.]
  (``rbm.ais.sandwich``, printed by ``rbm evaluate``), pairing group g of the forward runs with group g of the
  reverse runs of a case; its coverage of the exact log Z, how often each end misses, and its mean width.
* **The deep-model bounds** (``--only deep``), each error bar the s.e. across the n test points of one call, so
  every seed draws a fresh test set from the data law (and fresh Monte Carlo draws) and the exact answer is the
  population value. The IWAE NLL (``vae.bounds.estimate_nll``) on pPCA with the mean-field encoder
  (:func:`~kakusan.evaluate.calibration.ppca_vae`) and on VAEs with 8 binary latents
  (:func:`~kakusan.evaluate.calibration.binary_vae`), at k = 5 … 5000: against the exact NLL (an upper bound
  in expectation) and about E[NLL_k] from an independent reference run (the noise alone). The stratified-t
  VLB (``diffusion.vlb.vlb_estimate``: L_0 and L_T for every example, 100 strata of t = 2 … 1000) on Gaussian
  data (E[VLB] in closed form, :func:`~kakusan.evaluate.calibration.gaussian_vlb`) and on a 3-component mixture
  in D = 16 (E[VLB] from ``vlb_exact`` on 10,000 examples). The Hutchinson PF-ODE NLL
  (``diffusion.ode.ode_nll``) on that mixture with its exact denoiser, against −E log q₀ (10⁶ draws). One fixed test set per family shows what the ± means
  when only the Monte Carlo draws vary. About 7 CPU-minutes.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_calibration.py                # everything
    .venv/bin/python benchmarks/bench_calibration.py --only mcmc ladder --seeds 20          # quick
    .venv/bin/python benchmarks/bench_calibration.py --only pt                              # replica exchange
    .venv/bin/python benchmarks/bench_calibration.py --only ais --ais-groups 60             # ~40 CPU-min per RBM
    .venv/bin/python benchmarks/bench_calibration.py --only deep                            # IWAE, VLB, PF-ODE
    .venv/bin/python benchmarks/bench_calibration.py --only vlb                             # the VLB rows alone
    .venv/bin/python benchmarks/bench_calibration.py --only vlb --vlb-exact-steps 10 --vlb-strata 50   # as on MNIST
    .venv/bin/python benchmarks/bench_calibration.py --only ode --ode-probe gaussian        # PF-ODE, Gaussian probe
    .venv/bin/python benchmarks/bench_calibration.py --only fd                              # FD's s.e.
    .venv/bin/python benchmarks/bench_calibration.py --only sandwich --ais-groups 50 \
        --ais-cases "784-24 CD-1 lr 0.2, 3 epochs, seed 7"                                  # the AIS interval

* **The Fréchet distance** (``--only fd``): the FD ± of sample quality (``fd_with_error``) over fresh draws of
  500 "samples" (training images, and noisy ones) against the fixed MNIST test set, about E[FD̂₅₀₀] from 1,000
  more draws; the row bootstrap it replaced beside it. About 7 CPU-minutes. ``--fd-data fashion-mnist`` runs the
  same rows in the Fashion-MNIST metric net's features (``--fd-data mnist fashion-mnist``: both).

Prints the table (the rows of ``benchmarks/results_calibration.md``), then every AIS group that missed by more
than 2.5 s.e. or was flagged by the tail diagnostic; ``--json`` also writes the rows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kakusan.evaluate import calibration  # noqa: E402
from kakusan.evaluate.calibration import (Calibration, calibrate, from_estimates, markdown_table,  # noqa: E402
                                          stream_seed)

HERE = Path(__file__).resolve().parent
F64 = torch.float64


# ---------------------------------------------------------------- MCMC means against enumeration


def mcmc_cases(seeds: int) -> list[Calibration]:
    from kakusan.boltzmann import exact, instances
    from kakusan.mcmc import HeatBath, diagnostics, random_spins, run_chain

    out = []
    for beta, steps in ((1.0, 2000), (1.5, 4000)):
        model = instances.sherrington_kirkpatrick(12, beta=beta, field_std=0.3 * beta, seed=3)
        st = exact.exact_stats(model, energy_var=True) if "energy_var" in exact.exact_stats.__code__.co_varnames \
            else exact.exact_stats(model)
        truth = {"E/N": st.energy_mean / 12, "m": float(st.mean.mean())}
        rows: dict[str, list[tuple[float, float]]] = {}
        t0 = time.process_time()
        for seed in range(seeds):
            kernel = HeatBath(model)
            state = kernel.init(random_spins(4, 12, generator=seed))
            trace = run_chain(kernel, state, steps, burn_in=200, generator=10_000 + seed,
                              observables=("energy", "magnetization"))
            for name, x in (("E/N", trace["energy"] / 12), ("m", trace["magnetization"])):
                est = diagnostics.estimate(x)
                rows.setdefault(f"τ_int|{name}", []).append((float(est.mean), float(est.error)))
                blk = diagnostics.blocking(x)
                rows.setdefault(f"blocking|{name}", []).append((float(blk.mean), float(blk.error)))
        cpu = time.process_time() - t0
        for key, vals in rows.items():
            how, name = key.split("|")
            v, s = zip(*vals)
            label = "MCSE from τ_int (Sokal window, c = 5)" if how == "τ_int" else "blocking (plateau level)"
            out.append(from_estimates(v, s, truth[name], estimator=f"MCMC mean ⟨{name}⟩, {label}",
                                      case=f"SK N = 12, β = {beta}, fields 0.3β; heat bath, 4 chains × {steps} "
                                           "sweeps after 200",
                                      cpu_seconds=cpu / len(rows)))
    return out


# ---------------------------------------------------------------- log Z along a ladder


def ladder_cases(seeds: int) -> list[Calibration]:
    from kakusan.boltzmann import exact, instances
    from kakusan.mcmc import HeatBath, random_spins
    from kakusan.mcmc.ladders import geometric_ladder, ladder_log_z
    from kakusan.mcmc.tempering import ReplicaExchange, run_tempering

    out = []
    for beta_max, steps in ((2.0, 1000), (3.0, 2000)):
        model = instances.sherrington_kirkpatrick(12, field_std=0.3, seed=0)
        betas = torch.cat([torch.zeros(1, dtype=F64), geometric_ladder(0.1, beta_max, 9)])
        truth = exact.log_z(model, beta=beta_max)
        vals: dict[str, list[tuple[float, float]]] = {"bar": [], "ti": []}
        t0 = time.process_time()
        for seed in range(seeds):
            pt = ReplicaExchange(HeatBath(model), betas, n_systems=4)
            state = pt.init(random_spins(pt.n_chains, 12, generator=seed))
            trace = run_tempering(pt, state, steps, burn_in=200, generator=20_000 + seed)
            for method in vals:
                est = ladder_log_z(betas, trace.energy, log_z0=12 * math.log(2), method=method)
                vals[method].append((float(est.log_z[-1]), float(est.error[-1])))
        cpu = time.process_time() - t0
        for method, v in vals.items():
            label = "BAR" if method == "bar" else "TI (Euler–Maclaurin trapezoid)"
            out.append(from_estimates([a for a, _ in v], [b for _, b in v], truth,
                                      estimator=f"log Z along the ladder, {label}",
                                      case=f"SK N = 12, fields 0.3, 10 β from 0 to {beta_max}; 4 systems × {steps} "
                                           "steps after 200",
                                      cpu_seconds=cpu / 2))
    return out


# ---------------------------------------------------------------- replica exchange (PT) against enumeration


PT_VARIANTS = [  # (N, β, options of ising_sample_run, label): `ising sample --method pt` away from its defaults
    (12, 2.0, {"adapt": 8}, "`--adapt 8`, otherwise the defaults"),
    (20, 2.0, {}, "the defaults (63 kept sweeps)"),
    (20, 3.0, {}, "the defaults (63 kept sweeps)"),
    (20, 3.0, {"n_samples": 10_000}, "`-n 10000` (625 kept sweeps)"),
    (20, 3.0, {"thin": 5}, "`--thin 5` (63 kept sweeps of 315)"),
]
PT_GLASS = {"n": 12, "beta": 2.0, "seed": 1}  # the tour's SK instance, no fields (⟨m⟩ = 0 by symmetry), at β = 2
PT_TOUR = {"n": 12, "beta": 2.5, "seed": 1, "replicas": 8, "systems": 8, "steps": 600, "burn_in": 100}  # tour, tiny


def ising_sample_run(model, method: str, seed: int, n_samples: int = 1000, chains: int = 16, burn_in: int = 1000,
                     adapt: int = 0, thin: int = 1):
    """The traces ``kakusan ising sample MODEL --method M --seed S`` records at its defaults (16 chains or PT systems,
    burn-in 1000, thin 1, ⌈n/16⌉ = 63 kept sweeps; pt: 12 β geometric from 0.2 to 1, heat bath, samples at β = 1),
    run by the command's own functions: {"energy", "magnetization", …} of shape (kept sweeps, chains)."""
    from types import SimpleNamespace

    from kakusan.commands.ising_sample import _run_pt
    from kakusan.learn.pcd import kernel_factory
    from kakusan.mcmc import random_spins, run_chain
    from kakusan.mcmc.ladders import geometric_ladder
    from kakusan.runtime import make_generator

    g, n_kept = make_generator(seed), max(math.ceil(n_samples / chains), 20)
    kernel = kernel_factory("gibbs")(model)
    if method == "pt":
        args = SimpleNamespace(chains=chains, burn_in=burn_in, thin=thin, adapt=adapt)
        return _run_pt(args, kernel, geometric_ladder(0.2, 1.0, 12), n_kept, g)[0]
    state = kernel.init(random_spins(chains, model.n_visible, g))
    return run_chain(kernel, state, n_kept * thin, burn_in=burn_in, thin=thin, generator=g,
                     observables=("energy", "magnetization")).observables


def pt_cases(seeds: int) -> list[Calibration]:
    """The MCSE that ``kakusan ising sample --method pt`` prints (τ_int over the PT systems' β = 1 traces), the same
    for single-site ``--method gibbs`` (the contrast: there PT matters), and the per-temperature ⟨E⟩ ± MCSE of a PT
    run (the tour's ``replica exchange ⟨E⟩ ± MCSE`` at its coldest β, and every temperature of its ladder)."""
    from kakusan.boltzmann import exact, instances
    from kakusan.commands.ising_sample import _diagnostics
    from kakusan.mcmc import HeatBath, diagnostics, random_spins
    from kakusan.mcmc.ladders import geometric_ladder
    from kakusan.mcmc.tempering import ReplicaExchange, run_tempering

    out = []
    model = instances.sherrington_kirkpatrick(PT_GLASS["n"], beta=PT_GLASS["beta"], seed=PT_GLASS["seed"])
    case = (f"SK N = {PT_GLASS['n']}, β = {PT_GLASS['beta']:g} (seed {PT_GLASS['seed']}, no fields); "
            "`kakusan ising sample --method {m} --seed S` defaults: {what}")
    what = {"pt": "16 PT systems × 12 β (0.2 → 1 geometric), 63 kept sweeps after 1000",
            "gibbs": "16 heat-bath chains, 63 kept sweeps after 1000"}
    runs = [(model, method, case.format(m=method, what=what[method]), {}) for method in ("pt", "gibbs")]
    for n, beta, extra, label in PT_VARIANTS:  # away from the defaults: larger glasses, colder, adapted, longer
        glass = instances.sherrington_kirkpatrick(n, beta=beta, seed=PT_GLASS["seed"])
        runs.append((glass, "pt", f"SK N = {n}, β = {beta:g} (seed {PT_GLASS['seed']}, no fields); {label}", extra))
    for glass, method, label, extra in runs:
        rows: dict[str, list[tuple]] = {"energy": [], "magnetization": []}
        t0 = time.process_time()
        for seed in range(seeds):
            trace = ising_sample_run(glass, method, seed, **extra)
            table = _diagnostics(trace, glass)  # exactly what the command prints and saves
            for name, row in table.items():
                rows[name].append((row["mean"], row["mcse"], row["mcse_tau"], row["exact"], row["rhat"]))
        cpu = time.process_time() - t0
        for name, vals in rows.items():
            v, s, s_tau, x, rh = (np.array(c) for c in zip(*vals))
            symbol = {"energy": "E", "magnetization": "m"}[name]
            for err, how in ((s, "the larger of τ_int and chain-mean spread (what it prints)"),
                             (s_tau, "τ_int alone, Sokal window (what it printed before)")):
                cal = from_estimates(v, err, float(x[0]), estimator=f"`ising sample --method {method}`: ⟨{symbol}⟩ "
                                                                    f"± MCSE, {how}", case=label, cpu_seconds=cpu / 2)
                cal.extra.update(rhat_mean=float(rh.mean()), rhat_over_1_1=int((rh > 1.1).sum()))
                out.append(cal)
    # the tour's PT run: per-temperature ⟨E⟩ ± MCSE from one diagnostics.estimate over (sweeps, systems, temperatures)
    t = PT_TOUR
    unit = instances.sherrington_kirkpatrick(t["n"], beta=1.0, seed=t["seed"])
    betas = geometric_ladder(0.1, t["beta"], t["replicas"])
    truth = np.array([exact.exact_stats(unit, beta=float(b)).energy_mean for b in betas])
    values, errors = [], []
    t0 = time.process_time()
    for seed in range(seeds):
        pt = ReplicaExchange(HeatBath(unit), betas, n_systems=t["systems"])
        state = pt.init(random_spins(pt.n_chains, t["n"], generator=stream_seed(seed, 40)))
        run = run_tempering(pt, state, t["steps"], burn_in=t["burn_in"], generator=stream_seed(seed, 41),
                            observables=("energy",))
        est = diagnostics.estimate(run.energy)  # (R,) means and MCSEs
        values.append(est.mean.numpy())
        errors.append(est.error.numpy())
    cpu = time.process_time() - t0
    values, errors = np.array(values), np.array(errors)
    tour = (f"SK N = {t['n']} (seed {t['seed']}), the tour's tiny PT run: {t['systems']} systems × {t['replicas']} β "
            f"(0.1 → {t['beta']:g} geometric), {t['steps']} sweeps after {t['burn_in']}")
    label = "PT per-temperature ⟨E⟩ ± MCSE (`diagnostics.estimate` of the (sweeps, systems, β) trace)"
    coldest = from_estimates(values[:, -1], errors[:, -1], truth[-1], estimator=label + f", coldest β = {t['beta']:g}",
                             case=tour, cpu_seconds=cpu)
    per_t = [from_estimates(values[:, r], errors[:, r], truth[r], estimator="", case="") for r in range(len(betas))]
    pooled = from_estimates((values - truth).reshape(-1), errors.reshape(-1), 0.0,  # each about its own exact ⟨E⟩
                            estimator=label + f", all {len(betas)} β pooled (z correlated within a seed)", case=tour,
                            cpu_seconds=cpu)
    pooled.extra.update(z_sd_per_beta=[round(c.z_sd, 2) for c in per_t],
                        coverage_per_beta=[round(c.coverage(), 2) for c in per_t])
    return out + [coldest, pooled]


# ---------------------------------------------------------------- AIS on MNIST RBMs


AIS_CASES = {  # name: (hidden, lr, epochs, seed[, method]) of an RBM trained on all of MNIST (stochastic binarisation)
    "784-18 CD-1 lr 0.2, 3 epochs (issue 16)": (18, 0.2, 3, 7),
    "784-16 CD-1 lr 0.25, 3 epochs": (16, 0.25, 3, 7),
    "784-17 PCD-1 lr 0.2, 3 epochs, seed 7": (17, 0.2, 3, 7, "pcd"),
    "784-24 CD-1 lr 0.2, 3 epochs, seed 7": (24, 0.2, 3, 7),
}
AIS_DIRECTIONS = {  # cases annealed in other directions than forward and reverse (exact starts)
    "784-17 PCD-1 lr 0.2, 3 epochs, seed 7": ("forward",),
    # beyond EXACT_START_LIMIT hidden units `rbm evaluate` starts reverse AIS from the forward runs' last states
    # (reverse-annealed; from Gibbs chains begun at test rows before, reverse-gibbs); 2^24 hidden states still give
    # log Z and exact samples
    "784-24 CD-1 lr 0.2, 3 epochs, seed 7": ("forward", "reverse", "reverse-gibbs", "reverse-annealed"),
}
GIBBS_START_SWEEPS = 1000  # `rbm evaluate --reverse-steps` default


def trained_rbm(n_hidden: int, lr: float, epochs: int, seed: int, method: str = "cd"):
    """The model ``kakusan rbm train --data mnist --method M --hidden H --lr LR --epochs E --seed S`` writes
    (batch 100, momentum 0.5, weight decay 1e-4; PCD: 100 persistent chains, one sweep per update)."""
    from kakusan.data.recipes import DataSpec, prepare
    from kakusan.rbm import BernoulliRBM
    from kakusan.rbm.fit import RBMTrainConfig, fit_rbm

    data = prepare(DataSpec("mnist", "bernoulli", "stochastic", 0))
    model = BernoulliRBM(784, n_hidden, seed=seed).init_from_data(data.train)
    fit_rbm(model, data.train, RBMTrainConfig(method=method, epochs=epochs, lr=lr, seed=seed, eval_every=-1,
                                              progress=False))
    return model, data


def ais_directions(case: str, only: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The directions annealed for ``case``: ``only`` if given (``--ais-directions``), else :data:`AIS_DIRECTIONS`'
    entry, else both."""
    return tuple(only) if only else AIS_DIRECTIONS.get(case, ("forward", "reverse"))


def ais_cache(case: str, raw: Path, betas: int = 14_500) -> Path:
    """The cache file of ``case``'s log weights at ``betas`` inverse temperatures in ``raw``."""
    settings = AIS_CASES[case]
    method = settings[4] if len(settings) > 4 else "cd"
    return raw / (case.split(" ")[0] + ("" if method == "cd" else f"-{method}") + f"-{settings[1]}"
                  + ("" if betas == 14_500 else f"-b{betas}") + ".pt")


def ais_raw(case: str, groups: int, raw: Path, only: tuple[str, ...] | None = None, betas: int = 14_500) -> dict:
    """Forward and reverse (exact starts) log weights of groups × 100 runs at ``betas`` inverse temperatures
    (:func:`kakusan.rbm.ais.scaled_betas`, as ``rbm evaluate --betas``; the directions of :func:`ais_directions`);
    cached in ``raw``."""
    from kakusan.rbm import exact
    from kakusan.rbm.ais import ais, reverse_ais, scaled_betas

    settings = AIS_CASES[case]
    directions = ais_directions(case, only)
    path = ais_cache(case, raw, betas)
    ladder = scaled_betas(betas)
    out: dict = torch.load(path) if path.exists() else {}
    if all(len(out.get(d, ())) >= groups * 100 for d in directions):
        return out
    model, data = trained_rbm(*settings)
    truth = exact.log_z(model)
    if out and abs(out["exact"] - truth) > 1e-6:
        raise SystemExit(f"{path}: cached for log Z {out['exact']}, the retrained RBM has {truth}: remove the cache")
    out["exact"] = truth
    # a cache with fewer runs is extended by a batch of the missing runs with seeds of their own (runs are i.i.d.)
    for direction in directions:
        have = len(out.get(direction, ()))
        n = groups * 100 - have
        if n <= 0:
            continue
        t0 = time.process_time()
        if direction == "forward":
            res = ais(model, data.train, n_runs=n, betas=ladder, generator=1001 + have)
        elif direction == "reverse":
            res = reverse_ais(model, exact.sample(model, n, generator=2002 + have), data.train, betas=ladder,
                              generator=3003 + have)
        elif direction == "reverse-annealed":  # as `rbm evaluate` starts it above EXACT_START_LIMIT hidden units:
            # the last states of fresh forward runs, then GIBBS_START_SWEEPS sweeps at β = 1, one chain per run
            g = torch.Generator().manual_seed(6006 + have)
            fwd = ais(model, data.train, n_runs=n, betas=ladder, generator=g)
            v0 = model.sample(n, g, n_steps=GIBBS_START_SWEEPS, v0=fwd.states)
            res = reverse_ais(model, v0, data.train, betas=ladder, generator=g)
            out["forward-annealed"] = fwd.log_w if not have else torch.cat([out["forward-annealed"], fwd.log_w])
        else:  # reverse-gibbs, as `rbm evaluate` started it above EXACT_START_LIMIT hidden units until 2026-12-06
            g = torch.Generator().manual_seed(4004 + have)
            start = data.test[torch.randint(0, len(data.test), (n,), generator=g)]
            v0 = model.sample(n, g, n_steps=GIBBS_START_SWEEPS, v0=start)
            res = reverse_ais(model, v0, data.train, betas=ladder, generator=5005 + have)
        out["log_z_base"] = res.log_z_base  # the same base for both directions
        out[direction] = res.log_w if not have else torch.cat([out[direction], res.log_w])
        out[f"cpu_{direction}"] = out.get(f"cpu_{direction}", 0.0) + time.process_time() - t0
    raw.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return out


def ais_cases(groups: int, raw: Path, names: list[str], only: tuple[str, ...] | None = None,
              runs: int = 100, betas: int = 14_500) -> tuple[list[Calibration], list[dict]]:
    """Calibration rows of ``groups`` independent estimates of ``runs`` runs each (what `rbm evaluate --runs`
    makes), cut from the cached runs of each case (annealing the missing ones), and the misses to list."""
    from kakusan.rbm.ais import ais_from_weights

    out, misses = [], []
    for case in names:
        r = ais_raw(case, -(-groups * runs // 100), raw, only, betas)
        for direction in ais_directions(case, only):
            lw = r[direction][: groups * runs].reshape(groups, runs)
            results = [ais_from_weights(w, r["log_z_base"], direction, betas) for w in lw]
            cpu = r[f"cpu_{direction}"] * groups * runs / len(r[direction])
            starts = {"reverse": ", exact starts",
                      "reverse-gibbs": f", starts from {GIBBS_START_SWEEPS} Gibbs sweeps from test rows",
                      "reverse-annealed": f", starts from forward runs' last states + {GIBBS_START_SWEEPS} Gibbs sweeps"}
            cal = from_estimates([a.log_z for a in results], [a.log_z_stderr for a in results], r["exact"],
                                 estimator=f"AIS {direction.split('-')[0]}, {runs} runs, {betas:,} β, delta-method s.e.",
                                 case=f"MNIST {case}, log Z {r['exact']:.4f}" + starts.get(direction, ""),
                                 # from Gibbs starts reverse AIS is an upper bound only if the chains have mixed
                                 bound={"forward": "lower", "reverse": "upper"}.get(direction), cpu_seconds=cpu)
            flagged = [a.tail.warning() is not None for a in results]
            for g, (z, f, a) in enumerate(zip(cal.z, flagged, results)):
                if abs(z) > 2.5 or f:
                    misses.append({"case": case, "direction": direction, "group": g, "z": float(z),
                                   "khat": a.tail.khat, "max_share": a.tail.max_share, "ess": a.ess, "flagged": f})
            big = np.abs(cal.z) > 3
            cal.extra.update(flagged=int(np.sum(flagged)), misses_3se=int(big.sum()),
                             misses_3se_flagged=int(np.sum(big & np.array(flagged))))
            out.append(cal)
    return out, misses


def ais_pooled(raw: Path, names: list[str], only: tuple[str, ...] | None = None,
               sizes: tuple[int, ...] = (100, 500, 1000, 2500, 5000), betas: int = 14_500) -> list[str]:
    """Markdown lines: for each cached case and direction, the mean error and z of estimates from more runs each
    (the cached runs split into groups of ``size``), and the pooled Pareto k̂ — whether more runs would fix a bias."""
    from kakusan.evaluate.tails import weight_tail
    from kakusan.rbm.ais import ais_from_weights

    lines = ["| case | direction | pooled k̂ | " + " | ".join(f"{n} runs: groups, mean error, mean z" for n in sizes) + " |",
             "|---|---|---|" + "---|" * len(sizes)]
    for case in names:
        path = ais_cache(case, raw, betas)
        if not path.exists():
            continue
        r = torch.load(path)
        for direction in ais_directions(case, only):
            if direction not in r:
                continue
            lw, cells = r[direction], []
            for n in sizes:
                est = [ais_from_weights(w, r["log_z_base"], direction.split("-")[0], betas)
                       for w in lw[: len(lw) // n * n].reshape(-1, n)]
                err = np.array([a.log_z - r["exact"] for a in est])
                z = err / np.array([a.log_z_stderr for a in est])
                cells.append(f"{len(est)}, {err.mean():+.3f}, {z.mean():+.2f}" if est else "—")
            lines.append(f"| {case} | {direction} | {weight_tail(lw).khat:.2f} | " + " | ".join(cells) + " |")
    return lines


SANDWICH_PAIRS = {"reverse": ("forward", "reverse", "exact starts"),
                  "reverse-annealed": ("forward-annealed", "reverse-annealed",
                                       f"the forward runs' last states + {GIBBS_START_SWEEPS} Gibbs sweeps")}


def ais_sandwich(groups: int, raw: Path, names: list[str], k: float = 2.0, runs: int = 100,
                 betas: int = 14_500) -> list[str]:
    """Markdown lines: how often the interval [forward log Ẑ − k·se, reverse log Ẑ + k·se] (``rbm.ais.sandwich``,
    what ``rbm evaluate`` prints) holds the exact log Z, over ``groups`` pairs of ``runs``-run estimates per case: group
    g of the forward runs with group g of the reverse runs (independent draws for exact starts; for annealed
    starts the reverse runs start from group g's own forward runs, as in one ``rbm evaluate`` call)."""
    from kakusan.rbm.ais import AISResult, ais_from_weights, sandwich

    lines = ["| case | reverse starts | pairs | coverage | low end above log Z | high end below log Z | "
             "inconsistent (low > high) | mean width (nats) | mean low / high − log Z | verdict | CPU-s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in names:
        for reverse, (fwd_key, rev_key, starts) in SANDWICH_PAIRS.items():
            if reverse == "reverse-annealed" and "reverse-annealed" not in ais_directions(case):
                continue
            r = ais_raw(case, -(-groups * runs // 100), raw,
                        ("forward", "reverse") if reverse == "reverse" else (reverse,), betas)
            est: dict[str, list[AISResult]] = {
                key: [ais_from_weights(w, r["log_z_base"], key.split("-")[0], betas)
                      for w in r[key][: groups * runs].reshape(groups, runs)] for key in (fwd_key, rev_key)}
            ivs = [sandwich(f, b, k) for f, b in zip(est[fwd_key], est[rev_key])]
            low = np.array([iv.low for iv in ivs]) - r["exact"]
            high = np.array([iv.high for iv in ivs]) - r["exact"]
            cover = float(np.mean((low <= 0) & (high >= 0)))
            # (the annealed pair's forward runs are timed with its reverse ones)
            cpu = sum(r[f"cpu_{d}"] * groups * runs / len(r[d]) for d in (fwd_key, rev_key) if f"cpu_{d}" in r)
            where = ", ".join(([] if runs == 100 else [f"{runs} runs"]) + ([] if betas == 14_500 else [f"{betas:,} β"]))
            lines.append(f"| MNIST {case}, log Z {r['exact']:.4f}{', ' + where if where else ''} | "
                         f"{starts} | {groups} | {cover:.0%} | "
                         f"{int((low > 0).sum())} | {int((high < 0).sum())} | "
                         f"{int(sum(not iv.consistent for iv in ivs))} | {float(np.mean(high - low)):.3f} | "
                         f"{low.mean():+.3f} / {high.mean():+.3f} | "
                         f"{'calibrated' if cover >= 0.9 and groups >= 50 else 'low coverage'} | {cpu:.0f} |")
    return lines


# ---------------------------------------------------------------- the deep-model bounds: IWAE, VLB, PF-ODE


def _fresh(sample, estimate, case: int):
    """seed -> the estimate on a fresh test set with fresh Monte Carlo draws (streams 10·case and 10·case + 1, so
    that different cases draw independently)."""
    return lambda seed: estimate(sample(stream_seed(seed, 10 * case)), stream_seed(seed, 10 * case + 1))


def _fixed(x, estimate, case: int):
    """seed -> the estimate on the fixed test set x with fresh Monte Carlo draws."""
    return lambda seed: estimate(x, stream_seed(seed, 10 * case + 2))


IWAE_CASES = {  # name: (builder, [(k, n test points)], fixed-test-set (k, n) or None)
    "pPCA D = 16, L = 4, ρ = 0.5, σ = 0.5; mean-field encoder (exact mean, variances 1/P_jj)":
        (lambda: calibration.ppca_vae(), [(5, 100), (50, 100), (500, 100), (5000, 100), (50, 1000), (500, 1000)],
         (500, 100)),
    "binary VAE D = 10, L = 8 (256 states), decoder × 3, encoder logits off by N(0, 1)":
        (lambda: calibration.binary_vae(encoder_offset=1.0), [(5, 100), (50, 100), (500, 100), (5000, 100)], None),
    "binary VAE D = 10, L = 8, decoder × 3, encoder logits off by N(0, 2²) (a poor q)":
        (lambda: calibration.binary_vae(encoder_offset=2.0), [(5000, 100)], None),
}


def iwae_cases(seeds: int, n_ref: int) -> list[Calibration]:
    from kakusan.vae.bounds import estimate_nll

    out = []
    for case, (name, (build, settings, fixed)) in enumerate(IWAE_CASES.items()):
        vae, sample, exact = build()
        gaps: dict[int, tuple[float, float, float]] = {}
        for k, n in settings:
            if k not in gaps:
                t0 = time.process_time()
                gaps[k] = (*calibration.iwae_gap(vae, sample, k, n_ref), time.process_time() - t0)
            gap, gap_se, gap_cpu = gaps[k]
            cal = calibrate(_fresh(lambda seed, n=n: sample(n, seed),
                                   lambda x, g, k=k: estimate_nll(vae, x, k, generator=g), case), exact, range(seeds),
                            estimator=f"IWAE NLL (`estimate_nll`), k = {k}, s.e. across {n} test points",
                            case=f"{name}; fresh test sets; exact NLL {exact:.4f}", bound="upper",
                            note=f"E[NLL_k] − exact = {gap:.4f} ± {gap_se:.4f} ({n_ref} reference examples, "
                                 f"{gap_cpu:.0f} CPU-s)")
            cal.extra.update(gap=gap, gap_stderr=gap_se, gap_cpu_seconds=gap_cpu)
            out.append(cal)
            if n == 100:
                out.append(cal.about(exact + gap, f"{name}; about E[NLL_k] = exact + {gap:.4f} ± {gap_se:.4f}"))
        if fixed:
            k, n = fixed
            x = sample(n, stream_seed(0, 9))
            truth = float(-vae.exact_log_likelihood(x).mean())
            out.append(calibrate(_fixed(x, lambda x, g: estimate_nll(vae, x, k, generator=g), case), truth,
                                 range(seeds),
                                 estimator=f"IWAE NLL, k = {k}, s.e. across {n} test points — read as a Monte Carlo "
                                           "error of one fixed test set",
                                 case=f"{name}; one fixed test set, exact NLL {truth:.4f}", bound="upper"))
    return out


def vlb_cases(seeds: int, n_ref: int, n: int = 100, n_t: int = 100, exact_steps: int = 1) -> list[Calibration]:
    from kakusan.diffusion import MixtureTruth, Schedule
    from kakusan.diffusion.vlb import EpsModel, vlb_estimate, vlb_exact

    D, sd, m = 16, 0.4, 0.3
    s = Schedule("linear", 1000)
    gauss = MixtureTruth(torch.ones(1), torch.full((1, D), m, dtype=F64), sd**2 * torch.eye(D, dtype=F64)[None], s)
    mixture = MixtureTruth.example(D, 3, s, seed=1)
    K = exact_steps
    head = "L_0 exact" if K == 1 else f"L_0 … L_{K - 1} exact"
    label = (f"VLB, stratified t (`vlb_estimate`, {head} + {n_t} strata of t = {K + 1} … 1000), s.e. across {n} "
             "test points")

    def estimate(truth):
        return lambda x, g: vlb_estimate(EpsModel(truth), x, generator=g, n_t=n_t, exact_steps=K).estimate

    out = []
    exact = calibration.gaussian_vlb(s, sd, m, D * sd**2, D * (sd**2 + m**2), D)
    out.append(calibrate(_fresh(lambda seed: gauss.sample(n, seed), estimate(gauss), 20), exact, range(seeds),
                         estimator=label, case=f"Gaussian data N(0.3, 0.4² I), D = {D}, linear schedule, exact "
                                           f"denoiser; fresh test sets; E[VLB] {exact:.4f} (closed form)"))
    x = gauss.sample(n, stream_seed(0, 9))
    truth = float(calibration.gaussian_vlb(s, sd, m, ((x - m) ** 2).sum(1), (x**2).sum(1), D).mean())
    out.append(calibrate(_fixed(x, estimate(gauss), 20), truth, range(seeds),
                         estimator=label + " — read as a Monte Carlo error of one fixed test set",
                         case=f"same Gaussian; one fixed test set, its E[VLB] {truth:.4f} (closed form)"))
    t0 = time.process_time()
    ref = vlb_exact(EpsModel(mixture), mixture.sample(n_ref, stream_seed(10**6, 0)), generator=stream_seed(10**6, 1),
                    batch=2000).estimate
    ref_cpu = time.process_time() - t0
    out.append(calibrate(_fresh(lambda seed: mixture.sample(n, seed), estimate(mixture), 21), ref.value, range(seeds),
                         estimator=label, case=f"3-component Gaussian mixture (`MixtureTruth.example(16, 3, seed=1)`), "
                                           f"linear schedule, exact denoiser; fresh test sets; E[VLB] "
                                           f"{ref.value:.3f} ± {ref.stderr:.3f} (all T terms, {n_ref} examples, "
                                           f"{ref_cpu:.0f} CPU-s)"))
    return out


def ode_cases(seeds: int, n_ref: int, n: int = 100, probe: str = "rademacher") -> list[Calibration]:
    from kakusan.diffusion import MixtureTruth, Schedule
    from kakusan.diffusion.ode import ode_nll

    truth = MixtureTruth.example(16, 3, Schedule("cosine", 1000), seed=1)
    model = calibration.MixtureFlow(truth)
    label = (f"PF-ODE NLL (`ode_nll`), Hutchinson divergence (one {probe.capitalize()} probe per example), rtol "
             f"1e-5, s.e. across {n} test points")

    def estimate(x, g):
        return ode_nll(model, x, generator=g, divergence="hutchinson", probe=probe)

    log_p = torch.cat([truth.log_prob(truth.sample(n_ref, stream_seed(10**6 + i, 2))) for i in range(100)])
    entropy, entropy_se = float(-log_p.mean()), float(log_p.std() / math.sqrt(len(log_p)))
    out = [calibrate(_fresh(lambda seed: truth.sample(n, seed), estimate, 30), entropy, range(seeds), estimator=label,
                     case=f"3-component Gaussian mixture, D = 16 (`MixtureTruth.example(16, 3, seed=1)`), cosine "
                          f"schedule, exact denoiser; fresh test sets; exact NLL {entropy:.4f} ± {entropy_se:.4f} "
                          f"(−E log q₀ over {len(log_p)} draws)")]
    x = truth.sample(n, stream_seed(0, 9))
    exact = float(-truth.log_prob(x).mean())
    out.append(calibrate(_fixed(x, estimate, 30), exact, range(seeds),
                         estimator=label + " — read as a Monte Carlo error of one fixed test set",
                         case=f"same mixture; one fixed test set, exact NLL {exact:.4f}"))
    return out


def deep_cases(seeds: int, n_ref: int, probes: tuple[str, ...] = ("rademacher",), n_t: int = 100,
               exact_steps: int = 1) -> list[Calibration]:
    return iwae_cases(seeds, n_ref) + vlb_cases(seeds, n_ref, n_t=n_t, exact_steps=exact_steps) + [c for probe in probes
                                                                 for c in ode_cases(seeds, n_ref, probe=probe)]


# ---------------------------------------------------------------- the Fréchet distance's s.e. (sample quality)

FD_SAMPLES = 500  # what `diffusion evaluate --fd` and `metric-net score` score by default
FD_NOISE = (0.1, 0.25)  # pixel noise of the "generators" farther from the data


FD_DATA = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}  # --fd-data: whose metric net and images


def fd_cases(seeds: int, n_ref: int = 1000, data: str = "mnist", n_samples: int = FD_SAMPLES) -> list[Calibration]:
    """The FD ± that ``diffusion evaluate --fd`` / ``metric-net score`` print (``fd_with_error``: Gaussian
    resamples of the samples, the reference fixed), and the row bootstrap it replaced, on ``data`` (MNIST or
    Fashion-MNIST) in its metric net's features against all 10,000 test images. Three "generators" whose every
    draw is fresh: ``n_samples`` (500, the commands' default) training images (the real-data floor), and training images with Gaussian pixel noise
    σ = 0.1 and 0.25 (clipped to [0, 1]; the noise drawn once for the first 20,000 images, whose features are
    then the population). The exact
    answer is E[FD̂₅₀₀] against the fixed reference, the mean over ``n_ref`` independent draws (its s.e. in the
    case column): the ± is a spread, not a bias correction, so the bias is out of the question asked."""
    from kakusan.data import load
    from kakusan.evaluate.metric_net import embed, get_metric_net
    from kakusan.evaluate.sample_quality import fd_with_error, frechet_distance, gaussian_stats

    ds = load(data)
    net = get_metric_net(data, progress=False)
    ref = embed(net, ds.x_test)[0].double()
    mu_r, cov_r = gaussian_stats(ref)
    x = torch.as_tensor(ds.x_train[:20_000]).float()
    x = x / 255 if x.max() > 1 else x
    sources = {f"{n_samples} training images (the real-data floor)": embed(net, ds.x_train)[0].double()}
    for sigma in FD_NOISE:
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5)) * sigma
        sources[f"training images + N(0, {sigma:g}²) pixel noise"] = embed(net, (x + noise).clamp(0, 1))[0].double()
    out = []
    for label, pool in sources.items():
        t0 = time.process_time()
        pick = lambda g: pool[torch.randperm(len(pool), generator=g)[:n_samples]]  # noqa: E731
        g = torch.Generator().manual_seed(0)
        draws = np.array([frechet_distance(*gaussian_stats(pick(g)), mu_r, cov_r) for _ in range(n_ref)])
        truth, truth_se = float(draws.mean()), float(draws.std(ddof=1) / math.sqrt(n_ref))
        values, gauss, rows = [], [], []
        for seed in range(seeds):
            a = pick(torch.Generator().manual_seed(10_000 + seed))
            est = fd_with_error(a, ref, 50, seed)
            values.append(est.value)
            gauss.append(est.stderr)
            g = torch.Generator().manual_seed(20_000 + seed)  # the row bootstrap (both sets resampled), as before
            rows.append(np.std([frechet_distance(*gaussian_stats(a[torch.randint(0, len(a), (len(a),), generator=g)]),
                                                 *gaussian_stats(ref[torch.randint(0, len(ref), (len(ref),),
                                                                                   generator=g)]))
                                for _ in range(50)], ddof=1))
        cpu = time.process_time() - t0
        case = (f"{FD_DATA[data]} metric-net features ({ref.shape[1]}), {n_samples} samples against the 10,000 "
                f"test images; {label}; "
                f"E[FD̂] = {truth:.2f} ± {truth_se:.2f} ({n_ref} draws; sd {draws.std(ddof=1):.2f})")
        for err, how in ((gauss, "50 Gaussian resamples of the samples, reference fixed (what it prints)"),
                         (rows, "50 row-bootstrap resamples of both sets (what it printed before)")):
            out.append(from_estimates(values, err, truth, estimator=f"FD ± s.e. (`fd_with_error`): {how}",
                                      case=case, cpu_seconds=cpu / 2))
    return out


# ---------------------------------------------------------------- class accuracy's binomial s.e.

ACCURACY_CASES = [(500, 0.9), (500, 0.98), (500, 0.995), (500, 0.999), (1000, 0.998)]  # (samples, true accuracy)


def accuracy_cases(seeds: int) -> list[Calibration]:
    """``class_accuracy``'s ± (what ``diffusion evaluate`` and ``metric-net score`` print), and the Wald
    √(a(1 − a)/n) it replaced, for n samples that a classifier gets right with a known probability p: logits
    (n, 10) that put the intended class first with probability p, else the next class. n = 500 is the evaluate
    default; n = 1,000 at 99.8 % is the prompt chapter's class-prompt accuracy."""
    from kakusan.evaluate.sample_quality import class_accuracy

    out = []
    for n, p in ACCURACY_CASES:
        t0 = time.process_time()
        values, new, wald = [], [], []
        for seed in range(seeds):
            g = torch.Generator().manual_seed(stream_seed(seed, 40))
            y = torch.randint(0, 10, (n,), generator=g)
            right = torch.rand(n, generator=g, dtype=F64) < p
            logits = torch.nn.functional.one_hot(torch.where(right, y, (y + 1) % 10), 10).double()
            est = class_accuracy(logits, labels=y)
            values.append(est.value)
            new.append(est.stderr)
            wald.append(math.sqrt(est.value * (1 - est.value) / n))
        cpu = time.process_time() - t0
        case = f"n = {n} samples, true accuracy {p:g} (n(1 − p) = {n * (1 - p):g} expected misses)"
        for err, how in ((new, "Agresti–Coull √(ã(1−ã)/(n+4)), ã = (k+2)/(n+4) (what it prints)"),
                         (wald, "Wald √(a(1−a)/n) (what it printed before)")):
            out.append(from_estimates(values, err, p, estimator=f"class accuracy ± s.e. (`class_accuracy`): {how}",
                                      case=case, cpu_seconds=cpu / 2))
    return out


# ---------------------------------------------------------------- main


def header() -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout
    return (f"git {sha.strip()}, {datetime.date.today()}, torch {torch.__version__}, numpy {np.__version__}, "
            f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=("mcmc", "ladder", "pt", "ais", "sandwich", "deep", "vlb", "ode",
                                              "fd", "accuracy"),
                   default=["mcmc", "ladder", "pt", "ais", "deep", "fd", "accuracy"],
                   help="pt: the replica-exchange MCSEs of `ising sample` and the tour; deep: the IWAE, VLB and "
                        "PF-ODE rows; vlb: the VLB rows alone; ode: the PF-ODE rows alone (--ode-probe); fd: the Fréchet distance's s.e.; accuracy: class "
                        "accuracy's binomial s.e. (--accuracy-seeds); sandwich: the coverage of the forward/reverse AIS "
                        "interval of `rbm evaluate` on --ais-cases (from the cached runs, annealing what is missing)")
    p.add_argument("--accuracy-seeds", type=int, default=1000, help="seeds per class-accuracy row")
    p.add_argument("--seeds", type=int, default=100, help="seeds per MCMC and ladder case")
    p.add_argument("--deep-seeds", type=int, default=100, help="seeds (fresh test sets) per deep-model row")
    p.add_argument("--deep-ref", type=int, default=10_000,
                   help="examples of the reference runs for E[NLL_k] and the mixture's E[VLB] (×100 for its entropy)")
    p.add_argument("--ais-groups", type=int, default=60, help="independent AIS estimates per case")
    p.add_argument("--ais-runs", nargs="+", type=int, default=[100],
                   help="runs per AIS estimate (`rbm evaluate --runs`; default 100): one set of rows per value")
    p.add_argument("--ais-betas", type=int, default=14_500,
                   help="inverse temperatures per AIS run (`rbm evaluate --betas`, `scaled_betas`; default 14,500); "
                        "cached apart from the default's runs")
    p.add_argument("--ais-cases", nargs="+", default=list(AIS_CASES)[:1], choices=list(AIS_CASES))
    p.add_argument("--ais-directions", nargs="+", choices=("forward", "reverse", "reverse-gibbs", "reverse-annealed"),
                   default=None,
                   help="anneal only these directions (default: both, or the case's own in AIS_DIRECTIONS)")
    p.add_argument("--vlb-exact-steps", type=int, default=1,
                   help="--only vlb or deep: the first K terms computed for every example (`vlb_estimate(exact_steps=K)`, "
                        "`diffusion evaluate --exact-steps`, a ten-step head's default: 10)")
    p.add_argument("--vlb-strata", type=int, default=100,
                   help="--only vlb or deep: strata of t (`diffusion evaluate --n-t`; the MNIST tables use 50)")
    p.add_argument("--ode-probe", nargs="+", default=["rademacher"], choices=("rademacher", "gaussian"),
                   help="the Hutchinson probes of the PF-ODE rows (`ode_nll(probe=...)`; the command line uses "
                        "rademacher)")
    p.add_argument("--fd-samples", nargs="+", type=int, default=[FD_SAMPLES],
                   help="--only fd: samples per FD (`diffusion evaluate --n-samples`; default 500)")
    p.add_argument("--fd-data", nargs="+", default=["mnist"], choices=list(FD_DATA),
                   help="--only fd: the data sets whose metric-net features the FD rows use")
    p.add_argument("--raw", type=Path, default=HERE / ".cache" / "calibration", help="cache of AIS log weights")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results: list[Calibration] = []
    misses: list[dict] = []
    if "mcmc" in args.only:
        results += mcmc_cases(args.seeds)
    if "ladder" in args.only:
        results += ladder_cases(args.seeds)
    if "pt" in args.only:
        results += pt_cases(args.seeds)
    if "ais" in args.only:
        for runs in args.ais_runs:
            cals, found = ais_cases(args.ais_groups, args.raw, args.ais_cases, args.ais_directions, runs,
                                    args.ais_betas)
            results += cals
            misses += found
    if "deep" in args.only:
        results += deep_cases(args.deep_seeds, args.deep_ref, tuple(args.ode_probe), args.vlb_strata,
                              args.vlb_exact_steps)
    else:
        if "vlb" in args.only:
            results += vlb_cases(args.deep_seeds, args.deep_ref, n_t=args.vlb_strata, exact_steps=args.vlb_exact_steps)
        if "ode" in args.only:
            results += [c for probe in args.ode_probe for c in ode_cases(args.deep_seeds, args.deep_ref, probe=probe)]
    if "fd" in args.only:
        results += [c for data in args.fd_data for n in args.fd_samples
                    for c in fd_cases(args.deep_seeds, data=data, n_samples=n)]
    if "accuracy" in args.only:
        results += accuracy_cases(args.accuracy_seeds)
    print(header())
    print(markdown_table(results))
    for m in misses:
        print(m)
    if "ais" in args.only:
        print("\n".join(ais_pooled(args.raw, args.ais_cases, args.ais_directions, betas=args.ais_betas)))
    if "sandwich" in args.only:
        for runs in args.ais_runs:
            print("\n".join(ais_sandwich(args.ais_groups, args.raw, args.ais_cases, runs=runs, betas=args.ais_betas)))
    if args.json:
        args.json.write_text(json.dumps({"rows": [c.row() for c in results], "misses": misses}, indent=1,
                                        default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

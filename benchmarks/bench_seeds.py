"""Comparisons of the docs repeated over seeds: each method's mean ± one standard error, and the paired difference.

The docs compared methods on one seed in five places; this script reruns each comparison once per seed (a fresh
training seed and, where the comparison draws data, a fresh draw of the data) and reports, for every method, the
mean over seeds ± one standard error (the standard deviation over seeds divided by √n), and for each pair of
methods the paired difference (A − B on the same seed, so the seed-to-seed variation they share cancels): its
mean ± one standard error, z = mean / s.e., and the two-sided p of the paired t-test with n − 1 degrees of
freedom. A difference is called *resolved* when p < 0.05. Comparisons (``--only``):

* ``rbm`` — CD-1 vs PCD-1 vs PT-PCD on the 8×8 digits, the tour's recipe (docs/rbm.md §2): 64-16 Bernoulli RBM,
  25 epochs, batch 50, lr 0.1 decaying linearly, momentum 0.5, 50 chains (PT: 10 temperatures from β = 0.3),
  the same initialisation for the three; exact test log-likelihood after the last epoch. Each seed draws its own
  split of the 1,797 digits into 1,500 training and 297 test rows (threshold binarisation) and its own training
  seed.
* ``centering`` — centered vs plain PCD-1 at a large constant step (docs/rbm.md §1): the two
  ``kakusan rbm train --data digits --hidden 16 --method pcd --epochs 30 --batch-size 50 --lr 0.2`` commands of
  the page with ``--seed s --data-seed s`` (a fresh stochastic binarisation of the digits per seed); from the
  exact test log-likelihood after each epoch: the last value, the largest change between consecutive epochs
  from epoch 4 on, and the range (highest − lowest) over the last 10 epochs.
* ``ladders`` — geometric vs adapted (equal-acceptance) ladder on SK N = 256 (docs/tempering.md §4),
  ``bench_tempering.round_trips`` with a fresh SK instance and fresh chains per seed: round trips per system
  per 10⁴ sweeps (the mean over its 8 systems) and the worst pair's acceptance.
* ``coupling`` — PCD vs PT estimators learning SK N = 64 from M of its own samples (docs/tempering.md §6),
  ``bench_tempering.learning`` with a fresh PT draw of the data and a fresh learner seed per seed (the true
  model is the page's): ‖J − J_true‖/‖J_true‖ of the averaged iterate.
* ``inverse`` — pseudo-likelihood vs MPF vs exact maximum likelihood on SK N = 16 (docs/mcmc-free.md §5), the
  N = 16 rows of ``bench_inverse.py``: the same three models (β = 0.5, 1, 1.5, field_std 0.3, instance seed 16),
  M = 10³, 10⁴, 10⁵ exact samples, a fresh draw per seed (seed 0 is the draw of ``results_inverse.md``):
  ‖J − J*‖/‖J*‖.

    nice -n 19 .venv/bin/python benchmarks/bench_seeds.py --json benchmarks/results_seeds.json \\
        --out benchmarks/results_seeds.md --figure docs/figures/rbm_seeds.png        # all five (~30 CPU-min)
    .venv/bin/python benchmarks/bench_seeds.py --only rbm --seeds 3 --quick            # a smoke run (seconds)
    .venv/bin/python benchmarks/bench_seeds.py --from-json --figure rbm_seeds.png     # redraw the figure

``--from-json`` without a file reads ``benchmarks/results_seeds.json``, the run the docs quote.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
COMPARISONS = ("rbm", "centering", "ladders", "coupling", "inverse")
# seeds per comparison, unless --seeds: the two RBM comparisons cost 7–9 CPU-s a seed, the other two 40–100
SEEDS = {"rbm": 16, "centering": 10, "ladders": 8, "coupling": 8, "inverse": 10}
RESOLVED_P = 0.05


# ---------------------------------------------------------------- statistics


def mean_se(values) -> tuple[float, float]:
    """The mean of ``values`` and one standard error of it: the sample standard deviation (n − 1) over √n."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float(v.mean()), math.nan
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


def paired(a, b) -> dict:
    """The paired difference a − b (one pair per seed): mean, one standard error, z = mean / s.e., and the
    two-sided p of the paired t-test (n − 1 degrees of freedom)."""
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean, se = mean_se(d)
    z = mean / se if se > 0 else (math.inf if mean else 0.0) * np.sign(mean)
    p = float(2 * stats.t.sf(abs(z), d.size - 1)) if d.size > 1 and math.isfinite(z) else (
        0.0 if d.size > 1 else math.nan)
    return {"mean": mean, "se": se, "z": float(z), "p": p, "n": int(d.size), "resolved": bool(p < RESOLVED_P)}


def decimals_for(se: float) -> int:
    """Decimal places that an error ``se`` supports: two significant figures of ``se`` when it starts with 1 or 2,
    else one (0.034 → 2, 0.017 → 3, 2.3 → 1, 0.6 → 1, 13 → 0)."""
    if not (se > 0 and math.isfinite(se)):
        return 3
    exponent = math.floor(math.log10(se))
    lead = se / 10**exponent
    if round(lead, 1) >= 9.95:  # 0.0996 rounds to 0.1
        exponent, lead = exponent + 1, 1.0
    return max(0, -exponent + (1 if lead < 3 else 0))


def pm(mean: float, se: float, signed: bool = False) -> str:
    """``mean ± se`` rounded to the digits the error supports (Unicode minus)."""
    k = decimals_for(se)
    text = f"{mean:+.{k}f}" if signed else f"{mean:.{k}f}"
    if float(text) == 0:
        text = f"{0:.{k}f}"
    return f"{text.replace('-', '−')} ± {se:.{k}f}"


# ---------------------------------------------------------------- the comparisons, one seed each


def rbm_seed(seed: int, quick: bool) -> dict:
    """CD-1, PCD-1 and PT-PCD on one split of the digits, the tour's recipe: final exact test log-likelihood and
    the curve over epochs."""
    from kakusan.data import binarise, flatten, load
    from kakusan.rbm import BernoulliRBM
    from kakusan.rbm.fit import RBMTrainConfig, fit_rbm

    digits = load("digits")
    x = binarise(flatten(torch.cat([digits.x_train, digits.x_test])))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, test = x[order[:1500]], x[order[1500:]]
    epochs = 2 if quick else 25
    out = {}
    for method in ("cd", "pcd", "pt"):
        model = BernoulliRBM(64, 16, seed=seed).init_from_data(train)
        config = RBMTrainConfig(method=method, epochs=epochs, batch_size=50, lr=0.1, lr_schedule="linear",
                                weight_decay=0.0, n_chains=50, beta_min=0.3, seed=seed, progress=False)
        curve = [e["test_log_likelihood"] for e in fit_rbm(model, train, config, test=test).evaluations]
        out[method] = {"test log-likelihood": curve[-1], "curve": curve}
    return out


def centering_seed(seed: int, quick: bool) -> dict:
    """The two commands of docs/rbm.md §1 with ``--seed seed --data-seed seed``: the exact test log-likelihood
    after every epoch, its last value, its largest change from epoch ``settle`` on and its range over the last
    third of the epochs."""
    from kakusan.cli import main

    epochs = 3 if quick else 30
    settle, window = (1, 1) if quick else (4, 10)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-seeds-") as tmp:
        for name, flag in (("centered", ["--centered"]), ("plain", [])):
            run = Path(tmp) / name
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                code = main(["rbm", "train", "--data", "digits", "--hidden", "16", "--method", "pcd", "--epochs",
                             str(epochs), "--batch-size", "50", "--lr", "0.2", "--seed", str(seed), "--data-seed",
                             str(seed), "--samples", "0", *flag, "--run-dir", str(run)])
            if code:
                raise SystemExit(f"kakusan rbm train exited with {code}")
            events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            t = [e["test_log_likelihood"] for e in events if e.get("event") == "eval"]
            steps = np.abs(np.diff(t))
            out[name] = {"final": t[-1], "largest change": float(steps[settle:].max()),
                         "range": float(max(t[-window - 1:]) - min(t[-window - 1:])), "curve": t}
    return out


def ladders_seed(seed: int, quick: bool, sweeps: int, beta_maxes) -> dict:
    from bench_tempering import round_trips

    out = {}
    for beta_max in beta_maxes:
        for row in round_trips(beta_max, 1000 if quick else sweeps, seed):
            name = f"β_max {beta_max:g}, {row['ladder_kind'].split(' ')[0]}"
            out[name] = {"round trips": row["rt"], "within-run s.e.": row["rt_err"], "worst acceptance":
                         row["acc_min"], "Λ": row["lambda"]}
    return out


def coupling_seed(seed: int, quick: bool, sizes, steps: int, lr: float) -> dict:
    from bench_tempering import learning

    rows, _ = learning([2000] if quick else list(sizes), 100 if quick else steps, lr, seed)
    return {f"M {r['M']:,}, {r['method']}": {"relative error": r["rel_err"], "last iterate": r["rel_err_last"]}
            for r in rows}


INVERSE_METHODS = {"PLM": ("plm", {}), "MPF": ("mpf", {}), "exact ML": ("exact", {})}


def inverse_seed(seed: int, quick: bool) -> dict:
    from bench_inverse import rel

    from kakusan.boltzmann import exact, instances
    from kakusan.learn.inverse import solve

    out = {}
    for beta in (1.0,) if quick else (0.5, 1.0, 1.5):
        truth = instances.sherrington_kirkpatrick(16, beta=beta, field_std=0.3, seed=16)
        sizes = (1000,) if quick else (1000, 10_000, 100_000)
        x = exact.exact_sample(truth, max(sizes), generator=int(10 * beta) + 1000 * seed)  # seed 0: bench_inverse's
        tJ = truth.couplings().detach().numpy()
        for m in sizes:
            for label, (method, options) in INVERSE_METHODS.items():
                r = solve(x[:m], method, **options)
                out[f"β {beta:g}, M {m:,}, {label}"] = {"relative error": rel(r.J.numpy(), tJ)}
    return out


# ---------------------------------------------------------------- what each comparison reports

# comparison: (title, the metrics to report, pairs (A, B) for A − B)
PLANS = {
    "rbm": ("CD-1 vs PCD-1 vs PT-PCD on the digits (64-16 RBM, the tour's recipe)", ["test log-likelihood"],
            [("pcd", "cd"), ("pt", "cd"), ("pt", "pcd")]),
    "centering": ("Centered vs plain PCD-1 at lr 0.2 on the digits (64-16 RBM)",
                  ["final", "largest change", "range"], [("centered", "plain")]),
    "ladders": ("Geometric vs adapted ladder on SK N = 256 (16 temperatures from β = 0.2, 8 systems)",
                ["round trips", "worst acceptance", "Λ"], None),
    "coupling": ("PCD vs PT learning SK N = 64 from M of its own samples", ["relative error"], None),
    "inverse": ("Pseudo-likelihood vs MPF vs exact maximum likelihood on SK N = 16", ["relative error"], None),
}


def default_pairs(comparison: str, methods: list[str]) -> list[tuple[str, str]]:
    """The pairs of a comparison: its plan's, or (for ladders and coupling) the two methods of each setting."""
    if PLANS[comparison][2] is not None:
        return PLANS[comparison][2]
    within = {"ladders": [("adapted", "geometric")], "coupling": [("pcd", "pt")],
              "inverse": [("PLM", "exact ML"), ("MPF", "exact ML"), ("MPF", "PLM")]}[comparison]
    groups = list(dict.fromkeys(m.rsplit(", ", 1)[0] for m in methods))
    return [(f"{g}, {a}", f"{g}, {b}") for g in groups for a, b in within
            if f"{g}, {a}" in methods and f"{g}, {b}" in methods]


def summarise(comparison: str, per_seed: list[dict]) -> dict:
    """Means ± s.e. per method and metric, and the paired differences, from the per-seed results."""
    methods = list(per_seed[0])
    metrics = PLANS[comparison][1]
    summary = {"methods": {}, "pairs": []}
    for m in methods:
        summary["methods"][m] = {k: dict(zip(("mean", "se"), mean_se([s[m][k] for s in per_seed])))
                                 for k in metrics}
    for a, b in default_pairs(comparison, methods):
        for k in metrics:
            summary["pairs"].append({"a": a, "b": b, "metric": k,
                                     **paired([s[a][k] for s in per_seed], [s[b][k] for s in per_seed])})
    return summary


def run(comparison: str, seeds: int, args) -> dict:
    """Run one comparison over ``seeds`` seeds (0 … seeds − 1) and time it."""
    one = {"rbm": lambda s: rbm_seed(s, args.quick),
           "centering": lambda s: centering_seed(s, args.quick),
           "ladders": lambda s: ladders_seed(s, args.quick, args.sweeps, args.beta_max),
           "coupling": lambda s: coupling_seed(s, args.quick, args.sizes, args.learn_steps, args.learn_lr),
           "inverse": lambda s: inverse_seed(s, args.quick)}[comparison]
    load0, cpu0, wall0 = os.getloadavg()[0], time.process_time(), time.perf_counter()
    per_seed, cpu_per_seed = [], []
    for s in range(seeds):
        c = time.process_time()
        per_seed.append(one(s))
        cpu_per_seed.append(time.process_time() - c)
        print(f"{comparison} seed {s}: {cpu_per_seed[-1]:.1f} CPU-s "
              f"{ {m: {k: round(v, 4) for k, v in r.items() if k != 'curve'} for m, r in per_seed[-1].items()} }",
              file=sys.stderr, flush=True)
    return {"comparison": comparison, "seeds": seeds, "per_seed": per_seed, "summary": summarise(comparison, per_seed),
            "cpu_seconds": time.process_time() - cpu0, "cpu_seconds_per_seed": cpu_per_seed,
            "wall_seconds": time.perf_counter() - wall0, "load": [load0, os.getloadavg()[0]],
            "settings": settings(comparison, args)}


def settings(comparison: str, args) -> str:
    if args.quick:
        return "--quick: a smoke run at toy sizes; not for quoting"
    return {"rbm": "25 epochs, batch 50, lr 0.1 linear to 0, momentum 0.5, no weight decay, 50 chains, PT 10 "
                   "temperatures from β = 0.3; 1,500 / 297 rows of the 1,797 digits, split by the seed",
            "centering": "30 epochs, batch 50, constant lr 0.2, momentum 0.5, weight decay 1e-4; the largest change "
                         "is taken from epoch 4 on, the range over epochs 20–30 (11 evaluations)",
            "ladders": f"{args.sweeps} sweeps per run after 2,000 of burn-in; adaptation 12 rounds, the first of "
                       f"{max(50, args.sweeps // 40)} steps, each 1.2 times longer; β_max "
                       f"{', '.join(f'{b:g}' for b in args.beta_max)}; SK instance seed = the seed",
            "coupling": f"M = {', '.join(f'{m:,}' for m in args.sizes)}; Adam lr {args.learn_lr}, {args.learn_steps} "
                        "steps, J averaged over the second half; PCD 256 chains, PT 64 systems × 8 temperatures; "
                        "data by PT (16 systems × 8 temperatures 0.3 … 1, thin 5) with the seed; true model "
                        "SK seed 1 (field_std 0.3)",
            "inverse": "exact samples by kakusan.boltzmann.exact.exact_sample, generator 10·β + 1000·seed; "
                       "solve(x, 'plm' | 'mpf' | 'exact') with their defaults (PLM symmetric)"}[comparison]


# ---------------------------------------------------------------- report


def command_line(argv: list[str]) -> str:
    return "nice -n 19 .venv/bin/python benchmarks/bench_seeds.py " + " ".join(argv)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes")


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "benchmarks/bench_seeds.py",
                                "benchmarks/bench_tempering.py", "src"], cwd=ROOT, capture_output=True,
                               text=True).stdout
    except OSError:
        return "unknown"
    return sha + (" (uncommitted changes in src/ or the benchmark)" if dirty.strip() else "")


def markdown(results: list[dict], meta: dict) -> str:
    lines = ["# Comparisons of the docs over seeds: mean ± one standard error, and paired differences", "",
             f"Command: `{meta['command']}`", "",
             f"git {meta['git']}; {meta['date']} to {meta['ended']}; {meta['machine']}; torch {meta['torch']}, one "
             f"torch thread; {meta['cpu_seconds'] / 60:.1f} CPU-minutes in all. The machine is shared (2 cores, "
             "background training jobs; the load averages are given per comparison), so wall times are not CPU "
             "times.", "",
             "Every ± is **one standard error** across seeds: the sample standard deviation over the seeds divided "
             "by √n. A paired difference A − B is taken seed by seed (the same seed, data draw and initialisation "
             "for both), so what the seeds share cancels; z = mean / s.e., and p is the two-sided paired t-test "
             f"with n − 1 degrees of freedom. *Resolved* means p < {RESOLVED_P}. Numbers are rounded to the digits "
             "their error supports (two significant figures of the s.e. when it starts with 1 or 2, else one); "
             "the per-seed values are printed to more digits."]
    for k, r in enumerate(results, 1):
        lines += section(k, r)
    return "\n".join(lines) + "\n"


def section(k: int, r: dict) -> list[str]:
    title, metrics, _ = PLANS[r["comparison"]]
    s = r["summary"]
    out = ["", f"## {k}. {title}", "",
           f"`--only {r['comparison']}`: {r['seeds']} seeds (0 … {r['seeds'] - 1}); {r['cpu_seconds']:.0f} CPU-s "
           f"({r['cpu_seconds'] / r['seeds']:.0f} per seed), {r['wall_seconds']:.0f} s wall; load average "
           f"{r['load'][0]:.1f} at the start, {r['load'][1]:.1f} at the end. Settings: {r['settings']}.", "",
           "| method | " + " | ".join(f"{m} (mean ± 1 s.e.)" for m in metrics) + " | per seed (" + metrics[0] + ") |",
           "|---|" + "---|" * (len(metrics) + 1)]
    for m, v in s["methods"].items():
        seeds = ", ".join(f"{x[m][metrics[0]]:.6g}".replace("-", "−") for x in r["per_seed"])
        out.append(f"| {m} | " + " | ".join(pm(v[k]["mean"], v[k]["se"]) for k in metrics) + f" | {seeds} |")
    out += ["", "| paired difference | metric | mean ± 1 s.e. | z | p | resolved? |", "|---|---|---|---|---|---|"]
    for p in s["pairs"]:
        z = f"{p['z']:+.1f}".replace("-", "−")
        out.append(f"| {pair_label(p['a'], p['b'])} | {p['metric']} | {pm(p['mean'], p['se'], signed=True)} | {z} | "
                   f"{p['p']:.2g} | {'**resolved**' if p['resolved'] else 'not resolved'} |")
    return out


def pair_label(a: str, b: str) -> str:
    """``A − B``, or ``setting: A − B`` when both methods are named ``setting, method``."""
    (ga, _, ta), (gb, _, tb) = a.rpartition(", "), b.rpartition(", ")
    return f"{ga}: {ta} − {tb}" if ga and ga == gb else f"{a} − {b}"


# ---------------------------------------------------------------- figure


def figure(results: list[dict], path: Path) -> Path:
    """The CD/PCD/PT comparison: the exact test log-likelihood over epochs (mean ± 1 s.e. over seeds) and the
    paired differences at the end (each seed a dot, mean ± 1 s.e.)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = next((x for x in results if x["comparison"] == "rbm"), None)
    if r is None:
        raise SystemExit("bench_seeds.py: --figure needs the rbm comparison (run it with --only rbm or all)")
    names = {"cd": "CD-1", "pcd": "PCD-1", "pt": "PT-PCD"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.9), dpi=110, layout="constrained",
                                      gridspec_kw={"width_ratios": [3, 2]})
    for k, (m, label) in enumerate(names.items()):
        curves = np.array([x[m]["curve"] for x in r["per_seed"]])
        mean, se = curves.mean(0), curves.std(0, ddof=1) / math.sqrt(len(curves))
        epochs = np.arange(len(mean))
        left.plot(epochs, mean, color=f"C{k}", label=f"{label} (mean ± 1 s.e.)")
        left.fill_between(epochs, mean - se, mean + se, color=f"C{k}", alpha=0.25, lw=0)
    left.set_xlabel("epoch")
    left.set_ylabel("exact test log-likelihood (nats)")
    lo = min(np.mean([x[m]["curve"][len(x[m]["curve"]) // 4] for x in r["per_seed"]]) for m in names)
    left.set_ylim(bottom=lo - 0.5)
    left.set_title(f"64-16 RBM on the digits, {r['seeds']} seeds")
    left.legend(loc="lower right", fontsize="small", frameon=False)
    pairs = [p for p in r["summary"]["pairs"] if p["metric"] == "test log-likelihood"]
    for k, p in enumerate(pairs):
        d = [x[p["a"]]["test log-likelihood"] - x[p["b"]]["test log-likelihood"] for x in r["per_seed"]]
        right.scatter(d, np.full(len(d), k) + np.linspace(-0.12, 0.12, len(d)), s=10, color="0.6", zorder=2)
        right.errorbar(p["mean"], k, xerr=p["se"], fmt="o", color="C3" if p["resolved"] else "k", capsize=4,
                       zorder=3)
    right.axvline(0, color="0.3", lw=0.8, ls="--")
    right.set_yticks(range(len(pairs)), [f"{names[p['a']]} − {names[p['b']]}" for p in pairs])
    right.invert_yaxis()
    right.set_xlabel("paired difference, last epoch (nats)")
    right.set_title(f"seeds (dots), mean ± 1 s.e.\nred: resolved (paired t-test p < {RESOLVED_P})", fontsize="medium")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=COMPARISONS, default=list(COMPARISONS))
    p.add_argument("--seeds", type=int, default=None,
                   help=f"seeds per comparison (default {', '.join(f'{k} {v}' for k, v in SEEDS.items())}; --quick: 2)")
    p.add_argument("--quick", action="store_true", help="toy sizes: a smoke run of the script, not for quoting")
    p.add_argument("--sweeps", type=int, default=10_000, help="ladders: sweeps per measurement run")
    p.add_argument("--beta-max", type=float, nargs="+", default=[2.0, 3.0], help="ladders: the ladders' β_max")
    p.add_argument("--sizes", type=int, nargs="+", default=[8000, 32000, 128000], help="coupling: sample sizes M")
    p.add_argument("--learn-steps", type=int, default=4000, help="coupling: Adam steps")
    p.add_argument("--learn-lr", type=float, default=0.0025, help="coupling: Adam learning rate")
    p.add_argument("--json", type=Path, default=None, help="write every per-seed result and the summary")
    p.add_argument("--out", type=Path, default=None, help="write the markdown report (default: print it)")
    p.add_argument("--figure", type=Path, default=None, help="draw the CD/PCD/PT figure (needs the rbm comparison)")
    p.add_argument("--from-json", type=Path, nargs="?", const=HERE / "results_seeds.json", default=None,
                   help="read the results of an earlier run instead of running (default benchmarks/results_seeds.json)")
    args = p.parse_args(argv)
    if args.seeds is not None and args.seeds < 2:
        p.error("--seeds must be at least 2 (a standard error needs two seeds)")
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        results, meta = saved["results"], saved["meta"]
    else:
        torch.set_num_threads(1)
        meta = {"command": command_line(argv), "git": git_commit(), "date": now(),
                "machine": f"{platform.processor() or platform.machine()}, "
                           f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} "
                           "cores available", "torch": torch.__version__}
        results = [run(c, args.seeds or (2 if args.quick else SEEDS[c]), args) for c in args.only]
        meta.update(ended=now(), cpu_seconds=sum(r["cpu_seconds"] for r in results))
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n", encoding="utf-8")
    text = markdown(results, meta)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text)
    if args.figure:
        print(figure(results, args.figure))
    return 0


if __name__ == "__main__":
    sys.exit(main())

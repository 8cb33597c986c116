"""The inverse Ising problem without MCMC: kakusan's nMF, TAP, SM, PLM, MPF against ConIII on the same data.

For each known model (J*, h*) and sample size M, every method learns (J, h) from the same ±1 samples and
we report ‖J − J*‖_F / ‖J*‖_F, ‖h − h*‖ / ‖h*‖ and wall time, in one table:

* SK N = 16 (field_std 0.3) at β = 0.5, 1.0, 1.5 with M = 10³, 10⁴, 10⁵ exact samples
  (``kakusan.boltzmann.exact.exact_sample``); there the exact maximum-likelihood estimate is the ceiling:
  ``solve_exact`` (L-BFGS on exact statistics) and ``kakusan.learn.fit_boltzmann`` (η = 1/L steps).
* SK N = 64 (β = 1, M = 10⁵) and a 2-D ±J Edwards–Anderson 8 × 8 lattice (β = 0.5, M = 3·10⁴), field_std 0.3,
  samples from a heat-bath sampler (``kakusan.mcmc.HeatBath`` when importable, else the vectorised sweep below);
  SK N = 128 with our methods only (ConIII's pseudo-likelihood would hold 13 GB of per-site observables).

ConIII 3.0.1 runs in its own venv (``benchmarks/.peer-venv-coniii``, see ``results_exact.md``) as a
subprocess, one thread, on the same samples. Its conventions, checked here on every run:

* ``Pseudo`` (Aurell–Ekeberg per-site PLM, then (J + Jᵀ)/2) and ``MCH`` return ``concat(h, J[i<j])`` for
  p(s) ∝ exp(Σ h s + Σ_{i<j} J s s), s ∈ {−1,1}: kakusan's J, h exactly (no ½, no sign). ``Pseudo``
  agrees with our ``plm`` asymmetric variant to the solvers' tolerance (the "max |J − ours|" notes).
* ``MCH`` (Monte Carlo histogram: Metropolis samples of 1000 states, reweighted) runs with the usage guide's
  schedule (maxiter 40, η = maxdλ = e^(−i/5)). ConIII 3.0.1's MCH fails with current numba (its sampler makes
  int8 states, its numba ``calc_e`` takes int64), so the benchmark passes an ``mch_approximation`` that casts.
  Its sampling runs in multiprocessing workers, so its CPU column counts only the parent process.
* ``MPF`` fits in the {0,1} basis and converts back with ``ising_convert_params(..., '11')`` to the same
  ±1 convention; it has no gradient (``calc_de`` is None), so L-BFGS-B differences it numerically: one
  objective call per parameter per step, each a Python loop over the distinct data states.
* The mean-field solver ``RegularizedMeanField`` computes ``JmeanField`` in the {0,1} basis and converts
  with ``convert_params(h, squareform(J)*2, '11')``: the extra factor 2 makes its couplings about twice
  the naive mean-field ones (J_01/2 instead of J_01/4), and each trial regularisation samples the model
  by Metropolis, so it takes minutes at N = 16; it runs only with ``--coniii-rmf``. The row
  "ConIII nMF" calls ``mean_field_ising.JmeanField(..., meanFieldPriorLmbda=0)`` directly and converts
  correctly (J_±1 = J_01/4, h_±1 = h_01/2 + Σ_l J_01/4): its couplings equal our nMF to ~1e-14; its
  fields add a linear-response correction, so they differ from our naive h = atanh(m) − Jm.

Times: ours are one call after a warm-up (best of 3 below 1 s); ConIII's are its ``solve()`` alone
(the constructor — numba compilation and per-site observables — is listed separately). Wall and CPU
(process) time are both given: everything runs on one thread, so they agree on an idle machine, and the CPU
time is the steadier measure on a shared one. "×" is ConIII's time over ours for the corresponding method
(nMF, TAP, SM → ConIII nMF; PLM → Pseudo; MPF → MPF; exact ML → MCH). By default ConIII's MPF runs
only at N = 16, β = 1, M = 10³ (about a minute) and MCH only at N = 16, β = 1, M = 10⁴; flags extend them.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_inverse.py            # full table, ~10 min
    .venv/bin/python benchmarks/bench_inverse.py --quick                             # smoke run, ~1 min
    .venv/bin/python benchmarks/bench_inverse.py --coniii-mpf-all --coniii-mch-all --coniii-rmf  # + slow peers
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kakusan.boltzmann import IsingModel, exact, instances  # noqa: E402
from kakusan.learn.base import Stats  # noqa: E402
from kakusan.learn.inverse import solve  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".peer-venv-coniii" / "bin" / "python"

CONIII_SCRIPT = r"""
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
npz, which = sys.argv[1], sys.argv[2].split(",")
x = np.load(npz)["x"].astype(np.int64); n = x.shape[1]; M = len(x)
iu = np.triu_indices(n, 1)

def pseudo():
    from coniii.solvers import Pseudo
    s = Pseudo(x, iprint=False)
    return s.solve

def mpf():
    from coniii.solvers import MPF
    s = MPF(x, iprint=False)
    return s.solve

def rmf():
    from coniii.solvers import RegularizedMeanField
    s = RegularizedMeanField(x, iprint=False, n_cpus=1, rng=np.random.RandomState(0))
    return s.solve

def mch():
    from coniii.solvers import MCH
    from coniii.utils import define_ising_helper_functions
    approx = define_ising_helper_functions()[-1]  # its numba calc_e takes int64 states, the sampler makes int8
    s = MCH(x, sample_size=1000, iprint=False, n_cpus=1, rng=np.random.RandomState(0),
            mch_approximation=lambda samples, dlamda: approx(samples.astype(np.int64), dlamda))
    def settings(i):  # the usage guide's schedule
        return {"maxdlamda": np.exp(-i / 5.0), "eta": np.exp(-i / 5.0)}
    return lambda: s.solve(maxiter=40, custom_convergence_f=settings)

def nmf():
    from coniii import mean_field_ising as mfi
    def run():
        cooc = mfi.cooccurrence_matrix((x + 1) / 2)  # the data pass is part of the solve, as in ours
        Jm = mfi.JmeanField(cooc, meanFieldPriorLmbda=0.0, numSamples=M)  # 0.5*J_MF off-diagonal, h_MF on it
        J01 = -(Jm + Jm.T); np.fill_diagonal(J01, 0.0)                    # {0,1} couplings = −J_MF
        h01 = -np.diag(Jm)                                                 # {0,1} fields = −h_MF
        return np.concatenate([h01 / 2 + J01.sum(1) / 4, (J01 / 4)[iu]])   # b = (s + 1)/2
    return run

out = {}
for name in which:
    t0 = time.perf_counter()
    try:
        run = {"pseudo": pseudo, "mpf": mpf, "rmf": rmf, "mch": mch, "nmf": nmf}[name]()
        t1, c1 = time.perf_counter(), time.process_time()
        mult = np.asarray(run(), dtype=float)
        t2, c2 = time.perf_counter(), time.process_time()
        out[name] = dict(h=mult[:n].tolist(), J=mult[n:].tolist(), setup_s=t1 - t0, solve_s=t2 - t1, cpu_s=c2 - c1)
    except Exception as e:
        out[name] = dict(error=(type(e).__name__ + ": " + str(e))[:200], seconds=time.perf_counter() - t0)
print(json.dumps(out))
"""

OURS = {  # row label -> (method, options)
    "nMF": ("nmf", {}),
    "TAP": ("tap", {}),
    "SM": ("sm", {}),
    "PLM sym": ("plm", {}),
    "PLM asym": ("plm", {"symmetric": False}),
    "MPF": ("mpf", {}),
}
PEERS = {"ConIII nMF": "nmf", "ConIII RegularizedMeanField": "rmf", "ConIII Pseudo": "pseudo",
         "ConIII MPF": "mpf", "ConIII MCH": "mch"}
COUNTERPART = {"nMF": "ConIII nMF", "TAP": "ConIII nMF", "SM": "ConIII nMF", "PLM sym": "ConIII Pseudo",
               "PLM asym": "ConIII Pseudo", "MPF": "ConIII MPF", "exact ML (L-BFGS)": "ConIII MCH",
               "fit_boltzmann (η = 1/L)": "ConIII MCH"}


@dataclass
class Case:
    """A known model and samples of it."""

    label: str
    truth: IsingModel
    x: torch.Tensor  # (M, N) ±1
    source: str


# ---------------------------------------------------------------- data


def heat_bath_samples(model: IsingModel, n_samples: int, *, n_chains: int, burn_in: int, thin: int,
                      seed: int) -> tuple[torch.Tensor, str]:
    """n_samples states from n_chains heat-bath chains after ``burn_in`` sweeps, one every ``thin`` sweeps."""
    per_chain = n_samples // n_chains
    try:
        from kakusan.mcmc import BUILTIN_OBSERVABLES, HeatBath, diagnostics, random_spins, run_chain
    except ImportError:
        return _torch_heat_bath(model, per_chain, n_chains, burn_in, thin, seed), "vectorised heat-bath sweeps"
    kernel = HeatBath(model)
    state = kernel.init(random_spins(n_chains, model.n_visible, generator=seed))
    trace = run_chain(kernel, state, per_chain * thin, burn_in=burn_in, thin=thin, generator=seed + 1,
                      observables={"x": lambda s: s.x.to(torch.int8), "energy": BUILTIN_OBSERVABLES["energy"]})
    tau = float(diagnostics.estimate(trace["energy"]).tau)
    x = trace["x"].reshape(-1, model.n_visible).to(torch.float64)
    return x, f"kakusan.mcmc.HeatBath, τ_int(E) = {tau:.2f} thinned samples"


def _torch_heat_bath(model: IsingModel, per_chain: int, n_chains: int, burn_in: int, thin: int,
                     seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    J, h = model.couplings().detach(), model.h.detach()
    x = torch.randint(0, 2, (n_chains, len(h)), generator=g).double() * 2 - 1
    kept = []
    for sweep in range(burn_in + per_chain * thin):
        u = torch.rand(n_chains, len(h), generator=g, dtype=torch.float64)
        for k in range(len(h)):
            x[:, k] = (u[:, k] < torch.sigmoid(2 * (x @ J[:, k] + h[k]))).double() * 2 - 1
        if sweep >= burn_in and (sweep - burn_in + 1) % thin == 0:
            kept.append(x.clone())
    return torch.cat(kept)


def sk16_cases(betas, sizes) -> list[Case]:
    cases = []
    for beta in betas:
        truth = instances.sherrington_kirkpatrick(16, beta=beta, field_std=0.3, seed=16)
        x = exact.exact_sample(truth, max(sizes), generator=int(10 * beta))
        cases += [Case(f"SK N=16 β={beta}", truth, x[:m], "exact samples") for m in sizes]
    return cases


def sampled_cases(args) -> list[Case]:
    """SK N = 64 (10⁵ samples), EA 8×8 (3·10⁴, to keep ConIII's run short), SK N = 128 (10⁵; ours only)."""
    specs = [("SK N=64 β=1", instances.sherrington_kirkpatrick(64, beta=1.0, field_std=0.3, seed=64), 100_000),
             ("EA 8×8 ±J β=0.5", instances.edwards_anderson_2d(8, beta=0.5, field_std=0.3, seed=8), 30_000)]
    if not args.quick:
        specs.append(("SK N=128 β=1", instances.sherrington_kirkpatrick(128, beta=1.0, field_std=0.3, seed=128),
                      100_000))
    cases = []
    for i, (label, truth, m) in enumerate(specs):
        m = args.sampled_m or (20_000 if args.quick else m)
        t0 = time.perf_counter()
        x, how = heat_bath_samples(truth, m, n_chains=1000, burn_in=args.burn_in, thin=args.thin, seed=i)
        print(f"  sampled {label}: {len(x)} states in {time.perf_counter() - t0:.1f} s ({how})", flush=True)
        cases.append(Case(label, truth, x, f"{how}; 1000 chains, burn-in {args.burn_in}, thin {args.thin}"))
    return cases


# ---------------------------------------------------------------- the methods


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def timed(fn):
    """(result, wall seconds, CPU seconds) of fn(); the best of 3 calls for sub-second ones."""
    out, t, c = None, float("inf"), float("inf")
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        t, c = min(t, time.perf_counter() - t0), min(c, time.process_time() - c0)
        if t >= 1.0:
            break
    return out, t, c


def run_ours(case: Case, with_exact: bool) -> list[dict]:
    tJ, th = case.truth.couplings().detach().numpy(), case.truth.h.detach().numpy()
    rows = []
    for label, (method, opts) in OURS.items():
        try:
            r, t, c = timed(lambda: solve(case.x, method, **opts))
        except Exception as e:  # e.g. TAP without a root, a singular covariance
            rows.append(dict(method=label, error=str(e)[:80]))
            continue
        note = f"{r.iterations} iterations" if r.iterations else ""
        note += "" if r.converged else f"; not converged ({r.message.strip()})"
        note += f"; {r.message}" if r.converged and method == "tap" and r.message else ""
        rows.append(dict(method=label, errJ=rel(r.J.numpy(), tJ), errh=rel(r.h.numpy(), th), seconds=t, cpu=c,
                         J=r.J.numpy(), note=note.strip("; ")))
    if with_exact:
        r, t, c = timed(lambda: solve(case.x, "exact"))
        rows.append(dict(method="exact ML (L-BFGS)", errJ=rel(r.J.numpy(), tJ), errh=rel(r.h.numpy(), th),
                         seconds=t, cpu=c, note=f"{r.iterations} iterations"))
        rows.append(fit_boltzmann_row(case, tJ, th))
    return rows


def fit_boltzmann_row(case: Case, tJ: np.ndarray, th: np.ndarray, steps: int = 500) -> dict:
    from kakusan.learn import fit_boltzmann

    t0, c0 = time.perf_counter(), time.process_time()
    model, result = fit_boltzmann(Stats.of(case.x), steps=steps, progress=False)
    t, c = time.perf_counter() - t0, time.process_time() - c0
    gap = result.history[-1]["moment_error"]
    return dict(method="fit_boltzmann (η = 1/L)", errJ=rel(model.couplings().detach().numpy(), tJ),
                errh=rel(model.h.detach().numpy(), th), seconds=t, cpu=c, note=f"{steps} steps, moment gap {gap:.1e}")


def run_coniii(case: Case, which: list[str], ours: list[dict]) -> list[dict]:
    if not which:
        return []
    if not PEER_PYTHON.exists():
        return [dict(method="ConIII", error=f"not installed ({PEER_PYTHON.parent.parent} missing)")]
    n = case.truth.n_visible
    tJ, th = case.truth.couplings().detach().numpy(), case.truth.h.detach().numpy()
    env = {**os.environ, **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                              "NUMBA_NUM_THREADS")}}
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        np.savez(npz, x=case.x.numpy().astype(np.int8))
        r = subprocess.run([str(PEER_PYTHON), "-c", CONIII_SCRIPT, str(npz), ",".join(which)],
                           capture_output=True, text=True, env=env, timeout=3600)
    if r.returncode != 0:
        return [dict(method="ConIII", error=(r.stderr.strip().splitlines() or ["?"])[-1][:80])]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    ours_J = {row["method"]: row.get("J") for row in ours}
    rows = []
    iu = np.triu_indices(n, 1)
    for label, key in PEERS.items():
        if key not in out:
            continue
        res = out[key]
        if "error" in res:
            rows.append(dict(method=label, error=res["error"]))
            continue
        J = np.zeros((n, n))
        J[iu] = res["J"]
        J = J + J.T
        row = dict(method=label, errJ=rel(J, tJ), errh=rel(np.array(res["h"]), th), seconds=res["solve_s"],
                   cpu=res["cpu_s"], note=f"constructor {res['setup_s']:.1f} s")
        ref = {"nmf": "nMF", "pseudo": "PLM asym", "mpf": "MPF", "rmf": "nMF"}.get(key)
        if ref and ours_J.get(ref) is not None:
            diff = np.abs(J - ours_J[ref]).max()
            ratio = np.linalg.norm(J) / np.linalg.norm(ours_J[ref])
            row["note"] += f"; ‖J‖/‖J_nMF‖ = {ratio:.2f}" if key == "rmf" else f"; max |J − ours {ref}| = {diff:.1e}"
        rows.append(row)
    return rows


def speedups(rows: list[dict]) -> None:
    by = {r["method"]: r for r in rows}
    for r in rows:
        peer = by.get(COUNTERPART.get(r["method"], ""))
        if peer and "seconds" in peer and "seconds" in r and not r["method"].startswith("ConIII"):
            r["speedup"] = peer["seconds"] / r["seconds"]
            r["speedup_cpu"] = peer["cpu"] / r["cpu"]


# ---------------------------------------------------------------- report


def fmt_time(s: float) -> str:
    return f"{s * 1e3:.2g} ms" if s < 1 else f"{s:.3g} s"


def fmt_ratio(x: float | None) -> str:
    return "—" if x is None else (f"{x:.2g}×" if x < 10 else f"{x:,.0f}×")


def table(results: list[tuple[Case, list[dict]]]) -> str:
    head = "| model | M | method | ‖J−J*‖/‖J*‖ | ‖h−h*‖/‖h*‖ | wall time | CPU time | × ConIII (wall / CPU) | notes |"
    lines = [head, "|" + "---|" * 9]
    for case, rows in results:
        for r in rows:
            cells = [case.label, f"{len(case.x):.0e}".replace("e+0", "e"), r["method"]]
            if "error" in r:
                cells += ["—", "—", "—", "—", "—", "error: " + r["error"]]
            else:
                sp = "—" if "speedup" not in r else f"{fmt_ratio(r['speedup'])} / {fmt_ratio(r['speedup_cpu'])}"
                cells += [f"{r['errJ']:.4f}", f"{r['errh']:.4f}", fmt_time(r["seconds"]), fmt_time(r["cpu"]), sp,
                          r.get("note", "")]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goals(results: list[tuple[Case, list[dict]]]) -> str:
    """The issue's targets, read off the table: PLM and MPF against ConIII, and the mean-field timings."""
    lines = []
    for case, rows in results:
        by = {r["method"]: r for r in rows if "error" not in r}
        where = f"{case.label}, M = {len(case.x):,}"
        for ours, peer in (("PLM sym", "ConIII Pseudo"), ("PLM asym", "ConIII Pseudo"), ("MPF", "ConIII MPF")):
            if ours in by and peer in by:
                a, b = by[ours], by[peer]
                lines.append(f"- {where}: {ours} ‖ΔJ‖/‖J‖ = {a['errJ']:.4f} vs {peer} {b['errJ']:.4f}; "
                             f"{fmt_ratio(b['seconds'] / a['seconds'])} faster (wall), "
                             f"{fmt_ratio(b['cpu'] / a['cpu'])} (CPU)")
    mf = [r["seconds"] for _, rows in results for r in rows
          if r.get("method") in ("nMF", "TAP", "SM") and "seconds" in r]
    if mf:
        lines.append(f"- nMF, TAP and SM: {fmt_time(min(mf))} to {fmt_time(max(mf))} per solve (data pass included)")
    return "\n".join(lines)


def git_sha() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=HERE, capture_output=True, text=True).stdout
        return sha.strip() + (" (uncommitted changes)" if dirty.strip() else "")
    except OSError:
        return "unknown"


def write_report(path: Path, results, args, sources: list[str]) -> None:
    command = " ".join(["OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_inverse.py", *sys.argv[1:]])
    header = (f"# Inverse Ising without MCMC: kakusan vs ConIII\n\n"
              f"Command: `{command}`"
              f"\n\ngit {git_sha()}; {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}; "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}, "
              f"numpy {np.__version__}, python {platform.python_version()}; {torch.get_num_threads()} thread(s); "
              f"ConIII 3.0.1 in its own venv, 1 thread.\n\n")
    data = "Data: " + "; ".join(sources) + ".\n\n"
    notes = __doc__.split("ConIII 3.0.1 runs", 1)[1].split("    OMP_WAIT_POLICY", 1)[0]
    path.write_text(header + data + "Against the goals (ConIII's counterpart on the same data):\n\n" + goals(results)
                    + "\n\n" + table(results) + "\n\nConIII 3.0.1 runs" + notes)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="β = 1 only, M ≤ 10⁴, N = 64 with 2·10⁴ samples")
    p.add_argument("--no-coniii", action="store_true")
    p.add_argument("--coniii-mpf-all", action="store_true",
                   help="ConIII MPF at every β with M = 10³ (~1 min each: numerical gradients), not only β = 1")
    p.add_argument("--coniii-rmf", action="store_true", help="also ConIII RegularizedMeanField (minutes)")
    p.add_argument("--coniii-mch-all", action="store_true", help="ConIII MCH at every β with M = 10⁴, not only β = 1")
    p.add_argument("--sampled-m", type=int, default=None, help="samples for every N ≥ 64 case (default: per case)")
    p.add_argument("--burn-in", type=int, default=1000)
    p.add_argument("--thin", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(HERE / "results_inverse.md"))
    args = p.parse_args()
    return args


def peers_for(case: Case, args) -> list[str]:
    if args.no_coniii:
        return []
    n, m = case.truth.n_visible, len(case.x)
    which = ["nmf"] + (["pseudo"] if n <= 64 else [])
    if n <= 16 and m == 1000 and (args.coniii_mpf_all or "β=1.0" in case.label) and not args.quick:
        which.append("mpf")
    if args.coniii_rmf and n <= 16 and m == 1000 and "β=1.0" in case.label:
        which.append("rmf")
    if n <= 16 and m == 10_000 and (args.coniii_mch_all or "β=1.0" in case.label) and not args.quick:
        which.append("mch")
    return which


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    betas, sizes = ((1.0,), (1000, 10_000)) if args.quick else ((0.5, 1.0, 1.5), (1000, 10_000, 100_000))
    warm = torch.randint(0, 2, (200, 5), generator=torch.Generator().manual_seed(0)).double() * 2 - 1
    for method in ("nmf", "plm", "mpf", "exact"):  # warm-up: imports and first calls
        solve(warm, method)
    print("data ...", flush=True)
    cases = sk16_cases(betas, sizes) + sampled_cases(args)
    results, sources = [], ["SK N = 16: exact samples"] + [f"{c.label}: {c.source}" for c in cases
                                                             if c.source != "exact samples"]
    for case in cases:
        t0 = time.perf_counter()
        rows = run_ours(case, with_exact=case.truth.n_visible <= 20)
        rows += run_coniii(case, peers_for(case, args), rows)
        speedups(rows)
        results.append((case, rows))
        print(f"{case.label} M={len(case.x)}: {time.perf_counter() - t0:.1f} s", flush=True)
        print(table([(case, rows)]).split("\n", 2)[2], flush=True)
    write_report(Path(args.out), results, args, sources)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Exact enumeration of an Ising model: states per second for log Z and all moments ⟨x_k⟩, ⟨x_k x_l⟩.

Compares, on the same SK model (β = 1, random fields) at each N:

* kakusan ``exact_stats`` (three-block contraction, three float64 GEMMs) and ``log_z`` alone;
* a plain NumPy baseline: blocked enumeration of all 2^N states, E = −½ xᵀJx − hᵀx per chunk,
  running log-sum-exp shift, moments as Xᵀ(w ⊙ X);
* ConIII 3.0.1's exact ``Enumerate`` equations (``coniii.ising_eqn.ising_eqn_N_sym``, the
  generated code its ``Enumerate`` solver evaluates) for N ≤ 12, run in its own venv
  (``benchmarks/.peer-venv-coniii``; see ``benchmarks/results_exact.md`` for how to install it).

ConIII's convention is p(s) ∝ exp(Σ_i H_i s_i + Σ_{i<j} J_ij s_i s_j) over s ∈ {−1,1}^N with
parameters ``concat(H, J[i<j] in itertools.combinations order)``, which is ours with H = h and
J_ij = J_kl (E = −Σ_{k<l} J_kl x_k x_l − hᵀx), no factor ½; its output is ``concat(⟨s_i⟩,
⟨s_i s_j⟩_{i<j})``. The benchmark checks that all three agree on every moment.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_exact.py            # full table (~2 min)
    .venv/bin/python benchmarks/bench_exact.py --sizes 12 16 --threads 1 --quick   # smoke run
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
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from kakusan.boltzmann import exact, instances  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".peer-venv-coniii"
PEER_CACHE = PEER_VENV / "eqn"  # generated ising_eqn_N_sym.py files live here

CONIII_SCRIPT = r"""
import importlib.util, json, subprocess, sys, time
from pathlib import Path
import numpy as np
cache, npz, repeats = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
f = np.load(npz); J, h = f["J"], f["h"]; n = len(h)
name = f"ising_eqn_{n}_sym"
path = cache / "ising_eqn" / f"{name}.py"
t0 = time.perf_counter()
if not path.exists():  # ConIII writes ./ising_eqn/ising_eqn_N_sym.py
    subprocess.run([sys.executable, "-m", "coniii.enumerate", str(n), "1"], cwd=cache, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
t_gen = time.perf_counter() - t0
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location(f"coniii.ising_eqn.{name}", path)
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
t_import = time.perf_counter() - t0
iu = np.triu_indices(n, 1)  # row-major i < j: the order of itertools.combinations
params = np.concatenate([h, J[iu]])
out = mod.calc_observables(params)
times = []
for _ in range(repeats):
    t0 = time.perf_counter(); mod.calc_observables(params); times.append(time.perf_counter() - t0)
corr = np.eye(n); corr[iu] = out[n:]; corr.T[iu] = out[n:]
print(json.dumps(dict(seconds=min(times), generate_s=t_gen, import_s=t_import,
                      mean=out[:n].tolist(), corr=corr.tolist())))
"""


def numpy_baseline(J: np.ndarray, h: np.ndarray, chunk: int = 1 << 15) -> tuple[float, np.ndarray, np.ndarray]:
    """Straightforward blocked enumeration: log Z, ⟨x⟩, ⟨x xᵀ⟩ in float64 NumPy."""
    n = len(h)
    shift, z = -np.inf, 0.0
    m, c = np.zeros(n), np.zeros((n, n))
    bits = np.arange(n)
    for start in range(0, 2**n, chunk):
        idx = np.arange(start, min(start + chunk, 2**n))
        X = (2 * ((idx[:, None] >> bits) & 1) - 1).astype(np.float64)
        logw = 0.5 * np.einsum("bi,bi->b", X @ J, X) + X @ h
        top = logw.max()
        if top > shift:
            scale = np.exp(shift - top)
            z, m, c, shift = z * scale, m * scale, c * scale, top
        w = np.exp(logw - shift)
        z += w.sum()
        m += X.T @ w
        c += X.T @ (w[:, None] * X)
    return shift + np.log(z), m / z, c / z


def best_time(fn, min_total: float = 0.3, max_reps: int = 50) -> float:
    """Best of repeated calls after one warm-up, repeating until ``min_total`` seconds pass."""
    fn()
    times, t_end = [], time.perf_counter() + min_total
    while len(times) < max_reps and (not times or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run_coniii(J: np.ndarray, h: np.ndarray, threads: int, repeats: int) -> dict | str:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        return f"not installed ({PEER_VENV} missing)"
    PEER_CACHE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "model.npz"
        np.savez(npz, J=J, h=h)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
               "MKL_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads)}
        r = subprocess.run([str(python), "-c", CONIII_SCRIPT, str(PEER_CACHE), str(npz), str(repeats)],
                           capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        return "failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_size(n: int, threads: int, args) -> dict:
    model = instances.sherrington_kirkpatrick(n, beta=1.0, field_std=0.3, seed=n)
    J, h = model.J.detach().numpy(), model.h.detach().numpy()
    torch.set_num_threads(threads)
    row = dict(n=n, threads=threads, states=2**n)
    st = exact.exact_stats(model)
    row["ours_s"] = best_time(lambda: exact.exact_stats(model))
    row["ours_logz_s"] = best_time(lambda: exact.log_z(model))
    if n <= args.numpy_max:
        with threadpool_limits(threads):
            t0 = time.perf_counter()
            lz, m, c = numpy_baseline(J, h)
            row["numpy_s"] = time.perf_counter() - t0 if n >= 22 else best_time(lambda: numpy_baseline(J, h))
        row["err_numpy"] = max(abs(lz - st.log_z), np.abs(m - st.mean.numpy()).max(), np.abs(c - st.corr.numpy()).max())
    if n <= args.coniii_max and not args.no_coniii:
        res = run_coniii(J, h, threads, repeats=3 if n >= 12 else 10)
        if isinstance(res, str):
            row["coniii"] = res
        else:
            row["coniii_s"], row["coniii_import_s"] = res["seconds"], res["import_s"]
            row["err_coniii"] = max(np.abs(np.array(res["mean"]) - st.mean.numpy()).max(),
                                    np.abs(np.array(res["corr"]) - st.corr.numpy()).max())
    return row


NOTES = """
What is timed: one call that returns log Z, every ⟨x_k⟩ and every ⟨x_k x_l⟩ (best of repeats after a
warm-up); states/s = 2^N / seconds, "per core" = states/s / threads. "log Z only" is `exact.log_z`.
The NumPy baseline runs once at N ≥ 22 (it takes seconds). ConIII times `calc_observables` of its
generated `ising_eqn_N_sym` module, excluding the one-off generation and import (importing the 6.8 MB
module for N = 12 takes ~7 s and ~1.6 GB of memory; import times are listed under the table). "max abs diff" is the
largest difference from kakusan over log Z (NumPy only), ⟨x_k⟩ and ⟨x_k x_l⟩.

kakusan enumerates N ≤ 12 with one table of all states (a fixed cost of ~0.1 ms per call dominates, so
NumPy's bare loop wins at N ≤ 10) and larger N by the three-block contraction (three float64 GEMMs,
6 flops per state; see `src/kakusan/boltzmann/contraction.py`). The machine is shared with other jobs, so
rates vary by up to ~2× between runs, and the 2-thread rows compete for the same 2 cores.

ConIII convention: p(s) ∝ exp(Σ H_i s_i + Σ_{i<j} J_ij s_i s_j), s ∈ {−1,1}^N, parameters
`concat(H, J[np.triu_indices(N, 1)])`, output `concat(⟨s_i⟩, ⟨s_i s_j⟩_{i<j})`: identical to kakusan's
E = −½ xᵀJx − hᵀx with H = h and the same J (no factor ½, no sign change); the agreement column checks it.
ConIII 3.0.1 builds only against numpy<2, scipy 1.11 and numba<0.61 and reads CONDA_PREFIX, so it lives
in its own venv (git-ignored):

    python3 -m venv benchmarks/.peer-venv-coniii
    benchmarks/.peer-venv-coniii/bin/pip install "numpy<2" "scipy==1.11.4" "numba<0.61" multiprocess dill \\
        joblib mpmath setuptools wheel
    CONDA_PREFIX=/usr benchmarks/.peer-venv-coniii/bin/pip install --no-build-isolation coniii==3.0.1
"""


def fmt_rate(states: int, seconds: float | None) -> str:
    return "—" if seconds is None else f"{states / seconds:.3g}"


def ratio(theirs: float | None, ours: float) -> str:
    if theirs is None:
        return "—"
    x = theirs / ours
    return f"{x:.2g}×" if x < 10 else f"{x:,.0f}×"


def table(rows: list[dict]) -> str:
    head = ("| N | threads | kakusan stats (states/s) | per core | kakusan log Z only | NumPy baseline | "
            "ConIII Enumerate | × NumPy | × ConIII | max abs diff (NumPy / ConIII) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        s = r["states"]
        ratio_np = ratio(r.get("numpy_s"), r["ours_s"])
        ratio_c = ratio(r.get("coniii_s"), r["ours_s"])
        coniii = fmt_rate(s, r.get("coniii_s")) if "coniii_s" in r else r.get("coniii", "—")
        errs = " / ".join(f"{r[k]:.1e}" if k in r else "—" for k in ("err_numpy", "err_coniii"))
        lines.append(
            f"| {r['n']} | {r['threads']} | {fmt_rate(s, r['ours_s'])} | {s / r['ours_s'] / r['threads']:.3g} | "
            f"{fmt_rate(s, r['ours_logz_s'])} | {fmt_rate(s, r.get('numpy_s'))} | {coniii} | {ratio_np} | {ratio_c} | "
            f"{errs} |"
        )
    return "\n".join(lines)


def header(args) -> str:
    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=HERE, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"

    sha = git("rev-parse", "--short", "HEAD") + (" (uncommitted changes)" if git("status", "--porcelain") else "")
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.processor())
    return (f"git {sha}; {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; {cpu}, "
            f"{len(os.sched_getaffinity(0))} cores available; torch {torch.__version__}, numpy {np.__version__}, "
            f"python {platform.python_version()}; threads {args.threads}; model SK β = 1, field_std 0.3, seed N")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 10, 12, 16, 20, 22, 24, 26])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--numpy-max", type=int, default=24, help="largest N for the NumPy baseline")
    p.add_argument("--coniii-max", type=int, default=12, help="largest N for ConIII (its code is 2^N lines)")
    p.add_argument("--no-coniii", action="store_true")
    p.add_argument("--out", type=Path, default=HERE / "results_exact.md")
    args = p.parse_args(argv)
    rows = []
    for t in args.threads:
        for n in args.sizes:
            rows.append(bench_size(n, t, args))
            r = rows[-1]
            print(f"N={n:2d} threads={t}: kakusan {fmt_rate(r['states'], r['ours_s'])} states/s, "
                  f"NumPy {fmt_rate(r['states'], r.get('numpy_s'))}, ConIII "
                  f"{fmt_rate(r['states'], r.get('coniii_s')) if 'coniii_s' in r else r.get('coniii', '—')}",
                  file=sys.stderr, flush=True)
    imports = ", ".join(f"N = {r['n']}: {r['coniii_import_s']:.1f} s" for r in rows
                        if "coniii_import_s" in r and r["threads"] == args.threads[0])
    text = f"{header(args)}\n\n{table(rows)}\n" + (f"\nConIII one-off import of the generated module: {imports}.\n"
                                                    if imports else "")
    print(text)
    args.out.write_text("# Exact enumeration: states per second for log Z + all moments\n\n"
                        "Command: `OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_exact.py`\n\n"
                        + text + NOTES)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

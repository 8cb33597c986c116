"""MCMC sweeps: spin updates per CPU-second of kakusan's kernels against reference kernels written here.

Cases (both at q(x) ∝ exp(−E(x)), β folded into the couplings as in ``boltzmann.instances``):

* ``sk-heatbath``: heat bath, sequential sweeps, dense Sherrington–Kirkpatrick glass, N = 64, β = 1,
  256 chains;
* ``ising2d-metropolis``: Metropolis, checkerboard sweeps, 2-D Ising ferromagnet L = 64 (N = 4096,
  periodic) at Onsager's β_c, 128 chains;
* a scan of kakusan's numba rate over the number of chains (16 to 1024) for both.

Kernels:

* ``kakusan numba f64`` / ``f32``: ``HeatBath`` / ``Metropolis`` with ``backend="numba"``;
* ``kakusan torch f64``: the same kernels with ``backend="torch"`` (the GPU path, here on one CPU thread);
* ``ref numpy loop``: a plain NumPy loop over spins, vectorised over chains;
* ``ref numpy roll`` (lattice only): the usual NumPy checkerboard, a whole sublattice per step via ``np.roll``;
* ``ref numba naive``: a straightforward numba kernel — loop over chains and spins, the field as a
  dot product with the coupling row (or the 4 neighbours), ``math.exp``, ``np.random.random()``.

Rate = N · n_chains · sweeps / CPU seconds (``time.process_time``, one thread), best of ``--repeats``
after a warm-up sweep (which also compiles numba). That the kernels sample the right distribution
is the test suite's job (tests/mcmc/test_mcmc_statistical.py), not this script's.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_mcmc.py            # ~2 min
    .venv/bin/python benchmarks/bench_mcmc.py --quick                              # smoke run
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from kakusan.boltzmann import instances  # noqa: E402
from kakusan.mcmc import HeatBath, Metropolis, random_spins  # noqa: E402

HERE = Path(__file__).resolve().parent
BETA_C = 0.5 * math.log(1 + math.sqrt(2))


# ---------------------------------------------------------------- reference kernels


def numpy_heat_bath(x, J, h, rng):
    """One sequential heat-bath sweep, NumPy, vectorised over chains: x (C, N) updated in place."""
    for k in range(x.shape[1]):
        p_up = 1.0 / (1.0 + np.exp(-2.0 * (x @ J[k] + h[k])))
        x[:, k] = np.where(rng.random(x.shape[0]) < p_up, 1.0, -1.0)


def numpy_metropolis_sites(x, J, h, rng):
    """One sequential Metropolis sweep, NumPy, vectorised over chains (dense J row per spin)."""
    for k in range(x.shape[1]):
        de = 2.0 * x[:, k] * (x @ J[k] + h[k])
        flip = rng.random(x.shape[0]) < np.exp(-np.maximum(de, 0.0))
        x[:, k] = np.where(flip, -x[:, k], x[:, k])


def numpy_metropolis_roll(s, coupling, rng, mask):
    """One checkerboard Metropolis sweep of a periodic L × L ferromagnet, s (C, L, L), with np.roll."""
    for m in mask:
        f = coupling * (np.roll(s, 1, 1) + np.roll(s, -1, 1) + np.roll(s, 1, 2) + np.roll(s, -1, 2))
        de = 2.0 * s * f
        flip = m & (rng.random(s.shape) < np.exp(-np.maximum(de, 0.0)))
        s[flip] = -s[flip]


@numba.njit(cache=True)
def _seed(seed):
    np.random.seed(seed)


@numba.njit(cache=True)
def naive_heat_bath(x, J, h):
    """Heat bath the way one writes it first: per chain, per spin, field by dot product."""
    n_chains, n = x.shape
    for c in range(n_chains):
        for k in range(n):
            f = h[k]
            for l in range(n):
                f += J[k, l] * x[c, l]
            p_up = 1.0 / (1.0 + math.exp(-2.0 * f))
            x[c, k] = 1.0 if np.random.random() < p_up else -1.0


@numba.njit(cache=True)
def naive_metropolis_lattice(x, coupling, side):
    """Checkerboard Metropolis on a periodic L × L ferromagnet, per chain, per site, 4 neighbours."""
    n_chains = x.shape[0]
    for c in range(n_chains):
        for colour in range(2):
            for r in range(side):
                for q in range((r + colour) % 2, side, 2):
                    k = r * side + q
                    f = coupling * (x[c, r * side + (q + 1) % side] + x[c, r * side + (q - 1) % side]
                                    + x[c, ((r + 1) % side) * side + q] + x[c, ((r - 1) % side) * side + q])
                    de = 2.0 * x[c, k] * f
                    if de <= 0.0 or np.random.random() < math.exp(-de):
                        x[c, k] = -x[c, k]


# ---------------------------------------------------------------- timing


def cpu_seconds(fn, sweeps: int, repeats: int) -> float:
    fn(1)  # warm-up (and numba compilation)
    best = math.inf
    for _ in range(repeats):
        t0 = time.process_time()
        fn(sweeps)
        best = min(best, time.process_time() - t0)
    return best


def kakusan_runner(kernel_cls, model, n_chains, order, backend, dtype):
    """run(sweeps) for a kakusan kernel on n_chains chains started at random."""
    kernel = kernel_cls(model, order=order, backend=backend, dtype=dtype)
    state = kernel.init(random_spins(n_chains, model.n_visible, generator=0, dtype=dtype))
    g = torch.Generator().manual_seed(1)

    def run(sweeps):
        nonlocal state
        for _ in range(sweeps):
            state, _ = kernel.step(state, g)

    return run


def sk_cases(n_chains: int, quick: bool):
    """The dense SK case: name -> (run(sweeps), sweeps per timing)."""
    model = instances.sherrington_kirkpatrick(64, beta=1.0, seed=0)
    J, h = model.couplings().detach().numpy(), model.h.detach().numpy()
    rng = np.random.default_rng(0)
    x_np = np.where(rng.random((n_chains, 64)) < 0.5, 1.0, -1.0)
    x_nb = x_np.copy()
    cases = {}
    for backend, dtype, label in (("numba", torch.float64, "kakusan numba f64"), ("numba", torch.float32,
                                  "kakusan numba f32"), ("torch", torch.float64, "kakusan torch f64")):
        cases[label] = (kakusan_runner(HeatBath, model, n_chains, "sequential", backend, dtype),
                        20 if backend == "torch" else 2000)
    cases["ref numpy loop"] = (lambda s: [numpy_heat_bath(x_np, J, h, rng) for _ in range(s)], 50)
    _seed(0)
    cases["ref numba naive"] = (lambda s: [naive_heat_bath(x_nb, J, h) for _ in range(s)], 100)
    return model, cases


def lattice_cases(side: int, n_chains: int, quick: bool):
    """The 2-D ferromagnet case: name -> (run(sweeps), sweeps per timing)."""
    model = instances.ferromagnet_2d(side, beta=BETA_C)
    n = side * side
    rng = np.random.default_rng(0)
    x_loop = np.where(rng.random((n_chains, n)) < 0.5, 1.0, -1.0)
    x_roll = x_loop.reshape(n_chains, side, side).copy()
    x_nb = x_loop.copy()
    J, h = model.couplings().detach().numpy(), model.h.detach().numpy()
    r, q = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    mask = [((r + q) % 2 == c)[None] for c in (0, 1)]
    cases = {}
    for backend, dtype, label in (("numba", torch.float64, "kakusan numba f64"), ("numba", torch.float32,
                                  "kakusan numba f32"), ("torch", torch.float64, "kakusan torch f64")):
        cases[label] = (kakusan_runner(Metropolis, model, n_chains, "checkerboard", backend, dtype),
                        10 if backend == "torch" else 100)
    if not quick:  # the loop over 4096 spins is slow: a few sweeps, J dense as a user would have it
        cases["ref numpy loop"] = (lambda s: [numpy_metropolis_sites(x_loop, J, h, rng) for _ in range(s)], 1)
    cases["ref numpy roll"] = (lambda s: [numpy_metropolis_roll(x_roll, BETA_C, rng, mask) for _ in range(s)], 10)
    _seed(0)
    cases["ref numba naive"] = (lambda s: [naive_metropolis_lattice(x_nb, BETA_C, side) for _ in range(s)], 10)
    return model, cases


def run_case(name: str, model, cases: dict, n_chains: int, repeats: int, quick: bool) -> list[str]:
    rates = {}
    for label, (run, sweeps) in cases.items():
        sweeps = max(1, sweeps // 10) if quick else sweeps
        rates[label] = model.n_visible * n_chains * sweeps / cpu_seconds(run, sweeps, repeats)
        print(f"  {name} | {label}: {rates[label]:.3g} updates/CPU-s", flush=True)
    refs = {k: v for k, v in rates.items() if k.startswith("ref")}
    best = max(refs.values())
    out = []
    for label, rate in rates.items():
        ratios = [f"{rate / refs[k]:.2g}×" if k in refs else "—" for k in ("ref numpy loop", "ref numba naive")]
        out.append(f"| {name} | {label} | {rate:.3g} | {rate / best:.2g}× | {' | '.join(ratios)} |")
    return out


def chains_scan(repeats: int, quick: bool) -> list[str]:
    """kakusan numba rates against the number of chains (the SIMD loops run over chains)."""
    out = ["", "| case | dtype | " + " | ".join(f"{c} chains" for c in CHAIN_SCAN) + " |",
           "|---|---|" + "---|" * len(CHAIN_SCAN)]
    for name, cls, model, order in (("sk-heatbath N=64", HeatBath, instances.sherrington_kirkpatrick(64, seed=0),
                                     "sequential"),
                                    ("ising2d-metropolis L=64", Metropolis, instances.ferromagnet_2d(64, beta=BETA_C),
                                     "checkerboard")):
        for dtype in (torch.float64, torch.float32):
            cells = []
            for c in CHAIN_SCAN:
                run = kakusan_runner(cls, model, c, order, "numba", dtype)
                sweeps = max(1, (300_000 if quick else 3_000_000) // (c * model.n_visible))
                cells.append(f"{model.n_visible * c * sweeps / cpu_seconds(run, sweeps, repeats):.3g}")
            out.append(f"| {name} | {str(dtype).replace('torch.', '')} | " + " | ".join(cells) + " |")
    return out


CHAIN_SCAN = (16, 64, 128, 256, 1024)


def header(args) -> str:
    """Git SHA, date, CPU, versions and threads, on one line."""
    git = lambda *a: subprocess.run(["git", *a], cwd=HERE, capture_output=True, text=True).stdout.strip()  # noqa: E731
    try:
        sha, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain")
    except OSError:
        sha, dirty = "unknown", ""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return (f"git {sha}{' (uncommitted changes)' if dirty else ''}; {now}; {cpu}, "
            f"{len(os.sched_getaffinity(0))} cores available; torch {torch.__version__}, numba {numba.__version__}, "
            f"numpy {np.__version__}, python {platform.python_version()}; torch threads {torch.get_num_threads()}, "
            f"numba single-threaded; repeats {args.repeats}{' (quick)' if args.quick else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tenth of the sweeps, no 4096-spin NumPy loop")
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--chains", type=int, default=128, help="chains in the lattice case")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [header(args), "",
             "| case | kernel | spin updates / CPU-s | × best reference | × numpy loop | × numba naive |",
             "|---|---|---|---|---|---|"]
    model, cases = sk_cases(256, args.quick)
    lines += run_case("sk-heatbath N=64, 256 chains", model, cases, 256, args.repeats, args.quick)
    model, cases = lattice_cases(args.side, args.chains, args.quick)
    lines += run_case(f"ising2d-metropolis L={args.side}, {args.chains} chains", model, cases, args.chains,
                      args.repeats, args.quick)
    lines += chains_scan(args.repeats, args.quick)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""RBM benchmarks: time per epoch of a 784-500 RBM on MNIST (kakusan vs scikit-learn, rbms, learnergy), exact log Z, AIS.

Per-epoch timing, alternating the contestants so that all see the same machine load:

* kakusan: ``BernoulliRBM(784, 500)`` trained by ``fit_rbm`` with PCD-1 (100 persistent chains), batch 100,
  plain SGD lr 0.05 (no momentum, no weight decay: scikit-learn has neither), no evaluations, no progress
  bar — the full ``kakusan.train.fit`` loop (batching, finiteness checks, optimizer step);
* scikit-learn: ``sklearn.neural_network.BernoulliRBM(n_components=500, batch_size=100, learning_rate=0.05,
  n_iter=1)`` — also PCD-1 with 100 persistent chains, in-place NumPy updates — on the same float32 bits;
* rbms 0.6.0 (PCD-1, 100 chains, plain SGD) and learnergy 2.0.2 (CD-1: it has no persistent chains), timed
  inside their own venv by ``benchmarks/peer_rbm.py epoch`` (install recipe there), batch 100, lr 0.05.

All run on ``--rows`` rows (default all 60,000) of MNIST binarised stochastically with seed 0;
times are scaled to one 60,000-row epoch. CPU time (process_time) is reported beside wall time
because the machine is shared. Also timed: exact log Z of a 784-20 RBM (two-block enumeration), and
AIS of the 784-500 RBM per 1,000 inverse temperatures with 100 runs.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_rbm.py                 # ~5 min
    .venv/bin/python benchmarks/bench_rbm.py --rows 6000 --repeats 1 --threads 1     # smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from kakusan.data import flatten, load, stochastic_binarise  # noqa: E402
from kakusan.rbm import BernoulliRBM, exact  # noqa: E402
from kakusan.rbm.ais import ais, default_betas  # noqa: E402
from kakusan.rbm.fit import RBMTrainConfig, fit_rbm  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".peer-venv-rbm" / "bin" / "python"  # rbms and learnergy; recipe in peer_rbm.py


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def kakusan_epoch(x: torch.Tensor, model: BernoulliRBM) -> None:
    config = RBMTrainConfig(method="pcd", epochs=1, batch_size=100, lr=0.05, momentum=0.0, weight_decay=0.0,
                            n_chains=100, eval_every=-1, progress=False, log_every=10_000)
    fit_rbm(model, x, config)


def sklearn_epoch(x: np.ndarray) -> None:
    from sklearn.neural_network import BernoulliRBM as SkRBM

    SkRBM(n_components=500, batch_size=100, learning_rate=0.05, n_iter=1, random_state=0).fit(x)


def peer_epoch(lib: str, path: Path, threads: int) -> tuple[float, float] | None:
    """(wall, CPU) seconds of one epoch of ``lib`` (rbms or learnergy) timed inside its venv; None if absent."""
    if not PEER_PYTHON.exists():
        return None
    proc = subprocess.run([str(PEER_PYTHON), str(HERE / "peer_rbm.py"), "epoch", "--lib", lib, "--train", str(path),
                           "--threads", str(threads)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
                               "MKL_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"})
    if proc.returncode != 0:
        print(f"({lib} failed: {proc.stderr.strip().splitlines()[-1:]})")
        return None
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return r["wall_s"], r["cpu_s"]


def bench_epochs(x: torch.Tensor, threads: int, repeats: int, peers: list[str]) -> dict:
    torch.set_num_threads(threads)
    scale = 60000 / len(x)
    xn = x.numpy()
    model = BernoulliRBM(784, 500, seed=0).init_from_data(x)
    rows: dict[str, list[tuple[float, float]]] = {"kakusan": [], "sklearn": [], **{p: [] for p in peers}}
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(threads):
        path = Path(tmp) / "x.npy"
        np.save(path, xn)
        kakusan_epoch(x[:1000], model)  # warm-up (imports, allocator)
        sklearn_epoch(xn[:1000])
        for _ in range(repeats):
            rows["kakusan"].append(timed(lambda: kakusan_epoch(x, model)))
            rows["sklearn"].append(timed(lambda: sklearn_epoch(xn)))
            for peer in peers:
                t = peer_epoch(peer, path, threads)
                if t is not None:
                    rows[peer].append(t)
    out = {"threads": threads, "rows": len(x), "repeats": repeats}
    for name, times in rows.items():
        if not times:
            continue
        out[f"{name}_wall_s"] = min(t[0] for t in times) * scale
        out[f"{name}_wall_median_s"] = statistics.median(t[0] for t in times) * scale
        out[f"{name}_cpu_s"] = min(t[1] for t in times) * scale
    out["speedup_wall"] = out["sklearn_wall_s"] / out["kakusan_wall_s"]
    out["speedup_cpu"] = out["sklearn_cpu_s"] / out["kakusan_cpu_s"]
    return out


def bench_exact(n_hidden: int = 20) -> dict:
    torch.set_num_threads(1)
    model = BernoulliRBM(784, n_hidden, weight_std=0.5, seed=5)
    with torch.no_grad():
        model.b.normal_(-1, 2, generator=torch.Generator().manual_seed(0))
    wall, cpu = timed(lambda: exact.log_z(model))
    return {"exact_n_hidden": n_hidden, "exact_wall_s": wall, "exact_cpu_s": cpu}


def bench_ais(x: torch.Tensor, n_betas: int = 1000) -> dict:
    torch.set_num_threads(1)
    model = BernoulliRBM(784, 500, seed=0).init_from_data(x)
    betas = default_betas(max(1, n_betas * 500 // 14500), max(1, n_betas * 4000 // 14500),
                          n_betas - max(1, n_betas * 500 // 14500) - max(1, n_betas * 4000 // 14500))
    wall, cpu = timed(lambda: ais(model, x, n_runs=100, betas=betas, generator=0, progress=False))
    return {"ais_betas": len(betas), "ais_wall_s_per_1000": wall * 1000 / len(betas),
            "ais_cpu_s_per_1000": cpu * 1000 / len(betas)}


def environment() -> dict:
    import sklearn

    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=HERE).stdout)
    except OSError:  # pragma: no cover
        sha, dirty = "?", False
    return {"git": sha + (" (uncommitted changes)" if dirty else ""), "date": datetime.datetime.now(
        datetime.timezone.utc).isoformat(timespec="seconds"), "cpu": platform.processor() or platform.machine(),
            "cores": len(os.sched_getaffinity(0)), "torch": torch.__version__, "numpy": np.__version__,
            "sklearn": sklearn.__version__, "python": platform.python_version(),
            "load_average": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=60000, help="MNIST rows per timed epoch (scaled to 60,000)")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats; the fastest is reported")
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="thread counts (this container gives one process about one core's worth of CPU)")
    p.add_argument("--peers", nargs="*", default=["rbms", "learnergy"],
                   help="peers timed through benchmarks/peer_rbm.py in their venv (skipped if it is missing)")
    p.add_argument("--no-extras", action="store_true", help="skip the exact log Z and AIS timings")
    p.add_argument("--json", default=None, help="also write the records to this JSON file")
    args = p.parse_args(argv)
    x = stochastic_binarise(flatten(load("mnist").x_train), generator=0)[: args.rows].contiguous()
    env = environment()
    print(f"git {env['git']}; {env['date']}; {env['cpu']}, {env['cores']} cores; torch {env['torch']}, numpy "
          f"{env['numpy']}, scikit-learn {env['sklearn']}, python {env['python']}; load average {env['load_average']:.1f}")
    names = ["kakusan", "sklearn", *args.peers]
    print("\n| threads | " + " | ".join(f"{n} s/epoch (wall, CPU)" for n in names) + " | kakusan speed-up (wall) |")
    print("|---|" + "---|" * (len(names) + 1))
    records = []
    for threads in args.threads:
        r = bench_epochs(x, threads, args.repeats, args.peers)
        records.append(r)
        cells = [f"{r[n + '_wall_s']:.2f}, {r[n + '_cpu_s']:.2f}" if n + "_wall_s" in r else "—" for n in names]
        ratios = ", ".join(f"{r[n + '_wall_s'] / r['kakusan_wall_s']:.2f}× {n}" for n in names[1:] if n + "_wall_s" in r)
        print(f"| {threads} | " + " | ".join(cells) + f" | {ratios} |", flush=True)
    if not args.no_extras:
        e = bench_exact()
        a = bench_ais(x[:10000])
        records.append({**e, **a})
        print(f"\nexact log Z, 784-{e['exact_n_hidden']} RBM (1 thread): {e['exact_wall_s']:.2f} s wall, "
              f"{e['exact_cpu_s']:.2f} CPU-s")
        print(f"AIS, 784-500 RBM, 100 runs (1 thread): {a['ais_wall_s_per_1000']:.2f} s wall, "
              f"{a['ais_cpu_s_per_1000']:.2f} CPU-s per 1,000 inverse temperatures")
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "records": records}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

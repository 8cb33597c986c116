"""Time to a test log-likelihood: a 784-500 RBM on MNIST, kakusan against scikit-learn, rbms and learnergy.

Every contestant trains on the same 60,000 binarised MNIST rows (``kakusan.data.recipes.prepare``: stochastic
binarisation, seed 0) on one thread; every model it produces is scored the same way, by kakusan's forward
AIS (Salakhutdinov–Murray schedule, 14,500 βs, base-rate start, ``--ais-runs`` runs) on the 10,000 test
rows. The clock counts training only (no data loading, snapshots or evaluation).

* kakusan: one run per epoch budget in ``--budgets`` (a user picks the budget; the learning rate decays
  linearly to 0 over it), centered PCD-1, 100 persistent chains, batch 100, lr ``--lr``, momentum
  ``--momentum``, weight decay 1e-4 — ``fit_rbm``, the code behind ``kakusan rbm train``;
* scikit-learn's ``BernoulliRBM`` (PCD-1, 100 persistent chains, batch 100, constant learning rate 0.05
  and, in a second run, 0.1 (its default); it has no momentum, decay or schedule): its ``fit`` loop
  unrolled (same batches, same random stream, checked bit for bit against ``fit``), one snapshot per epoch;
* ``rbms`` 0.6.0 (PCD-1 with its default centered gradient) and learnergy 2.0.2 (CD-1: it has no
  persistent chains), through ``benchmarks/peer_rbm.py`` in their own venv (``benchmarks/.peer-venv-rbm``),
  one snapshot per epoch, batch 100, 100 chains, lr 0.05.

Snapshots are scored every epoch up to 10, then every 5th, and then every epoch between the last one
below a target and the first one above it, so each time-to-target is exact to one epoch.

The table gives, per contestant, the training seconds at which the test log-likelihood first reached
each target (−100 and −90 nats by default), and the ratio to kakusan.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_rbm_race.py            # ~40 min
    .venv/bin/python benchmarks/bench_rbm_race.py --budgets 1 --peer-epochs 1 --ais-runs 8 --rows 6000  # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from kakusan.data.recipes import DataSpec, prepare  # noqa: E402
from kakusan.rbm import BernoulliRBM  # noqa: E402
from kakusan.rbm.ais import ais  # noqa: E402
from kakusan.rbm.fit import RBMTrainConfig, fit_rbm  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".peer-venv-rbm" / "bin" / "python"
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "OMP_WAIT_POLICY": "PASSIVE"}


def plain_rbm(W: np.ndarray, a: np.ndarray, b: np.ndarray) -> BernoulliRBM:
    """A kakusan RBM with E = −vᵀWh − aᵀv − bᵀh from arrays (W: visible × hidden)."""
    model = BernoulliRBM(*W.shape)
    with torch.no_grad():
        model.W.copy_(torch.as_tensor(W))
        model.b.copy_(torch.as_tensor(a))
        model.c.copy_(torch.as_tensor(b))
    return model


def score(model: BernoulliRBM, train: torch.Tensor, test: torch.Tensor, runs: int, seed: int = 0) -> dict:
    """Test log-likelihood (nats/example) with forward AIS's log Ẑ and its standard error."""
    model = model.uncentered()
    res = ais(model, train, n_runs=runs, generator=seed, progress=False)
    with torch.no_grad():
        mean_neg_f = float(-model.to_float64().free_energy(test).mean())
    return {"test_log_likelihood": mean_neg_f - res.log_z, "stderr": res.log_z_stderr, "log_z": res.log_z}


def kakusan_runs(train, budgets, lr, momentum) -> list[dict]:
    points = []
    for epochs in budgets:
        model = BernoulliRBM(784, 500, centered=True, seed=0).init_from_data(train)
        config = RBMTrainConfig(method="pcd", epochs=epochs, batch_size=100, lr=lr, momentum=momentum,
                                lr_schedule="linear", weight_decay=1e-4, n_chains=100, eval_every=-1,
                                progress=False, log_every=10_000, seed=0)
        w, c = time.perf_counter(), time.process_time()
        fit_rbm(model, train, config)
        points.append({"epochs": epochs, "train_wall_s": time.perf_counter() - w,
                       "train_cpu_s": time.process_time() - c, "model": model})
        print(f"  kakusan {epochs} epochs: {points[-1]['train_wall_s']:.1f} s", flush=True)
    return points


def sklearn_run(train, epochs, lr) -> list[dict]:
    """scikit-learn's own ``fit`` loop, unrolled so that a snapshot can be taken after every epoch.

    ``fit`` with ``n_iter=0`` initialises exactly as ``fit`` does; then the same ``_fit`` calls on the same
    batch slices with the same random stream follow (``partial_fit`` would not do: it converts to float64
    and re-validates every batch). :func:`check_sklearn_unrolled` checks the result is ``fit``'s, bit for bit.
    """
    x, points = train.numpy(), []
    w, c = time.perf_counter(), time.process_time()
    rbm, rng, slices = _sklearn_start(x, lr)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    for epoch in range(1, epochs + 1):
        w, c = time.perf_counter(), time.process_time()
        for s in slices:
            rbm._fit(x[s], rng)
        wall, cpu = wall + time.perf_counter() - w, cpu + time.process_time() - c
        points.append({"epochs": epoch, "train_wall_s": wall, "train_cpu_s": cpu,
                       "model": plain_rbm(rbm.components_.T.astype(np.float64), rbm.intercept_visible_,
                                          rbm.intercept_hidden_)})
    print(f"  scikit-learn (lr {lr:g}) {epochs} epochs: {wall:.1f} s", flush=True)
    return points


def _sklearn_start(x: np.ndarray, lr: float, seed: int = 0):
    from sklearn.neural_network import BernoulliRBM as SkRBM
    from sklearn.utils import gen_even_slices

    rbm = SkRBM(n_components=500, batch_size=100, learning_rate=lr, n_iter=0, random_state=seed).fit(x)
    rng = np.random.RandomState(seed)
    rng.normal(0, 0.01, (500, x.shape[1]))  # the draw fit() made for the initial weights
    n_batches = math.ceil(len(x) / 100)
    return rbm, rng, list(gen_even_slices(n_batches * 100, n_batches, n_samples=len(x)))


def check_sklearn_unrolled(x: np.ndarray) -> None:
    """The unrolled loop equals ``BernoulliRBM(n_iter=2).fit`` exactly (raises otherwise)."""
    from sklearn.neural_network import BernoulliRBM as SkRBM

    want = SkRBM(n_components=500, batch_size=100, learning_rate=0.05, n_iter=2, random_state=0).fit(x)
    rbm, rng, slices = _sklearn_start(x, 0.05)
    for _ in range(2):
        for s in slices:
            rbm._fit(x[s], rng)
    assert np.array_equal(rbm.components_, want.components_), "unrolled scikit-learn loop differs from fit()"


def peer_run(lib, train, epochs, lr) -> list[dict]:
    if not PEER_PYTHON.exists():
        print(f"  {lib}: {PEER_PYTHON} not found, skipped (recipe: benchmarks/peer_rbm.py)")
        return []
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "train.npy", Path(tmp) / "snapshots"
        np.save(data, train.numpy())
        proc = subprocess.run([str(PEER_PYTHON), str(HERE / "peer_rbm.py"), "train", "--lib", lib, "--train",
                               str(data), "--epochs", str(epochs), "--hidden", "500", "--batch-size", "100", "--lr",
                               str(lr), "--chains", "100", "--k", "1", "--seed", "0", "--threads", "1", "--out",
                               str(out), *(["--rbms-centered"] if lib == "rbms" else [])],
                              capture_output=True, text=True, env=ONE_THREAD)
        if proc.returncode != 0:
            print(f"  {lib} failed, skipped: {proc.stderr.strip().splitlines()[-1:]}")
            return []
        points = []
        for f in sorted(out.glob("epoch_*.npz")):
            z = np.load(f)
            points.append({"epochs": int(f.stem.split("_")[1]), "train_wall_s": float(z["train_wall_s"]),
                           "train_cpu_s": float(z["train_cpu_s"]), "model": plain_rbm(z["W"], z["a"], z["b"])})
    print(f"  {lib} {epochs} epochs: {points[-1]['train_wall_s'] if points else float('nan'):.1f} s", flush=True)
    return points


def coarse(epochs: int) -> bool:
    """Snapshots scored first: every epoch up to 10, then every 5th (the gaps are filled where a target is crossed)."""
    return epochs <= 10 or epochs % 5 == 0


def score_points(name, points, train, test, runs, targets) -> list[dict]:
    """Score the coarse snapshots, then those between the last one below a target and the first above it."""
    def do(pt):
        pt.update(score(pt["model"], train, test, runs))
        print(f"  {name} {pt['epochs']:>3} epochs {pt['train_wall_s']:7.1f} s: test LL "
              f"{pt['test_log_likelihood']:8.2f} ± {pt['stderr']:.2f}", flush=True)

    for pt in points:
        if coarse(pt["epochs"]) or name == "kakusan":
            do(pt)
    for target in targets:
        done = [i for i, pt in enumerate(points) if "test_log_likelihood" in pt]
        hit = next((i for i in done if points[i]["test_log_likelihood"] >= target), None)
        if hit is None:
            continue
        below = max((i for i in done if i < hit), default=-1)
        for i in range(below + 1, hit):
            do(points[i])
            if points[i]["test_log_likelihood"] >= target:
                break
    return [{k: v for k, v in pt.items() if k != "model"} for pt in points if "test_log_likelihood" in pt]


def first_reaching(points: list[dict], target: float) -> dict | None:
    for p in sorted(points, key=lambda p: p["train_wall_s"]):
        if p["test_log_likelihood"] >= target:
            return p
    return None


def race(args) -> dict[str, list[dict]]:
    """Train every contestant (timed), then score its snapshots (untimed)."""
    data = prepare(DataSpec("mnist"))
    train, test = data.train[: args.rows].contiguous(), data.test
    print(f"training on {len(train)} rows, scoring on {len(test)} test rows; {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    with threadpool_limits(1):  # one thread for every BLAS (OpenBLAS threads spin when the other core is busy)
        kakusan_runs(train[:1000], [1], args.lr, args.momentum)  # warm-up: imports, compiled kernels, allocator
        if "sklearn" in args.peers:
            check_sklearn_unrolled(train[:1000].numpy())
            sklearn_run(train[:1000], 1, args.peer_lr)
        contestants = {"kakusan": kakusan_runs(train, args.budgets, args.lr, args.momentum)}
        for peer in args.peers:
            if peer == "sklearn":
                for lr in args.sklearn_lrs:
                    contestants[f"scikit-learn (lr {lr:g})"] = sklearn_run(train, args.peer_epochs, lr)
            else:
                contestants[peer] = peer_run(peer, train, args.peer_epochs, args.peer_lr)
    torch.set_num_threads(args.score_threads)  # scoring is not timed
    for name, points in contestants.items():
        scored = score_points(name, points, train, test, args.ais_runs, args.targets)
        contestants[name] = scored
    return contestants


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budgets", type=int, nargs="+", default=[2, 3, 4, 6, 8, 12, 16, 24, 32],
                   help="kakusan epoch budgets (one run each)")
    p.add_argument("--lr", type=float, default=0.1, help="kakusan's initial learning rate")
    p.add_argument("--momentum", type=float, default=0.5, help="kakusan's momentum")
    p.add_argument("--peer-epochs", type=int, default=40, help="epochs each peer trains (one snapshot each)")
    p.add_argument("--peer-lr", type=float, default=0.05, help="rbms' and learnergy's learning rate")
    p.add_argument("--peers", nargs="*", default=["sklearn", "rbms", "learnergy"])
    p.add_argument("--sklearn-lrs", type=float, nargs="+", default=[0.05, 0.1],
                   help="scikit-learn runs once per learning rate (it has no schedule)")
    p.add_argument("--targets", type=float, nargs="+", default=[-100.0, -90.0])
    p.add_argument("--ais-runs", type=int, default=32, help="AIS runs per score (14,500 βs each)")
    p.add_argument("--score-threads", type=int, default=2, help="threads for the (untimed) AIS scoring")
    p.add_argument("--rows", type=int, default=60000, help="training rows (smoke runs: fewer)")
    p.add_argument("--json", default=None, help="also write the points to this JSON file")
    p.add_argument("--from-json", default=None, help="report (table, figure) a race saved by --json; no training")
    p.add_argument("--figure", default=None, help="also plot test log-likelihood against training time (PNG)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.from_json:  # re-report a finished race
        contestants = json.loads(Path(args.from_json).read_text())
    else:
        contestants = race(args)
    print("\n| contestant | " + " | ".join(f"time to {t:g} nats (s)" for t in args.targets)
          + " | best test LL (time) |")
    print("|---|" + "---|" * len(args.targets) + "---|")
    reach = {name: [first_reaching(pts, t) for t in args.targets] for name, pts in contestants.items() if pts}
    for name, hits in reach.items():
        best = max(contestants[name], key=lambda q: q["test_log_likelihood"])
        cells = []
        for i, hit in enumerate(hits):
            ours = reach.get("kakusan", [None] * len(hits))[i]
            if hit is None:
                cells.append("not reached")
            elif name != "kakusan" and ours is not None:
                cells.append(f"{hit['train_wall_s']:.1f} ({hit['train_wall_s'] / ours['train_wall_s']:.1f}× kakusan)")
            else:
                cells.append(f"{hit['train_wall_s']:.1f}")
        print(f"| {name} | " + " | ".join(cells) + f" | {best['test_log_likelihood']:.2f} "
              f"({best['train_wall_s']:.0f} s) |")
    if args.json:
        Path(args.json).write_text(json.dumps(contestants, indent=2) + "\n")
    if args.figure:
        from kakusan.report.figures import line_plot

        ordered = {n: sorted(pts, key=lambda q: q["train_wall_s"]) for n, pts in contestants.items() if pts}
        line_plot({n: [q["test_log_likelihood"] for q in pts] for n, pts in ordered.items()}, args.figure,
                  xs={n: [q["train_wall_s"] for q in pts] for n, pts in ordered.items()}, logx=True, marker="o",
                  xlabel="training time (s, one core)", ylabel="test log-likelihood (nats)",
                  title="784-500 RBM on MNIST", hlines={f"{t:g} nats": t for t in args.targets})
    return 0


if __name__ == "__main__":
    sys.exit(main())

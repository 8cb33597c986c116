"""AIS quality: how close forward and reverse AIS land to the exact log Z of trained 784-16 and 784-20 RBMs.

Both RBMs are trained on all of MNIST (stochastic binarisation, seed 0) with PCD-1 for ``--epochs``
epochs; their exact log Z comes from :func:`kakusan.rbm.exact.log_z` (two-block enumeration). Each AIS
variant then runs ``--repeats`` times with 100 runs each, and the table gives the mean error
log Ẑ − log Z, the largest |error| over the repeats, and the mean reported standard error:

* kakusan, Salakhutdinov–Murray schedule (500 + 4,000 + 10,000 = 14,500 βs), base-rate start
  (the default of :func:`kakusan.rbm.ais.ais`), forward; and reverse from 100 exact model samples
  (:func:`kakusan.rbm.exact.sample`), so both bounds are genuine;
* kakusan with a linear 1,000-β schedule, base-rate and uniform (W = 0, biases 0) starts;
* the ``rbms`` package's own AIS (``compute_partition_function_ais``: linear schedule, start from the
  model with W = 0 and its own visible biases; it has no default sizes, so 1,000 βs and 100 chains), when its venv (``benchmarks/.peer-venv-rbm``, see
  ``benchmarks/peer_rbm.py``) is there.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_ais.py            # ~3 min
    .venv/bin/python benchmarks/bench_ais.py --hidden 16 --repeats 1 --epochs 1  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kakusan.data import flatten, load, stochastic_binarise  # noqa: E402
from kakusan.rbm import BernoulliRBM, exact  # noqa: E402
from kakusan.rbm.ais import ais, default_betas, reverse_ais  # noqa: E402
from kakusan.rbm.fit import RBMTrainConfig, fit_rbm  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".peer-venv-rbm" / "bin" / "python"
F64 = torch.float64


def trained_rbm(x: torch.Tensor, n_hidden: int, epochs: int) -> BernoulliRBM:
    model = BernoulliRBM(784, n_hidden, seed=0).init_from_data(x)
    config = RBMTrainConfig(method="pcd", epochs=epochs, batch_size=100, lr=0.05, momentum=0.5, weight_decay=1e-4,
                            n_chains=100, eval_every=-1, progress=False, seed=0)
    fit_rbm(model, x, config)
    return model


def kakusan_variants(model: BernoulliRBM, x: torch.Tensor, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """{variant: [(log Ẑ, stderr) per repeat]}."""
    sm, linear = default_betas(), torch.linspace(0.0, 1.0, 1000, dtype=F64)
    out: dict[str, list[tuple[float, float]]] = {}
    for r in range(repeats):
        runs = {
            "kakusan forward, S–M 14,500 β, base rate": lambda: ais(model, x, betas=sm, generator=r),
            "kakusan reverse, S–M 14,500 β, base rate, exact starts": lambda: reverse_ais(
                model, exact.sample(model, 100, generator=1000 + r), x, betas=sm, generator=r),
            "kakusan forward, linear 1,000 β, base rate": lambda: ais(model, x, betas=linear, generator=r),
            "kakusan reverse, linear 1,000 β, base rate, exact starts": lambda: reverse_ais(
                model, exact.sample(model, 100, generator=1000 + r), x, betas=linear, generator=r),
            "kakusan forward, linear 1,000 β, uniform start": lambda: ais(model, None, betas=linear, generator=r),
        }
        for name, run in runs.items():
            res = run()
            out.setdefault(name, []).append((res.log_z, res.log_z_stderr))
    return out


def rbms_variant(model: BernoulliRBM, x: torch.Tensor, repeats: int, no_peers: bool = False) -> dict[str, list[tuple[float, float]]]:
    """rbms' own AIS with its defaults, through its venv; {} when that venv is missing."""
    if no_peers or not PEER_PYTHON.exists():
        print(f"(rbms: {PEER_PYTHON} not found, skipped; see benchmarks/peer_rbm.py for the recipe)")
        return {}
    out: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        m, d = Path(tmp) / "model.npz", Path(tmp) / "data.npy"
        plain = model.uncentered()  # rbms knows only E = −vᵀWh − aᵀv − bᵀh
        np.savez(m, W=plain.W.detach().double().numpy(), a=plain.b.detach().double().numpy(),
                 b=plain.c.detach().double().numpy())
        np.save(d, x.numpy())
        info = {}
        for r in range(repeats):
            proc = subprocess.run([str(PEER_PYTHON), str(HERE / "peer_rbm.py"), "ais", "--model", str(m), "--data",
                                   str(d), "--seed", str(r), "--betas", "1000", "--chains", "100"],
                                  capture_output=True, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
            if proc.returncode != 0:
                print(f"(rbms AIS failed, skipped: {proc.stderr.strip().splitlines()[-1:]})")
                return {}
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            out.append((info["log_z"], float("nan")))
    return {f"rbms {info.get('version', '')} AIS, linear {info.get('n_betas', '?')} β, "
            f"{info.get('n_chains', '?')} chains, W = 0 start": out}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[16, 20])
    p.add_argument("--epochs", type=int, default=5, help="PCD-1 epochs of the RBMs under test")
    p.add_argument("--repeats", type=int, default=5, help="independent AIS estimates per variant")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-peers", action="store_true", help="skip the rbms package")
    p.add_argument("--json", default=None, help="also write the records to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    x = stochastic_binarise(flatten(load("mnist").x_train), generator=0)
    records = []
    print("| RBM | AIS | mean error (nats) | max abs error | mean stderr |")
    print("|---|---|---|---|---|")
    for n_hidden in args.hidden:
        model = trained_rbm(x, n_hidden, args.epochs)
        t = time.process_time()
        truth = exact.log_z(model)
        exact_cpu = time.process_time() - t
        results = {**kakusan_variants(model, x, args.repeats), **rbms_variant(model, x, args.repeats, args.no_peers)}
        for name, estimates in results.items():
            err = np.array([e[0] - truth for e in estimates])
            se = np.array([e[1] for e in estimates])
            records.append({"n_hidden": n_hidden, "variant": name, "exact_log_z": truth, "errors": err.tolist(),
                            "stderrs": se.tolist(), "exact_cpu_s": exact_cpu})
            print(f"| 784-{n_hidden} (log Z = {truth:.2f}) | {name} | {err.mean():+.3f} | {np.abs(err).max():.3f} | "
                  f"{np.nanmean(se) if np.isfinite(se).any() else float('nan'):.3f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

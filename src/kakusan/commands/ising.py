"""``kakusan ising exact|sample|fit``: the fully visible Boltzmann machine from the command line.

A model file is an ``.npz`` with ``J`` (N, N, symmetric, zero diagonal) and ``h`` (N,);
E(x) = −½ xᵀJx − hᵀx on x ∈ {−1,+1}^N.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kakusan.commands import add_run_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ising", help="Ising / Boltzmann machine: exact answers, sampling, learning")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))

    ex = sub.add_parser("exact", help="log Z, magnetisation and correlations by exact enumeration (N ≤ 32)")
    ex.add_argument("model", help="model .npz with J (N, N) and h (N,)")
    ex.add_argument("--json", action="store_true", help="print one JSON object: log_z, magnetization, correlation")
    add_run_options(ex, seed=False)

    sa = sub.add_parser("sample", help="draw samples of a model")
    sa.add_argument("model", help="model .npz with J (N, N) and h (N,)")
    sa.add_argument("-n", "--n-samples", type=int, default=1000, help="number of samples")
    sa.add_argument("--out", required=True, help="write the (n, N) array of ±1 here (.npy; must not exist)")
    sa.add_argument("--method", choices=("exact",), default="exact", help="exact: independent draws by enumeration")
    add_run_options(sa)

    fi = sub.add_parser("fit", help="learn J and h from ±1 or 0/1 data by minimising KL(p0||q)")
    fi.add_argument("data", help="(M, N) array of ±1 or 0/1 (.npy)")
    fi.add_argument("--out", required=True, help="write the learned model here (.npz; must not exist)")
    fi.add_argument("--method", choices=("exact",), default="exact", help="where model statistics come from")
    fi.add_argument("--optimizer", choices=("backtracking", "surrogate", "momentum", "adam", "sgd"),
                    default="backtracking", help="surrogate: η = 1/L with L = N(N+1)/2; backtracking: adaptive L")
    fi.add_argument("--steps", type=int, default=500)
    fi.add_argument("--lr", type=float, default=None, help="learning rate (momentum, adam, sgd)")
    fi.add_argument("--l1", type=float, default=0.0, help="L1 penalty on couplings (surrogate optimizers)")
    fi.add_argument("--l2", type=float, default=0.0, help="L2 penalty (l2/2) Σ J_kl²")
    fi.add_argument("--truth", default=None, help="true model .npz: adds a learned-vs-true couplings figure")
    add_run_options(fi)
    p.set_defaults(run=run, ising_parser=p)


def run(args: argparse.Namespace) -> int:
    actions = {"exact": run_exact, "sample": run_sample, "fit": run_fit}
    if args.action not in actions:
        args.ising_parser.print_help()
        return 2
    return actions[args.action](args)


def _fresh_output(path: str, suffix: str) -> Path:
    from kakusan.errors import KakusanError

    out = Path(path)
    if out.suffix != suffix:
        raise KakusanError(f"--out {out} must end in {suffix}")
    if out.exists():
        raise KakusanError(f"{out} already exists: choose another --out (kakusan never overwrites your files)")
    if not out.parent.exists():
        raise KakusanError(f"folder {out.parent} does not exist: create it or choose another --out")
    return out


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
    import numpy as np

    from kakusan.boltzmann import load_ising_npz
    from kakusan.errors import KakusanError
    from kakusan.report.run_dir import RunDir, atomic_write_bytes
    from kakusan.runtime import make_generator

    out = _fresh_output(args.out, ".npy")
    if args.n_samples < 1:
        raise KakusanError(f"-n must be a positive number of samples, got {args.n_samples}")
    model = load_ising_npz(args.model)
    _check_enumerable(model.n_visible)
    x = model.sample(args.n_samples, make_generator(args.seed))
    run = RunDir.create("ising-sample", args.run_dir, args.runs_root)
    run.write_config({"command": "ising sample", "class": "IsingModel", "model": str(args.model),
                      "method": args.method, "n_samples": args.n_samples, "seed": args.seed, "out": str(out)},
                     argv=args.argv)
    import io

    buf = io.BytesIO()
    np.save(buf, x.numpy().astype(np.int8))
    atomic_write_bytes(out, buf.getvalue())
    run.log_metrics(mean_magnetization=float(x.mean()), n_samples=args.n_samples)
    print(f"wrote {out} ({args.n_samples} x {model.n_visible} spins); run: {run.path}")
    return 0


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

    from kakusan.boltzmann import exact_stats, kl_divergence, load_ising_npz, save_ising_npz
    from kakusan.divergence import empirical_distribution, entropy
    from kakusan.errors import KakusanError
    from kakusan.learn import fit_boltzmann
    from kakusan.learn.base import Stats
    from kakusan.report import figures
    from kakusan.report.checkpoint import save_model
    from kakusan.report.run_dir import RunDir

    out = _fresh_output(args.out, ".npz")
    data = load_spin_data(args.data)
    _check_enumerable(data.shape[1])
    truth = load_ising_npz(args.truth) if args.truth else None
    if truth is not None and truth.n_visible != data.shape[1]:
        raise KakusanError(f"--truth has N = {truth.n_visible} spins but the data have {data.shape[1]} columns")
    if args.steps < 1:
        raise KakusanError(f"--steps must be positive, got {args.steps}")
    run = RunDir.create("ising-fit", args.run_dir, args.runs_root)
    run.write_config({"command": "ising fit", "class": "IsingModel", "n_visible": data.shape[1],
                      **{k: getattr(args, k) for k in ("data", "method", "optimizer", "steps", "lr", "l1", "l2",
                                                       "seed", "truth")}}, argv=args.argv)
    model, result = fit_boltzmann(data, method=args.method, optimizer=args.optimizer, steps=args.steps, lr=args.lr,
                                  l1=args.l1, l2=args.l2, seed=args.seed, run=run)
    save_ising_npz(out, model)
    save_model(run.checkpoints, model)
    kl = kl_divergence(model, data)
    h0 = float(entropy(empirical_distribution(data).probs))  # KL(p0||q) = NLL − H(p0)
    figures.line_plot({"KL(p0||q)": [max(r["nll"] - h0, 1e-16) for r in result.history]}, run.figures / "kl.png",
                      ylabel="nats", logy=True, title="exact KL per step")
    s, d = exact_stats(model), Stats.of(data)
    iu = torch.triu_indices(data.shape[1], data.shape[1], 1)
    figures.scatter_plot(d.corr[iu[0], iu[1]], s.corr[iu[0], iu[1]], run.figures / "moments.png",
                         xlabel="data <x_k x_l>", ylabel="model <x_k x_l>", title="moment match")
    summary = {"kl": kl, "mean_log_likelihood": -result.history[-1]["nll"] if result.history else None}
    if truth is not None:
        tJ, lJ = truth.couplings().detach()[iu[0], iu[1]], model.couplings().detach()[iu[0], iu[1]]
        figures.scatter_plot(tJ, lJ, run.figures / "couplings.png", xlabel="true J", ylabel="learned J")
        summary["relative_error_J"] = float((lJ - tJ).norm() / tJ.norm().clamp_min(1e-300))
    run.write_json("summary.json", summary)
    print(f"KL(p0||q) = {kl:.6g} nats; wrote {out}; run: {run.path}")
    return 0

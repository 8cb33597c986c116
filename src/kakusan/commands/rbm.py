"""``kakusan rbm train|sample|evaluate``: restricted Boltzmann machines from the command line.

``train`` writes a run directory (config.json, metrics.jsonl, checkpoints/, figures/); ``sample``
and ``evaluate`` rebuild the model from that directory's checkpoint (no unpickling) and the data
from its recorded recipe, and write their own run directories.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kakusan.commands import add_run_options

EXACT_START_LIMIT = 20  # reverse AIS starts from exact model samples up to this many hidden units
MODEL_CLASSES = {"bernoulli": "BernoulliRBM", "spin": "SpinRBM", "gaussian": "GaussianRBM"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("rbm", help="restricted Boltzmann machines: train (CD, PCD, PT), sample, evaluate")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))

    tr = sub.add_parser("train", help="train an RBM by the free-energy contrast (CD-k, PCD-k or PT-PCD)")
    tr.add_argument("--data", default="digits", help="digits, mnist, fashion-mnist, or a .npy/.npz/IDX file")
    tr.add_argument("--hidden", type=int, default=500, help="number of hidden units")
    tr.add_argument("--units", choices=tuple(MODEL_CLASSES), default="bernoulli",
                    help="visible units: 0/1, ±1 spins, or Gaussian (data standardised per unit)")
    tr.add_argument("--binarise", choices=("stochastic", "threshold"), default="stochastic",
                    help="stochastic: b ~ Bernoulli(pixel) with --data-seed; threshold: pixel > 0.5")
    tr.add_argument("--data-seed", type=int, default=0, help="seed of the stochastic binarisation")
    tr.add_argument("--method", choices=("pcd", "cd", "pt"), default="pcd", help="negative phase")
    tr.add_argument("--epochs", type=int, default=10)
    tr.add_argument("--batch-size", type=int, default=100)
    tr.add_argument("--lr", type=float, default=0.05, help="learning rate")
    tr.add_argument("--momentum", type=float, default=0.5, help="SGD (heavy-ball) momentum")
    tr.add_argument("--schedule", choices=("constant", "linear", "cosine"), default="constant",
                    help="learning-rate schedule over the updates")
    tr.add_argument("--weight-decay", type=float, default=1e-4, help="L2 penalty (λ/2)‖W‖²")
    tr.add_argument("--k", type=int, default=1, help="Gibbs sweeps per update")
    tr.add_argument("--chains", type=int, default=None, help="persistent chains / PT systems (default: batch size)")
    tr.add_argument("--temperatures", type=int, default=10, help="PT: replicas per system")
    tr.add_argument("--beta-min", type=float, default=0.5, help="PT: hottest inverse temperature")
    tr.add_argument("--centered", action="store_true", help="centering offsets (Bernoulli units)")
    tr.add_argument("--learn-variance", action="store_true", help="Gaussian units: learn σ² per unit")
    tr.add_argument("--eval-every", type=int, default=0, help="updates between evaluations (0: each epoch)")
    tr.add_argument("--checkpoint-every", type=int, default=0, help="updates between checkpoints (0: at the end)")
    tr.add_argument("--samples", type=int, default=64, help="samples drawn for the figure at the end (0: none)")
    tr.add_argument("--sample-steps", type=int, default=1000, help="Gibbs sweeps for those samples")
    add_run_options(tr)
    tr.set_defaults(resume=False)
    tr.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")

    sa = sub.add_parser("sample", help="draw samples from a trained RBM by long block-Gibbs chains")
    sa.add_argument("source", metavar="RUN_DIR", help="run directory written by `kakusan rbm train`")
    sa.add_argument("-n", "--n-samples", type=int, default=64)
    sa.add_argument("--steps", type=int, default=1000, help="Gibbs sweeps per chain")
    add_run_options(sa)

    ev = sub.add_parser("evaluate", help="log Z (exact or AIS) and the test log-likelihood of a trained RBM")
    ev.add_argument("source", metavar="RUN_DIR", help="run directory written by `kakusan rbm train`")
    how = ev.add_mutually_exclusive_group()
    how.add_argument("--exact", action="store_true", help="exact log Z by enumerating the smaller layer (≤ ~25)")
    how.add_argument("--ais", action="store_true", help="annealed importance sampling, forward and reverse")
    ev.add_argument("--runs", type=int, default=100, help="AIS runs")
    ev.add_argument("--betas", type=int, default=14500, help="AIS inverse temperatures (S&M-style schedule)")
    ev.add_argument("--reverse-steps", type=int, default=1000,
                    help="Gibbs sweeps from test rows that give reverse AIS its start samples (0: no reverse AIS); "
                         f"up to {EXACT_START_LIMIT} hidden units the starts are exact model samples instead")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    add_run_options(ev)
    p.set_defaults(run=run, rbm_parser=p)


def run(args: argparse.Namespace) -> int:
    actions = {"train": run_train, "sample": run_sample, "evaluate": run_evaluate}
    if args.action not in actions:
        args.rbm_parser.print_help()
        return 2
    return actions[args.action](args)


# ---------------------------------------------------------------- train


def _check_positive(**values) -> None:
    from kakusan.errors import KakusanError

    for name, value in values.items():
        if value is not None and value <= 0:
            raise KakusanError(f"--{name.replace('_', '-')} must be positive, got {value}")


def build_model(units: str, n_visible: int, n_hidden: int, *, centered: bool, learn_variance: bool, seed: int):
    """The RBM class for ``units`` with its options."""
    from kakusan.errors import KakusanError
    from kakusan.rbm import BernoulliRBM, GaussianRBM, SpinRBM

    if centered and units != "bernoulli":
        raise KakusanError("--centered is available for Bernoulli units only")
    if learn_variance and units != "gaussian":
        raise KakusanError("--learn-variance applies to Gaussian units only")
    if units == "bernoulli":
        return BernoulliRBM(n_visible, n_hidden, centered=centered, seed=seed)
    if units == "spin":
        return SpinRBM(n_visible, n_hidden, seed=seed)
    return GaussianRBM(n_visible, n_hidden, learn_variance=learn_variance, seed=seed)


def run_train(args: argparse.Namespace) -> int:
    import dataclasses

    from kakusan.data.recipes import DataSpec, prepare
    from kakusan.rbm.fit import RBMTrainConfig, fit_rbm
    from kakusan.checkpoint import save_model
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import set_threads

    _check_positive(hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, k=args.k,
                    chains=args.chains, temperatures=args.temperatures)
    set_threads()
    if args.resume:
        model, spec, config, run_dir = _resumed(args)
        data = prepare(spec)
    else:
        spec = DataSpec(args.data, args.units, args.binarise, args.data_seed)
        data = prepare(spec)
        config = RBMTrainConfig(method=args.method, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                momentum=args.momentum, lr_schedule=args.schedule, weight_decay=args.weight_decay,
                                k=args.k, n_chains=args.chains, n_temperatures=args.temperatures,
                                beta_min=args.beta_min, eval_every=args.eval_every,
                                checkpoint_every=args.checkpoint_every, seed=args.seed)
        model = build_model(args.units, data.train.shape[1], args.hidden, centered=args.centered,
                            learn_variance=args.learn_variance, seed=args.seed).init_from_data(data.train)
        run_dir = RunDir.create("rbm-train", args.run_dir, args.runs_root)
        run_dir.write_config({"command": "rbm train", "class": type(model).__name__, "model": model.config,
                              "data": dataclasses.asdict(spec), "train": dataclasses.asdict(config),
                              "shape": list(data.shape)}, argv=args.argv)
    result = fit_rbm(model, data.train, config, test=data.test, run=run_dir)
    save_model(run_dir.checkpoints, model, name="model", meta={"step": result.train.steps})
    summary = _train_figures(model, data, result.evaluations, run_dir, config.method, spec.data, args)
    summary.update(steps=result.train.steps, resumed_from=result.train.resumed_from, train_seconds=result.seconds)
    run_dir.write_json("summary.json", summary)
    last = result.evaluations[-1] if result.evaluations else {}
    shown = {k: round(v, 4) for k, v in last.items() if isinstance(v, float) and "likelihood" in k}
    print(f"trained {type(model).__name__}({model.n_visible}, {model.n_hidden}) by {config.method} "
          f"for {result.train.steps} updates in {result.seconds:.1f} s; {shown}; run: {run_dir.path}")
    return 0


def _resumed(args: argparse.Namespace):
    """(model, data spec, train config, run) of the run in --run-dir, rebuilt from its config.json."""
    from kakusan.data.recipes import DataSpec
    from kakusan.errors import KakusanError
    from kakusan.rbm.fit import RBMTrainConfig
    from kakusan.registry import MODELS
    from kakusan.report.run_dir import RunDir

    from kakusan.checkpoint import exists

    if args.run_dir is None or not exists(Path(args.run_dir) / "checkpoints", "last"):
        raise KakusanError("--resume needs --run-dir pointing at a run with a training checkpoint (checkpoints/last)")
    config = json.loads((Path(args.run_dir) / "config.json").read_text())
    model = MODELS[config["class"]](**config["model"])  # parameters come from the checkpoint in fit_rbm
    return model, DataSpec(**config["data"]), RBMTrainConfig(**config["train"]), RunDir(Path(args.run_dir))


def _train_figures(model, data, evaluations: list[dict], run_dir, method: str, name: str, args) -> dict:
    from kakusan.report import rbm as report
    from kakusan.runtime import make_generator

    evaluations = [r for r in run_dir.read_metrics() if r.get("eval")] or evaluations  # all of them, after a resume
    summary: dict = {"final_evaluation": evaluations[-1] if evaluations else None}
    report.likelihood_figure(evaluations, run_dir.figures / "likelihood.png", title=f"{method}, {name}")
    if len(data.shape) >= 2:
        report.filters_figure(model, data.shape, run_dir.figures / "filters.png")
        if args.samples > 0:
            v = model.sample(args.samples, make_generator(args.seed + 7), n_steps=args.sample_steps, mean=True)
            report.samples_figure(report.as_images(model, v, data.shape, data.mean, data.std),
                                  run_dir.figures / "samples.png", data.shape)
    return summary


# ---------------------------------------------------------------- loading a run


def load_run(path: str):
    """(model, config, data) of a run directory written by ``rbm train``; model from its checkpoint."""
    from kakusan.data.recipes import DataSpec, prepare
    from kakusan.errors import CheckpointError
    from kakusan.checkpoint import load_run

    run = Path(path)
    cfg_path = run / "config.json"
    if not cfg_path.exists():
        raise CheckpointError(f"{run} is not a run directory of `kakusan rbm train` (no config.json)")
    config = json.loads(cfg_path.read_text())
    if config.get("command") != "rbm train":
        raise CheckpointError(f"{run} was written by `kakusan {config.get('command')}`, not `kakusan rbm train`")
    model = load_run(run, weights="model")
    return model, config, prepare(DataSpec(**config["data"]))


def run_sample(args: argparse.Namespace) -> int:
    from kakusan.report import rbm as report
    from kakusan.report.run_dir import RunDir, atomic_save_npy
    from kakusan.runtime import make_generator

    _check_positive(n_samples=args.n_samples, steps=args.steps)
    model, config, data = load_run(args.source)
    g = make_generator(args.seed)
    v = model.sample(args.n_samples, g, n_steps=args.steps)
    out = RunDir.create("rbm-sample", args.run_dir, args.runs_root)
    out.write_config({"command": "rbm sample", "source": str(args.source), "class": config["class"],
                      "n_samples": args.n_samples, "steps": args.steps, "seed": args.seed}, argv=args.argv)
    atomic_save_npy(out.path / "samples.npy", v)
    if len(data.shape) >= 2:
        report.samples_figure(report.as_images(model, v, data.shape, data.mean, data.std),
                              out.figures / "samples.png", data.shape)
    print(f"wrote {args.n_samples} samples after {args.steps} Gibbs sweeps; run: {out.path}")
    return 0


# ---------------------------------------------------------------- evaluate


def run_evaluate(args: argparse.Namespace) -> int:
    from kakusan.errors import KakusanError
    from kakusan.rbm.exact import MAX_UNITS
    from kakusan.rbm.fit import exact_size
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import set_threads

    set_threads()
    model, config, data = load_run(args.source)
    test = data.test if data.test is not None else data.train
    use_exact = args.exact or (not args.ais and exact_size(model) <= 20)
    if use_exact and exact_size(model) > MAX_UNITS:
        raise KakusanError(f"exact enumeration of {exact_size(model)} units is impractical: use --ais")
    result = _exact_result(model, test) if use_exact else _ais_result(model, data.train, test, args)
    result["n_test"] = len(test)
    out = RunDir.create("rbm-evaluate", args.run_dir, args.runs_root)
    out.write_config({"command": "rbm evaluate", "source": str(args.source), "method": result["method"],
                      "runs": args.runs, "betas": args.betas, "seed": args.seed}, argv=args.argv)
    out.write_json("evaluation.json", result)
    if args.json:
        print(json.dumps(result))
    else:
        print(_evaluate_text(result, out.path))
    return 0


def _evaluate_text(result: dict, path) -> str:
    """What ``rbm evaluate`` prints: the estimates, what ± means, the calibration status, and any tail warning."""
    if result["method"] == "exact":
        return (f"log Z = {result['log_z']:.4f} (exact, by enumeration); test log-likelihood = "
                f"{result['test_log_likelihood']:.4f} nats; run: {path}")
    lines = [f"log Z = {result['log_z']:.4f} ± {result['log_z_stderr']:.4f} (forward AIS, {result['ais_runs']} runs, "
             f"{result['ais_betas']} β); test log-likelihood = {result['test_log_likelihood']:.4f} nats"]
    if "log_z_reverse" in result:
        lines.append(f"log Z = {result['log_z_reverse']:.4f} ± {result['log_z_reverse_stderr']:.4f} (reverse AIS from "
                     f"{result['reverse_start']} model samples); test log-likelihood = "
                     f"{result['test_log_likelihood_reverse']:.4f} nats")
    lines.append(f"± is {result['stderr_kind']}; {result['bounds']}.")
    lines.append(result["calibration"])
    lines += [f"warning ({d} AIS): {result[k]}" for d, k in (("forward", "ais_warning"), ("reverse", "reverse_warning"))
              if result.get(k)]
    lines.append(f"run: {path}")
    return "\n".join(lines)


def _exact_result(model, test) -> dict:
    from kakusan.rbm.exact import log_z

    lz = log_z(model)
    return {"method": "exact", "log_z": lz, "log_z_stderr": 0.0,
            "test_log_likelihood": float(model.log_prob(test, lz).mean())}


def _ais_result(model, train, test, args) -> dict:
    import torch

    from kakusan.rbm import exact
    from kakusan.rbm.ais import ais, reverse_ais
    from kakusan.runtime import make_generator

    _check_positive(runs=args.runs, betas=args.betas)
    betas = _schedule(args.betas)
    g = make_generator(args.seed)
    fwd = ais(model, train, n_runs=args.runs, betas=betas, generator=g)
    with torch.no_grad():
        mean_neg_f = float(-model.to_float64().free_energy(test).mean())
    result = {"method": "ais", "log_z": fwd.log_z, "log_z_stderr": fwd.log_z_stderr,
              "test_log_likelihood": mean_neg_f - fwd.log_z, "ais_runs": args.runs, "ais_betas": len(betas),
              "ais_ess": fwd.ess, "stderr_kind": STDERR_KIND, "calibration": calibration_status(args.runs, len(betas)),
              "ais_tail": fwd.tail.as_dict() if fwd.tail else None, "ais_warning": fwd.warning,
              "bounds": BOUNDS_NOTE}
    if args.reverse_steps > 0:
        if model.n_hidden <= EXACT_START_LIMIT:  # exact model samples: reverse AIS is a true upper bound
            v0, how = exact.sample(model, args.runs, g), "exact"
        else:
            start = test[torch.randint(0, len(test), (args.runs,), generator=g)]
            v0, how = model.sample(args.runs, g, n_steps=args.reverse_steps, v0=start), "gibbs"
        rev = reverse_ais(model, v0, train, betas=betas, generator=g)
        result.update(log_z_reverse=rev.log_z, log_z_reverse_stderr=rev.log_z_stderr,
                      test_log_likelihood_reverse=mean_neg_f - rev.log_z, reverse_start=how, reverse_ess=rev.ess,
                      reverse_tail=rev.tail.as_dict() if rev.tail else None, reverse_warning=rev.warning)
    return result


STDERR_KIND = ("1 standard error of log Ẑ over the AIS runs (delta method: sd(w) / (√runs · mean w)); "
               "±2 s.e. is the ~95 % interval")
BOUNDS_NOTE = ("forward AIS is low and reverse AIS (exact starts) high only on average: a single estimate of either "
               "can land on the other side of log Z, so the two are not a bracket")


def calibration_status(runs: int, n_betas: int) -> str:
    """The calibration harness's verdict on the delta-method s.e. at these settings (benchmarks/results_calibration.md)."""
    from kakusan.rbm.ais import CALIBRATION

    if (runs, n_betas) == CALIBRATION["settings"]:
        return CALIBRATION["status"]
    return (f"Calibration: not measured at {runs} runs and {n_betas} β (only at the defaults, "
            f"{CALIBRATION['settings'][0]} runs and {CALIBRATION['settings'][1]} β: {CALIBRATION['short']}); "
            "fewer runs or βs give a less reliable error bar — watch the tail warning.")


def _schedule(n: int):
    """About n inverse temperatures in Salakhutdinov & Murray's proportions (500 : 4000 : 10000)."""
    from kakusan.rbm.ais import default_betas

    n = max(n, 3)
    low, mid = max(1, round(n * 500 / 14500)), max(1, round(n * 4000 / 14500))
    return default_betas(low, mid, max(1, n - low - mid))

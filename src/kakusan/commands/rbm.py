"""``kakusan rbm train|sample|evaluate``: restricted Boltzmann machines from the command line.

``train`` writes a run directory (config.json, metrics.jsonl, checkpoints/, figures/); ``sample``
and ``evaluate`` rebuild the model from that directory's checkpoint (no unpickling) and the data
from its recorded recipe, and write their own run directories.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kakusan.commands.args import (
    below_one,
    harden_run_options,
    interval_or_never,
    nonneg_float,
    nonneg_int,
    open_unit,
    or_default,
    positive_float,
    positive_int,
    refuse_unused,
    seed,
)
from kakusan.commands.splits import add_split_options, no_held_out_note
from kakusan.files import dumps_strict

EXACT_START_LIMIT = 20  # reverse AIS starts from exact model samples up to this many hidden units
MODEL_CLASSES = {"bernoulli": "BernoulliRBM", "spin": "SpinRBM", "gaussian": "GaussianRBM"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("rbm", help="restricted Boltzmann machines: train (CD, PCD, PT), sample, evaluate")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))

    tr = sub.add_parser("train", help="train an RBM by the free-energy contrast (CD-k, PCD-k or PT-PCD)")
    tr.add_argument("--data", default="digits", help="digits, mnist, fashion-mnist, or a .npy/.npz/IDX file")
    tr.add_argument("--hidden", type=positive_int, default=500, help="number of hidden units")
    tr.add_argument("--units", choices=tuple(MODEL_CLASSES), default="bernoulli",
                    help="visible units: 0/1, ±1 spins, or Gaussian (data standardised per unit)")
    tr.add_argument("--binarise", choices=("stochastic", "threshold"), default=None,
                    help="bernoulli and spin units: stochastic (default): b ~ Bernoulli(pixel) with --data-seed; "
                         "threshold: pixel > 0.5")
    tr.add_argument("--data-seed", type=seed, default=None, help="seed of the stochastic binarisation (default 0)")
    add_split_options(tr, "chosen with --data-seed")
    tr.add_argument("--method", choices=("pcd", "cd", "pt"), default="pcd", help="negative phase")
    tr.add_argument("--epochs", type=positive_int, default=10)
    tr.add_argument("--batch-size", type=positive_int, default=100)
    tr.add_argument("--lr", type=positive_float, default=0.05, help="learning rate")
    tr.add_argument("--momentum", type=below_one, default=0.5, help="SGD (heavy-ball) momentum, in [0, 1)")
    tr.add_argument("--schedule", choices=("constant", "linear", "cosine"), default="constant",
                    help="learning-rate schedule over the updates")
    tr.add_argument("--weight-decay", type=nonneg_float, default=1e-4, help="L2 penalty (λ/2)‖W‖²")
    tr.add_argument("--k", type=positive_int, default=1, help="Gibbs sweeps per update")
    tr.add_argument("--chains", type=positive_int, default=None,
                    help="pcd, pt: persistent chains / PT systems (default: batch size)")
    tr.add_argument("--temperatures", type=positive_int, default=None, help="pt: replicas per system (default 10)")
    tr.add_argument("--beta-min", type=open_unit, default=None, help="pt: hottest inverse temperature (default 0.5)")
    tr.add_argument("--centered", action="store_true", help="centering offsets (Bernoulli units)")
    tr.add_argument("--learn-variance", action="store_true", help="Gaussian units: learn σ² per unit")
    tr.add_argument("--eval-every", type=interval_or_never, default=0,
                    help="updates between evaluations (0: each epoch; -1: never)")
    tr.add_argument("--checkpoint-every", type=nonneg_int, default=0, help="updates between checkpoints (0: every 60 s and at the end)")
    tr.add_argument("--samples", type=nonneg_int, default=64, help="samples drawn for the figure at the end (0: none)")
    tr.add_argument("--sample-steps", type=positive_int, default=1000, help="Gibbs sweeps for those samples")
    harden_run_options(tr)
    tr.set_defaults(resume=False)
    tr.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")

    sa = sub.add_parser("sample", help="draw samples from a trained RBM by long block-Gibbs chains")
    sa.add_argument("source", metavar="RUN_DIR", help="run directory written by `kakusan rbm train`")
    sa.add_argument("-n", "--n-samples", type=positive_int, default=64)
    sa.add_argument("--steps", type=positive_int, default=1000, help="Gibbs sweeps per chain")
    harden_run_options(sa)

    ev = sub.add_parser("evaluate", help="log Z (exact or AIS) and the test log-likelihood of a trained RBM")
    ev.add_argument("source", metavar="RUN_DIR", help="run directory written by `kakusan rbm train`")
    how = ev.add_mutually_exclusive_group()
    how.add_argument("--exact", action="store_true", help="exact log Z by enumerating the smaller layer (≤ ~25)")
    how.add_argument("--ais", action="store_true", help="annealed importance sampling, forward and reverse")
    ev.add_argument("--runs", type=positive_int, default=None, help="AIS runs (default 100)")
    ev.add_argument("--betas", type=positive_int, default=None,
                    help="AIS inverse temperatures (default 14500; other counts keep S&M's 500 : 4000 : 10000 "
                         "proportions, `kakusan.rbm.ais.scaled_betas`; at least 4)")
    ev.add_argument("--reverse-steps", type=nonneg_int, default=None,
                    help="Gibbs sweeps at β = 1 from the forward runs' last states that give reverse AIS its start "
                         "samples (default 1000; 0: no reverse AIS); up to "
                         f"{EXACT_START_LIMIT} hidden units the starts are exact model samples instead")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    harden_run_options(ev)
    p.set_defaults(run=run, rbm_parser=p)


def run(args: argparse.Namespace) -> int:
    actions = {"train": run_train, "sample": run_sample, "evaluate": run_evaluate}
    if args.action not in actions:
        args.rbm_parser.print_help()
        return 2
    return actions[args.action](args)


# ---------------------------------------------------------------- train


def _check_applicable(args: argparse.Namespace) -> None:
    """A one-line error for an option the chosen units or method do not use (never silently ignored)."""
    if args.method == "cd":
        refuse_unused(args, ("chains",), "to --method cd (its chains start at the data each update)")
    if args.method != "pt":
        refuse_unused(args, ("temperatures", "beta_min"), f"to --method {args.method}, only to --method pt")
    if args.units == "gaussian":
        refuse_unused(args, ("binarise", "data_seed"), "to --units gaussian (its data are standardised, not binarised)")
    elif args.binarise == "threshold":
        refuse_unused(args, ("data_seed",), "to --binarise threshold, only to stochastic binarisation")


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

    set_threads()
    if args.resume:
        model, spec, config, run_dir = _resumed(args)
        data = prepare(spec)
    else:
        _check_applicable(args)
        spec = DataSpec(args.data, args.units, or_default(args.binarise, "stochastic"), or_default(args.data_seed, 0),
                        or_default(args.holdout, 0.0), args.test)
        data = prepare(spec)
        config = RBMTrainConfig(method=args.method, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                momentum=args.momentum, lr_schedule=args.schedule, weight_decay=args.weight_decay,
                                k=args.k, n_chains=args.chains, n_temperatures=or_default(args.temperatures, 10),
                                beta_min=or_default(args.beta_min, 0.5), eval_every=args.eval_every,
                                checkpoint_every=args.checkpoint_every, seed=args.seed)
        model = build_model(args.units, data.train.shape[1], args.hidden, centered=args.centered,
                            learn_variance=args.learn_variance, seed=args.seed).init_from_data(data.train)
        run_dir = RunDir.create("rbm-train", args.run_dir, args.runs_root)
        run_dir.write_config({"command": "rbm train", "class": type(model).__name__, "model": model.config,
                              "data": dataclasses.asdict(spec), "train": dataclasses.asdict(config),
                              "shape": list(data.shape)}, argv=args.argv)
    from kakusan.commands.guard import DivergenceGuard

    guard = DivergenceGuard(model, f"--lr {config.lr:g}")
    with guard.naming_lr():
        result = fit_rbm(model, data.train, config, test=data.test, run=run_dir, callback=guard)
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
    from kakusan.commands import check_resume
    from kakusan.commands.args import config_part, read_run_config

    check_resume(args, may_change={"run_dir", "runs_root", "resume", "device"})  # rbm runs cannot be extended

    config = read_run_config(args.run_dir, "rbm train")
    model = MODELS[config["class"]](**config["model"])  # parameters come from the checkpoint in fit_rbm
    return (model, config_part(config, "data", DataSpec, args.run_dir),
            config_part(config, "train", RBMTrainConfig, args.run_dir), RunDir(Path(args.run_dir)))


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
    from kakusan.checkpoint import load_run
    from kakusan.commands.args import config_part, read_run_config
    from kakusan.data.recipes import DataSpec, prepare

    run = Path(path)
    config = read_run_config(run, "rbm train")
    spec = config_part(config, "data", DataSpec, run)
    model = load_run(run, weights="model")
    return model, config, prepare(spec)


def run_sample(args: argparse.Namespace) -> int:
    from kakusan.report import rbm as report
    from kakusan.report.run_dir import RunDir, atomic_save_npy
    from kakusan.runtime import make_generator

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
    # rows with no test split are the training rows, and are named so: never reported as test metrics
    split, rows = ("test", data.test) if data.test is not None else ("train", data.train)
    use_exact = args.exact or (not args.ais and exact_size(model) <= 20)
    if use_exact and exact_size(model) > MAX_UNITS:
        raise KakusanError(f"exact enumeration of {exact_size(model)} units is impractical: use --ais")
    if use_exact:
        refuse_unused(args, ("runs", "betas", "reverse_steps"),
                      f"to exact evaluation ({'--exact' if args.exact else f'{exact_size(model)} units'}), only to --ais")
        result = _exact_result(model, rows, split)
    else:
        settings = {"runs": or_default(args.runs, 100), "betas": or_default(args.betas, 14500),
                    "reverse_steps": or_default(args.reverse_steps, 1000)}
        result = _ais_result(model, data.train, rows, split, settings, args.seed)
    result.update({"split": split, f"n_{split}": len(rows)})
    if split == "train":
        result["note"] = no_held_out_note(config["data"]["data"], "training-set log-likelihoods")
    out = RunDir.create("rbm-evaluate", args.run_dir, args.runs_root)
    out.write_config({"command": "rbm evaluate", "source": str(args.source), "method": result["method"],
                      "runs": result.get("ais_runs"), "betas": result.get("ais_betas"), "split": split,
                      "seed": args.seed}, argv=args.argv)
    out.write_json("evaluation.json", result)
    if args.json:
        print(dumps_strict(result))
    else:
        print(_evaluate_text(result, out.path))
    return 0


def _evaluate_text(result: dict, path) -> str:
    """What ``rbm evaluate`` prints: the estimates, what ± means, the calibration status, and any tail warning."""
    split = result.get("split", "test")
    ll = f"{split} log-likelihood"
    note = [f"note: {result['note']}"] if result.get("note") else []
    if result["method"] == "exact":
        return "\n".join([f"log Z = {result['log_z']:.4f} (exact, by enumeration); {ll} = "
                          f"{result[f'{split}_log_likelihood']:.4f} nats", *note, f"run: {path}"])
    lines = [f"log Z = {result['log_z']:.4f} ± {result['log_z_stderr']:.4f} (forward AIS, {result['ais_runs']} runs, "
             f"{result['ais_betas']} β); {ll} = {result[f'{split}_log_likelihood']:.4f} nats"]
    if "log_z_reverse" in result:
        starts = {"exact": "exact model samples", "annealed": "the forward runs' last states + Gibbs sweeps"}
        lines.append(f"log Z = {result['log_z_reverse']:.4f} ± {result['log_z_reverse_stderr']:.4f} (reverse AIS from "
                     f"{starts.get(result['reverse_start'], result['reverse_start'])}); {ll} = "
                     f"{result[f'{split}_log_likelihood_reverse']:.4f} nats")
    lines.append(f"± is {result['stderr_kind']}; {result['bounds']}.")
    lines.append(result["calibration"])
    if "log_z_interval" in result:
        (lo, hi), (llo, lhi) = result["log_z_interval"], result[f"{split}_log_likelihood_interval"]
        lines.append(f"interval: log Z in [{lo:.4f}, {hi:.4f}], {ll} in [{llo:.4f}, {lhi:.4f}] nats "
                     f"({result['interval_kind']}). {result['interval_calibration']}")
        if result.get("interval_warning"):
            lines.append(f"warning (interval): {result['interval_warning']}")
    if result.get("reverse_calibration"):
        lines.append(f"warning (reverse AIS): {result['reverse_calibration']}")
    lines += [f"warning ({d} AIS): {result[k]}" for d, k in (("forward", "ais_warning"), ("reverse", "reverse_warning"))
              if result.get(k)]
    lines += note
    lines.append(f"run: {path}")
    return "\n".join(lines)


def _exact_result(model, rows, split: str = "test") -> dict:
    from kakusan.rbm.exact import log_z

    lz = log_z(model)
    return {"method": "exact", "log_z": lz, "log_z_stderr": 0.0,
            f"{split}_log_likelihood": float(model.log_prob(rows, lz).mean())}


def _ais_result(model, train, rows, split: str, settings: dict, seed_value: int) -> dict:
    """Forward (and reverse) AIS estimates of log Z, and the mean log-likelihood of ``rows`` (the ``split``)."""
    import torch

    from kakusan.rbm import exact
    from kakusan.rbm.ais import ais, reverse_ais, scaled_betas
    from kakusan.runtime import make_generator

    runs = settings["runs"]
    betas = scaled_betas(settings["betas"])
    g = make_generator(seed_value)
    fwd = ais(model, train, n_runs=runs, betas=betas, generator=g)
    with torch.no_grad():
        mean_neg_f = float(-model.to_float64().free_energy(rows).mean())
    result = {"method": "ais", "log_z": fwd.log_z, "log_z_stderr": fwd.log_z_stderr,
              f"{split}_log_likelihood": mean_neg_f - fwd.log_z, "ais_runs": runs, "ais_betas": len(betas),
              "ais_ess": fwd.ess, "stderr_kind": STDERR_KIND, "calibration": calibration_status(runs, len(betas)),
              "ais_tail": fwd.tail.as_dict() if fwd.tail else None, "ais_warning": fwd.warning,
              "bounds": BOUNDS_NOTE}
    if settings["reverse_steps"] > 0:
        if model.n_hidden <= EXACT_START_LIMIT:  # exact model samples: reverse AIS is a true upper bound
            v0, how = exact.sample(model, runs, g), "exact"
        else:  # approximate: the forward runs' last states, then Gibbs sweeps at β = 1 (not test rows: chains
            # started there stay in the data's modes and put reverse AIS 7.4 nats low on a 784-24 RBM)
            v0, how = model.sample(runs, g, n_steps=settings["reverse_steps"], v0=fwd.states), "annealed"
        rev = reverse_ais(model, v0, train, betas=betas, generator=g)
        result.update(log_z_reverse=rev.log_z, log_z_reverse_stderr=rev.log_z_stderr,
                      **{f"{split}_log_likelihood_reverse": mean_neg_f - rev.log_z}, reverse_start=how,
                      reverse_ess=rev.ess, reverse_tail=rev.tail.as_dict() if rev.tail else None,
                      reverse_warning=rev.warning)
        result.update(_interval(fwd, rev, mean_neg_f, split, runs, len(betas)))
        if how == "annealed":
            from kakusan.rbm.ais import CALIBRATION

            result["reverse_calibration"] = CALIBRATION["annealed_starts"]
    return result


def _interval(fwd, rev, mean_neg_f: float, split: str, runs: int, n_betas: int) -> dict:
    """The forward/reverse pair as an interval for log Z and the mean log-likelihood (``rbm.ais.sandwich``)."""
    from kakusan.rbm.ais import CALIBRATION, sandwich

    iv = sandwich(fwd, rev)
    status = CALIBRATION["sandwich"]
    if (runs, n_betas) in CALIBRATION["sandwich_other"]:
        status = CALIBRATION["sandwich_other"][(runs, n_betas)]
    elif (runs, n_betas) != CALIBRATION["settings"]:
        status = (f"Calibration of the interval: not measured at {runs} runs and {n_betas} β (at the defaults, "
                  f"{CALIBRATION['settings'][0]} runs and {CALIBRATION['settings'][1]} β, it held the exact log Z in "
                  f"{CALIBRATION['sandwich_short']}; benchmarks/results_calibration.md).")
    out = {"log_z_interval": [iv.low, iv.high], f"{split}_log_likelihood_interval": list(iv.shifted(mean_neg_f)),
           "interval_kind": INTERVAL_KIND, "interval_calibration": status}
    if not iv.consistent:
        out["interval_warning"] = ("forward and reverse AIS disagree by more than 2 s.e. each (low end above the high "
                                   "end): at least one of them is off — raise --runs or --betas")
    return out


INTERVAL_KIND = ("[forward log Ẑ − 2 s.e., reverse log Ẑ + 2 s.e.]: forward AIS errs low and reverse high, and each "
                 "end moves 2 s.e. outward for the runs where one lands on the wrong side of log Z")
STDERR_KIND = ("1 standard error of log Ẑ over the AIS runs (delta method: sd(w) / (√runs · mean w)); "
               "±2 s.e. is the ~95 % interval")
BOUNDS_NOTE = ("forward AIS is low and reverse AIS (exact starts) high only on average: a single estimate of either "
               "can land on the other side of log Z, so the two are not a bracket")


def calibration_status(runs: int, n_betas: int) -> str:
    """The calibration harness's verdict on the delta-method s.e. at these settings (benchmarks/results_calibration.md)."""
    from kakusan.rbm.ais import CALIBRATION

    if (runs, n_betas) == CALIBRATION["settings"]:
        return CALIBRATION["status"]
    if (runs, n_betas) in CALIBRATION["other"]:
        return CALIBRATION["other"][(runs, n_betas)]
    return (f"Calibration: not measured at {runs} runs and {n_betas} β (only at the defaults, "
            f"{CALIBRATION['settings'][0]} runs and {CALIBRATION['settings'][1]} β: {CALIBRATION['short']}); "
            "fewer runs or βs give a less reliable error bar — watch the tail warning.")


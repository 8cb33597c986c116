"""``kakusan diffusion train|sample|evaluate``: diffusion models from the command line.

``train`` writes a run directory (:mod:`kakusan.commands.diffusion_train`); ``sample`` is ``kakusan sample`` with the
diffusion options (sampler, steps, class, guidance); ``evaluate`` rebuilds the model with ``kakusan.load`` (EMA
weights by default) and the test data from the run's recipe, and reports the likelihood (the VLB or the
probability-flow ODE; nats per example, and bits/dim for 8-bit images) and sample quality (Fréchet distance,
precision and recall in the data set's metric-network features, and the class accuracy of conditional samples).
"""

from __future__ import annotations

import argparse
import math
import time

from kakusan.commands.splits import add_split_options
from kakusan.commands.warm_start import add_init_option
from kakusan.files import dumps_strict
from kakusan.commands.args import (
    below_one,
    harden_run_options,
    interval_or_never,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
)

SAMPLERS = ("ddpm", "ddim", "dpm++2m", "dpm++2m-sde", "heun")
# what evaluate measures on the rows: called train_* when they are the training rows
MEASURED = ("nll", "nll_stderr", "bits_per_dim", "bits_per_dim_stderr", "decoder_bits_per_dim",
            "decoder_bits_per_dim_stderr", "early_bits_per_dim", "early_bits_per_dim_stderr")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return sizes


class _Epochs(argparse.Action):
    """--epochs that records it was given (so --resume can tell an extension from the default)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.epochs_given = True


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("diffusion", help="diffusion models: train, sample (DDPM, DDIM, DPM-Solver++, Heun), "
                                                "evaluate (bits/dim by the VLB or the PF-ODE; FD, precision/recall)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    _add_train(sub.add_parser("train", help="train a denoising diffusion model"))

    sa = sub.add_parser("sample", help="draw samples from a trained run (the same as `kakusan sample`)")
    sa.add_argument("source", metavar="RUN", help="run directory written by `kakusan diffusion train`")
    sa.add_argument("-n", "--n-samples", type=positive_int, default=64, help="number of samples")
    sa.add_argument("--sampler", choices=SAMPLERS, default=None, help="sampler (default dpm++2m)")
    sa.add_argument("--steps", type=positive_int, default=None, help="sampling steps (default 20)")
    sa.add_argument("--class", dest="class_", type=nonneg_int, default=None, help="class label (class-conditional runs)")
    sa.add_argument("--guidance", type=nonneg_float, default=None,
                    help="classifier-free guidance scale w (1: none, 0: unconditional; default 1)")
    sa.add_argument("--out", default=None, help="also write the samples here: .npy (data space; images (n, H, W) in "
                                                "[0, 1]) or .png (a grid); must not exist")
    sa.add_argument("--prompt", default=None, help=argparse.SUPPRESS)
    _add_common(sa)

    ev = sub.add_parser("evaluate", help="test likelihood (VLB or PF-ODE) and sample quality (FD, precision/recall)")
    ev.add_argument("source", metavar="RUN", help="run directory written by `kakusan diffusion train`")
    ev.add_argument("--data", default=None, help="evaluate on this .npy file instead of the run's test set")
    ev.add_argument("--nll", choices=("vlb", "ode", "none"), default="vlb",
                    help="likelihood: the VLB (stratified over t) or the probability-flow ODE (default vlb)")
    ev.add_argument("--n-t", type=positive_int, default=None, help="--nll vlb: strata of t per example (default 100)")
    ev.add_argument("--exact-steps", type=positive_int, default=None,
                    help="--nll vlb: compute the first K terms L_0 … L_{K−1} for every example, stratify the rest "
                         "(default: the steps a learned head serves, 1 without one)")
    ev.add_argument("--rows", type=nonneg_int, default=0, help="evaluate the first ROWS examples only (0: all)")
    ev.add_argument("--fd", action="store_true", help="also sample quality: FD, precision, recall (and class "
                                                      "accuracy of a conditional model) in metric-net features")
    ev.add_argument("--n-samples", type=positive_int, default=None, help="samples drawn for --fd (default 2000)")
    ev.add_argument("--sampler", choices=SAMPLERS, default=None, help="sampler for --fd samples (default dpm++2m)")
    ev.add_argument("--steps", type=positive_int, default=None, help="sampling steps for --fd samples (default 20)")
    ev.add_argument("--guidance", type=nonneg_float, default=None, help="guidance scale for --fd samples (default 1)")
    ev.add_argument("--unconditional", action="store_true",
                    help="a class-conditional run: evaluate its null class, the unconditional model p(x) that its "
                         "label dropout trained (default: p(x|y) with the test labels, samples of every class)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    _add_common(ev)
    p.set_defaults(run=run, diffusion_parser=p)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default="ema", help="ema (default), model, last, or ema@DECAY")
    harden_run_options(p, device=True)


def _add_train(tr: argparse.ArgumentParser) -> None:
    tr.add_argument("--data", default="digits", help="digits, mnist, fashion-mnist, or a .npy/.npz/IDX file")
    tr.add_argument("--conditional", action="store_true", help="class-conditional (labels dropped with "
                                                               "--cond-drop for classifier-free guidance)")
    tr.add_argument("--schedule", choices=("linear", "cosine"), default=None,
                    help="noise schedule (default: cosine for images, linear for continuous data)")
    tr.add_argument("--T", type=positive_int, default=1000, help="diffusion steps (default 1000)")
    tr.add_argument("--target", choices=("eps", "x0", "v"), default=None,
                    help="what the network predicts (default: eps for images, whose x̂_0 is clipped to [−1, 1]; v for "
                         "continuous data, where ε-models blow up near t = T)")
    tr.add_argument("--loss", choices=("simple", "vlb", "hybrid", "decoder"), default="simple",
                    help="L_simple (ε-MSE), the VLB, hybrid (L_simple + λ VLB, learned variances), or decoder (with "
                         "--init RUN: fit a learned decoder p(x_0|x_1) to RUN's frozen denoiser, for the VLB's L_0)")
    tr.add_argument("--decoder-steps", type=positive_int, default=None,
                    help="--loss decoder: the head serves the reverse steps t = 1 … K, the decoder and (K > 1) the "
                         "variances and means of the next K − 1 steps (default 1: the decoder alone)")
    tr.add_argument("--weighting", choices=("eps", "x0", "v"), default="eps",
                    help="the space L_simple measures the error in: eps (default), x0, or v (the v-loss)")
    tr.add_argument("--variance", choices=("learned", "posterior"), default=None,
                    help="--loss vlb: the reverse steps' variance, learned by the network (default) or fixed at the "
                         "posterior's β̃_t (to fine-tune a model trained on L_simple: --init RUN --variance posterior)")
    tr.add_argument("--t-sampling", choices=("uniform", "importance"), default="uniform",
                    help="how t is drawn (importance: for --loss vlb)")
    tr.add_argument("--denoiser", choices=("unet", "mlp"), default=None,
                    help="unet (images; default) or mlp (vectors; default)")
    tr.add_argument("--channels", type=_sizes, default=None, help="UNet channels per resolution, e.g. 32,64,64")
    tr.add_argument("--hidden", type=positive_int, default=None, help="--denoiser mlp: width (default 256)")
    tr.add_argument("--depth", type=positive_int, default=None, help="--denoiser mlp: residual blocks (default 3)")
    tr.add_argument("--epochs", type=positive_int, default=20, action=_Epochs, help="passes over the training data "
                                                                           "(default 20)")
    tr.add_argument("--batch-size", type=positive_int, default=128)
    tr.add_argument("--lr", type=positive_float, default=1e-3, help="Adam step size (after a linear warm-up)")
    tr.add_argument("--warmup", type=nonneg_int, default=100, help="LR warm-up steps")
    tr.add_argument("--lr-schedule", choices=("constant", "linear", "cosine"), default="cosine")
    tr.add_argument("--ema", type=below_one, default=None,
                    help="EMA decay of the weights used to sample (0: none; default 1 − 10/steps, at most 0.9995)")
    tr.add_argument("--grad-clip", type=positive_float, default=1.0)
    tr.add_argument("--bf16", action="store_true",
                    help="run the training steps' forward passes in bfloat16 autocast (for GPUs; evaluation, "
                         "sampling and the likelihood stay float32)")
    tr.add_argument("--cond-drop", type=below_one, default=None,
                    help="--conditional: label dropout probability (default 0.1)")
    tr.add_argument("--eval-every", type=interval_or_never, default=0,
                    help="steps between test evaluations (0: each epoch; -1: never)")
    tr.add_argument("--checkpoint-every", type=nonneg_int, default=0, help="steps between training checkpoints")
    add_split_options(tr, "chosen as by the other training commands' default --data-seed 0")
    add_init_option(tr)
    tr.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    harden_run_options(tr, device=True)
    tr.set_defaults(epochs_given=False)


def run(args: argparse.Namespace) -> int:
    if args.action is None:
        args.diffusion_parser.print_help()
        return 2
    if args.action == "train":
        from kakusan.commands.diffusion_train import run_train

        return run_train(args)
    if args.action == "sample":
        from kakusan.commands import sample

        return sample.run(args)
    return run_evaluate(args)


# ---------------------------------------------------------------- evaluate


def _load(args: argparse.Namespace):
    import torch

    from kakusan.checkpoint import find, load_model
    from kakusan.commands.diffusion_common import DiffusionDataSpec, prepare_data, read_config
    from kakusan.runtime import pick_device

    config = read_config(args.source)
    device = pick_device(args.device)
    folder, name, part = find(args.source, args.weights)
    model = load_model(folder, name, map_location=device, part=part).eval()
    from kakusan.commands.args import config_part

    spec = config_part(config, "data", DiffusionDataSpec, args.source)
    if args.data is not None:
        from kakusan.data import load
        from kakusan.errors import DataError

        ds = load(args.data)  # the one loader of user arrays: numeric, finite, at least one row
        x = (ds.x_test if ds.x_test is not None else ds.x_train).to(torch.float32)
        shape = tuple(config["shape"])
        if tuple(x.shape[1:]) not in (shape, (math.prod(shape),)):
            raise DataError(f"--data {args.data}: the model takes examples of shape (n, {', '.join(map(str, shape))}), "
                            f"got {tuple(x.shape)}")
        x = x.reshape(len(x), *shape)
        labels, split = None, "file"
    else:
        data = prepare_data(spec)
        x, labels, split = data.test, data.test_labels, data.split
    if args.rows:
        x = x[: args.rows]
        labels = None if labels is None else labels[: args.rows]
    return model, x, labels, split, spec, part, device


def run_evaluate(args: argparse.Namespace) -> int:
    from kakusan.commands.splits import no_held_out_note, split_names
    from kakusan.errors import KakusanError
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import make_generator, set_threads

    set_threads()
    from kakusan.commands.args import or_default, refuse_unused

    if not args.fd:
        refuse_unused(args, ("n_samples", "sampler", "steps", "guidance"), "without --fd (they set its samples)")
    if args.nll != "vlb":
        refuse_unused(args, ("n_t",), f"to --nll {args.nll}, only to --nll vlb")
    args.n_t, args.n_samples = or_default(args.n_t, 100), or_default(args.n_samples, 2000)
    args.sampler, args.steps = or_default(args.sampler, "dpm++2m"), or_default(args.steps, 20)
    args.guidance = or_default(args.guidance, 1.0)
    if args.rows < 0:
        raise KakusanError("--rows must be ≥ 0")
    model, x, labels, split, spec, part, device = _load(args)
    if args.unconditional and not model.n_classes:
        raise KakusanError(f"--unconditional applies to a class-conditional run; {args.source} is unconditional "
                           "already: leave it out")
    if args.unconditional and args.guidance != 1.0:
        raise KakusanError("--unconditional samples the null class, which takes no guidance: leave out --guidance")
    cond = labels.long() if (model.n_classes and labels is not None and not args.unconditional) else None
    out: dict = {"split": split, "n": len(x), "weights": part, "data": args.data or spec.data}
    if model.n_classes:  # which likelihood a class-conditional model's numbers are
        out["conditioning"] = ("labels: log p(x|y) with the test labels" if cond is not None else
                               "none: the null class, log p(x) of the unconditional model its label dropout trained")
    t0 = time.process_time()
    if args.nll != "none":
        g = make_generator(args.seed, device)
        if args.nll == "vlb":
            from kakusan.diffusion.vlb import vlb_estimate

            if args.exact_steps is not None and args.exact_steps > model.schedule.T:
                raise KakusanError(f"--exact-steps {args.exact_steps} exceeds the model's T = {model.schedule.T}")
            est = vlb_estimate(model, x.to(device), cond=None if cond is None else cond.to(device), generator=g,
                               n_t=min(args.n_t, model.schedule.T), exact_steps=args.exact_steps)
        else:
            from kakusan.diffusion.ode import ode_nll

            est = ode_nll(model, x.to(device), cond=None if cond is None else cond.to(device), generator=g,
                          unit="nats")
            out["nfe"] = est.nfe
        nats = est.nats if hasattr(est, "nats") else est
        out.update(nll=nats.value, nll_stderr=nats.stderr, nll_method=nats.method)
        if model.config.levels:
            D = model.n_features
            out.update(bits_per_dim=nats.value / (D * math.log(2)), bits_per_dim_stderr=nats.stderr / (D * math.log(2)))
        if args.nll == "vlb" and model.config.levels:  # the decoder term L_0 = −log p(x_0 | x_1), and which decoder
            from kakusan.evaluate import Estimate

            l0 = Estimate.of_mean(est.decoder / (model.n_features * math.log(2)), "the VLB's decoder term", "bits/dim")
            K = model.head_steps()
            out.update(decoder_bits_per_dim=l0.value, decoder_bits_per_dim_stderr=l0.stderr,
                       decoder="fixed N(x̂_0, β_1), x̂_0 clipped to [−1, 1]" if not K else
                               "learned (kakusan.diffusion.decoder)" if K == 1 else
                               f"learned (kakusan.diffusion.decoder), with the reverse steps t = 2 … {K}")
            if est.early is not None:  # L_1 … L_{K−1}, computed for every example
                early = Estimate.of_mean(est.early / (model.n_features * math.log(2)), "the VLB's first steps",
                                         "bits/dim")
                out.update(exact_steps=args.exact_steps or K,
                           early_bits_per_dim=early.value, early_bits_per_dim_stderr=early.stderr)
        out["nll_cpu_seconds"] = time.process_time() - t0
    if args.fd:
        out.update(_sample_quality(model, args, spec, device))
    means = []
    if "nll" in out:
        means.append("NLL: one standard error across the examples" + (
            " (stratified t; the VLB's gap to the NLL is a bias it leaves out)" if args.nll == "vlb" else
            " (Hutchinson divergence and dequantisation noise included)"))
    if "fd" in out:
        means.append("FD: the spread of FD over 50 Gaussian resamples of the samples against the fixed reference "
                     "(not a bias correction)")
    if means:
        out["stderr_means"] = "; ".join(means) + "; calibrated across seeds on closed forms and in the MNIST and " \
                                                 "Fashion-MNIST metric nets' features (benchmarks/results_calibration.md)"
    run_dir = RunDir.create("diffusion-evaluate", args.run_dir, args.runs_root)
    run_dir.write_config({"command": "diffusion evaluate", "source": str(args.source), "nll": args.nll,
                          "n_t": args.n_t, "exact_steps": args.exact_steps, "fd": args.fd,
                          "seed": args.seed}, argv=args.argv)
    if split == "train":
        out["note"] = no_held_out_note(spec.data, "training-set likelihoods")
    report = split_names(out, split, MEASURED)
    run_dir.write_json("evaluation.json", report)
    if args.json:
        print(dumps_strict(report))
    else:
        parts = []
        if "nll" in out:
            parts.append(f"NLL {out['nll']:.3f} ± {out['nll_stderr']:.3f} nats ({args.nll})")
        if "bits_per_dim" in out:
            parts.append(f"{out['bits_per_dim']:.4f} ± {out['bits_per_dim_stderr']:.4f} bits/dim")
        if "decoder_bits_per_dim" in out:
            parts.append(f"of which the decoder term L_0 {out['decoder_bits_per_dim']:.4f} bits/dim "
                         f"({out['decoder'].split(' ')[0]} decoder)")
        if "early_bits_per_dim" in out:
            parts.append(f"and L_1 … L_{out['exact_steps'] - 1} {out['early_bits_per_dim']:.4f} bits/dim"
                         + (f" (learned head for t ≤ {model.head_steps()})" if model.head_steps() > 1 else ""))
        if "fd" in out:
            parts.append(f"fd {out['fd']:.4g} ± {out['fd_stderr']:.2g} (real images: {out['floor']['fd']:.3g})")
        for key in ("precision", "recall", "class_accuracy"):
            if key in out:
                parts.append(f"{key} {out[key]:.4g}")
        rows = f"{out['n']} examples of {args.data}" if split == "file" else f"{out['n']} {split} examples"
        print(f"{type(model).__name__} on {rows}: " + ", ".join(parts) + f"; run: {run_dir.path}"
              + (f"\n± is {out['stderr_means']}" if "stderr_means" in out else "")
              + (f"\nconditioning: {out['conditioning']}" if "conditioning" in out else "")
              + (f"\nnote: {out['note']}" if "note" in out else ""))
    return 0


def _sample_quality(model, args: argparse.Namespace, spec, device) -> dict:
    """FD, precision, recall (and class accuracy) of ``--n-samples`` samples in the metric net's features."""
    import torch

    from kakusan.errors import KakusanError
    from kakusan.evaluate.metric_net import evaluate_samples
    from kakusan.runtime import make_generator

    if model.image_shape is None or spec.data not in ("digits", "mnist", "fashion-mnist"):
        raise KakusanError("--fd needs a model of digits, mnist or fashion-mnist (each has a metric network)")
    g = make_generator(args.seed + 1, device)
    conditional = bool(model.n_classes) and not args.unconditional
    labels = torch.arange(args.n_samples, device=device) % model.n_classes if conditional else None
    chunks = []
    for start in range(0, args.n_samples, 500):
        n = min(500, args.n_samples - start)
        chunks.append(model.sample(n, g, sampler=args.sampler, steps=args.steps,
                                   labels=None if labels is None else labels[start:start + n],
                                   guidance=args.guidance, unconditional=args.unconditional).cpu())
    samples = torch.cat(chunks)
    result = evaluate_samples(spec.data, samples, labels=None if labels is None else labels.cpu())
    result.update(sampler=args.sampler, steps=args.steps, guidance=args.guidance, n_samples=args.n_samples)
    return result

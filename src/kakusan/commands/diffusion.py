"""``kakusan diffusion train|sample|evaluate``: diffusion models from the command line.

``train`` writes a run directory (:mod:`kakusan.commands.diffusion_train`); ``sample`` is ``kakusan sample`` with the
diffusion options (sampler, steps, class, guidance); ``evaluate`` rebuilds the model with ``kakusan.load`` (EMA
weights by default) and the test data from the run's recipe, and reports the likelihood (the VLB or the
probability-flow ODE; nats per example, and bits/dim for 8-bit images) and sample quality (Fréchet distance,
precision and recall in the data set's metric-network features, and the class accuracy of conditional samples).
"""

from __future__ import annotations

import argparse
import json
import math
import time

from kakusan.commands import add_run_options

SAMPLERS = ("ddpm", "ddim", "dpm++2m", "heun")


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
    sa.add_argument("-n", "--n-samples", type=int, default=64, help="number of samples")
    sa.add_argument("--sampler", choices=SAMPLERS, default=None, help="sampler (default dpm++2m)")
    sa.add_argument("--steps", type=int, default=None, help="sampling steps (default 20)")
    sa.add_argument("--class", dest="class_", type=int, default=None, help="class label (class-conditional runs)")
    sa.add_argument("--guidance", type=float, default=None,
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
    ev.add_argument("--n-t", type=int, default=100, help="VLB: strata of t per example (default 100)")
    ev.add_argument("--rows", type=int, default=0, help="evaluate the first ROWS examples only (0: all)")
    ev.add_argument("--fd", action="store_true", help="also sample quality: FD, precision, recall (and class "
                                                      "accuracy of a conditional model) in metric-net features")
    ev.add_argument("--n-samples", type=int, default=2000, help="samples drawn for --fd (default 2000)")
    ev.add_argument("--sampler", choices=SAMPLERS, default="dpm++2m", help="sampler for --fd samples")
    ev.add_argument("--steps", type=int, default=20, help="sampling steps for --fd samples")
    ev.add_argument("--guidance", type=float, default=1.0, help="guidance scale for --fd samples")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    _add_common(ev)
    p.set_defaults(run=run, diffusion_parser=p)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default="ema", help="ema (default), model, last, or ema@DECAY")
    add_run_options(p, device=True)


def _add_train(tr: argparse.ArgumentParser) -> None:
    tr.add_argument("--data", default="digits", help="digits, mnist, fashion-mnist, or a .npy/.npz/IDX file")
    tr.add_argument("--conditional", action="store_true", help="class-conditional (labels dropped with "
                                                               "--cond-drop for classifier-free guidance)")
    tr.add_argument("--schedule", choices=("linear", "cosine"), default=None,
                    help="noise schedule (default: cosine for images, linear for continuous data)")
    tr.add_argument("--T", type=int, default=1000, help="diffusion steps (default 1000)")
    tr.add_argument("--target", choices=("eps", "x0", "v"), default=None,
                    help="what the network predicts (default: eps for images, whose x̂_0 is clipped to [−1, 1]; v for "
                         "continuous data, where ε-models blow up near t = T)")
    tr.add_argument("--loss", choices=("simple", "vlb", "hybrid"), default="simple",
                    help="L_simple (ε-MSE), the VLB, or hybrid (L_simple + λ VLB, learned variances)")
    tr.add_argument("--weighting", choices=("eps", "x0", "v"), default="eps",
                    help="the space L_simple measures the error in: eps (default), x0, or v (the v-loss)")
    tr.add_argument("--t-sampling", choices=("uniform", "importance"), default="uniform",
                    help="how t is drawn (importance: for --loss vlb)")
    tr.add_argument("--denoiser", choices=("unet", "mlp"), default=None,
                    help="unet (images; default) or mlp (vectors; default)")
    tr.add_argument("--channels", type=_sizes, default=None, help="UNet channels per resolution, e.g. 32,64,64")
    tr.add_argument("--hidden", type=int, default=None, help="MLP width (default 256)")
    tr.add_argument("--depth", type=int, default=None, help="MLP residual blocks (default 3)")
    tr.add_argument("--epochs", type=int, default=20, action=_Epochs, help="passes over the training data "
                                                                           "(default 20)")
    tr.add_argument("--batch-size", type=int, default=128)
    tr.add_argument("--lr", type=float, default=1e-3, help="Adam step size (after a linear warm-up)")
    tr.add_argument("--warmup", type=int, default=100, help="LR warm-up steps")
    tr.add_argument("--lr-schedule", choices=("constant", "linear", "cosine"), default="cosine")
    tr.add_argument("--ema", type=float, default=None,
                    help="EMA decay of the weights used to sample (0: none; default 1 − 10/steps, at most 0.9995)")
    tr.add_argument("--grad-clip", type=float, default=1.0)
    tr.add_argument("--cond-drop", type=float, default=0.1, help="label dropout probability (conditional runs)")
    tr.add_argument("--eval-every", type=int, default=0, help="steps between test evaluations (0: each epoch)")
    tr.add_argument("--checkpoint-every", type=int, default=0, help="steps between training checkpoints")
    tr.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    add_run_options(tr, device=True)
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
    spec = DiffusionDataSpec(**config["data"])
    if args.data is not None:
        import numpy as np

        from kakusan.errors import DataError

        try:
            x = torch.as_tensor(np.load(args.data, allow_pickle=False), dtype=torch.float32)
        except (OSError, ValueError) as e:
            raise DataError(f"--data {args.data}: cannot read it as a .npy array ({e})") from None
        labels, split = None, args.data
    else:
        data = prepare_data(spec)
        x, labels, split = data.test, data.test_labels, data.split
    if args.rows:
        x = x[: args.rows]
        labels = None if labels is None else labels[: args.rows]
    return model, x, labels, split, spec, part, device


def run_evaluate(args: argparse.Namespace) -> int:
    from kakusan.errors import KakusanError
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import make_generator, set_threads

    set_threads()
    if args.rows < 0 or args.n_t < 1 or args.n_samples < 1:
        raise KakusanError("--rows must be ≥ 0, --n-t and --n-samples positive")
    model, x, labels, split, spec, part, device = _load(args)
    cond = labels.long() if (model.n_classes and labels is not None) else None
    out: dict = {"split": split, "n": len(x), "weights": part}
    t0 = time.process_time()
    if args.nll != "none":
        g = make_generator(args.seed, device)
        if args.nll == "vlb":
            from kakusan.diffusion.vlb import vlb_estimate

            est = vlb_estimate(model, x.to(device), cond=None if cond is None else cond.to(device), generator=g,
                               n_t=min(args.n_t, model.schedule.T))
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
        out["nll_cpu_seconds"] = time.process_time() - t0
    if args.fd:
        out.update(_sample_quality(model, args, spec, device))
    run_dir = RunDir.create("diffusion-evaluate", args.run_dir, args.runs_root)
    run_dir.write_config({"command": "diffusion evaluate", "source": str(args.source), "nll": args.nll,
                          "n_t": args.n_t, "fd": args.fd, "seed": args.seed}, argv=args.argv)
    run_dir.write_json("evaluation.json", out)
    if args.json:
        print(json.dumps(out))
    else:
        parts = []
        if "nll" in out:
            parts.append(f"NLL {out['nll']:.3f} ± {out['nll_stderr']:.3f} nats ({args.nll})")
        if "bits_per_dim" in out:
            parts.append(f"{out['bits_per_dim']:.4f} ± {out['bits_per_dim_stderr']:.4f} bits/dim")
        for key in ("fd", "precision", "recall", "class_accuracy"):
            if key in out:
                parts.append(f"{key} {out[key]:.4g}")
        print(f"{type(model).__name__} on {out['n']} {split} examples: " + ", ".join(parts) + f"; run: {run_dir.path}")
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
    labels = torch.arange(args.n_samples, device=device) % model.n_classes if model.n_classes else None
    chunks = []
    for start in range(0, args.n_samples, 500):
        n = min(500, args.n_samples - start)
        chunks.append(model.sample(n, g, sampler=args.sampler, steps=args.steps,
                                   labels=None if labels is None else labels[start:start + n],
                                   guidance=args.guidance).cpu())
    samples = torch.cat(chunks)
    result = evaluate_samples(spec.data, samples, labels=None if labels is None else labels.cpu())
    result.update(sampler=args.sampler, steps=args.steps, guidance=args.guidance, n_samples=args.n_samples)
    return result

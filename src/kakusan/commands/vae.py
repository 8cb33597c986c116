"""``kakusan vae train|evaluate|reconstruct``: variational autoencoders from the command line.

``train`` writes a run directory (config.json, metrics.jsonl, checkpoints/, figures/; see
:mod:`kakusan.commands.vae_train`); ``evaluate`` and ``reconstruct`` rebuild the model with ``kakusan.load``
(EMA weights by default) and the test data from the run's recorded recipe, and write their own run
directories. ``kakusan sample RUN`` draws from any of these runs.
"""

from __future__ import annotations

import argparse
import math
import time

from kakusan.files import dumps_strict
from kakusan.commands.args import (
    below_one,
    harden_run_options,
    interval_or_never,
    nonneg_float,
    nonneg_int,
    odd_window,
    positive_float,
    positive_int,
    seed,
)
from kakusan.commands.splits import add_split_options
from kakusan.commands.warm_start import add_init_option
from kakusan.commands.vae_common import LIKELIHOODS
from kakusan.commands.vae_train import ENCODERS, MODELS

# what evaluate measures on the rows: called train_* (and n_test n_train) when they are the training rows
MEASURED = ("elbo", "iwae", "nll", "nll_stderr", "elbo_stderr", "bits_per_dim", "bits_per_dim_stderr",
            "log_likelihood_exact")
LADDER = (1, 5, 50, 500)  # k of the bound-against-k figure (those below --k)
ELBO_DRAWS = 10  # draws z ~ q(z|x) per example in the reported ELBO (its Monte Carlo noise shrinks √10-fold)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return sizes


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("vae", help="variational autoencoders: train (ELBO, IWAE), evaluate (IWAE-k NLL), "
                                          "reconstruct")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    _add_train(sub.add_parser("train", help="train a VAE, IWAE or hierarchical VAE by maximising a likelihood bound"))

    ev = sub.add_parser("evaluate", help="test ELBO, IWAE-k NLL estimate with s.e., KL per layer, active units")
    ev.add_argument("source", metavar="RUN", help="run directory written by `kakusan vae train`")
    ev.add_argument("--k", type=positive_int, default=5000, help="importance samples per example (IWAE-k; NLL = −IWAE-k)")
    ev.add_argument("--data", default=None, help="evaluate on this .npy/.npz file instead of the run's test set")
    ev.add_argument("--exact", action="store_true", help="also the exact log-likelihood (linear-Gaussian models)")
    ev.add_argument("--ladder", type=_sizes, default=list(LADDER),
                    help="k values of the bound-against-k figure, those below --k (default 1,5,50,500)")
    ev.add_argument("--rows", type=nonneg_int, default=0, help="evaluate the first ROWS examples only (0: all)")
    _add_common(ev)
    ev.add_argument("--json", action="store_true", help="print one JSON object")

    rc = sub.add_parser("reconstruct", help="originals against reconstructions E[x|z], z the mode of q(z|x)")
    rc.add_argument("source", metavar="RUN", help="run directory written by `kakusan vae train`")
    rc.add_argument("-n", "--n-examples", type=positive_int, default=16, help="test examples to reconstruct")
    rc.add_argument("--data", default=None, help="reconstruct examples of this .npy/.npz file instead")
    rc.add_argument("--sample", action="store_true", help="decode a draw z ~ q(z|x) instead of its mode")
    rc.add_argument("--out", default=None, help="also write the reconstructions here (.npy; must not exist)")
    _add_common(rc)
    p.set_defaults(run=run, vae_parser=p)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default="ema", help="ema (default), model, last, or ema@DECAY")
    harden_run_options(p, device=True)


def _add_train(tr: argparse.ArgumentParser) -> None:
    tr.add_argument("--data", default="digits", help="digits, mnist, fashion-mnist, or a .npy/.npz/IDX file")
    tr.add_argument("--model", choices=MODELS, default="vae",
                    help="vae (ELBO), iwae (importance-weighted bound, k samples), hvae (hierarchical, --layers L)")
    tr.add_argument("--layers", type=positive_int, default=None, help="stochastic layers (vae, iwae: 1; hvae: 2 or more, "
                                                              "default 2)")
    tr.add_argument("--latent", type=_sizes, default=None,
                    help="latent units (default 50); hvae: one size per layer, or one for all (default 64,32,…)")
    tr.add_argument("--k", type=positive_int, default=None, help="samples per example: IWAE's k (default 50), or ELBO draws "
                                                        "(default 1)")
    tr.add_argument("--objective", choices=("elbo", "iwae"), default=None,
                    help="the bound trained (default: iwae for --model iwae, else elbo)")
    tr.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli",
                    help="bernoulli (binarised every step), gaussian, logistic (discretised, 8-bit images)")
    tr.add_argument("--autoregressive", type=odd_window, default=None, metavar="K",
                    help="bernoulli images: a local autoregressive decoder, each pixel also seeing the pixels before "
                         "it in a K×K window (odd K ≥ 3; e.g. 5)")
    tr.add_argument("--ar-channels", type=nonneg_int, default=None, metavar="C",
                    help="--autoregressive: hidden units per pixel (default 16; 0: the neighbours enter linearly)")
    tr.add_argument("--variance", choices=("fixed", "shared", "per_dim", "decoder"), default=None,
                    help="Gaussian likelihood: where σ comes from (default shared; linear + shared = probabilistic "
                         "PCA)")
    tr.add_argument("--encoder", choices=ENCODERS, default="mlp", help="encoder and decoder nets")
    tr.add_argument("--hidden", type=_sizes, default=None,
                    help="MLP widths (default 200,200 tanh: Burda et al.); hvae: one net width per layer (200,100,…)")
    tr.add_argument("--inference", choices=("ladder", "markov"), default=None,
                    help="hvae (default ladder): ladder (top-down, Sønderby et al.) or markov (bottom-up) inference")
    tr.add_argument("--epochs", type=positive_int, default=None, help="passes over the training data (default 10)")
    tr.add_argument("--batch-size", type=positive_int, default=100)
    tr.add_argument("--lr", type=positive_float, default=1e-3, help="Adam's learning rate")
    tr.add_argument("--schedule", choices=("constant", "linear", "cosine"), default="constant",
                    help="learning-rate schedule over the steps")
    tr.add_argument("--warmup", type=nonneg_int, default=0, help="KL warm-up: steps over which β rises from 0 to 1")
    tr.add_argument("--free-bits", type=nonneg_float, default=0.0, help="free bits λ: nats per latent unit (0: off)")
    tr.add_argument("--ema", type=below_one, default=None,
                    help="EMA decay of the weights (default: 1 − 10/steps, at most 0.999; 0: none)")
    tr.add_argument("--grad-clip", type=positive_float, default=None, help="clip the gradient's norm")
    tr.add_argument("--eval-every", type=interval_or_never, default=0, help="steps between test-ELBO evaluations (0: each epoch; "
                                                               "-1: never)")
    tr.add_argument("--checkpoint-every", type=nonneg_int, default=0, help="steps between checkpoints (0: every 60 s and at the end)")
    tr.add_argument("--data-seed", type=seed, default=None,
                    help="seed of the test images' one-time binarisation (Bernoulli likelihood) and of the --holdout "
                         "rows (default 0)")
    add_split_options(tr, "chosen with --data-seed")
    harden_run_options(tr, device=True)
    add_init_option(tr)
    tr.add_argument("--resume", action="store_true",
                    help="continue the run in --run-dir from its last checkpoint (--epochs may extend it)")


def run(args: argparse.Namespace) -> int:
    from kakusan.commands.vae_train import run_train

    actions = {"train": run_train, "evaluate": run_evaluate, "reconstruct": run_reconstruct}
    if args.action not in actions:
        args.vae_parser.print_help()
        return 2
    return actions[args.action](args)


# ---------------------------------------------------------------- evaluate


def _test_data(args: argparse.Namespace, config: dict, data):
    from kakusan.commands.vae_common import VAEDataSpec, user_test_data

    if args.data is None:
        return data.test, data.test_labels
    return user_test_data(args.data, VAEDataSpec(**config["data"]), tuple(config["shape"])), None


def run_evaluate(args: argparse.Namespace) -> int:
    from kakusan.commands.splits import no_held_out_note, split_names
    from kakusan.commands.vae_common import active_units, elbo_terms, load_run
    from kakusan.errors import KakusanError
    from kakusan.evaluate import Estimate
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import make_generator, pick_device, set_threads

    if args.k < 1 or args.rows < 0:
        raise KakusanError(f"--k must be a positive integer and --rows non-negative, got {args.k} and {args.rows}")
    set_threads()
    wall, cpu = time.perf_counter(), time.process_time()
    device = pick_device(args.device)
    model, config, data = load_run(args.source, args.weights, device)
    x, _ = _test_data(args, config, data)
    x = x[:args.rows] if args.rows else x
    g = make_generator(args.seed, device)
    elbo, kl_units = elbo_terms(model, x, g, n_samples=ELBO_DRAWS)
    log_p = _importance(model, x, args.k, g, f"IWAE-{args.k}")
    nll = Estimate.of_mean(-log_p, method=f"IWAE k={args.k}")
    bounds = {k: _mean_se(_importance(model, x, k, g, f"IWAE-{k}")) for k in sorted(set(args.ladder)) if k < args.k}
    bounds[args.k] = (-nll.value, nll.stderr)
    active = active_units(model, x)
    result = {"elbo": float(elbo.mean()), "iwae": -nll.value, "nll": nll.value, "nll_stderr": nll.stderr,
              "k": args.k, "n_test": len(x),
              "kl_per_layer": {name: float(v.mean(0).sum()) for name, v in kl_units.items()},
              "active_units": {name: int(m.sum()) for name, m in active.items()},
              "latent_units": {name: int(m.numel()) for name, m in active.items()},
              "elbo_stderr": Estimate.of_mean(elbo, "ELBO").stderr,
              "bounds": {str(k): v[0] for k, v in sorted(bounds.items())},
              "data": args.data or config["data"]["data"], "split": "file" if args.data else data.split,
              "weights": args.weights, "unit": "nats per example"}
    below = [k for k in bounds if k < args.k]
    result["stderr_means"] = ("one standard error across the examples; it leaves out the bound's own bias (IWAE-k is "
                              "biased low, so the NLL estimate is biased high)")
    if below:  # the bound's last rise: what the last step in k still gained (the bias at that step was at least this)
        result["last_rise"] = {"from_k": max(below), "nats": -nll.value - bounds[max(below)][0]}
    n_dims = math.prod(config["shape"])
    if len(config["shape"]) >= 2 or config["data"]["likelihood"] == "logistic":
        result["bits_per_dim"] = nll.value / (n_dims * math.log(2))
        result["bits_per_dim_stderr"] = nll.stderr / (n_dims * math.log(2))
    if args.exact:
        exact = _exact_log_likelihood(model, x, device)
        result["log_likelihood_exact"] = float(exact.mean())
    result.update(seconds=time.perf_counter() - wall, cpu_seconds=time.process_time() - cpu, device=str(device))
    out = RunDir.create("vae-evaluate", args.run_dir, args.runs_root)
    out.write_config({"command": "vae evaluate", "source": str(args.source), "k": args.k, "data": args.data,
                      "weights": args.weights, "seed": args.seed, "rows": args.rows}, argv=args.argv)
    _bound_figure(bounds, result, out)
    split = result["split"]
    if split == "train":
        result["note"] = no_held_out_note(result["data"], "training-set bounds")
    report = split_names(result, split, MEASURED)
    out.write_json("evaluation.json", report)
    if args.json:
        print(dumps_strict(report))
    else:
        print(f"{'train' if split == 'train' else 'test'} ELBO {result['elbo']:.2f}, IWAE-{args.k} "
              f"{result['iwae']:.2f} nats; NLL {nll} over {len(x)} examples; KL {result['kl_per_layer']}, active units "
              f"{result['active_units']}; {result['seconds']:.1f} s; run: {out.path}"
              + (f"\n± is one standard error across the examples, without the bound's bias: IWAE-"
                 f"{result['last_rise']['from_k']} → IWAE-{args.k} still rose by {result['last_rise']['nats']:.3f} nats"
                 if "last_rise" in result else "")
              + (f"\nnote: {result['note']}" if split == "train" else ""))
    return 0


def _importance(model, x, k: int, g, desc: str):
    """log ŵ_k of each example (n,) float64, in batches of examples with a progress bar on long evaluations."""
    import sys

    import torch
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    size = max(1, min(len(x), 100))
    values = []
    with tqdm(total=len(x), desc=desc, unit="ex", file=sys.stderr, leave=False,
              disable=None if len(x) * k >= 200_000 else True) as bar:
        for i in range(0, len(x), size):
            values.append(model.importance_log_likelihood(x[i:i + size].to(device), k, generator=g).value.cpu())
            bar.update(min(size, len(x) - i))
    return torch.cat(values).double()


def _mean_se(values) -> tuple[float, float]:
    from kakusan.evaluate import Estimate

    est = Estimate.of_mean(values, "bound")
    return est.value, est.stderr


def _exact_log_likelihood(model, x, device):
    """The exact log-likelihood of each example, in batches (the model says in one line when it has none)."""
    import torch

    from kakusan.commands.vae_common import batches

    if not hasattr(model, "exact_log_likelihood"):
        from kakusan.errors import KakusanError

        raise KakusanError(f"--exact: {type(model).__name__} has no exact log-likelihood; leave out --exact")
    return torch.cat([model.exact_log_likelihood(xb.to(device)).double().cpu() for xb in batches(x)])


def _bound_figure(bounds: dict, result: dict, out) -> None:
    from kakusan.report.vae import bound_figure

    se = {k: v[1] for k, v in bounds.items()}
    bound_figure({k: (v[0], se[k]) for k, v in bounds.items()}, out.figures / "bound_vs_k.png",
                 elbo=result["elbo"], exact=result.get("log_likelihood_exact"),
                 title=f"bound against k ({result['n_test']} examples)")


# ---------------------------------------------------------------- reconstruct


def run_reconstruct(args: argparse.Namespace) -> int:
    from kakusan.commands import fresh_output
    from kakusan.commands.vae_common import load_run
    from kakusan.errors import KakusanError
    from kakusan.report import vae as report
    from kakusan.report.run_dir import RunDir, atomic_save_npy
    from kakusan.runtime import make_generator, pick_device

    if args.n_examples < 1:
        raise KakusanError(f"-n must be a positive number of examples, got {args.n_examples}")
    out_file = fresh_output(args.out, ".npy") if args.out else None
    device = pick_device(args.device)
    model, config, data = load_run(args.source, args.weights, device)
    x = _test_data(args, config, data)[0][:args.n_examples].to(device)
    import torch

    with torch.no_grad():
        recon = model.reconstruct(x, sample=args.sample, generator=make_generator(args.seed, device)).cpu()
    x = x.cpu()
    out = RunDir.create("vae-reconstruct", args.run_dir, args.runs_root)
    out.write_config({"command": "vae reconstruct", "source": str(args.source), "n": len(x), "data": args.data,
                      "sample": args.sample, "weights": args.weights, "seed": args.seed}, argv=args.argv)
    atomic_save_npy(out.path / "originals.npy", x)
    atomic_save_npy(out.path / "reconstructions.npy", recon)
    if out_file is not None:
        atomic_save_npy(out_file, recon)
    shape = report.image_shape(model, math.prod(config["shape"]))
    if shape is not None:
        report.reconstructions_figure(x, recon, out.figures / "reconstructions.png", shape)
    mse = float(((recon.double() - x.double()) ** 2).mean())
    print(f"reconstructed {len(x)} examples ({'a draw from' if args.sample else 'the mode of'} q(z|x)); mean squared "
          f"error {mse:.4g} per value; run: {out.path}")
    return 0

"""``kakusan vae train``: build a VAE, its data and its objective, and train it through ``kakusan.train.fit``.

One ``build`` turns the options into (data, model, objective); the loop is ``train.fit`` with Adam, dynamic
binarisation as the ``transform`` (Bernoulli likelihood), EMA weights, an evaluation hook (test ELBO every
epoch, raw and EMA weights) and the one training checkpoint, so ``--resume`` continues bit-exactly. The run
directory gets ``config.json`` (model class and config, data recipe, training settings), ``checkpoints/model``
(the final weights with their EMA average, what ``kakusan.load`` and ``kakusan sample`` read) and figures.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import time
from dataclasses import dataclass

import torch

from kakusan.commands.warm_start import warm_start
from kakusan.commands.splits import no_held_out_note
from kakusan.commands.vae_common import VAEData, VAEDataSpec, active_units, elbo_terms, prepare_data
from kakusan.optim.adam import adam

Tensor = torch.Tensor
MODELS = ("vae", "iwae", "hvae")
ENCODERS = ("mlp", "conv", "linear")


@dataclass(frozen=True)
class VAETrainSettings:
    """The training side of a run (the model's own config is saved beside it)."""

    objective: str = "elbo"  # elbo | iwae
    k: int = 1  # samples per example: the IWAE's k, or draws averaged in the ELBO
    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-3
    schedule: str = "constant"
    warmup: int = 0  # KL warm-up steps (β from 0 to 1)
    free_bits: float = 0.0
    ema: float = 0.0  # 0: no EMA
    grad_clip: float | None = None
    eval_every: int = 0  # steps; 0: each epoch; < 0: never
    checkpoint_every: int = 0
    seed: int = 0


# ---------------------------------------------------------------- build


def net_config(encoder: str, hidden: tuple[int, ...]):
    from kakusan.vae import ConvConfig, LinearConfig, MLPConfig

    return {"mlp": lambda: MLPConfig(hidden), "conv": ConvConfig, "linear": LinearConfig}[encoder]()


def likelihood_config(name: str, data: VAEData, variance: str, window: int | None = None, channels: int | None = None):
    from kakusan.errors import KakusanError
    from kakusan.vae import AutoregressiveBernoulliConfig, BernoulliConfig, GaussianConfig, LogisticConfig

    if channels is not None and window is None:
        raise KakusanError("--ar-channels applies only with --autoregressive K: add it, or leave --ar-channels out")
    if window is not None:
        if name != "bernoulli":
            raise KakusanError(f"--autoregressive works with --likelihood bernoulli (binary images), not {name}")
        return AutoregressiveBernoulliConfig(window, 16 if channels is None else channels)
    if name == "bernoulli":
        return BernoulliConfig()
    return GaussianConfig(variance) if name == "gaussian" else LogisticConfig(data.levels or 256)


def build_model(args: argparse.Namespace, data: VAEData):
    """The model the options name, initialised from ``args.seed`` (torch's global RNG is left as it was)."""
    from kakusan.errors import KakusanError

    if args.model not in MODELS:
        raise KakusanError(f"unknown --model {args.model!r}: choose {', '.join(MODELS)}")
    from kakusan.commands.args import refuse_unused

    if args.likelihood != "gaussian":
        refuse_unused(args, ("variance",), f"to --likelihood {args.likelihood}, only to gaussian")
    if args.model != "hvae":
        refuse_unused(args, ("inference",), f"to --model {args.model}, only to hvae")
    lik = likelihood_config(args.likelihood, data, args.variance or "shared", getattr(args, "autoregressive", None),
                            getattr(args, "ar_channels", None))
    if args.model == "hvae":
        build = _hierarchical(args, data, lik)
    else:
        if args.layers not in (None, 1):
            raise KakusanError(f"--layers {args.layers}: a {args.model} has one stochastic layer; use --model hvae "
                               "for more")
        from kakusan.vae import VAE, VAEConfig

        latent = _one_latent([50] if args.latent is None else args.latent)
        net = net_config(args.encoder, (200, 200) if args.hidden is None else tuple(args.hidden))
        build = lambda: VAE(VAEConfig(data.shape, latent, net, net, lik))  # noqa: E731
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        return build()


def _one_latent(latent: list[int]) -> int:
    from kakusan.errors import KakusanError

    if len(latent) != 1:
        raise KakusanError(f"--latent {','.join(map(str, latent))}: a one-layer model takes one latent size")
    return latent[0]


def _hierarchical(args: argparse.Namespace, data: VAEData, lik):
    """An HVAE of ``--layers`` layers: ``--latent`` units per layer (one size for all, or one per layer; default
    64, 32, … halving), ``--hidden`` one net width per layer (default 200, 100, … halving; Burda's 2-layer
    IWAE), ``--encoder conv`` for the first layer's net, ``linear`` for a linear-Gaussian hierarchy."""
    from kakusan.errors import KakusanError
    from kakusan.vae import ConvConfig, LinearConfig

    try:
        from kakusan.vae.hierarchical import HVAE, HVAEConfig
    except ImportError:
        raise KakusanError("--model hvae: the hierarchical VAE (kakusan.vae.hierarchical) is not built yet; use "
                           "--model vae or iwae") from None
    L = 2 if args.layers is None else args.layers
    if L < 2:
        raise KakusanError(f"--model hvae needs --layers 2 or more, got {L}")
    latents = [max(2, 64 >> l) for l in range(L)] if args.latent is None else list(args.latent)
    hidden = [max(16, 200 >> l) for l in range(L)] if args.hidden is None else list(args.hidden)
    latents = latents * L if len(latents) == 1 else latents
    hidden = hidden * L if len(hidden) == 1 else hidden
    if len(latents) != L or len(hidden) != L:
        raise KakusanError(f"--latent and --hidden take one size, or one per layer (--layers {L}): got "
                           f"{len(latents)} and {len(hidden)}")
    nets: list = list(hidden)
    if args.encoder == "conv":
        nets[0] = ConvConfig()
    elif args.encoder == "linear":
        nets = [LinearConfig()] * L
    config = HVAEConfig(data.shape, tuple(latents), tuple(nets), likelihood=lik, inference=args.inference or "ladder")
    return lambda: HVAE(config)


def build_objective(settings: VAETrainSettings):
    from kakusan.vae import ELBO, IWAE

    if settings.objective == "iwae":
        return IWAE(settings.k)
    return ELBO(warmup_steps=settings.warmup, free_bits=settings.free_bits, n_samples=settings.k)


def settings_from(args: argparse.Namespace, n_train: int) -> VAETrainSettings:
    from kakusan.data.batches import steps_per_epoch
    from kakusan.errors import KakusanError

    objective = args.objective or ("iwae" if args.model == "iwae" else "elbo")
    if args.model == "iwae" and objective != "iwae":
        raise KakusanError("--model iwae trains the importance-weighted bound: leave out --objective elbo")
    k = args.k if args.k is not None else (50 if objective == "iwae" else 1)
    epochs = 10 if args.epochs is None else args.epochs
    for name, value in (("k", k), ("epochs", epochs), ("batch_size", args.batch_size)):
        if value < 1:
            raise KakusanError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if not args.lr > 0 or args.warmup < 0 or args.free_bits < 0:
        raise KakusanError("--lr must be positive, --warmup and --free-bits non-negative")
    if objective == "iwae" and (args.warmup or args.free_bits):
        raise KakusanError("--warmup and --free-bits apply to the ELBO, not to the importance-weighted bound: leave "
                           "them out")
    total = epochs * steps_per_epoch(n_train, args.batch_size)
    ema = args.ema if args.ema is not None else min(0.999, max(0.0, 1 - 10 / total))  # ~ the last tenth of the run
    if not 0 <= ema < 1:
        raise KakusanError(f"--ema must be a decay in [0, 1) (0: none), got {ema}")
    return VAETrainSettings(objective, k, epochs, args.batch_size, args.lr, args.schedule, args.warmup, args.free_bits,
                            round(ema, 6), args.grad_clip, args.eval_every, args.checkpoint_every, args.seed)


# ---------------------------------------------------------------- train


def run_train(args: argparse.Namespace) -> int:
    from kakusan.checkpoint import save_model
    from kakusan.data.batches import steps_per_epoch
    from kakusan.errors import KakusanError
    from kakusan.optim.schedules import make_scheduler
    from kakusan.registry import config_to_json
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import pick_device, set_threads
    from kakusan.train import Hook, TrainConfig, fit
    from kakusan.vae import dynamic_binarisation

    set_threads()
    device = pick_device(args.device)
    if args.resume and args.init:
        raise KakusanError("--init starts a new run from another run's weights; --resume continues this run from its own "
                           "checkpoint: give one of them")
    if args.resume:
        model, spec, settings, run_dir = _resumed(args)
        data = prepare_data(spec)
    else:
        if args.likelihood != "bernoulli" and args.data_seed is not None and args.holdout is None:
            raise KakusanError(f"--data-seed does not apply to --likelihood {args.likelihood} without --holdout (it "
                               "seeds the binarisation of Bernoulli test images and the choice of --holdout rows): "
                               "leave it out")
        spec = VAEDataSpec(args.data, args.likelihood, 0 if args.data_seed is None else args.data_seed,
                           0.0 if args.holdout is None else args.holdout, args.test)
        data = prepare_data(spec)
        settings = settings_from(args, len(data.train))
        model = build_model(args, data)
        init = warm_start(model, args.init) if args.init else None  # before the run directory: a bad --init leaves none
        run_dir = RunDir.create("vae-train", args.run_dir, args.runs_root)
        run_dir.write_config({"command": "vae train", "class": type(model).__name__,
                              "module": type(model).__module__, "model": config_to_json(model.config),
                              "data": dataclasses.asdict(spec), "train": dataclasses.asdict(settings),
                              "shape": list(data.shape), "split": data.split, "init": init}, argv=args.argv)
    model = model.to(device)
    per_epoch = steps_per_epoch(len(data.train), settings.batch_size)
    total = settings.epochs * per_epoch
    optimizer = adam(model.parameters(), lr=settings.lr)
    evaluator = _Evaluator(model, data.test, per_epoch, device, data.split)
    hooks = [] if settings.eval_every < 0 else [Hook(settings.eval_every or per_epoch, evaluator, at_start=True)]
    config = TrainConfig(steps=total, batch_size=settings.batch_size, log_every=min(per_epoch, 50),
                         checkpoint_every=settings.checkpoint_every, grad_clip=settings.grad_clip,
                         ema_decays=(settings.ema,) if settings.ema else (), seed=settings.seed,
                         desc=f"vae {settings.objective}")
    from kakusan.commands.guard import DivergenceGuard

    # exploding or non-finite: one line naming --lr (the limit grows with the data's scale: a Gaussian decoder's
    # bias rightly reaches the data's values)
    from kakusan.commands.guard import PARAMETER_LIMIT

    guard = DivergenceGuard(model, f"--lr {settings.lr:g}",
                            limit=max(PARAMETER_LIMIT, 1e3 * float(data.train.abs().max())))
    with guard.naming_lr():
        result = fit(model, build_objective(settings), data.train.to(device), optimizer, config, run=run_dir,
                     callback=guard,
                     scheduler=make_scheduler(optimizer, settings.schedule, total),
                     transform=dynamic_binarisation if spec.likelihood == "bernoulli" else None, hooks=hooks)
    extra = result.ema.parts() if result.ema is not None else None
    save_model(run_dir.checkpoints, model, name="model", meta={"step": total}, extra_parts=extra)
    final = copy.deepcopy(model).eval()
    if result.ema is not None:
        result.ema.copy_to(final)
    summary = train_figures(final, data, run_dir, per_epoch, settings.seed)
    summary.update(steps=total, resumed_from=result.resumed_from, train_seconds=result.seconds,
                   weights="ema" if result.ema is not None else "model", split=data.split)
    if data.split == "train":
        summary["note"] = no_held_out_note(spec.data, "training-set ELBOs")
    run_dir.write_json("summary.json", summary)
    lik = getattr(final.likelihood, "config", None)
    ar = f" autoregressive {lik.kernel}×{lik.kernel}, {lik.channels} channels" if hasattr(lik, "kernel") else ""
    print(f"trained {type(model).__name__} ({'×'.join(map(str, data.shape))} data, {spec.likelihood}{ar}, "
          f"{settings.objective}{f' k={settings.k}' if settings.k > 1 else ''}) for {total} steps in "
          f"{result.seconds:.1f} s; {data.split} ELBO {summary[f'{data.split}_elbo']:.2f} nats ({summary['weights']} "
          f"weights), KL {summary['kl']:.2f}, active units {summary['active_units']}; run: {run_dir.path}"
          + (f"\nnote: {summary['note']}" if "note" in summary else ""))
    return 0


def _resumed(args: argparse.Namespace):
    """(model, data spec, settings, run) of the run in --run-dir from its config.json; --epochs may extend it."""
    from kakusan.commands import resume_run
    from kakusan.commands.vae_common import read_config

    model, config, settings, run = resume_run(args.run_dir, read_config, VAETrainSettings, args.epochs, args=args)
    return model, VAEDataSpec(**config["data"]), settings, run


class _Evaluator:
    """The evaluation hook: the test ELBO (one draw per example, analytic KL) of the raw and the EMA weights —
    ``train_elbo`` instead when the data have no test split (``split`` "train": the rows are the training rows)."""

    def __init__(self, model, test: Tensor, per_epoch: int, device, split: str = "test"):
        self.test, self.per_epoch, self.device, self.split = test, per_epoch, device, split
        self.shadow = copy.deepcopy(model)

    def __call__(self, ctx) -> dict:
        from kakusan.runtime import make_generator

        t0 = time.perf_counter()
        record = {"eval": True, "epoch": ctx.step / self.per_epoch, f"{self.split}_elbo":
                  float(elbo_terms(ctx.model, self.test, make_generator(ctx.seed, self.device))[0].mean())}
        if ctx.ema is not None:
            ctx.ema.copy_to(self.shadow)
            self.shadow.eval()
            elbo = elbo_terms(self.shadow, self.test, make_generator(ctx.seed, self.device))[0]
            record[f"{self.split}_elbo_ema"] = float(elbo.mean())
        record["seconds"] = time.perf_counter() - t0
        return record


# ---------------------------------------------------------------- figures


def train_figures(model, data: VAEData, run_dir, per_epoch: int, seed: int, rows: int = 2000) -> dict:
    """Figures of the trained (EMA) model and the numbers they show: training curves, samples, reconstructions,
    the latent map of a 2-latent model, KL per layer and unit (on up to ``rows`` test examples)."""
    from kakusan.report import vae as report
    from kakusan.runtime import make_generator

    device = next(model.parameters()).device
    test = data.test[:rows]
    records = run_dir.read_metrics()
    evaluations = [r for r in records if r.get("eval")]
    history = [r for r in records if "loss" in r]
    report.training_figure(evaluations, history, run_dir.figures / "training.png", steps_per_epoch=per_epoch,
                           title=f"{type(model).__name__} on {run_dir.path.name}")
    elbo, kl_units = elbo_terms(model, test, make_generator(seed + 1, device))
    active = active_units(model, test)
    mean_kl = {name: v.mean(0) for name, v in kl_units.items()}
    report.kl_units_figure(mean_kl, run_dir.figures / "kl_units.png", active=active)
    shape = report.image_shape(model, math.prod(data.shape))
    if shape is not None:
        samples = model.sample(64, make_generator(seed + 2, device)).cpu()
        report.samples_figure(samples, run_dir.figures / "samples.png", shape)
        x = test[:16].to(device)
        report.reconstructions_figure(x.cpu(), model.reconstruct(x).cpu(), run_dir.figures / "reconstructions.png",
                                      shape)
    if getattr(model, "n_latent", None) == 2 and not hasattr(model, "latents"):  # a one-layer 2-latent model
        labels = None if data.test_labels is None else data.test_labels[:rows]
        report.latent_map_figure(model, test.to(device), labels, run_dir.figures / "latent_map.png",
                                 class_names=data.class_names)
    last = evaluations[-1] if evaluations else {}
    key = f"{data.split}_elbo"  # train_elbo when the data have no test split
    final_elbo = last.get(f"{key}_ema", last.get(key, float(elbo.mean())))  # the whole test set
    return {"final_evaluation": last or None, key: final_elbo, "figure_rows": len(test),
            "kl": float(sum(v.sum() for v in mean_kl.values())),
            "kl_per_layer": {name: float(v.sum()) for name, v in mean_kl.items()},
            "active_units": {name: int(m.sum()) for name, m in active.items()}}

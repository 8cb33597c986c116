"""``kakusan diffusion train``: build a diffusion model, its data and its loss, and train it through ``train.fit``.

Adam with a linear warm-up then a cosine decay, EMA weights (used for sampling and evaluation by default), an
evaluation hook (the test L_simple at fixed times and noise, raw and EMA weights), and the one training
checkpoint, so ``--resume`` continues bit-exactly. The run directory gets ``config.json``, ``checkpoints/model``
(final weights with their EMA average: what ``kakusan.load`` and ``kakusan sample`` read), figures (samples,
the forward process, training curves) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import time
from dataclasses import dataclass

import torch

from kakusan.commands.diffusion_common import DiffusionData, DiffusionDataSpec, prepare_data
from kakusan.commands.warm_start import read_source, warm_start
from kakusan.commands.splits import no_held_out_note
from kakusan.optim.adam import adam

Tensor = torch.Tensor
EVAL_ROWS = 512  # test examples in the evaluation hook's L_simple


@dataclass(frozen=True)
class DiffusionTrainSettings:
    """The training side of a run (the model's own config is saved beside it)."""

    loss: str = "simple"  # simple | vlb | hybrid
    weighting: str = "eps"  # the space of L_simple's squared error: eps | x0 | v
    t_sampling: str = "uniform"  # uniform | importance
    cond_drop: float = 0.1
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 100  # LR warm-up steps
    schedule: str = "cosine"  # LR schedule after warm-up
    ema: float = 0.999
    grad_clip: float | None = 1.0
    eval_every: int = 0  # steps; 0: each epoch; < 0: never
    checkpoint_every: int = 0
    seed: int = 0
    variance: str = "learned"  # the reverse variance of --loss vlb: learned (by the network) | posterior (β̃_t)
    bf16: bool = False  # the training steps' forward passes in bfloat16 autocast (evaluation stays float32)


# ---------------------------------------------------------------- build


def _sizes(text: str | None) -> tuple[int, ...] | None:
    return None if text is None else tuple(int(s) for s in str(text).split(",") if s.strip())


def denoiser_config(args: argparse.Namespace, data: DiffusionData):
    from kakusan.diffusion.nets import MLPDenoiserConfig
    from kakusan.errors import KakusanError

    from kakusan.commands.args import refuse_unused

    kind = args.denoiser or ("unet" if len(data.shape) >= 2 else "mlp")
    refuse_unused(args, ("channels",) if kind == "mlp" else ("hidden", "depth"),
                  f"to the {kind} denoiser{'' if args.denoiser else ' (the default for these data)'}")
    if kind == "mlp":
        width = args.hidden or 256
        return MLPDenoiserConfig(hidden=width, depth=args.depth or 3)
    if len(data.shape) < 2:
        raise KakusanError(f"--denoiser unet needs images, and these data are vectors of shape {data.shape}: use "
                           "--denoiser mlp")
    from kakusan.diffusion.unet import UNetConfig

    config = UNetConfig()
    if args.channels:
        n = len(args.channels)
        config = dataclasses.replace(config, channels=tuple(args.channels), attention=(False,) * (n - 1) + (n > 1,))
    return config.check()


def build_model(args: argparse.Namespace, data: DiffusionData):
    """The model the options name, initialised from ``args.seed`` (torch's global RNG is left as it was)."""
    from kakusan.diffusion import Diffusion, DiffusionConfig, ScheduleConfig

    learn_variance = args.loss in ("vlb", "hybrid") and args.variance != "posterior"
    schedule = args.schedule or ("cosine" if data.levels else "linear")
    target = args.target or ("eps" if data.levels else "v")
    config = DiffusionConfig(data.shape, ScheduleConfig(schedule, args.T), target,
                             denoiser_config(args, data), data.n_classes, learn_variance, data.shift, data.scale,
                             data.levels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        return Diffusion(config)


def build_objective(settings: DiffusionTrainSettings):
    from kakusan.diffusion.objectives import DiffusionLoss

    if settings.loss == "decoder":
        from kakusan.diffusion.decoder import DecoderLoss

        return DecoderLoss(settings.cond_drop)

    fixed = settings.loss == "vlb" and settings.variance == "posterior"
    return DiffusionLoss(settings.loss, t_sampling=settings.t_sampling, cond_drop=settings.cond_drop,
                         weighting=settings.weighting, variance="posterior" if fixed else None)


def decoder_model(args: argparse.Namespace, spec: DiffusionDataSpec):
    """``--loss decoder``: the --init run's model (its configuration, its weights) with a fresh learned decoder
    head initialised from ``args.seed``; (model, what config.json records of the source)."""
    from kakusan.commands.args import read_run_config, refuse_unused
    from kakusan.commands.warm_start import split_source
    from kakusan.diffusion import Diffusion
    from kakusan.diffusion.decoder import DecoderConfig, with_decoder
    from kakusan.errors import KakusanError

    refuse_unused(args, ("schedule", "target", "denoiser", "channels", "hidden", "depth"),
                  "to --loss decoder (the model is the --init run's)")
    if args.T != 1000 or args.weighting != "eps" or args.t_sampling != "uniform":
        raise KakusanError("--T, --weighting and --t-sampling do not apply to --loss decoder (the model is the --init "
                           "run's, the head sees the first --decoder-steps steps only): leave them out")
    source, init = read_source(args.init)
    if not isinstance(source, Diffusion):
        raise KakusanError(f"--init {args.init}: that run saved a {type(source).__name__}; --loss decoder needs a "
                           "diffusion run")
    if (args.decoder_steps or 1) > source.schedule.T:
        raise KakusanError(f"--decoder-steps {args.decoder_steps} exceeds the --init run's T = {source.schedule.T} "
                           "steps: use at most T")
    run = split_source(args.init)[0]
    theirs = read_run_config(run, "diffusion train").get("data")
    if theirs != dataclasses.asdict(spec):  # the decoder must not see the denoiser's held-out rows
        raise KakusanError(f"--init {args.init}: that run was trained on {theirs}, this one reads "
                           f"{dataclasses.asdict(spec)}: give the same --data, --conditional and split options")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        return with_decoder(source, DecoderConfig(steps=args.decoder_steps or 1)), init


def settings_from(args: argparse.Namespace, n_train: int) -> DiffusionTrainSettings:
    from kakusan.data.batches import steps_per_epoch
    from kakusan.errors import KakusanError

    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise KakusanError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if not args.lr > 0:
        raise KakusanError(f"--lr must be positive, got {args.lr}")
    total = args.epochs * steps_per_epoch(n_train, args.batch_size)
    ema = args.ema if args.ema is not None else round(min(0.9995, max(0.0, 1 - 10 / total)), 6)  # ~ the last tenth
    if not 0 <= ema < 1:
        raise KakusanError(f"--ema must be a decay in [0, 1) (0: none), got {ema}")
    if not args.conditional and args.cond_drop is not None:
        raise KakusanError("--cond-drop does not apply without --conditional (there are no labels to drop): leave it "
                           "out")
    cond_drop = 0.1 if args.cond_drop is None else args.cond_drop
    if not 0 <= cond_drop < 1:
        raise KakusanError(f"--cond-drop must be a probability in [0, 1), got {cond_drop}")
    if args.decoder_steps is not None and args.loss != "decoder":
        raise KakusanError("--decoder-steps applies to --loss decoder only: leave it out")
    if args.loss == "decoder" and not args.init:
        raise KakusanError("--loss decoder fits a learned decoder to a trained model: give that run with --init RUN")
    if args.t_sampling == "importance" and args.loss != "vlb":
        raise KakusanError("--t-sampling importance applies to --loss vlb only")
    if args.variance is not None and args.loss != "vlb":
        what = "learns the variances" if args.loss == "hybrid" else "has none to choose"
        raise KakusanError(f"--variance applies to --loss vlb only (--loss {args.loss} {what}): leave it out")
    if args.warmup < 0:
        raise KakusanError(f"--warmup must be a non-negative number of steps, got {args.warmup}")
    warmup = min(args.warmup, total // 5)  # short runs warm up less
    return DiffusionTrainSettings(args.loss, args.weighting, args.t_sampling, cond_drop, args.epochs,
                                  args.batch_size, args.lr, warmup, args.lr_schedule, ema, args.grad_clip,
                                  args.eval_every, args.checkpoint_every, args.seed, args.variance or "learned",
                                  args.bf16)


def _batches(data: DiffusionData, conditional: bool):
    return (data.train, data.train_labels.long()) if conditional else data.train


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

    set_threads()
    device = pick_device(args.device)
    if args.resume and args.init:
        raise KakusanError("--init starts a new run from another run's weights; --resume continues this run from its own "
                           "checkpoint: give one of them")
    if args.resume:
        model, spec, settings, run_dir = _resumed(args)
        data = prepare_data(spec)
    else:
        spec = DiffusionDataSpec(args.data, args.conditional, 0.0 if args.holdout is None else args.holdout, args.test)
        data = prepare_data(spec)
        settings = settings_from(args, len(data.train))
        if settings.loss == "decoder":
            model, init = decoder_model(args, spec)
        else:
            model = build_model(args, data)
            # before the run directory: a bad --init leaves none
            init = warm_start(model, args.init) if args.init else None
        run_dir = RunDir.create("diffusion-train", args.run_dir, args.runs_root)
        run_dir.write_config({"command": "diffusion train", "class": type(model).__name__,
                              "module": type(model).__module__, "model": config_to_json(model.config),
                              "data": dataclasses.asdict(spec), "train": dataclasses.asdict(settings),
                              "shape": list(data.shape), "split": data.split, "init": init,
                              "gflop_per_example": model.gflop_per_example()}, argv=args.argv)
    model = model.to(device)
    if settings.loss == "decoder":  # the denoiser stays as --init gave it; only the decoder head learns
        model.net.requires_grad_(False)
    per_epoch = steps_per_epoch(len(data.train), settings.batch_size)
    total = settings.epochs * per_epoch
    optimizer = adam(model.parameters(), lr=settings.lr)
    evaluator = _Evaluator(model, data, device)
    hooks = [] if settings.eval_every < 0 else [Hook(settings.eval_every or per_epoch, evaluator)]
    config = TrainConfig(steps=total, batch_size=settings.batch_size, log_every=min(per_epoch, 50),
                         checkpoint_every=settings.checkpoint_every, grad_clip=settings.grad_clip,
                         ema_decays=(settings.ema,) if settings.ema else (), seed=settings.seed,
                         autocast="bf16" if settings.bf16 else None, desc=f"diffusion {settings.loss}")
    batches = _batches(data, spec.conditional)
    batches = tuple(b.to(device) for b in batches) if isinstance(batches, tuple) else batches.to(device)
    print(f"training a {model.gflop_per_example():.3f}-GFLOP/example {type(model.net).__name__} on "
          f"{len(data.train)} examples of {'×'.join(map(str, data.shape))} for {total} steps", flush=True)
    from kakusan.commands.guard import DivergenceGuard

    guard = DivergenceGuard(model, f"--lr {settings.lr:g}")  # exploding or non-finite: one line naming --lr
    with guard.naming_lr():
        result = fit(model, build_objective(settings), batches, optimizer, config, run=run_dir, callback=guard,
                     scheduler=make_scheduler(optimizer, settings.schedule, total, warmup=settings.warmup),
                     hooks=hooks)
    extra = result.ema.parts() if result.ema is not None else None
    save_model(run_dir.checkpoints, model, name="model", meta={"step": total}, extra_parts=extra)
    final = copy.deepcopy(model).eval()
    if result.ema is not None:
        result.ema.copy_to(final)
    summary = train_figures(final, data, run_dir, per_epoch, settings.seed)
    summary.update(steps=total, resumed_from=result.resumed_from, train_seconds=result.seconds,
                   weights="ema" if result.ema is not None else "model", gflop_per_example=model.gflop_per_example(),
                   split=data.split)
    if data.split == "train":
        summary["note"] = no_held_out_note(spec.data, "training-set losses")
    run_dir.write_json("summary.json", summary)
    print(f"trained {type(model).__name__} ({'×'.join(map(str, data.shape))}, {settings.loss} loss, target "
          f"{model.target}) for {total} steps in {result.seconds:.1f} s; {data.split} L_simple "
          f"{summary[f'{data.split}_mse']:.4f}"
          + (f", {data.split} {_head_terms(model)} {summary[f'{data.split}_decoder_bpd']:.4f} bits/dim"
             if f"{data.split}_decoder_bpd" in summary else "")
          + f" ({summary['weights']} weights); run: {run_dir.path}"
          + (f"\nnote: {summary['note']}" if "note" in summary else ""))
    return 0


def _head_terms(model) -> str:
    K = model.head_steps()
    return "decoder L_0" if K <= 1 else f"head terms L_0 … L_{K - 1}"


def _resumed(args: argparse.Namespace):
    """(model, data spec, settings, run) of the run in --run-dir from its config.json; --epochs may extend it."""
    from kakusan.commands import resume_run
    from kakusan.commands.diffusion_common import read_config

    model, config, settings, run = resume_run(args.run_dir, read_config, DiffusionTrainSettings,
                                              args.epochs if args.epochs_given else None,
                                              {"weighting": "eps", "variance": "learned", "bf16": False},
                                              args=args)
    return model, DiffusionDataSpec(**config["data"]), settings, run


def test_mse(model, x: Tensor, labels: Tensor | None, seed: int) -> float:
    """L_simple = E‖ε − ε̂‖²/D on ``x`` at times and noise drawn from ``seed`` (the same for every call)."""
    from kakusan.diffusion.process import q_sample

    g = torch.Generator().manual_seed(seed)
    x0 = model.to_model(x)
    t = torch.randint(1, model.schedule.T + 1, (len(x0),), generator=g).to(torch.float64)
    eps = torch.randn(x0.shape, generator=g).to(x0)
    a, s = model.alpha_sigma(t, x0)
    cond = None if labels is None else labels.to(x0.device).long()
    with torch.no_grad():
        err = (model.eps(q_sample(x0, a, s, eps), t, cond) - eps) ** 2
    return float(err.mean())


def test_decoder_bpd(model, x: Tensor, labels: Tensor | None, seed: int) -> float:
    """The terms the learned head serves, L_0 … L_{K−1} (L_0 = −log p(x_0 | x_1) alone for K = 1), in bits/dim on
    ``x``, noise drawn from ``seed`` (the same for every call: one ε per t), x̂_0 clipped as the VLB's evaluation
    clips it."""
    from kakusan.diffusion.decoder import head_term

    g = torch.Generator().manual_seed(seed)
    x0 = model.to_model(x)
    cond = None if labels is None else labels.to(x0.device).long()
    total = 0.0
    with torch.no_grad():
        for t in range(1, max(1, model.head_steps()) + 1):
            eps = torch.randn(x0.shape, generator=g).to(x0)
            total += float(head_term(model, x0, t, cond, eps=eps).mean())
    return total / (x0[0].numel() * math.log(2))


class _Evaluator:
    """The evaluation hook: the test L_simple of the raw and the EMA weights (same times and noise every call) —
    ``train_mse`` instead when the data have no test split (the rows are the training rows)."""

    def __init__(self, model, data: DiffusionData, device):
        self.x = data.test[:EVAL_ROWS].to(device)
        self.labels = data.test_labels[:EVAL_ROWS] if model.n_classes else None
        self.key = f"{data.split}_mse"
        self.decoder_key = f"{data.split}_decoder_bpd"  # models with a learned head: its terms in bits/dim
        self.shadow = copy.deepcopy(model)

    def __call__(self, ctx) -> dict:
        t0 = time.perf_counter()
        record = {"eval": True, self.key: test_mse(ctx.model, self.x, self.labels, 0)}
        decoder = getattr(ctx.model, "decoder_head", None) is not None
        if decoder:
            record[self.decoder_key] = test_decoder_bpd(ctx.model, self.x, self.labels, 0)
        if ctx.ema is not None:
            ctx.ema.copy_to(self.shadow)
            self.shadow.eval()
            record[f"{self.key}_ema"] = test_mse(self.shadow, self.x, self.labels, 0)
            if decoder:
                record[f"{self.decoder_key}_ema"] = test_decoder_bpd(self.shadow, self.x, self.labels, 0)
        record["seconds"] = time.perf_counter() - t0
        return record


# ---------------------------------------------------------------- figures


def train_figures(model, data: DiffusionData, run_dir, per_epoch: int, seed: int) -> dict:
    """Figures of the trained (EMA) model: samples (per class when conditional), the forward process, training
    curves; returns the numbers they show."""
    from kakusan.report import diffusion as report
    from kakusan.runtime import make_generator

    device = next(model.parameters()).device
    steps = {"steps": model.schedule.T} if model.schedule.T < 20 else {}  # the default sampler takes 20 steps
    records = run_dir.read_metrics()
    report.training_figure([r for r in records if r.get("eval")], [r for r in records if "loss" in r],
                           run_dir.figures / "training.png", steps_per_epoch=per_epoch)
    if model.image_shape is not None:
        labels = torch.arange(64, device=device) % model.n_classes if model.n_classes else None
        samples = model.sample(64, make_generator(seed + 2, device), labels=labels, **steps).cpu()
        report.samples_figure(samples, run_dir.figures / "samples.png")
        report.forward_process_figure(model, data.test[:1].to(device), run_dir.figures / "forward_process.png",
                                      generator=make_generator(seed + 3, device))
    else:
        samples = model.sample(2000, make_generator(seed + 2, device), **steps).cpu()
        report.scatter_figure(data.test[:2000], samples, run_dir.figures / "samples.png")
    x = data.test[:EVAL_ROWS].to(device)
    labels = data.test_labels[:EVAL_ROWS] if model.n_classes else None
    out = {f"{data.split}_mse": test_mse(model, x, labels, 0)}
    if getattr(model, "decoder_head", None) is not None:
        out[f"{data.split}_decoder_bpd"] = test_decoder_bpd(model, x, labels, 0)
    return out

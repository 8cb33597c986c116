"""``kakusan generate train``: train a prompt → image model on MNIST + Fashion-MNIST, in two resumable stages.

Stage one, the autoencoder, in ``RUN/autoencoder/``; stage two, the text-conditional latent diffusion model, in
``RUN/`` (:mod:`kakusan.latent.training`). Then ``RUN/checkpoints/model`` holds the LatentDiffusion (EMA weights),
what ``kakusan generate --model RUN`` and ``kakusan.load(RUN)`` read, and ``RUN/summary.json`` its numbers:
the autoencoder's PSNR and the metric networks' accuracy on its reconstructions against the originals, and the
class accuracy of images generated from the class-name prompts. ``--export DIR`` also copies the model with its
training log and numbers into DIR (``make model`` exports into the package: the model ``kakusan generate`` uses).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

from kakusan.commands import add_run_options


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return sizes


def add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ae-epochs", type=int, default=4, help="autoencoder epochs (stage one; default 4)")
    p.add_argument("--epochs", type=int, default=None,
                   help="latent diffusion epochs (stage two; default 6); with --resume, more extends the run")
    p.add_argument("--batch-size", type=int, default=128, help="batch size of both stages (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of both stages (default 1e-3)")
    p.add_argument("--beta", type=float, default=1e-3, help="the autoencoder's KL weight (default 1e-3)")
    p.add_argument("--caption-drop", type=float, default=0.1,
                   help="probability of training on the empty caption (classifier-free guidance; default 0.1)")
    p.add_argument("--channels", type=_sizes, default=None, help="latent UNet widths per level (default 64,128)")
    p.add_argument("--limit", type=int, default=0, help="train on the first LIMIT images only (0: all 120,000)")
    p.add_argument("--eval-images", type=int, default=25,
                   help="images per class prompt in the summary (default 25; 0: no metric-network evaluation)")
    p.add_argument("--export", default=None, metavar="DIR",
                   help="also write the model, its training log and numbers into DIR (make model: the package)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    add_run_options(p, device=True)
    p.set_defaults(run=run_train)


def _check(args) -> None:
    from kakusan.errors import KakusanError

    for name in ("ae_epochs", "epochs", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise KakusanError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if not args.lr > 0:
        raise KakusanError(f"--lr must be positive, got {args.lr}")
    if not args.beta >= 0:
        raise KakusanError(f"--beta must be ≥ 0, got {args.beta}")
    if not 0 <= args.caption_drop < 1:
        raise KakusanError(f"--caption-drop must be a probability in [0, 1), got {args.caption_drop}")
    if args.limit < 0 or args.eval_images < 0:
        raise KakusanError("--limit and --eval-images must be ≥ 0")


def run_train(args: argparse.Namespace) -> int:
    import torch

    from kakusan.checkpoint import save_model
    from kakusan.errors import KakusanError
    from kakusan.latent.data import joint_images
    from kakusan.latent.model import LatentDiffusion, LatentDiffusionConfig, with_denoiser
    from kakusan.latent.training import (AutoencoderSettings, DenoiserSettings, encode_images, train_autoencoder,
                                         train_denoiser)
    from kakusan.registry import config_from_json, config_to_json
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import pick_device, set_threads

    _check(args)
    set_threads()
    device = pick_device(args.device)
    if args.resume:
        if args.run_dir is None or not (Path(args.run_dir) / "config.json").is_file():
            raise KakusanError("--resume needs --run-dir pointing at a run of `kakusan generate train`")
        from kakusan.commands import check_resume

        check_resume(args, may_change={"run_dir", "runs_root", "resume", "device", "epochs", "progress", "export",
                                       "eval_images"})
        run = RunDir(Path(args.run_dir))
        config = json.loads((run.path / "config.json").read_text())
        if config.get("command") != "generate train":
            raise KakusanError(f"{args.run_dir} is not a run of `kakusan generate train`")
        model_config = config_from_json(config["model"])
        ae_settings = AutoencoderSettings(**config["autoencoder"])
        settings = DenoiserSettings(**config["train"])
        limit = int(config.get("limit", 0))
        if args.epochs is not None and args.epochs != settings.epochs:
            if args.epochs < settings.epochs:
                raise KakusanError(f"--epochs {args.epochs} is fewer than the run's {settings.epochs}: resume only "
                                   "extends a run")
            print(f"extending stage two from {settings.epochs} to {args.epochs} epochs (the learning-rate schedule "
                  "stretches to the new length)", flush=True)
            settings = dataclasses.replace(settings, epochs=args.epochs)
            config["train"] = dataclasses.asdict(settings)
            run.write_json("config.json", config)
    else:
        model_config = LatentDiffusionConfig()
        if args.channels:
            n = len(args.channels)
            model_config = with_denoiser(model_config, channels=args.channels, attention=(True,) * n)
        ae_settings = AutoencoderSettings(args.ae_epochs, args.batch_size, args.lr, args.beta, args.seed)
        settings = DenoiserSettings(args.epochs or DenoiserSettings.epochs, args.batch_size, args.lr,
                                    caption_drop=args.caption_drop, seed=args.seed)
        limit = args.limit
        run = RunDir.create("generate-train", args.run_dir, args.runs_root)
        run.write_config({"command": "generate train", "class": "LatentDiffusion", "module": "kakusan.latent.model",
                          "model": config_to_json(model_config), "autoencoder": dataclasses.asdict(ae_settings),
                          "train": dataclasses.asdict(settings), "limit": limit}, argv=args.argv)
    t_start = time.perf_counter()
    x_train, y_train = joint_images("train")
    x_test, y_test = joint_images("test")
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    print(f"stage 1: the autoencoder on {len(x_train)} MNIST + Fashion-MNIST images", flush=True)
    from kakusan.commands.guard import DivergenceGuard

    with DivergenceGuard(None, f"--lr {ae_settings.lr:g}").naming_lr():
        ae, ae_meta = train_autoencoder(run.path / "autoencoder", x_train, x_test, ae_settings, device,
                                        config=model_config.autoencoder, progress=args.progress)
    print(f"  test PSNR {ae_meta['test_psnr_db']:.2f} dB, latent scale {ae_meta['latent_scale']:.4f}", flush=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = LatentDiffusion(model_config)
    model.autoencoder.load_state_dict(ae.state_dict())
    model = model.to(device)
    latents = encode_images(model.autoencoder.eval(), x_train.to(device))
    print(f"stage 2: a {model.gflop_per_example():.3f}-GFLOP latent UNet on {len(latents)} latents "
          f"{'×'.join(map(str, latents.shape[1:]))}, {settings.epochs} epochs", flush=True)
    with DivergenceGuard(model, f"--lr {settings.lr:g}").naming_lr():
        result = train_denoiser(run, model, latents, y_train, settings, device, progress=args.progress)
    model.eval()
    save_model(run.checkpoints, model, name="model", meta={"steps": result.steps})
    summary = evaluate_model(model, x_test, y_test, args.eval_images, seed=settings.seed)
    summary.update(autoencoder=ae_meta, steps=result.steps, train_seconds=result.seconds + ae_meta["train_seconds"],
                   wall_seconds=time.perf_counter() - t_start, gflop_per_example=model.gflop_per_example())
    run.write_json("summary.json", summary)
    acc = summary["prompt_accuracy"]
    said = (f"class-prompt accuracy {acc['mnist']:.1%} (MNIST), {acc['fashion-mnist']:.1%} (Fashion-MNIST)" if acc
            else f"test PSNR {summary['psnr_db']['mnist']:.2f} / {summary['psnr_db']['fashion-mnist']:.2f} dB")
    print(f"trained in {summary['train_seconds']:.0f} s of training; {said}; run: {run.path}")
    if args.export:
        export(run, Path(args.export))
        print(f"exported the model to {args.export}")
    return 0


def evaluate_model(model, x_test, y_test, per_class: int, seed: int = 0) -> dict:
    """The numbers ``summary.json`` keeps: reconstruction PSNR and metric-net accuracy (reconstructions against
    originals), and the accuracy of ``per_class`` images generated from each class-name prompt."""
    import torch

    from kakusan.data.captions import N_CLASSES, class_prompt
    from kakusan.evaluate.metric_net import get_metric_net
    from kakusan.runtime import make_generator

    out: dict = {"recon_accuracy": {}, "original_accuracy": {}, "prompt_accuracy": {}, "psnr_db": {}}
    device = next(model.parameters()).device
    for dom, lo in (("mnist", 0), ("fashion-mnist", 10)):
        rows = (y_test >= lo) & (y_test < lo + 10)
        x, y = x_test[rows][:2000].to(device), (y_test[rows][:2000] - lo).to(device)
        out["psnr_db"][dom] = float(model.autoencoder.psnr(x).mean())
        if not per_class:  # no metric networks (which may need training first): PSNR only
            continue
        net = get_metric_net(dom, device=device).eval()
        with torch.no_grad():
            recon = torch.cat([model.autoencoder.reconstruct(x[i:i + 500]) for i in range(0, len(x), 500)])
            out["original_accuracy"][dom] = float((net.logits(x).argmax(1) == y).float().mean())
            out["recon_accuracy"][dom] = float((net.logits(recon).argmax(1) == y).float().mean())
            hits = 0
            for c in range(lo, lo + 10):
                imgs = model.generate(class_prompt(c), n=per_class, generator=make_generator(seed + c, device))
                hits += int((net.logits(imgs).argmax(1) == c - lo).sum())
            out["prompt_accuracy"][dom] = hits / (10 * per_class)
    out["prompt_images_per_class"] = per_class
    out["n_classes"] = N_CLASSES
    return out


def export(run, folder: Path) -> None:
    """Copy the model, its training log and summary into ``folder`` (the shipped-model layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run.checkpoints / "model.safetensors", folder / "model.safetensors.tmp")
    (folder / "model.safetensors.tmp").replace(folder / "model.safetensors")
    for name, target in (("metrics.jsonl", "training_log.jsonl"), ("summary.json", "metrics.json"),
                         ("config.json", "config.json")):
        if (run.path / name).exists():
            shutil.copyfile(run.path / name, folder / target)
    ae_log = run.path / "autoencoder" / "metrics.jsonl"
    if ae_log.exists():
        shutil.copyfile(ae_log, folder / "autoencoder_training_log.jsonl")


__all__ = ["add_train_options", "run_train", "evaluate_model", "export"]

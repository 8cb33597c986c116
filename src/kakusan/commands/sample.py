"""``kakusan sample RUN_DIR``: rebuild a run's model from its checkpoint (no unpickling) and draw samples."""

from __future__ import annotations

import argparse
from pathlib import Path

from kakusan.commands import fresh_output
from kakusan.commands.args import finite_float, harden_run_options, nonneg_int, positive_int


# CLI option -> the keyword a model's ``sample`` may take (the model's signature decides which apply)
PASS_THROUGH = {"sampler": ("sampler",), "steps": ("steps", "n_steps"), "class_": ("labels",),
                "prompt": ("prompt",), "guidance": ("guidance",)}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sample", help="rebuild the model a run saved (kakusan.load) and draw samples")
    p.add_argument("source", help="a run directory (or its checkpoints/ folder, or a .safetensors checkpoint)")
    p.add_argument("-n", "--n-samples", type=positive_int, default=64, help="number of samples")
    p.add_argument("--out", default=None,
                   help="also write the samples here: .npy (raw samples), or .png (an image grid); must not exist")
    p.add_argument("--weights", default="ema",
                   help="ema (default; the raw weights when the run kept no EMA), model, last, or ema@DECAY")
    p.add_argument("--sampler", default=None, help="the model's sampler (e.g. ddpm, ddim, dpm++2m, dpm++2m-sde, heun)")
    p.add_argument("--steps", type=positive_int, default=None, help="sampling steps (Gibbs sweeps for an RBM)")
    p.add_argument("--class", dest="class_", type=nonneg_int, default=None, help="class label, for class-conditional models")
    p.add_argument("--prompt", default=None, help="text prompt, for text-conditional models")
    p.add_argument("--guidance", type=finite_float, default=None, help="classifier-free guidance scale")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    harden_run_options(p)
    p.set_defaults(run=run)


def sample_options(model, args: argparse.Namespace) -> dict:
    """The keyword arguments for ``model.sample`` from the pass-through options a user gave."""
    import inspect

    from kakusan.errors import KakusanError

    params = inspect.signature(model.sample).parameters
    kwargs = {}
    for option, names in PASS_THROUGH.items():
        value = getattr(args, option)
        if value is None:
            continue
        name = next((n for n in names if n in params), None)
        flag = "--" + option.rstrip("_")
        if name is None:
            raise KakusanError(f"{type(model).__name__} takes no {flag}: leave it out")
        if option == "class_":
            value = [value] * args.n_samples
        kwargs[name] = value
    return kwargs


def run(args: argparse.Namespace) -> int:
    import torch

    from kakusan.checkpoint import find, load_model
    from kakusan.errors import KakusanError
    from kakusan.report import figures
    from kakusan.report.run_dir import RunDir, atomic_save_npy, atomic_write_bytes
    from kakusan.runtime import make_generator, pick_device

    source = Path(args.source)
    if not source.exists():
        raise KakusanError(f"{source} does not exist: give the run directory a training command wrote")
    if args.n_samples < 1:
        raise KakusanError(f"-n must be a positive number of samples, got {args.n_samples}")
    if args.steps is not None and args.steps < 1:
        raise KakusanError(f"--steps must be a positive integer, got {args.steps}")
    out = fresh_output(args.out, ".png" if args.out.endswith(".png") else ".npy") if args.out else None
    device = pick_device(args.device)
    folder, name, part = find(source, args.weights)
    model = load_model(folder, name, map_location=device, part=part).eval()
    if not hasattr(model, "sample"):
        raise KakusanError(f"{type(model).__name__} cannot draw samples")
    kwargs = sample_options(model, args)
    with torch.no_grad():
        x = model.sample(args.n_samples, make_generator(args.seed, device), **kwargs)
    if isinstance(x, tuple):
        x = x[0]
    x = x.cpu()
    images = _as_images(model, x)
    if out is not None and out.suffix == ".png" and images is None:
        raise KakusanError(f"{type(model).__name__}'s samples of shape {tuple(x.shape[1:])} are not images: use --out "
                           "FILE.npy")
    run_dir = RunDir.create("sample", args.run_dir, args.runs_root)
    run_dir.write_config({"command": "sample", "class": type(model).__name__, "source": str(source),
                          "checkpoint": name, "weights": part, "n_samples": args.n_samples, "seed": args.seed,
                          "options": {k: v for k, v in kwargs.items() if k != "labels"}}, argv=args.argv)
    atomic_save_npy(run_dir.path / "samples.npy", x)
    if out is not None and out.suffix == ".npy":
        atomic_save_npy(out, x)
    if images is not None:
        lo, hi = float(images.min()), float(images.max())
        grid = figures.image_grid(images, run_dir.figures / "samples.png", value_range=(lo, hi if hi > lo else lo + 1))
        if out is not None and out.suffix == ".png":
            atomic_write_bytes(out, grid.read_bytes())
    print(f"{args.n_samples} samples of {type(model).__name__} {tuple(x.shape[1:])} ({part} weights of {name}); "
          f"run: {run_dir.path}")
    return 0


def _as_images(model, x):
    """Samples as (n, H, W) images when they are images: the model's ``image_shape``, or square vectors."""
    shape = getattr(model, "image_shape", None)
    if shape is not None:
        x = x.reshape(len(x), *shape)
        return x[:, 0] if x.ndim == 4 and x.shape[1] == 1 else x
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim == 3:
        return x
    side = int(round(x.shape[-1] ** 0.5)) if x.ndim == 2 else 0
    if side * side == x.shape[-1] and side >= 4:
        return x.reshape(len(x), side, side)
    return None

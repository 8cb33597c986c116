"""``kakusan generate``: from a prompt to images with the latent diffusion model shipped in the package (or a run).

    kakusan generate "a pair of trousers" -n 16 [--guidance 3] [--steps 20] [--sampler dpm++2m] [--seed 0]
                     [--negative "…"] [--out grid.png|images.npy] [--model RUN]
    kakusan generate train [--run-dir RUN] [--ae-epochs 4] [--epochs 8] [--resume]
    kakusan generate score IMAGES.npy --prompts "a sneaker" "a bag" …
    kakusan generate edit IMAGES.npy "a handwritten 8" [--strength 0.6] [--mask MASK.npy]

``generate`` prints where it wrote and how long it took; the same seed gives the same images. ``train`` is
:mod:`kakusan.commands.generate_train`. ``score`` ranks the prompts for each image by the conditional diffusion
ELBO (:mod:`kakusan.latent.classify`). ``edit`` is SDEdit, or inpainting with a mask (:mod:`kakusan.latent.edit`).
The argument parser sees ``generate train`` as the hidden command ``generate-train`` (and so on), so that a prompt
can follow ``generate`` directly.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kakusan.commands.args import finite_float, positive_int, seed

SAMPLERS = ("ddpm", "ddim", "dpm++2m", "dpm++2m-sde", "heun")
ACTIONS = ("train", "score", "edit")
DEFAULT_OUT = "generated.png"


def shipped_model_dir() -> Path:
    """The folder of the model shipped inside the package (``make model`` writes it)."""
    return Path(__file__).resolve().parent.parent / "models" / "prompt"


def load_prompt_model(source: str | None, device: str = "cpu"):
    """The LatentDiffusion of run ``source`` (its EMA weights), or the shipped one; one-line errors otherwise."""
    from kakusan import checkpoint
    from kakusan.errors import KakusanError
    from kakusan.latent.model import LatentDiffusion

    if source is None:
        folder = shipped_model_dir()
        if not checkpoint.exists(folder, "model"):
            raise KakusanError(f"the shipped prompt → image model is missing from {folder}: run `make model`, or "
                               "give --model RUN (a run of `kakusan generate train`)")
        model = checkpoint.load_model(folder, "model", map_location=device)
    else:
        path = Path(source)
        if not path.is_dir() or not checkpoint.exists(path / "checkpoints", "model"):
            raise KakusanError(f"--model {source} is not a finished run of `kakusan generate train` (no "
                               "checkpoints/model): finish it with --resume, or give another run")
        model = checkpoint.load_model(path / "checkpoints", "model", map_location=device)
    if not isinstance(model, LatentDiffusion):
        raise KakusanError(f"{source or 'the shipped model'} holds a {type(model).__name__}, not a prompt → image "
                           "model: give a run of `kakusan generate train`")
    return model.eval()


def _common(p: argparse.ArgumentParser, guidance: bool = True) -> None:
    p.add_argument("--model", default=None, metavar="RUN",
                   help="a run of `kakusan generate train` (default: the model shipped with kakusan)")
    p.add_argument("--sampler", choices=SAMPLERS, default="dpm++2m", help="sampler (default dpm++2m)")
    p.add_argument("--steps", type=positive_int, default=20, help="sampling steps (default 20)")
    if guidance:
        p.add_argument("--guidance", type=finite_float, default=3.0,
                       help="classifier-free guidance scale w (1: the conditional model, 0: unconditional; "
                            "default 3)")
        p.add_argument("--negative", default=None, help="a negative prompt: steer away from what it describes")
    p.add_argument("--seed", type=seed, default=0, help="random seed (same seed, same images)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("generate", help="prompt → image: `kakusan generate \"a pair of trousers\" -n 16`; "
                                               "also `generate train|score|edit`",
                              description="Images from a prompt with the shipped latent diffusion model. Other "
                                          "actions: `kakusan generate train` (train your own), `generate score "
                                          "IMAGES.npy --prompts …` (rank prompts by the diffusion ELBO), "
                                          "`generate edit IMAGES.npy PROMPT` (SDEdit; inpainting with --mask).")
    p.add_argument("prompt", help="what to draw, e.g. \"a handwritten 7\" or \"a photo of an ankle boot\"")
    p.add_argument("-n", "--n-images", type=positive_int, default=16, help="number of images (default 16)")
    p.add_argument("--out", default=None, help=f"grid .png or .npy of (n, 28, 28) floats in [0, 1]; must not exist "
                                               f"(default {DEFAULT_OUT}, or the next free generated-N.png)")
    _common(p)
    p.set_defaults(run=run_generate)

    from kakusan.commands.generate_train import add_train_options

    t = subparsers.add_parser("generate-train", prog="kakusan generate train",
                              description="Train a prompt → image model on MNIST + Fashion-MNIST (two stages: the "
                                          "autoencoder, then the text-conditional latent diffusion model).")
    add_train_options(t)

    s = subparsers.add_parser("generate-score", prog="kakusan generate score",
                              description="Rank prompts for each image by the conditional diffusion ELBO (the "
                                          "diffusion classifier).")
    s.add_argument("images", metavar="IMAGES.npy", help="images (n, 28, 28) or one (28, 28), floats in [0, 1]")
    s.add_argument("--prompts", nargs="+", required=True, help="the candidate prompts")
    s.add_argument("--samples", type=positive_int, default=32, help="(t, ε) draws per image, shared by the prompts "
                                                           "(default 32)")
    s.add_argument("--model", default=None, metavar="RUN", help="a run of `kakusan generate train` (default: shipped)")
    s.add_argument("--seed", type=seed, default=0, help="random seed")
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    s.set_defaults(run=run_score)

    e = subparsers.add_parser("generate-edit", prog="kakusan generate edit",
                              description="Image to image: noise the images part-way and denoise them with a prompt "
                                          "(SDEdit); with --mask, repaint only where the mask is 1 (inpainting).")
    e.add_argument("images", metavar="IMAGES.npy", help="images (n, 28, 28) or one (28, 28), floats in [0, 1]")
    e.add_argument("prompt", help="what the result should show")
    e.add_argument("--strength", type=finite_float, default=None,
                   help="fraction of the noise schedule redone, in (0, 1] (default 0.6; 1 with --mask)")
    e.add_argument("--mask", default=None, help=".npy (28, 28) or (n, 28, 28) of 0 (keep) and 1 (repaint)")
    e.add_argument("--out", default=None, help=".png grid (originals above results) or .npy; must not exist")
    _common(e)
    e.set_defaults(run=run_edit)


def rewrite_argv(argv: list[str]) -> list[str]:
    """``generate train …`` → ``generate-train …`` (and score, edit): the parser's hidden command names."""
    if len(argv) >= 2 and argv[0] == "generate" and argv[1] in ACTIONS:
        return [f"generate-{argv[1]}", *argv[2:]]
    return argv


# ---------------------------------------------------------------- generate


def _out_path(out: str | None) -> Path:
    from kakusan.commands import fresh_output
    from kakusan.errors import KakusanError

    if out is None:
        path, k = Path(DEFAULT_OUT), 2
        while path.exists():
            path, k = Path(f"generated-{k}.png"), k + 1
        return path
    suffix = Path(out).suffix
    if suffix not in (".png", ".npy"):
        raise KakusanError(f"--out {out} must end in .png (a grid) or .npy (the images)")
    return fresh_output(out, suffix)


def _check_sampling(args) -> None:
    import math

    from kakusan.errors import KakusanError

    # lower bounds (positive counts, seeds) are the argparse types' (kakusan.commands.args); these are the upper ones
    if getattr(args, "n_images", 1) > 4096:
        raise KakusanError(f"-n must be between 1 and 4096, got {args.n_images}")
    if args.steps > 1000:
        raise KakusanError(f"--steps must be between 1 and 1000, got {args.steps}")
    g = getattr(args, "guidance", 1.0)
    if not math.isfinite(g) or g < 0 or g > 50:
        raise KakusanError(f"--guidance must be a number in [0, 50] (1: none, 3: the default), got {g}")


def _write(images, out: Path, nrow: int | None = None) -> None:
    from kakusan.files import atomic_save_npy
    from kakusan.report.figures import image_grid

    if out.suffix == ".npy":
        atomic_save_npy(out, images.numpy().astype("float32"))
    else:
        image_grid(images, out, nrow=nrow)


def run_generate(args: argparse.Namespace) -> int:
    import torch

    from kakusan.text import check_prompt
    from kakusan.runtime import make_generator, pick_device, set_threads

    t0 = time.perf_counter()
    check_prompt(args.prompt)
    if args.negative is not None and args.negative.strip():
        check_prompt(args.negative, "negative prompt")
    _check_sampling(args)
    out = _out_path(args.out)
    set_threads()
    device = pick_device(args.device)
    model = load_prompt_model(args.model, str(device))
    with torch.no_grad():
        images = model.generate(args.prompt, n=args.n_images, generator=make_generator(args.seed, device),
                                sampler=args.sampler, steps=args.steps, guidance=args.guidance,
                                negative=args.negative).cpu()
    _write(images, out)
    print(f"wrote {args.n_images} image{'s' if args.n_images > 1 else ''} of \"{args.prompt}\" to {out} in "
          f"{time.perf_counter() - t0:.1f} s ({args.sampler}, {args.steps} steps, guidance {args.guidance:g}, "
          f"seed {args.seed})")
    return 0


# ---------------------------------------------------------------- score / edit


def read_images(path: str, what: str = "images"):
    """(n, 28, 28) float32 images in [0, 1] from a .npy file; one-line errors for anything else."""
    import numpy as np
    import torch

    from kakusan.errors import DataError

    p = Path(path)
    if p.suffix != ".npy":
        raise DataError(f"{path}: {what} must be a .npy file of (n, 28, 28) floats in [0, 1]")
    if not p.is_file():
        raise DataError(f"{path} does not exist: check the path")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        raise DataError(f"{path} is not a readable .npy array ({str(e).splitlines()[0] if str(e) else 'empty'}): "
                        "save it with numpy.save") from None
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{path} holds {arr.dtype} values; {what} must be real numbers in [0, 1]")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (28, 28) or len(arr) == 0:
        raise DataError(f"{path} has shape {arr.shape}; {what} must be (n, 28, 28) or (28, 28) with n ≥ 1")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise DataError(f"{path}: {what} must be finite values in [0, 1] (divide 8-bit images by 255)")
    return torch.from_numpy(arr)


def run_score(args: argparse.Namespace) -> int:
    import torch

    from kakusan.errors import KakusanError
    from kakusan.latent.classify import prompt_scores
    from kakusan.text import check_prompt
    from kakusan.runtime import make_generator, pick_device, set_threads

    t0 = time.perf_counter()
    images = read_images(args.images)
    prompts = [check_prompt(p) for p in args.prompts]
    if len(prompts) < 2:
        raise KakusanError("give at least two --prompts to rank")
    set_threads()
    device = pick_device(args.device)
    model = load_prompt_model(args.model, str(device))
    scores = prompt_scores(model, images.to(device), prompts, args.samples, make_generator(args.seed, device))
    width = max(len(p) for p in prompts)
    for i, row in enumerate(scores):
        order = torch.argsort(row, descending=True).tolist()
        print(f"image {i}: best \"{prompts[order[0]]}\"")
        for k in order:
            print(f"  {prompts[k]:<{width}}  {float(row[k]):+.4f}")
    print(f"scored {len(images)} image{'s' if len(images) > 1 else ''} against {len(prompts)} prompts "
          f"({args.samples} draws each) in {time.perf_counter() - t0:.1f} s; score = −E‖ε − ε̂‖²/D, higher is "
          "more likely")
    return 0


def run_edit(args: argparse.Namespace) -> int:
    import torch

    from kakusan.latent.edit import edit
    from kakusan.text import check_prompt
    from kakusan.runtime import make_generator, pick_device, set_threads

    t0 = time.perf_counter()
    images = read_images(args.images)
    check_prompt(args.prompt)
    mask = None
    if args.mask is not None:
        mask = read_images(args.mask, "the mask")
        if len(mask) not in (1, len(images)):
            from kakusan.errors import DataError

            raise DataError(f"{args.mask} holds {len(mask)} masks for {len(images)} images: give one, or one per image")
        mask = mask[0] if len(mask) == 1 else mask
    strength = args.strength if args.strength is not None else (1.0 if mask is not None else 0.6)
    args.n_images = len(images)
    _check_sampling(args)
    out = _out_path(args.out)
    set_threads()
    device = pick_device(args.device)
    model = load_prompt_model(args.model, str(device))
    result = edit(model, images.to(device), args.prompt, strength=strength, mask=mask,
                  generator=make_generator(args.seed, device), sampler=args.sampler, steps=args.steps,
                  guidance=args.guidance, negative=args.negative).cpu()
    if out.suffix == ".png":
        _write(torch.cat([images, result]), out, nrow=len(images))
    else:
        _write(result, out)
    kind = "inpainted" if mask is not None else f"edited (strength {strength:g})"
    print(f"{kind} {len(images)} image{'s' if len(images) > 1 else ''} towards \"{args.prompt}\"; wrote {out} in "
          f"{time.perf_counter() - t0:.1f} s")
    return 0


__all__ = ["add_parser", "load_prompt_model", "shipped_model_dir", "rewrite_argv", "read_images"]

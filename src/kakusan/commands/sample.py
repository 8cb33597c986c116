"""``kakusan sample RUN_DIR``: rebuild a run's model from its checkpoint (no unpickling) and draw samples."""

from __future__ import annotations

import argparse
from pathlib import Path

from kakusan.commands import add_run_options, fresh_output


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sample", help="draw samples from the model a run saved (checkpoints/model or last)")
    p.add_argument("source", help="a run directory (or its checkpoints/ folder)")
    p.add_argument("-n", "--n-samples", type=int, default=64, help="number of samples")
    p.add_argument("--out", default=None, help="also write the samples here (.npy; must not exist)")
    p.add_argument("--checkpoint", default=None, help="checkpoint name (default: model, else last)")
    add_run_options(p)
    p.set_defaults(run=run)


def find_checkpoint(source: Path, name: str | None) -> tuple[Path, str]:
    """The checkpoint folder and name of a run: ``checkpoints/model`` if present, else ``checkpoints/last``."""
    from kakusan.errors import CheckpointError

    folder = source / "checkpoints" if (source / "checkpoints").is_dir() else source
    names = [name] if name else ["model", "last"]
    for n in names:
        if (folder / f"{n}.json").exists():
            return folder, n
    raise CheckpointError(f"no checkpoint {' or '.join(names)} in {folder}: give a run directory that saved a model")


def run(args: argparse.Namespace) -> int:
    import torch

    from kakusan.errors import KakusanError
    from kakusan.report import figures
    from kakusan.report.checkpoint import load_model
    from kakusan.report.run_dir import RunDir, atomic_save_npy
    from kakusan.runtime import make_generator

    source = Path(args.source)
    if not source.is_dir():
        raise KakusanError(f"{source} is not a directory: give the run directory a training command wrote")
    if args.n_samples < 1:
        raise KakusanError(f"-n must be a positive number of samples, got {args.n_samples}")
    out = fresh_output(args.out, ".npy") if args.out else None
    folder, name = find_checkpoint(source, args.checkpoint)
    model = load_model(folder, name)
    if not hasattr(model, "sample"):
        raise KakusanError(f"{type(model).__name__} cannot draw samples")
    with torch.no_grad():
        x = model.sample(args.n_samples, make_generator(args.seed))
    if isinstance(x, tuple):
        x = x[0]
    run_dir = RunDir.create("sample", args.run_dir, args.runs_root)
    run_dir.write_config({"command": "sample", "class": type(model).__name__, "source": str(source),
                          "checkpoint": name, "n_samples": args.n_samples, "seed": args.seed}, argv=args.argv)
    atomic_save_npy(run_dir.path / "samples.npy", x)
    if out is not None:
        atomic_save_npy(out, x)
    side = int(round(x.shape[-1] ** 0.5)) if x.ndim == 2 else 0
    if x.ndim == 3 or (side * side == x.shape[-1] and side >= 4):
        imgs = x.reshape(len(x), side, side) if x.ndim == 2 else x
        lo, hi = float(imgs.min()), float(imgs.max())
        figures.image_grid(imgs, run_dir.figures / "samples.png", value_range=(lo, hi if hi > lo else lo + 1))
    print(f"{args.n_samples} samples of {type(model).__name__} {tuple(x.shape[1:])}; run: {run_dir.path}")
    return 0

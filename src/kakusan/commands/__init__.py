"""One module per ``kakusan`` subcommand, each with ``add_parser(subparsers)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_run_options(parser: argparse.ArgumentParser, *, seed: bool = True, device: bool = False) -> None:
    """Options every command that writes a run directory shares."""
    parser.add_argument("--run-dir", default=None, help="write the run here (must be new or empty)")
    parser.add_argument("--runs-root", default="runs", help="parent of automatically named run directories")
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    if device:
        parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")


def fresh_output(path: str, suffix: str) -> Path:
    """A new output file for ``--out``: right suffix, not there yet (nothing is overwritten), folder exists."""
    from kakusan.errors import KakusanError

    out = Path(path)
    if out.suffix != suffix:
        raise KakusanError(f"--out {out} must end in {suffix}")
    if out.exists():
        raise KakusanError(f"{out} already exists: choose another --out (kakusan never overwrites your files)")
    if not out.parent.exists():
        raise KakusanError(f"folder {out.parent} does not exist: create it or choose another --out")
    return out

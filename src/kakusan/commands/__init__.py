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
    if not out.parent.is_dir():
        raise KakusanError(f"{out.parent} is a file, not a folder: choose another --out")
    return out


def resume_run(run_dir: str | None, read_config, settings_type, epochs: int | None, defaults: dict | None = None):
    """What ``--resume`` continues: (model without weights, config, settings, RunDir) of the run in ``run_dir``.

    ``read_config(run_dir)`` reads and checks the run's ``config.json``; its ``"train"`` entry rebuilds
    ``settings_type`` (``defaults`` fill fields older runs lack). ``epochs`` (None: as recorded) may extend the run —
    never shorten it — and the extension is written back to ``config.json``. The weights come from the checkpoint.
    """
    import dataclasses

    from kakusan.checkpoint import exists
    from kakusan.errors import KakusanError
    from kakusan.registry import build_model
    from kakusan.report.run_dir import RunDir

    if run_dir is None or not exists(Path(run_dir) / "checkpoints", "last"):
        raise KakusanError("--resume needs --run-dir pointing at a run with a training checkpoint (checkpoints/last)")
    config = read_config(run_dir)
    settings = settings_type(**{**(defaults or {}), **config["train"]})
    run = RunDir(Path(run_dir))
    if epochs is not None and epochs != settings.epochs:
        if epochs < settings.epochs:
            raise KakusanError(f"--epochs {epochs} is fewer than the run's {settings.epochs}: resume only extends a run")
        settings = dataclasses.replace(settings, epochs=epochs)
        config["train"] = dataclasses.asdict(settings)
        run.write_json("config.json", config)
    return build_model(config["class"], config["model"], config.get("module")), config, settings, run

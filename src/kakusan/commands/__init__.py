"""One module per ``kakusan`` subcommand, each with ``add_parser(subparsers)`` and ``run(args) -> int``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


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


# Options --resume accepts whatever the run was started with: where the run is, the device, and --epochs (which
# extends the run, with a note). Every other option given with --resume must equal the run's own.
RESUME_MAY_CHANGE = frozenset({"run_dir", "runs_root", "resume", "device", "epochs"})


def typed_options(argv: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The options typed in ``argv`` (``["kakusan", "rbm", "train", ...]``): ({dest: value}, {dest: "--flag"}).

    Abbreviations and ``--opt=value`` count; defaults do not. Parsed by kakusan's own parser; a
    command line it rejects raises :class:`KakusanError`.
    """
    parser = _parser()
    _suppress_defaults(parser)
    names: dict[str, str] = {}
    for p in _parsers(parser):
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                names.setdefault(action.dest, max(action.option_strings, key=len))
    ns = _quiet_parse(parser, argv)
    return {k: v for k, v in vars(ns).items() if k in names}, names


def check_resume(args: argparse.Namespace, run_dir: str | Path | None = None,
                 may_change: frozenset[str] | set[str] = RESUME_MAY_CHANGE) -> dict[str, Any]:
    """Refuse options given with ``--resume`` that conflict with the run's own (listing them all, one line).

    The run's options are its recorded command line (``argv.json``) parsed again, or, when that cannot be
    read, the values its ``config.json`` records under the same names. Options in :data:`RESUME_MAY_CHANGE`
    (or ``may_change``) are always accepted (``--epochs`` extends the run; see :func:`resume_run` — a command
    that cannot extend passes ``may_change`` without ``epochs``). Returns the typed options.
    """
    import json

    from kakusan.errors import KakusanError

    run = Path(run_dir if run_dir is not None else getattr(args, "run_dir", None) or ".")
    argv = getattr(args, "argv", None)
    if not argv:
        return {}
    typed, names = typed_options(list(argv))
    asked = {k: v for k, v in typed.items() if k not in may_change}
    if not asked:
        return typed
    original: dict[str, Any] | None = None
    try:
        saved = json.loads((run / "argv.json").read_text())
        if isinstance(saved, list) and saved[:1] == ["kakusan"] and all(isinstance(t, str) for t in saved):
            original = vars(_quiet_parse(_parser(), saved))
    except (OSError, ValueError, KakusanError):
        original = None
    if original is None:
        original = _config_values(run)
    conflicts = []
    for dest, value in sorted(asked.items()):
        if dest not in original:
            conflicts.append(f"{names[dest]} {_show(value)} (the run does not record it)")
        elif original[dest] != value:
            had = "the run did not set it" if original[dest] is None else f"the run has {_show(original[dest])}"
            conflicts.append(f"{names[dest]} {_show(value)} ({had})")
    if conflicts:
        raise KakusanError(f"--resume continues the run in {run} with the settings it was started with, and these "
                           f"options differ: {'; '.join(conflicts)}; leave them out (--epochs may extend the run), or "
                           "start a new run with them")
    return typed


def resume_run(run_dir: str | None, read_config, settings_type, epochs: int | None, defaults: dict | None = None,
               *, args: argparse.Namespace | None = None):
    """What ``--resume`` continues: (model without weights, config, settings, RunDir) of the run in ``run_dir``.

    ``read_config(run_dir)`` reads and checks the run's ``config.json``; its ``"train"`` entry rebuilds
    ``settings_type`` (``defaults`` fill fields older runs lack). ``epochs`` (None: as recorded) may extend the run —
    never shorten it — and the extension is written back to ``config.json``, with a one-line note on stderr. The
    weights come from the checkpoint. With ``args`` (the command's namespace), the options typed with
    ``--resume`` are checked against the run's first (:func:`check_resume`) and ``--epochs`` is taken from them.
    """
    import dataclasses
    import sys

    from kakusan.checkpoint import exists
    from kakusan.errors import KakusanError
    from kakusan.registry import build_model
    from kakusan.report.run_dir import RunDir

    if run_dir is None:
        raise KakusanError("--resume needs --run-dir pointing at a run with a training checkpoint (checkpoints/last)")
    if not Path(run_dir).is_dir():
        raise KakusanError(f"--resume: {run_dir} is not a run directory; give the --run-dir of the run to continue")
    if not exists(Path(run_dir) / "checkpoints", "last"):
        raise KakusanError(f"--resume: {run_dir} has no training checkpoint (checkpoints/last) — the run stopped "
                           "before its first one: run the same command without --resume (the directory is reused)")
    if args is not None:
        typed = check_resume(args, run_dir)
        epochs = typed.get("epochs")
    config = read_config(run_dir)
    try:
        settings = settings_type(**{**(defaults or {}), **config["train"]})
    except (KeyError, TypeError) as e:
        raise KakusanError(f"{Path(run_dir) / 'config.json'} does not describe a training run of this command "
                           f"({type(e).__name__}: {e}); the run directory is damaged or from another kakusan") from None
    run = RunDir(Path(run_dir))
    if epochs is not None and epochs != settings.epochs:
        if epochs < settings.epochs:
            raise KakusanError(f"--epochs {epochs} is fewer than the run's {settings.epochs}: resume only extends a run")
        sys.stderr.write(f"kakusan: note: extending the run in {run_dir} from {settings.epochs} to {epochs} epochs\n")
        settings = dataclasses.replace(settings, epochs=epochs)
        config["train"] = dataclasses.asdict(settings)
        run.write_json("config.json", config)
    return build_model(config["class"], config["model"], config.get("module")), config, settings, run


def _parser() -> argparse.ArgumentParser:
    from kakusan.cli import build_parser

    return build_parser()


def _parsers(parser: argparse.ArgumentParser):
    """``parser`` and every sub-parser under it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _parsers(sub)


def _suppress_defaults(parser: argparse.ArgumentParser) -> None:
    for p in _parsers(parser):
        p._defaults = {}
        for action in p._actions:
            if action.option_strings:
                action.default = argparse.SUPPRESS


def _quiet_parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args`` of ``argv`` (with ``kakusan`` first), an error raised instead of printed."""
    import contextlib
    import io

    from kakusan.commands.generate import rewrite_argv
    from kakusan.errors import KakusanError

    tokens = list(argv[1:] if argv[:1] == ["kakusan"] else argv)
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_args(rewrite_argv(tokens))
    except SystemExit:
        raise KakusanError(f"cannot parse the command line {' '.join(tokens)!r}") from None


def _config_values(run: Path) -> dict[str, Any]:
    """Values a run's ``config.json`` records, by name (its train, data and model entries, then the top level)."""
    import json

    try:
        config = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(config, dict):
        return {}
    out: dict[str, Any] = {}
    for key in ("model", "data", "train"):
        if isinstance(config.get(key), dict):
            out.update(config[key])
    return out


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)

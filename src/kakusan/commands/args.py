"""The one validation layer for command-line values: argparse types, and checks of options that do not apply.

Each type turns the text a user typed into a value or raises :class:`argparse.ArgumentTypeError`, which the
parser reports as one line ``kakusan …: error: argument --lr: must be a positive number, got '-1'`` with exit
status 2, before anything is loaded or written. Counts are :func:`positive_int` or :func:`nonneg_int`, seeds
:func:`seed`, real numbers :func:`finite_float` (never NaN or ±inf) and its positive, non-negative and
probability variants.

Options that do not apply to the chosen method have ``default=None`` in their parser, so a value the user gave
can be told from a default; :func:`refuse_unused` turns a given one into a one-line error.
"""

from __future__ import annotations

import argparse
import math

SEED_LIMIT = 2**32  # seeds are 0 … 2³² − 1, what every generator (torch, NumPy) takes


def _int(text: str, what: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer ≥ 1 (a count, a size, a number of steps)."""
    value = _int(text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def nonneg_int(text: str) -> int:
    """An integer ≥ 0 (0 usually means "none" or "the default interval")."""
    value = _int(text, "a non-negative integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def odd_window(text: str) -> int:
    """An odd window size ≥ 3 (a K×K neighbourhood centred on a pixel)."""
    value = _int(text, "an odd window size ≥ 3")
    if value < 3 or value % 2 == 0:
        raise argparse.ArgumentTypeError(f"must be an odd window size ≥ 3 (3, 5, 7 …), got {text!r}")
    return value


def interval_or_never(text: str) -> int:
    """Steps between events: a positive integer, 0 (the default interval) or −1 (never)."""
    value = _int(text, "an integer ≥ −1 (−1: never, 0: the default)")
    if value < -1:
        raise argparse.ArgumentTypeError(f"must be −1 (never), 0 (the default) or a positive integer, got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed, 0 … 2³² − 1."""
    value = _int(text, f"a seed, an integer from 0 to {SEED_LIMIT - 1}")
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be a seed, an integer from 0 to {SEED_LIMIT - 1}, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A real number (not NaN, not ±inf)."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate, a scale)."""
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def nonneg_float(text: str) -> float:
    """A finite number ≥ 0 (a penalty, a regulariser)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0, got {text!r}")
    return value


def probability(text: str) -> float:
    """A probability in [0, 1]."""
    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text!r}")
    return value


def below_one(text: str) -> float:
    """A number in [0, 1): a momentum, a decay, a drop rate (1 would never forget or always drop)."""
    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def open_unit(text: str) -> float:
    """A number in (0, 1): an inverse temperature below the model's."""
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return value


def refuse_unused(args: argparse.Namespace, names, where: str) -> None:
    """A one-line error naming the first option of ``names`` (dests) the user gave, which does not apply ``where``.

    An option counts as given when its value is not None (such options have ``default=None``) and, for a flag,
    when it is True.
    """
    from kakusan.errors import KakusanError

    for name in names:
        value = getattr(args, name, None)
        if value is not None and value is not False:
            raise KakusanError(f"--{name.replace('_', '-')} does not apply {where}: leave it out")


def or_default(value, default):
    """``value``, or ``default`` where the option was not given (None)."""
    return default if value is None else value


# ---------------------------------------------------------------- a run directory given as an argument


def read_run_config(run, command: str) -> dict:
    """The ``config.json`` of a run directory that ``kakusan {command}`` wrote; one-line errors otherwise
    (not a folder, no config.json, not valid JSON, no or another command)."""
    from pathlib import Path

    from kakusan.errors import CheckpointError
    from kakusan.files import read_json

    folder = Path(run)
    if not folder.is_dir():
        raise CheckpointError(f"{run} is not a run directory: give the folder `kakusan {command}` wrote")
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{run} is not a run directory of `kakusan {command}` (no config.json)")
    config = read_json(path, "run's config.json")
    written = config.get("command")
    if not isinstance(written, str):
        raise CheckpointError(f"{path} names no command: it is damaged or was not written by `kakusan {command}`")
    if written != command:
        raise CheckpointError(f"{run} was written by `kakusan {written}`, not `kakusan {command}`")
    return config


def config_part(config: dict, key: str, cls, run):
    """``cls(**config[key])`` (a recipe or settings dataclass); a one-line error when the entry is missing or
    does not fit."""
    from kakusan.errors import CheckpointError

    entry = config.get(key)
    if not isinstance(entry, dict):
        raise CheckpointError(f"{run}/config.json has no {key!r} entry: the run directory is damaged")
    try:
        return cls(**entry)
    except TypeError as e:
        raise CheckpointError(f"{run}/config.json: its {key!r} entry does not fit ({e}): the run directory is "
                              "damaged or from another version") from None


def harden_run_options(parser: argparse.ArgumentParser, *, seed_option: bool = True, device: bool = False) -> None:
    """:func:`kakusan.commands.add_run_options`, with ``--seed`` checked by :func:`seed`."""
    from kakusan.commands import add_run_options

    add_run_options(parser, seed=seed_option, device=device)
    for action in parser._actions:
        if action.dest == "seed":
            action.type = seed

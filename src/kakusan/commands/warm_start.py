"""``--init RUN``: start a new training run from the weights another run saved (fine-tuning, a second phase
with another learning-rate schedule), instead of from a random initialisation.

Only the weights are taken: the new run has its own optimizer (fresh Adam moments), schedule, EMA, step
counter and seed, and its ``config.json`` records where the weights came from (run, weights, step, and the
SHA-256 manifest hash of the checkpoint read), so the new run's numbers stay traceable. The source must hold
the same model class with the same configuration; anything else is a one-line error naming the difference.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def add_init_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--init", default=None, metavar="RUN",
                        help="start from the weights of RUN (its EMA average if it kept one; RUN:model or "
                             "RUN:last for the raw weights) with a fresh optimizer and schedule")


def split_source(source: str) -> tuple[str, str]:
    """``RUN`` → (RUN, "ema"); ``RUN:model`` / ``RUN:last`` / ``RUN:ema@0.999`` → (RUN, weights)."""
    from kakusan.checkpoint import WEIGHTS

    head, sep, tail = source.rpartition(":")
    if sep and head and (tail in WEIGHTS or tail.startswith("ema@")):
        return head, tail
    return source, "ema"


def read_source(source: str) -> tuple[torch.nn.Module, dict]:
    """(the model the run ``source`` saved — its EMA weights unless RUN:model / RUN:last —, what to record of it in
    config.json: run, weights, checkpoint, step and SHA-256 manifest hash)."""
    from kakusan.checkpoint import find, load_model, path_of, read_manifest

    run, weights = split_source(source)
    folder, name, part = find(run, weights)
    saved = load_model(folder, name, map_location="cpu", part=part)
    head = read_manifest(path_of(folder, name))  # the manifest alone: its step and hash
    return saved, {"run": str(Path(run).resolve()), "weights": part, "checkpoint": name,
                   "step": head.get("step", (head.get("meta") or {}).get("step")), "sha256_all": head.get("sha256_all")}


def warm_start(model: torch.nn.Module, source: str) -> dict:
    """Copy into ``model`` the weights saved by the run ``source``; return what to record in config.json."""
    from kakusan.errors import KakusanError
    from kakusan.registry import config_to_json

    saved, record = read_source(source)
    if type(saved) is not type(model):
        raise KakusanError(f"--init {source}: that run saved a {type(saved).__name__}, this run builds a "
                           f"{type(model).__name__}; give a run of the same model")
    mine, theirs = config_to_json(model.config), config_to_json(saved.config)
    if mine != theirs:
        keys = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        shown = "; ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in keys[:4])
        raise KakusanError(f"--init {source}: the saved model's configuration differs ({shown}); give the same "
                           "model options as that run")
    model.load_state_dict(saved.state_dict())
    return record

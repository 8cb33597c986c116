"""Checkpoints: tensors in safetensors, everything else in JSON; nothing is ever unpickled.

A checkpoint named ``NAME`` in a directory is two files: ``NAME.safetensors`` (the tensors) and
``NAME.json`` (``{"class": ..., "config": {...}, "sha256": ..., "meta": {...}}``). Both are written
atomically, the JSON last, so a checkpoint whose JSON exists is complete; the JSON records the
hash of the tensor file so a mismatched pair is detected.

Model classes that can be rebuilt from a checkpoint are registered with :func:`register_model`;
they take their hyper-parameters as keyword arguments and expose them as ``model.config``
(a dataclass or a dict), so ``cls(**config)`` rebuilds the module before its tensors are loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from kakusan.errors import CheckpointError
from kakusan.report.run_dir import atomic_write_bytes, atomic_write_json, to_jsonable

from kakusan.registry import MODELS, model_class, register_model  # noqa: E402,F401  (interim)


def model_config(model: torch.nn.Module) -> dict[str, Any]:
    config = getattr(model, "config", None)
    if config is None:
        raise CheckpointError(f"{type(model).__name__} has no .config, so it cannot be checkpointed")
    return to_jsonable(asdict(config) if is_dataclass(config) else dict(config))


def save_tensors(directory: Path, name: str, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> Path:
    """Write ``name.safetensors`` and then ``name.json`` (with the tensor file's SHA-256), atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    blob = st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    atomic_write_bytes(directory / f"{name}.safetensors", blob)
    atomic_write_json(directory / f"{name}.json", {**info, "sha256": hashlib.sha256(blob).hexdigest()})
    return directory / f"{name}.json"


def load_tensors(directory: Path, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_tensors`, checking that its two files belong together."""
    directory = Path(directory)
    jpath, tpath = directory / f"{name}.json", directory / f"{name}.safetensors"
    if not jpath.exists() or not tpath.exists():
        raise CheckpointError(f"no complete checkpoint {name!r} in {directory}: expected {jpath.name} and {tpath.name}")
    try:
        info = json.loads(jpath.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{jpath} is not valid JSON ({e.msg}); the checkpoint is damaged") from None
    blob = tpath.read_bytes()
    if info.get("sha256") not in (None, hashlib.sha256(blob).hexdigest()):
        raise CheckpointError(f"{tpath} does not match {jpath.name} (hash differs); the checkpoint is damaged")
    try:
        tensors = st_load(blob)
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{tpath} is not a readable safetensors file ({e})") from None
    return tensors, info


def save_model(directory: Path, model: torch.nn.Module, name: str = "model", meta: dict[str, Any] | None = None) -> Path:
    """Save a registered model's state dict and config."""
    cls = type(model).__name__
    if cls not in MODELS:
        raise CheckpointError(f"{cls} is not registered; decorate it with @register_model to checkpoint it")
    info = {"class": cls, "config": model_config(model), "meta": to_jsonable(meta or {})}
    return save_tensors(directory, name, model.state_dict(), info)


def load_model(directory: Path, name: str = "model", map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a model saved by :func:`save_model` (no unpickling: class looked up in the registry)."""
    tensors, info = load_tensors(directory, name)
    cls = model_class(info.get("class", ""))
    model = cls(**info.get("config", {}))
    model.load_state_dict(tensors)
    return model.to(map_location)

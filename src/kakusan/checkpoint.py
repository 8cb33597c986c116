"""Checkpoints: one safetensors file each, tensors in named parts and a JSON manifest in its header.

A checkpoint ``NAME`` in a folder is the single file ``NAME.safetensors`` (format 2):

- its tensors are grouped in *parts* by a prefix: ``model/W``, ``ema/W``, ``optimizer/state.0.exp_avg``,
  ``objective/chains``, ``generator/rank0``, ``autoencoder/…`` — a model, its EMA weights, a component;
- its safetensors header holds, under the key ``kakusan``, a JSON manifest: the format version, the
  model's class, module and config (:mod:`kakusan.registry` rebuilds it, never unpickling), what
  each part is, the training state that is not a tensor (step, optimizer hyper-parameters, scheduler),
  and the SHA-256 of the whole tensor data, checked on every read.

One file is written to a temporary name and renamed over the old one, so a kill at any instant leaves
either the old checkpoint or the new one whole — model, EMA, optimizer, scheduler, step, generators and
objective state always belong to the same step.

Format 1 (``NAME.json`` beside ``NAME.safetensors``, written by kakusan ≤ 0.1 runs) is still read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from kakusan.errors import CheckpointError
from kakusan.files import atomic_write_bytes, to_jsonable
from kakusan.registry import MODELS, build_model, config_to_json, model_config
from kakusan.runtime import world

FORMAT = 2
_KEY = "kakusan"


def path_of(directory: Path, name: str) -> Path:
    return Path(directory) / f"{name}.safetensors"


def exists(directory: Path, name: str) -> bool:
    """Whether a complete checkpoint ``name`` (format 2, or format 1's JSON + tensors) is in ``directory``."""
    directory = Path(directory)
    return path_of(directory, name).exists() and (_format(path_of(directory, name)) == FORMAT
                                                   or (directory / f"{name}.json").exists())


def save(directory: Path, name: str, parts: dict[str, dict[str, torch.Tensor]], manifest: dict[str, Any]) -> Path:
    """Write the checkpoint ``name``: tensors by part, plus ``manifest`` (JSON-able), atomically."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for part, entries in parts.items():
        if "/" in part:
            raise CheckpointError(f"part name {part!r} may not contain '/'")
        for key, value in entries.items():
            value = value.detach().to("cpu").contiguous()
            if value.data_ptr() in seen and value.numel():  # a component shares the model's storage
                value = value.clone()
            seen.add(value.data_ptr())
            tensors[f"{part}/{key}"] = value
    digest = _data_sha256(st_save(tensors))
    head = {"format": FORMAT, **to_jsonable(manifest), "parts": {p: (manifest.get("parts") or {}).get(p, {})
                                                                   for p in parts}, "sha256": digest}
    blob = st_save(tensors, metadata={_KEY: json.dumps(head)})
    if _data_sha256(blob) != digest:  # pragma: no cover - safetensors layout must not depend on metadata
        raise CheckpointError("safetensors laid out the same tensors differently; cannot hash the checkpoint")
    directory = Path(directory)
    path = path_of(directory, name)
    if world()[0] != 0:  # under torchrun only rank 0 writes
        return path
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(f".{path.name}.tmp-*"):  # left by a process killed mid-write
        if stale.name != f".{path.name}.tmp-{os.getpid()}":
            stale.unlink(missing_ok=True)
    atomic_write_bytes(path, blob)
    return path


def load(directory: Path, name: str) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Read checkpoint ``name``: ``(parts, manifest)``, its hash checked. Format 1 comes back as part ``model``."""
    directory = Path(directory)
    path = path_of(directory, name)
    if not path.exists():
        raise CheckpointError(f"no checkpoint {name!r} in {directory}: expected {path.name}")
    blob = path.read_bytes()
    head = _header(blob, path)
    if head is None:
        return _load_format1(directory, name, blob)
    if head.get("format", 0) > FORMAT:
        raise CheckpointError(f"{path} is checkpoint format {head['format']}, newer than this kakusan reads "
                              f"({FORMAT}): upgrade kakusan")
    if _data_sha256(blob) != head.get("sha256"):
        raise CheckpointError(f"{path} fails its hash check; the checkpoint is damaged")
    parts: dict[str, dict[str, torch.Tensor]] = {p: {} for p in head.get("parts", {})}
    for key, value in st_load(blob).items():
        part, _, rest = key.partition("/")
        parts.setdefault(part, {})[rest] = value
    return parts, head


def model_manifest(model: torch.nn.Module) -> dict[str, Any]:
    """What rebuilds ``model``: its registered class, module and config."""
    cls = type(model)
    if MODELS.get(cls.__name__) is not cls:
        raise CheckpointError(f"{cls.__name__} is not registered; decorate it with @register_model to checkpoint it")
    return {"class": cls.__name__, "module": cls.__module__, "config": config_to_json(model_config(model))}


def save_model(directory: Path, model: torch.nn.Module, name: str = "model", meta: dict[str, Any] | None = None,
               extra_parts: dict[str, dict[str, torch.Tensor]] | None = None,
               components: dict[str, torch.nn.Module] | None = None) -> Path:
    """Save a registered model (part ``model``), optional extra parts (``ema``…) and named components.

    A component (an autoencoder, a denoiser) is a registered model saved as its own part with its own
    class and config, so ``kakusan.load(run, part="autoencoder")`` rebuilds it alone.
    """
    parts = {"model": model.state_dict(), **(extra_parts or {})}
    described: dict[str, Any] = {"model": {"kind": "model"}}
    for pname, module in (components or {}).items():
        parts[pname] = module.state_dict()
        described[pname] = {"kind": "component", **model_manifest(module)}
    for pname in extra_parts or {}:
        described.setdefault(pname, {"kind": "ema" if pname.startswith("ema") else "weights"})
    return save(directory, name, parts, {**model_manifest(model), "parts": described, "meta": meta or {}})


def load_model(directory: Path, name: str = "model", map_location: str | torch.device = "cpu",
               part: str = "model") -> torch.nn.Module:
    """Rebuild the model (or a component, or EMA weights with ``part="ema"``) saved in checkpoint ``name``."""
    parts, head = load(directory, name)
    if part not in parts:
        raise CheckpointError(f"checkpoint {name!r} has no part {part!r}; it has {', '.join(sorted(parts))}")
    info = head.get("parts", {}).get(part, {})
    spec = info if info.get("kind") == "component" else head
    if "class" not in spec:
        raise CheckpointError(f"checkpoint {name!r} names no model class; it holds training state only")
    model = build_model(spec["class"], spec.get("config", {}), spec.get("module"))
    try:
        model.load_state_dict(parts[part])
    except RuntimeError as e:
        raise CheckpointError(f"part {part!r} of checkpoint {name!r} does not fit {spec['class']}: "
                              f"{str(e).splitlines()[0]}") from None
    return model.to(map_location)


def _header(blob: bytes, path: Path) -> dict[str, Any] | None:
    try:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + n])
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path} is not a safetensors file; the checkpoint is damaged") from None
    text = (header.get("__metadata__") or {}).get(_KEY)
    return None if text is None else json.loads(text)


def _format(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError):
        return 0
    return FORMAT if _KEY in (header.get("__metadata__") or {}) else 1


def _data_sha256(blob: bytes) -> str:
    n = int.from_bytes(blob[:8], "little")
    return hashlib.sha256(memoryview(blob)[8 + n:]).hexdigest()


def _load_format1(directory: Path, name: str, blob: bytes) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    jpath = directory / f"{name}.json"
    if not jpath.exists():
        raise CheckpointError(f"{path_of(directory, name)} has no manifest and no {jpath.name}: it is not a kakusan "
                              "checkpoint")
    try:
        info = json.loads(jpath.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{jpath} is not valid JSON ({e.msg}); the checkpoint is damaged") from None
    if info.get("sha256") not in (None, hashlib.sha256(blob).hexdigest()):
        raise CheckpointError(f"{path_of(directory, name)} does not match {jpath.name} (hash differs); the checkpoint "
                              "is damaged")
    try:
        tensors = st_load(blob)
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path_of(directory, name)} is not a readable safetensors file ({e})") from None
    head = {"format": 1, **info, "parts": {"model": {"kind": "model"}} if "class" in info else {}}
    return {"model" if "class" in info else "state": tensors}, head




WEIGHTS = ("ema", "model", "last")


def find(source: str | Path, weights: str = "ema") -> tuple[Path, str, str]:
    """Where ``kakusan.load`` reads: (folder, checkpoint name, part) for a run directory and a weights choice.

    ``weights="model"`` reads the run's exported ``model`` checkpoint (else its training checkpoint
    ``last``); ``"last"`` reads ``last`` — the newest training step, also of a run still going or
    interrupted; ``"ema"`` (the default) reads the first EMA average of the same checkpoint as
    ``"model"``, or its raw weights when the run kept no EMA; ``"ema@0.999"`` names one decay.
    """
    source = Path(source)
    if source.suffix == ".safetensors" and source.is_file():
        folder, names = source.parent, [source.stem]
    else:
        if not source.is_dir():
            raise CheckpointError(f"{source} is not a run directory: give the folder a training command wrote")
        folder = source / "checkpoints" if (source / "checkpoints").is_dir() else source
        if weights not in WEIGHTS and not weights.startswith("ema@"):
            raise CheckpointError(f"unknown weights {weights!r}: choose ema, model, last (or ema@DECAY)")
        names = ["last"] if weights == "last" else ["model", "last"]
    name = next((n for n in names if exists(folder, n)), None)
    if name is None:
        raise CheckpointError(f"no checkpoint {' or '.join(names)} in {folder}: give a run directory that saved a "
                              "model")
    if not weights.startswith("ema"):
        return folder, name, "model"
    _, head = _read_manifest(path_of(folder, name))
    emas = [p for p, info in head.get("parts", {}).items() if info.get("kind") == "ema"]
    if weights == "ema":
        return folder, name, emas[0] if emas else "model"
    if weights not in emas:
        raise CheckpointError(f"checkpoint {name!r} keeps no {weights}; it keeps {', '.join(emas) or 'no EMA'}")
    return folder, name, weights


def load_run(source: str | Path, weights: str = "ema", *, part: str | None = None,
             device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a saved model in one line (see :func:`find`); ``part`` picks a named component instead."""
    folder, name, chosen = find(source, weights)
    return load_model(folder, name, map_location=device, part=part or chosen)


def _read_manifest(path: Path) -> tuple[None, dict[str, Any]]:
    """The manifest alone (no tensor data read); format 1 gives a minimal one."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            raise CheckpointError(f"{path} is not a safetensors file; the checkpoint is damaged") from None
    text = (header.get("__metadata__") or {}).get(_KEY)
    return None, (json.loads(text) if text else {"format": 1, "parts": {"model": {"kind": "model"}}})


__all__ = ["FORMAT", "WEIGHTS", "exists", "find", "load", "load_model", "load_run", "model_manifest", "path_of",
           "save", "save_model"]

"""Checkpoints: one safetensors file each, tensors in named parts and a JSON manifest in its header.

A checkpoint ``NAME`` in a folder is the single file ``NAME.safetensors`` (format 3):

- its tensors are grouped in *parts* by a prefix: ``model/W``, ``ema/W``, ``optimizer/state.0.exp_avg``,
  ``objective/chains``, ``generator/rank0``, ``autoencoder/…`` — a model, its EMA weights, a component;
- its safetensors header holds, under the key ``kakusan``, a JSON manifest: the format version, the
  model's class, module and config (:mod:`kakusan.registry` rebuilds it, never unpickling), what
  each part is, the training state that is not a tensor (step, optimizer hyper-parameters, scheduler),
  ``sha256``, the SHA-256 of the tensor data, and ``sha256_all``, the SHA-256 of everything: the whole
  safetensors header (tensor names, dtypes, shapes, offsets, and this manifest without ``sha256_all``,
  canonically serialised) followed by the tensor data.

Integrity (format 3). Both hashes are required and checked on every read, so no byte of a checkpoint —
a weight, the step, the optimizer state, the config — can change unnoticed, and deleting a hash is itself
a failure. Loading a model also rebuilds it from its config and checks every tensor's shape against it,
and refuses non-finite weights (a NaN or inf where a freshly built model has a finite value). Every
failure is a :class:`~kakusan.errors.CheckpointError` naming the file: exit status 2 and one line.

Older files. Format 2 (kakusan before the full hash) carries only ``sha256`` of the tensor data, and
format 1 (``NAME.json`` beside ``NAME.safetensors``, kakusan ≤ 0.1) the SHA-256 of the tensor file in its
JSON. Both still load as models when that hash matches (their manifest is hashed by that older rule,
i.e. not at all), so shipped models and existing runs keep working; a format-1 file without its hash is
refused. Neither resumes training: their step and optimizer state are not covered by any hash
(:func:`kakusan.train_state.restore` refuses them in one line), unless ``KAKUSAN_TRUST_OLD_CHECKPOINTS=1``
is set — the next checkpoint the resumed run writes is format 3. :func:`upgrade` re-saves an older file
as format 3 after checking the hash it has.

One file is written to a temporary name and renamed over the old one, so a kill at any instant leaves
either the old checkpoint or the new one whole — model, EMA, optimizer, scheduler, step, generators and
objective state always belong to the same step.
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

FORMAT = 3
LEGACY = (1, 2)  # formats still read as models (their own, weaker hash checked), never resumed by default
TRUST_OLD = "KAKUSAN_TRUST_OLD_CHECKPOINTS"
_KEY = "kakusan"
_ALL = "sha256_all"


def path_of(directory: Path, name: str) -> Path:
    return Path(directory) / f"{name}.safetensors"


def exists(directory: Path, name: str) -> bool:
    """Whether a checkpoint ``name`` (a manifest in its header, or format 1's JSON beside it) is in ``directory``."""
    directory = Path(directory)
    return path_of(directory, name).exists() and (_format(path_of(directory, name)) >= 2
                                                   or (directory / f"{name}.json").exists())


def trust_old() -> bool:
    """Whether the user asked to resume checkpoints older than the full hash (``KAKUSAN_TRUST_OLD_CHECKPOINTS=1``)."""
    return os.environ.get(TRUST_OLD, "").strip().lower() in ("1", "true", "yes")


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
    plain = to_jsonable({k: v for k, v in manifest.items() if k not in ("format", "sha256", _ALL, "parts")})
    head = {"format": FORMAT, **plain, "parts": {p: (manifest.get("parts") or {}).get(p, {}) for p in parts}}
    head["sha256"] = _data_sha256(st_save(tensors))
    head[_ALL] = _all_sha256(st_save(tensors, metadata={_KEY: json.dumps(head)}))
    blob = st_save(tensors, metadata={_KEY: json.dumps(head)})
    if _all_sha256(blob) != head[_ALL] or _data_sha256(blob) != head["sha256"]:  # pragma: no cover
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
    """Read checkpoint ``name``: ``(parts, manifest)``, its hashes checked. Format 1 comes back as part ``model``.

    Any problem — missing, truncated, not safetensors, a hash missing or wrong, a format from a newer
    kakusan — is a :class:`CheckpointError` naming the file.
    """
    directory = Path(directory)
    path = path_of(directory, name)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint {name!r} in {directory}: expected {path.name}")
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror}") from None
    head = _header(blob, path)
    if head is None:
        return _load_format1(directory, name, blob)
    fmt = head.get("format")
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 2:
        raise CheckpointError(f"{path} has a kakusan manifest with no valid format number ({fmt!r}); the checkpoint "
                              "is damaged or was edited")
    if fmt > FORMAT:
        raise CheckpointError(f"{path} is checkpoint format {fmt}, newer than this kakusan reads ({FORMAT}): "
                              "upgrade kakusan")
    if not isinstance(head.get("sha256"), str):
        raise CheckpointError(f"{path} has no sha256 in its manifest: the hash is required; the checkpoint is "
                              "damaged or was edited")
    if _data_sha256(blob) != head["sha256"]:
        raise CheckpointError(f"{path} fails its hash check (tensor data); the checkpoint is damaged")
    if fmt >= 3 or _ALL in head:  # format 3: the manifest and header are covered too, and that hash is required
        if not isinstance(head.get(_ALL), str):
            raise CheckpointError(f"{path} has no {_ALL} in its manifest: the hash is required; the checkpoint is "
                                  "damaged or was edited")
        if _all_sha256(blob) != head[_ALL]:
            raise CheckpointError(f"{path} fails its hash check (manifest or header changed since it was written); "
                                  "the checkpoint is damaged or was edited")
    try:
        tensors = st_load(blob)
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path} is not a readable safetensors file ({_first_line(e)}); the checkpoint is "
                              "damaged") from None
    if not isinstance(head.get("parts", {}), dict):
        raise CheckpointError(f"{path} has a malformed manifest (parts); the checkpoint is damaged")
    parts: dict[str, dict[str, torch.Tensor]] = {p: {} for p in head.get("parts", {})}
    for key, value in tensors.items():
        part, _, rest = key.partition("/")
        parts.setdefault(part, {})[rest] = value
    return parts, head


def upgrade(directory: Path, name: str) -> Path:
    """Re-save an older (format 1 or 2) checkpoint as format 3, after checking the hash it carries."""
    parts, head = load(directory, name)
    if head.get("format") == FORMAT:
        return path_of(directory, name)
    if head.get("format") == 1:
        jpath = Path(directory) / f"{name}.json"
        save(directory, name, parts, {k: v for k, v in head.items() if k != "sha256"})
        jpath.unlink(missing_ok=True)
        return path_of(directory, name)
    return save(directory, name, parts, head)


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
    """Rebuild the model (or a component, or EMA weights with ``part="ema"``) saved in checkpoint ``name``.

    The model is built from the saved class and config; every tensor's shape must fit it and every weight
    must be finite (see :func:`check_weights`).
    """
    path = path_of(directory, name)
    parts, head = load(directory, name)
    if part not in parts:
        raise CheckpointError(f"{path} has no part {part!r}; it has {', '.join(sorted(parts)) or 'none'}")
    info = head.get("parts", {}).get(part, {})
    spec = info if isinstance(info, dict) and info.get("kind") == "component" else head
    if not isinstance(spec.get("class"), str):
        raise CheckpointError(f"{path} names no model class; it holds training state only")
    model = rebuild(path, spec)
    check_weights(path, model, parts[part], part)
    return model.to(map_location)


def rebuild(path: Path, spec: dict[str, Any]) -> torch.nn.Module:
    """An untrained model from a manifest's ``class``/``config``/``module``; any failure names ``path``."""
    try:
        return build_model(spec["class"], spec.get("config", {}), spec.get("module"))
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {_first_line(e)}") from None
    except Exception as e:  # a constructor rejecting a damaged config
        raise CheckpointError(f"{path}: cannot rebuild {spec['class']} from its saved config ({_first_line(e)}); "
                              "the checkpoint is damaged or from another kakusan version") from None


def check_weights(path: Path, model: torch.nn.Module, state: dict[str, torch.Tensor], part: str = "model") -> None:
    """Load ``state`` into ``model``: names and shapes must fit it, and weights must be finite.

    A value may be NaN or inf only where the freshly built model has one too (a buffer such as a log
    variance at t = 0); anywhere else it is refused with one line naming ``path``, the part and the tensor.
    """
    fresh = {k: v for k, v in model.state_dict().items() if torch.is_tensor(v) and v.is_floating_point()}
    allowed = {k: ~torch.isfinite(v) for k, v in fresh.items() if not bool(torch.isfinite(v).all())}
    for key, value in state.items():
        if key not in fresh or not torch.is_tensor(value):
            continue
        if tuple(value.shape) != tuple(fresh[key].shape):
            raise CheckpointError(f"{path}: part {part!r} tensor {key!r} has shape {tuple(value.shape)}, but its "
                                  f"config makes {tuple(fresh[key].shape)}; the checkpoint is damaged or edited")
        if not value.is_floating_point():
            continue
        bad = ~torch.isfinite(value)
        if key in allowed:
            bad &= ~allowed[key]
        if bool(bad.any()):
            first = int(bad.flatten().nonzero()[0])
            raise CheckpointError(f"{path}: part {part!r} tensor {key!r} holds {int(bad.sum())} non-finite weight(s) "
                                  f"(first at flat index {first}); the model diverged or the file was damaged")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: part {part!r} does not fit {type(model).__name__}: "
                              f"{_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return " ".join(lines)[:300] if lines else type(e).__name__


def _header(blob: bytes, path: Path) -> dict[str, Any] | None:
    """The kakusan manifest in ``blob``'s safetensors header, None when there is none (format 1)."""
    header = _st_header(blob, path)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} has a malformed safetensors header; the checkpoint is damaged")
    text = meta.get(_KEY)
    if text is None:
        return None
    try:
        head = json.loads(text)
    except (TypeError, ValueError):
        raise CheckpointError(f"{path} has a kakusan manifest that is not valid JSON; the checkpoint is damaged or "
                              "was edited") from None
    if not isinstance(head, dict):
        raise CheckpointError(f"{path} has a kakusan manifest that is not a JSON object; the checkpoint is damaged")
    return head


def _st_header(blob: bytes, path: Path) -> dict[str, Any]:
    n = int.from_bytes(blob[:8], "little") if len(blob) >= 8 else -1
    try:
        if n < 2 or 8 + n > len(blob):
            raise ValueError
        header = json.loads(blob[8:8 + n])
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CheckpointError(f"{path} is not a safetensors file (bad or truncated header); the checkpoint is "
                              "damaged") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors file (bad header); the checkpoint is damaged")
    return header


def _format(path: Path) -> int:
    """2 or more: a manifest in the header (its format is checked on load); 1: none; 0: unreadable."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n > 100_000_000:
                return 0
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return 0
    if not isinstance(header, dict):
        return 0
    meta = header.get("__metadata__")
    return FORMAT if isinstance(meta, dict) and _KEY in meta else 1


def _data_sha256(blob: bytes) -> str:
    n = int.from_bytes(blob[:8], "little")
    return hashlib.sha256(memoryview(blob)[8 + n:]).hexdigest()


def _all_sha256(blob: bytes) -> str:
    """SHA-256 of the canonical header (the manifest without ``sha256_all`` in it) and then the tensor data."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    meta = dict(header.get("__metadata__") or {})
    manifest = json.loads(meta[_KEY])
    manifest.pop(_ALL, None)
    meta[_KEY] = manifest
    canonical = json.dumps({**header, "__metadata__": meta}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=True).encode()
    h = hashlib.sha256(len(canonical).to_bytes(8, "little"))
    h.update(canonical)
    h.update(memoryview(blob)[8 + n:])
    return h.hexdigest()


def _load_format1(directory: Path, name: str, blob: bytes) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    path, jpath = path_of(directory, name), directory / f"{name}.json"
    if not jpath.exists():
        raise CheckpointError(f"{path} has no manifest and no {jpath.name}: it is not a kakusan checkpoint")
    try:
        info = json.loads(jpath.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{jpath} is not valid JSON ({getattr(e, 'msg', e)}); the checkpoint is damaged") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"{jpath} is not a JSON object; the checkpoint is damaged")
    if not isinstance(info.get("sha256"), str) and not trust_old():
        raise CheckpointError(f"{jpath} has no sha256: the hash is required (set {TRUST_OLD}=1 to read this old "
                              "checkpoint anyway)")
    if info.get("sha256") not in (None, hashlib.sha256(blob).hexdigest()):
        raise CheckpointError(f"{path} does not match {jpath.name} (hash differs); the checkpoint is damaged")
    try:
        tensors = st_load(blob)
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path} is not a readable safetensors file ({_first_line(e)})") from None
    head = {**info, "format": 1, "parts": {"model": {"kind": "model"}} if "class" in info else {}}
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
    head = read_manifest(path_of(folder, name))
    described = head.get("parts") if isinstance(head.get("parts"), dict) else {}
    emas = [p for p, info in described.items() if isinstance(info, dict) and info.get("kind") == "ema"]
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


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the checkpoint file ``path`` alone: no tensor data read, no hash checked.

    A format-1 file (which has none) gives a minimal one. Read it for what a manifest says (step, parts, hashes);
    :func:`load` is what checks the hashes before any weight is used.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little")
            blob = head + f.read(n) if 2 <= n <= 100_000_000 else head
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror}") from None
    manifest = _header(blob, path)
    return manifest if manifest is not None else {"format": 1, "parts": {"model": {"kind": "model"}}}


__all__ = ["FORMAT", "LEGACY", "TRUST_OLD", "WEIGHTS", "check_weights", "exists", "find", "load", "load_model",
           "load_run", "model_manifest", "path_of", "read_manifest", "rebuild", "save", "save_model", "trust_old", "upgrade"]

"""The model registry and the config convention: the bottom layer every chapter registers into.

A model class that checkpoints can rebuild is decorated with :func:`register_model` in its own module;
nothing else keeps a list of models. A checkpoint names the class and the module that defines it, and
:func:`build_model` imports that module (only modules inside ``kakusan``, or ones already imported) and
looks the class up here — no code is ever unpickled.

The config convention
---------------------
A model keeps its hyper-parameters as ``model.config``: a dataclass (preferred) or a dict of
constructor arguments. :func:`config_to_json` writes it as JSON, tagging every dataclass with its
type, so nested parts (an encoder config inside a VAE config, a schedule inside a diffusion config)
come back from :func:`config_from_json` as the same dataclasses, not dicts. A model is rebuilt by
``cls.from_config(config)`` when the class defines it, else ``cls(**config)`` (a dataclass's fields are
the constructor's arguments).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, TypeVar

import torch

from kakusan.errors import CheckpointError
from kakusan.files import to_jsonable

MODELS: dict[str, type[torch.nn.Module]] = {}
T = TypeVar("T", bound=type)
_TYPE = "_type"  # key that tags a dataclass in config JSON: "module:QualName"
# packages that hold no models; skipped when an old checkpoint's class must be found by search
_NO_MODELS = {"commands", "tour", "report", "cli", "registry", "files", "errors", "runtime", "train", "checkpoint"}


def register_model(cls: T) -> T:
    """Class decorator: let checkpoints rebuild ``cls`` by name (its ``config`` gives the arguments)."""
    known = MODELS.get(cls.__name__)
    if known is not None and known is not cls and f"{known.__module__}.{known.__qualname__}" != \
            f"{cls.__module__}.{cls.__qualname__}":
        raise CheckpointError(f"two model classes named {cls.__name__}: {known.__module__} and {cls.__module__}; "
                              "rename one")
    MODELS[cls.__name__] = cls
    return cls


def model_config(model: torch.nn.Module) -> Any:
    """The model's config (dataclass or dict); an error if it has none."""
    config = getattr(model, "config", None)
    if config is None:
        raise CheckpointError(f"{type(model).__name__} has no .config, so it cannot be checkpointed")
    return config


def config_to_json(config: Any) -> Any:
    """A config as plain JSON; dataclasses (nested too) carry a ``_type`` tag so they rebuild as objects."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        cls = type(config)
        out = {_TYPE: f"{cls.__module__}:{cls.__qualname__}"}
        out.update({f.name: config_to_json(getattr(config, f.name)) for f in dataclasses.fields(config)})
        return out
    if isinstance(config, dict):
        return {str(k): config_to_json(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [config_to_json(v) for v in config]
    return to_jsonable(config)


def config_from_json(obj: Any) -> Any:
    """Inverse of :func:`config_to_json`: tagged dicts become their dataclasses again, recursively."""
    if isinstance(obj, list):
        return [config_from_json(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    fields = {k: config_from_json(v) for k, v in obj.items() if k != _TYPE}
    if _TYPE not in obj:
        return fields
    module, _, qualname = str(obj[_TYPE]).partition(":")
    cls = _find(module, qualname)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise CheckpointError(f"config type {obj[_TYPE]!r} is not a dataclass; the checkpoint is not kakusan's")
    names = {f.name for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):  # tuples stay tuples (JSON has only lists)
        if f.name in fields and isinstance(fields[f.name], list) and "tuple" in str(f.type):
            fields[f.name] = tuple(fields[f.name])
    unknown = sorted(set(fields) - names)
    if unknown:
        raise CheckpointError(f"config of {qualname} has unknown fields {unknown}: the checkpoint is from another "
                              "kakusan version")
    return cls(**fields)


def _import(module: str) -> Any:
    """Import ``module`` if it is kakusan's own (or already imported); never anything else."""
    import sys

    if module in sys.modules:
        return sys.modules[module]
    if module != "kakusan" and not module.startswith("kakusan."):
        raise CheckpointError(f"checkpoint refers to module {module!r} outside kakusan: import it yourself first")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise CheckpointError(f"checkpoint refers to module {module!r}, which this kakusan does not have") from None


def _find(module: str, qualname: str) -> Any:
    obj: Any = _import(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise CheckpointError(f"{module} has no {qualname}: the checkpoint is from another kakusan version")
    return obj


def import_all_models() -> None:
    """Import every kakusan module that may register models (for old checkpoints that name no module)."""
    import kakusan

    for info in pkgutil.walk_packages(kakusan.__path__, "kakusan.", onerror=lambda name: None):
        top = info.name.split(".")[1]
        if top in _NO_MODELS or info.name.split(".")[-1].startswith("_"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional dependency missing: its models cannot be needed
            continue


def model_class(name: str, module: str | None = None) -> type[torch.nn.Module]:
    """The registered class ``name``, importing ``module`` (or, without one, every model module) first."""
    if name not in MODELS:
        if module:
            _import(module)
        if name not in MODELS:
            import_all_models()
    cls = MODELS.get(name)
    if cls is None:
        raise CheckpointError(f"checkpoint names unknown model class {name!r}; known: {', '.join(sorted(MODELS))}")
    return cls


def build_model(name: str, config_json: Any, module: str | None = None) -> torch.nn.Module:
    """Rebuild an (untrained) model from its class name and JSON config."""
    cls = model_class(name, module)
    config = config_from_json(config_json)
    try:
        if hasattr(cls, "from_config"):
            return cls.from_config(config)
        if dataclasses.is_dataclass(config):  # constructor arguments = the dataclass's fields
            config = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        return cls(**config)
    except TypeError as e:
        raise CheckpointError(f"cannot rebuild {name} from its saved config ({e}): the checkpoint is from another "
                              "kakusan version") from None


__all__ = ["MODELS", "build_model", "config_from_json", "config_to_json", "import_all_models", "model_class",
           "model_config", "register_model"]

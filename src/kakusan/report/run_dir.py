"""A run directory: ``config.json``, ``argv.json``, ``metrics.jsonl``, ``checkpoints/``, ``figures/``.

A run never overwrites another run's directory: an automatic name gets a numeric suffix on a
collision, and an explicit directory that already holds files is refused.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from kakusan.errors import KakusanError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_save_npy(path: Path, array) -> Path:
    """Write a NumPy array (or tensor) as ``.npy``, atomically."""
    import io

    import numpy as np

    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(Path(path), (json.dumps(to_jsonable(obj), indent=2) + "\n").encode())


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths, tuples, NumPy and torch scalars/arrays to plain JSON types.

    Non-finite floats become the strings "inf", "-inf" and "nan", so every file stays strict JSON.
    """
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy / torch arrays and scalars
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


class RunDir:
    """The directory one command writes; see the module docstring for its layout."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, command: str, path: str | Path | None = None, root: str | Path = "runs") -> "RunDir":
        """Make a fresh run directory: ``path`` if given (must be new or empty), else ``root/command-TIME``."""
        if path is not None:
            p = Path(path)
            if p.exists() and (not p.is_dir() or any(p.iterdir())):
                raise KakusanError(
                    f"run directory {p} already exists and is not empty: choose another --run-dir or remove it"
                )
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise KakusanError(f"cannot create run directory {p}: {e.strerror}; choose another --run-dir") from None
            return cls(p)
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise KakusanError(f"cannot create {root}: {e.strerror}; pass --run-dir somewhere writable") from None
        stem = f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"
        for k in range(1, 10_000):
            p = root / (stem if k == 1 else f"{stem}-{k}")
            try:
                p.mkdir()
            except FileExistsError:
                continue
            return cls(p)
        raise KakusanError(f"could not find a free run directory name under {root}")  # pragma: no cover

    @property
    def figures(self) -> Path:
        p = self.path / "figures"
        p.mkdir(exist_ok=True)
        return p

    @property
    def checkpoints(self) -> Path:
        p = self.path / "checkpoints"
        p.mkdir(exist_ok=True)
        return p

    def write_config(self, config: Any, argv: list[str] | None = None) -> None:
        """Save the resolved configuration (it should name the model class) and the argv."""
        atomic_write_json(self.path / "config.json", config)
        atomic_write_json(self.path / "argv.json", list(sys.argv if argv is None else argv))

    def log_metrics(self, **metrics: Any) -> None:
        """Append one JSON line of metrics (e.g. ``step=3, loss=0.1``) to ``metrics.jsonl``."""
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(to_jsonable(metrics)) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.path / name
        atomic_write_json(path, obj)
        return path

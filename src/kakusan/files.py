"""Files written whole or not at all: atomic writes of bytes, JSON and ``.npy``; strict-JSON conversion.

The bottom layer that checkpoints, run directories and model files share. A write goes to a temporary
name in the same folder, is flushed to disk and renamed over the target, so a kill at any instant leaves
either the old file or the new one, never a mixture.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any


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


def dumps_strict(obj: Any) -> str:
    """``obj`` as one line of strict JSON (what ``--json`` prints): non-finite floats as strings, never ``NaN``."""
    return json.dumps(to_jsonable(obj), allow_nan=False)


def read_json(path: Path, what: str = "file") -> dict:
    """A JSON object from ``path``; a one-line :class:`~kakusan.errors.CheckpointError` naming the file otherwise."""
    from kakusan.errors import CheckpointError

    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: give a complete {what}") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{path} is not valid JSON ({' '.join(str(e).split())[:120]}): the {what} is damaged; "
                              "write it again") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} holds a JSON {type(value).__name__}, not an object: the {what} is damaged")
    return value

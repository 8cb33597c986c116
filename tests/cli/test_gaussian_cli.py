"""`kakusan gaussian fit DATA.npy`, run in-process: JSON output, run directory, one-line errors."""

import json

import numpy as np
import pytest

from kakusan.cli import main
from kakusan.checkpoint import load_model


def samples(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) + 2 * np.eye(d)
    return rng.normal(size=(n, d)) @ a.T + np.arange(d)


def write(tmp_path, x, name="data.npy"):
    path = tmp_path / name
    np.save(path, x)
    return str(path)


def fit(args, capsys):
    try:
        code = main(["gaussian", "fit", *args])
    except SystemExit as e:  # the parser refuses a bad value (e.g. --reg -1) itself
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("d", [1, 2, 3])
def test_json_matches_numpy_and_run_dir_is_complete(tmp_path, capsys, d):
    x = samples(101, d)
    x = x[:, 0] if d == 1 else x
    run_dir = tmp_path / "run"
    code, out, err = fit([write(tmp_path, x), "--json", "--run-dir", str(run_dir)], capsys)
    assert code == 0, err
    result = json.loads(out)  # exactly one JSON object on stdout
    assert set(result) == {"mean", "cov", "log_likelihood"}
    x2 = x.reshape(len(x), -1)
    np.testing.assert_allclose(result["mean"], x2.mean(0), rtol=1e-12)
    np.testing.assert_allclose(result["cov"], np.cov(x2.T, bias=True).reshape(d, d), rtol=1e-11)
    from scipy.stats import multivariate_normal

    ll = multivariate_normal(x2.mean(0), np.cov(x2.T, bias=True)).logpdf(x2).mean()
    assert result["log_likelihood"] == pytest.approx(ll, rel=1e-10)
    assert str(run_dir) in err
    for name in ("config.json", "argv.json", "metrics.jsonl",
                 "checkpoints/model.safetensors", "figures/density.png"):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["class"] == "Gaussian" and config["config"] == {"dim": d} and config["reg"] == 0.0
    metrics = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["log_likelihood"] == pytest.approx(result["log_likelihood"])
    model = load_model(run_dir / "checkpoints")
    np.testing.assert_allclose(model.mean.detach().numpy(), result["mean"])


def test_human_summary_and_automatic_run_dir(tmp_path, capsys):
    code, out, err = fit([write(tmp_path, samples(50, 2)), "--runs-root", str(tmp_path / "runs")], capsys)
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("gaussian-fit-")
    assert "log-likelihood" in out and "nats" in out and str(run) in out
    assert (run / "figures" / "density.png").is_file()


def test_reg_makes_singular_data_work(tmp_path, capsys):
    x = np.c_[np.arange(10.0), np.full(10, 3.0)]  # constant second column
    path = write(tmp_path, x)
    code, out, err = fit([path, "--json", "--runs-root", str(tmp_path / "a")], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "singular" in err and "--reg" in err
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())  # no half-written run
    code, out, err = fit([path, "--json", "--reg", "1e-6", "--runs-root", str(tmp_path / "b")], capsys)
    assert code == 0, err
    assert json.loads(out)["cov"][1][1] == pytest.approx(1e-6)


def save_raw(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.save(path, content, allow_pickle=True)
    return str(path)


@pytest.mark.parametrize("make, why", [
    (lambda p: str(p / "missing.npy"), "not found"),
    (lambda p: save_raw(p, "data.txt", b"1 2 3"), "not a .npy file"),
    (lambda p: save_raw(p, "junk.npy", b"not an array"), "not a valid .npy"),
    (lambda p: save_raw(p, "obj.npy", np.array([{"a": 1}, None], dtype=object)), "Python objects"),
    (lambda p: save_raw(p, "str.npy", np.array(["a", "b"])), "not numbers"),
    (lambda p: save_raw(p, "nan.npy", np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, np.inf]])), "NaN or inf in 2 of 3"),
    (lambda p: save_raw(p, "cube.npy", np.zeros((4, 2, 2))), "shape (4, 2, 2)"),
    (lambda p: save_raw(p, "few.npy", np.ones((2, 3)) * np.arange(2)[:, None]), "singular"),
])
def test_errors_are_one_line_exit_2(tmp_path, capsys, make, why):
    code, out, err = fit([make(tmp_path), "--json", "--runs-root", str(tmp_path / "runs")], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("kakusan: error: ") and why in err


def test_negative_reg_and_missing_action(tmp_path, capsys):
    code, _, err = fit([write(tmp_path, samples(20, 2)), "--reg", "-1"], capsys)
    assert code == 2 and "--reg" in err
    assert main(["gaussian"]) == 2
    assert "fit" in capsys.readouterr().err

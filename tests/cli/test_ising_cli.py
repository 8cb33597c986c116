import json

import numpy as np
import pytest
import torch

from kakusan.boltzmann import exact_stats, instances, save_ising_npz
from kakusan.cli import main


@pytest.fixture
def model_file(tmp_path):
    model = instances.sherrington_kirkpatrick(7, beta=0.8, field_std=0.3, seed=5)
    return model, save_ising_npz(tmp_path / "model.npz", model)


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


def test_exact_json_matches_enumeration(model_file, tmp_path, capsys):
    model, path = model_file
    assert main(["ising", "exact", str(path), "--json", "--runs-root", str(tmp_path / "runs")]) == 0
    out = json.loads(capsys.readouterr().out)
    s = exact_stats(model)
    assert out["log_z"] == pytest.approx(s.log_z, rel=1e-12)
    np.testing.assert_allclose(out["magnetization"], s.mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(out["correlation"], s.corr.numpy(), atol=1e-12)


def test_sample_writes_spins_and_never_overwrites(model_file, tmp_path, capsys):
    _, path = model_file
    out = tmp_path / "x.npy"
    args = ["ising", "sample", str(path), "-n", "300", "--out", str(out), "--runs-root", str(tmp_path / "runs")]
    assert main(args + ["--seed", "3"]) == 0
    x = np.load(out)
    assert x.shape == (300, 7) and set(np.unique(x)) <= {-1, 1}
    before = out.read_bytes()
    assert main(args) == 2
    _one_error_line(capsys, "already exists")
    assert out.read_bytes() == before


def test_fit_recovers_the_model_from_its_samples(model_file, tmp_path, capsys):
    model, path = model_file
    data = model.sample(20000, torch.Generator().manual_seed(0)).numpy()
    np.save(tmp_path / "data.npy", ((data + 1) / 2).astype(np.uint8))  # 0/1 data are converted to spins
    out = tmp_path / "learned.npz"
    assert main(["ising", "fit", str(tmp_path / "data.npy"), "--out", str(out), "--truth", str(path), "--steps", "300",
                 "--run-dir", str(tmp_path / "run")]) == 0
    learned = np.load(out)
    truth = model.couplings().detach().numpy()
    assert np.linalg.norm(learned["J"] - truth) / np.linalg.norm(truth) < 0.1
    for name in ("config.json", "metrics.jsonl", "summary.json", "figures/kl.png", "figures/couplings.png",
                 "figures/moments.png", "checkpoints/model.safetensors"):
        assert (tmp_path / "run" / name).exists(), name
    assert json.loads((tmp_path / "run" / "config.json").read_text())["class"] == "IsingModel"
    assert json.loads((tmp_path / "run" / "argv.json").read_text())[:3] == ["kakusan", "ising", "fit"]


@pytest.mark.parametrize("array,words", [
    (np.array([[0.5, 1.0], [1.0, -1.0]]), ("±1 or 0/1", "binarise")),
    (np.array([1.0, -1.0]), ("shape (M, N)",)),
])
def test_fit_rejects_bad_data(tmp_path, capsys, array, words):
    np.save(tmp_path / "d.npy", array)
    assert main(["ising", "fit", str(tmp_path / "d.npy"), "--out", str(tmp_path / "m.npz"),
                 "--runs-root", str(tmp_path / "runs")]) == 2
    _one_error_line(capsys, *words)
    assert not (tmp_path / "m.npz").exists()


def test_bad_model_file_is_one_line(tmp_path, capsys):
    J = np.array([[0.0, 1.0], [0.5, 0.0]])
    np.savez(tmp_path / "bad.npz", J=J, h=np.zeros(2))
    assert main(["ising", "exact", str(tmp_path / "bad.npz"), "--runs-root", str(tmp_path / "runs")]) == 2
    _one_error_line(capsys, "not symmetric")


@pytest.mark.parametrize("method", ["nmf", "tap", "sm", "plm", "mpf"])
def test_mcmc_free_methods_from_the_command_line(model_file, tmp_path, capsys, method):
    model, path = model_file
    np.save(tmp_path / "data.npy", model.sample(20000, torch.Generator().manual_seed(0)).numpy())
    out = tmp_path / "learned.npz"
    assert main(["ising", "fit", str(tmp_path / "data.npy"), "--method", method, "--out", str(out),
                 "--truth", str(path), "--run-dir", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    limit = 0.1 if method in ("plm", "mpf") else 0.5  # mean field is biased at β = 0.8
    assert summary["relative_error_J"] < limit and summary["kl"] >= 0
    truth = model.couplings().detach().numpy()
    J = np.load(out)["J"]
    assert np.linalg.norm(J - truth) / np.linalg.norm(truth) == pytest.approx(summary["relative_error_J"])


def test_regularising_a_mean_field_fit_is_a_clear_error(model_file, tmp_path, capsys):
    model, _ = model_file
    np.save(tmp_path / "data.npy", model.sample(500, torch.Generator().manual_seed(0)).numpy())
    assert main(["ising", "fit", str(tmp_path / "data.npy"), "--method", "nmf", "--l2", "0.1",
                 "--out", str(tmp_path / "m.npz"), "--runs-root", str(tmp_path / "runs")]) == 2
    _one_error_line(capsys, "--l1/--l2")
    assert not (tmp_path / "m.npz").exists()

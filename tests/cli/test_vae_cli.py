"""`kakusan vae train|evaluate|reconstruct` and `kakusan sample` on VAE runs, at tiny sizes on the bundled digits."""

import json
import math

import numpy as np
import pytest
import torch
from matplotlib.image import imread

import kakusan
import kakusan.cli as cli
from kakusan import checkpoint

SMALL = ["--hidden", "32", "--batch-size", "100", "--lr", "3e-3"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-latent VAE on dynamically binarised digits, 6 epochs (90 steps)."""
    run = tmp_path_factory.mktemp("vae") / "run"
    assert cli.main(["vae", "train", "--data", "digits", "--latent", "2", "--epochs", "6", *SMALL,
                     "--run-dir", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def gaussian_file(tmp_path_factory):
    """400 draws of a 5-D probabilistic PCA model with 2 latents (continuous data, off [0, 1])."""
    g = np.random.default_rng(0)
    W, b = g.normal(size=(5, 2)), g.normal(size=5) * 3
    x = g.normal(size=(400, 2)) @ W.T + b + 0.3 * g.normal(size=(400, 5))
    path = tmp_path_factory.mktemp("data") / "x.npy"
    np.save(path, x.astype(np.float32))
    return path


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


def test_train_writes_a_complete_run(trained):
    for name in ("config.json", "argv.json", "metrics.jsonl", "summary.json", "checkpoints/model.safetensors",
                 "checkpoints/last.safetensors", "figures/samples.png", "figures/reconstructions.png",
                 "figures/latent_map.png", "figures/kl_units.png", "figures/training.png"):
        assert (trained / name).exists(), name
    config = json.loads((trained / "config.json").read_text())
    assert config["class"] == "VAE" and config["model"]["n_latent"] == 2 and config["shape"] == [8, 8]
    assert config["data"] == {"data": "digits", "likelihood": "bernoulli", "test_seed": 0, "holdout": 0.0, "test": None}
    assert config["train"]["objective"] == "elbo" and config["train"]["epochs"] == 6 and config["train"]["ema"] > 0
    evals = [r for r in map(json.loads, (trained / "metrics.jsonl").read_text().splitlines()) if r.get("eval")]
    assert [e["epoch"] for e in evals] == [0, 1, 2, 3, 4, 5, 6]  # test ELBO before training and every epoch
    assert evals[-1]["test_elbo"] > evals[0]["test_elbo"] + 5 and "test_elbo_ema" in evals[-1]
    parts, _ = checkpoint.load(trained / "checkpoints", "model")
    assert any(p.startswith("ema@") for p in parts)
    _, head = checkpoint.load(trained / "checkpoints", "last")
    assert head["optimizer"]["state"]["param_groups"][0]["fused"] is True   # kakusan.optim.adam: fused on the CPU
    model = kakusan.load(trained)  # EMA weights of the exported model
    assert type(model).__name__ == "VAE" and model.sample(3, generator=0).shape == (3, 8, 8)


def test_evaluate_prints_the_bounds_in_nats(trained, tmp_path, capsys):
    assert cli.main(["vae", "evaluate", str(trained), "--k", "200", "--json", "--runs-root", str(tmp_path)]) == 0
    r = _json(capsys)
    assert set(r) >= {"elbo", "iwae", "nll", "nll_stderr", "k", "n_test", "kl_per_layer", "active_units",
                      "bits_per_dim", "seconds"}
    assert r["k"] == 200 and r["n_test"] == 297 and r["nll"] == -r["iwae"] and 0 < r["nll_stderr"] < 2
    assert r["iwae"] >= r["elbo"] - 2 * r["nll_stderr"] and r["iwae"] > -64 * math.log(2)  # beats coin flips
    assert r["bits_per_dim"] == pytest.approx(r["nll"] / (64 * math.log(2)))
    assert set(r["kl_per_layer"]) == {"z"} and r["kl_per_layer"]["z"] > 0 and 0 <= r["active_units"]["z"] <= 2
    assert [int(k) for k in r["bounds"]] == [1, 5, 50, 200] and r["bounds"]["200"] > r["bounds"]["1"]
    assert (next(tmp_path.glob("vae-evaluate-*")) / "figures" / "bound_vs_k.png").exists()
    # what the ± leaves out: the bound's bias, shown by its last rise (IWAE-50 → IWAE-200)
    assert "bias" in r["stderr_means"] and r["last_rise"]["from_k"] == 50
    assert r["last_rise"]["nats"] == pytest.approx(r["bounds"]["200"] - r["bounds"]["50"])
    assert cli.main(["vae", "evaluate", str(trained), "--k", "200", "--runs-root", str(tmp_path / "text")]) == 0
    assert "IWAE-50 → IWAE-200 still rose by" in capsys.readouterr().out


def test_reconstruct_and_sample_npy_and_png(trained, tmp_path, capsys):
    root = ["--runs-root", str(tmp_path / "runs")]
    assert cli.main(["vae", "reconstruct", str(trained), "-n", "5", "--out", str(tmp_path / "r.npy"), *root]) == 0
    r = np.load(tmp_path / "r.npy")
    assert r.shape == (5, 8, 8) and r.min() >= 0 and r.max() <= 1
    assert next((tmp_path / "runs").glob("vae-reconstruct-*/figures/reconstructions.png")).exists()
    assert cli.main(["sample", str(trained), "-n", "9", "--out", str(tmp_path / "s.npy"), *root]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (9, 8, 8) and 0 <= s.min() and s.max() <= 1  # Bernoulli means in data space
    assert cli.main(["sample", str(trained), "-n", "9", "--out", str(tmp_path / "grid.png"), *root]) == 0
    assert imread(tmp_path / "grid.png").shape[0] > 3 * 8
    assert cli.main(["sample", str(trained), "--out", str(tmp_path / "s.txt"), *root]) == 2
    _one_error_line(capsys, "--out")


def _last(run):
    parts, head = checkpoint.load(run / "checkpoints", "last")
    return parts, head["step"]


def test_resume_is_bit_exact(tmp_path):
    common = ["vae", "train", "--data", "digits", "--latent", "3", "--warmup", "20", "--ema", "0.9", *SMALL,
              "--eval-every", "-1"]
    assert cli.main([*common, "--epochs", "3", "--run-dir", str(tmp_path / "a")]) == 0
    assert cli.main([*common, "--epochs", "1", "--run-dir", str(tmp_path / "b")]) == 0
    assert cli.main(["vae", "train", "--resume", "--epochs", "3", "--run-dir", str(tmp_path / "b")]) == 0
    (a, step_a), (b, step_b) = _last(tmp_path / "a"), _last(tmp_path / "b")
    assert step_a == step_b == 45 and json.loads((tmp_path / "b" / "summary.json").read_text())["resumed_from"] == 15
    for part in ("model", "ema@0.9", "optimizer", "objective", "generator"):
        for k, v in a[part].items():
            assert torch.equal(b[part][k], v), (part, k)
    # options that differ from the run's are refused, all of them named, and the run is left as it was
    assert cli.main(["vae", "train", "--resume", "--lr", "0.5", "--latent", "4", "--run-dir", str(tmp_path / "b")]) == 2
    assert _last(tmp_path / "b")[1] == 45


def test_exact_log_likelihood_of_a_linear_gaussian_run(gaussian_file, tmp_path, capsys):
    run = tmp_path / "ppca"
    assert cli.main(["vae", "train", "--data", str(gaussian_file), "--likelihood", "gaussian", "--encoder", "linear",
                     "--latent", "2", "--epochs", "40", "--batch-size", "50", "--lr", "1e-2",
                     "--run-dir", str(run)]) == 0
    capsys.readouterr()
    root = ["--runs-root", str(tmp_path / "runs")]
    assert cli.main(["vae", "evaluate", str(run), "--exact", "--k", "500", "--json", *root]) == 0
    r = _json(capsys)
    model = kakusan.load(run).double()  # the EMA weights, as evaluate reads them
    from kakusan.vae.linear_gaussian import decoder_parts

    W, b, _, psi = decoder_parts(model)
    C = (W @ W.T + torch.diag(psi)).detach().numpy()
    x = np.load(gaussian_file).astype(np.float64)
    d = x - b.detach().numpy()
    closed = -0.5 * (5 * math.log(2 * math.pi) + np.linalg.slogdet(C)[1]
                     + np.einsum("ni,ij,nj->n", d, np.linalg.inv(C), d))
    # the file has no test split: the rows are the training rows, and every measured number says so
    assert r["train_log_likelihood_exact"] == pytest.approx(closed.mean(), abs=1e-3)
    assert r["split"] == "train" and r["n_train"] == 400 and "no held-out data" in r["note"]
    assert not {"elbo", "iwae", "nll", "n_test", "log_likelihood_exact", "bits_per_dim", "train_bits_per_dim"} & set(r)
    assert r["train_elbo"] <= r["train_log_likelihood_exact"] + 0.1
    assert abs(r["train_iwae"] - r["train_log_likelihood_exact"]) < 0.05
    assert cli.main(["vae", "evaluate", str(run), "--exact", "--k", "50", "--json", "--data", str(gaussian_file),
                     *root]) == 0
    given = _json(capsys)  # rows the user names are theirs to judge: split "file", the plain names
    assert given["split"] == "file" and given["log_likelihood_exact"] == pytest.approx(closed.mean(), abs=1e-3)
    assert cli.main(["sample", str(run), "-n", "2000", "--out", str(tmp_path / "s.npy"), *root]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "s.npy").mean(0), b.detach().numpy(), atol=0.25)  # data space
    assert cli.main(["sample", str(run), "--out", str(tmp_path / "s.png"), *root]) == 2
    _one_error_line(capsys, "not images", ".npy")


def test_bad_input_is_one_line(trained, gaussian_file, tmp_path, capsys):
    root = ["--runs-root", str(tmp_path / "runs")]
    assert cli.main(["vae", "train", "--data", str(gaussian_file), "--epochs", "1", *root]) == 2
    _one_error_line(capsys, "Bernoulli", "--likelihood gaussian")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["vae", "train", "--model", "vqvae", *root])
    assert exit_.value.code == 2
    _one_error_line(capsys, "--model", "vqvae", "hvae")
    assert cli.main(["vae", "train", "--layers", "2", "--epochs", "1", *root]) == 2
    _one_error_line(capsys, "--layers 2", "hvae")
    assert cli.main(["vae", "train", "--data", str(gaussian_file), "--likelihood", "gaussian", "--encoder", "conv",
                     "--epochs", "1", *root]) == 2
    _one_error_line(capsys, "conv", "(H, W)")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((10, 7), dtype=np.float32))
    assert cli.main(["vae", "evaluate", str(trained), "--data", str(wrong), "--k", "5", *root]) == 2
    _one_error_line(capsys, "(n, 8, 8) or (n, 64)", "(10, 7)")
    np.save(tmp_path / "flat.npy", np.zeros(10, dtype=np.float32))
    assert cli.main(["vae", "train", "--data", str(tmp_path / "flat.npy"), *root]) == 2
    _one_error_line(capsys, "(n, D)")
    assert cli.main(["vae", "evaluate", str(trained), "--exact", "--k", "5", *root]) == 2
    _one_error_line(capsys, "linear")
    assert cli.main(["vae", "evaluate", str(tmp_path), "--k", "5"]) == 2
    _one_error_line(capsys, "not a run directory")
    assert cli.main(["vae", "train", "--resume", "--run-dir", str(tmp_path / "nothing")]) == 2
    _one_error_line(capsys, "--resume")


def test_a_hierarchical_vae_reports_each_layer(tmp_path, capsys):
    pytest.importorskip("kakusan.vae.hierarchical")
    run = tmp_path / "hvae"
    assert cli.main(["vae", "train", "--model", "hvae", "--layers", "2", "--latent", "6,3", "--hidden", "32,16",
                     "--epochs", "2", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert cli.main(["vae", "evaluate", str(run), "--k", "20", "--json", "--runs-root", str(tmp_path / "r")]) == 0
    r = _json(capsys)
    assert set(r["kl_per_layer"]) == set(r["active_units"]) == {"z1", "z2"}
    assert r["latent_units"] == {"z1": 6, "z2": 3} and r["iwae"] >= r["elbo"] - 2 * r["nll_stderr"]


def test_an_exploding_learning_rate_stops_with_one_line_naming_it(tmp_path, capsys):
    run = tmp_path / "run"
    status = cli.main(["vae", "train", "--data", "digits", "--epochs", "2", "--lr", "1e3", "--run-dir", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "diverged" in err[0] and "--lr 1000" in err[0], err
    assert not (run / "checkpoints" / "model.safetensors").exists()


def test_holdout_and_test_file_give_a_test_split(gaussian_file, tmp_path, capsys):
    """--holdout FRACTION and --test FILE give a file without a test split one: the training-time evaluation is the
    test ELBO, and evaluate measures exactly the held-out rows (the same numbers as `--data` on those rows); without
    either every number is named train_*; data with their own split refuse both."""
    x = np.load(gaussian_file)
    train_file, test_file = tmp_path / "train.npy", tmp_path / "test.npy"
    np.save(train_file, x[:300])
    np.save(test_file, x[300:])
    base = ["vae", "train", "--data", str(train_file), "--likelihood", "gaussian", "--latent", "2", "--hidden", "8",
            "--epochs", "2", "--batch-size", "100"]
    root = ["--runs-root", str(tmp_path / "runs")]
    assert cli.main([*base, "--test", str(test_file), "--run-dir", str(tmp_path / "t")]) == 0
    assert cli.main([*base, "--run-dir", str(tmp_path / "none")]) == 0
    assert cli.main([*base, "--holdout", "0.2", "--run-dir", str(tmp_path / "h")]) == 0
    capsys.readouterr()
    evals = {name: [r for r in map(json.loads, (tmp_path / name / "metrics.jsonl").read_text().splitlines())
                    if r.get("eval")] for name in ("t", "none", "h")}
    assert all("test_elbo" in e and "train_elbo" not in e for e in evals["t"] + evals["h"])
    assert all("train_elbo" in e and "test_elbo" not in e for e in evals["none"])
    summary = json.loads((tmp_path / "none" / "summary.json").read_text())
    assert summary["split"] == "train" and "train_elbo" in summary and "no held-out data" in summary["note"]

    assert cli.main(["vae", "evaluate", str(tmp_path / "t"), "--k", "10", "--json", *root]) == 0
    held = _json(capsys)
    assert cli.main(["vae", "evaluate", str(tmp_path / "t"), "--k", "10", "--json", "--data", str(test_file),
                     *root]) == 0
    same = _json(capsys)
    assert held["split"] == "test" and held["n_test"] == 100 and "note" not in held
    assert (held["elbo"], held["nll"]) == (same["elbo"], same["nll"])  # the test split is exactly the file's rows
    assert cli.main(["vae", "evaluate", str(tmp_path / "h"), "--k", "10", "--json", *root]) == 0
    assert _json(capsys)["n_test"] == 60  # a fifth of 300 rows
    assert cli.main(["vae", "evaluate", str(tmp_path / "none"), "--k", "10", *root]) == 0
    text = capsys.readouterr().out
    assert text.startswith("train ELBO") and "no held-out data" in text and "--holdout" in text

    np.save(tmp_path / "wide.npy", np.zeros((5, 6), np.float32))
    assert cli.main([*base, "--test", str(tmp_path / "wide.npy"), "--run-dir", str(tmp_path / "w")]) == 2
    _one_error_line(capsys, "(6,)", "(5,)")
    assert cli.main(["vae", "train", "--data", "digits", "--holdout", "0.1", "--run-dir", str(tmp_path / "d")]) == 2
    _one_error_line(capsys, "digits has its own test split", "--holdout")
    assert cli.main(["vae", "train", "--resume", "--holdout", "0.3", "--run-dir", str(tmp_path / "h")]) == 2
    _one_error_line(capsys, "--holdout 0.3", "0.2")


def test_an_autoregressive_decoder_trains_evaluates_samples_and_resumes(tmp_path, capsys):
    run = tmp_path / "ar"
    common = ["vae", "train", "--model", "hvae", "--inference", "markov", "--latent", "6,3", "--hidden", "32,16",
              "--autoregressive", "3", "--ar-channels", "2", "--eval-every", "-1"]
    assert cli.main([*common, "--epochs", "1", "--run-dir", str(run)]) == 0
    assert cli.main(["vae", "train", "--resume", "--epochs", "2", "--run-dir", str(run)]) == 0
    assert cli.main([*common, "--epochs", "2", "--run-dir", str(tmp_path / "straight")]) == 0
    (a, step_a), (b, step_b) = _last(run), _last(tmp_path / "straight")
    assert step_a == step_b == 30 and all(torch.equal(b["model"][k], v) for k, v in a["model"].items())
    lik = json.loads((run / "config.json").read_text())["model"]["likelihood"]
    assert lik["kernel"] == 3 and lik["channels"] == 2 and lik["_type"].endswith("AutoregressiveBernoulliConfig")
    capsys.readouterr()
    assert cli.main(["vae", "evaluate", str(run), "--k", "20", "--json", "--runs-root", str(tmp_path / "r")]) == 0
    r = _json(capsys)
    assert r["iwae"] >= r["elbo"] - 2 * r["nll_stderr"] and r["iwae"] > -64 * math.log(2)
    assert cli.main(["sample", str(run), "-n", "4", "--out", str(tmp_path / "s.npy"), "--seed", "3"]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (4, 8, 8) and 0 <= s.min() and s.max() <= 1
    assert type(kakusan.load(run).likelihood).__name__ == "AutoregressiveBernoulli"


def test_autoregressive_options_refuse_what_they_cannot_do(gaussian_file, tmp_path, capsys):
    root = ["--runs-root", str(tmp_path / "runs"), "--epochs", "1"]
    assert cli.main(["vae", "train", "--data", str(gaussian_file), "--likelihood", "gaussian", "--autoregressive",
                     "3", *root]) == 2
    _one_error_line(capsys, "--autoregressive", "bernoulli")
    assert cli.main(["vae", "train", "--ar-channels", "4", *root]) == 2
    _one_error_line(capsys, "--ar-channels", "--autoregressive")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["vae", "train", "--autoregressive", "4", *root])
    assert exit_.value.code == 2
    _one_error_line(capsys, "odd")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["vae", "train", "--autoregressive", "3", "--ar-channels", "-1", *root])
    assert exit_.value.code == 2
    _one_error_line(capsys, "--ar-channels", "non-negative")

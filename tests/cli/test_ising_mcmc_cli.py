"""``kakusan ising sample --method gibbs|metropolis|pt`` and ``kakusan ising fit --method pcd|pt`` at tiny sizes."""

import json

import numpy as np
import pytest

from kakusan.boltzmann import exact_stats, instances, save_ising_npz
from kakusan.cli import main


@pytest.fixture
def model_file(tmp_path):
    model = instances.sherrington_kirkpatrick(9, beta=1.2, field_std=0.2, seed=7)
    return model, save_ising_npz(tmp_path / "model.npz", model)


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


@pytest.mark.parametrize("method", ["gibbs", "metropolis", "pt"])
def test_mcmc_sample_writes_spins_diagnostics_and_figures(model_file, tmp_path, capsys, method):
    model, path = model_file
    out, run = tmp_path / "x.npy", tmp_path / "run"
    args = ["ising", "sample", str(path), "--method", method, "-n", "400", "--out", str(out), "--chains", "4",
            "--burn-in", "100", "--thin", "2", "--seed", "1", "--run-dir", str(run)]
    if method == "pt":
        args += ["--replicas", "5", "--beta-min", "0.3"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    x = np.load(out)
    assert x.shape == (400, 9) and set(np.unique(x)) <= {-1, 1}
    report = json.loads((run / "diagnostics.json").read_text())
    energy = report["observables"]["energy"]
    assert {"mean", "mcse", "tau_int", "ess", "rhat", "mcse_is_lower_bound", "exact"} <= set(energy)
    assert energy["exact"] == pytest.approx(exact_stats(model).energy_mean)
    assert abs(energy["mean"] - energy["exact"]) < 6 * energy["mcse"] + 0.05
    assert "R-hat" in printed and "energy" in printed and "MCSE: one standard error" in printed
    figs = {"energy_trace.png", "autocorrelation.png"} | ({"swap_acceptance.png", "replica_walk.png"}
                                                           if method == "pt" else set())
    assert figs <= {p.name for p in (run / "figures").iterdir()}
    if method == "pt":
        t = report["tempering"]
        assert len(t["betas"]) == 5 and t["betas"][-1] == 1.0 and len(t["swap_acceptance"]) == 4
        assert t["round_trips"] > 0 and "swap acceptance per pair" in printed and "round trips" in printed


def test_unmixed_chains_say_their_mcse_is_a_lower_bound(tmp_path, capsys):
    """Heat-bath chains on a 12-spin glass at β = 2 keep the sign of m they started with (R-hat of m ≈ 1.75): the
    printed MCSE of m is then too small, and the command says so; replica exchange on the same glass does not."""
    path = save_ising_npz(tmp_path / "glass.npz", instances.sherrington_kirkpatrick(12, beta=2.0, seed=1))
    for method in ("gibbs", "pt"):
        run = tmp_path / method
        assert main(["ising", "sample", str(path), "--method", method, "--out", str(tmp_path / f"{method}.npy"),
                     "--seed", "3", "--run-dir", str(run)]) == 0
        printed = capsys.readouterr().out
        m = json.loads((run / "diagnostics.json").read_text())["observables"]["magnetization"]
        warned = "warning: R-hat of magnetization" in printed and "lower bound" in printed
        assert warned == m["mcse_is_lower_bound"] == (method == "gibbs"), (method, m, printed)


def test_pt_ladder_from_betas_and_adaptation(model_file, tmp_path, capsys):
    _, path = model_file
    base = ["ising", "sample", str(path), "--method", "pt", "-n", "100", "--chains", "2",
            "--runs-root", str(tmp_path / "runs")]
    assert main(base + ["--out", str(tmp_path / "a.npy"), "--betas", "0.2,0.5,1", "--burn-in", "60",
                        "--adapt", "3", "--run-dir", str(tmp_path / "ra")]) == 0
    betas = json.loads((tmp_path / "ra" / "diagnostics.json").read_text())["tempering"]["betas"]
    assert betas[0] == 0.2 and betas[-1] == 1.0 and 0.2 < betas[1] < 1.0
    assert main(base + ["--out", str(tmp_path / "b.npy"), "--betas", "0.2,0.5"]) == 2
    _one_error_line(capsys, "--betas must end at 1")
    assert main(base + ["--out", str(tmp_path / "c.npy"), "--betas", "0.5,0.2,1"]) == 2
    _one_error_line(capsys, "strictly increasing")
    assert main(base + ["--out", str(tmp_path / "d.npy"), "--adapt", "10", "--burn-in", "5"]) == 2
    _one_error_line(capsys, "--adapt 10 needs --burn-in")
    assert not any((tmp_path / f"{c}.npy").exists() for c in "bcd")


def test_samplers_run_beyond_enumeration_and_exact_refuses(tmp_path, capsys):
    path = save_ising_npz(tmp_path / "cw.npz", instances.curie_weiss(40, beta=0.5))
    args = ["ising", "sample", str(path), "-n", "64", "--chains", "4", "--burn-in", "10",
            "--runs-root", str(tmp_path / "runs")]
    assert main(args + ["--method", "gibbs", "--out", str(tmp_path / "g.npy")]) == 0
    assert "exact" not in capsys.readouterr().out.splitlines()[0]  # no exact column for N = 40
    assert np.load(tmp_path / "g.npy").shape == (64, 40)
    assert main(args + ["--method", "exact", "--out", str(tmp_path / "e.npy")]) == 2
    _one_error_line(capsys, "too many to enumerate", "use a sampler")


@pytest.mark.parametrize("method", ["pcd", "pt"])
def test_fit_with_monte_carlo_statistics(tmp_path, capsys, method):
    truth = instances.sherrington_kirkpatrick(6, beta=0.6, field_std=0.3, seed=2)
    np.save(tmp_path / "data.npy", truth.sample(3000, generator=0).numpy().astype(np.int8))
    truth_path = save_ising_npz(tmp_path / "truth.npz", truth)
    run = tmp_path / "run"
    extra = ["--chains", "128"] if method == "pcd" else ["--chains", "32", "--replicas", "4", "--beta-min", "0.4"]
    assert main(["ising", "fit", str(tmp_path / "data.npy"), "--out", str(tmp_path / "m.npz"), "--method", method,
                 "--steps", "300", "--lr", "0.02", "--sweeps", "2", "--truth", str(truth_path), "--run-dir", str(run),
                 *extra]) == 0
    assert "KL(p0||q)" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kl"] < 0.02 and summary["relative_error_J"] < 0.35
    for name in ("moment_error.png", "moments.png", "couplings.png"):
        assert (run / "figures" / name).exists(), name
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == method and config["options"]["n_sweeps"] == 2


def test_fit_options_are_checked(tmp_path, capsys):
    np.save(tmp_path / "d.npy", instances.curie_weiss(5, beta=0.5).sample(50, generator=0).numpy())
    base = ["ising", "fit", str(tmp_path / "d.npy"), "--out", str(tmp_path / "m.npz"), "--steps", "3",
            "--runs-root", str(tmp_path / "runs")]
    assert main(base + ["--chains", "8"]) == 2
    _one_error_line(capsys, "--chains is an option of --method pcd or pt")
    assert main(base + ["--method", "pcd", "--replicas", "3"]) == 2
    _one_error_line(capsys, "--method pt")
    assert main(base + ["--method", "pcd", "--optimizer", "backtracking"]) == 2
    _one_error_line(capsys, "backtracking", "adam")
    assert not (tmp_path / "m.npz").exists()


def test_fit_beyond_enumeration_with_pcd(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "d.npy", rng.choice([-1, 1], size=(300, 24)).astype(np.int8))
    run = tmp_path / "run"
    assert main(["ising", "fit", str(tmp_path / "d.npy"), "--out", str(tmp_path / "m.npz"), "--method", "pcd",
                 "--steps", "20", "--chains", "64", "--run-dir", str(run)]) == 0
    assert "moment error" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert "kl" not in summary and summary["moment_error"] > 0
    assert (run / "figures" / "moments.png").exists()

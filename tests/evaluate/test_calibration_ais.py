"""AIS through the calibration harness on a small RBM with exact log Z, and AIS's tail diagnostic.

The RBM is small (20-6, random weights of scale 0.5) so that 60 independent 50-run AIS estimates with 300 βs
take a few seconds; its exact log Z comes from enumeration. The MNIST cases of issue 16 are in
``benchmarks/bench_calibration.py`` (tens of CPU-minutes).
"""

import math

import numpy as np
import pytest
import torch

from kakusan.evaluate.calibration import calibrate
from kakusan.rbm import BernoulliRBM, exact
from kakusan.rbm.ais import ais, ais_from_weights, default_betas, reverse_ais


@pytest.fixture(scope="module")
def small_rbm():
    torch.manual_seed(0)
    model = BernoulliRBM(20, 6, seed=0)
    with torch.no_grad():
        model.W.mul_(0).add_(0.5 * torch.randn(model.W.shape, generator=torch.Generator().manual_seed(1)))
    return model, exact.log_z(model)


def test_forward_and_reverse_ais_error_bars_are_calibrated_on_a_small_rbm(small_rbm):
    model, truth = small_rbm
    betas = default_betas(10, 90, 200)
    fwd = calibrate(lambda s: ais(model, n_runs=50, betas=betas, generator=s), truth, range(60),
                    estimator="AIS forward", case="20-6", bound="lower")
    rev = calibrate(lambda s: reverse_ais(model, exact.sample(model, 50, generator=1000 + s), betas=betas,
                                          generator=s), truth, range(60), estimator="AIS reverse", case="20-6",
                    bound="upper")
    for cal in (fwd, rev):
        assert cal.calibrated, str(cal)
        assert cal.bound_holds, str(cal)


def test_ais_results_carry_the_tail_diagnostic_and_warn_on_one_dominant_run(small_rbm):
    model, _ = small_rbm
    res = ais(model, n_runs=50, betas=default_betas(10, 90, 200), generator=0)
    assert res.tail is not None and res.tail.n == 50 and res.tail.ess == pytest.approx(res.ess)
    assert res.warning is None
    lw = torch.zeros(100, dtype=torch.float64)
    lw[7] = 6.0  # one run carries e⁶ / (e⁶ + 99) = 80 % of the weight
    bad = ais_from_weights(lw, 1.0, "forward", 10)
    assert bad.warning is not None and "80 %" in bad.warning
    assert bad.log_z == pytest.approx(1.0 + math.log((math.exp(6) + 99) / 100))


def test_heavy_tailed_weights_give_a_high_khat():
    rng = np.random.default_rng(0)
    lw = torch.from_numpy(np.log(rng.pareto(1.0 / 0.9, 400) + 1.0))  # tail index k = 0.9
    res = ais_from_weights(lw, 0.0, "reverse", 10)
    assert res.tail.khat > 0.6 and res.warning is not None and "k̂" in res.warning


def test_rbm_evaluate_says_what_the_error_bar_means():
    from kakusan.commands.rbm import BOUNDS_NOTE, STDERR_KIND, _evaluate_text, calibration_status

    result = {"method": "ais", "log_z": 213.3, "log_z_stderr": 0.033, "test_log_likelihood": -120.0,
              "ais_runs": 100, "ais_betas": 14500, "stderr_kind": STDERR_KIND, "bounds": BOUNDS_NOTE,
              "calibration": calibration_status(100, 14500), "ais_warning": "heavy-tailed weights (…)",
              "log_z_reverse": 213.1, "log_z_reverse_stderr": 0.03, "reverse_start": "exact",
              "test_log_likelihood_reverse": -119.8, "reverse_warning": None}
    text = _evaluate_text(result, "runs/x")
    assert "1 standard error" in text and "not a bracket" in text and "alibrat" in text
    assert "interval:" not in text  # no interval without the keys
    from kakusan.commands.rbm import INTERVAL_KIND
    from kakusan.rbm.ais import CALIBRATION

    both = {**result, "log_z_interval": [213.2, 213.2], "test_log_likelihood_interval": [-120.1, -119.9],
            "interval_kind": INTERVAL_KIND, "interval_calibration": CALIBRATION["sandwich"],
            "interval_warning": "forward and reverse AIS disagree"}
    text = _evaluate_text(both, "runs/x")
    assert "interval: log Z in [213.2000, 213.2000], test log-likelihood in [-120.1000, -119.9000] nats" in text
    assert "warning (interval): forward and reverse AIS disagree" in text
    assert "warning (forward AIS): heavy-tailed" in text and "warning (reverse" not in text
    assert "not measured at 40 runs" in calibration_status(40, 14500)
    assert "at 50 runs (14,500 β) the ± was measured" in calibration_status(50, 14500)
    exact = _evaluate_text({"method": "exact", "log_z": 1.0, "test_log_likelihood": -2.0}, "runs/y")
    assert "exact" in exact and "±" not in exact


def test_the_printed_calibration_status_is_the_results_file():
    """The ranges `rbm evaluate` prints (rbm.ais.CALIBRATION) are the min and max over the results file's rows of
    AIS at the defaults (100 runs, 14,500 β) on MNIST RBMs, per direction (reverse: exact starts)."""
    import re
    from pathlib import Path

    from kakusan.rbm.ais import CALIBRATION

    text = (Path(__file__).resolve().parents[2] / "benchmarks" / "results_calibration.md").read_text(encoding="utf-8")
    status = CALIBRATION["status"]
    for direction, case, n_rbms in (("forward", "MNIST 784-", 4), ("reverse", "exact starts", 4)):
        rows = [ln.split(" | ") for ln in text.splitlines()
                if ln.startswith(f"| AIS {direction}, 100 runs, 14,500 β, delta-method s.e. |") and case in ln]
        assert len(rows) == n_rbms, rows
        sds = sorted(float(r[4]) for r in rows)
        coverage = sorted(int(r[5].removesuffix(" %")) for r in rows)
        sd_text = f"sd(z) {sds[0]:.2f}–{sds[-1]:.2f}"
        assert re.search(rf"{direction}[^;]*{re.escape(sd_text)}, ±?2? ?s?\.?e?\.? ?coverage "
                         rf"{coverage[0]}–{coverage[-1]} %", status), (direction, sd_text, coverage, status)
        assert sd_text in CALIBRATION["short"] or f"{sds[0]:.2f}–{sds[-1]:.2f} {direction}" in CALIBRATION["short"]


def test_the_printed_interval_status_is_the_results_file():
    """The coverage range `rbm evaluate` prints for its forward/reverse interval (CALIBRATION["sandwich"]) is the
    min and max over the results file's interval table, every row of which is calibrated (≥ 90 %, ≥ 50 pairs)."""
    from pathlib import Path

    from kakusan.rbm.ais import CALIBRATION

    text = (Path(__file__).resolve().parents[2] / "benchmarks" / "results_calibration.md").read_text(encoding="utf-8")
    table = text.split("| case | reverse starts | pairs | coverage |")[1].split("\n\n")[0]
    rows = [ln.split(" | ") for ln in table.splitlines() if ln.startswith("| MNIST 784-")]
    assert len(rows) >= 4, rows
    coverage = sorted(int(r[3].removesuffix("%")) for r in rows)
    assert all(int(r[2]) >= 50 and r[9] == "calibrated" for r in rows) and coverage[0] >= 90
    rbms = {r[0].removeprefix("| MNIST ").split(" CD-1")[0].split(" PCD-1")[0] for r in rows}
    status = CALIBRATION["sandwich"]
    assert f"held the exact log Z in {coverage[0]}–{coverage[-1]} %" in status, (coverage, status)
    assert CALIBRATION["sandwich_short"].startswith(f"{coverage[0]}–{coverage[-1]} % of 50 estimates")
    assert all(rbm in status for rbm in rbms), (rbms, status)
    from kakusan.commands.rbm import _interval

    assert f"{coverage[0]}–{coverage[-1]} %" in _interval(*_pair(), 0.0, "test", 40, 14500)["interval_calibration"]
    assert "not measured at 40 runs" in _interval(*_pair(), 0.0, "test", 40, 14500)["interval_calibration"]
    assert _interval(*_pair(), 0.0, "test", 100, 14500)["interval_calibration"] == status


def _pair():
    """A forward and a reverse AIS result of a small random RBM (for the interval's bookkeeping)."""
    import torch

    from kakusan.rbm import BernoulliRBM, exact
    from kakusan.rbm.ais import ais, default_betas, reverse_ais

    model = BernoulliRBM(8, 3, dtype="float64", weight_std=0.3, seed=0)
    betas = default_betas(3, 3, 3)
    return (ais(model, n_runs=10, betas=betas, generator=0),
            reverse_ais(model, exact.sample(model, 10, torch.Generator().manual_seed(1)), betas=betas, generator=2))


@pytest.mark.parametrize("runs", [20, 50])
def test_the_status_printed_at_fewer_runs_is_the_results_file(runs):
    """What `rbm evaluate --runs 20|50` prints (rbm.ais.CALIBRATION["other"]) is the min and max of the results
    file's rows at that many runs, per direction, with the RBMs each verdict names."""
    import re
    from pathlib import Path

    from kakusan.rbm.ais import CALIBRATION

    text = (Path(__file__).resolve().parents[2] / "benchmarks" / "results_calibration.md").read_text(encoding="utf-8")
    status = CALIBRATION["other"][(runs, 14500)]
    for direction, case in (("forward", "MNIST 784-"), ("reverse", "exact starts")):
        rows = [ln.split(" | ") for ln in text.splitlines()
                if ln.startswith(f"| AIS {direction}, {runs} runs, 14,500 β, delta-method s.e. |") and case in ln]
        assert len(rows) == 4, rows
        assert all(int(r[2]) >= 50 for r in rows)
        sds = sorted(float(r[4]) for r in rows)
        coverage = sorted(int(r[5].removesuffix(" %")) for r in rows)
        assert re.search(rf"{direction}[^;]*sd\(z\) {sds[0]:.2f}–{sds[-1]:.2f}, coverage {coverage[0]}–{coverage[-1]} %",
                         status), (direction, sds, coverage, status)
        calibrated = sum(r[9] == "calibrated" for r in rows)
        word = {4: "all four", 2: "two"}[calibrated]
        assert re.search(rf"{direction}[^;]*calibrated on {word}", status), (direction, calibrated, status)


def test_the_status_printed_at_1450_betas_is_the_results_file():
    """What `rbm evaluate --betas 1450` prints is the min and max of the results file's 1,450-β rows per direction
    (four RBMs each), with the number of RBMs each direction is calibrated on, and the interval's coverage."""
    import re
    from pathlib import Path

    from kakusan.commands.rbm import _interval
    from kakusan.rbm.ais import CALIBRATION

    text = (Path(__file__).resolve().parents[2] / "benchmarks" / "results_calibration.md").read_text(encoding="utf-8")
    status = CALIBRATION["other"][(100, 1450)]
    for direction, case in (("forward", "MNIST 784-"), ("reverse", "exact starts")):
        rows = [r for r in (ln.split(" | ") for ln in text.splitlines())
                if r[0] == f"| AIS {direction}, 100 runs, 1,450 β, delta-method s.e." and case in r[1]]
        assert len(rows) == 4 and all(int(r[2]) >= 50 for r in rows), rows
        sds = sorted(float(r[4]) for r in rows)
        coverage = sorted(int(r[5].removesuffix(" %")) for r in rows)
        assert re.search(rf"{direction}[^;]*sd\(z\) {sds[0]:.2f}–{sds[-1]:.2f}, coverage {coverage[0]}–{coverage[-1]} %",
                         status), (direction, sds, coverage, status)
        word = {1: "one", 2: "two", 3: "three", 4: "all four"}[sum(r[9] == "calibrated" for r in rows)]
        assert re.search(rf"{direction}[^;]*calibrated on {word}", status), (direction, word, status)
    assert "lower bounds" in status
    table = text.split("| case (at 1,450 β) | reverse starts | pairs | coverage |")[1].split("\n\n")[0]
    rows = [ln.split(" | ") for ln in table.splitlines() if ", 1,450 β |" in ln]
    exact_rows = [r for r in rows if r[1] == "exact starts"]
    assert len(exact_rows) == 4 and all(int(r[2]) >= 50 and r[9] == "calibrated" for r in exact_rows), rows
    coverage = sorted(int(r[3].removesuffix("%")) for r in exact_rows)
    annealed = [r for r in rows if r[1] != "exact starts"]
    assert len(annealed) == 1 and annealed[0][9] == "low coverage"
    interval = CALIBRATION["sandwich_other"][(100, 1450)]
    assert f"held the exact log Z in {coverage[0]}–{coverage[-1]} % with exact reverse starts" in interval
    assert f"held it in {int(annealed[0][3].removesuffix('%'))} % on the 784-24 RBM" in interval
    assert int(annealed[0][6]) == int(annealed[0][2])  # every pair inconsistent: rbm evaluate warns on each
    assert _interval(*_pair(), 0.0, "test", 100, 1450)["interval_calibration"] == interval


@pytest.mark.parametrize("runs,pairs", [(20, 250), (50, 100)])
def test_the_interval_status_at_fewer_runs_is_the_results_file(runs, pairs):
    from pathlib import Path

    from kakusan.commands.rbm import _interval
    from kakusan.rbm.ais import CALIBRATION

    text = (Path(__file__).resolve().parents[2] / "benchmarks" / "results_calibration.md").read_text(encoding="utf-8")
    table = text.split("| case (at fewer runs) | reverse starts | pairs | coverage |")[1].split("\n\n")[0]
    rows = [ln.split(" | ") for ln in table.splitlines() if f", {runs} runs |" in ln]
    assert len(rows) == 5 and all(int(r[2]) == pairs and r[9] == "calibrated" for r in rows), rows
    coverage = sorted(int(r[3].removesuffix("%")) for r in rows)
    status = CALIBRATION["sandwich_other"][(runs, 14500)]
    assert f"held the exact log Z in {coverage[0]}–{coverage[-1]} %" in status and f"{pairs} pairs" in status
    assert _interval(*_pair(), 0.0, "test", runs, 14500)["interval_calibration"] == status

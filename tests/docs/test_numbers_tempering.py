"""The numbers docs/tempering.md quotes outside its exercises, each checked against its source (see page_numbers).

The benchmark's tables (minutes of sampling) are cited from results_tempering.md and results_calibration.md
(the wall times of the ladder runs are on docs/benchmarks.md, test_numbers_benchmarks.py);
the tour's two R-hat values are recomputed by running that tour chapter (a few CPU-seconds, marked slow).
"""

import json

import pytest

from page_numbers import check, cite

PAGE = "tempering"
TEMPERING = "results_tempering.md"
CALIBRATION = "results_calibration.md"


def test_one_chain_gets_stuck_where_replica_exchange_does_not():
    cite(PAGE, TEMPERING, "| 16 single heat-bath chains |", "−43.1177", "0.0047", "−43.1255", "1.273", "0.78", "0.063")
    cite(PAGE, TEMPERING, "| 16 single heat-bath chains |", "1.3", scale=1e4)  # τ_int 1.3·10⁴ sweeps
    cite(PAGE, TEMPERING, "| 16 single heat-bath chains |", "1.15", scale=1e6)  # chain-sweeps
    cite(PAGE, TEMPERING, "| 16 PT systems × 12 replicas |", "−43.1291", "0.0068", "1.003", "21.5", "38.8", "0.008")
    assert 21.5 * 12 == 258
    assert f"{(43.1255 - 43.1177) / 0.0047:.1f}" == "1.7"  # "within 1.7 standard errors"


def test_round_trips_of_the_geometric_and_adapted_ladders():
    rows = {(2, "geometric"): ("90.9", "2.3", "0.24", "0.79", "7.89"),
            (2, "adapted (equal acceptance)"): ("126.0", "2.3", "0.45", "0.46", "8.23"),
            (3, "geometric"): ("46.4", "1.3", "0.17", "0.75", "8.99"),
            (3, "adapted (equal acceptance)"): ("69.7", "1.8", "0.37", "0.38", "9.41")}
    for (beta_max, ladder), numbers in rows.items():
        cite(PAGE, TEMPERING, f"| {beta_max} | {ladder} |", *numbers)
    cite(PAGE, TEMPERING, "| 2 | adapted (equal acceptance) |", "45", scale=0.01)
    cite(PAGE, TEMPERING, "| 3 | adapted (equal acceptance) |", "37", scale=0.01)
    cite(PAGE, TEMPERING, "| 2 | geometric |", "24", scale=0.01)
    cite(PAGE, TEMPERING, "| 3 | geometric |", "17", scale=0.01)
    # derived on the page: 39–50 % more round trips, 35 ± 3 and 23 ± 2 more (errors in quadrature)
    assert [round(100 * (a / g - 1)) for a, g in ((126.0, 90.9), (69.7, 46.4))] == [39, 50]
    assert [round(126.0 - 90.9), round((2.3**2 + 2.3**2) ** 0.5)] == [35, 3]
    assert [round(69.7 - 46.4), round((1.3**2 + 1.8**2) ** 0.5)] == [23, 2]


def test_log_z_along_the_ladder():
    cite(PAGE, TEMPERING, "| BAR | 45.22376", "45.224", "0.011", "45.2325", "−0.81")
    cite(PAGE, TEMPERING, "| TI | 45.22658", "45.227", "0.012", "−0.51")
    cite(PAGE, CALIBRATION, "| log Z along the ladder, BAR | SK N = 12, fields 0.3, 10 β from 0 to 2.0", "1.11", "95")
    cite(PAGE, CALIBRATION, "| log Z along the ladder, TI (Euler–Maclaurin trapezoid) | SK N = 12, fields 0.3, "
         "10 β from 0 to 3.0", "0.91", "97")


def test_learning_n64_from_its_own_samples():
    for m, pcd, pt in (("8000", "0.194", "0.196"), ("32000", "0.102", "0.101"), ("128000", "0.061", "0.064")):
        cite(PAGE, TEMPERING, f"| {m} | pcd |", pcd)
        cite(PAGE, TEMPERING, f"| {m} | pt |", pt)
    cite(PAGE, TEMPERING, "Learner: Adam, lr 0.0025, 4000 steps", "0.0025", "4000")


@pytest.mark.slow
def test_the_tours_r_hat_of_stuck_and_tempered_chains(tmp_path):
    from kakusan.cli import main

    run = tmp_path / "tour"
    main(["tour", "--chapters", "mcmc", "--run-dir", str(run)])
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    check(PAGE, "R-hat of m, single chains", metrics["R-hat of m: single chains"])
    check(PAGE, "R-hat of m, replica exchange", metrics["R-hat of m: replica exchange"])

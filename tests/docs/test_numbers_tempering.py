"""The numbers docs/tempering.md quotes outside its exercises, each checked against its source (see page_numbers).

The benchmark's tables (minutes of sampling) are cited from results_tempering.md, results_seeds.md (the ladders
and the learning repeated over seeds) and results_calibration.md
(the wall times of the ladder runs are on docs/benchmarks.md, test_numbers_benchmarks.py);
the tour's two R-hat values are recomputed by running that tour chapter (a few CPU-seconds, marked slow).
"""

import json

import pytest

from page_numbers import check, cite, page
from test_numbers_rbm import seed_pair, seed_run

PAGE = "tempering"
TEMPERING = "results_tempering.md"
CALIBRATION = "results_calibration.md"
SEEDS = "results_seeds.md"


def test_one_chain_gets_stuck_where_replica_exchange_does_not():
    cite(PAGE, TEMPERING, "| 16 single heat-bath chains |", "−43.1177", "0.0047", "−43.1255", "1.273", "0.78", "0.063")
    cite(PAGE, TEMPERING, "| 16 single heat-bath chains |", "1.3", scale=1e4)  # τ_int 1.3·10⁴ sweeps
    cite(PAGE, TEMPERING, "| 16 single heat-bath chains |", "1.15", scale=1e6)  # chain-sweeps
    cite(PAGE, TEMPERING, "| 16 PT systems × 12 replicas |", "−43.1291", "0.0068", "1.003", "21.5", "38.8", "0.008")
    assert 21.5 * 12 == 258
    assert f"{(43.1255 - 43.1177) / 0.0047:.1f}" == "1.7"  # "within 1.7 standard errors"


def ladder_gains() -> list[int]:
    """The adapted ladder's extra round trips over the geometric one, in % of the geometric mean, at β_max 2 and 3
    (paired by seed in results_seeds.json); quoted on tempering.md and benchmarks.md."""
    means = {m: v["round trips"]["mean"] for m, v in seed_run("ladders")["summary"]["methods"].items()}
    return [round(100 * seed_pair("ladders", f"β_max {b}, adapted", f"β_max {b}, geometric", "round trips")["mean"]
                  / means[f"β_max {b}, geometric"]) for b in (2, 3)]


def test_round_trips_of_the_geometric_and_adapted_ladders_over_eight_seeds():
    rows = {"β_max 2, geometric": ("104", "5", "0.245", "0.003", "7.862", "0.017"),
            "β_max 2, adapted": ("143", "5", "0.4475", "0.0014", "8.185", "0.023"),
            "β_max 3, geometric": ("60", "3", "0.1719", "0.0025", "8.970", "0.016"),
            "β_max 3, adapted": ("82", "3", "0.3665", "0.0012", "9.383", "0.015")}
    for method, numbers in rows.items():
        cite(PAGE, SEEDS, f"| {method} |", *numbers)
    cite(PAGE, SEEDS, "`--only ladders`", "8")
    cite(PAGE, SEEDS, "| β_max 2, geometric |", "89", "121")  # the per-seed range
    cite(PAGE, SEEDS, "| β_max 2: adapted − geometric | round trips |", "39.6", "1.1", "35")
    cite(PAGE, SEEDS, "| β_max 3: adapted − geometric | round trips |", "22.2", "1.0", "22")
    assert ladder_gains() == [38, 37] and "37–38 %" in page(PAGE)
    for b in (2, 3):
        assert all(seed_pair("ladders", f"β_max {b}, adapted", f"β_max {b}, geometric", metric)["resolved"]
                   for metric in ("round trips", "worst acceptance", "Λ"))
    # "about twice as many swaps" at the worst pair
    assert 1.8 < 0.4475 / 0.245 < 0.3665 / 0.1719 < 2.2
    # a single run's ± over its systems, 1.3–2.3 round trips (section 1 of results_tempering.md)
    cite(PAGE, TEMPERING, "| 3 | geometric |", "1.3")
    cite(PAGE, TEMPERING, "| 2 | geometric |", "2.3")


def test_log_z_along_the_ladder():
    cite(PAGE, TEMPERING, "| BAR | 45.22376", "45.224", "0.011", "45.2325", "−0.81")
    cite(PAGE, TEMPERING, "| TI | 45.22658", "45.227", "0.012", "−0.51")
    cite(PAGE, CALIBRATION, "| log Z along the ladder, BAR | SK N = 12, fields 0.3, 10 β from 0 to 2.0", "1.11", "95")
    cite(PAGE, CALIBRATION, "| log Z along the ladder, TI (Euler–Maclaurin trapezoid) | SK N = 12, fields 0.3, "
         "10 β from 0 to 3.0", "0.91", "97")


def test_learning_n64_from_its_own_samples_over_eight_seeds():
    rows = {"8,000": (("0.1878", "0.0011"), ("0.1884", "0.0012"), ("−0.0006", "0.0004")),
            "32,000": (("0.1019", "0.0007"), ("0.1020", "0.0007"), ("−0.0001", "0.0004")),
            "128,000": (("0.0636", "0.0005"), ("0.06376", "0.00030"), ("−0.0001", "0.0004"))}
    for m, (pcd, pt, diff) in rows.items():
        cite(PAGE, SEEDS, f"| M {m}, pcd |", *pcd)
        cite(PAGE, SEEDS, f"| M {m}, pt |", *pt)
        cite(PAGE, SEEDS, f"| M {m}: pcd − pt |", *diff)
        pair = seed_pair("coupling", f"M {m}, pcd", f"M {m}, pt", "relative error")
        assert not pair["resolved"] and abs(pair["z"]) <= 1.5  # "no difference … is resolved (|z| ≤ 1.5)"
    cite(PAGE, SEEDS, "| M 8,000: pcd − pt |", "1.5")
    cite(PAGE, SEEDS, "`--only coupling`", "8", "0.0025", "4000")
    cite(PAGE, SEEDS, "| M 8,000, pcd |", "0.188")        # 0.188 → 0.102 → 0.064
    cite(PAGE, SEEDS, "| M 32,000, pcd |", "0.102")
    cite(PAGE, SEEDS, "| M 128,000, pcd |", "0.064")
    # "over a hundred standard errors from 8 000 to 128 000 samples"
    assert (0.1878 - 0.0636) / (0.0011**2 + 0.0005**2) ** 0.5 > 100
    cite(PAGE, TEMPERING, "Learner: Adam, lr 0.0025, 4000 steps", "0.0025", "4000")


@pytest.mark.slow
def test_the_tours_r_hat_of_stuck_and_tempered_chains(tmp_path):
    from kakusan.cli import main

    run = tmp_path / "tour"
    main(["tour", "--chapters", "mcmc", "--run-dir", str(run)])
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    check(PAGE, "R-hat of m, single chains", metrics["R-hat of m: single chains"])
    check(PAGE, "R-hat of m, replica exchange", metrics["R-hat of m: replica exchange"])


def test_the_r_hat_warning_of_ising_sample():
    """The coverage of single-site Gibbs' ⟨m⟩ ± MCSE that the page gives as the reason for the R-hat warning (the
    warning itself: tests/cli/test_ising_mcmc_cli.py and tests/mcmc/test_pt_calibration.py)."""
    cite(PAGE, CALIBRATION, "| `ising sample --method gibbs`: ⟨m⟩ ± MCSE, τ_int alone", "89")
    from kakusan.commands.ising_sample import RHAT_LIMIT

    assert f"R-hat exceeds {RHAT_LIMIT}" in page(PAGE).replace("\n", " ")

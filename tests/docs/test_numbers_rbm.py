"""The numbers docs/rbm.md quotes outside its exercises, each found in the results file it cites (see page_numbers).

Every one comes from a benchmark, a long training or the tour (tens of CPU-seconds to an hour), so none is
recomputed here: the results file names the command, and these tests fail when the page and the file disagree.
The epoch times, the exact log Z time and the race against the peers are on docs/benchmarks.md
(test_numbers_benchmarks.py).
"""

import json

from page_numbers import BENCHMARKS, cite, page

PAGE = "rbm"
RBM = "results_rbm.md"
CALIBRATION = "results_calibration.md"
SEEDS = "results_seeds.md"


def seed_run(comparison: str) -> dict:
    """One comparison of ``benchmarks/results_seeds.json``, the run that results_seeds.md was written from."""
    saved = json.loads((BENCHMARKS / "results_seeds.json").read_text(encoding="utf-8"))
    return next(r for r in saved["results"] if r["comparison"] == comparison)


def seed_pair(comparison: str, a: str, b: str, metric: str) -> dict:
    """The paired difference a − b of that run: mean, se, z, p, and whether it is resolved (p < 0.05)."""
    return next(p for p in seed_run(comparison)["summary"]["pairs"] if (p["a"], p["b"], p["metric"]) == (a, b, metric))


def test_centering_against_plain_pcd_over_ten_seeds():
    cite(PAGE, SEEDS, "`--only centering`", "10", "30", "4")
    cite(PAGE, SEEDS, "| centered |", "0.59", "0.04", "0.64", "0.05", "−23.57", "0.09")
    cite(PAGE, SEEDS, "| plain |", "2.60", "0.19", "3.00", "0.23", "−25.57", "0.29")
    cite(PAGE, SEEDS, "| centered − plain | largest change |", "2.01", "0.17", "−11.8")
    cite(PAGE, SEEDS, "| centered − plain | final |", "2.0", "0.3", "6.5")
    for metric in ("largest change", "final"):  # "both differences are resolved (paired t-test p < 0.001)"
        assert seed_pair("centering", "centered", "plain", metric)["p"] < 0.001


def test_cd_pcd_and_pt_over_sixteen_seeds():
    cite(PAGE, SEEDS, "`--only rbm`", "16", "25", "1,797", "1,500", "297")
    cite(PAGE, SEEDS, "| cd |", "−20.46", "0.05")
    cite(PAGE, SEEDS, "| pcd |", "−20.43", "0.05")
    cite(PAGE, SEEDS, "| pt |", "−20.42", "0.05")
    cite(PAGE, SEEDS, "| pcd − cd |", "+0.030", "0.007", "4.2")
    cite(PAGE, SEEDS, "| pt − cd |", "+0.042", "0.009", "4.7")
    cite(PAGE, SEEDS, "| pt − pcd |", "+0.012", "0.006", "2.1", "0.06")
    resolved = {(a, b): seed_pair("rbm", a, b, "test log-likelihood")["resolved"]
                for a, b in (("pcd", "cd"), ("pt", "cd"), ("pt", "pcd"))}
    assert resolved == {("pcd", "cd"): True, ("pt", "cd"): True, ("pt", "pcd"): False}
    assert "![CD, PCD and PT over seeds](figures/rbm_seeds.png)" in page(PAGE)


def test_the_tours_ais():
    cite(PAGE, RBM, "| exact (enumerating", "45.0698")
    cite(PAGE, RBM, "| forward AIS | 45.0712", "45.0712", "0.0050", "0.3")
    cite(PAGE, RBM, "| reverse AIS (from 100 exact", "45.0733", "0.0048", "0.7")


def test_the_ais_calibration_on_the_784_18_rbm():
    forward = "| AIS forward, 100 runs, 14,500 β, delta-method s.e. | MNIST 784-18"
    reverse = "| AIS reverse, 100 runs, 14,500 β, delta-method s.e. | MNIST 784-18"
    cite(PAGE, CALIBRATION, forward, "213.2024", "60", "0.85", "98", "2.0", "−0.0036", "0.0037")
    cite(PAGE, CALIBRATION, reverse, "1.08", "92", "3.3", "−0.0047", "0.0046")
    cite(PAGE, CALIBRATION, "Pooled over the 6,000 runs", "6,000", "0.06", "0.01", "0.33")
    cite(PAGE, CALIBRATION, "seed 0: z = +2.98", "3.0", "+3.0", "−4.0", "0.21", "−0.27", "2")
    cite(PAGE, CALIBRATION, "**Bias sign.**", "0.0005")


def test_the_ais_calibration_on_two_more_rbms():
    row = "| AIS {}, 100 runs, 14,500 β, delta-method s.e. | MNIST {}"
    cite(PAGE, CALIBRATION, row.format("forward", "784-16 CD-1 lr 0.25"), "0.97", "0.25")
    cite(PAGE, CALIBRATION, row.format("forward", "784-17 PCD-1 lr 0.2"), "1.06", "0.2")
    cite(PAGE, CALIBRATION, row.format("reverse", "784-16 CD-1 lr 0.25"), "1.13")
    cite(PAGE, CALIBRATION, row.format("reverse", "784-17 PCD-1 lr 0.2"), "1.17", "100", "3.8")
    cite(PAGE, CALIBRATION, "**Reverse AIS on the 784-16 and 784-17 RBMs**", "48")


def test_ais_against_exact_log_z_and_the_rbms_package():
    cite(PAGE, RBM, "| 784-16 (195.09) | **kakusan forward", "0.04")
    cite(PAGE, RBM, "With the Salakhutdinov–Murray schedule, forward and reverse", "0.06", "0.17", "2", "1,000", "3",
         "4", "0.93", "9")


def test_mnist_log_likelihoods():
    cite(PAGE, RBM, "| **400 epochs** |", "40", "−85.46", "0.09", "−85.52", "1076.77", "1076.84")
    cite(PAGE, RBM, "| 200 epochs |", "−86.1", "0.1")
    cite(PAGE, RBM, "| 100 epochs |", "−86.5", "0.1")
    cite(PAGE, RBM, "| 30 epochs |", "−88.5", "0.1")
    cite(PAGE, RBM, "read those rows as ±0.2 nats", "0.2")
    cite(PAGE, RBM, "Each AIS evaluation (forward + reverse) takes about", "2.5")
    cite(PAGE, RBM, "**Result: −85.5 ± 0.1 nats", "−86.34")


def test_reverse_ais_from_approximate_starts_on_the_784_24_rbm():
    cite(PAGE, CALIBRATION, "**Reverse AIS from Gibbs starts is badly off", "7.41", "24", "1,000", "50", "3")
    cite(PAGE, CALIBRATION, "**Starts from the forward runs' last states instead", "0.12", "0.04", "68", "50",
         "1,000")
    from kakusan.rbm.ais import CALIBRATION as STATUS

    assert "7.41 nats *below*" in page(PAGE) and "0.12 ± 0.04 nats *above*" in page(PAGE)
    assert "7.41 nats below" in STATUS["annealed_starts"] and "0.12 ± 0.04 nats above" in STATUS["annealed_starts"]
    assert "68 % of 50" in STATUS["annealed_starts"] and "68 % of 50" in page(PAGE)
    cite(PAGE, CALIBRATION, "**Reverse AIS from exact starts is too narrow on the 784-24 RBM**", "0.17", "60")


def test_the_forward_reverse_interval():
    """The interval's coverage and width on the page are the results file's interval table."""
    interval = "| MNIST 784-24 CD-1 lr 0.2, 3 epochs, seed 7, log Z 235.8033 | "
    cite(PAGE, CALIBRATION, interval + "exact starts |", "98", "0.74")
    cite(PAGE, CALIBRATION, interval + "the forward runs' last states", "100", "0.73")
    cite(PAGE, CALIBRATION, "| MNIST 784-18 CD-1 lr 0.2, 3 epochs (issue 16), log Z 213.2024 | exact starts |", "0.14")
    cite(PAGE, CALIBRATION, "| MNIST 784-16 CD-1 lr 0.25, 3 epochs, log Z 204.2428 | exact starts |", "92")
    cite(PAGE, CALIBRATION, "**The interval is calibrated on all four RBMs", "60", "68", "0.14")
    assert "held in 92–100 %" in page(PAGE)


def test_the_ais_calibration_at_fewer_runs():
    row = "| AIS {}, {} runs, 14,500 β, delta-method s.e. | MNIST {}"
    cite(PAGE, CALIBRATION, row.format("reverse", 20, "784-17 PCD-1 lr 0.2"), "1.36", "84")
    cite(PAGE, CALIBRATION, row.format("reverse", 20, "784-24 CD-1 lr 0.2"), "1.74", "66")
    cite(PAGE, CALIBRATION, "* **Forward AIS stays calibrated with fewer runs**", "1.04", "1.15", "0.91", "1.08", "20",
         "50")
    cite(PAGE, CALIBRATION, "* **The interval stays calibrated with fewer runs", "95", "97", "250", "20")


def test_the_ais_calibration_at_1450_betas():
    cite(PAGE, CALIBRATION, "* **At 1,450 β the delta-method ± is too narrow", "1.19", "1.81", "80", "90", "1.01",
         "3.36", "22", "93")

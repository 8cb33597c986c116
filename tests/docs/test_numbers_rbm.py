"""The numbers docs/rbm.md quotes outside its exercises, each found in the results file it cites (see page_numbers).

Every one comes from a benchmark, a long training or the tour (tens of CPU-seconds to an hour), so none is
recomputed here: the results file names the command, and these tests fail when the page and the file disagree.
The epoch times, the exact log Z time and the race against the peers are on docs/benchmarks.md
(test_numbers_benchmarks.py).
"""

from page_numbers import cite

PAGE = "rbm"
RBM = "results_rbm.md"
CALIBRATION = "results_calibration.md"


def test_centering_against_plain_pcd_on_the_digits():
    cite(PAGE, RBM, "| centered | −26.7 |", "−26.7", "−23.3", "0.5")
    cite(PAGE, RBM, "| not centered |", "2.5", "−27.2", "−23.8")


def test_the_tour_trainings_and_its_ais():
    cite(PAGE, RBM, "| test log-likelihood, exact |", "−20.29", "−20.27", "−20.23")
    cite(PAGE, RBM, "| exact (enumerating", "45.0698")
    cite(PAGE, RBM, "| forward AIS | 45.0617", "45.0617", "0.0047", "1.7")
    cite(PAGE, RBM, "| reverse AIS (from 1,000", "45.0694", "0.0042", "0.1")


def test_the_ais_calibration_on_the_784_18_rbm():
    forward = "| AIS forward, 100 runs, 14,500 β, delta-method s.e. | MNIST 784-18"
    reverse = "| AIS reverse, 100 runs, 14,500 β, delta-method s.e. | MNIST 784-18"
    cite(PAGE, CALIBRATION, forward, "213.2024", "60", "0.85", "98", "2.0", "−0.0036", "0.0037")
    cite(PAGE, CALIBRATION, reverse, "1.08", "92", "3.3", "−0.0047", "0.0046")
    cite(PAGE, CALIBRATION, "Pooled over the 6,000 runs", "6,000", "0.06", "0.01", "0.33")
    cite(PAGE, CALIBRATION, "seed 0: z = +2.98", "3.0", "+3.0", "−4.0", "0.21", "−0.27", "2")
    cite(PAGE, CALIBRATION, "**Bias sign.**", "0.0005")


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

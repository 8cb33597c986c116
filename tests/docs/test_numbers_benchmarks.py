"""The numbers docs/benchmarks.md quotes, each found in the results file it cites (see page_numbers).

Speed, races against peer libraries and the cost of long runs live on this page rather than in the chapters;
none of them is re-run by a test (timings on a shared machine are not repeatable): each is cited from the
``benchmarks/results_*.md`` file that names its command, so a re-run that changes the file without the page, or
a page edited away from its source, fails here.
"""

from page_numbers import cite, page

PAGE = "benchmarks"


def test_the_enumeration_rates():
    cite(PAGE, "results_exact.md", "| 20 | 1 |", "1.8", scale=1e9)
    cite(PAGE, "results_exact.md", "| 24 | 1 |", "4.9", scale=1e9)
    cite(PAGE, "results_exact.md", "| 20 | 1 |", "266")
    cite(PAGE, "results_exact.md", "| 24 | 1 |", "936")
    cite(PAGE, "results_exact.md", "| 12 | 1 |", "183")
    cite(PAGE, "results_exact.md", "rates vary by up to", "2")


def test_sweep_rates_on_one_core():
    mcmc = "results_mcmc.md"
    cite(PAGE, mcmc, "| sk-heatbath N=64, 256 chains | kakusan numba f64 |", "1.4", scale=1e8)
    cite(PAGE, mcmc, "| sk-heatbath N=64, 256 chains | kakusan numba f64 |", "64", "256")
    cite(PAGE, mcmc, "| sk-heatbath N=64, 256 chains | kakusan numba f32 |", "2.0", scale=1e8)
    cite(PAGE, mcmc, "| ising2d-metropolis L=64, 128 chains | kakusan numba f64 |", "3", scale=1e8)
    # × a straightforward numba kernel (4.8–8.7) and × a NumPy loop on the SK glass (4.9–7.1)
    cite(PAGE, mcmc, "| ising2d-metropolis L=64, 128 chains | kakusan numba f64 |", "4.8")
    cite(PAGE, mcmc, "| sk-heatbath N=64, 256 chains | kakusan numba f32 |", "8.7", "7.1")
    cite(PAGE, mcmc, "| sk-heatbath N=64, 256 chains | kakusan numba f64 |", "4.9")


def test_the_ladder_adaptation_costs_about_one_measurement_run():
    tempering = "results_tempering.md"
    cite(PAGE, tempering, "| 2 | adapted (equal acceptance) |", "22.4")   # seconds of adaptation
    cite(PAGE, tempering, "| 3 | adapted (equal acceptance) |", "24.3")
    cite(PAGE, tempering, "| 2 | geometric |", "26")                      # seconds per measurement run
    cite(PAGE, tempering, "| 3 | geometric |", "22")


def test_rbm_time_per_epoch_against_the_peers():
    cite(PAGE, "results_rbm.md", "| 1 | **3.49, 3.49** |", "3.5", "3.7", "6.4", "9.6")


def test_rbm_exact_log_z_time_and_its_cost_per_state_and_unit():
    cite(PAGE, "results_rbm.md", "Same run: exact log Z of a 784-20 RBM", "1.44")
    assert "1.8 ns per" in page(PAGE) and f"{1.44 / (2**20 * 784) * 1e9:.1f}" == "1.8"


def test_rbm_race_to_a_test_log_likelihood():
    cite(PAGE, "results_rbm.md", "kakusan reaches −100 nats in 20 s", "20", "77", "40", "160", "360")

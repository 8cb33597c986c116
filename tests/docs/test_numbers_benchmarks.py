"""The numbers docs/benchmarks.md quotes, each found in the results file it cites (see page_numbers).

Speed, races against peer libraries and the cost of long runs live on this page rather than in the chapters;
none of them is re-run by a test (timings on a shared machine are not repeatable): each is cited from the
``benchmarks/results_*.md`` file that names its command, so a re-run that changes the file without the page, or
a page edited away from its source, fails here.
"""

import re

from page_numbers import BENCHMARKS, cite, page, printed
from test_numbers_mcmc_free import SIZES, SOLVERS, check_cells, table
from test_numbers_rbm import seed_pair
from test_numbers_tempering import ladder_gains

PAGE = "benchmarks"
SEEDS = "results_seeds.md"


def _cite_cell(results: str, entry: str, cell: str) -> None:
    """A table cell as the page prints it (``1.5e7``, ``4.9×``) is in the results file's ``entry``."""
    number, exponent = re.fullmatch(r"([\d.]+)(?:e(\d+))?×?", cell).groups()
    cite(PAGE, results, entry, number, scale=10.0 ** int(exponent or 0))


def test_every_cell_of_the_enumeration_table():
    cells = 0
    for row in table("of an SK model (β = 1, random fields), one thread", PAGE):
        n = row.pop("N")
        for cell in row.values():
            if cell != "—":
                _cite_cell("results_exact.md", f"| {n} | 1 |", cell)
                cells += 1
    assert cells == 17


def test_the_enumeration_rates():
    exact = "results_exact.md"
    cite(PAGE, exact, "| 20 | 1 |", "1.8", scale=1e9)
    cite(PAGE, exact, "| 24 | 1 |", "4.9", scale=1e9)
    cite(PAGE, exact, "| 20 | 1 |", "266")
    cite(PAGE, exact, "| 24 | 1 |", "936")
    cite(PAGE, exact, "| 12 | 1 |", "183")
    cite(PAGE, exact, "rates vary by up to", "2", "6")                  # × between runs; flops per state
    cite(PAGE, exact, "| 12 | 1 |", "5.2", scale=1e-15)                 # the largest difference, ≤ 5.2e−15
    text = (BENCHMARKS / exact).read_text(encoding="utf-8")
    diffs = [float(d) for d in re.findall(r"(\d\.\de-\d\d)", text)]
    assert max(diffs) == 5.2e-15 and "≤ 5.2e−15" in page(PAGE)
    cite(PAGE, exact, "ConIII one-off import", "5.5", "12")
    cite(PAGE, exact, "a fixed cost of ~0.1 ms per call", "0.1", "10")


def test_every_cell_of_the_sweep_rate_table():
    cases = {"SK heat bath, N = 64, 256 chains": "sk-heatbath N=64, 256 chains",
             "2-D Ising checkerboard Metropolis, L = 64, 128 chains": "ising2d-metropolis L=64, 128 chains"}
    kernels = {"kakusan numba float64": "kakusan numba f64", "kakusan numba float32": "kakusan numba f32",
               "kakusan torch float64 (the GPU path)": "kakusan torch f64"}
    cells, case = 0, None
    for row in table("torch on one thread, numba single-threaded", PAGE):
        case = cases.get(row.pop("case"), case)
        kernel = kernels[row.pop("kernel")]
        for cell in row.values():
            _cite_cell("results_mcmc.md", f"| {case} | {kernel} |", cell)
            cells += 1
    assert cells == 15


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
    cite(PAGE, mcmc, "Goals of the issue", "1.4", "3", "128", "256")     # the goals; the lattice's chain counts
    cite(PAGE, mcmc, "Noise. The machine is shared", "25")                 # run-to-run variation, %


def test_the_ladders_over_eight_seeds():
    rows = {"β_max 2, geometric": ("104", "5", "0.245", "0.003"),
            "β_max 2, adapted": ("143", "5", "0.4475", "0.0014"),
            "β_max 3, geometric": ("60", "3", "0.1719", "0.0025"),
            "β_max 3, adapted": ("82", "3", "0.3665", "0.0012")}
    for method, numbers in rows.items():
        cite(PAGE, SEEDS, f"| {method} |", *numbers)
    cite(PAGE, SEEDS, "`--only ladders`", "8")
    assert "Settings: 10000 sweeps per run" in (BENCHMARKS / SEEDS).read_text(encoding="utf-8")
    assert "10⁴\nsweeps per run" in page(PAGE)
    cite(PAGE, SEEDS, "| β_max 2: adapted − geometric | round trips |", "39.6", "1.1", "35")
    cite(PAGE, SEEDS, "| β_max 3: adapted − geometric | round trips |", "22.2", "1.0", "22")
    assert ladder_gains() == [38, 37] and "38 %\nand 37 % more" in page(PAGE)
    assert all(seed_pair("ladders", f"β_max {b}, adapted", f"β_max {b}, geometric", "round trips")["resolved"]
               for b in (2, 3))


def test_the_ladder_adaptation_costs_about_one_measurement_run():
    tempering = "results_tempering.md"
    cite(PAGE, tempering, "| 2 | adapted (equal acceptance) |", "22.4")   # seconds of adaptation
    cite(PAGE, tempering, "| 3 | adapted (equal acceptance) |", "24.3")
    cite(PAGE, tempering, "| 2 | geometric |", "26")                      # seconds per measurement run
    cite(PAGE, tempering, "| 3 | geometric |", "22")
    text = (BENCHMARKS / tempering).read_text(encoding="utf-8")
    rows = [ln for ln in text.splitlines() if ln.startswith(("| 2 |", "| 3 |"))]
    assert all("| 20000 |" in ln for ln in rows) and "2·10⁴ sweeps per run" in page(PAGE)
    # 12 rounds, the first of 2·10⁴ // 40 = 500 steps, each 1.2 times longer (bench_tempering.round_trips)
    assert round(sum(int(500 * 1.2**k) for k in range(12)), -4) == 20000 and "2 × 10⁴ steps in all" in page(PAGE)


def test_one_chain_gets_stuck_where_replica_exchange_does_not():
    tempering = "results_tempering.md"
    cite(PAGE, tempering, "| 16 single heat-bath chains |", "−43.118", "0.005", "−43.1255", "1.273", "0.063")
    cite(PAGE, tempering, "| 16 single heat-bath chains |", "1.3", scale=1e4)    # τ_int, sweeps
    cite(PAGE, tempering, "| 16 single heat-bath chains |", "1.15", scale=1e6)   # chain-sweeps
    cite(PAGE, tempering, "| 16 PT systems × 12 replicas |", "−43.129", "0.007", "1.003", "21.5", "0.008")
    cite(PAGE, tempering, "| 16 PT systems × 12 replicas |", "16", "12")
    cite(PAGE, tempering, "| 16 PT systems × 12 replicas |", "1.15", scale=1e6)


def test_log_z_along_the_ladder():
    tempering = "results_tempering.md"
    cite(PAGE, tempering, "| BAR | 45.22376", "45.224", "0.011", "45.2325", "−0.81")
    cite(PAGE, tempering, "| TI | 45.22658", "45.227", "0.012", "−0.51")


def test_pcd_and_pt_learning_over_eight_seeds():
    rows = {"8,000": (("0.1878", "0.0011"), ("0.1884", "0.0012")),
            "32,000": (("0.1019", "0.0007"), ("0.1020", "0.0007")),
            "128,000": (("0.0636", "0.0005"), ("0.06376", "0.00030"))}
    for m, (pcd, pt) in rows.items():
        cite(PAGE, SEEDS, f"| M {m}, pcd |", *pcd, m)
        cite(PAGE, SEEDS, f"| M {m}, pt |", *pt)
        pair = seed_pair("coupling", f"M {m}, pcd", f"M {m}, pt", "relative error")
        assert not pair["resolved"] and abs(pair["z"]) <= 1.5  # "No PCD − PT difference is resolved (|z| ≤ 1.5)"
    cite(PAGE, SEEDS, "| M 8,000: pcd − pt |", "1.5")
    cite(PAGE, SEEDS, "`--only coupling`", "8", "64")


def test_rbm_time_per_epoch_against_the_peers():
    rbm = "results_rbm.md"
    cite(PAGE, rbm, "| 1 | **3.49, 3.49** |", "3.49", "3.68", "1.06", "6.38", "9.56", "9.55", "1.83", "2.74")
    cite(PAGE, rbm, "| 1 | **3.49, 3.49** |", "3.5", "3.7", "6.4", "9.6", "1.8", "2.7")
    cite(PAGE, rbm, "(git 8bcd450 + the peer timing", "1.0", "100", "60,000", "3")
    cite(PAGE, rbm, "| 1 | 3.88, 3.85 |", "3.88", "3.85", "3.61", "3.58", "0.93")
    cite(PAGE, rbm, "git 3386358 (uncommitted changes); 2026-11-22T02:15:38", "1.2")


def test_rbm_exact_log_z_and_ais_times():
    cite(PAGE, "results_rbm.md", "Same run: exact log Z of a 784-20 RBM", "1.44", "4.1", "100", "1,000")
    assert "1.8 ns per" in page(PAGE) and f"{1.44 / (2**20 * 784) * 1e9:.1f}" == "1.8"
    assert round(4.1 * 14.5, -1) == 60 and "≈60 s for the 14,500 βs" in page(PAGE)


def test_ais_against_the_exact_log_z():
    ais = "results_rbm.md"
    cite(PAGE, ais, "| 784-16 (195.09) | **kakusan forward, S–M 14,500 β", "+0.04", "0.05")
    cite(PAGE, ais, "| 784-20 (210.99) | **kakusan forward, S–M 14,500 β", "+0.03", "0.13")
    cite(PAGE, ais, "| 784-16 | **kakusan reverse, S–M 14,500 β", "+0.00")
    cite(PAGE, ais, "| 784-20 | **kakusan reverse, S–M 14,500 β", "−0.06")
    cite(PAGE, ais, "| 784-16 | rbms 0.6.0, linear 1,000 β", "0.26")
    cite(PAGE, ais, "| 784-20 | rbms 0.6.0, linear 1,000 β", "0.93")
    cite(PAGE, ais, "bench_ais.py --json ais.json", "5", "100")


def test_rbm_race_to_a_test_log_likelihood():
    rbm = "results_rbm.md"
    cite(PAGE, rbm, "kakusan reaches −100 nats in 20 s", "20", "77", "40", "160", "360", "8", "18")
    cite(PAGE, rbm, "| **kakusan** | **20.2 s**", "20", "−88.7", "141", "4.4")
    cite(PAGE, rbm, "| scikit-learn, lr 0.05 |", "170", "−176.7", "4.3")
    cite(PAGE, rbm, "| scikit-learn, lr 0.1 |", "159", "−167.3", "4.0")
    cite(PAGE, rbm, "| rbms 0.6.0 |", "296", "−107.1", "7.4")
    cite(PAGE, rbm, "| learnergy 2.0.2 |", "360", "−118.4", "9")
    cite(PAGE, rbm, "log-likelihood on the 10,000 test rows", "10,000", "14,500", "32")


def test_rbm_mnist_log_likelihood():
    rbm = "results_rbm.md"
    rows = {"| 30 epochs |": ("−88.48", "0.11", "−88.26", "0.08"),
            "| 100 epochs |": ("18", "−86.50", "0.09", "−86.67", "0.08"),
            "| 200 epochs |": ("19", "−86.09", "0.14", "−85.97", "0.08"),
            "| **400 epochs** |": ("40", "−85.46", "0.09", "−85.52", "0.09")}
    for entry, numbers in rows.items():
        cite(PAGE, rbm, entry, *numbers)
    assert f"{282 / 60:.1f}" == "4.7" and "| 30 epochs | 4.7 min |" in page(PAGE)   # 282 s
    cite(PAGE, rbm, "± is one standard error (delta method", "100", "1.5", "0.2")
    cite(PAGE, rbm, "**Result: −85.5 ± 0.1 nats after 40 minutes", "−85.5", "0.1", "40", "−86", "−86.34")
    cite(PAGE, rbm, "PT-PCD on MNIST (same recipe", "10", "0.5", "30", "−87.62", "0.09", "−87.56", "0.07")
    cite(PAGE, rbm, "PT-PCD on MNIST (same recipe", "0.9", "2.2")
    assert f"{631 / 60:.1f}" == "10.5" and "30 epochs in 10.5 min" in page(PAGE)   # 631 s


def test_vae_likelihoods_and_their_cost():
    vae = "results_vae.md"
    cite(PAGE, vae, "| VAE, Burda nets, after phase 2 |", "1,295", "300", "87.17", "0.24", "−90.58", "0.25", "86.76",
         "3,280")
    cite(PAGE, vae, "(2,061 CPU-s)", "2,061", "630")
    cite(PAGE, vae, "| HVAE, 10-minute configuration (below) |", "60", "88.09", "0.24", "−92.13", "0.25")
    cite(PAGE, vae, "**Hierarchical VAE, 10-minute configuration**", "64", "32", "6,000", "60", "577")
    cite(PAGE, vae, "(837 CPU-s)", "837")
    cite(PAGE, vae, "| HVAE, 2 Markov layers (64, 32), IWAE k = 5, 3-CPU-hour budget |", "400", "84.83", "0.23",
         "−89.80", "0.25", "82.90")
    cite(PAGE, vae, "(4,949 CPU-s)", "4,949", "639")
    cite(PAGE, vae, "| HVAE, 2 Markov layers (64, 32), IWAE k = 5, two cosine cycles", "400", "440", "84.14", "0.23",
         "−88.99", "0.25", "82.90")
    cite(PAGE, vae, "(6,227 CPU-s)", "6,227", "771")
    cite(PAGE, vae, "Training took 4,949 + 6,227 = 11,176 CPU-s", "3.10", "0.10", "0.02", "2.64", "81.5")
    cite(PAGE, vae, "The goal NLL ≤ 86.5 is missed by", "86.5", "0.67")
    cite(PAGE, vae, "| VAE, Burda nets after phase 2: Bernoulli means", "132", "8.7", "11.5")   # its samples' FD
    cite(PAGE, vae, "| VAE, Burda nets, discretised logistic |", "150", "3.468", "0.010", "3.512")
    cite(PAGE, vae, "| IWAE k = 50, from the phase-2 VAE |", "20", "86.11", "0.23", "17", "84.78", "3,280")
    cite(PAGE, vae, "(1,574 CPU-s)", "1,574", "600")
    assert f"{86.11 - 84.5:.2f}" == "1.61" and "missed by 1.61 nats" in page(PAGE)
    cite(PAGE, vae, "(1,184 CPU-s)", "1,184")
    ar = "| HVAE, 2 Markov layers (64, 32), autoregressive decoder 7×7, 4 channels, IWAE k = 5: 10 minutes |"
    cite(PAGE, vae, ar, "27", "88.52", "0.22", "−91.01", "0.23")
    cite(PAGE, vae, "(620 CPU-s)", "620")
    cite(PAGE, vae, "(1,145 CPU-s)", "1,145")
    elbo = "| HVAE, 2 Markov layers (64, 32), autoregressive decoder 7×7, 4 channels, ELBO with warm-up: 10 minutes |"
    cite(PAGE, vae, elbo, "57", "85.26", "0.21", "−87.10", "0.22")
    cite(PAGE, vae, "(557 CPU-s)", "557")
    cite(PAGE, vae, "(1,582 CPU-s)", "1,582")
    three = "| HVAE, 2 Markov layers (64, 32), autoregressive decoder 7×7, 4 channels, ELBO with warm-up: 800 epochs |"
    cite(PAGE, vae, three, "800", "82.51", "0.21", "−84.64", "0.22")
    cite(PAGE, vae, "(1,692 CPU-s)", "1,692")
    cite(PAGE, vae, "--run-dir runs/hvae-ar-3h-iwae ", "2,009")
    cite(PAGE, vae, "(1,672 CPU-s)", "1,672")
    tuned = "| HVAE, the same, then 40 epochs on the IWAE bound, k = 10, from its EMA weights: the 3-CPU-hour goal |"
    cite(PAGE, vae, tuned, "40", "82.15", "0.21", "−85.47", "0.22", "10")
    cite(PAGE, vae, "**The goal of 81.5 is missed by 0.65 nats", "0.65", "2.59", "82.15", "7,317", "82.90")


def test_vae_speed_against_pythae():
    vae = "results_vae.md"
    cite(PAGE, vae, "| ms per training step (kakusan `train.fit`; pythae raw `train_step` body), quiet", "4.59",
         "5.60", "1.22")
    cite(PAGE, vae, "| s per epoch (600 steps + evaluation on 10,000 test rows), wall, quiet", "3.20", "4.00", "1.25")
    cite(PAGE, vae, "| NLL evaluation, k = 100: ms per image, quiet", "0.86", "2.32")
    cite(PAGE, vae, "| NLL evaluation, k = 100: images per second, quiet", "2.70", "100")
    cite(PAGE, vae, "nothing else running, load average 0.3", "0.3")
    cite(PAGE, vae, "What the fused Adam is worth", "1.12", "1.14")
    cite(PAGE, vae, "| ms per training step (kakusan `train.fit`; pythae raw `train_step` body) |", "1.07")
    cite(PAGE, vae, "| s per epoch (600 steps + evaluation on 10,000 test rows), wall |", "1.15")
    cite(PAGE, vae, "| NLL evaluation, k = 100: images per second |", "2.78")
    cite(PAGE, vae, "(git 661c666 + these benchmark files", "3.7")
    cite(PAGE, vae, "**Goals (per epoch ≥ 4×, NLL throughput ≥ 10×)", "4", "10")
    cite(PAGE, vae, "Training: a bare hand-written torch step", "5.1")


def test_the_mnist_diffusion_model():
    mnist = "results_diffusion_mnist.md"
    cite(PAGE, mnist, "| appended: VLB |", "1.78", "0.03", "1,000", "50")
    cite(PAGE, mnist, "| PF-ODE |", "1.74", "0.06", "566", "32")
    cite(PAGE, mnist, "| dpm++2m 20 |", "87.8", scale=0.01)
    cite(PAGE, mnist, "| dpm++2m 20 |", "29.3", "3.8", "0.60", "11.5", "500")
    cite(PAGE, mnist, "| dpm++2m 20, w=2 |", "98.6", scale=0.01)
    cite(PAGE, mnist, "| dpm++2m 20, w=3 |", "100", scale=0.01)
    assert f"{100 * (0.986 * 0.014 / 500) ** 0.5:.1f}" == "0.5"   # the binomial s.e. of 98.6 % over 500 samples
    cite(PAGE, mnist, "| ddpm 100 |", "16.2", "3.5", "0.78", "100")
    cite(PAGE, mnist, "| dpm++2m 10 |", "32.9", "10")
    cite(PAGE, mnist, "| ddim 20 |", "33.4", "0.65")
    cite(PAGE, mnist, "| ddim 50 |", "30.1")
    cite(PAGE, mnist, "| heun 10 |", "29.5")
    cite(PAGE, "results_diffusion.md", "For scale: the default MNIST model", "0.204")
    decoder = "results_diffusion_decoder.md"
    cite(PAGE, decoder, "| ddpm-mnist-cond | fixed N(x̂_0, β_1), x̂_0 clipped | labels", "1.73", "0.02", "0.77")
    cite(PAGE, decoder, "| ddpm-mnist-cond-decoder | learned | labels", "1.30", "0.02", "0.34")
    cite(PAGE, decoder, "(2,234 CPU-s)", "2,234")
    cite(PAGE, decoder, "(611 CPU-s)", "611")
    assert "0.25 short" in page(PAGE) and f"{1.2970 - 1.05:.2f}" == "0.25"
    cite(PAGE, decoder, "| ddpm-mnist-cond-r2-decoder | learned | labels", "1.26", "0.02")
    cite(PAGE, decoder, "(2,066 CPU-s)", "2,066")
    cite(PAGE, decoder, "(543 CPU-s)", "543")
    assert 2234 + 2066 + 543 == 4843 and "4,843 CPU-s in all" in page(PAGE)
    assert "0.21 short" in page(PAGE) and f"{1.2565 - 1.05:.2f}" == "0.21"
    cite(PAGE, decoder, "| ddpm-mnist-cond-r2-head10 | t = 1 … 10 | labels", "1.197", "0.010")
    cite(PAGE, decoder, "| ddpm-mnist-uncond-head10 | t = 1 … 10 |", "1.229", "0.010")
    cite(PAGE, decoder, "(2,012 CPU-s)", "2,012")
    cite(PAGE, decoder, "(662 CPU-s)", "662")
    samplers = "results_diffusion_samplers_r2.md"
    cite(PAGE, samplers, "| dpm++2m 20 |", "16.3", "2.8")
    cite(PAGE, samplers, "| dpm++2m 50 |", "16.2", "2.8")
    cite(PAGE, samplers, "| ddpm 1000 |", "10.6", "2.6", "2,146")
    cite(PAGE, samplers, "DPM-Solver++(2M) at 20 steps: FD 16.3", "1.55")
    cite(PAGE, samplers, "SDE-DPM-Solver++(2M) at 20 steps: FD 10.3", "10.3", "0.97", "1.5")
    cite(PAGE, samplers, "| ddpm 20 | 20 | 0 |", "13.9", "2.2")
    cite(PAGE, decoder, "(585 CPU-s)", "585")
    cite(PAGE, decoder, "In all: 4,885 CPU-s", "4,885", "0.15")
    cite(PAGE, decoder, "The head lowers L_1 … L_9", "0.081", "0.135")
    cite(PAGE, decoder, "The bound fell 0.060", "0.925", "0.924")
    assert 4 * (60000 // 128) == 1872 and "4 epochs (1,872 steps)" in page(PAGE)
    assert round(500 * 1000 * 0.204e9 / 1e12, -2) == 100 and "about 100 TFLOP" in page(PAGE)


def test_the_fashion_diffusion_model():
    fashion = "results_diffusion_fashion.md"
    cite(PAGE, fashion, "| dpm++2m 20 |", "59.8", scale=0.01)
    cite(PAGE, fashion, "| dpm++2m 20, w=2 |", "84.2", scale=0.01)
    cite(PAGE, fashion, "| dpm++2m 20, w=3 |", "93.6", scale=0.01)
    assert f"{100 * (0.936 * 0.064 / 500) ** 0.5:.1f}" == "1.1"
    cite(PAGE, fashion, "| dpm++2m 20 |", "88", "7.6")
    cite(PAGE, fashion, "| dpm++2m 20, w=2 |", "38")
    cite(PAGE, fashion, "| dpm++2m 20, w=3 |", "33")
    cite(PAGE, fashion, "| VLB |", "4.18", "0.28", "500")
    cite(PAGE, fashion, "| PF-ODE |", "3.71", "0.24", "16")


FASHION4 = {"head": "| 4 epochs: VLB, learned head t = 1 … 10, labels", "null": "| 4 epochs: VLB, head, null class",
            "fixed": "| 4 epochs: VLB, fixed decoder",
            "ode": "| 4 epochs: PF-ODE, labels", "w1": "| 4 epochs: dpm++2m 20 |", "w2": "| 4 epochs: dpm++2m 20, w=2 |",
            "w3": "| 4 epochs: dpm++2m 20, w=3 |", "sde": "| 4 epochs: dpm++2m-sde 20 |",
            "sde2": "| 4 epochs: dpm++2m-sde 20, w=2 |"}


def _fashion4(key, *numbers):
    """A row of the "Four epochs" section of results_diffusion_fashion.md (its labels open with "4 epochs:")."""
    cite(PAGE, "results_diffusion_fashion.md", FASHION4[key], *numbers)


def test_the_fashion_diffusion_model_after_four_epochs():
    _fashion4("head", "3.147", "0.029")
    _fashion4("null", "3.170", "0.029")
    _fashion4("fixed", "3.619", "0.029")
    _fashion4("ode", "3.42", "0.18")
    for key, acc in (("w1", "79.2"), ("w2", "95.4"), ("w3", "99.0"), ("sde", "86.0"), ("sde2", "97.0")):
        _fashion4(key, acc)                      # the section prints percentages
    _fashion4("w2", "1.0")
    for key, fd, se in (("w1", "31.4", "2.5"), ("w2", "12.4", "1.1"), ("w3", "20.6", "1.8"), ("sde", "10.6", "1.3"),
                        ("sde2", "14.6", "1.6")):
        _fashion4(key, fd, se, "7.63")
    cite(PAGE, "results_diffusion_fashion.md", "(1,915 CPU-s)", "1,915", "621")
    cite(PAGE, "results_diffusion_fashion.md", "**Bits/dim: 3.147 ± 0.029 by the VLB**", "0.32", "3.468", "4.18")
    assert 1915 + 621 == 2536
    assert 60000 // 128 == 468 and "1 epoch** (468 steps" in page(PAGE)


def test_diffusion_speed_against_diffusers():
    speed = "results_diffusion.md"
    cite(PAGE, speed, "| s per training step (ε-MSE, Adam) |", "0.418", "0.52", "0.49", "0.54", "0.796", "0.63")
    cite(PAGE, speed, "| s to sample 64 images", "1.93", "0.44", "0.38", "0.54", "4.45", "0.55", "64", "20")
    cite(PAGE, speed, "| GFLOP per image (`FlopCounterMode`) |", "0.093", "0.038", "0.048")
    cite(PAGE, speed, "(git 326a90e + the uncommitted diffusion files", "9.1", "9.6")
    assert "the median over 12 repeats [range]" in (BENCHMARKS / speed).read_text(encoding="utf-8")
    assert "median of 12 repeats [their range]" in page(PAGE)
    flops = 0.0378 / 0.0930   # time per FLOP against diffusers': ≈ 1.3× in training, 1.1× in sampling
    assert (f"{0.418 / 0.796 / flops:.1f}", f"{1.927 / 4.450 / flops:.1f}") == ("1.3", "1.1")
    assert "(≈ 1.3× diffusers' time per FLOP in training, 1.1× in sampling)" in page(PAGE)


def test_every_cell_of_the_inverse_ising_time_table_is_in_the_results_file():
    assert check_cells(PAGE, "**Time of every solver**") >= 30


def test_every_cell_of_the_inverse_ising_accuracy_table():
    models = {"SK16 β=0.5": "SK N=16 β=0.5", "SK16 β=1": "SK N=16 β=1.0", "SK16 β=1.5": "SK N=16 β=1.5",
              "SK64 β=1": "SK N=64 β=1", "EA 8×8 β=0.5": "EA 8×8 ±J β=0.5", "SK128 β=1": "SK N=128 β=1"}
    solvers = dict(SOLVERS, **{"exact ML (ceiling)": "exact ML (L-BFGS)"})
    cells = 0
    for row in table("Relative coupling error ‖J − J*‖/‖J*‖:", PAGE):
        model, size = models[row.pop("model")], SIZES[row.pop("M")]
        for column, cell in row.items():
            if cell != "—":
                cite(PAGE, "results_inverse.md", f"| {model} | {size} | {solvers[column]} |", cell)
                cells += 1
    assert cells == 39


def test_the_inverse_ising_speed_table_and_coniiis_mean_field():
    inverse = "results_inverse.md"
    cite(PAGE, inverse, "| SK N=64 β=1 | 1e5 | PLM sym |", "3.07", "50")
    text = (BENCHMARKS / inverse).read_text(encoding="utf-8")
    gaps = [float(g) for g in re.findall(r"max \|J − ours nMF\| = ([\d.e-]+)", text)]
    assert max(gaps) == 7.1e-14 and "equals our nMF to ≤ 7.1e−14" in page(PAGE)
    assert "| 0.3–130 ms per solve |" in page(PAGE) and "0.25 ms to 0.13 s" in page(PAGE)  # checked below


def test_the_inverse_ising_race_against_coniii():
    inverse = "results_inverse.md"
    cite(PAGE, inverse, "| SK N=64 β=1 | 1e5 | PLM sym |", "3.1", "51")
    cite(PAGE, inverse, "| SK N=64 β=1 | 1e5 | PLM asym |", "41")
    cite(PAGE, inverse, "| SK N=64 β=1 | 1e5 | ConIII Pseudo |", "155")
    cite(PAGE, inverse, "| EA 8×8 ±J β=0.5 | 3e4 | PLM sym |", "42")
    cite(PAGE, inverse, "| SK N=16 β=1.0 | 1e3 | MPF |", "0.2642", "9.6")
    cite(PAGE, inverse, "| SK N=16 β=1.0 | 1e3 | ConIII MPF |", "0.2647", "32")
    assert round(32.1 / 9.6e-3, -2) == 3300  # "about 3,300× faster"
    cite(PAGE, inverse, "| SK N=16 β=1.0 | 1e4 | ConIII MCH |", "0.46", "19")
    cite(PAGE, inverse, "| SK N=16 β=1.0 | 1e4 | PLM sym |", "0.083", "33")
    text = (BENCHMARKS / inverse).read_text(encoding="utf-8")
    seconds = [float(v) * (1e-3 if unit == "ms" else 1.0) for ln in text.splitlines()
               if re.match(r"\| [^|]+ \| [^|]+ \| (nMF|TAP|SM) \|", ln)
               for v, unit in [re.findall(r"\| ([\d.e+]+) (ms|s) \|", ln)[0]]]
    assert (f"{min(seconds) * 1e3:.2f}", f"{max(seconds):.2f}") == ("0.25", "0.13")
    assert "0.25 ms to 0.13 s" in page(PAGE)
    iterations = [int(n) for ln in text.splitlines()
                  if re.match(r"\| [^|]+ \| [^|]+ \| (PLM sym|PLM asym|MPF) \|", ln)
                  for n in re.findall(r"(\d+) iterations", ln)]
    assert (min(iterations), max(iterations)) == (11, 194) and "11–194 iterations" in page(PAGE)


def test_the_prompt_models_drawing_times_and_the_run_they_come_from():
    cite(PAGE, "results_prompt.md", "2026-12-06T08:24:07", "2", "0.4", "1.5")   # threads, load at start and end
    cite(PAGE, "results_prompt.md", "| speed |", "0.97", "6.6", "5", "3")


def test_the_comparisons_over_seeds_cost():
    cite(PAGE, SEEDS, "26.7 CPU-minutes in all", "26.7")


def test_the_prompt_models_goals():
    prompt = "results_prompt.md"
    cite(PAGE, prompt, "| mnist | 99.8 ± 0.1 % | 1000 |", "99.8", "0.1")
    cite(PAGE, prompt, "| fashion-mnist | 96.4 ± 0.6 % | 1000 |", "96.4", "0.6")
    cite(PAGE, prompt, "| mnist | 99.9 ± 0.1 % | 1200 |", "99.9", "0.1")
    cite(PAGE, prompt, "| fashion-mnist | 92.4 ± 0.8 % | 1200 |", "92.4", "0.8")
    cite(PAGE, prompt, "| mnist | 97.0 ± 1.2 % |", "97.0", "1.2")
    cite(PAGE, prompt, "## Zero-shot classification by the diffusion ELBO", "200", "32", "90", "10")
    cite(PAGE, prompt, "| mnist | 500 | 45.5 ± 4.7 |", "500", "45.5", "4.7", "11.5")
    cite(PAGE, prompt, "| fashion-mnist | 500 | 32.6 ± 2.9 |", "32.6", "2.9", "7.6")
    cite(PAGE, "results_diffusion_mnist.md", "| dpm++2m 20, w=3 |", "63", "10")
    cite(PAGE, "results_diffusion_fashion.md", "| dpm++2m 20, w=3 |", "33.1", "3.2")


CALIBRATION = "results_calibration.md"


def _calibration_row(*parts: str) -> str:
    """The one table row of results_calibration.md that contains every one of ``parts``."""
    text = (BENCHMARKS / CALIBRATION).read_text(encoding="utf-8")
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and all(p in ln for p in parts)]
    assert len(rows) == 1, f"{len(rows)} rows of {CALIBRATION} contain {parts}"
    return rows[0]


def _cite_row(parts: tuple[str, ...], *numbers: str) -> None:
    cite(PAGE, CALIBRATION, _calibration_row(*parts), *numbers)


def test_the_calibration_commands_and_criterion():
    cite(PAGE, CALIBRATION, "**calibrated** iff", "50", "0.75", "1.33", "2", "90", "1", "40")
    cite(PAGE, CALIBRATION, "--ais-groups 100` (forward only", "784", "17", "0.2", "3", "7", "100")
    cite(PAGE, CALIBRATION, "--only pt` (107 CPU-s", "107")
    cite(PAGE, CALIBRATION, "--only deep` (about 7", "7", "2.3")
    cite(PAGE, CALIBRATION, "--only fd` (376 CPU-s", "376")


def test_every_mcmc_and_ladder_cell_of_the_calibration_table():
    for beta, sweeps, cpu, cells in (("1.0", "2000", "2", {"⟨E/N⟩, MCSE": ("1.01", "93"), "⟨m⟩, MCSE": ("1.07", "97"),
                                                            "⟨E/N⟩, blocking": ("1.00", "93"),
                                                            "⟨m⟩, blocking": ("1.06", "97")}),
                                     ("1.5", "4000", "3", {"⟨E/N⟩, MCSE": ("1.13", "93"), "⟨m⟩, MCSE": ("1.14", "92"),
                                                            "⟨E/N⟩, blocking": ("1.15", "92"),
                                                            "⟨m⟩, blocking": ("1.14", "92")})):
        for estimator, numbers in cells.items():
            _cite_row((f"MCMC mean {estimator}", f"β = {beta},"), "100", *numbers, cpu, "12", beta.removesuffix(".0"), "4",
                      sweeps)
    cite(PAGE, CALIBRATION, "`diagnostics.blocking` was **too narrow**", "1.29", "1.46", "82", "88")
    for method, low, high in (("BAR |", ("1.11", "95", "11"), ("0.95", "97", "19")),
                              ("TI (Euler–Maclaurin trapezoid) |", ("1.09", "96", "11"), ("0.91", "97", "19"))):
        _cite_row((f"along the ladder, {method}", "from 0 to 2.0"), "100", *low, "12", "10", "0", "2", "4")
        _cite_row((f"along the ladder, {method}", "from 0 to 3.0"), *high, "3")


def test_every_replica_exchange_cell_of_the_calibration_table():
    printed, before = "what it prints", "what it printed before"
    defaults = "`kakusan ising sample --method pt --seed S` defaults"
    _cite_row(("`ising sample --method pt`: ⟨E⟩", printed, defaults), "100", "0.82", "98", "7", "12", "2", "16", "1",
              "63")
    _cite_row(("`ising sample --method pt`: ⟨m⟩", printed, defaults), "0.95", "95", "7")
    _cite_row(("`ising sample --method pt`: ⟨E⟩", before, defaults), "0.87")
    _cite_row(("`ising sample --method pt`: ⟨m⟩", before, defaults), "0.99")
    _cite_row(("`ising sample --method gibbs`: ⟨m⟩", printed), "1.15", "90")
    _cite_row(("`ising sample --method gibbs`: ⟨m⟩", before), "1.18", "89")
    _cite_row(("`ising sample --method pt`: ⟨m⟩", printed, "`--adapt 8`"), "1.02", "96", "8")
    _cite_row(("`ising sample --method pt`: ⟨m⟩", printed, "N = 20, β = 2", "the defaults"), "1.08", "92", "20")
    _cite_row(("`ising sample --method pt`: ⟨m⟩", printed, "N = 20, β = 3", "the defaults"), "1.24", "92", "3")
    _cite_row(("`ising sample --method pt`: ⟨m⟩", before, "N = 20, β = 3", "the defaults"), "1.32", "87")
    _cite_row(("coldest β = 2.5 |",), "100", "1.00", "98", "10", "12", "8", "2.5")
    _cite_row(("all 8 β pooled",), "800", "1.02", "96", "10")


def test_every_ais_cell_of_the_calibration_table():
    _cite_row(("AIS forward, 100 runs, 14,500 β", "MNIST 784-18"),
              "60", "0.85", "98", "1167", "100", "14,500", "0.2", "3", "213.2024")
    cite(PAGE, CALIBRATION, "**Both directions are calibrated at the defaults", "7")   # seed 7
    _cite_row(("AIS reverse, 100 runs, 14,500 β", "784-18"), "60", "1.08", "92", "1156")
    _cite_row(("AIS forward, 100 runs, 14,500 β", "MNIST 784-16 CD-1 lr 0.25"), "50", "0.97", "96", "1139", "0.25",
              "204.2428")
    _cite_row(("AIS reverse, 100 runs, 14,500 β", "MNIST 784-16 CD-1 lr 0.25"), "50", "1.13", "92", "860")
    _cite_row(("groups of one 6,000-run batch",), "60", "1.06", "98", "120", "1,450")
    _cite_row(("60 separate calls",), "60", "1.02", "93", "185")
    _cite_row(("AIS forward, 100 runs, 14,500 β", "MNIST 784-17 PCD-1 lr 0.2"), "100", "1.06", "91", "1859", "0.2", "3",
              "7", "243.9981")
    _cite_row(("AIS reverse, 100 runs, 14,500 β", "MNIST 784-17 PCD-1 lr 0.2"), "100", "1.17", "91", "2096")
    _cite_row(("AIS forward, 100 runs, 14,500 β", "MNIST 784-24"), "50", "1.18", "90", "993", "235.8033", "24", "0.2",
              "3", "7")
    _cite_row(("AIS reverse, 100 runs, 14,500 β", "MNIST 784-24", "test rows"), "3.18", "0", "1014", "1,000")
    _cite_row(("AIS reverse, 100 runs, 14,500 β", "MNIST 784-24", "exact starts"), "1.91", "60", "1061", "0.17")
    _cite_row(("AIS reverse, 100 runs, 14,500 β", "MNIST 784-24", "last states"), "1.54", "68", "2073", "1,000", "0.12")
    cite(PAGE, CALIBRATION, "**Reverse AIS from Gibbs starts is badly off", "7.41")
    cite(PAGE, CALIBRATION, "**Reverse AIS on the 784-16 and 784-17 RBMs**", "48", "100", "3")
    _cite_row(("its first 50 groups alone",), "1.12", "88")


def test_every_deep_model_cell_of_the_calibration_table():
    ppca, binary, poor = "| pPCA D = 16, L = 4", "| binary VAE D = 10, L = 8 (256 states)", "N(0, 2²) (a poor q)"
    # about E[NLL_k]: the page's ranges 0.97–1.15, 93–97 % and 0.1–26 CPU-s span exactly these rows
    about = [[c.strip() for c in ln.split("|")] for ln in (BENCHMARKS / CALIBRATION).read_text(encoding="utf-8")
             .splitlines() if ln.startswith("| IWAE NLL") and "about E[NLL_k]" in ln]
    sd, coverage, cpu = ([float(r[i].rstrip(" %")) for r in about] for i in (5, 6, 11))
    assert len(about) == 9 and (min(sd), max(sd), min(coverage), max(coverage), min(cpu), max(cpu)) == (
        0.97, 1.15, 93, 97, 0.1, 26.4)
    _cite_row((poor, "about E[NLL_k]"), "0.97", "97")
    _cite_row(("k = 5, s.e.", binary, "about E[NLL_k]"), "1.15", "93")
    _cite_row(("k = 5, s.e.", ppca, "about E[NLL_k]"), "0.1", "16", "4")
    _cite_row(("k = 5000, s.e.", ppca, "about E[NLL_k]"), "93", "26", "5000")
    _cite_row(("k = 5, s.e.", binary, "about E[NLL_k]"), "10", "8", "5")
    for k, numbers in (("5", ("1.05", "83", "0.1")), ("50", ("1.04", "93", "0.2")), ("5000", ("1.06", "94", "26"))):
        _cite_row((f"k = {k}, s.e. across 100 test points", ppca, "fresh test sets"), "100", *numbers)
    _cite_row(("k = 50, s.e. across 1000 test points",), "1000", "1.02", "87", "2")
    _cite_row(("k = 500, s.e. across 1000 test points",), "1.03", "94", "32")
    for k, numbers in (("5", ("1.13", "4", "0.2")), ("50", ("1.01", "77", "0.4")), ("500", ("1.09", "94", "2")),
                       ("5000", ("1.11", "95", "21"))):
        _cite_row((f"k = {k}, s.e.", binary, "fresh test sets"), *numbers)
    _cite_row((poor, "fresh test sets"), "0.93", "83", "19", "5000", "0", "2", "0.145")
    _cite_row(("| VLB, stratified t", "100 strata", "Gaussian data N(0.3, 0.4² I), D = 16"), "100", "1.05", "95",
              "38", "16", "2", "1000")
    _cite_row(("| VLB, stratified t", "100 strata", "3-component Gaussian mixture"), "0.96", "95", "42", "3")
    _cite_row(("| VLB, stratified t", "50 strata", "Gaussian data", "fresh test sets"), "0.98", "93", "31", "0.97",
              "50", "11", "9")
    _cite_row(("| VLB, stratified t", "50 strata", "3-component Gaussian mixture"), "1.00", "94", "33")
    _cite_row(("| PF-ODE NLL", "Rademacher", "fresh test sets"), "1.10", "96", "28.5", "3", "16")


def test_the_calibration_prose():
    cite(PAGE, CALIBRATION, "Pooled over the 6,000 runs", "6,000", "0.06", "3")       # k̂ ≤ 0.06; misses beyond 3 s.e.
    cite(PAGE, CALIBRATION, "**Separate calls vs one split batch.**", "60", "100", "1,450")
    cite(PAGE, CALIBRATION, "**The 784-17 PCD RBM**", "100", "5,000")
    cite(PAGE, CALIBRATION, "AIS at non-default runs/βs", "1,450")
    cite(PAGE, CALIBRATION, "pPCA, mean-field encoder (weights of infinite", "50", "100", "0.077", "0.29", "500", "1000")
    cite(PAGE, CALIBRATION, "Binary VAE with a poor q", "5000", "0.162")
    cite(PAGE, CALIBRATION, "the ± was huge", "−51", "16", "10", "15")                # L_0, D, its weight, the bound
    cite(PAGE, CALIBRATION, "**Diffusion VLB, stratified t", "6.1", "2.6", "100", "16", "37", "1", "3.6", "1.05",
         "0.97")
    cite(PAGE, CALIBRATION, "a one-sided heavy tail at small n", "5.6")
    cite(PAGE, CALIBRATION, "The bias has the promised sign in every row", "500", "14", "0.07")
    cite(PAGE, CALIBRATION, "**PF-ODE likelihood, Hutchinson divergence", "0.63")
    fewer = "* **Forward AIS stays calibrated with fewer runs**"
    cite(PAGE, CALIBRATION, fewer, "1.04", "1.15", "90", "94", "0.91", "1.08", "91", "97", "20", "50")
    cite(PAGE, CALIBRATION, "* **Reverse AIS does not**", "1.74", "84", "88")
    cite(PAGE, CALIBRATION, "* **The interval stays calibrated with fewer runs", "95", "97", "93", "100", "250", "20",
         "50")
    cite(PAGE, CALIBRATION, "* **At 1,450 β the delta-method ± is too narrow", "1.19", "1.81", "80", "90", "1.01",
         "3.36", "22", "93")
    cite(PAGE, CALIBRATION, "* **The interval with exact starts still holds**", "97", "98", "60", "0", "7.13")
    cite(PAGE, CALIBRATION, "A tenth of the default schedule", "1,206", "6,000", "60")


def _calibration_cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_every_number_cell_of_the_calibration_table_is_its_rows_cell():
    """seeds, sd(z), coverage and CPU-s of each page row, value by value ("a / b"), against the file's rows' cells."""
    ppca, binary = "| pPCA D = 16, L = 4", "| binary VAE D = 10, L = 8 (256 states)"
    fresh = lambda *parts: (*parts, "fresh test sets")  # noqa: E731
    sources = [[(f"MCMC mean {q}, {how}", f"β = {beta},") for q in ("⟨E/N⟩", "⟨m⟩")]
               for how in ("MCSE", "blocking") for beta in ("1.0", "1.5")]
    sources += [[(f"along the ladder, {method} |", f"from 0 to {top}") for top in ("2.0", "3.0")]
                for method in ("BAR", "TI (Euler–Maclaurin trapezoid)")]
    pt, printed_mcse = "`ising sample --method pt`:", "what it prints"
    sources += [[(f"{pt} ⟨E⟩", printed_mcse, "defaults: 16"), (f"{pt} ⟨m⟩", printed_mcse, "defaults: 16")],
                [(f"{pt} ⟨m⟩", printed_mcse, "`--adapt 8`"), (f"{pt} ⟨m⟩", printed_mcse, "N = 20, β = 2", "the defaults"),
                 (f"{pt} ⟨m⟩", printed_mcse, "N = 20, β = 3", "the defaults")],
                [("coldest β = 2.5 |",), ("all 8 β pooled",)],
                [("AIS forward, 100 runs, 14,500 β", "MNIST 784-18")], [("AIS reverse, 100 runs, 14,500 β", "MNIST 784-18")],
                [("AIS forward, 100 runs, 14,500 β", "MNIST 784-16 CD-1 lr 0.25")],
                [("AIS reverse, 100 runs, 14,500 β", "MNIST 784-16 CD-1 lr 0.25")],
                [("groups of one 6,000-run batch",), ("60 separate calls",)],
                [("AIS forward, 100 runs, 14,500 β", "MNIST 784-17 PCD-1 lr 0.2")],
                [("AIS reverse, 100 runs, 14,500 β", "MNIST 784-17 PCD-1 lr 0.2")],
                [("AIS forward, 100 runs, 14,500 β", "MNIST 784-24")],
                [("AIS reverse, 100 runs, 14,500 β", "MNIST 784-24", "exact starts")],
                [("AIS reverse, 100 runs, 14,500 β", "MNIST 784-24", "test rows")],
                [("AIS reverse, 100 runs, 14,500 β", "MNIST 784-24", "last states")],
                None,   # about E[NLL_k]: ranges, checked in test_every_deep_model_cell_of_the_calibration_table
                [fresh(f"k = {k}, s.e. across 100 test points", ppca) for k in (5, 50, 5000)],
                [(f"k = {k}, s.e. across 1000 test points",) for k in (50, 500)],
                [fresh(f"k = {k}, s.e.", binary) for k in (5, 50, 500, 5000)],
                [fresh("N(0, 2²) (a poor q)")],
                [fresh("| VLB, stratified t", "100 strata", "Gaussian data"),
                 fresh("| VLB, stratified t", "100 strata", "3-component")],
                [fresh("| VLB, stratified t", "50 strata", "Gaussian data"),
                 fresh("| VLB, stratified t", "50 strata", "3-component")],
                [fresh("| PF-ODE NLL", "Rademacher")],
                [("FD ± s.e.", printed_mcse, "| MNIST metric-net features (128), 500 samples", noise)
                 for noise in ("500 training images", "0.1²", "0.25²")],
                [("class accuracy ± s.e.", printed_mcse, f"n = {n} samples, true accuracy {p} ")
                 for n, p in ((500, 0.9), (500, 0.98), (500, 0.995), (500, 0.999), (1000, 0.998))]]
    rows = table("quotes one such share.", PAGE)
    assert len(rows) == len(sources) == 30
    columns = {"seeds": 2, "sd(z)": 4, "±2 s.e. coverage": 5, "CPU-s": 10}   # their places in the file's rows
    cells = 0
    for row, parts in zip(rows, sources):
        if parts is None:
            assert (row["sd(z)"], row["±2 s.e. coverage"], row["CPU-s"]) == ("0.97–1.15", "93–97 %", "0.1–26")
            continue
        found = [_calibration_cells(_calibration_row(*p)) for p in parts]
        for column, index in columns.items():
            shown = row[column].removesuffix(" %").split(" / ")
            shown = shown * len(found) if len(shown) == 1 else shown
            assert len(shown) == len(found), (column, row)
            for value, cells_of in zip(shown, found):
                source = cells_of[index].removesuffix(" %")
                assert printed(float(source), len(value.partition(".")[2])) == value, (column, value, source, row)
                cells += 1
    assert cells == 216   # 54 of the file's rows × 4 columns


def test_the_fd_cells_of_the_calibration_table():
    """About E[FD̂] and the row bootstrap's sd(z) beside the Gaussian resamples' (their sd, coverage and CPU-s are
    checked with every other row's)."""
    mnist = "| MNIST metric-net features (128), 500 samples"
    for noise, truth, before in (("500 training images", "12.37", "0.52"), ("0.1²", "33.68", "0.76"),
                                 ("0.25²", "166.55", "0.85")):
        _cite_row(("FD ± s.e.", "what it prints", mnist, noise), truth, "500", "10,000", "100")
        _cite_row(("FD ± s.e.", "what it printed before", mnist, noise), before)
    _cite_row(("FD ± s.e.", "what it prints", mnist, "0.1²"), "0.1")
    _cite_row(("FD ± s.e.", "what it prints", mnist, "0.25²"), "0.25")


def test_the_fd_rows_at_100_and_2000_samples():
    printed = "what it prints"
    for n, cells in (("100", (("100 training images", "0.74", "99"), ("0.1²", "1.03"), ("0.25²", "1.08"))),
                     ("2000", (("2000 training images", "0.95"), ("0.1²", "1.01"), ("0.25²", "0.94")))):
        for noise, *numbers in cells:
            _cite_row(("FD ± s.e.", printed, f"| MNIST metric-net features (128), {n} samples", noise), *numbers)
    cite(PAGE, CALIBRATION, "--only fd --fd-samples 100 2000`", "939")


def test_the_pt_rows_with_thinning():
    printed, thin = "the larger of τ_int and chain-mean spread (what it prints)", "`--thin 5` (63 kept sweeps of 315)"
    _cite_row(("`ising sample --method pt`: ⟨E⟩", printed, thin), "1.00", "93", "20", "3", "63", "315")
    _cite_row(("`ising sample --method pt`: ⟨m⟩", printed, thin), "0.97", "95")


def test_the_pf_ode_rows_with_gaussian_probes():
    gaussian = "one Gaussian probe per example"
    _cite_row(("PF-ODE NLL", gaussian, "fresh test sets"), "1.12", "90", "6.19")
    _cite_row(("PF-ODE NLL", "one Rademacher probe per example", "fresh test sets"), "0.383")
    cite(PAGE, CALIBRATION, "--only ode --ode-probe gaussian", "86")
    cite(PAGE, CALIBRATION, "**16 times wider**", "6.19", "0.383")


def test_the_fd_rows_in_fashion_mnists_features():
    """The sentence under the calibration table: the same three rows in Fashion-MNIST's metric-net features."""
    fashion = "| Fashion-MNIST metric-net"
    for noise, truth, sd, coverage in (("500 training images", "6.42", "0.97", "96"), ("0.1²", "52.16", "0.96", "97"),
                                       ("0.25²", "265.59", "1.02", "95")):
        _cite_row(("FD ± s.e.", "what it prints", fashion, noise), truth, sd, coverage, "100")
    _cite_row(("FD ± s.e.", "what it printed before", fashion, "500 training images"), "0.59", "100")
    cite(PAGE, CALIBRATION, "--fd-data fashion-mnist` (196 CPU-s", "196")


def test_the_wald_cells_of_the_class_accuracy_row():
    """The Wald error's coverage in the verdict of the class-accuracy row (the Agresti–Coull cells are checked
    with every other row's)."""
    for n, p, coverage in ((500, 0.995, "92"), (500, 0.999, "39"), (1000, 0.998, "85")):
        _cite_row(("class accuracy ± s.e.", "what it printed before", f"n = {n} samples, true accuracy {p} "),
                  coverage)


def test_the_forward_reverse_interval_sentence():
    cite(PAGE, CALIBRATION, "**The interval is calibrated on all four RBMs", "92", "100", "98")
    assert "held the exact log Z in 92–100 % of 50 pairs" in page(PAGE)

"""The numbers docs/diffusion.md quotes outside its exercises: recomputed, or cited from a results file (see page_numbers).

The schedules' end points and the VLB gaps of §2 take a few CPU-seconds, so they are recomputed; the MNIST model of
§8 (an hour of training, minutes of evaluation) is cited from ``benchmarks/results_diffusion_mnist.md``.
"""

import math

import torch

from kakusan.diffusion import MixtureTruth, Schedule
from kakusan.diffusion.vlb import EpsModel, vlb_exact
from page_numbers import BENCHMARKS, check, cite, page

PAGE = "diffusion"
MNIST = "results_diffusion_mnist.md"


def test_where_the_schedules_end():
    for kind in ("linear", "cosine"):
        s = Schedule(kind, 1000)
        log_snr = float(s.log_snr(torch.tensor([1000.0])))
        alpha_bar = float(s.alpha_bar[-1])
        assert math.isclose(log_snr, math.log(alpha_bar / (1 - alpha_bar)), rel_tol=1e-6)
        check(PAGE, f"λ_T ({kind})", log_snr)
        check(PAGE, f"log σ̃_T ({kind})", -log_snr / 2)   # σ̃ = σ/α = exp(−λ/2)
    check(PAGE, "σ̃_T (linear)", math.exp(-float(Schedule("linear", 1000).log_snr(torch.tensor([1000.0]))) / 2))


def test_the_vlb_gap_with_each_reverse_variance():
    # The block of §2: the exact ε* of a 2-D mixture, all 1000 terms, 400 points.
    s = Schedule("linear", 1000)
    truth = MixtureTruth.example(2, schedule=s, seed=1)
    x0 = truth.sample(400, generator=0)
    for variance, name in (("beta", "β"), ("posterior", "β̃")):
        gap = vlb_exact(EpsModel(truth), x0, generator=1000, batch=400, variance=variance).values + truth.log_prob(x0)
        check(PAGE, f"VLB − NLL, {name}", float(gap.mean()))
        check(PAGE, f"s.e., {name}", float(gap.std()) / len(gap) ** 0.5)


def test_the_mnist_model_of_section_8():
    cite(PAGE, "results_diffusion.md", "For scale: the default MNIST model", "0.204")
    cite(PAGE, MNIST, "| appended: VLB |", "1.78", "0.03", "1,000")
    cite(PAGE, MNIST, "| PF-ODE |", "1.74", "0.06", "32")
    cite(PAGE, MNIST, "| dpm++2m 20 |", "29.3", "3.8", "11.5")
    cite(PAGE, MNIST, "| ddpm 100 |", "16.2", "3.5", "16")
    cite(PAGE, MNIST, "| ddim 50 |", "30")                                 # where the ODE solvers level off
    cite(PAGE, MNIST, "| dpm++2m 10 |", "4")                               # the bootstrap s.e. of about 4
    cite(PAGE, MNIST, "| dpm++2m 20 |", "87.8", scale=0.01)              # class accuracy at w = 1
    cite(PAGE, MNIST, "| dpm++2m 20, w=2 |", "98.6", scale=0.01)
    cite(PAGE, MNIST, "| dpm++2m 20, w=3 |", "63", "10")
    cite(PAGE, MNIST, "| dpm++2m 20, w=3 |", "100", scale=0.01)
    cite(PAGE, MNIST, "| appended: VLB, unconditional |", "1.79", "0.03", "1,000")
    cite(PAGE, MNIST, "| appended: ddpm 1000 |", "12.5", "3.5", "2,295")
    assert f"{29.3 / 12.5:.1f}" == "2.3" and "2.3 times its FD" in page(PAGE)
    cite(PAGE, MNIST, "| appended: PF-ODE, unconditional |", "1.75", "0.05", "32")
    cite(PAGE, MNIST, "| appended: dpm++2m 20, unconditional |", "92", "7")
    cite(PAGE, MNIST, "| appended: ddpm 100, unconditional |", "64", "5")
    assert "98.6 ± 0.5 %" in page(PAGE) and f"{100 * math.sqrt(0.986 * 0.014 / 500):.1f}" == "0.5"  # binomial s.e.



def test_the_calibration_of_the_fd_error():
    """The FD ± paragraph of §6: the Gaussian-resample s.e. calibrated from the floor to FD ≈ 167, the row bootstrap
    too wide at the floor (benchmarks/results_calibration.md, `bench_calibration.py --only fd`)."""
    calibration = "results_calibration.md"
    row = "reference fixed (what it prints) | MNIST metric-net features (128), 500 samples against the 10,000 test images; "
    cite(PAGE, calibration, row + "500 training images", "0.79")
    cite(PAGE, calibration, row + "training images + N(0, 0.1²)", "0.98")
    cite(PAGE, calibration, row + "training images + N(0, 0.25²)", "167")
    cite(PAGE, calibration, "**The row bootstrap was too wide near the floor**", "0.52")


def test_the_class_accuracy_error_is_agresti_coull_now():
    """§6's class-accuracy caption: the run printed the Wald error; `class_accuracy` now prints Agresti–Coull's,
    never 0 (benchmarks/results_calibration.md, `bench_calibration.py --only accuracy`)."""
    from kakusan.evaluate.sample_quality import binomial_stderr

    cite(PAGE, "results_calibration.md", "**Fixed**: `class_accuracy` now prints the Agresti–Coull error", "500",
         "100", "0.28")
    assert f"{100 * binomial_stderr(500, 500):.2f}" == "0.28" and "100 % ± 0.28 %" in page(PAGE)


def test_the_fixed_decoders_floor_on_mnist():
    """§2's block: the least L_0 of the fixed decoder on the MNIST test images and the pixels' entropy bound."""
    from kakusan.data import load
    from kakusan.diffusion.decoder import fixed_decoder_floor, pixel_posterior_entropy

    mnist = load("mnist")
    s, bits = Schedule("cosine", 1000), 784 * math.log(2)
    floor = float(fixed_decoder_floor(mnist.x_test.double() * 2 - 1, s).mean()) / bits
    h_left = pixel_posterior_entropy(mnist.x_train.double() * 2 - 1, s) / bits
    check(PAGE, "MNIST zeros", float((mnist.x_test == 0).double().mean()))
    check(PAGE, "L_0 floor", floor)
    check(PAGE, "H(x_0|x_1) bound", h_left)
    check(PAGE, "fixed-decoder excess", floor - h_left)
    text = page(PAGE)
    assert f"entropy below {1.05 - (floor - h_left):.2f}" in text and f"at least {floor - h_left:.2f} bits/dim" in text
    root_beta = math.sqrt(float(s.betas[0]))
    assert f"{root_beta:.4f}" == "0.0064" and f"{root_beta * 255 / 2:.2f}" == "0.82"


def test_the_learned_decoder_on_mnist():
    """§2's figure caption and §8's paragraph: the retrained run and the decoder fitted to it."""
    results = "results_diffusion_decoder.md"
    cite(PAGE, results, "| ddpm-mnist-cond | fixed N(x̂_0, β_1), x̂_0 clipped | labels", "1.73", "0.02", "0.77")
    cite(PAGE, results, "| ddpm-mnist-cond-decoder | learned | labels", "1.30", "0.02", "0.34")
    cite(PAGE, results, "| ddpm-mnist-cond-decoder | learned | none", "1.31", "0.02")
    cite(PAGE, results, "(2,234 CPU-s)", "2,234")
    cite(PAGE, results, "(611 CPU-s)", "611")
    cite(PAGE, results, "figure of docs/diffusion.md §2 shows the head's terms", "0.741", "0.326", "1.154", "0.659",
         "1.66", "1.17")
    cite(PAGE, results, "The rest of the bound is the denoiser's", "0.96")
    cite(PAGE, results, "| ddpm-mnist-cond-r2-decoder | learned | labels", "1.26", "0.02")
    cite(PAGE, results, "(2,066 CPU-s)", "2,066")
    cite(PAGE, results, "The second cycle lowered the KL terms", "0.04")
    text = page(PAGE)
    assert f"{1.2970 - 1.05:.2f} short of the 1.05 goal" in text and "4,843" in text and "0.21 short" in text
    # the head for the first ten steps (§2's last subsection and §8)
    cite(PAGE, results, "So the steps t = 2 … 10 hold", "0.41", "0.92", "0.135")
    cite(PAGE, results, "(585 CPU-s)", "585")
    cite(PAGE, results, "The head lowers L_1 … L_9", "0.081", "1.274", "1.197")
    cite(PAGE, results, "| ddpm-mnist-cond-r2-head10 | t = 1 … 10 | labels", "1.197", "0.010")
    cite(PAGE, results, "| ddpm-mnist-cond-r2-head10 | t = 1 … 10 | none", "1.206", "0.010")
    cite(PAGE, results, "In all: 4,885 CPU-s", "4,885", "0.15", "0.40")
    assert "at most 0.054 + 0.012 bits/dim" in (BENCHMARKS / results).read_text()  # the oracle's rest, t ≤ 10, 11…20
    assert f"{0.1348 - 0.081:.3f}" == "0.054" and f"{0.054 + 0.012:.2f}" == "0.07" and "at most 0.07 bits/dim" in text
    assert 4300 + 585 == 4885 and f"{1.1974 - 1.05:.2f}" == "0.15"
    assert abs((1.2737 - 1.1974) - ((0.3325 - 0.3369) + (0.4198 - 0.3392))) < 1e-3  # the paired rows
    cite(PAGE, results, "| ddpm-mnist-uncond-head10 | t = 1 … 10 |", "1.229", "0.010")
    cite(PAGE, results, "| ddpm-mnist-uncond | none", "1.741")
    cite(PAGE, results, "1.229 ± 0.010 bits/dim for the unconditional model after 2,674 CPU-s", "2,674")
    cite(PAGE, results, "| dpm++2m 20 | 41.9", "41.9", "4.2")
    cite(PAGE, results, "| ddpm 100 | 20.9", "20.9", "3.1")
    assert 2012 + 662 == 2674



def test_the_samplers_after_a_second_cycle():
    """§8: DPM-Solver++ at 20 and 50 steps against DDPM-1000 on the twice-trained model."""
    results = "results_diffusion_samplers_r2.md"
    cite(PAGE, results, "| dpm++2m 20 |", "16.3", "2.8")
    cite(PAGE, results, "| dpm++2m 50 |", "16.2", "2.8")
    cite(PAGE, results, "| ddpm 1000 |", "10.6", "2.6")
    cite(PAGE, results, "DPM-Solver++(2M) at 20 steps: FD 16.3", "1.55")
    assert f"{16.3268 / 10.5530:.2f}" == "1.55"
    # the same solver on the reverse SDE, three seeds at 20 steps; DDPM at 20 steps
    sde = [9.5367, 9.3302, 11.9791]
    cite(PAGE, results, "| dpm++2m-sde 20 | 20 | 0 |", "12.0")
    cite(PAGE, results, "| dpm++2m-sde 20 | 20 | 1 |", "9.5")
    cite(PAGE, results, "| dpm++2m-sde 20 | 20 | 2 |", "9.3")
    cite(PAGE, results, "| ddpm 20 | 20 | 0 |", "13.9", "2.2")
    mean = sum(sde) / 3
    cite(PAGE, results, "SDE-DPM-Solver++(2M) at 20 steps: FD 10.3", f"{mean:.1f}", f"{mean / 10.5530:.2f}")


def test_the_fashion_mnist_model_of_section_8():
    fashion = "results_diffusion_fashion.md"
    cite(PAGE, fashion, "(1,915 CPU-s)", "1,915", "621")
    cite(PAGE, fashion, "| 4 epochs: VLB, learned head t = 1 … 10, labels", "3.147", "0.029", "1000")
    cite(PAGE, fashion, "| 4 epochs: VLB, head, null class", "3.170", "0.029")
    cite(PAGE, fashion, "| 4 epochs: VLB, fixed decoder", "3.619")
    cite(PAGE, fashion, "| 4 epochs: dpm++2m 20 |", "31.4", "2.5", "7.63", "79.2")
    cite(PAGE, fashion, "| 4 epochs: dpm++2m-sde 20 |", "10.6", "1.3")
    cite(PAGE, fashion, "| 4 epochs: dpm++2m 20, w=2 |", "95.4", "1.0")
    cite(PAGE, fashion, "| 4 epochs: dpm++2m 20, w=3 |", "99.0")
    cite(PAGE, "results_vae.md", "| VAE, Burda nets, discretised logistic |", "3.468", "0.010")

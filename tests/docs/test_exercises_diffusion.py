"""The exercises of docs/diffusion.md: each printed answer is what kakusan computes."""

import math

import torch

from exercise_answers import answers, check, exercises
from kakusan.diffusion import MixtureTruth, Schedule
from kakusan.diffusion.vlb import prior_kl

PAGE = "diffusion"
F64 = torch.float64
LINEAR = Schedule("linear", 1000)


def test_the_page_prints_five_answers():
    assert set(answers(PAGE)) == {"alpha_bar_500", "lambda_500", "x0_hat", "score", "L_T"}


def test_exercise_1_the_linear_schedule_at_t_500():
    beta = torch.linspace(1e-4, 0.02, 1000, dtype=F64)
    alpha_bar = float(torch.prod(1 - beta[:500]))
    assert math.isclose(alpha_bar, float(LINEAR.alpha_bar[500]), rel_tol=1e-12)
    lam = math.log(alpha_bar / (1 - alpha_bar))
    assert math.isclose(lam, float(LINEAR.log_snr(500.0)), rel_tol=1e-10)
    check(PAGE, "alpha_bar_500", alpha_bar)
    check(PAGE, "lambda_500", lam)


def test_exercise_2_tweedie_for_gaussian_data():
    truth = MixtureTruth(torch.ones(1), torch.zeros(1, 1), torch.full((1, 1, 1), 0.25), LINEAR)
    a, s = (float(v) for v in LINEAR.alpha_sigma(500.0))
    var_t = 0.25 * a**2 + s**2  # x_t ~ N(0, α² · 0.25 + σ²)
    x = torch.ones(1, 1, dtype=F64)
    x0_hat, score = float(truth.x0(x, 500.0)), float(truth.score(x, 500.0))
    assert math.isclose(x0_hat, 0.25 * a / var_t, rel_tol=1e-10)
    assert math.isclose(score, -1 / var_t, rel_tol=1e-10)
    assert math.isclose(score, (a * x0_hat - 1) / s**2, rel_tol=1e-10)  # Tweedie: (α E[x_0|x] − x)/σ²
    check(PAGE, "x0_hat", x0_hat)
    check(PAGE, "score", score)


def test_exercise_3_the_prior_term_is_negligible():
    D = 784
    black = -torch.ones(1, D, dtype=F64)
    l_t = float(prior_kl(LINEAR, black)[0])
    ab = float(LINEAR.alpha_bar[-1])
    by_hand = 0.5 * D * (ab * 1.0 + (1 - ab) - 1 - math.log(1 - ab))  # diffusion-gauss-kl per dimension: (α x_0)² = ᾱ, variance 1 − ᾱ
    assert math.isclose(l_t, by_hand, rel_tol=1e-10)
    check(PAGE, "L_T", l_t)
    bits = l_t / (D * math.log(2))
    assert f"${bits / 1e-5:.2f} \\cdot 10^{{-5}}$ bits/dim" in exercises(PAGE)
    # the largest per-dimension term over [-1, 1] is at |x| = 1: §2's "at most 3·10⁻⁵ bits/dim"
    grid = torch.linspace(-1, 1, 201, dtype=F64)[:, None]
    assert float(prior_kl(LINEAR, grid).max()) / math.log(2) < 3e-5

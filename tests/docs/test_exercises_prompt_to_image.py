"""The exercises of docs/prompt-to-image.md: each printed answer is what kakusan computes (no shipped model needed)."""

import math

import torch

from exercise_answers import answers, check
from kakusan.diffusion import MixtureTruth, Schedule
from kakusan.diffusion.guidance import classifier_free

PAGE = "prompt-to-image"
F64 = torch.float64
LINEAR = Schedule("linear", 1000)


def test_the_page_prints_six_answers():
    assert set(answers(PAGE)) == {"mean", "sd", "guided mean", "noised mean", "t_unit", "t_half"}


def _guided_gaussian(t: float, w: float = 3.0) -> tuple[float, float]:
    """(mean, sd) of the Gaussian whose score is the guided score −ε̃/σ_t at time t, for p(x|c) = N(2, 0.25) and
    p(x) = N(0, 1)."""
    cond = MixtureTruth(torch.ones(1), torch.full((1, 1), 2.0), torch.full((1, 1, 1), 0.25), LINEAR)
    null = MixtureTruth(torch.ones(1), torch.zeros(1, 1), torch.ones(1, 1, 1), LINEAR)

    def eps_fn(x, t, labels):
        return torch.where(torch.as_tensor(labels).reshape(-1, 1) == 0, cond(x, t), null(x, t))

    guided = classifier_free(eps_fn, w, null=1)
    sigma = float(LINEAR.alpha_sigma(t)[1])
    x = torch.tensor([[0.0], [1.0]], dtype=F64)
    score = -guided(x, torch.tensor(t), torch.tensor([0, 0])) / sigma
    slope = float(score[1] - score[0])  # a Gaussian's score is linear: −precision · (x − mean)
    return -float(score[0]) / slope, (-1 / slope) ** 0.5


def test_exercise_1_guidance_on_two_gaussians():
    w = 3.0
    precision = w / 0.25 + (1 - w)
    mean, sd = (2 * w / 0.25) / precision, precision**-0.5
    near_zero = _guided_gaussian(1.0)  # t = 1: σ² = 10⁻⁴, the guided score is that of p_w up to O(σ²)
    assert math.isclose(near_zero[0], mean, abs_tol=1e-3) and math.isclose(near_zero[1], sd, abs_tol=1e-3)
    check(PAGE, "mean", near_zero[0])
    check(PAGE, "sd", near_zero[1])
    guided, _ = _guided_gaussian(500.0)
    noised = float(LINEAR.alpha_sigma(500.0)[0]) * mean  # the mean of p_w noised to t = 500
    assert guided - noised > 0.5  # noising does not commute with the power
    check(PAGE, "guided mean", guided)
    check(PAGE, "noised mean", noised)


def test_exercise_2_the_latent_scale_shifts_the_schedule():
    t_unit = float(LINEAR.t_from_log_snr(torch.tensor(0.0, dtype=F64)))
    t_half = float(LINEAR.t_from_log_snr(torch.tensor(-math.log(0.5**2), dtype=F64)))
    assert abs(float(LINEAR.log_snr(t_unit))) < 1e-9
    assert abs(float(LINEAR.log_snr(t_half)) + math.log(0.25)) < 1e-9  # λ(t) + log s² = 0
    check(PAGE, "t_unit", t_unit)
    check(PAGE, "t_half", t_half)

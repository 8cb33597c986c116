"""The calibration harness and the weight-tail diagnostic, on synthetic estimators and weights with known answers.

A synthetic estimator draws v = x + σ·N(0, 1) and reports s.e. σ (calibrated), σ/2 (too narrow: sd(z) ≈ 2)
or 2σ (too wide: sd(z) ≈ 0.5). Pareto weights with tail index α have a known Pareto shape k = 1/α. All seeded.
"""

import math

import numpy as np
import pytest
import torch

from kakusan.errors import KakusanError
from kakusan.evaluate import log_mean_exp
from kakusan.evaluate.calibration import calibrate, from_estimates, markdown_table
from kakusan.evaluate.tails import khat_threshold, pareto_khat, weight_tail


def synthetic(scale: float, sigma: float = 0.3, exact: float = 5.0):
    def run(seed: int) -> tuple[float, float]:
        return exact + sigma * float(np.random.default_rng(seed).standard_normal()), scale * sigma
    return run


@pytest.mark.parametrize("scale, verdict", [(1.0, "calibrated"), (0.5, "too narrow"), (2.0, "too wide")])
def test_the_harness_passes_a_calibrated_error_bar_and_fails_halved_and_doubled_ones(scale, verdict):
    cal = calibrate(synthetic(scale), 5.0, range(100), estimator="synthetic", case=f"s.e. × {scale}")
    assert cal.n_seeds == 100 and cal.verdict == verdict
    assert cal.calibrated == (verdict == "calibrated")
    assert cal.z_sd == pytest.approx(1.0 / scale, rel=0.15)
    assert cal.coverage(2.0) == pytest.approx(math.erf(2 * scale / math.sqrt(2)), abs=0.08)
    assert cal.cpu_seconds >= 0 and "synthetic" in markdown_table([cal])


def test_fewer_than_50_seeds_are_never_enough():
    cal = calibrate(synthetic(1.0), 5.0, 49)
    assert not cal.calibrated and cal.verdict.startswith("too few seeds")


def test_a_calibrated_error_bar_with_poor_coverage_fails():
    z = np.r_[np.zeros(88), np.full(12, 3.0)]  # sd(z) ≈ 0.98 but 12 % of seeds miss by 3 s.e.
    cal = from_estimates(z, np.ones(100), 0.0, estimator="spiky", case="")
    assert 0.75 <= cal.z_sd <= 1.33 and cal.coverage() == 0.88 and cal.verdict == "low coverage"


def test_the_sign_of_a_bound_s_bias_is_reported():
    rng = np.random.default_rng(1)
    low = from_estimates(-0.2 + 0.1 * rng.standard_normal(60), np.full(60, 0.1), 0.0, estimator="low", case="",
                         bound="lower")
    assert low.bias_sign == "−" and low.bound_holds
    high_as_lower = from_estimates(0.2 + 0.1 * rng.standard_normal(60), np.full(60, 0.1), 0.0, estimator="x",
                                   case="", bound="lower")
    assert high_as_lower.bias_sign == "+" and high_as_lower.bound_holds is False
    assert from_estimates([1.0], [0.1], 1.0, estimator="x", case="").bound_holds is None


def test_estimates_and_ais_style_results_are_accepted():
    est = log_mean_exp(torch.randn(100, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    cal = calibrate(lambda seed: type("R", (), {"log_z": float(est.value), "log_z_stderr": float(est.stderr)})(),
                    0.5, 3)
    assert cal.n_seeds == 3
    with pytest.raises(KakusanError):
        calibrate(lambda seed: 1.0, 0.0, 2)
    with pytest.raises(KakusanError):
        from_estimates([1.0, 2.0], [0.1], 0.0, estimator="x", case="")


@pytest.mark.parametrize("k", [0.2, 0.5, 0.8, 1.2])
def test_pareto_khat_recovers_the_tail_index_of_pareto_weights(k):
    # Lomax(α) weights have P(w > t) ~ t^{−α}: generalised Pareto shape k = 1/α; sd of k̂ is ≈ 0.09 at n = 10⁴
    rng = np.random.default_rng(int(10 * k))
    w = rng.pareto(1 / k, 10_000) + 1.0
    assert pareto_khat(np.log(w)) == pytest.approx(k, abs=0.25)
    estimates = [pareto_khat(np.log(rng.pareto(1 / k, 10_000) + 1.0)) for _ in range(10)]
    assert np.mean(estimates) == pytest.approx(k, abs=0.1)


def test_light_tails_and_scale_give_small_khat_and_no_warning():
    lw = torch.randn(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 0.3
    tail = weight_tail(lw)
    assert tail.khat < 0.3 and tail.reliable and tail.warning() is None
    assert weight_tail(lw + 1234.5).khat == pytest.approx(tail.khat)  # only ratios matter
    assert tail.tail_size == int(min(200, 3 * math.sqrt(1000))) and tail.ess == pytest.approx(
        float(log_mean_exp(lw).ess))


def test_heavy_tails_and_a_dominant_weight_warn_in_one_line():
    rng = np.random.default_rng(4)
    heavy = weight_tail(np.log(rng.pareto(1 / 0.9, 1000) + 1.0))
    assert heavy.khat > 0.7 and not heavy.reliable and "k̂" in heavy.warning() and "\n" not in heavy.warning()
    lw = np.zeros(100)
    lw[0] = 5.0  # e⁵ / (e⁵ + 99) = 60 % of the sum
    dominant = weight_tail(lw)
    assert dominant.max_share == pytest.approx(math.exp(5) / (math.exp(5) + 99)) and "60 %" in dominant.warning()


def test_khat_threshold_and_small_samples():
    assert khat_threshold(100) == pytest.approx(0.5) and khat_threshold(10_000) == 0.7
    assert math.isnan(pareto_khat(np.zeros(5))) and math.isnan(pareto_khat(np.zeros(100)))
    with pytest.raises(KakusanError):
        weight_tail(torch.full((3,), -math.inf))

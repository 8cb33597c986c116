"""The shared log-mean-exp estimator and the Estimate result type, against closed forms and the old AIS numbers.

Log-normal weights log w ~ N(μ, σ²) have E[w] = exp(μ + σ²/2) and E[w]²/E[w²] = exp(−σ²), so the
estimate, its standard error (calibrated over many independent batches) and the effective sample size
all have exact targets. All draws are seeded.
"""

import math

import pytest
import torch

from kakusan.errors import KakusanError
from kakusan.evaluate import Estimate, log_mean_exp

F64 = torch.float64


def lognormal(shape, mu, sigma, seed):
    return mu + sigma * torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def test_log_normal_weights_give_the_closed_form_mean_and_ess():
    mu, sigma, n = -3.0, 0.8, 200_000
    est = log_mean_exp(lognormal(n, mu, sigma, 0))
    truth = mu + sigma**2 / 2
    assert abs(float(est.value) - truth) < 4 * float(est.stderr)
    assert float(est.stderr) == pytest.approx(math.sqrt((math.exp(sigma**2) - 1) / n), rel=0.05)
    assert float(est.ess) / n == pytest.approx(math.exp(-(sigma**2)), rel=0.02)


def test_the_standard_error_is_calibrated_over_independent_batches():
    """z = (estimate − log E[w]) / stderr over 400 batches (one call, batched along dim 1): mean ≈ 0, sd ≈ 1."""
    mu, sigma = 1.5, 0.5
    est = log_mean_exp(lognormal((400, 2000), mu, sigma, 1), dim=1)
    z = (est.value - (mu + sigma**2 / 2)) / est.stderr
    assert est.value.shape == est.stderr.shape == est.ess.shape == (400,) and est.n == 2000
    assert abs(float(z.mean())) < 4 / math.sqrt(400)
    assert 0.85 < float(z.std()) < 1.15


def test_stable_for_huge_and_zero_weights_and_exact_for_equal_ones():
    big = log_mean_exp(torch.tensor([1000.0, 1000.0 + math.log(3.0)], dtype=F64))
    assert float(big.value) == pytest.approx(1000.0 + math.log(2.0), abs=1e-12)
    equal = log_mean_exp(torch.full((7,), -2.5, dtype=F64))
    assert float(equal.value) == -2.5 and float(equal.stderr) == 0.0 and float(equal.ess) == pytest.approx(7.0)
    assert float(log_mean_exp(torch.tensor([math.log(5.0), -math.inf], dtype=F64)).value) == pytest.approx(
        math.log(2.5))
    assert float(log_mean_exp(torch.full((3,), -math.inf)).value) == -math.inf
    one = log_mean_exp(torch.tensor([0.3]))
    assert float(one.value) == pytest.approx(0.3) and math.isnan(float(one.stderr)) and float(one.ess) == 1.0
    with pytest.raises(KakusanError, match="at least one weight"):
        log_mean_exp(torch.zeros(4, 0))


def test_the_old_ais_arithmetic_is_reproduced_bit_for_bit():
    """rbm.ais computed log mean w, its error and the ESS inline; the shared estimator gives the same floats."""
    for seed in range(5):
        log_w = lognormal(100, 3.0 * seed, 0.5 + seed, seed)
        shift = float(log_w.max())
        r = torch.exp(log_w - shift)
        mean = float(r.mean())
        old = (shift + math.log(mean), float(r.std() / math.sqrt(len(r))) / mean, float(r.sum() ** 2 / (r**2).sum()))
        est = log_mean_exp(log_w)
        new = (float(est.value), float(est.stderr), float(est.ess))
        assert new == pytest.approx(old, rel=1e-15, abs=1e-15)


def test_ais_numbers_are_unchanged():
    """Seeded forward and reverse AIS give the numbers the inline arithmetic gave before it moved here."""
    from kakusan.rbm import BernoulliRBM
    from kakusan.rbm.ais import ais, default_betas, reverse_ais

    g = torch.Generator().manual_seed(1)
    model = BernoulliRBM(13, 5, dtype="float64", weight_std=0.5, seed=1)
    with torch.no_grad():
        model.b.normal_(0, 1.0, generator=g)
        model.c.normal_(0, 0.5, generator=g)
    fwd = ais(model, n_runs=50, betas=default_betas(10, 20, 30), generator=3)
    rev = reverse_ais(model, model.sample(50, 1, n_steps=20), betas=default_betas(10, 20, 30), generator=2)
    for got, want in ((fwd, (13.193367501023097, 0.057307740961751494, 43.06911619277724)),
                      (rev, (13.207442588220356, 0.05514092104641844, 43.51664870211133))):
        assert (got.log_z, got.log_z_stderr, got.ess) == pytest.approx(want, rel=1e-12)
    assert str(fwd.estimate()) == "13.19 ± 0.06 nats" and fwd.estimate().method == "AIS forward"


def test_estimate_prints_in_one_line_and_averages_examples():
    e = Estimate(-85.4613, 0.0912, 10000, "AIS", "nats")
    assert str(e) == "-85.46 ± 0.09 nats" and e.interval(1.0) == pytest.approx((-85.5525, -85.3701))
    m = Estimate.of_mean(torch.tensor([1.0, 2.0, 3.0, 4.0]), "exact", "bits/dim")
    assert (m.value, m.n, m.unit) == (2.5, 4, "bits/dim")
    assert m.stderr == pytest.approx(math.sqrt(5 / 3) / 2)
    assert math.isnan(Estimate.of_mean(torch.tensor([1.0]), "exact").stderr)
    with pytest.raises(KakusanError):
        Estimate.of_mean(torch.tensor([]), "exact")

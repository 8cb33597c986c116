"""The diffusion VLB: posterior and term identities, the prior term, the discretised decoder, the whole bound
against closed forms and the exact NLL of Gaussian mixtures, the stratified estimator's calibration, the
importance sampler, units and the Jacobian."""

import math

import pytest
import torch

from kakusan.diffusion.model import Diffusion, DiffusionConfig
from kakusan.diffusion.nets import MLPDenoiserConfig
from kakusan.diffusion.process import Schedule, ScheduleConfig
from kakusan.diffusion.truth import MixtureTruth
from kakusan.diffusion.vlb import (EpsModel, ImportanceSampler, discretised_gaussian_log_prob, gaussian_log_prob,
                                   prior_kl, q_posterior, reverse_log_variance, strata, term_from_prediction,
                                   vlb_estimate, vlb_exact, vlb_term)
from kakusan.errors import KakusanError

f64 = torch.float64


def gaussian_truth(D: int, s: float, schedule: Schedule, m: float = 0.3) -> MixtureTruth:
    """Data N(m·1, s² I): one component, so E[x_0 | x_t] is linear and every expected term is closed form."""
    return MixtureTruth(torch.ones(1), torch.full((1, D), m, dtype=f64), s**2 * torch.eye(D, dtype=f64)[None],
                        schedule)


# -- the posterior and the terms -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_q_posterior_is_the_gaussian_conditional_of_the_forward_pair(kind):
    s = Schedule(kind, 50)
    g = torch.Generator().manual_seed(0)
    x0, x_t = torch.randn(6, 3, generator=g, dtype=f64), torch.randn(6, 3, generator=g, dtype=f64)
    for t in (1, 2, 17, 50):
        mean, var = q_posterior(s, x0, x_t, torch.full((6,), t))
        ab_prev, ab_t, beta = s.alpha_bar[t - 1], s.alpha_bar[t], s.betas[t - 1]
        V = 1 - ab_prev  # Var(x_{t−1} | x_0); Cov(x_{t−1}, x_t | x_0) = √(1 − β) V; Var(x_t | x_0) = 1 − ᾱ_t
        cov, var_t = (1 - beta).sqrt() * V, 1 - ab_t
        want_mean = ab_prev.sqrt() * x0 + cov / var_t * (x_t - ab_t.sqrt() * x0)
        torch.testing.assert_close(mean, want_mean, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(var, torch.full((6,), float(V - cov**2 / var_t), dtype=f64), rtol=1e-9,
                                   atol=1e-15)


def _fake(schedule, levels=0, shift=0.0, scale=1.0):
    return EpsModel(lambda x, t, c=None: torch.zeros_like(x), schedule, levels=levels, shift=shift, scale=scale)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_fixed_posterior_kl_is_half_the_snr_drop_times_the_x0_error(kind):
    s = Schedule(kind, 100)
    model = _fake(s)
    g = torch.Generator().manual_seed(1)
    n = 40
    x0, x_t, x0_hat = (torch.randn(n, 5, generator=g, dtype=f64) for _ in range(3))
    t = torch.randint(2, 101, (n,), generator=g)
    got = term_from_prediction(model, x0, x_t, t, x0_hat, variance="posterior")
    snr = s.snr(t.double()), s.snr(t.double() - 1)
    want = 0.5 * (snr[1] - snr[0]) * ((x0 - x0_hat) ** 2).sum(1)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=0)
    # the general formula (Σ = β̃ through the learned path with v = 0 for t ≥ 2) gives the same
    got_v0 = term_from_prediction(model, x0, x_t, t, x0_hat, torch.zeros(n, 5, dtype=f64), variance="learned")
    torch.testing.assert_close(got_v0, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variance", ["beta", "learned"])
def test_kl_terms_equal_torch_gaussian_kl(variance):
    s = Schedule("linear", 60)
    model = _fake(s)
    g = torch.Generator().manual_seed(2)
    n = 30
    x0, x_t, x0_hat = (torch.randn(n, 4, generator=g, dtype=f64) for _ in range(3))
    v = torch.rand(n, 4, generator=g, dtype=f64) if variance == "learned" else None
    t = torch.randint(2, 61, (n,), generator=g)
    got = term_from_prediction(model, x0, x_t, t, x0_hat, v, variance=variance)
    mq, var_q = q_posterior(s, x0, x_t, t)
    mp, _ = q_posterior(s, x0_hat, x_t, t)
    log_var = reverse_log_variance(s, t, v, variance, like=x0)
    log_var = log_var if log_var.ndim == 2 else log_var[:, None].expand(n, 4)
    q = torch.distributions.Normal(mq, var_q.sqrt()[:, None].expand(n, 4))
    p = torch.distributions.Normal(mp, torch.exp(0.5 * log_var))
    torch.testing.assert_close(got, torch.distributions.kl_divergence(q, p).sum(1), rtol=1e-9, atol=1e-12)
    if variance == "learned":  # the interpolation's ends: v = 1 is β_t, v = 0 is β̃_t
        lv1 = reverse_log_variance(s, t, torch.ones(n, 4, dtype=f64), "learned")
        torch.testing.assert_close(lv1, s.betas[t - 1].log()[:, None].expand(n, 4))


def test_decoder_term_at_t1_is_the_gaussian_or_discretised_nll():
    s = Schedule("linear", 40)
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(8, 3, generator=g, dtype=f64)
    x0_hat = x0 + 0.01 * torch.randn(8, 3, generator=g, dtype=f64)
    ones = torch.ones(8, dtype=torch.long)
    got = term_from_prediction(_fake(s), x0, x0, ones, x0_hat)
    want = -torch.distributions.Normal(x0_hat, s.betas[0].sqrt()).log_prob(x0).sum(1)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    grid = (torch.randint(0, 256, (8, 3), generator=g).double() / 255 - 0.5) / 0.5
    got = term_from_prediction(_fake(s, levels=256, shift=0.5, scale=0.5), grid, grid, ones, x0_hat)
    want = -discretised_gaussian_log_prob(grid, x0_hat, s.betas[0].log().expand(8, 3)).sum(1)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_prior_term_is_the_closed_form_kl(kind):
    s = Schedule(kind, 30)
    x0 = torch.randn(7, 6, generator=torch.Generator().manual_seed(4), dtype=f64) * 3
    a, sig = s.alpha_sigma(torch.tensor(30.0))
    q = torch.distributions.Normal(a * x0, sig.expand_as(x0))
    p = torch.distributions.Normal(torch.zeros_like(x0), torch.ones_like(x0))
    torch.testing.assert_close(prior_kl(s, x0), torch.distributions.kl_divergence(q, p).sum(1), rtol=1e-8,
                               atol=1e-14)


# -- the discretised decoder ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mean", [-1.4, -1.0, -0.3, 0.0, 0.51, 1.0, 2.5])
@pytest.mark.parametrize("var", [1e-10, 1e-4, 0.05, 1.0, 100.0])
def test_discretised_masses_sum_to_one_over_the_256_values(mean, var):
    grid = torch.linspace(-1, 1, 256, dtype=f64)
    logp = discretised_gaussian_log_prob(grid, torch.tensor(mean, dtype=f64), torch.tensor(math.log(var), dtype=f64))
    assert torch.isfinite(logp).all()
    assert abs(float(torch.logsumexp(logp, 0))) < 1e-10


def test_discretised_gaussian_matches_cdf_differences_and_limits():
    grid = torch.linspace(-1, 1, 256, dtype=f64)
    d = 1 / 255
    mean, sd = torch.tensor(0.1, dtype=f64), 0.2
    logp = discretised_gaussian_log_prob(grid, mean, torch.tensor(2 * math.log(sd), dtype=f64))
    cdf = torch.special.ndtr
    naive = cdf((grid + d - mean) / sd) - cdf((grid - d - mean) / sd)
    naive[0], naive[-1] = cdf((grid[0] + d - mean) / sd), 1 - cdf((grid[-1] - d - mean) / sd)
    torch.testing.assert_close(logp.exp(), naive, rtol=1e-9, atol=1e-15)
    # wide Gaussian: mass ≈ density · bin width
    wide = discretised_gaussian_log_prob(grid[100:150], mean, torch.tensor(0.0, dtype=f64))
    torch.testing.assert_close(wide, gaussian_log_prob(grid[100:150], mean, torch.tensor(0.0, dtype=f64))
                               + math.log(2 * d), atol=1e-4, rtol=0)
    # far tails stay finite and follow log Φ(−z) ≈ −z²/2 − log(z √(2π)); gradients are finite
    m = torch.tensor(0.0, dtype=f64, requires_grad=True)
    lv = torch.tensor(2 * math.log(1e-3), dtype=f64, requires_grad=True)
    far = discretised_gaussian_log_prob(torch.tensor([1.0, 0.5, -0.5], dtype=f64), m, lv)
    z = (1 - d) / 1e-3
    assert abs(float(far[0].detach()) - (-z * z / 2 - math.log(z * math.sqrt(2 * math.pi)))) < 1e-3
    assert torch.isfinite(far).all() and float(far[1].detach()) < -1e4
    far.sum().backward()
    assert torch.isfinite(m.grad) and torch.isfinite(lv.grad)
    # one grid value: masses of the two neighbouring bins are equal by symmetry
    sym = discretised_gaussian_log_prob(torch.tensor([-d, d], dtype=f64), torch.tensor(0.0, dtype=f64),
                                        torch.tensor(-3.0, dtype=f64))
    torch.testing.assert_close(sym[0], sym[1])


# -- the whole bound ------------------------------------------------------------------------------------------

def expected_gaussian_vlb(s: Schedule, x0: torch.Tensor, sd: float, m: float, variance: str) -> torch.Tensor:
    """E over x_{1:T} of the VLB for data N(m, sd² I) with the exact denoiser, per example, in closed form."""
    D = x0.shape[1]
    total = prior_kl(s, x0)
    for t in range(1, s.T + 1):
        a, sig = (float(v) for v in s.alpha_sigma(torch.tensor(float(t))))
        k = a * sd**2 / (a * a * sd**2 + sig**2)  # x̂_0 = m + k (x_t − a m)
        err = ((1 - k * a) ** 2 * ((x0 - m) ** 2).sum(1)) + D * k * k * sig**2  # E ‖x_0 − x̂_0‖²
        ab_prev, beta = float(s.alpha_bar[t - 1]), float(s.betas[t - 1])
        if t == 1:
            total = total + 0.5 * D * math.log(2 * math.pi * beta) + err / (2 * beta)
            continue
        post = beta * (1 - ab_prev) / (1 - float(s.alpha_bar[t]))
        c0 = math.sqrt(ab_prev) * beta / (1 - float(s.alpha_bar[t]))
        var = post if variance == "posterior" else beta
        total = total + 0.5 * (D * (math.log(var / post) + post / var - 1) + c0 * c0 * err / var)
    return total


@pytest.mark.parametrize("kind,variance,D", [("linear", "posterior", 16), ("cosine", "beta", 3)])
def test_vlb_exact_matches_the_closed_form_for_gaussian_data(kind, variance, D):
    s = Schedule(kind, 80)
    sd, m = 0.4, 0.3
    truth = gaussian_truth(D, sd, s, m)
    x0 = truth.sample(400, 5)
    r = vlb_exact(EpsModel(truth), x0, generator=6, variance=variance)
    want = expected_gaussian_vlb(s, x0, sd, m, variance)
    d = r.values - want
    z = float(d.mean() / (d.std() / math.sqrt(len(d))))
    assert abs(z) < 4, z
    assert r.terms.shape == (400, 81) and r.estimate.unit == "nats" and r.estimate.n == 400
    torch.testing.assert_close(r.terms[:, -1], prior_kl(s, x0))
    # and the bound holds: E[VLB] ≥ −E log q(x_0)
    assert float(want.mean()) > float(-truth.log_prob(x0).mean())


def _gaps(kind: str, T: int, n: int, seed: int = 0, D: int = 2, variance: str = "posterior") -> torch.Tensor:
    """VLB + log q_0 per example (exact denoiser, continuous data); the same x_0 for every T."""
    s = Schedule(kind, T)
    truth = MixtureTruth.example(D, schedule=s, seed=1)
    x0 = truth.sample(n, seed)
    return vlb_exact(EpsModel(truth), x0, generator=seed + T, batch=n, variance=variance).values + truth.log_prob(x0)


def _se(x: torch.Tensor) -> float:
    return float(x.std() / math.sqrt(len(x)))


@pytest.mark.parametrize("kind,n", [("linear", 400), ("cosine", 1000)])
def test_vlb_bounds_the_exact_nll_and_the_gap_shrinks_with_T(kind, n):
    small, big = _gaps(kind, 50, n), _gaps(kind, 1000, n)
    for gap in (small, big):
        assert float(gap.mean()) > -3 * _se(gap)  # E[VLB] ≥ E[−log q_0]
    d = small - big  # paired: the same examples
    assert float(d.mean()) > 4 * _se(d), (float(small.mean()), float(big.mean()), _se(d))


def test_with_reverse_variance_beta_the_gap_closes_at_T_1000():
    """β̃_t undershoots the true reverse variance β̃_t + c_0² Var(x_0 | x_t) at the first steps, where
    Var(x_0 | x_t) ≈ σ_t²/α_t² for smooth data; β_t matches it there, and the bound becomes tight."""
    beta = _gaps("linear", 1000, 400, variance="beta")  # with β̃_t the gap here is ≈ 0.85 nats (test above)
    assert -3 * _se(beta) < float(beta.mean()) < 0.25


def test_vlb_bounds_the_nll_in_16_dimensions():
    gap = _gaps("cosine", 100, 300, D=16)
    assert float(gap.mean()) > max(0.0, 3 * _se(gap))


def test_stratified_estimate_is_calibrated_against_the_exact_sum():
    s = Schedule("linear", 60)
    truth = MixtureTruth.example(2, schedule=s, seed=2)
    model = EpsModel(truth)
    zs = []
    for seed in range(6):
        x0 = truth.sample(300, 10 + seed)
        exact = vlb_exact(model, x0, generator=20 + seed)
        est = vlb_estimate(model, x0, generator=30 + seed, n_t=12)
        d = est.values - exact.values
        zs.append(float(d.mean() / (d.std() / math.sqrt(len(d)))))
        assert est.terms is None and "stratified" in est.estimate.method
    assert max(abs(z) for z in zs) < 3.5, zs
    assert 0.3 < float(torch.tensor(zs).std()) < 2.0, zs
    # with one stratum per step, every example draws every t once: the exact sum's law, same mean
    x0 = truth.sample(200, 40)
    full = vlb_estimate(model, x0, generator=41, n_t=60)
    exact = vlb_exact(model, x0, generator=42)
    d = full.values - exact.values
    assert abs(float(d.mean())) < 4 * float(d.std()) / math.sqrt(200)


def test_with_a_stratum_per_step_the_estimate_is_the_exact_sum():
    """L_0 is computed for every example and t = 2 … T stratified: with T − 1 strata (n_t = T − 1 or T) every
    term is computed once, from the same draws as vlb_exact's and summed in the same order: the same values."""
    s = Schedule("cosine", 25)
    truth = MixtureTruth.example(3, schedule=s, seed=4)
    x0 = truth.sample(60, 5)
    exact = vlb_exact(EpsModel(truth), x0, generator=9, batch=25)
    for n_t in (24, 25):
        est = vlb_estimate(EpsModel(truth), x0, generator=9, n_t=n_t, batch=25)
        assert torch.equal(est.values, exact.values)
    with pytest.raises(KakusanError, match="n_t"):
        vlb_estimate(EpsModel(truth), x0, n_t=26)
    one = Schedule("linear", 1)  # T = 1: L_0 and L_T only, no strata
    truth1 = MixtureTruth.example(3, schedule=one, seed=4)
    torch.testing.assert_close(vlb_estimate(EpsModel(truth1), x0, generator=3, n_t=1).values,
                               vlb_exact(EpsModel(truth1), x0, generator=3).values)


def _stratified_over_all_t(model, x0: torch.Tensor, n_t: int, seed: int) -> torch.Tensor:
    """The earlier estimator: 1 … T in n_t strata, L_0 drawn inside the first one with weight T/n_t (+ L_T)."""
    g = torch.Generator().manual_seed(seed)
    starts, sizes = strata(model.schedule.T, n_t)
    total = prior_kl(model.schedule, x0)
    for start, size in zip(starts.tolist(), sizes.tolist()):
        t = start + torch.randint(0, size, (len(x0),), generator=g)
        total = total + size * vlb_term(model, x0, t, generator=g)
    return total


def test_exact_decoder_term_cuts_the_error_bar_in_16_dimensions():
    """D = 16, β_1 = 10⁻⁴: L_0 ≈ −51 nats. Drawn inside the first of 100 strata (weight 10) it made the per-example
    sd ≈ 160 nats (s.e. ≈ 16 at n = 100 on a ≈ 11-nat bound); computed for every example, ≈ 27 (s.e. ≈ 3)."""
    s = Schedule("linear", 1000)
    truth = MixtureTruth.example(16, 3, s, seed=1)
    model = EpsModel(truth)
    x0 = truth.sample(100, 7)
    new = vlb_estimate(model, x0, generator=8, n_t=100)
    old = _stratified_over_all_t(model, x0, 100, seed=8)
    assert new.estimate.stderr < 5.0 < 10.0 < _se(old), (new.estimate.stderr, _se(old))
    # the same expectation: both about the exact sum on these examples
    exact = vlb_exact(model, x0, generator=9).values
    for values in (new.values, old):
        d = values - exact
        assert abs(float(d.mean())) < 4 * _se(d)


def test_strata_cover_every_step_once():
    starts, sizes = strata(10, 3)
    assert sizes.tolist() == [3, 3, 4] and starts.tolist() == [1, 4, 7]
    assert int(sizes.sum()) == 10
    with pytest.raises(KakusanError, match="n_t"):
        strata(5, 6)


def test_units_and_the_jacobian_convention():
    s = Schedule("cosine", 20)
    truth = MixtureTruth.example(3, schedule=s, seed=3)
    x = truth.sample(50, 1)
    base = vlb_exact(EpsModel(truth), x, generator=7)
    # the same network on data = 2 x: the density bound gains D log 2 (−log_jacobian = D log scale)
    scaled = vlb_exact(EpsModel(truth, scale=2.0), 2 * x, generator=7)
    torch.testing.assert_close(scaled.values, base.values + 3 * math.log(2))
    bpd = vlb_exact(EpsModel(truth, scale=2.0), 2 * x, generator=7, unit="bits/dim")
    assert bpd.estimate.unit == "bits/dim"
    assert abs(bpd.estimate.value - scaled.estimate.value / (3 * math.log(2))) < 1e-9
    # 8-bit data: a bound on the probability mass, in bits/dim by default, and no Jacobian whatever the scale
    grid = torch.randint(0, 256, (50, 3), generator=torch.Generator().manual_seed(2)).double() / 255
    a = vlb_exact(EpsModel(truth, levels=256, shift=0.5, scale=0.5), grid, generator=8)
    b = vlb_exact(EpsModel(truth, levels=256, shift=0.5, scale=0.5), grid, generator=8, unit="nats")
    assert a.estimate.unit == "bits/dim" and b.estimate.unit == "nats"
    torch.testing.assert_close(a.values, b.values)
    assert abs(a.estimate.value - b.estimate.value / (3 * math.log(2))) < 1e-9
    assert a.nats == b.estimate and a.bits_per_dim(3) == a.estimate
    assert (a.values > 0).all()  # −log of a probability mass


def test_vlb_runs_on_an_mlp_diffusion_model_with_8bit_data():
    torch.manual_seed(0)
    config = DiffusionConfig(data_shape=(4,), schedule=ScheduleConfig("cosine", 30), target="v",
                             denoiser=MLPDenoiserConfig(hidden=16, depth=1), learn_variance=True, n_classes=2,
                             shift=0.5, scale=0.5, levels=256)
    model = Diffusion(config)
    data = torch.randint(0, 256, (20, 4), generator=torch.Generator().manual_seed(1)).float() / 255
    labels = torch.arange(20) % 2
    exact = vlb_exact(model, data, labels, generator=1)
    est = vlb_estimate(model, data, labels, generator=2, n_t=10)
    assert exact.values.dtype == f64 and torch.isfinite(exact.values).all() and torch.isfinite(est.values).all()
    assert abs(exact.estimate.value - est.estimate.value) < 5 * (exact.estimate.stderr + est.estimate.stderr) + 0.05
    # gradients reach the network through the per-term function (learned variance and mean)
    x = model.to_model(data)
    vlb_term(model, x, torch.arange(20) % 30 + 1, labels, generator=3).mean().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g_).all() for g_ in grads)
    assert any(float(g_.abs().sum()) > 0 for g_ in grads)


def test_bad_steps_and_variances_are_one_line_errors():
    s = Schedule("linear", 10)
    model = _fake(s)
    x = torch.zeros(2, 3, dtype=f64)
    with pytest.raises(KakusanError, match="1 … 10"):
        vlb_term(model, x, torch.tensor([0, 3]), generator=0)
    with pytest.raises(KakusanError, match="learn_variance"):
        vlb_term(model, x, 3, generator=0, variance="learned")
    with pytest.raises(KakusanError, match="unknown variance"):
        vlb_term(model, x, 3, generator=0, variance="big")
    with pytest.raises(KakusanError, match="integer steps"):
        vlb_term(model, x, torch.tensor([1.5, 2.0]), generator=0)


# -- importance sampling of t -----------------------------------------------------------------------------------

def test_importance_sampler_is_uniform_until_warm_then_proportional_to_rms_loss():
    T, K = 6, 10
    sampler = ImportanceSampler(T, history=K, uniform=0.0)
    losses = {t: float(t) for t in range(1, T + 1)}
    for round_ in range(K):
        assert not sampler.warmed_up
        torch.testing.assert_close(sampler.probabilities(), torch.full((T,), 1 / T, dtype=f64))
        t = torch.arange(1, T + 1) if round_ < K - 1 else torch.arange(1, T)  # t = T still one short
        sampler.update(t, torch.tensor([losses[int(i)] * (1 + 0.1 * round_) for i in t], dtype=f64))
    assert not sampler.warmed_up
    t, w = sampler.sample(1000, 0)
    assert torch.all(w == 1.0) and t.min() >= 1 and t.max() <= T
    sampler.update(torch.tensor([T]), torch.tensor([losses[T] * 1.9]))
    assert sampler.warmed_up
    rms = torch.tensor([math.sqrt(sum((losses[i] * (1 + 0.1 * r)) ** 2 for r in range(K)) / K)
                        for i in range(1, T + 1)], dtype=f64)
    torch.testing.assert_close(sampler.probabilities(), rms / rms.sum())
    # the history is a window: a new value pushes the oldest out
    sampler.update(torch.tensor([1]), torch.tensor([100.0]))
    assert float(sampler.history[0, -1]) == 100.0 and abs(float(sampler.history[0, 0]) - 1.1) < 1e-12
    # frequencies follow p, and the weights are 1/(T p_t)
    p = sampler.probabilities()
    t, w = sampler.sample(40_000, 1)
    freq = torch.bincount(t - 1, minlength=T).double() / 40_000
    assert (freq - p).abs().max() < 4 * math.sqrt(0.25 / 40_000)
    torch.testing.assert_close(w, 1 / (T * p[t - 1]))


def test_importance_sampler_mixes_in_the_uniform_law_and_round_trips_its_state():
    T = 4
    sampler = ImportanceSampler(T, history=2, uniform=0.2)
    sampler.update(torch.tensor([1, 2, 3, 4, 1, 2, 3, 4]), torch.tensor([1.0, 0, 0, 0, 1, 0, 0, 0]))
    torch.testing.assert_close(sampler.probabilities(), torch.tensor([0.85, 0.05, 0.05, 0.05], dtype=f64))
    other = ImportanceSampler(1)
    other.load_state_dict({k: v.clone() for k, v in sampler.state_dict().items()})
    assert other.T == T and other.uniform == 0.2
    torch.testing.assert_close(other.probabilities(), sampler.probabilities())
    a, b = sampler.sample(50, 3), other.sample(50, 3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])

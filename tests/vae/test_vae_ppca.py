"""Ground truth for the bounds: probabilistic PCA, whose marginal and posterior are exact (Tipping & Bishop 1999).

Float64, D = 5 data dimensions, L = 2 latents. The pPCA maximum-likelihood decoder has orthogonal columns,
so a diagonal-Gaussian linear encoder can hold the exact posterior.
"""

import math

import pytest
import torch
from vae_helpers import F64, ppca_data, seeded

from kakusan.optim.schedules import make_scheduler
from kakusan.train import TrainConfig, fit
from kakusan.vae import ELBO, VAE
from kakusan.vae import linear_gaussian as lg

D, L = 5, 2


@pytest.fixture(scope="module")
def data():
    return ppca_data(400, D, L, noise=0.5, seed=11)


@pytest.fixture(scope="module")
def ml(data):
    return lg.ppca_max_likelihood(data, L)


def ppca_vae(ml, seed=0, exact_posterior=False):
    vae = seeded(lambda: VAE(lg.linear_config(D, L)), seed).to(F64)
    lg.set_decoder(vae, ml.mean, ml.weight, ml.noise_var)
    if exact_posterior:
        lg.set_exact_posterior(vae)
    return vae


def test_exact_marginal_matches_the_gaussian_and_the_ml_closed_form(data, ml):
    vae = ppca_vae(ml)
    cov = ml.weight @ ml.weight.T + ml.noise_var * torch.eye(D, dtype=F64)
    reference = torch.distributions.MultivariateNormal(ml.mean, cov).log_prob(data)
    exact = vae.exact_log_likelihood(data)
    assert torch.allclose(exact, reference, atol=1e-10)
    assert exact.mean().item() == pytest.approx(ml.log_likelihood, abs=1e-10)  # Tipping & Bishop eq. 15 at the MLE
    # the MLE is a maximum: moving any parameter lowers the mean log-likelihood
    for dw, dv in ((0.05, 0.0), (0.0, 0.05), (-0.05, 0.0)):
        lg.set_decoder(vae, ml.mean, ml.weight * (1 + dw), ml.noise_var * (1 + dv))
        if dw or dv:
            assert vae.exact_log_likelihood(data).mean().item() < ml.log_likelihood - 1e-5


def _mc_elbo(vae, x, n_samples, seed):
    """Per example: the mean and s.e. of n_samples one-draw ELBOs (analytic KL)."""
    reps = vae.elbo(x.repeat(n_samples, 1), generator=seed).elbo.detach().reshape(n_samples, len(x))
    return reps.mean(0), reps.std(0) / math.sqrt(n_samples)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_elbo_is_below_log_p_for_every_x_by_the_posterior_kl(data, ml, seed):
    vae = ppca_vae(ml, seed=seed)  # a random linear encoder
    x = data[:60]
    log_p = vae.exact_log_likelihood(x)
    gap = lg.posterior_gap(vae, x).detach()  # KL(q(z|x) ‖ p(z|x)) in closed form
    elbo, se = _mc_elbo(vae, x, 3000, seed)
    assert bool((gap > 0).all())
    assert bool((elbo <= log_p + 4 * se).all())  # ELBO ≤ log p(x), every x
    assert bool(((elbo - (log_p - gap)).abs() <= 4.5 * se).all())  # and = log p(x) − KL(q ‖ p(z|x))


def test_with_the_exact_posterior_the_elbo_is_log_p(data, ml):
    vae = ppca_vae(ml, exact_posterior=True)
    x = data[:50]
    log_p = vae.exact_log_likelihood(x)
    assert float(lg.posterior_gap(vae, x).detach().abs().max()) < 1e-10
    for seed in range(3):  # log p(x, z) − log q(z|x) = log p(x) at every z: each single draw is exact
        assert torch.allclose(vae.elbo(x, generator=seed, kl="mc").elbo, log_p, atol=1e-10, rtol=0)
    analytic = vae.elbo(x, generator=0, n_samples=4000).elbo.detach()  # E_q[log p(x|z)] − KL(q ‖ p(z))
    assert torch.allclose(analytic, log_p, atol=0.05)
    assert torch.allclose(vae.iwae_bound(x, k=7, generator=0), log_p, atol=1e-10, rtol=0)


def converges(bound, x, log_p, ks=(1, 10, 100, 1000, 5000), seed=0):
    """The check the IWAE must pass, on d_k(x) = bound_k(x) − log p(x) (paired, so the spread of log p(x) over
    examples cancels): the mean of d_k rises with k (within 3 s.e.), is ≤ 0 (within 3 s.e.), climbs well
    above d_1, and at the largest k every example is within 4 of its own delta-method standard errors of
    log p(x) and the mean within 3 s.e. of 0."""
    ladder = []
    for k in ks:
        d = bound(x, k, seed + k).value - log_p
        ladder.append((d.mean().item(), d.std().item() / math.sqrt(len(d))))
    rises = all(b[0] >= a[0] - 3 * math.hypot(a[1], b[1]) for a, b in zip(ladder, ladder[1:]))
    climbs = ladder[-1][0] > ladder[0][0] + 5 * math.hypot(ladder[0][1], ladder[-1][1])
    below = all(m <= 3 * s for m, s in ladder)
    final = bound(x, ks[-1], seed + 1)
    per_example = bool(((final.value - log_p).abs() <= 4 * final.stderr).all())
    mean_ok = abs(ladder[-1][0]) <= 3 * ladder[-1][1]
    return rises and climbs and below and per_example and mean_ok, ladder


def _poor_encoder(ml):
    """The exact posterior with its variances tripled and means shifted: a proposal that is good but not exact."""
    vae = ppca_vae(ml, exact_posterior=True)
    with torch.no_grad():
        layer = vae.encoder.net[0]
        layer.bias[L:] += math.log(3.0)
        layer.bias[:L] += 0.3
    return vae


def test_iwae_rises_with_k_and_converges_to_log_p_within_its_standard_error(data, ml):
    vae = _poor_encoder(ml)
    x = data[:100]
    log_p = vae.exact_log_likelihood(x)
    ok, ladder = converges(lambda x, k, s: vae.importance_log_likelihood(x, k, generator=s), x, log_p)
    assert ok, ladder
    assert -ladder[0][0] > 1.0  # the ELBO (k = 1) is well below log p: the proposal is poor enough to matter
    assert abs(ladder[-1][0]) < 0.01


def test_negative_control_an_iwae_without_the_log_k_term_fails_the_check(data, ml):
    vae = _poor_encoder(ml)
    x = data[:100]
    log_p = vae.exact_log_likelihood(x)

    def no_log_k(x, k, seed):  # log Σ_i w_i instead of log (1/k) Σ_i w_i
        est = vae.importance_log_likelihood(x, k, generator=seed)
        return est._replace(value=est.value + math.log(k))

    ok, ladder = converges(no_log_k, x, log_p)
    assert not ok, ladder


def test_a_linear_vae_trained_by_the_elbo_reaches_the_ppca_maximum_likelihood():
    x = ppca_data(500, D, L, noise=0.5, seed=0)
    ml = lg.ppca_max_likelihood(x, L)
    vae = seeded(lambda: VAE(lg.linear_config(D, L)), 0).to(F64)
    start = vae.exact_log_likelihood(x).mean().item()
    steps = 2000
    opt = torch.optim.Adam(vae.parameters(), lr=0.05)
    fit(vae, ELBO(), x, opt, TrainConfig(steps=steps, log_every=500, progress=False),
        scheduler=make_scheduler(opt, "cosine", steps))
    reached = vae.exact_log_likelihood(x).mean().item()
    gap = ml.log_likelihood - reached
    assert start < ml.log_likelihood - 1.0  # it had somewhere to go
    assert -1e-9 < gap < 0.01, (ml.log_likelihood, reached)
    # and the ELBO is tight there (Lucas et al. 2019): the diagonal encoder found the exact posterior
    assert float(lg.posterior_gap(vae, x).detach().mean()) < 0.01

"""Gradient estimators agree in expectation, and the closed-form KLs are the Monte Carlo ones.

∇ E_q[f(z)] two ways: the reparameterised path derivative, and the score function E_q[(f(z) − b) ∇ log q].
Both are unbiased, so their means over repeats must agree within a few standard errors; a score-function
estimate that forgets the ∇ log q term (a wrong gradient) must not.
"""

import math

import pytest
import torch
from vae_helpers import F64, seeded

from kakusan.vae import ELBO, VAE, DiagonalGaussian, FactorisedBernoulli, GaussianConfig, MLPConfig, VAEConfig

D, L = 4, 2


@pytest.fixture(scope="module")
def setup():
    config = VAEConfig(data_shape=(D,), n_latent=L, encoder=MLPConfig((8,)), decoder=MLPConfig((8,)),
                       likelihood=GaussianConfig("shared", std=0.7))
    vae = seeded(lambda: VAE(config), 3).to(F64)
    x = torch.randn(16, D, generator=torch.Generator().manual_seed(4), dtype=F64)
    return vae, x


def _grad(vae, loss) -> torch.Tensor:
    vae.zero_grad()
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in vae.parameters()])


def _repeats(vae, x, loss_fn, n_repeats: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean gradient over independent repeats and its standard error, per parameter."""
    g = torch.Generator().manual_seed(seed)
    grads = torch.stack([_grad(vae, loss_fn(vae, x, g)) for _ in range(n_repeats)])
    return grads.mean(0), grads.std(0) / math.sqrt(n_repeats)


def _wrong(vae, x, g):
    """The 'score function' without ∇ log q: z held fixed, so the encoder learns nothing from reconstruction."""
    q = vae.encode(x)
    z = q.sample(32, g).detach()
    return -vae.reconstruction_log_prob(x, z).mean() + q.kl_units().sum(-1).mean()


def test_reparameterised_and_score_function_gradients_agree_in_expectation(setup):
    vae, x = setup
    rep = ELBO(n_samples=32, estimator="reparameterised")
    sf = ELBO(n_samples=32, estimator="score_function")
    mean_r, se_r = _repeats(vae, x, lambda m, b, g: rep(m, b, g).loss, 40, 0)
    mean_s, se_s = _repeats(vae, x, lambda m, b, g: sf(m, b, g).loss, 40, 1)
    z = (mean_r - mean_s) / torch.sqrt(se_r**2 + se_s**2 + 1e-30)
    assert float(z.abs().max()) < 4.5, z
    encoder = slice(0, sum(p.numel() for p in vae.encoder.parameters()))
    assert float(mean_r[encoder].abs().max()) > 10 * float(se_r[encoder].max())  # the gradient is not ~0
    # negative control: forgetting ∇ log q biases the encoder's gradient far beyond the noise
    mean_w, se_w = _repeats(vae, x, _wrong, 40, 2)
    z_wrong = (mean_r - mean_w) / torch.sqrt(se_r**2 + se_w**2 + 1e-30)
    assert float(z_wrong.abs().max()) > 10


def test_gaussian_kl_closed_form_matches_torch_and_monte_carlo():
    g = torch.Generator().manual_seed(5)
    q = DiagonalGaussian(torch.randn(6, 3, generator=g, dtype=F64), torch.randn(6, 3, generator=g, dtype=F64))
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(q.mean, torch.exp(0.5 * q.log_var)), torch.distributions.Normal(0.0, 1.0))
    assert torch.allclose(q.kl_units(), reference, atol=1e-12)
    z = q.sample(200_000, g)
    mc = q.log_prob_units(z) - DiagonalGaussian.prior_log_prob_units(z)  # (S, n, L)
    se = mc.std(0) / math.sqrt(len(mc))
    assert bool(((mc.mean(0) - q.kl_units()).abs() <= 4.5 * se).all())


def test_bernoulli_kl_closed_form_matches_enumeration_and_monte_carlo():
    g = torch.Generator().manual_seed(6)
    q = FactorisedBernoulli(2 * torch.randn(5, 3, generator=g, dtype=F64))
    p1 = torch.sigmoid(q.logits)
    enumerated = p1 * torch.log(2 * p1) + (1 - p1) * torch.log(2 * (1 - p1))
    assert torch.allclose(q.kl_units(), enumerated, atol=1e-12)
    z = q.sample(200_000, g)
    mc = q.log_prob_units(z) - FactorisedBernoulli.prior_log_prob_units(z)
    se = mc.std(0) / math.sqrt(len(mc))
    assert bool(((mc.mean(0) - q.kl_units()).abs() <= 4.5 * se + 1e-12).all())


def test_model_elbo_with_analytic_and_monte_carlo_kl_agree(setup):
    vae, x = setup
    analytic = vae.elbo(x, generator=7)
    mc = vae.elbo(x.repeat(20_000, 1), generator=8, kl="mc").kl_units["z"].detach().reshape(20_000, len(x), L)
    se = mc.std(0) / math.sqrt(len(mc))
    assert bool(((mc.mean(0) - analytic.kl_units["z"].detach()).abs() <= 4.5 * se).all())
    assert torch.allclose(analytic.elbo, analytic.reconstruction - analytic.kl["z"])

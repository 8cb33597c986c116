"""A VAE with 8 binary latent units (256 states): its marginal by enumeration is the IWAE limit.

log p(x) = log Σ_z 2^{−8} p(x|z) exactly; the importance-weighted estimate with a learned proposal q(z|x), or
with the uniform proposal q = p(z), must agree with it within its standard error.
"""

import itertools
import math

import torch
from vae_helpers import F64, seeded

from kakusan.train import TrainConfig, fit
from kakusan.vae import ELBO, VAE, MLPConfig, VAEConfig

D, L = 10, 8


def binary_vae(seed: int) -> VAE:
    config = VAEConfig(data_shape=(D,), n_latent=L, encoder=MLPConfig((16,)), decoder=MLPConfig((16,)),
                       latent="bernoulli")
    return seeded(lambda: VAE(config), seed).to(F64)


def sigmoid_belief_data(n: int, seed: int) -> torch.Tensor:
    """x ~ Bernoulli(sigmoid(A z + c)) with 3 hidden binary causes z: data a binary-latent VAE can model."""
    g = torch.Generator().manual_seed(seed)
    A, c = 3 * torch.randn(D, 3, generator=g, dtype=F64), torch.randn(D, generator=g, dtype=F64) - 1
    z = torch.bernoulli(torch.full((n, 3), 0.5, dtype=F64), generator=g)
    return torch.bernoulli(torch.sigmoid(z @ A.T + c), generator=g)


def test_enumeration_is_the_brute_force_sum():
    vae = binary_vae(0)
    x = sigmoid_belief_data(5, 1)
    by_hand = []
    for xi in x:
        terms = []
        for bits in itertools.product([0.0, 1.0], repeat=L):
            z = torch.tensor(bits, dtype=F64)[None]
            terms.append(vae.reconstruction_log_prob(xi[None], z)[0] - L * math.log(2))
        by_hand.append(torch.logsumexp(torch.stack(terms), 0))
    assert torch.allclose(vae.exact_log_likelihood(x), torch.stack(by_hand).detach(), atol=1e-12)


def _within_stderr(vae, x, k, seed):
    log_p = vae.exact_log_likelihood(x)
    est = vae.importance_log_likelihood(x, k, generator=seed)
    d = est.value - log_p
    per_example = bool((d.abs() <= 4 * est.stderr + 1e-12).all())
    mean_ok = abs(d.mean().item()) <= 3 * d.std().item() / math.sqrt(len(d)) + 1e-6
    return per_example and mean_ok, d


def test_the_iwae_limit_is_the_enumerated_marginal_with_a_learned_proposal():
    x = sigmoid_belief_data(300, 2)
    vae = binary_vae(3)
    opt = torch.optim.Adam(vae.parameters(), lr=0.01)
    start = vae.exact_log_likelihood(x).mean().item()
    fit(vae, ELBO(n_samples=8), x, opt, TrainConfig(steps=300, batch_size=100, progress=False, log_every=100))
    trained = vae.exact_log_likelihood(x).mean().item()
    assert trained > start + 1.0  # the score-function ELBO gradient taught it (log-likelihood, exactly)
    ok, d = _within_stderr(vae, x[:60], 5000, 4)
    assert ok, (d.mean(), d.abs().max())
    exact_elbo = _enumerated_elbo(vae, x[:60])
    assert bool((exact_elbo < vae.exact_log_likelihood(x[:60])).all())  # ELBO < log p for every x, exactly
    reps = vae.elbo(x[:60].repeat(500, 1), generator=5).elbo.detach().reshape(500, 60)  # the model's MC ELBO
    assert bool(((reps.mean(0) - exact_elbo).abs() <= 4.5 * reps.std(0) / math.sqrt(500)).all())


def _enumerated_elbo(vae, x):
    """Σ_z q(z|x) [log p(x|z) + log p(z) − log q(z|x)] over all 2^L states, (n,)."""
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=L)), dtype=F64)[:, None, :]
    z = states.expand(2**L, len(x), L)  # (256, n, L)
    with torch.no_grad():
        log_q = vae.encode(x).log_prob_units(z).sum(-1)
        log_joint = vae.reconstruction_log_prob(x, z) - L * math.log(2)
    return (log_q.exp() * (log_joint - log_q)).sum(0)


def test_the_iwae_limit_is_the_enumerated_marginal_with_the_uniform_proposal():
    vae = binary_vae(6)
    with torch.no_grad():  # q(z|x) = 2^{-L} = p(z): the estimate is the plain Monte Carlo mean of p(x|z)
        vae.encoder.net[-1].weight.zero_()
        vae.encoder.net[-1].bias.zero_()
        vae.decoder.net[0].weight.mul_(4)  # make p(x|z) depend strongly on z
        vae.decoder.net[-1].weight.mul_(6)
    x = sigmoid_belief_data(60, 7)
    ok, d = _within_stderr(vae, x, 5000, 8)
    assert ok, (d.mean(), d.abs().max())
    # and the IWAE bound with a small k is measurably below it (so the check above can tell)
    assert vae.iwae_bound(x, 1, generator=9).mean() < vae.exact_log_likelihood(x).mean() - 0.5

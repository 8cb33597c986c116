"""Ground truth for the hierarchical bounds: a linear-Gaussian 2-layer hierarchy has a closed-form marginal,

    z2 ~ N(0, I),  z1 | z2 ~ N(A z2 + a, D1),  x | z1 ~ N(B z1 + b, D2)  ⇒  x ~ N(B a + b, B (A Aᵀ + D1) Bᵀ + D2).

Float64, D = 6, latents (3, 2), both inference modes. With B = U diag(s) (orthonormal U), D2 = σ² I and A zero
off its diagonal, every posterior conditional is diagonal, so the linear HVAE can hold the exact posterior
(Markov: p(z1|x) p(z2|z1); ladder: p(z2|x) p(z1|z2, x)).
"""

import math

import pytest
import torch
from test_vae_ppca import converges
from vae_helpers import F64, seeded

from kakusan.errors import KakusanError
from kakusan.vae import HVAE, GaussianConfig, HVAEConfig, LinearConfig
from kakusan.vae import linear_hierarchy as lh

D, LATENTS = 6, (3, 2)
MODES = ("markov", "ladder")


def linear_hvae(inference, variance="shared", seed=0):
    config = HVAEConfig((D,), LATENTS, (LinearConfig(), LinearConfig()), likelihood=GaussianConfig(variance),
                        inference=inference)
    return seeded(lambda: HVAE(config), seed).to(F64)


def structured(seed=0):
    """(A, a, D1), (B, b, σ²) with diagonal posterior conditionals (module docstring)."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(D, 3, generator=g, dtype=F64))
    B = U * torch.tensor([1.5, 1.0, 2.0], dtype=F64)
    A = torch.zeros(3, 2, dtype=F64)
    A[0, 0], A[1, 1] = 1.2, 0.7
    a, b = torch.randn(3, generator=g, dtype=F64), torch.randn(D, generator=g, dtype=F64)
    D1 = torch.tensor([0.5, 0.8, 0.4], dtype=F64)
    return (A, a, D1), (B, b, 0.3)


def generic(seed=1):
    """Random (A, a, D1), (B, b, D2 per dimension): correlated posteriors, no diagonal q is exact."""
    g = torch.Generator().manual_seed(seed)
    A, a = torch.randn(3, 2, generator=g, dtype=F64), torch.randn(3, generator=g, dtype=F64)
    D1 = 0.3 + torch.rand(3, generator=g, dtype=F64)
    B, b = torch.randn(D, 3, generator=g, dtype=F64), torch.randn(D, generator=g, dtype=F64)
    D2 = 0.2 + torch.rand(D, generator=g, dtype=F64)
    return (A, a, D1), (B, b, D2)


def closed_form(prior, decoder):
    """The marginal N(B a + b, B (A Aᵀ + D1) Bᵀ + D2), written out independently of the library."""
    (A, a, D1), (B, b, D2) = prior, decoder
    D2 = torch.as_tensor(D2, dtype=F64) * torch.ones(D, dtype=F64)
    return torch.distributions.MultivariateNormal(B @ a + b, B @ (A @ A.T + torch.diag(D1)) @ B.T + torch.diag(D2))


def build(inference, params, variance="shared", seed=0, exact=False):
    vae = linear_hvae(inference, variance, seed)
    lh.set_linear_hierarchy(vae, [params[0]], params[1])
    if exact:
        lh.set_exact_posterior(vae)
    return vae


def _draw(dist, n, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return dist.sample(torch.Size([n]))


@pytest.fixture(scope="module")
def xs():
    return {"structured": _draw(closed_form(*structured()), 100, 5), "generic": _draw(closed_form(*generic()), 60, 6)}


@pytest.mark.parametrize("inference", MODES)
def test_exact_marginal_is_the_closed_form(xs, inference):
    for name, params, variance in (("structured", structured(), "shared"), ("generic", generic(), "per_dim")):
        vae = build(inference, params, variance)
        reference = closed_form(*params).log_prob(xs[name])
        assert torch.allclose(vae.exact_log_likelihood(xs[name]), reference, atol=1e-10, rtol=0), name
    # negative control: the marginal that forgets layer 1's noise D1 is another distribution
    (A, a, D1), dec = structured()
    forgot = closed_form((A, a, 0 * D1), dec).log_prob(xs["structured"])
    assert (forgot - closed_form(*structured()).log_prob(xs["structured"])).abs().max() > 0.1


@pytest.mark.parametrize("inference", MODES)
def test_with_the_exact_posterior_every_draw_gives_log_p(xs, inference):
    vae = build(inference, structured(), exact=True)
    x = xs["structured"]
    log_p = vae.exact_log_likelihood(x)
    for seed in range(3):  # log p(x, z) − log q(z|x) = log p(x) at every z
        assert torch.allclose(vae.elbo(x, generator=seed, kl="mc").elbo, log_p, atol=1e-10, rtol=0)
    assert torch.allclose(vae.iwae_bound(x, k=7, generator=0), log_p, atol=1e-10, rtol=0)
    analytic, se = _elbo_draws(vae, x, 2000, 0)  # E_q[log p(x|z1)] − Σ_l KL_l, analytic KLs
    assert bool(((analytic - log_p).abs() <= 4.5 * se).all()) and float(se.max()) < 0.05
    # and the exact posterior is what the ladder's merge or the Markov chain produce: perturbing it costs nats
    with torch.no_grad():
        vae.up_heads[1].mean.bias += 0.5
    assert bool((vae.elbo(x, generator=0, kl="mc", n_samples=200).elbo < log_p - 1e-3).all())


def test_a_correlated_posterior_is_refused_in_one_line():
    vae = build("markov", generic(), "per_dim")
    with pytest.raises(KakusanError, match="correlated") as e:
        lh.set_exact_posterior(vae)
    assert "\n" not in str(e.value)


def _elbo_draws(vae, x, n_samples, seed, drop=None):
    """Per example: the mean and s.e. of n_samples one-draw ELBOs (analytic KL), optionally forgetting a layer's KL."""
    terms = vae.elbo(x.repeat(n_samples, 1), generator=seed)
    value = terms.elbo if drop is None else terms.elbo + terms.kl[drop]
    reps = value.detach().reshape(n_samples, len(x))
    return reps.mean(0), reps.std(0) / math.sqrt(n_samples)


def _near_exact(inference):
    vae = build(inference, structured(), exact=True)
    with torch.no_grad():
        for head in vae.up_heads:
            head.mean.bias += 0.2
            head.log_var += math.log(1.5)
    return vae


@pytest.mark.parametrize("inference", MODES)
def test_elbo_is_below_log_p_for_every_x(xs, inference):
    for name, vae in (("random encoder, generic model", build(inference, generic(), "per_dim", seed=3)),
                      ("near-exact encoder", _near_exact(inference))):
        x = xs["generic" if name.startswith("random") else "structured"]
        log_p = vae.exact_log_likelihood(x)
        elbo, se = _elbo_draws(vae, x, 2000, 1)
        assert bool((elbo <= log_p + 4 * se).all()), name
        assert (log_p - elbo).mean() > 10 * se.mean(), name  # strictly below: q is not the posterior
    # negative control: an "ELBO" that forgets the top layer's KL rises above log p(x)
    vae = _near_exact(inference)
    x = xs["structured"]
    wrong, se = _elbo_draws(vae, x, 2000, 1, drop="z2")
    assert not bool((wrong <= vae.exact_log_likelihood(x) + 4 * se).all())


def _poor(inference):
    """The exact posterior with doubled variances and shifted means: good but not exact."""
    vae = build(inference, structured(), exact=True)
    with torch.no_grad():
        for head in vae.up_heads:
            head.mean.bias += 0.3
            head.log_var += math.log(2.0)
    return vae


@pytest.mark.parametrize("inference", MODES)
def test_iwae_rises_with_k_and_converges_to_log_p_within_its_standard_error(xs, inference):
    vae = _poor(inference)
    x = xs["structured"]
    log_p = vae.exact_log_likelihood(x)
    ok, ladder = converges(lambda x, k, s: vae.importance_log_likelihood(x, k, generator=s), x, log_p)
    assert ok, ladder
    assert -ladder[0][0] > 1.0  # the ELBO (k = 1) is well below log p
    assert abs(ladder[-1][0]) < 0.02
    # negative control: the same check against a marginal with half of layer 1's noise D1 fails
    (A, a, D1), dec = structured()
    wrong = closed_form((A, a, 0.5 * D1), dec).log_prob(x)
    ok, ladder = converges(lambda x, k, s: vae.importance_log_likelihood(x, k, generator=s), x, wrong)
    assert not ok, ladder

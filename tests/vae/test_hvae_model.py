"""The HVAE contract: VAE-compatible methods and shapes, the per-layer KL (analytic vs Monte Carlo), the
precision-weighted merge, and one-line errors."""

import math

import pytest
import torch
from vae_helpers import F64, seeded

from kakusan.errors import DataError, KakusanError
from kakusan.vae import (ELBO, HVAE, IWAE, ConvConfig, GaussianConfig, HVAEConfig, LinearConfig, LogisticConfig,
                         MLPConfig)
from kakusan.vae import linear_hierarchy as lh
from kakusan.vae.latents import DiagonalGaussian
from kakusan.vae.ladder import gaussian_kl_units, merge

MODES = ("markov", "ladder")


def binary(n, seed=0, shape=(8, 8)):
    return torch.bernoulli(torch.full((n, *shape), 0.3), generator=torch.Generator().manual_seed(seed))


def small(inference, seed=0, **kw):
    kw.setdefault("hidden", (32, 16))
    return seeded(lambda: HVAE(HVAEConfig((8, 8), kw.pop("latents", (6, 3)), inference=inference, **kw)), seed)


@pytest.mark.parametrize("inference", MODES)
def test_the_vae_contract_holds(inference):
    x = binary(5)
    for kw in ({}, {"latents": (5, 4, 3), "hidden": (32, MLPConfig((16,), "relu"), 8)},
               {"hidden": (ConvConfig((4, 8), hidden=16), 16)}, {"n_classes": 3}):
        vae = small(inference, **kw)
        cond = torch.tensor([0, 1, 2, 0, 1]) if kw.get("n_classes") else None
        terms = vae.elbo(x, cond, generator=0, n_samples=3)
        assert set(terms.kl_units) == set(vae.groups) == {f"z{i + 1}" for i in range(len(vae.latents))}
        assert all(terms.kl_units[g].shape == (5, n) for g, n in zip(vae.groups, vae.latents))
        assert terms.elbo.shape == (5,) and terms.elbo.requires_grad
        assert {f"kl_{g}" for g in vae.groups} <= set(terms.metrics())
        assert vae.log_weights(x, 4, cond, generator=0).shape == (4, 5)
        bound = vae.iwae_bound(x, 50, cond, generator=0, chunk=7)
        assert bound.shape == (5,) and bound.dtype == torch.float64
        nll = vae.estimate_nll(x, k=20, cond=cond, generator=0, batch_size=2)
        assert nll.unit == "nats" and math.isfinite(nll.value) and nll.stderr > 0
        labels = None if cond is None else cond[:2]
        assert vae.sample(2, generator=0, labels=labels).shape == (2, 8, 8)
        assert torch.equal(vae.sample(2, generator=1, labels=labels), vae.sample(2, generator=1, labels=labels))
        assert vae.reconstruct(x, cond).shape == (5, 8, 8) and vae.image_shape == (8, 8)
        q = vae.encode(x, cond)
        assert [q[g].mean.shape for g in vae.groups] == [(5, n) for n in vae.latents]
        assert vae.decode(q["z1"].mean, cond).shape == (5, 8, 8)
        assert not hasattr(vae, "log_prob")  # bounds only
        # same seed, same draws; the IWAE with k = 1 is the one-draw ELBO with Monte Carlo KL
        a, b = vae.elbo(x, cond, generator=4, kl="mc").elbo, vae.log_weights(x, 1, cond, generator=4)[0]
        assert torch.allclose(a, b, atol=1e-5, rtol=0)
        assert torch.equal(vae.elbo(x, cond, generator=4).elbo, vae.elbo(x, cond, generator=4).elbo)


@pytest.mark.parametrize("inference", MODES)
def test_the_training_objectives_take_an_hvae(inference):
    vae = small(inference)
    x = binary(30)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    terms = vae.elbo(x, generator=g())
    out = ELBO(beta=2.0, free_bits=0.1)(vae, x, g())
    kl = sum(u.detach().mean(0).clamp(min=0.1).sum() for u in terms.kl_units.values())
    assert out.loss.item() == pytest.approx((-terms.reconstruction.mean() + 2.0 * kl).item(), rel=1e-6)
    assert {"kl_z1", "kl_z2", "elbo"} <= set(out.metrics)
    iwae = IWAE(k=5)(vae, x, g())
    iwae.loss.backward()
    assert all(p.grad is not None for p in vae.parameters() if p.requires_grad)
    assert iwae.loss.item() == pytest.approx(-vae.iwae_bound(x, 5, generator=g()).mean().item(), rel=1e-5)


def test_the_merge_is_the_normalised_product_of_the_two_gaussians():
    g = torch.Generator().manual_seed(0)
    a = DiagonalGaussian(torch.randn(4, 3, generator=g, dtype=F64), torch.randn(4, 3, generator=g, dtype=F64))
    b = DiagonalGaussian(torch.randn(4, 3, generator=g, dtype=F64), torch.randn(4, 3, generator=g, dtype=F64))
    m = merge(a, b)
    prec_a, prec_b = torch.exp(-a.log_var), torch.exp(-b.log_var)
    assert torch.allclose(torch.exp(m.log_var), 1 / (prec_a + prec_b), rtol=1e-12)
    assert torch.allclose(m.mean, (a.mean * prec_a + b.mean * prec_b) / (prec_a + prec_b), rtol=1e-12)
    z = torch.randn(5, 4, 3, generator=g, dtype=F64)  # log N_a + log N_b − log N_m is constant in z
    diff = a.log_prob_units(z) + b.log_prob_units(z) - m.log_prob_units(z)
    assert torch.allclose(diff, diff[:1].expand_as(diff), atol=1e-12)
    tiny = merge(DiagonalGaussian(a.mean, a.log_var - 200), b)  # a precise estimate wins, without overflow
    assert torch.allclose(tiny.mean, a.mean) and bool(torch.isfinite(tiny.log_var).all())


def test_the_gaussian_kl_is_torchs():
    g = torch.Generator().manual_seed(1)
    q = DiagonalGaussian(torch.randn(6, 2, generator=g, dtype=F64), torch.randn(6, 2, generator=g, dtype=F64))
    p = DiagonalGaussian(torch.randn(6, 2, generator=g, dtype=F64), torch.randn(6, 2, generator=g, dtype=F64))
    N = torch.distributions.Normal
    ref = torch.distributions.kl_divergence(N(q.mean, torch.exp(0.5 * q.log_var)),
                                            N(p.mean, torch.exp(0.5 * p.log_var)))
    assert torch.allclose(gaussian_kl_units(q, p), ref, atol=1e-12)


def _kl_draws(vae, x, kl, n_samples, seed):
    """{group: (n_samples, n)} the per-draw KL of each layer."""
    terms = vae.elbo(x.repeat(n_samples, 1, 1), generator=seed, kl=kl)
    return {g: v.detach().reshape(n_samples, len(x)) for g, v in terms.kl.items()}


@pytest.mark.parametrize("inference", MODES)
def test_analytic_and_monte_carlo_kl_per_layer_agree_within_their_standard_error(inference):
    vae = small(inference, seed=2, activation="tanh").to(F64)  # bounded features: moderate log-variances
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # move off the initialisation, where q is close to p and every KL small
        for p in vae.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=F64))
    x = binary(10, seed=1).to(F64)
    S = 3000
    analytic, mc = _kl_draws(vae, x, "analytic", S, 1), _kl_draws(vae, x, "mc", S, 2)
    analytic_layers = vae.groups if inference == "ladder" else vae.groups[-1:]
    for g in vae.groups:
        d = analytic[g].mean(0) - mc[g].mean(0)
        se = torch.sqrt(analytic[g].var(0) / S + mc[g].var(0) / S)
        assert bool((d.abs() <= 4 * se).all()), (g, d, se)
        assert float(mc[g].mean()) > 0.05  # a non-trivial KL to compare
        if g in analytic_layers:  # the closed form removes the Monte Carlo noise of q's own log density
            assert float(analytic[g].var(0).mean()) < float(mc[g].var(0).mean()), g
    # negative control: the KL with its arguments swapped, KL(p ‖ q), is not the ELBO's term
    zs, qs, ps = vae._infer(vae._flat(x.repeat(S, 1, 1)), None, 1, torch.Generator().manual_seed(1))
    top = len(vae.groups) - 1
    p_top = DiagonalGaussian(torch.zeros_like(qs[top].mean), torch.zeros_like(qs[top].log_var))
    swapped = gaussian_kl_units(p_top, qs[top]).sum(-1).reshape(S, len(x)).detach()
    d = swapped.mean(0) - mc[vae.groups[top]].mean(0)
    se = torch.sqrt(swapped.var(0) / S + mc[vae.groups[top]].var(0) / S)
    assert not bool((d.abs() <= 4 * se).all())


def test_errors_are_one_line():
    x = binary(3)
    cases = [
        (KakusanError, "at least 2 stochastic layers", lambda: HVAE(HVAEConfig((8, 8), (4,), (16,)))),
        (KakusanError, "one net per stochastic layer", lambda: HVAE(HVAEConfig((8, 8), (4, 2), (16,)))),
        (KakusanError, "only the first layer", lambda: HVAE(HVAEConfig((8, 8), (4, 2), (16, ConvConfig())))),
        (KakusanError, "unknown inference", lambda: HVAE(HVAEConfig((8, 8), (4, 2), (16, 8), inference="vdvae"))),
        (KakusanError, "unknown activation", lambda: HVAE(HVAEConfig((8, 8), (4, 2), (16, 8), activation="gelu2"))),
        (DataError, "binary 0/1 data", lambda: small("ladder").elbo(x * 0.5)),
        (DataError, "must have shape", lambda: small("markov").iwae_bound(x[:, :4], 5)),
        (KakusanError, "needs cond", lambda: small("ladder", n_classes=2).elbo(x)),
        (KakusanError, "linear-Gaussian HVAE", lambda: small("ladder").exact_log_likelihood(x)),
        (DataError, "z_1 must have shape", lambda: small("markov").decode(torch.zeros(2, 3))),
    ]
    for kind, match, call in cases:
        with pytest.raises(kind, match=match) as e:
            call()
        assert "\n" not in str(e.value), match


def test_gaussian_and_logistic_likelihoods_and_a_linear_hierarchy_run():
    for lik, x in ((GaussianConfig("decoder"), torch.randn(4, 8, 8)),
                   (LogisticConfig(5), torch.randint(0, 5, (4, 8, 8)) / 4)):
        vae = small("ladder", likelihood=lik)
        assert math.isfinite(vae.elbo(x, generator=0).elbo.sum().item())
        assert vae.estimate_nll(x, k=4, generator=0).unit == ("nats" if isinstance(lik, GaussianConfig) else
                                                               "bits/dim")
    lin = seeded(lambda: HVAE(HVAEConfig((8,), (3, 2), (LinearConfig(), LinearConfig()),
                                         likelihood=GaussianConfig("per_dim"), inference="markov", n_classes=2)),
                 0).to(F64)
    x, y = torch.randn(6, 8, dtype=F64), torch.tensor([0, 1] * 3)
    exact = lin.exact_log_likelihood(x, y)  # a conditional linear hierarchy: the label shifts every mean
    A, a, V1, d = lh.prior_parts(lin, 1)
    B, b, V, psi = lh.decoder_parts(lin)
    c = torch.nn.functional.one_hot(y, 2).to(F64)
    cov = B @ (A @ A.T + torch.diag(d)) @ B.T + torch.diag(psi)
    reference = torch.distributions.MultivariateNormal((a + c @ V1.T) @ B.T + b + c @ V.T, cov).log_prob(x)
    assert torch.allclose(exact, reference.detach(), atol=1e-10)
    est = lin.importance_log_likelihood(x, 5000, y, generator=0)
    assert bool(((est.value - exact).abs() <= 4 * est.stderr + 1e-3).all())
    assert not torch.allclose(exact, lin.exact_log_likelihood(x, 1 - y))

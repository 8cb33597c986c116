"""The local autoregressive Bernoulli decoder: normalised for every z, causal in raster order, sampled exactly.

On 3×3 binary images every one of the 512 images can be enumerated, so Σ_x p(x|z) = 1 is checked to float64
rounding (and fails when the mask lets a pixel see itself: the negative control); the pixel-by-pixel sampler is
checked against the parallel pass at the drawn image, and its frequencies against p(x|z) on 2×2 images.
"""

import itertools
import math

import pytest
import torch
from vae_helpers import F64, seeded

from kakusan.errors import KakusanError
from kakusan.vae import (
    HVAE,
    VAE,
    AutoregressiveBernoulli,
    AutoregressiveBernoulliConfig,
    BernoulliLikelihood,
    BernoulliConfig,
    HVAEConfig,
    MLPConfig,
    VAEConfig,
)


def _random(kernel: int, channels: int, image=(3, 3), seed: int = 0) -> AutoregressiveBernoulli:
    """A decoder with every parameter (the zero-initialised ones too) drawn N(0, 1)."""
    lik = AutoregressiveBernoulli(AutoregressiveBernoulliConfig(kernel, channels), math.prod(image), image).to(F64)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lik.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
    return lik


def _all_images(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)), dtype=F64)


@pytest.mark.parametrize("kernel,channels", [(3, 0), (3, 4), (5, 2)])
def test_p_x_given_z_sums_to_one_over_all_images(kernel, channels):
    lik = _random(kernel, channels)
    ell = torch.randn(4, 2, 1, 9, generator=torch.Generator().manual_seed(1), dtype=F64) * 2  # (k, n, 1, D)
    x = _all_images(9)[:, None, None, :]  # (512, 1, 1, D) against ℓ (4, 2, 1, D)
    log_p = lik.log_prob(ell, x)  # (512, 4, 2)
    assert torch.allclose(torch.logsumexp(log_p, 0), torch.zeros(4, 2, dtype=F64), atol=1e-12)


def test_a_mask_that_lets_a_pixel_see_itself_is_not_normalised():
    lik = _random(3, 4)
    lik.mask[..., 1, 1] = 1  # the centre joins the window: p(x_i | x_≤i) is no longer a distribution over x
    ell = torch.zeros(1, 1, 9, dtype=F64)
    total = torch.logsumexp(lik.log_prob(ell, _all_images(9)[:, None, :]), 0).detach()
    assert abs(float(total)) > 1e-3


@pytest.mark.parametrize("channels", [0, 3])
def test_each_logit_depends_only_on_earlier_pixels_inside_the_window(channels):
    H, W, K = 4, 5, 3
    lik = _random(K, channels, (H, W))
    ell = torch.randn(1, 1, H * W, dtype=F64)
    x = torch.bernoulli(torch.full((H * W,), 0.5, dtype=F64), generator=torch.Generator().manual_seed(2))
    jac = torch.autograd.functional.jacobian(lambda v: lik.logits(ell, v[None])[0], x)  # (D, D): ∂a_i/∂x_j
    for i in range(H * W):
        for j in range(H * W):
            (ri, ci), (rj, cj) = divmod(i, W), divmod(j, W)
            before = rj < ri or (rj == ri and cj < ci)
            inside = abs(ri - rj) <= K // 2 and abs(ci - cj) <= K // 2
            if not (before and inside):
                assert jac[i, j] == 0, (i, j)
    assert jac.abs().sum() > 0  # the window is used


@pytest.mark.parametrize("channels", [0, 4])
def test_the_sampler_draws_with_the_parallel_passs_conditionals(channels):
    lik = _random(5, channels, (6, 7))
    ell = torch.randn(8, 1, 42, dtype=F64)
    x, p = lik.sample(ell, torch.Generator().manual_seed(3))
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(torch.sigmoid(lik.logits(ell, x)), p, atol=1e-12)
    assert torch.equal(lik.mean(ell, torch.Generator().manual_seed(3)), p)  # the "mean" is p along that draw


def test_sample_frequencies_match_p_x_given_z():
    lik = _random(3, 2, (2, 2), seed=4)
    n = 40_000
    ell = torch.tensor([0.5, -1.0, 0.3, 1.2], dtype=F64).expand(n, 1, 4)
    x, _ = lik.sample(ell, torch.Generator().manual_seed(5))
    images = _all_images(4)
    counts = (x[:, None, :] == images[None]).all(-1).sum(0).to(F64)  # (16,)
    p = lik.log_prob(ell[:1], images).exp().detach()  # (16,)
    assert abs(float(p.sum()) - 1) < 1e-12
    z = (counts - n * p) / torch.sqrt(n * p * (1 - p))
    assert float(z.abs().max()) < 4.5, z
    chi2 = float((z**2).sum())
    assert chi2 < 40  # 15 degrees of freedom: P(χ² > 40) ≈ 5e-4


def test_it_starts_as_the_factorised_bernoulli():
    for channels in (0, 8):
        lik = AutoregressiveBernoulli(AutoregressiveBernoulliConfig(5, channels), 36, (6, 6))
        ell = torch.randn(3, 2, 1, 36)
        x = torch.bernoulli(torch.full((2, 36), 0.4))
        assert torch.allclose(lik.log_prob(ell, x), BernoulliLikelihood(BernoulliConfig(), 36).log_prob(ell, x))


def test_a_binary_latent_vae_with_the_decoder_is_a_normalised_model():
    """Σ_x Σ_z p(z) p(x|z) = 1 over all 2^9 images of a 3×3 VAE with 4 binary latents, and the IWAE limit of its
    trained proposal is the enumerated marginal."""
    config = VAEConfig(data_shape=(3, 3), n_latent=4, encoder=MLPConfig((8,)), decoder=MLPConfig((8,)),
                       likelihood=AutoregressiveBernoulliConfig(3, 2), latent="bernoulli")
    vae = seeded(lambda: VAE(config), 0).to(F64)
    with torch.no_grad():
        vae.likelihood.out.normal_()
    images = _all_images(9).reshape(-1, 3, 3)
    assert abs(float(torch.logsumexp(vae.exact_log_likelihood(images), 0))) < 1e-12
    x = images[[3, 100, 257, 511]]
    est = vae.importance_log_likelihood(x, 4000, generator=6)
    assert bool(((est.value - vae.exact_log_likelihood(x)).abs() <= 4 * est.stderr + 1e-9).all())


@pytest.mark.parametrize("inference", ["markov", "ladder"])
def test_an_hvae_takes_the_decoder(inference):
    config = HVAEConfig(data_shape=(8, 8), latents=(6, 3), hidden=(16, 8), inference=inference,
                        likelihood=AutoregressiveBernoulliConfig(3, 4))
    model = seeded(lambda: HVAE(config), 1)
    x = torch.bernoulli(torch.full((5, 8, 8), 0.3), generator=torch.Generator().manual_seed(7))
    terms = model.elbo(x, generator=8)
    bound = model.iwae_bound(x, 20, generator=9)
    assert terms.elbo.shape == bound.shape == (5,) and bool((bound > terms.elbo.double().mean() - 50).all())
    s = model.sample(4, generator=10)
    assert s.shape == (4, 8, 8) and 0 <= float(s.min()) and float(s.max()) <= 1
    assert torch.equal(s, model.sample(4, generator=10))  # the pixels' draws come from the generator
    assert model.reconstruct(x, generator=11).shape == (5, 8, 8)


def test_bad_configurations_are_one_line_errors():
    with pytest.raises(KakusanError, match="single-channel images"):
        VAE(VAEConfig(data_shape=(10,), n_latent=2, likelihood=AutoregressiveBernoulliConfig()))
    with pytest.raises(KakusanError, match="odd size"):
        AutoregressiveBernoulli(AutoregressiveBernoulliConfig(4, 2), 16, (4, 4))
    with pytest.raises(KakusanError, match="channels"):
        AutoregressiveBernoulli(AutoregressiveBernoulliConfig(3, -1), 16, (4, 4))

"""The learned decoder p_θ(x_0 | x_1): a fresh head is the fixed decoder, any head is a distribution over the grid,
the fixed decoder's floor is the best a clipped mean reaches, and fitting the head on 8-bit data goes below that
floor while leaving every other VLB term as it was."""

import math

import pytest
import torch

from kakusan.diffusion.decoder import (DecoderConfig, DecoderLoss, decoder_term, fixed_decoder_floor,
                                       with_decoder)
from kakusan.diffusion.model import Diffusion, DiffusionConfig
from kakusan.diffusion.nets import MLPDenoiserConfig
from kakusan.diffusion.objectives import DiffusionLoss
from kakusan.diffusion.process import Schedule, ScheduleConfig
from kakusan.diffusion.unet import UNetConfig
from kakusan.diffusion.vlb import (discretised_gaussian_log_prob, term_from_prediction, vlb_estimate, vlb_exact,
                                 vlb_term)
from kakusan.errors import KakusanError
from kakusan.train import TrainConfig, fit

f64 = torch.float64


def blobs(n: int, seed: int) -> torch.Tensor:
    """8-bit 8×8 images in [0, 1] like MNIST's: mostly 0, a 3×3 blob of random grey levels at a random place."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 8, 8)
    for i in range(n):
        r, c = (int(v) for v in torch.randint(0, 6, (2,), generator=g))
        x[i, r:r + 3, c:c + 3] = torch.randint(60, 256, (3, 3), generator=g) / 255
    return x


def unet_model(seed: int = 0, **kw) -> Diffusion:
    torch.manual_seed(seed)
    unet = UNetConfig(channels=(16, 32), attention=(False, False), groups=4, time_dim=32)
    return Diffusion(DiffusionConfig((8, 8), ScheduleConfig("cosine", 200), "eps", unet, levels=256, shift=0.5,
                                     scale=0.5, **kw))


def test_a_fresh_head_is_the_fixed_decoder_and_leaves_the_other_terms_alone():
    model = unet_model()
    learned = with_decoder(model)
    assert learned.config.decoder == DecoderConfig() and model.config.decoder is None
    x0 = model.to_model(blobs(16, 1))
    for t in (1, 2, 50, 200):
        a = vlb_term(model, x0, t, generator=3, clip_x0=True)
        b = vlb_term(learned, x0, t, generator=3, clip_x0=True)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-9)
    with pytest.raises(KakusanError, match="learned decoder already"):
        with_decoder(learned)


def test_any_head_is_a_distribution_over_the_256_values():
    """D = 1, x_1 and x̂_0 held fixed: the masses of the 256 grid values sum to one whatever the head's weights."""
    torch.manual_seed(0)
    model = Diffusion(DiffusionConfig((1,), ScheduleConfig("cosine", 100), "eps", MLPDenoiserConfig(hidden=16, depth=1),
                                      levels=256, shift=0.5, scale=0.5, decoder=DecoderConfig(width=8, depth=2)))
    with torch.no_grad():
        for p in model.decoder_head.parameters():
            p.normal_(0, 2.0)  # far from the fresh head, which is the fixed decoder
    grid = torch.linspace(-1, 1, 256, dtype=f64)[:, None]
    for x1, x0_hat in ((0.3, 0.29), (-1.01, -1.0), (0.9999, 1.0), (0.0, -0.5)):
        xt = torch.full((256, 1), x1, dtype=f64)
        xh = torch.full((256, 1), x0_hat, dtype=f64)
        with torch.no_grad():
            mean, log_var = model.decoder_params(xt[:1], xh[:1])
            terms = term_from_prediction(model, grid, xt.float(), 1, xh.float())
        assert float(log_var) != pytest.approx(math.log(float(model.schedule.betas[0])))
        assert float(mean) != pytest.approx(x0_hat)
        assert float(torch.logsumexp(-terms, 0).exp()) == pytest.approx(1.0, abs=1e-9)


def test_the_floor_is_the_fixed_decoders_best_with_a_clipped_mean():
    s = Schedule("cosine", 1000)
    x0 = torch.round(torch.rand(50, 30, dtype=f64, generator=torch.Generator().manual_seed(0)) ** 3 * 255) / 255 * 2 - 1
    x0[:, :10] = -1.0  # the grid's ends
    x0[:, 10:12] = 1.0
    floor = fixed_decoder_floor(x0, s)
    log_var = torch.full_like(x0, math.log(float(s.betas[0])))
    at_truth = -discretised_gaussian_log_prob(x0, x0, log_var).sum(1)
    torch.testing.assert_close(floor, at_truth, rtol=1e-9, atol=1e-9)
    g = torch.Generator().manual_seed(1)
    for _ in range(20):  # no clipped mean does better, pixel by pixel
        mean = (x0 + 0.02 * torch.randn(x0.shape, generator=g, dtype=f64)).clamp(-1, 1)
        assert bool((-discretised_gaussian_log_prob(x0, mean, log_var).sum(1) >= floor - 1e-9).all())
    bits = [float(fixed_decoder_floor(torch.tensor([[v]], dtype=f64), s)) / math.log(2) for v in (-1.0, 0.0)]
    assert bits == pytest.approx([0.4557, 1.1254], abs=1e-3)  # the docs' 0.46 (ends) and 1.13 (inside) bits


@pytest.fixture(scope="module")
def trained():
    """A small UNet trained briefly on the blobs, then its decoder fitted (the denoiser frozen)."""
    torch.set_num_threads(1)
    x = blobs(512, 0)
    model = unet_model()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    fit(model, DiffusionLoss("simple"), x, opt, TrainConfig(steps=150, batch_size=64, seed=0, progress=False))
    learned = with_decoder(model)
    learned.net.requires_grad_(False)
    before = {k: v.clone() for k, v in learned.net.state_dict().items()}
    opt = torch.optim.Adam(learned.parameters(), lr=3e-3)
    fit(learned, DecoderLoss(0.0), x, opt, TrainConfig(steps=150, batch_size=64, seed=1, progress=False))
    return model.eval(), learned.eval(), before


def test_the_fitted_decoder_goes_below_the_fixed_floor(trained):
    model, learned, before = trained
    for k, v in learned.net.state_dict().items():
        assert torch.equal(v, before[k]), k  # the denoiser did not move
    x0 = model.to_model(blobs(256, 99))  # held out
    bpd = 64 * math.log(2)
    with torch.no_grad():
        fixed = decoder_term(model, x0, generator=5).mean() / bpd
        fitted = decoder_term(learned, x0, generator=5).mean() / bpd
    floor = fixed_decoder_floor(x0, model.schedule).mean() / bpd
    assert float(fixed) >= float(floor) - 1e-9  # the fixed decoder cannot beat its floor
    assert float(fitted) < 0.7 * float(floor), (float(fixed), float(floor), float(fitted))  # 0.44 against 0.97


def test_only_the_decoder_term_of_the_vlb_changes(trained):
    model, learned, _ = trained
    x = blobs(64, 7)
    a = vlb_estimate(model, x, generator=11, n_t=20)
    b = vlb_estimate(learned, x, generator=11, n_t=20)
    x0 = model.to_model(x)
    g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    eps = torch.randn(x0.shape, generator=g1)  # vlb_estimate's first draw is the decoder's ε
    assert torch.equal(eps, torch.randn(x0.shape, generator=g2))
    with torch.no_grad():
        dl0 = decoder_term(learned, x0, eps=eps) - decoder_term(model, x0, eps=eps)
    torch.testing.assert_close(b.values - a.values, dl0, rtol=1e-9, atol=1e-6)
    assert float(dl0.mean()) < 0


def test_the_decoder_loss_needs_a_decoder():
    model = unet_model()
    with pytest.raises(KakusanError, match="with_decoder"):
        DecoderLoss()(model, blobs(4, 0), torch.Generator().manual_seed(0))
    with pytest.raises(KakusanError, match="fixed"):
        model.decoder_params(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8))


def test_pixel_posterior_entropy_against_its_limits_and_a_direct_sum():
    from scipy.stats import norm

    from kakusan.diffusion.decoder import pixel_posterior_entropy

    s = Schedule("cosine", 1000)
    grid = torch.linspace(-1, 1, 256, dtype=f64)
    g = torch.Generator().manual_seed(0)
    x0 = grid[torch.randint(100, 104, (400, 3), generator=g)]  # neighbours on the grid: x_1 cannot tell them apart
    x0[:, 1] = -1.0  # a constant dimension keeps no entropy
    x0[:, 2] = grid[torch.randint(0, 2, (400,), generator=g) * 255]  # the two ends: far apart, x_1 tells
    got = pixel_posterior_entropy(x0, s)
    # direct: the first dimension by a fine Riemann sum with scipy's densities, the others are 0
    alpha, sigma = (float(v) for v in s.alpha_sigma(torch.ones(1, dtype=f64)))
    values, counts = torch.unique(x0[:, 0], return_counts=True)
    prior = (counts / 400).numpy()
    y = torch.linspace(alpha * -1 - 8 * sigma, alpha + 8 * sigma, 200001, dtype=f64).numpy()
    joint = prior[None, :] * norm.pdf(y[:, None], alpha * values.numpy()[None, :], sigma)
    py = joint.sum(1, keepdims=True)
    post = joint / py.clip(1e-300)
    h = -(post * torch.tensor(post).clamp(min=1e-300).log().numpy()).sum(1)
    want = float((py[:, 0] * h).sum() * (y[1] - y[0]))
    assert got == pytest.approx(want, rel=1e-6)
    marginal = -float((torch.tensor(prior) * torch.tensor(prior).log()).sum())
    assert 0.3 * marginal < got < marginal  # x_1 (σ_1 ≈ 0.8 grid steps) tells neighbouring values apart only partly


# -- a head that serves the first K steps ------------------------------------------------------------------

def test_a_fresh_several_step_head_is_the_fixed_model_and_the_estimator_shifts_its_strata():
    model = unet_model()
    learned = with_decoder(model, DecoderConfig(steps=4))
    assert learned.head_steps() == 4 and model.head_steps() == 0
    x = blobs(16, 1)
    x0 = model.to_model(x)
    for t in (1, 2, 4, 5, 50):
        a = vlb_term(model, x0, t, generator=3, clip_x0=True)
        b = vlb_term(learned, x0, t, generator=3, clip_x0=True)
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-9)
    # every term once (K + n_t = T): the same draws as the exact sum, so the same numbers
    exact = vlb_exact(learned, x, generator=5)
    est = vlb_estimate(learned, x, generator=5, n_t=200 - 4)
    assert "L_0 … L_3 and L_T exact" in est.estimate.method
    torch.testing.assert_close(est.values, exact.values, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(est.early, exact.terms[:, 1:4].sum(1), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(est.decoder, exact.terms[:, 0], rtol=1e-12, atol=1e-9)
    # the fixed model asked for the same exact steps gets the same estimator
    same = vlb_estimate(model, x, generator=5, n_t=20, exact_steps=4)
    torch.testing.assert_close(same.values, vlb_estimate(learned, x, generator=5, n_t=20).values,
                               rtol=1e-12, atol=1e-9)
    assert vlb_estimate(model, x, generator=5, n_t=20).early is None
    with pytest.raises(KakusanError, match="exceed"):
        with_decoder(model, DecoderConfig(steps=201))
    with pytest.raises(KakusanError, match="serves t = 1 … 4"):
        learned.head_params(x0[:2], torch.tensor([2, 5]), x0[:2])


def test_any_several_step_head_gives_the_gaussian_kl_of_its_own_mean_and_variance():
    """Random head weights: each term t = 2 … K is KL(q(x_{t−1} | x_t, x_0) ‖ N(μ̃(x_t, x̂_0 + σ_t m), β̃_t e^s)),
    computed here from the head's outputs by torch.distributions, independently of term_from_prediction."""
    from kakusan.diffusion.vlb import q_posterior

    model = with_decoder(unet_model(), DecoderConfig(width=8, steps=6))
    with torch.no_grad():
        for p in model.decoder_head.parameters():
            p.normal_(0, 0.3)
    x0 = model.to_model(blobs(8, 2)).double()
    g = torch.Generator().manual_seed(4)
    for t in (2, 3, 6):
        eps = torch.randn(x0.shape, generator=g, dtype=f64)
        alpha, sigma = (float(v) for v in model.schedule.alpha_sigma(torch.tensor([float(t)], dtype=f64)))
        x_t = alpha * x0 + sigma * eps
        x0_hat = (x0 + 0.05 * torch.randn(x0.shape, generator=g, dtype=f64)).clamp(-1, 1)
        with torch.no_grad():
            got = term_from_prediction(model, x0.float(), x_t.float(), t, x0_hat.float())
            mean0, s = model.head_params(x_t.float(), torch.full((8,), t), x0_hat.float())
        assert float(s.abs().max()) > 0.1 and float((mean0 - x0_hat.reshape(8, -1)).abs().max()) > 1e-4
        q_mean, q_var = q_posterior(model.schedule, x0.float(), x_t.float(), t)
        p_mean, _ = q_posterior(model.schedule, mean0.reshape(x0.shape).float(), x_t.float(), t)
        q = torch.distributions.Normal(q_mean.reshape(8, -1), q_var[:, None].sqrt())
        p = torch.distributions.Normal(p_mean.reshape(8, -1), (q_var[:, None] * s.exp()).sqrt())
        want = torch.distributions.kl_divergence(q, p).sum(1)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_a_fitted_several_step_head_lowers_its_terms_and_no_others(trained):
    model, _, _ = trained
    learned = with_decoder(model, DecoderConfig(steps=4))
    learned.net.requires_grad_(False)
    opt = torch.optim.Adam(learned.parameters(), lr=3e-3)
    fit(learned, DecoderLoss(0.0), blobs(512, 0), opt, TrainConfig(steps=150, batch_size=64, seed=2,
                                                                   progress=False))
    learned.eval()
    x0 = model.to_model(blobs(256, 99))  # held out
    with torch.no_grad():
        for t, fraction in ((1, 0.5), (2, 0.75), (4, 0.9)):  # measured 0.30, 0.56, 0.72
            fixed = float(vlb_term(model, x0, t, generator=t, clip_x0=True).mean())
            fitted = float(vlb_term(learned, x0, t, generator=t, clip_x0=True).mean())
            assert fitted < fraction * fixed, (t, fixed, fitted)
        a = vlb_term(model, x0, 5, generator=9, clip_x0=True)
        torch.testing.assert_close(vlb_term(learned, x0, 5, generator=9, clip_x0=True), a)

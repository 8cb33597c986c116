"""The forward process and the Gaussian-mixture ground truth, checked against their formulas in float64.

Schedules: the linear and cosine tables against the published formulas (written out again here, in numpy),
α² + σ² = 1, the log-SNR strictly decreasing and inverted by ``t_from_log_snr``, log ᾱ exact at the integers
and linear between them. Parametrisations: every conversion among ε, x0, v (9 pairs) and to the score equals the
closed form and round-trips; the loss weights ‖ε − ε̂‖² = SNR ‖x0 − x̂0‖² = α² ‖v − v̂‖². Ground truth:
``MixtureTruth.score`` is the gradient of ``log_prob`` (autograd), and ε* = E[ε | x_t] — by quadrature of the
posterior on a 1-D mixture, and by Monte Carlo (the residual ε − ε*(x_t) is orthogonal to functions of x_t,
within 4 standard errors, where a wrong denoiser is not).
"""

import math

import numpy as np
import pytest
import torch

from kakusan.diffusion import MixtureTruth, Schedule, convert, q_sample, to_eps, to_v, to_x0
from kakusan.errors import KakusanError

F64 = torch.float64
KINDS = ("linear", "cosine")


# -- schedules ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1000, 500])
def test_linear_schedule_matches_its_formula(T):
    s = Schedule("linear", T)
    scale = 1000 / T  # Ho et al.'s range is for T = 1000; other T scale it so that ᾱ_T stays near 0
    betas = np.array([scale * (1e-4 + (0.02 - 1e-4) * (i - 1) / (T - 1)) for i in range(1, T + 1)])
    alpha_bar = np.concatenate([[1.0], np.cumprod(1 - betas)])
    assert s.alpha_bar.dtype == F64 and s.alpha_bar.shape == (T + 1,) and s.betas.shape == (T,)
    np.testing.assert_allclose(s.betas.numpy(), betas, rtol=1e-10, atol=0)
    np.testing.assert_allclose(s.alpha_bar.numpy(), alpha_bar, rtol=1e-12, atol=0)
    assert s.alpha_bar[0] == 1 and 0 < s.alpha_bar[-1] < 1e-3


def test_cosine_schedule_matches_its_formula():
    T, c = 1000, 0.008
    s = Schedule("cosine", T)
    f = np.array([math.cos((i / T + c) / (1 + c) * math.pi / 2) ** 2 for i in range(T + 1)])
    betas = np.minimum(1 - f[1:] / f[:-1], 0.999)
    alpha_bar = np.concatenate([[1.0], np.cumprod(1 - betas)])
    np.testing.assert_allclose(s.alpha_bar.numpy(), alpha_bar, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(s.betas.numpy(), betas, rtol=1e-8, atol=0)
    # unclipped, ᾱ_i is f(i)/f(0) itself; the clip acts on the last step only (f(T) = 0 would give β_T = 1)
    np.testing.assert_allclose(s.alpha_bar[:T].numpy(), f[:T] / f[0], rtol=1e-10)
    assert (betas < 0.999).sum() == T - 1 and betas[-1] == 0.999


@pytest.mark.parametrize("kind", KINDS)
def test_variance_preserving_and_log_snr(kind):
    s = Schedule(kind)
    t = torch.cat([torch.linspace(0, s.T, 20001, dtype=F64), torch.rand(1000, dtype=F64) * s.T])
    a, sig = s.alpha_sigma(t)
    assert a.dtype == F64 and sig.dtype == F64
    torch.testing.assert_close(a**2 + sig**2, torch.ones_like(t), rtol=0, atol=1e-14)
    grid = torch.linspace(0, s.T, 20001, dtype=F64)
    lam = s.log_snr(grid)
    assert lam[0] == math.inf and bool(torch.isfinite(lam[1:]).all())
    assert bool((lam[1:] < lam[:-1]).all()), "log-SNR must decrease strictly in t"
    torch.testing.assert_close(s.snr(grid[1:]), (a[1:20001] / sig[1:20001]) ** 2, rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_t_from_log_snr_inverts_log_snr(kind):
    s = Schedule(kind)
    g = torch.Generator().manual_seed(0)
    t = torch.cat([torch.rand(2000, generator=g, dtype=F64) * s.T, torch.arange(1, s.T + 1, dtype=F64),
                   torch.tensor([1e-6, 0.5, s.T - 1e-6], dtype=F64)])
    torch.testing.assert_close(s.t_from_log_snr(s.log_snr(t)), t, rtol=0, atol=1e-7)
    lam = torch.linspace(float(s.log_snr(s.T)), 15.0, 5001, dtype=F64)
    torch.testing.assert_close(s.log_snr(s.t_from_log_snr(lam)), lam, rtol=0, atol=1e-8)
    assert float(s.t_from_log_snr(torch.tensor(math.inf, dtype=F64))) == 0.0
    with pytest.raises(KakusanError, match="below the schedule's end"):
        s.t_from_log_snr(torch.tensor(float(s.log_snr(s.T)) - 1.0, dtype=F64))


@pytest.mark.parametrize("kind", KINDS)
def test_interpolation_exact_at_integers_and_linear_between(kind):
    s = Schedule(kind)
    i = torch.arange(s.T + 1, dtype=F64)
    assert torch.equal(s.log_alpha_bar_at(i), s.log_alpha_bar)
    a, sig = s.alpha_sigma(i)
    torch.testing.assert_close(a**2, s.alpha_bar, rtol=1e-14, atol=0)
    torch.testing.assert_close(sig**2, 1 - s.alpha_bar, rtol=1e-12, atol=1e-15)
    assert a[0] == 1 and sig[0] == 0
    mid = s.log_alpha_bar_at(i[:-1] + 0.25)
    torch.testing.assert_close(mid, 0.75 * s.log_alpha_bar[:-1] + 0.25 * s.log_alpha_bar[1:], rtol=1e-14, atol=0)
    with pytest.raises(KakusanError, match="must lie in"):
        s.alpha_sigma(torch.tensor([s.T + 0.5], dtype=F64))


# -- parametrisations ------------------------------------------------------------------------------------------


def _draw(kind="cosine", n=512, D=3, seed=0):
    """x0, ε, x_t, α, σ (per example) at random times in [1, T] and the exact ε, x0, v, score."""
    s = Schedule(kind)
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(1, s.T + 1, (n,), generator=g).to(F64)
    alpha, sigma = s.alpha_sigma(t)
    x0 = torch.randn(n, D, generator=g, dtype=F64) * 2 + 0.5
    eps = torch.randn(n, D, generator=g, dtype=F64)
    x_t = q_sample(x0, alpha, sigma, eps)
    exact = {"eps": eps, "x0": x0, "v": alpha[:, None] * eps - sigma[:, None] * x0, "score": -eps / sigma[:, None]}
    return s, t, x_t, alpha, sigma, exact


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("src", ["eps", "x0", "v"])
@pytest.mark.parametrize("dst", ["eps", "x0", "v"])
def test_conversions_round_trip(kind, src, dst):
    _, _, x_t, alpha, sigma, exact = _draw(kind)
    out = convert(exact[src], src, dst, x_t, alpha, sigma)
    torch.testing.assert_close(out, exact[dst], rtol=1e-9, atol=1e-9)
    back = convert(out, dst, src, x_t, alpha, sigma)
    torch.testing.assert_close(back, exact[src], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(convert(exact[src], src, "score", x_t, alpha, sigma), exact["score"], rtol=1e-9,
                               atol=1e-9)


def test_conversion_of_an_unknown_target_is_a_one_line_error():
    _, _, x_t, alpha, sigma, exact = _draw()
    for bad in [lambda: convert(exact["eps"], "eps", "noise", x_t, alpha, sigma),
                lambda: to_x0(exact["eps"], "epsilon", x_t, alpha, sigma)]:
        with pytest.raises(KakusanError, match="unknown target") as info:
            bad()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_loss_weights_eps_x0_v(kind):
    s, t, x_t, alpha, sigma, exact = _draw(kind, seed=1)
    g = torch.Generator().manual_seed(2)
    eps_hat = exact["eps"] + 0.3 * torch.randn(exact["eps"].shape, generator=g, dtype=F64)
    x0_hat = to_x0(eps_hat, "eps", x_t, alpha, sigma)
    v_hat = to_v(eps_hat, "eps", x_t, alpha, sigma)
    e_eps = ((exact["eps"] - eps_hat) ** 2).sum(1)
    e_x0 = ((exact["x0"] - x0_hat) ** 2).sum(1)
    e_v = ((exact["v"] - v_hat) ** 2).sum(1)
    torch.testing.assert_close(e_eps, s.snr(t) * e_x0, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(e_eps, alpha**2 * e_v, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(to_eps(v_hat, "v", x_t, alpha, sigma), eps_hat, rtol=1e-9, atol=1e-9)


# -- the ground truth --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("D", [1, 2, 5])
def test_score_is_the_gradient_of_log_prob(kind, D):
    s = Schedule(kind)
    truth = MixtureTruth.example(D, 3, schedule=s, seed=D)
    g = torch.Generator().manual_seed(3)
    for t in [0, 1, 10, 250, 700, 1000]:
        alpha, sigma = (float(v) for v in s.alpha_sigma(torch.tensor(float(t), dtype=F64)))
        x = alpha * truth.sample(200, g) + sigma * torch.randn(200, D, generator=g, dtype=F64)
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(truth.log_prob(x, t).sum(), x)
        torch.testing.assert_close(truth.score(x.detach(), t), grad, rtol=1e-9, atol=1e-9)


def _mixture_1d(schedule):
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=F64)
    means = torch.tensor([[-2.0], [0.5], [3.0]], dtype=F64)
    covs = torch.tensor([0.3, 0.1, 0.6], dtype=F64).reshape(3, 1, 1) ** 2
    return MixtureTruth(weights, means, covs, schedule)


@pytest.mark.parametrize("t", [1, 20, 150, 500, 999])
def test_eps_star_is_the_posterior_mean_by_quadrature(t):
    """E[ε | x_t = x] = (x − α E[x0 | x]) / σ with E[x0 | x] = ∫ x0 q0(x0) N(x; α x0, σ²) dx0 / ∫ …, on a grid."""
    truth = _mixture_1d(Schedule("linear"))
    alpha, sigma = (float(v) for v in truth.schedule.alpha_sigma(torch.tensor(float(t), dtype=F64)))
    grid = torch.linspace(-6.0, 7.0, 400_001, dtype=F64)
    log_q0 = truth.log_prob(grid[:, None], 0.0)
    x = torch.linspace(-3.0, 4.0, 15, dtype=F64) * alpha + torch.linspace(-1.5, 1.5, 15, dtype=F64) * sigma
    log_w = log_q0[None, :] - 0.5 * ((x[:, None] - alpha * grid[None, :]) / sigma) ** 2
    w = torch.softmax(log_w, dim=1)  # posterior weights on the grid (uniform spacing cancels)
    post_x0 = (w * grid[None, :]).sum(1)
    eps_quad = (x - alpha * post_x0) / sigma
    torch.testing.assert_close(truth.eps(x[:, None], t)[:, 0], eps_quad, rtol=0, atol=1e-7)
    torch.testing.assert_close(truth.x0(x[:, None], t)[:, 0], post_x0, rtol=0, atol=1e-7)


def _orthogonality_z(denoiser, truth, t, n=200_000, seed=0) -> torch.Tensor:
    """z-scores of E[(ε − ε̂(x_t)) g(x_t)] for g = 1, x, x², tanh(x), 1{x>0} by Monte Carlo."""
    g = torch.Generator().manual_seed(seed)
    alpha, sigma = (float(v) for v in truth.schedule.alpha_sigma(torch.tensor(float(t), dtype=F64)))
    x0 = truth.sample(n, g)
    eps = torch.randn(n, 1, generator=g, dtype=F64)
    x_t = alpha * x0 + sigma * eps
    r = (eps - denoiser(x_t, t))[:, 0]
    u = x_t[:, 0]
    tests = torch.stack([torch.ones_like(u), u, u**2, torch.tanh(u), (u > 0).to(F64)], 1) * r[:, None]
    return tests.mean(0) / (tests.std(0) / math.sqrt(n))


@pytest.mark.parametrize("t", [50, 150, 400, 700])
def test_eps_star_is_the_conditional_mean_by_monte_carlo(t):
    truth = _mixture_1d(Schedule("cosine"))
    z = _orthogonality_z(truth.eps, truth, t)
    assert bool((z.abs() < 4).all()), f"ε − ε* is not orthogonal to functions of x_t: z = {z.tolist()}"
    # negative control: the best *linear* denoiser (ε* of the Gaussian with the mixture's mean and variance) is
    # not E[ε | x_t] for a mixture, and the same check sees it
    mean = (truth.weights[:, None] * truth.means).sum(0)
    var = (truth.weights[:, None, None] * (truth.covariances + truth.means[:, :, None] ** 2)).sum(0) - mean**2
    gaussian = MixtureTruth(torch.ones(1, dtype=F64), mean[None], var[None], truth.schedule)
    z_wrong = _orthogonality_z(gaussian.eps, truth, t)
    assert float(z_wrong.abs().max()) > 8, f"the check has no power: z = {z_wrong.tolist()}"

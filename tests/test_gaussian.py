"""The Gaussian: exact log-density, closed-form MLE, KL, analytic gradients and the gradient fit."""

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from kakusan import linalg
from kakusan.errors import KakusanError
from kakusan.gaussian import (
    Gaussian,
    analytic_gradients,
    expected_log_prob,
    fit_gradient,
    fit_mle,
    kl_gaussians,
    sufficient_stats,
)
from kakusan.checkpoint import load_model, save_model

F64 = torch.float64
COV3 = torch.tensor([[1.0, 0.5, 0.2], [0.5, 1.5, -0.3], [0.2, -0.3, 0.8]], dtype=F64)
MEAN3 = torch.tensor([1.0, -2.0, 0.5], dtype=F64)


def data3(n: int = 211, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=F64) @ torch.linalg.cholesky(COV3).T + MEAN3


def d(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


# --- the distribution ---------------------------------------------------------------------------


def test_log_prob_matches_scipy():
    q = Gaussian.from_params(MEAN3, COV3)
    x = data3(17)
    expected = sps.multivariate_normal(d(MEAN3), d(COV3)).logpdf(d(x))
    np.testing.assert_allclose(d(q.log_prob(x)), expected, rtol=1e-12)
    assert q.log_prob(x).shape == (17,) and q.log_prob(x).dtype == F64
    assert q.entropy().item() == pytest.approx(sps.multivariate_normal(d(MEAN3), d(COV3)).entropy(), rel=1e-12)
    np.testing.assert_allclose(d(q.precision), np.linalg.inv(d(COV3)), rtol=1e-10)


def test_one_dimensional_data_as_vector():
    q = Gaussian.from_params([0.5], 4.0)
    x = torch.tensor([0.0, 1.0, -3.0])
    np.testing.assert_allclose(d(q.log_prob(x)), sps.norm(0.5, 2.0).logpdf(d(x)), rtol=1e-12)
    np.testing.assert_allclose(d(q.log_prob(x[:, None])), d(q.log_prob(x)))
    fitted = fit_mle(np.array([1.0, 2.0, 6.0]))
    assert fitted.dim == 1
    assert fitted.mean.item() == pytest.approx(3.0)
    assert fitted.cov.item() == pytest.approx(np.var([1.0, 2.0, 6.0]))


def test_sample_is_seeded_and_has_the_right_moments():
    q = Gaussian.from_params(MEAN3, COV3)
    a, b = q.sample(20_000, generator=7), q.sample(20_000, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.shape == (20_000, 3) and a.dtype == F64
    assert not torch.equal(a, q.sample(20_000, generator=8))
    torch.testing.assert_close(a.mean(0), MEAN3, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.from_numpy(np.cov(d(a).T)), COV3, atol=0.06, rtol=0)


def test_shape_errors():
    q = Gaussian(3)
    with pytest.raises(KakusanError, match=r"\(n, 3\)"):
        q.log_prob(torch.zeros(5))
    with pytest.raises(KakusanError, match=r"\(n, 3\)"):
        q.log_prob(torch.zeros(5, 2))
    with pytest.raises(KakusanError, match="shape"):
        fit_mle(torch.zeros(2, 3, 4))
    with pytest.raises(KakusanError, match="NaN or inf"):
        fit_mle(torch.tensor([[0.0, 1.0], [float("nan"), 2.0], [1.0, 1.0]]))
    with pytest.raises(KakusanError, match="positive integer"):
        Gaussian(0)
    with pytest.raises(KakusanError, match="positive definite"):
        Gaussian.from_params([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(KakusanError, match="shape"):
        Gaussian.from_params([0.0, 0.0], torch.eye(3))


# --- closed-form MLE ----------------------------------------------------------------------------


def test_fit_mle_matches_numpy_biased_covariance():
    x = data3()
    q = fit_mle(x)
    np.testing.assert_allclose(d(q.mean), d(x).mean(0), rtol=1e-13)
    np.testing.assert_allclose(d(q.cov), np.cov(d(x).T, bias=True), rtol=1e-12)


def test_mle_maximises_mean_log_likelihood():
    x = data3()
    q = fit_mle(x)
    best = q.log_prob(x).mean()
    for k in range(5):  # any other Gaussian does worse by exactly KL(q_mle || other)
        g = torch.Generator().manual_seed(k)
        b = torch.randn(3, 3, generator=g, dtype=F64)
        other = Gaussian.from_params(q.mean.detach() + 0.1 * torch.randn(3, generator=g, dtype=F64),
                                     q.cov.detach() + 0.1 * b @ b.T)
        gap = best - other.log_prob(x).mean()
        assert gap.item() > 0
        assert gap.item() == pytest.approx(kl_gaussians(q, other).item(), rel=1e-9)


@pytest.mark.parametrize("x, why", [
    (torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0]]), "2 samples span at most 1 of 3"),
    (torch.tensor([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [4.0, 5.0]]), "column 1 is constant"),
    (torch.tensor([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0], [4.0, 9.0]]), "data span 1 of 2 dimensions"),
    (torch.tensor([[3.0], [3.0], [3.0]]), "column 0 is constant"),
])
def test_singular_data_names_problem_and_fix(x, why):
    with pytest.raises(KakusanError, match="singular") as info:
        fit_mle(x)
    assert why in str(info.value) and "reg" in str(info.value)
    with pytest.raises(KakusanError, match="singular"):
        fit_gradient(x, steps=5)
    q = fit_mle(x, reg=1e-6)  # an explicit reg works and never gives NaN
    assert torch.isfinite(q.log_prob(x)).all() and torch.isfinite(q.entropy())
    np.testing.assert_allclose(d(q.cov), np.cov(d(x).T, bias=True).reshape(q.dim, q.dim) + 1e-6 * np.eye(q.dim),
                               atol=1e-15)


def test_single_sample_with_reg_and_bad_reg():
    q = fit_mle(torch.tensor([[1.0, 2.0]]), reg=0.5)
    torch.testing.assert_close(q.cov.detach(), 0.5 * torch.eye(2, dtype=F64), rtol=0, atol=1e-15)
    with pytest.raises(KakusanError, match="reg"):
        fit_mle(data3(), reg=-1.0)
    with pytest.raises(KakusanError, match="reg"):
        fit_mle(data3(), reg=float("nan"))


def test_small_scale_data_is_not_called_singular():
    x = data3() * 1e-6 + 1.0
    q = fit_mle(x)
    assert torch.isfinite(q.log_prob(x)).all()


def test_checkpoint_round_trip(tmp_path):
    q = fit_mle(data3())
    save_model(tmp_path, q)
    r = load_model(tmp_path)
    assert isinstance(r, Gaussian) and r.dim == 3
    torch.testing.assert_close(r.log_prob(data3(5)), q.log_prob(data3(5)), rtol=0, atol=0)


# --- KL between Gaussians -----------------------------------------------------------------------


def test_kl_gaussians_closed_form():
    p, q = Gaussian.from_params([0.0], 1.0), Gaussian.from_params([1.0], 4.0)
    expected = math.log(2.0) + (1.0 + 1.0) / (2 * 4.0) - 0.5  # ln(s2/s1) + (s1^2 + dm^2)/(2 s2^2) - 1/2
    assert kl_gaussians(p, q).item() == pytest.approx(expected, rel=1e-14)
    a = Gaussian.from_params(MEAN3, COV3)
    assert kl_gaussians(a, a).item() == pytest.approx(0.0, abs=1e-14)
    b = fit_mle(data3(50))
    mc = a.sample(200_000, generator=3)
    assert kl_gaussians(a, b).item() == pytest.approx((a.log_prob(mc) - b.log_prob(mc)).mean().item(), abs=0.02)
    assert kl_gaussians(a, b).item() != pytest.approx(kl_gaussians(b, a).item(), rel=1e-3)
    with pytest.raises(KakusanError, match="different dimensions"):
        kl_gaussians(a, Gaussian(2))


# --- analytic gradients and the gradient fit ----------------------------------------------------


def direct_mean_log_q(x, mean, precision):
    """(1/n) sum_i log q(x_i) from the data, written as 1/2 ln det L - 1/2 (x-mu)^T L (x-mu) - D/2 ln 2pi."""
    quad = linalg.quadratic_form(precision, x - mean)
    return (0.5 * torch.logdet(precision) - 0.5 * quad - 0.5 * x.shape[1] * math.log(2 * math.pi)).mean()


@pytest.mark.parametrize("symmetric", [True, False])
def test_analytic_gradients_equal_autograd(symmetric):
    x = data3(37)
    g = torch.Generator().manual_seed(5)
    mean = torch.randn(3, generator=g, dtype=F64)
    b = torch.randn(3, 3, generator=g, dtype=F64)
    prec = b @ b.T + torch.eye(3, dtype=F64)
    if not symmetric:  # every entry independent, as autograd sees it
        prec = prec + 0.1 * torch.randn(3, 3, generator=g, dtype=F64)
    mean.requires_grad_(True)
    prec.requires_grad_(True)
    gm, gp = torch.autograd.grad(direct_mean_log_q(x, mean, prec), (mean, prec))
    stats = sufficient_stats(x)
    ours = analytic_gradients(stats, mean.detach(), prec.detach())
    torch.testing.assert_close(ours.mean, gm, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.precision, gp, rtol=1e-10, atol=1e-12)
    assert expected_log_prob(stats, mean, prec).item() == pytest.approx(direct_mean_log_q(x, mean, prec).item(),
                                                                         rel=1e-12)
    fd = linalg.finite_difference_gradient(lambda p: expected_log_prob(stats, mean.detach(), p), prec.detach())
    torch.testing.assert_close(ours.precision, fd, rtol=1e-6, atol=1e-7)
    if symmetric:  # 1/2 (Sigma - S_mu)
        diff = stats.mean - mean.detach()
        s_mu = stats.scatter + torch.outer(diff, diff)
        torch.testing.assert_close(ours.precision, 0.5 * (torch.linalg.inv(prec.detach()) - s_mu))


def test_gradients_vanish_at_the_closed_form():
    x = data3()
    q = fit_mle(x)
    g = analytic_gradients(sufficient_stats(x), q.mean.detach(), q.precision.detach())
    assert g.mean.abs().max() < 1e-12 and g.precision.abs().max() < 1e-12


@pytest.mark.parametrize("method", ["plain", "natural"])
def test_gradient_fit_converges_to_closed_form(method):
    x = data3()
    mle = fit_mle(x)
    fit = fit_gradient(x, steps=2000, lr=0.1, method=method)
    assert fit.converged and fit.steps < 2000
    torch.testing.assert_close(fit.model.mean, mle.mean, rtol=0, atol=1e-8)
    torch.testing.assert_close(fit.model.cov, mle.cov, rtol=0, atol=1e-8)
    nll_mle = -mle.log_prob(x).mean().item()
    assert fit.nll[-1].item() == pytest.approx(nll_mle, abs=1e-12)
    assert (fit.nll.diff() <= 1e-14).all()  # monotone (to rounding)
    assert fit.nll[0].item() - nll_mle > 1.0  # it started far away
    # nll_t - nll_mle = KL(q_mle || q_t): check at the start, N(0, I)
    assert fit.nll[0].item() - nll_mle == pytest.approx(kl_gaussians(mle, Gaussian(3)).item(), rel=1e-10)


def test_natural_fit_is_faster_and_gradient_fit_honours_reg():
    x = data3()
    plain, natural = fit_gradient(x, method="plain"), fit_gradient(x, method="natural")
    assert natural.steps < plain.steps
    fit = fit_gradient(x, method="natural", reg=0.3)
    torch.testing.assert_close(fit.model.cov, fit_mle(x, reg=0.3).cov, rtol=0, atol=1e-8)


def test_gradient_fit_one_dimensional_and_from_init():
    x = torch.tensor([0.3, 1.7, 2.2, -0.4, 1.1], dtype=F64)
    mle = fit_mle(x)
    fit = fit_gradient(x, init=Gaussian.from_params([5.0], 9.0), method="plain", lr=1.0)
    assert fit.converged
    assert fit.model.mean.item() == pytest.approx(mle.mean.item(), abs=1e-8)
    assert fit.model.cov.item() == pytest.approx(mle.cov.item(), abs=1e-8)
    with pytest.raises(KakusanError, match="init has dim"):
        fit_gradient(x, init=Gaussian(2))
    with pytest.raises(KakusanError, match="method"):
        fit_gradient(x, method="adam")


# --- the tour section ---------------------------------------------------------------------------


def test_tour_section_runs_at_tiny_size(tmp_path):
    from kakusan.report.run_dir import RunDir
    from kakusan.tour import TourContext
    from kakusan.tour.gaussian import section

    ctx = TourContext(RunDir.create("tour", tmp_path / "run"), "tiny", torch.Generator().manual_seed(0))
    sec = section(ctx)
    assert len(sec.figures) == 3 and all(path.is_file() for path, _ in sec.figures)
    nums = sec.numbers
    assert nums["2×2 digits: KL(p0‖q) (nats)"] == pytest.approx(nums["2×2 digits: −H(p0) − mean log q (nats)"],
                                                               abs=1e-12)
    for method in ("plain", "natural"):
        assert nums[f"Gaussian: KL(closed form‖{method} gradient fit) (nats)"] < 1e-10

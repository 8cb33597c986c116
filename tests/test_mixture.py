"""Gaussian mixture and EM: exact densities, the Jensen bound, monotone EM, parity with scikit-learn.

Sizes are distinct primes (K=3 components, D=5 dimensions, n=211 points) so swapped axes fail.
"""

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from kakusan.errors import KakusanError
from kakusan.mixture import GaussianMixture, MixtureParams
from kakusan.optim.em import e_step, fit_em, initialize, jensen_bound, m_step
from kakusan.checkpoint import load_model, save_model

K, D, N = 3, 5, 211


def random_params(rng: np.random.Generator, covariance_type: str = "full", spread: float = 3.0) -> MixtureParams:
    """Random θ with well-conditioned covariances (eigenvalues ≥ 0.3)."""
    w = rng.dirichlet(np.full(K, 5.0))
    mu = spread * rng.normal(size=(K, D))
    if covariance_type == "full":
        a = rng.normal(size=(K, D, D))
        cov = a @ a.transpose(0, 2, 1) / D + 0.3 * np.eye(D)
    else:
        cov = rng.uniform(0.3, 2.0, size=(K, D))
    return MixtureParams(*(torch.from_numpy(v) for v in (w, mu, cov)))


def mixture(params: MixtureParams, covariance_type: str = "full") -> GaussianMixture:
    gm = GaussianMixture(n_components=K, dim=D, covariance_type=covariance_type)
    gm.set_params(params)
    return gm


def data(seed: int, covariance_type: str = "full", spread: float = 3.0) -> torch.Tensor:
    """N points drawn from a random mixture (its own generator; nothing global)."""
    truth = mixture(random_params(np.random.default_rng(seed), covariance_type, spread), covariance_type)
    return truth.sample(N, generator=seed)


def full_cov(params: MixtureParams) -> np.ndarray:
    c = params.covariances.numpy()
    return c if c.ndim == 3 else np.stack([np.diag(v) for v in c])


# --- exact density -------------------------------------------------------------------------------

@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_log_prob_matches_scipy_mixture_sum(covariance_type):
    rng = np.random.default_rng(0)
    params = random_params(rng, covariance_type)
    gm = mixture(params, covariance_type)
    x = rng.normal(scale=3.0, size=(N, D))
    comp = np.stack([multivariate_normal(params.means[k].numpy(), full_cov(params)[k]).logpdf(x) for k in range(K)], 1)
    joint = np.log(params.weights.numpy()) + comp  # (N, K)
    expected = np.logaddexp.reduce(joint, axis=1)
    got = gm.log_prob(x)
    assert got.shape == (N,) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-10)
    resp = gm.responsibilities(x)
    assert resp.shape == (N, K)
    np.testing.assert_allclose(resp.numpy(), np.exp(joint - expected[:, None]), atol=1e-12)


# --- the Jensen bound ----------------------------------------------------------------------------

@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_bound_is_tight_at_the_posterior_and_below_elsewhere(covariance_type, gen):
    rng = np.random.default_rng(1)
    gm = mixture(random_params(rng, covariance_type), covariance_type)
    x = data(2, covariance_type)
    post = e_step(gm, x)
    log_prob = gm.log_prob(x)
    np.testing.assert_allclose(post.log_prob.numpy(), log_prob.numpy(), rtol=1e-13)
    np.testing.assert_allclose(jensen_bound(gm, x, post.resp).numpy(), log_prob.numpy(), rtol=1e-12, atol=1e-12)
    for _ in range(5):  # any other q: F = log q(x) - KL(q || posterior) < log q(x)
        q = -torch.log(torch.rand(N, K, generator=gen, dtype=torch.float64))
        q = q / q.sum(1, keepdim=True)
        kl = (q * (q.log() - post.resp.log())).sum(1)
        bound = jensen_bound(gm, x, q)
        assert (bound < log_prob).all()
        np.testing.assert_allclose((log_prob - bound).numpy(), kl.numpy(), rtol=1e-8, atol=1e-10)
    one_hot = torch.nn.functional.one_hot(post.resp.argmax(1), K).to(torch.float64)  # zeros: 0 log 0 = 0
    assert torch.isfinite(jensen_bound(gm, x, one_hot)).all()
    assert (jensen_bound(gm, x, one_hot) <= log_prob + 1e-12).all()


# --- monotone EM ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [3, 5, 7, 11])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_em_never_decreases_the_likelihood(seed, covariance_type):
    x = data(seed, covariance_type, spread=1.0)  # overlapping components: many iterations
    for reg_covar in (0.0, 1e-6):
        gm = GaussianMixture(K, D, covariance_type)
        result = fit_em(gm, x, max_iter=60, tol=0.0, reg_covar=reg_covar, init="random", generator=seed)
        ll, bound = np.array(result.log_likelihood), np.array(result.bound)
        assert len(ll) == result.n_iter + 1 == 61 and len(bound) == 60
        scale = np.abs(ll).max()
        assert np.all(np.diff(ll) >= -1e-10 * scale)
        assert result.max_decrease <= 1e-10 * scale
        if reg_covar == 0.0:  # exact M-step: ll[t] = F(q_t, θ_t) ≤ F(q_t, θ_{t+1}) ≤ ll[t+1]
            assert np.all(bound >= ll[:-1] - 1e-12 * scale)
            assert np.all(bound <= ll[1:] + 1e-12 * scale)
        assert ll[-1] > ll[0]


def test_m_step_maximises_the_surrogate():
    """The closed form beats nearby θ on F(q, ·) for a fixed q (reg_covar = 0: the exact maximiser)."""
    rng = np.random.default_rng(13)
    x = data(13)
    gm = mixture(random_params(rng))
    q = e_step(gm, x).resp
    m_step(gm, x, q, reg_covar=0.0)
    best = float(jensen_bound(gm, x, q).sum())
    p = gm.get_params()
    for _ in range(10):
        a = 1e-3 * torch.from_numpy(rng.normal(size=(K, D, D)))
        w = p.weights * torch.exp(1e-3 * torch.from_numpy(rng.normal(size=K)))
        moved = MixtureParams(w / w.sum(), p.means + 1e-3 * torch.from_numpy(rng.normal(size=(K, D))),
                              p.covariances + a @ a.transpose(1, 2) - 1e-6 * torch.eye(D))
        gm.set_params(moved)
        assert float(jensen_bound(gm, x, q).sum()) < best


def test_em_recovers_well_separated_components():
    truth = mixture(random_params(np.random.default_rng(17), spread=6.0))
    x = truth.sample(2003, generator=17)
    gm = GaussianMixture(K, D)
    result = fit_em(gm, x, max_iter=200, tol=1e-10, generator=0)
    assert result.converged and result.n_iter < 200
    order = torch.cdist(truth.means, gm.means).argmin(1)
    assert sorted(order.tolist()) == list(range(K))
    assert torch.allclose(gm.weights[order], truth.weights, atol=0.05)
    assert torch.allclose(gm.means[order], truth.means, atol=0.2)
    assert result.log_likelihood[-1] > float(truth.log_prob(x).mean()) - 1e-9  # MLE beats the truth


def test_fit_is_reproducible_and_reports_progress():
    x = data(19)
    seen = []
    a = fit_em(GaussianMixture(K, D), x, max_iter=7, tol=0.0, generator=23, callback=seen.append)
    b = fit_em(GaussianMixture(K, D), x, max_iter=7, tol=0.0, generator=torch.Generator().manual_seed(23))
    assert a.log_likelihood == b.log_likelihood
    assert torch.equal(a.model.means, b.model.means)
    assert [s.iteration for s in seen] == list(range(1, 8))
    assert [s.log_likelihood for s in seen] == a.log_likelihood[1:]
    assert [s.bound for s in seen] == a.bound


def test_init_model_keeps_the_parameters_and_max_iter_zero_only_initialises():
    x = data(29)
    gm = mixture(random_params(np.random.default_rng(29)))
    before = gm.get_params()
    result = fit_em(gm, x, max_iter=0, init="model")
    assert result.n_iter == 0 and result.bound == [] and not result.converged
    assert torch.equal(gm.means, before.means)
    assert result.log_likelihood == [pytest.approx(float(gm.log_prob(x).mean()), rel=1e-14)]
    for method in ("kmeans++", "random"):
        p = initialize(GaussianMixture(K, D), x, method, generator=31)
        assert torch.isclose(p.weights.sum(), torch.tensor(1.0, dtype=torch.float64))
        assert p.means.shape == (K, D) and p.covariances.shape == (K, D, D)


# --- parity with scikit-learn --------------------------------------------------------------------

@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_em_agrees_with_sklearn_from_the_same_start(covariance_type):
    x = data(37, covariance_type, spread=1.5)
    gm = GaussianMixture(K, D, covariance_type)
    p0 = initialize(gm, x, "random", generator=41)
    cov0 = p0.covariances.numpy()
    precisions = np.linalg.inv(cov0) if covariance_type == "full" else 1.0 / cov0
    sk = SkGaussianMixture(K, covariance_type=covariance_type, reg_covar=1e-6, tol=0.0, max_iter=40,
                           weights_init=p0.weights.numpy(), means_init=p0.means.numpy(), precisions_init=precisions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns that tol=0 never converges
        sk.fit(x.numpy())
    result = fit_em(gm, x, max_iter=40, tol=0.0, reg_covar=1e-6, init=p0)
    assert sk.n_iter_ == result.n_iter == 40
    np.testing.assert_allclose(gm.weights.numpy(), sk.weights_, atol=1e-6)
    np.testing.assert_allclose(gm.means.numpy(), sk.means_, atol=1e-6)
    np.testing.assert_allclose(gm.covariances.numpy(), sk.covariances_, atol=1e-6)
    assert result.log_likelihood[-1] == pytest.approx(sk.score(x.numpy()), abs=1e-6)
    np.testing.assert_allclose(gm.log_prob(x).numpy(), sk.score_samples(x.numpy()), atol=1e-6)


# --- sampling ------------------------------------------------------------------------------------

@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_sampling_is_reproducible_and_has_the_model_moments(covariance_type):
    gm = mixture(random_params(np.random.default_rng(43), covariance_type), covariance_type)
    n = 20011
    x, z = gm.sample_with_labels(n, generator=47)
    assert x.shape == (n, D) and z.shape == (n,) and x.dtype == torch.float64
    assert torch.equal(gm.sample(n, generator=47), x)
    assert not torch.equal(gm.sample(n, generator=48), x)
    freq = torch.bincount(z, minlength=K).double() / n
    se_w = (gm.weights * (1 - gm.weights) / n).sqrt()
    assert ((freq - gm.weights).abs() < 5 * se_w).all()
    mean, cov = gm.mean(), gm.covariance()
    se_mean = (torch.diagonal(cov) / n).sqrt()
    assert ((x.mean(0) - mean).abs() < 5 * se_mean).all()
    centred = x - x.mean(0)
    products = centred[:, :, None] * centred[:, None, :]  # (n, D, D)
    se_cov = products.std(0) / n**0.5
    assert ((products.mean(0) - cov).abs() < 5 * se_cov).all()


# --- errors and edge cases -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_components": 0, "dim": D}, "n_components"), ({"n_components": K, "dim": 0}, "dim"),
     ({"n_components": K, "dim": D, "covariance_type": "spherical"}, "covariance_type"),
     ({"n_components": 2.5, "dim": D}, "n_components")],
)
def test_bad_configuration_is_refused(kwargs, match):
    with pytest.raises(KakusanError, match=match):
        GaussianMixture(**kwargs)


def test_bad_data_is_refused():
    gm = GaussianMixture(K, D)
    x = data(53)
    bad_nan = x.clone()
    bad_nan[7, 2] = float("nan")
    cases = [(x[:2], "2 data points cannot fit 3 components"), (bad_nan, "NaN"), (x[0], "2-D"),
             (x[None], "2-D"), (x[:, :4], "columns"), (np.array([["a"] * D]), "real numbers")]
    for bad, match in cases:
        with pytest.raises(KakusanError, match=match):
            fit_em(gm, bad, max_iter=1)
    with pytest.raises(KakusanError, match="NaN"):
        gm.log_prob(bad_nan)
    for kwargs, match in [({"reg_covar": -1.0}, "reg_covar"), ({"tol": float("nan")}, "tol"),
                          ({"max_iter": -1}, "max_iter"), ({"init": "kmeans"}, "unknown init")]:
        with pytest.raises(KakusanError, match=match):
            fit_em(gm, x, **kwargs)
    with pytest.raises(KakusanError, match="shape"):
        gm.set_params(MixtureParams(torch.ones(K) / K, torch.zeros(D, K, dtype=torch.float64), torch.eye(D).expand(K, D, D)))
    with pytest.raises(KakusanError, match="sum to one"):
        gm.set_params(MixtureParams(torch.ones(K), torch.zeros(K, D), torch.eye(D).expand(K, D, D)))
    with pytest.raises(KakusanError, match="non-negative integer"):
        gm.sample(-1)


def test_collapsed_component_is_kept_finite_by_reg_covar():
    """A component that owns only repeated copies of one point has zero covariance without reg_covar."""
    x = data(59)
    x = torch.cat([x[:1].expand(8, D), x[1:]])  # the first point 8 times
    labels = torch.where(torch.arange(len(x)) < 8, 2, torch.arange(len(x)) % 2)
    hard = torch.nn.functional.one_hot(labels, K).to(torch.float64)  # component 2 owns the copies
    gm = GaussianMixture(K, D)
    m_step(gm, x, hard, reg_covar=1e-6)
    assert torch.allclose(gm.covariances[2], 1e-6 * torch.eye(D, dtype=torch.float64), rtol=0, atol=1e-15)
    result = fit_em(gm, x, max_iter=5, tol=0.0, reg_covar=1e-6, init="model")
    assert np.isfinite(result.log_likelihood).all() and result.max_decrease == 0.0
    assert torch.allclose(gm.covariances[2], 1e-6 * torch.eye(D, dtype=torch.float64), rtol=0, atol=1e-12)
    m_step(gm, x, hard, reg_covar=0.0)
    with pytest.raises(KakusanError, match="reg_covar > 0"):
        gm.log_prob(x)
    with pytest.raises(KakusanError, match="reg_covar > 0"):
        fit_em(GaussianMixture(K, D), x, max_iter=5, reg_covar=0.0, init=gm.get_params())
    empty = torch.zeros(x.shape[0], K, dtype=torch.float64)
    empty[:, 0] = 1.0  # components 1 and 2 own nothing
    m_step(gm, x, empty, reg_covar=1e-6)
    assert torch.isfinite(gm.log_prob(x)).all()


# --- checkpoint and docs ---------------------------------------------------------------------------

@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_checkpoint_round_trip(tmp_path, covariance_type):
    gm = mixture(random_params(np.random.default_rng(61), covariance_type), covariance_type)
    save_model(tmp_path, gm)
    back = load_model(tmp_path)
    assert isinstance(back, GaussianMixture) and back.config == gm.config
    x = data(67, covariance_type)
    assert torch.equal(back.log_prob(x), gm.log_prob(x))


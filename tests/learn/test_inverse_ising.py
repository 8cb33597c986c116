"""The inverse-Ising front door: data checks, the result type, the L-BFGS driver and ``solve``."""

import numpy as np
import pytest
import torch

from kakusan.boltzmann import exact, instances
from kakusan.errors import DataError, KakusanError
from kakusan.data.spins import check_spin_data, compress_rows
from kakusan.learn.inverse import METHODS, InverseResult, solve
from kakusan.learn.inverse_base import pack, pack_grad, unpack
from kakusan.optim.lbfgs import minimize_lbfgs

ALL = list(METHODS)


def _spins(m, n, gen):
    return torch.randint(0, 2, (m, n), generator=gen).double() * 2 - 1


def _exact_data(truth):
    """All 2^N states weighted by their exact probabilities: p0 = q exactly."""
    n = truth.n_visible
    return exact.all_states(n), exact.log_prob_all(truth).exp()


@pytest.mark.parametrize("method", ALL)
def test_every_method_returns_symmetric_zero_diagonal_couplings_and_diagnostics(method, gen):
    truth = instances.sherrington_kirkpatrick(7, beta=0.4, field_std=0.3, seed=7)
    result = solve(truth.sample(3000, gen), method)
    assert isinstance(result, InverseResult) and result.method == method
    assert result.J.shape == (7, 7) and result.h.shape == (7,)
    torch.testing.assert_close(result.J, result.J.T, atol=0, rtol=0)
    assert float(result.J.diagonal().abs().max()) == 0.0
    assert result.converged and result.wall_time > 0 and result.iterations >= 0
    model = result.to_model()
    torch.testing.assert_close(model.couplings().detach(), result.J.double())


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("bad, match", [
    ("1-d", "2-D"),
    ("strings", "numbers"),
    ("nan", "NaN"),
    ("zero-one", "to_spins"),
    ("two", "±1"),
    ("constant", "column 3"),
])
def test_bad_data_is_a_clear_error_from_every_method(method, bad, match, gen):
    x = _spins(200, 7, gen)
    if bad == "nan":
        x[5, 2] = float("nan")
    elif bad == "zero-one":
        x = (x + 1) / 2
    elif bad == "two":
        x[4, 1] = 2.0
    elif bad == "constant":
        x[:, 3] = -1.0
    elif bad == "1-d":
        x = np.ones(7)
    else:
        x = [["a", "b"], ["c", "d"]]
    with pytest.raises(KakusanError, match=match):
        solve(x, method)


@pytest.mark.parametrize("method", ["nmf", "tap", "sm", "plm", "mpf"])
def test_too_few_samples_is_an_error_unless_regularised(method, gen):
    x = _spins(11, 11, gen)  # M = N: the covariance is singular and every site is separable
    with pytest.raises(DataError, match="more samples than spins"):
        solve(x, method)
    if method in ("plm", "mpf"):
        result = solve(x, method, l2=0.1)
        assert torch.isfinite(result.J).all()


def test_zero_weight_rows_do_not_count_as_samples(gen):
    x = _spins(20, 5, gen)
    w = torch.zeros(20, dtype=torch.float64)
    w[:5] = 1.0
    with pytest.raises(DataError, match="M = 5"):
        solve(x, "nmf", weights=w)


@pytest.mark.parametrize("weights, match", [
    (torch.ones(3), "shape"),
    (-torch.ones(50), "non-negative"),
    (torch.zeros(50), "positive sum"),
])
def test_bad_weights_are_rejected(weights, match, gen):
    with pytest.raises(DataError, match=match):
        check_spin_data(_spins(50, 5, gen), weights)


def test_unknown_method_and_option_name_the_choices(gen):
    x = _spins(100, 5, gen)
    with pytest.raises(KakusanError, match="choose from nmf, tap"):
        solve(x, "newton")
    with pytest.raises(KakusanError, match="takes no option l2"):
        solve(x, "nmf", l2=0.1)
    with pytest.raises(KakusanError, match="l1 must be a non-negative"):
        solve(x, "plm", l1=-1.0)


def test_integer_and_numpy_data_are_accepted(gen):
    x = _spins(300, 5, gen)
    a = solve(x.numpy().astype(np.int8), "plm")
    b = solve(x, "plm")
    torch.testing.assert_close(a.J, b.J)


@pytest.mark.parametrize("method", ["nmf", "tap", "plm", "mpf", "exact"])
def test_repeated_rows_equal_integer_weights(method, gen):
    x = _spins(40, 5, gen)
    counts = torch.randint(1, 4, (40,), generator=gen)
    repeated = torch.repeat_interleave(x, counts, dim=0)
    a = solve(repeated, method, **({} if method in ("nmf", "tap") else {"tol": 1e-10}))
    b = solve(x, method, weights=counts.double(), **({} if method in ("nmf", "tap") else {"tol": 1e-10}))
    torch.testing.assert_close(a.J, b.J, atol=1e-6, rtol=0)
    torch.testing.assert_close(a.h, b.h, atol=1e-6, rtol=0)


def test_compress_rows_merges_duplicates_and_keeps_the_distribution(gen):
    x = _spins(500, 3, gen)  # at most 8 distinct rows
    w = torch.full((500,), 1 / 500, dtype=torch.float64)
    xs, ws = compress_rows(x, w)
    assert len(xs) <= 8 and float(ws.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(ws @ xs, w @ x)
    torch.testing.assert_close(xs.T @ (ws[:, None] * xs), x.T @ (w[:, None] * x))


@pytest.mark.parametrize("symmetric", [True, False])
def test_pack_unpack_round_trip_and_pack_grad_is_the_chain_rule(symmetric, gen):
    n = 5
    theta = torch.randn(n * (n - 1) // (2 if symmetric else 1) + n, generator=gen, dtype=torch.float64)
    J, h = unpack(theta, n, symmetric)
    torch.testing.assert_close(pack(J, h, symmetric), theta)
    assert float(J.diagonal().abs().max()) == 0
    A = torch.randn(n, n, generator=gen, dtype=torch.float64)
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    t = theta.clone().requires_grad_(True)
    Jt, ht = unpack(t, n, symmetric)
    ((A * Jt).sum() + b @ ht).backward()
    torch.testing.assert_close(pack_grad(A - torch.diag_embed(A.diagonal()), b, symmetric), t.grad)


def test_lbfgs_with_l1_is_the_soft_threshold_of_a_quadratic(gen):
    a = torch.tensor([3.0, -0.2, 0.5, -2.0, 0.05, 1.0], dtype=torch.float64)

    def fun(theta):
        return 0.5 * ((theta - a) ** 2).sum(), theta - a

    theta, info = minimize_lbfgs(fun, torch.zeros(6, dtype=torch.float64), n_l1=4, l1=0.4, tol=1e-12)
    expected = torch.cat([torch.sign(a[:4]) * (a[:4].abs() - 0.4).clamp_min(0), a[4:]])
    torch.testing.assert_close(theta, expected, atol=1e-9, rtol=0)
    assert info.converged


def test_lbfgs_stops_with_a_clear_error_when_the_objective_overflows():
    def fun(theta):
        return torch.exp(1000 * theta).sum(), 1000 * torch.exp(1000 * theta)

    with pytest.raises(KakusanError, match="overflowed"):
        minimize_lbfgs(fun, torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("n", [5, 7, 11])
def test_exact_maximum_likelihood_recovers_the_model_from_exact_probabilities(n):
    truth = instances.sherrington_kirkpatrick(n, beta=1.0, field_std=0.5, seed=n)
    x, w = _exact_data(truth)
    result = solve(x, "exact", weights=w, tol=1e-10)
    torch.testing.assert_close(result.J, truth.couplings().detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(result.h, truth.h.detach(), atol=1e-6, rtol=0)


def test_tour_section_runs_quickly_and_plm_beats_mean_field(tmp_path):
    import time

    from kakusan.report.run_dir import RunDir
    from kakusan.tour import TourContext
    from kakusan.tour.mcmc_free import section

    ctx = TourContext(RunDir.create("tour", tmp_path / "run"), "tiny", torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    sec = section(ctx)
    assert time.perf_counter() - t0 < 10
    assert len(sec.figures) == 2 and all(path.exists() for path, _ in sec.figures)
    errors = {k.split(":")[0]: v for k, v in sec.numbers.items() if "‖" in k}
    assert errors["pseudo-likelihood"] < errors["naive mean field"]
    assert errors["exact maximum likelihood"] < 1.2 * errors["pseudo-likelihood"]


def test_boolean_and_unsigned_zero_one_data_point_to_to_spins(gen):
    x = torch.randint(0, 2, (100, 5), generator=gen)
    for data in (x.bool(), x.to(torch.uint8).numpy()):
        with pytest.raises(DataError, match="to_spins"):
            solve(data, "plm")
    with pytest.raises(DataError, match="NaN or infinite"):
        solve(torch.full((10, 2), float("inf")), "nmf")

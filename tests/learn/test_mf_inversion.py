"""Naive mean field, TAP and Sessak–Monasson inversion against exact moments of known models."""

import math

import pytest
import torch

from kakusan.boltzmann import IsingModel, exact
from kakusan.errors import DataError, KakusanError
from kakusan.learn.base import Stats
from kakusan.learn.mean_field import (independent_pair_couplings, solve_nmf, solve_sm, solve_tap,
                                      tap_couplings)

N = 11


def _couplings_and_fields(n, seed):
    g = torch.Generator().manual_seed(seed)
    J0 = torch.triu(torch.randn(n, n, generator=g, dtype=torch.float64) / n**0.5, 1)
    return J0 + J0.T, 0.5 * torch.randn(n, generator=g, dtype=torch.float64) + 0.3


def _exact_moments(J, h):
    s = exact.exact_stats(IsingModel.from_params(J, h))
    return Stats(s.mean, s.corr)


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def errors_by_beta():
    """Relative coupling errors of each method from exact moments of β·J0 with fixed fields h0."""
    J0, h0 = _couplings_and_fields(N, 0)
    out = {}
    for beta in (0.025, 0.05, 0.4):
        stats = _exact_moments(beta * J0, h0)
        out[beta] = {f.__name__: (_rel(f(stats).J, beta * J0), _rel(f(stats).h, h0))
                     for f in (solve_nmf, solve_tap, solve_sm)}
    return out


@pytest.mark.parametrize("method, order", [("solve_nmf", 1), ("solve_tap", 2), ("solve_sm", 3)])
def test_coupling_error_vanishes_with_the_order_of_the_expansion(errors_by_beta, method, order):
    # relative error ∝ β^order as β → 0: nMF is first order, TAP second, Sessak–Monasson third
    slope = math.log2(errors_by_beta[0.05][method][0] / errors_by_beta[0.025][method][0])
    assert abs(slope - order) < 0.35
    assert errors_by_beta[0.025][method][0] < 3e-3


def test_tap_beats_naive_mean_field_at_moderate_coupling(errors_by_beta):
    nmf, tap = errors_by_beta[0.4]["solve_nmf"], errors_by_beta[0.4]["solve_tap"]
    assert tap[0] < 0.5 * nmf[0]  # couplings
    assert tap[1] < 0.5 * nmf[1]  # fields


def test_tap_equals_naive_mean_field_without_magnetisation():
    J0, _ = _couplings_and_fields(7, 1)
    stats = _exact_moments(0.3 * J0, torch.zeros(7, dtype=torch.float64))  # h = 0: m = 0 exactly
    torch.testing.assert_close(solve_tap(stats).J, solve_nmf(stats).J, atol=1e-12, rtol=0)


def test_nmf_is_minus_the_inverse_covariance_and_tap_solves_its_quadratic():
    J0, h0 = _couplings_and_fields(5, 2)
    stats = _exact_moments(0.5 * J0, h0)
    A = torch.linalg.inv(stats.covariance())
    off = ~torch.eye(5, dtype=torch.bool)
    torch.testing.assert_close(solve_nmf(stats).J[off], -A[off])
    J = solve_tap(stats).J
    m = stats.mean
    residual = A + J + 2 * J**2 * torch.outer(m, m)
    torch.testing.assert_close(residual[off], torch.zeros(20, dtype=torch.float64), atol=1e-12, rtol=0)


def test_tap_without_a_real_root_raises_or_takes_the_vertex():
    m = torch.tensor([0.9, 0.9, 0.0], dtype=torch.float64)
    inv_cov = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    with pytest.raises(KakusanError, match=r"no real coupling for 1 pair.*\(0, 1\).*no_root='vertex'"):
        tap_couplings(inv_cov, m, "raise")
    J, n_bad = tap_couplings(inv_cov, m, "vertex")
    assert n_bad == 1
    assert float(J[0, 1]) == pytest.approx(-1 / (4 * 0.81))  # the parabola's vertex
    assert float(J[0, 2]) == 0.0


def test_tap_reports_vertex_pairs_in_its_message():
    # two spins magnetised up yet anticorrelated: 8 m_0 m_1 (C⁻¹)_01 = 1.24 > 1 (a valid distribution:
    # p(−−) = ((1 − m)² + C_01)/4 > 0)
    m = torch.tensor([0.7, 0.7, 0.1], dtype=torch.float64)
    C = torch.tensor([[0.51, -0.08, 0.0], [-0.08, 0.51, 0.0], [0.0, 0.0, 0.99]], dtype=torch.float64)
    stats = Stats(m, C + torch.outer(m, m))
    result = solve_tap(stats)
    assert "1 pair(s) had no real TAP root" in result.message
    with pytest.raises(KakusanError, match="no real coupling"):
        solve_tap(stats, no_root="raise")


def test_independent_pairs_and_sessak_monasson_are_exact_for_two_spins():
    J = torch.tensor([[0.0, 0.7], [0.7, 0.0]], dtype=torch.float64)
    stats = _exact_moments(J, torch.tensor([0.4, -0.9], dtype=torch.float64))
    torch.testing.assert_close(independent_pair_couplings(stats), J)
    torch.testing.assert_close(solve_sm(stats).J, J)


def test_data_and_exact_statistics_of_the_same_distribution_agree(gen):
    J0, h0 = _couplings_and_fields(5, 3)
    model = IsingModel.from_params(0.3 * J0, h0)
    x = exact.all_states(5)
    w = exact.log_prob_all(model).exp()
    for f in (solve_nmf, solve_tap, solve_sm):
        torch.testing.assert_close(f(x, weights=w).J, f(_exact_moments(0.3 * J0, h0)).J)


def test_identical_columns_make_a_singular_covariance_named_by_its_columns(gen):
    x = torch.randint(0, 2, (200, 7), generator=gen).double() * 2 - 1
    x[:, 5] = -x[:, 2]
    with pytest.raises(DataError, match="columns 2 and 5 are identical or opposite"):
        solve_nmf(x)
    with pytest.raises(DataError, match="spin 1 has"):
        solve_nmf(Stats(torch.tensor([0.2, 1.0]), torch.eye(2, dtype=torch.float64)))


def test_unweighted_moments_are_exact_counts(gen):
    from kakusan.learn.mean_field import data_moments

    x = torch.randint(0, 2, (5003, 7), generator=gen).to(torch.int8) * 2 - 1
    fast, slow = data_moments(x), Stats.of(x.double())
    assert torch.equal(fast.corr, slow.corr) and torch.equal(fast.mean, slow.mean)

"""KL divergence, entropy, cross-entropy and empirical distributions: exact values and properties."""

import math

import pytest
import torch
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from kakusan.divergence import (
    cross_entropy,
    empirical_distribution,
    empirical_probs,
    entropy,
    kl_divergence,
    log_likelihoods,
    mean_log_likelihood,
    state_index,
)
from kakusan.errors import KakusanError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def distributions(draw, k=None, zeros=True):
    """A probability vector over k states (k drawn if not given), possibly with exact zeros."""
    k = k if k is not None else draw(st.integers(1, 7))
    low = 0.0 if zeros else 1e-3
    w = draw(st.lists(st.floats(low, 1.0, allow_nan=False), min_size=k, max_size=k))
    if sum(w) == 0:
        w[0] = 1.0
    t = torch.tensor(w, dtype=torch.float64)
    return t / t.sum()


@st.composite
def pairs(draw, zeros=True):
    k = draw(st.integers(1, 7))
    return draw(distributions(k, zeros)), draw(distributions(k, zeros))


# --- exact values ---------------------------------------------------------------------------------


def test_kl_known_value():
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence(p, q).item() == pytest.approx(expected, abs=1e-15)
    assert kl_divergence(p, q).dtype == torch.float64


def test_zero_conventions():
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([0.5, 0.25, 0.25])
    assert torch.isfinite(kl_divergence(p, q))  # 0 log 0/q = 0
    assert kl_divergence(q, p).item() == math.inf  # q > 0 where p = 0
    assert entropy(torch.tensor([1.0, 0.0])).item() == 0.0  # 0 log 0 = 0
    assert cross_entropy(q, p).item() == math.inf
    assert not torch.isnan(kl_divergence(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0])))


def test_entropy_uniform_is_log_k():
    for k in (2, 3, 7):
        assert entropy(torch.full((k,), 1.0 / k, dtype=torch.float64)).item() == pytest.approx(math.log(k), abs=1e-14)


def test_batched_over_leading_axes():
    p = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    q = torch.tensor([0.5, 0.5])
    kl = kl_divergence(p, q)
    assert kl.shape == (2,)
    assert kl[1].item() == 0.0


@pytest.mark.parametrize("bad, match", [
    (torch.tensor([0.5, 0.6]), "sums to"),
    (torch.tensor([1.5, -0.5]), "negative"),
    (torch.tensor([float("nan"), 1.0]), "NaN"),
    (torch.tensor([]), "at least one state"),
])
def test_invalid_distributions_raise(bad, match):
    with pytest.raises(KakusanError, match=match):
        kl_divergence(bad, torch.ones(max(bad.numel(), 1)) / max(bad.numel(), 1))


def test_mismatched_sizes_raise():
    with pytest.raises(KakusanError, match="different numbers of states"):
        kl_divergence(torch.tensor([1.0]), torch.tensor([0.5, 0.5]))


# --- empirical distributions -------------------------------------------------------------------


def test_empirical_distribution_rows():
    x = torch.tensor([[0, 1], [1, 1], [0, 1], [0, 0]])
    states, probs = empirical_distribution(x)
    assert states.tolist() == [[0, 0], [0, 1], [1, 1]]
    assert probs.tolist() == [0.25, 0.5, 0.25]
    assert probs.dtype == torch.float64


def test_empirical_distribution_1d_and_errors():
    states, probs = empirical_distribution(torch.tensor([3, 1, 3]))
    assert states.tolist() == [1, 3] and probs.tolist() == pytest.approx([1 / 3, 2 / 3])
    with pytest.raises(KakusanError, match="shape"):
        empirical_distribution(torch.zeros(0, 2))


def test_state_index_and_empirical_probs():
    x = torch.tensor([[0, 0], [0, 2], [2, 1], [0, 2]])
    idx = state_index(x, 3)
    assert idx.tolist() == [0, 2, 7, 2]
    p = empirical_probs(idx, 9)
    assert p.tolist() == [0.25, 0, 0.5, 0, 0, 0, 0, 0.25, 0]
    with pytest.raises(KakusanError, match="0..2"):
        state_index(torch.tensor([[3, 0]]), 3)


def test_log_likelihood_forms_agree():
    q = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    x = torch.tensor([0, 3, 3, 1])
    expected = torch.log(q[x]).mean()
    assert mean_log_likelihood(x, q).item() == pytest.approx(expected.item(), abs=1e-15)
    assert mean_log_likelihood(x, lambda v: torch.log(q[v])).item() == pytest.approx(expected.item(), abs=1e-15)
    states = torch.arange(4)[:, None]
    assert mean_log_likelihood(x[:, None], (states, q)).item() == pytest.approx(expected.item(), abs=1e-15)


def test_log_likelihood_unlisted_state_is_minus_inf():
    table = (torch.tensor([[0, 1], [1, 0]]), torch.tensor([0.5, 0.5]))
    ll = log_likelihoods(torch.tensor([[0, 1], [1, 1]]), table)
    assert ll[0].item() == pytest.approx(math.log(0.5)) and ll[1].item() == -math.inf


def test_log_prob_of_wrong_shape_is_refused():
    with pytest.raises(KakusanError, match="one per sample"):
        mean_log_likelihood(torch.zeros(3), lambda v: torch.zeros(2))


# --- properties -----------------------------------------------------------------------------------


@FAST
@given(pairs())
def test_gibbs_inequality(pq):
    p, q = pq
    kl = kl_divergence(p, q)
    assert kl >= 0
    assert cross_entropy(p, q) >= entropy(p) - 1e-12


@FAST
@given(distributions())
def test_kl_zero_iff_equal(p):
    assert kl_divergence(p, p).item() == pytest.approx(0.0, abs=1e-12)


@FAST
@given(pairs(zeros=False))
def test_kl_positive_when_different(pq):
    p, q = pq
    if (p - q).abs().max() > 1e-6:
        assert kl_divergence(p, q) > 0


@FAST
@given(pairs(zeros=False))
def test_kl_is_cross_entropy_minus_entropy(pq):
    p, q = pq
    assert kl_divergence(p, q).item() == pytest.approx((cross_entropy(p, q) - entropy(p)).item(), abs=1e-12)


def test_kl_is_asymmetric():
    p, q = find(pairs(zeros=False), lambda pq: abs(kl_divergence(*pq) - kl_divergence(pq[1], pq[0])) > 1e-3,
                settings=settings(database=None, max_examples=500))
    assert kl_divergence(p, q).item() != pytest.approx(kl_divergence(q, p).item(), abs=1e-6)
    # and a fixed witness
    a, b = torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.5])
    assert kl_divergence(a, b).item() == pytest.approx(0.368064, abs=1e-6)
    assert kl_divergence(b, a).item() == pytest.approx(0.510826, abs=1e-6)


@FAST
@given(st.integers(2, 3), st.integers(1, 3), st.data())
def test_kl_from_data_identity(alphabet, dim, data):
    """KL(p0 || q) = -H(p0) - (1/n) sum_i log q(x_i) for data rows drawn from a small alphabet."""
    n = data.draw(st.integers(1, 25))
    rows = data.draw(st.lists(st.lists(st.integers(0, alphabet - 1), min_size=dim, max_size=dim),
                              min_size=n, max_size=n))
    x = torch.tensor(rows)
    k = alphabet**dim
    q = data.draw(distributions(k, zeros=False))
    idx = state_index(x, alphabet)
    p0 = empirical_probs(idx, k)
    lhs = kl_divergence(p0, q)
    rhs = -entropy(p0) - mean_log_likelihood(idx, q)
    assert lhs.item() == pytest.approx(rhs.item(), abs=1e-12)
    # the same entropy from the distinct rows alone
    _, probs = empirical_distribution(x)
    assert entropy(probs).item() == pytest.approx(entropy(p0).item(), abs=1e-12)

"""The exact sampler: chi-squared against exact probabilities, seeding, a negative control."""

import pytest
import torch
from scipy import stats

from kakusan.boltzmann import exact
from kakusan.boltzmann.exact import IsingParams

F64 = torch.float64


def params(n: int, seed: int) -> IsingParams:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=F64)
    J = (A + A.T) / 2
    J.fill_diagonal_(0.0)
    return IsingParams(J * 0.6, 0.4 * torch.randn(n, generator=g, dtype=F64))


def chi2_pvalue(samples: torch.Tensor, log_q: torch.Tensor) -> float:
    """Pearson chi-squared of state counts against exact probabilities, pooling rare states."""
    counts = torch.bincount(exact.state_index(samples), minlength=len(log_q)).to(F64)
    expected = torch.exp(log_q) * len(samples)
    rare = expected < 5
    obs = torch.cat([counts[~rare], counts[rare].sum().reshape(1)])
    exp_ = torch.cat([expected[~rare], expected[rare].sum().reshape(1)])
    obs, exp_ = obs[exp_ > 0], exp_[exp_ > 0]
    return float(stats.chisquare(obs.numpy(), exp_.numpy() * obs.sum().item() / exp_.sum().item()).pvalue)


def test_chi_squared_four_spins():
    p = params(4, seed=0)
    x = exact.exact_sample(p, 20_000, generator=1)
    assert x.shape == (20_000, 4) and set(x.unique().tolist()) == {-1.0, 1.0}
    assert chi2_pvalue(x, exact.log_prob_all(p)) > 1e-3


@pytest.mark.parametrize("n", [7, 11])
def test_chi_squared_all_blocks_sampled(n):
    """N = 7, 11: blocks a, b, c all non-empty, so both the (a, c) and the b | a, c draws are tested."""
    p = params(n, seed=n)
    x = exact.exact_sample(p, 40_000, generator=2, beta=0.8)
    assert chi2_pvalue(x, exact.log_prob_all(p, beta=0.8)) > 1e-3


def test_negative_control_detects_the_wrong_model():
    p, other = params(7, seed=7), params(7, seed=8)
    x = exact.exact_sample(other, 40_000, generator=2)
    assert chi2_pvalue(x, exact.log_prob_all(p)) < 1e-10


def test_same_seed_same_samples():
    p = params(9, seed=3)
    a = exact.exact_sample(p, 500, generator=42)
    b = exact.exact_sample(p, 500, generator=torch.Generator().manual_seed(42))
    c = exact.exact_sample(p, 500, generator=43)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sample_moments_match_exact_at_n20():
    """N = 20 (several (a, c) chunks): sample means within 5 standard errors of the exact ones."""
    p = params(20, seed=4)
    p = IsingParams(p.J / 20**0.5, p.h)
    st = exact.exact_stats(p)
    x = exact.exact_sample(p, 100_000, generator=5)
    se = torch.sqrt((1 - st.mean**2) / len(x))
    assert float(((x.mean(0) - st.mean).abs() / se).max()) < 5
    cov_err = (x.T @ x / len(x) - st.corr).abs().max()
    assert float(cov_err) < 5 / len(x) ** 0.5

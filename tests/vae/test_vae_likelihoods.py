"""The observation models p(x|z) against torch's distributions and their own normalisation."""

import math

import pytest
import torch
import torch.nn.functional as F
from vae_helpers import F64

from kakusan.errors import DataError
from kakusan.vae import (
    BernoulliConfig,
    BernoulliLikelihood,
    DiscretisedLogistic,
    GaussianConfig,
    GaussianLikelihood,
    LogisticConfig,
    bits_per_dim,
)

D = 7


@pytest.fixture
def g():
    return torch.Generator().manual_seed(0)


def test_bernoulli_is_binary_cross_entropy(g):
    lik = BernoulliLikelihood(BernoulliConfig(), D)
    logits = 3 * torch.randn(4, 1, D, generator=g, dtype=F64)
    x = torch.bernoulli(torch.full((4, D), 0.5, dtype=F64), generator=g)
    expected = -F.binary_cross_entropy_with_logits(logits[:, 0], x, reduction="none").sum(-1)
    assert torch.allclose(lik.log_prob(logits, x), expected, atol=1e-12)
    assert torch.allclose(lik.mean(logits), torch.sigmoid(logits[:, 0]))


@pytest.mark.parametrize("variance", ["fixed", "shared", "per_dim", "decoder"])
def test_gaussian_is_the_normal_density(variance, g):
    lik = GaussianLikelihood(GaussianConfig(variance, std=0.6), D).to(F64)
    params = torch.randn(4, lik.n_params, D, generator=g, dtype=F64)
    if variance in ("shared", "per_dim"):
        with torch.no_grad():
            lik.log_std.add_(0.1 * torch.randn(lik.log_std.shape, generator=g, dtype=F64))
    x = torch.randn(4, D, generator=g, dtype=F64)
    std = torch.exp(params[:, 1] if variance == "decoder" else lik.log_std.expand(D))
    expected = torch.distributions.Normal(params[:, 0], std).log_prob(x).sum(-1)
    assert torch.allclose(lik.log_prob(params, x), expected, atol=1e-12)
    learnable = {"fixed": 0, "shared": 1, "per_dim": D, "decoder": 0}[variance]
    assert sum(p.numel() for p in lik.parameters()) == learnable


def _all_levels(levels: int, dtype=F64) -> torch.Tensor:
    return torch.arange(levels, dtype=dtype) / (levels - 1)


@pytest.mark.parametrize("mu,log_s", [(0.5, -3.0), (0.0, -5.0), (1.0, -5.0), (-0.7, -4.0), (1.8, -2.0),
                                      (0.3, 2.0), (0.5, -12.0), (0.0 + 0.5 / 255, -9.0)])
def test_discretised_logistic_sums_to_one_over_the_levels(mu, log_s):
    """Including a mean outside [0, 1] (mass piles into an edge bin) and scales far below a bin width."""
    lik = DiscretisedLogistic(LogisticConfig(256), 1)
    x = _all_levels(256)[:, None]  # (256, 1): every value of one pixel
    params = torch.tensor([mu, log_s], dtype=F64).expand(256, 2)[:, :, None]  # (256, 2, 1)
    total = torch.logsumexp(lik.log_prob(params, x), 0)
    assert abs(float(total)) < 1e-9


def test_discretised_logistic_is_the_cdf_difference_with_open_edge_bins(g):
    """P(x) = F(x + h) − F(x − h) inside, P(0) = F(h), P(1) = 1 − F(1 − h), computed naively in float64."""
    levels, n = 16, 50
    lik = DiscretisedLogistic(LogisticConfig(levels), D)
    k = torch.randint(0, levels, (n, D), generator=g)
    k[0], k[1] = 0, levels - 1  # both edges
    x = k.to(F64) / (levels - 1)
    mu, log_s = torch.rand(n, D, generator=g, dtype=F64), torch.rand(n, D, generator=g, dtype=F64) * 3 - 4
    h, s = 0.5 / (levels - 1), torch.exp(log_s)
    upper = torch.where(k == levels - 1, torch.ones_like(x), torch.sigmoid((x + h - mu) / s))
    lower = torch.where(k == 0, torch.zeros_like(x), torch.sigmoid((x - h - mu) / s))
    # right of the mean, the same difference through the upper tails 1 − F (no cancellation near 1)
    tail_lower = torch.where(k == levels - 1, torch.zeros_like(x), torch.sigmoid(-(x + h - mu) / s))
    tail_upper = torch.where(k == 0, torch.ones_like(x), torch.sigmoid(-(x - h - mu) / s))
    expected = torch.log(torch.where(x > mu, tail_upper - tail_lower, upper - lower)).sum(-1)
    assert torch.allclose(lik.log_prob(torch.stack([mu, log_s], 1), x), expected, atol=1e-9)


def test_discretised_logistic_gradients_are_finite_at_extremes():
    lik = DiscretisedLogistic(LogisticConfig(), 3)
    params = torch.tensor([[[-3.0, 0.5, 4.0], [-12.0, -12.0, -12.0]]], dtype=F64, requires_grad=True)
    x = torch.tensor([[1.0, 0.0, 128 / 255]], dtype=F64)  # each value far from its mean
    lik.log_prob(params, x).sum().backward()
    assert bool(torch.isfinite(params.grad).all())


def test_bits_per_dim():
    assert bits_per_dim(-784 * math.log(2), 784) == pytest.approx(1.0)
    assert float(bits_per_dim(torch.tensor(-2 * 3072 * math.log(2)), 3072)) == pytest.approx(2.0)


def test_each_likelihood_refuses_data_it_cannot_model():
    with pytest.raises(DataError, match="binary 0/1 data, found 0.5") as e:
        BernoulliLikelihood(BernoulliConfig(), 2).check(torch.tensor([[0.0, 0.5]]))
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="k/255"):
        DiscretisedLogistic(LogisticConfig(), 2).check(torch.tensor([[0.0, 0.1234]]))
    with pytest.raises(DataError, match="k/255"):
        DiscretisedLogistic(LogisticConfig(), 2).check(torch.tensor([[0.0, 1.5]]))
    DiscretisedLogistic(LogisticConfig(), 2).check(torch.tensor([[0.0, 17 / 255]]))  # on the grid: fine
    with pytest.raises(DataError, match="NaN or infinite"):
        GaussianLikelihood(GaussianConfig(), 2).check(torch.tensor([[0.0, math.nan]]))

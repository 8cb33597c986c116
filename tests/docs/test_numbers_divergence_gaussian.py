"""The numbers docs/divergence-gaussian.md quotes outside its exercises, recomputed (see page_numbers)."""

import pytest
import torch

from kakusan.divergence import empirical_probs, entropy, kl_divergence, mean_log_likelihood, state_index
from kakusan.gaussian import Gaussian, fit_gradient, fit_mle, kl_gaussians
from page_numbers import check

PAGE = "divergence-gaussian"
SCALES = ([1, 1], [10, 10], [100, 100], [1e3, 1e3], [1e-3, 1e-3], [0.01, 100])  # the page's loop


def scaled_data() -> list[torch.Tensor]:
    z = torch.randn(2000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return [z * torch.tensor(sd, dtype=torch.float64) for sd in SCALES]


def test_the_kl_of_the_empirical_example():
    x = torch.tensor([[0, 1], [1, 1], [0, 1], [0, 0]])
    idx = state_index(x, 2)
    p0 = empirical_probs(idx, 4)
    q = torch.tensor([0.1, 0.4, 0.2, 0.3], dtype=torch.float64)
    kl = float(kl_divergence(p0, q))
    assert abs(kl - float(-entropy(p0) - mean_log_likelihood(idx, q))) < 1e-12
    assert float(kl_divergence(q, p0)) == float("inf")
    check(PAGE, "KL(p0||q)", kl)


def test_the_natural_gradient_fit_of_section_4():
    x = Gaussian.from_params([1.0, -2.0], [[1.0, 0.6], [0.6, 2.0]]).sample(500, generator=0)
    fit = fit_gradient(x, method="natural")
    assert fit.converged and float(kl_gaussians(fit_mle(x), fit.model).detach()) < 1e-12
    check(PAGE, "fit.steps", fit.steps)


def test_natural_gradient_steps_grow_with_scale_and_conditioning():
    fits = [fit_gradient(x, method="natural") for x in scaled_data()]
    assert all(f.converged for f in fits)
    check(PAGE, "natural steps", [f.steps for f in fits])


def test_the_plain_gradient_converges_at_unit_scale():
    fit = fit_gradient(scaled_data()[0], method="plain")
    assert fit.converged
    check(PAGE, "plain steps", fit.steps)


@pytest.mark.parametrize("which", [(1, 2, 3), (4, 5)], ids=["isotropic-large", "small-and-anisotropic"])
def test_the_plain_gradient_does_not_converge_in_2000_steps_at_the_other_scales(which):
    data = scaled_data()
    for i in which:   # split in two tests of ~3 CPU-s each; the default is steps=2000
        fit = fit_gradient(data[i], method="plain")
        assert not fit.converged and fit.steps == 2000, SCALES[i]

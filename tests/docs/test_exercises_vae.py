"""The exercises of docs/vae.md: each printed answer is what kakusan computes."""

import math

import torch

from exercise_answers import answers, check
from kakusan.vae import VAE, DiagonalGaussian, linear_gaussian as lg
from kakusan.vae.ladder import gaussian_kl_units

PAGE = "vae"
F64 = torch.float64


def _gaussian(mean, var) -> DiagonalGaussian:
    return DiagonalGaussian(torch.tensor([mean], dtype=F64), torch.tensor([var], dtype=F64).log())


def _ppca() -> VAE:
    """The model of exercises 2 and 3: D = 2, L = 1, W = (2, 1)ᵀ, b = (0, 1), σ² = 0.5."""
    vae = VAE(lg.linear_config(2, 1)).double()
    lg.set_decoder(vae, torch.tensor([0.0, 1.0], dtype=F64), torch.tensor([[2.0], [1.0]], dtype=F64), 0.5)
    return vae


def test_the_page_prints_three_answers():
    assert set(answers(PAGE)) == {"KL(q||p)", "log p(x)", "gap"}


def test_exercise_1_kl_of_two_diagonal_gaussians():
    mq, vq, mp, vp = [1.0, -1.0], [0.5, 2.0], [0.0, 0.5], [1.0, 4.0]
    units = gaussian_kl_units(_gaussian(mq, vq), _gaussian(mp, vp))[0]
    by_hand = [0.5 * (math.log(b / a) - 1 + (a + (m - n) ** 2) / b) for m, a, n, b in zip(mq, vq, mp, vp)]
    torch.testing.assert_close(units, torch.tensor(by_hand, dtype=F64), rtol=1e-12, atol=0)
    check(PAGE, "KL(q||p)", float(units.sum()))


def test_exercise_2_ppca_log_likelihood_of_one_point():
    x = torch.tensor([[1.0, 2.0]], dtype=F64)
    with torch.no_grad():
        log_p = float(_ppca().exact_log_likelihood(x))
    cov = torch.tensor([[4.5, 2.0], [2.0, 1.5]], dtype=F64)  # W Wᵀ + σ² I
    r = x[0] - torch.tensor([0.0, 1.0], dtype=F64)
    by_hand = -0.5 * (2 * math.log(2 * math.pi) + math.log(float(torch.det(cov))) + float(r @ torch.linalg.solve(cov, r)))
    assert math.isclose(log_p, by_hand, rel_tol=1e-12)
    check(PAGE, "log p(x)", log_p)


def test_exercise_3_the_exact_elbo_gap():
    vae = _ppca()
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]], dtype=F64)
    with torch.no_grad():
        _, cov = lg.exact_posterior(vae, x)
        assert math.isclose(float(cov), 1 / 11, rel_tol=1e-12)
        lg.set_exact_posterior(vae)
        assert float(lg.posterior_gap(vae, x).abs().max()) < 1e-12  # the E-step closes the gap
        vae.encoder.net[0].bias[:1] += 0.5  # q's mean up by 0.5
        vae.encoder.net[0].bias[1:] += math.log(2.0)  # q's variance doubled
        gap = lg.posterior_gap(vae, x)
    by_hand = 0.5 * (-math.log(2.0) - 1 + 2 + 0.5**2 / (1 / 11))
    torch.testing.assert_close(gap, torch.full((3,), by_hand, dtype=F64), rtol=1e-10, atol=0)
    check(PAGE, "gap", by_hand)

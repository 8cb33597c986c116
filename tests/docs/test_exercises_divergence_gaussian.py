"""The exercises of docs/divergence-gaussian.md: each printed answer is what kakusan computes."""

import math

import torch

from exercise_answers import answers, check
from kakusan.divergence import kl_divergence
from kakusan.gaussian import Gaussian, fit_mle, kl_gaussians

PAGE = "divergence-gaussian"
F64 = torch.float64


def test_the_page_prints_three_answers():
    assert set(answers(PAGE)) == {"KL(p||q)", "KL(q||p)", "ln Z", "loss"}


def test_exercise_1_kl_is_not_symmetric():
    p, q = torch.tensor([0.5, 0.3, 0.2], dtype=F64), torch.tensor([0.2, 0.4, 0.4], dtype=F64)
    forward, backward = float(kl_divergence(p, q)), float(kl_divergence(q, p))
    assert math.isclose(forward, float((p * (p / q).log()).sum()), rel_tol=1e-12)
    terms, bounds = p * (q / p).log(), p * (q / p - 1)  # Gibbs: each term below its bound, which sum to 0
    assert bool((terms <= bounds).all()) and abs(float(bounds.sum())) < 1e-15
    check(PAGE, "KL(p||q)", forward)
    check(PAGE, "KL(q||p)", backward)
    assert forward != backward


def test_exercise_2_normaliser_by_diagonalisation():
    sigma = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]], dtype=F64)
    eigenvalues = torch.linalg.eigvalsh(sigma)
    log_z = 1.5 * math.log(2 * math.pi) + 0.5 * float(eigenvalues.log().sum())
    with torch.no_grad():
        from_cholesky = -float(Gaussian.from_params([0.0, 0.0, 0.0], sigma).log_prob(torch.zeros(1, 3, dtype=F64)))
    assert math.isclose(log_z, from_cholesky, rel_tol=1e-12)
    check(PAGE, "ln Z", log_z)


def test_exercise_3_likelihood_loss_is_the_kl_from_the_mle():
    x = Gaussian.from_params([1.0, -2.0], [[1.0, 0.6], [0.6, 2.0]]).sample(500, generator=0)
    q_mle, q = fit_mle(x), Gaussian.from_params([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    with torch.no_grad():
        loss = float(q_mle.log_prob(x).mean() - q.log_prob(x).mean())
        kl = float(kl_gaussians(q_mle, q))
    assert math.isclose(loss, kl, rel_tol=1e-10)
    check(PAGE, "loss", loss)

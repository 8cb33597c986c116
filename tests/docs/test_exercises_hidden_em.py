"""The exercises of docs/hidden-em.md: each printed answer is what kakusan computes."""

import torch

from exercise_answers import answers, check
from kakusan.mixture import GaussianMixture, MixtureParams
from kakusan.optim.em import e_step, fit_em, jensen_bound

PAGE = "hidden-em"
F64 = torch.float64


def test_the_page_prints_every_answer():
    assert set(answers(PAGE)) == {"ln q(x)", "F", "gap", "q(z=1|x)", "final log-likelihood",
                                  "true model's log-likelihood", "iterations", "pi_1"}


def test_exercise_1_the_gap_of_the_jensen_bound_is_a_kl_divergence():
    model = GaussianMixture(n_components=2, dim=1)
    model.set_params(MixtureParams(weights=torch.tensor([0.4, 0.6], dtype=F64),
                                   means=torch.tensor([[-1.0], [2.0]], dtype=F64),
                                   covariances=torch.tensor([[[1.0]], [[0.5]]], dtype=F64)))
    x, r = torch.tensor([[0.5]], dtype=F64), torch.tensor([[0.5, 0.5]], dtype=F64)
    log_q, bound = float(model.log_prob(x)[0]), float(jensen_bound(model, x, r)[0])
    posterior = e_step(model, x).resp
    kl = float((r * (r / posterior).log()).sum())
    assert abs((log_q - bound) - kl) < 1e-12
    assert abs(float(jensen_bound(model, x, posterior)[0]) - log_q) < 1e-12  # tight at the posterior
    check(PAGE, "ln q(x)", log_q)
    check(PAGE, "F", bound)
    check(PAGE, "gap", log_q - bound)
    check(PAGE, "q(z=1|x)", float(posterior[0, 0]))


def test_exercise_2_the_em_sandwich_and_the_fit_beating_the_truth():
    truth = GaussianMixture(n_components=2, dim=3)
    truth.set_params(MixtureParams(
        weights=torch.tensor([0.3, 0.7], dtype=F64),
        means=torch.tensor([[-2.0, 0.0, 1.0], [2.0, 1.0, -1.0]], dtype=F64),
        covariances=torch.eye(3, dtype=F64).expand(2, 3, 3) * torch.tensor([0.5, 1.5]).view(2, 1, 1),
    ))
    x = truth.sample(503, generator=0)
    model = GaussianMixture(n_components=2, dim=3)
    result = fit_em(model, x, max_iter=100, tol=1e-8, reg_covar=0.0, generator=1)
    ll, bound = result.log_likelihood, result.bound
    assert all(ll[t] <= bound[t] + 1e-12 and bound[t] <= ll[t + 1] + 1e-12 for t in range(len(bound)))
    true_ll = float(truth.log_prob(x).mean())
    assert ll[-1] > true_ll
    check(PAGE, "final log-likelihood", ll[-1])
    check(PAGE, "true model's log-likelihood", true_ll)
    assert answers(PAGE)["iterations"] == str(result.n_iter)
    check(PAGE, "pi_1", float(model.weights[0]))

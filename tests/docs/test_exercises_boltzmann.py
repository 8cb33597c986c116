"""The exercises of docs/boltzmann.md: each printed answer is what kakusan computes."""

import math

import torch

from exercise_answers import answers, check
from kakusan.boltzmann import IsingModel, exact_stats, instances, kl_divergence
from kakusan.learn import lipschitz_bound

PAGE = "boltzmann"
F64 = torch.float64


def test_the_page_prints_every_answer():
    assert set(answers(PAGE)) == {"h'", "f(h)", "f(h')", "f(h) - f'(h)^2/(2L)", "ln Z", "<x_1>", "Var(x_1)",
                                  "KL before", "KL after", "guaranteed decrease"}


def test_exercise_1_one_surrogate_step_of_the_one_spin_machine():
    model = IsingModel(1)
    x = torch.tensor([[1.0]] * 4 + [[-1.0]], dtype=F64)

    def f(h: float) -> float:
        model.set_params(torch.zeros(1, 1), torch.tensor([h], dtype=F64))
        with torch.no_grad():
            return float(-model.log_prob(x).mean())

    L = lipschitz_bound(model)
    assert L == 1.0
    h, grad = -1.0, math.tanh(-1.0) - 0.6
    step = h - grad / L
    guaranteed = f(h) - grad**2 / (2 * L)
    assert f(step) <= guaranteed
    check(PAGE, "h'", step)
    check(PAGE, "f(h)", f(h))
    check(PAGE, "f(h')", f(step))
    check(PAGE, "f(h) - f'(h)^2/(2L)", guaranteed)


def test_exercise_2_derivatives_of_log_z_are_mean_and_variance():
    model = instances.sherrington_kirkpatrick(10, beta=1.0, field_std=0.3, seed=7)
    stats = exact_stats(model)

    def log_z(dh: float) -> float:
        shifted = IsingModel(10)
        h = model.h.detach().clone()
        h[0] += dh
        shifted.set_params(model.couplings().detach(), h)
        return exact_stats(shifted).log_z

    eps = 1e-4
    mean, var = float(stats.mean[0]), 1.0 - float(stats.mean[0]) ** 2
    assert abs((log_z(eps) - log_z(-eps)) / (2 * eps) - mean) < 1e-7
    assert abs((log_z(eps) - 2 * log_z(0.0) + log_z(-eps)) / eps**2 - var) < 1e-5
    check(PAGE, "ln Z", stats.log_z)
    check(PAGE, "<x_1>", mean)
    check(PAGE, "Var(x_1)", var)


def test_exercise_3_one_step_lowers_the_kl_by_at_least_the_guarantee():
    x = instances.sherrington_kirkpatrick(4, beta=1.0, field_std=0.5, seed=3).sample(1000, generator=1)
    model = IsingModel(4)
    L = lipschitz_bound(model)
    assert L == 10.0
    before = kl_divergence(model, x)
    stats = exact_stats(model)
    grad_h = stats.mean - x.mean(0)  # ∂KL/∂h_k = <x_k>_model − <x_k>_data
    grad_j = stats.corr - x.T @ x / len(x)  # ∂KL/∂J_kl, k < l
    k, l = torch.triu_indices(4, 4, 1)
    guaranteed = float((grad_h**2).sum() + (grad_j[k, l] ** 2).sum()) / (4 * 5)
    model.set_params(model.couplings().detach() - grad_j / L, model.h.detach() - grad_h / L)
    after = kl_divergence(model, x)
    assert before - after >= guaranteed
    check(PAGE, "KL before", before)
    check(PAGE, "KL after", after)
    check(PAGE, "guaranteed decrease", guaranteed)

"""The exercises of docs/mcmc-free.md: each printed answer is what kakusan computes."""

import math

import torch

from exercise_answers import answers, check
from kakusan.boltzmann import IsingModel, exact, instances
from kakusan.learn.inverse import solve
from kakusan.learn.mpf import flow_objective

PAGE = "mcmc-free"
F64 = torch.float64


def test_the_page_prints_every_answer():
    assert set(answers(PAGE)) == {
        *(f"{m} error" for m in ("nMF", "TAP", "SM")), *(f"{m} ratio" for m in ("nMF", "TAP", "SM")),
        *(f"{m}, M {M}" for m in ("nMF", "TAP", "PLM", "MPF") for M in (1000, 10000)),
        "K, apart", "KL/t, apart", "K, adjacent", "KL/t, adjacent", "internal flow"}


def test_exercise_1_orders_of_the_mean_field_family():
    base = instances.sherrington_kirkpatrick(6, field_std=0.5, seed=0)
    J0, h0 = base.couplings().detach(), base.h.detach()
    x = exact.all_states(6)
    error = {}
    for b in (0.1, 0.05):
        w = torch.exp(exact.log_prob_all(IsingModel.from_params(b * J0, h0)))
        for method in ("nmf", "tap", "sm"):
            error[method, b] = float((solve(x, method, weights=w).J - b * J0).norm() / (b * J0).norm())
    for method, name in (("nmf", "nMF"), ("tap", "TAP"), ("sm", "SM")):
        check(PAGE, f"{name} error", error[method, 0.1])
        check(PAGE, f"{name} ratio", error[method, 0.1] / error[method, 0.05])


def test_exercise_2_consistent_or_biased():
    truth = instances.sherrington_kirkpatrick(8, beta=1.0, field_std=0.3, seed=0)
    J = truth.couplings().detach()
    for M in (1000, 10000):
        x = truth.sample(M, generator=1)
        for method in ("nmf", "tap", "plm", "mpf"):
            check(PAGE, f"{method.upper() if method != 'nmf' else 'nMF'}, M {M}",
                  float((solve(x, method).J - J).norm() / J.norm()))


def test_exercise_3_mpf_objective_is_the_initial_outflow():
    model = instances.sherrington_kirkpatrick(3, field_std=0.5, seed=2)
    J, h = model.couplings().detach(), model.h.detach()
    x = exact.all_states(3)
    E = model.energy(x).detach()
    rates = torch.zeros(8, 8, dtype=F64)  # rates[x', x]: the rate x → x'
    for k in range(3):
        flipped = x.clone()
        flipped[:, k] *= -1
        j = exact.state_index(flipped)
        rates[j, torch.arange(8)] = torch.exp(0.5 * (E - E[j]))
    generator = rates - torch.diag(rates.sum(0))  # dp/dt = generator @ p
    t, rate = 1e-5, {}
    pairs = {"apart": [[1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]], "adjacent": [[1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]]}
    for name, data in pairs.items():
        d = torch.tensor(data, dtype=F64)
        p0 = torch.zeros(8, dtype=F64)
        p0[exact.state_index(d)] = 0.5
        p = torch.linalg.matrix_exp(t * generator) @ p0
        on = p0 > 0
        rate[name] = float((p0[on] * torch.log(p0[on] / p[on])).sum()) / t
        check(PAGE, f"K, {name}", float(flow_objective(d, J, h)))
        check(PAGE, f"KL/t, {name}", rate[name])
    E1, E2 = model.energy(torch.tensor(pairs["adjacent"], dtype=F64)).tolist()
    internal = math.cosh(0.5 * (E1 - E2))
    check(PAGE, "internal flow", internal)
    K = float(flow_objective(torch.tensor(pairs["adjacent"], dtype=F64), J, h))
    assert abs(K - internal - rate["adjacent"]) < 1e-3  # what is left is the O(t) remainder

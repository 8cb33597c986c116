"""The exercises of docs/rbm.md: each printed answer is what kakusan computes."""

import itertools
import math

import torch

from exercise_answers import answers, check
from kakusan.rbm import BernoulliRBM, exact
from kakusan.rbm.ais import ais, default_betas

PAGE = "rbm"
F64 = torch.float64


def rbm() -> BernoulliRBM:
    return BernoulliRBM(7, 5, dtype="float64", weight_std=1.0, seed=3)


def test_the_page_prints_every_answer():
    assert set(answers(PAGE)) == {"ln Z", "ln Z_A", "ln Z_0", "ln Z_B - ln Z_0", "z"}


def test_exercise_1_three_ways_to_log_z():
    model = rbm()
    v = torch.tensor(list(itertools.product([0.0, 1.0], repeat=7)), dtype=F64)  # (128, 7)
    h = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)), dtype=F64)  # (32, 5)
    with torch.no_grad():
        energies = torch.stack([model.energy(v, row.expand(len(v), -1)) for row in h])  # (32, 128)
        brute = float(torch.logsumexp(-energies.flatten(), 0))
        free = float(torch.logsumexp(-model.free_energy(v), 0))
    smaller = exact.log_z(model)
    assert abs(brute - free) < 1e-12 and abs(brute - smaller) < 1e-12
    check(PAGE, "ln Z", smaller)


def test_exercise_2_the_ais_start_and_its_normaliser():
    model = rbm()
    v = exact.sample(model, 500, generator=0)
    base = model.base_rate(v)
    log_z_a = float(torch.nn.functional.softplus(base.bias).sum())
    log_z_0 = log_z_a + model.n_hidden * math.log(2.0)
    est = ais(model, v, n_runs=200, betas=default_betas(50, 400, 1000), generator=0)
    assert abs(est.log_z_base - log_z_0) < 1e-12 and abs(base.log_z() - log_z_a) < 1e-12
    log_z = exact.log_z(model)
    z = (est.log_z - log_z) / est.log_z_stderr
    assert abs(z) < 4
    check(PAGE, "ln Z_A", log_z_a)
    check(PAGE, "ln Z_0", log_z_0)
    check(PAGE, "ln Z_B - ln Z_0", log_z - log_z_0)
    check(PAGE, "z", z)

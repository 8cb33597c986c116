"""The intuition figures draw what they claim: the inequalities hold on the plotted arrays, and the files are written."""

import math

import numpy as np
import torch
from matplotlib.image import imread

from kakusan.boltzmann import IsingModel
from kakusan.learn import lipschitz_bound
from kakusan.report import intuition


def test_log_lies_below_the_line_and_touches_it_only_at_one():
    c = intuition.log_bound_curves()
    gap = c.line - c.log_t
    assert np.all(gap >= 0.0)
    touch = np.flatnonzero(gap < 1e-12)
    assert c.t[touch].tolist() == [1.0]
    assert gap[c.t != 1.0].min() > 0.0


def test_jensen_mean_of_log_lies_on_the_chord_below_the_log_of_the_mean():
    j = intuition.jensen_points((0.5, 4.0), (0.3, 0.7))
    assert j.mean == 0.3 * 0.5 + 0.7 * 4.0
    assert j.mean_log == 0.3 * math.log(0.5) + 0.7 * math.log(4.0)
    assert abs(np.interp(j.mean, j.chord_x, j.chord) - j.mean_log) < 1e-12  # the chord passes (E X, E ln X)
    assert j.mean_log < j.log_mean
    assert np.all(j.chord <= np.log(j.chord_x) + 1e-12)  # a concave curve lies above its chord
    assert j.chord[0] == math.log(0.5) and abs(j.chord[-1] - math.log(4.0)) < 1e-12


def test_quadratic_bound_lies_above_f_touches_at_theta_and_its_minimiser_decreases_f():
    q = intuition.quadratic_bound(theta=-1.0, data_mean=0.6)
    assert q.lipschitz == lipschitz_bound(IsingModel(1)) == 1.0  # L = N(N+1)/2 with N = 1
    assert np.all(q.bound >= q.f - 1e-12)
    at = np.flatnonzero(q.theta_grid == q.theta)
    assert len(at) == 1 and abs(q.bound[at[0]] - q.f[at[0]]) < 1e-15
    assert q.theta_grid[np.argmin(q.bound)] == q.step
    grad = math.tanh(q.theta) - q.data_mean
    f_theta, f_step = (float(intuition.one_spin_nll(t, q.data_mean)) for t in (q.theta, q.step))
    assert f_step <= f_theta - grad**2 / (2 * q.lipschitz)  # the guaranteed decrease


def test_one_spin_nll_is_the_exact_nll_of_a_one_spin_boltzmann_machine():
    model = IsingModel(1)
    x = torch.tensor([[1.0]] * 4 + [[-1.0]], dtype=torch.float64)  # ⟨x⟩_data = 0.6
    for h in (-1.3, 0.0, 0.7):
        model.set_params(torch.zeros(1, 1), torch.tensor([h], dtype=torch.float64))
        with torch.no_grad():
            exact = float(-model.log_prob(x).mean())
        assert abs(float(intuition.one_spin_nll(h, 0.6)) - exact) < 1e-12


def test_write_all_writes_three_pngs(tmp_path):
    paths = intuition.write_all(tmp_path / "figs")
    assert [p.name for p in paths] == ["intuition_log.png", "intuition_jensen.png", "intuition_surrogate.png"]
    for p in paths:
        assert imread(p).shape[0] > 100
    assert intuition.main([str(tmp_path / "again")]) == 0
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(intuition.FILES.values())

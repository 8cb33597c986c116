"""Minimum probability flow: exact recovery, the flow objective and its gradient, penalties."""

import pytest
import torch

from kakusan.boltzmann import exact, instances
from kakusan.learn.inverse_base import pack_grad, unpack
from kakusan.learn.mpf import flow_objective, solve_mpf, value_and_grad


def _truth(n, beta=1.0):
    return instances.sherrington_kirkpatrick(n, beta=beta, field_std=0.5, seed=n)


@pytest.mark.parametrize("n", [5, 7, 11])
def test_exact_probabilities_give_back_the_true_model(n):
    truth = _truth(n)
    x, w = exact.all_states(n), exact.log_prob_all(truth).exp()
    result = solve_mpf(x, weights=w, tol=1e-10)
    assert result.converged
    torch.testing.assert_close(result.J, truth.couplings().detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(result.h, truth.h.detach(), atol=1e-6, rtol=0)


def test_flow_out_of_the_model_vanishes_at_the_truth():
    # detailed balance: with p0 = q the gradient of K is zero at the true parameters
    truth = _truth(7)
    x, w = exact.all_states(7), exact.log_prob_all(truth).exp()
    _, gJ, gh = value_and_grad(x, w, truth.couplings().detach(), truth.h.detach())
    assert float(pack_grad(gJ, gh).abs().max()) < 1e-12


def test_local_field_form_equals_the_energy_definition_and_autograd(gen):
    n, m = 7, 23
    x = torch.randint(0, 2, (m, n), generator=gen).double() * 2 - 1
    w = torch.rand(m, generator=gen, dtype=torch.float64)
    w = w / w.sum()
    theta = 0.4 * torch.randn(n * (n - 1) // 2 + n, generator=gen, dtype=torch.float64)
    t = theta.clone().requires_grad_(True)
    K = flow_objective(x, *unpack(t, n), w)
    torch.log(K).backward()
    value, gJ, gh = value_and_grad(x, w, *unpack(theta, n))
    torch.testing.assert_close(value, torch.log(K.detach()))  # the solver minimises log K
    torch.testing.assert_close(pack_grad(gJ, gh), t.grad)


def test_log_flow_does_not_overflow_far_from_the_optimum(gen):
    x = torch.randint(0, 2, (50, 5), generator=gen).double() * 2 - 1
    w = torch.full((50,), 1 / 50, dtype=torch.float64)
    J = 500 * torch.ones(5, 5, dtype=torch.float64).fill_diagonal_(0.0)
    value, gJ, gh = value_and_grad(x, w, J, torch.zeros(5, dtype=torch.float64))
    assert torch.isfinite(value) and torch.isfinite(gJ).all() and torch.isfinite(gh).all()


def test_l2_and_l1_shrink_the_couplings(gen):
    truth = _truth(7)
    x = truth.sample(2000, gen)
    norms = [float(solve_mpf(x, l2=l2).J.norm()) for l2 in (0.0, 0.01, 0.1)]
    assert norms == sorted(norms, reverse=True)
    sparse = solve_mpf(x, l1=0.02)
    iu = torch.triu_indices(7, 7, 1)
    assert int((sparse.J[iu[0], iu[1]] == 0).sum()) >= 3
    assert float(sparse.J.norm()) < norms[0]


def test_finite_samples_converge_towards_the_truth(gen):
    truth = _truth(7, beta=0.8)
    tJ = truth.couplings().detach()
    errs = [float((solve_mpf(truth.sample(m, gen)).J - tJ).norm() / tJ.norm()) for m in (1000, 30000)]
    assert errs[1] < 0.5 * errs[0] and errs[1] < 0.08


def test_blocked_online_log_sum_exp_equals_one_pass(gen, monkeypatch):
    import kakusan.learn.mpf as module

    m, n = 301, 11
    x = torch.randint(0, 2, (m, n), generator=gen).double() * 2 - 1
    x[-1] = 1.0  # the largest exponent sits in the last block: every earlier block gets rescaled
    w = torch.rand(m, generator=gen, dtype=torch.float64)
    w = w / w.sum()
    J = -3.0 * torch.ones(n, n, dtype=torch.float64).fill_diagonal_(0.0)
    h = torch.randn(n, generator=gen, dtype=torch.float64)
    whole = value_and_grad(x, w, J, h)
    monkeypatch.setattr(module, "row_blocks", lambda x: [slice(s, s + 37) for s in range(0, len(x), 37)])
    for a, b in zip(value_and_grad(x, w, J, h), whole):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(whole[0], torch.log(flow_objective(x, J, h, w)))

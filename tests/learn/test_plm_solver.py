"""Pseudo-likelihood maximisation: exact recovery, gradients, penalties, consistency."""

import pytest
import torch

from kakusan.boltzmann import exact, instances
from kakusan.learn.inverse_base import pack, pack_grad, unpack
from kakusan.learn.pseudolikelihood import neg_log_pseudolikelihood, solve_plm, value_and_grad


def _truth(n, beta=1.0):
    return instances.sherrington_kirkpatrick(n, beta=beta, field_std=0.5, seed=n)


def _exact_data(truth):
    return exact.all_states(truth.n_visible), exact.log_prob_all(truth).exp()


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("n", [5, 7, 11])
def test_exact_probabilities_give_back_the_true_model(n, symmetric):
    # with p0 = q the pseudo-likelihood is maximised exactly at the truth (consistency)
    truth = _truth(n)
    x, w = _exact_data(truth)
    result = solve_plm(x, weights=w, symmetric=symmetric, tol=1e-10)
    assert result.converged
    torch.testing.assert_close(result.J, truth.couplings().detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(result.h, truth.h.detach(), atol=1e-6, rtol=0)


def test_objective_is_the_sum_of_exact_log_conditionals():
    truth = _truth(5)
    x = exact.all_states(5)[:17]
    J, h = truth.couplings().detach(), truth.h.detach()
    up = truth.conditional_up(x).detach()  # q(x_k = +1 | rest)
    log_cond = torch.where(x > 0, up, 1 - up).log().sum(1)
    torch.testing.assert_close(neg_log_pseudolikelihood(x, J, h), -log_cond.mean())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_analytic_gradient_equals_autograd_for_any_coupling_matrix(gen, dtype):
    m, n = 31, 7
    x = (torch.randint(0, 2, (m, n), generator=gen) * 2 - 1).to(dtype)
    w = torch.rand(m, generator=gen, dtype=dtype)
    w = w / w.sum()
    J = (0.4 * torch.randn(n, n, generator=gen, dtype=dtype)).fill_diagonal_(0.0)  # not symmetric
    h = torch.randn(n, generator=gen, dtype=dtype)
    Jg, hg = J.clone().requires_grad_(True), h.clone().requires_grad_(True)
    loss = neg_log_pseudolikelihood(x, Jg, hg, w)
    loss.backward()
    value, gJ, gh = value_and_grad(x, w, J, h)
    tol = dict(atol=1e-12, rtol=1e-10) if dtype == torch.float64 else dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(value, loss.detach().to(torch.float64), **tol)
    torch.testing.assert_close(gJ, Jg.grad, **tol)
    torch.testing.assert_close(gh, hg.grad, **tol)


def test_symmetric_parameter_gradient_is_autograd_through_the_packing(gen):
    n = 5
    x = torch.randint(0, 2, (40, n), generator=gen).double() * 2 - 1
    w = torch.full((40,), 1 / 40, dtype=torch.float64)
    theta = 0.3 * torch.randn(n * (n - 1) // 2 + n, generator=gen, dtype=torch.float64)
    t = theta.clone().requires_grad_(True)
    neg_log_pseudolikelihood(x, *unpack(t, n), w).backward()
    _, gJ, gh = value_and_grad(x, w, *unpack(theta, n))
    torch.testing.assert_close(pack_grad(gJ, gh), t.grad)


def test_l2_shrinks_the_couplings_monotonically(gen):
    truth = _truth(7)
    x = truth.sample(2000, gen)
    norms = [float(solve_plm(x, l2=l2).J.norm()) for l2 in (0.0, 0.01, 0.1, 1.0)]
    assert norms == sorted(norms, reverse=True) and norms[-1] < 0.5 * norms[0]


def test_l1_gives_exact_zeros_and_satisfies_the_optimality_conditions(gen):
    truth = _truth(7)
    x = truth.sample(2000, gen)
    lam = 0.02
    result = solve_plm(x, l1=lam, tol=1e-10)
    J = result.J
    iu = torch.triu_indices(7, 7, 1)
    coupling = J[iu[0], iu[1]]
    assert int((coupling == 0).sum()) >= 3  # sparsity: exact zeros
    assert float(J.norm()) < float(solve_plm(x).J.norm())
    w = torch.full((len(x),), 1 / len(x), dtype=torch.float64)
    _, gJ, gh = value_and_grad(x, w, J, result.h)
    g = pack_grad(gJ, gh)[: len(coupling)]
    zero = coupling == 0
    assert float(g[zero].abs().max()) <= lam + 1e-7  # subgradient condition at 0
    torch.testing.assert_close(g[~zero], -lam * torch.sign(coupling[~zero]), atol=1e-6, rtol=0)
    assert float(gh.abs().max()) < 1e-7


def test_finite_samples_converge_towards_the_truth(gen):
    truth = _truth(7, beta=0.8)
    tJ = truth.couplings().detach()
    errs = [float((solve_plm(truth.sample(m, gen)).J - tJ).norm() / tJ.norm()) for m in (1000, 30000)]
    assert errs[1] < 0.5 * errs[0] and errs[1] < 0.06


def test_float32_evaluation_matches_float64(gen):
    truth = _truth(11)
    x = truth.sample(5000, gen)
    a, b = solve_plm(x, dtype=torch.float32), solve_plm(x, dtype=torch.float64)
    assert a.J.dtype == torch.float64
    torch.testing.assert_close(a.J, b.J, atol=1e-4, rtol=0)


def test_asymmetric_variant_is_close_to_the_symmetric_one(gen):
    truth = _truth(7)
    x = truth.sample(5000, gen)
    a, b = solve_plm(x), solve_plm(x, symmetric=False)
    assert b.method == "plm-asym"
    tJ = truth.couplings().detach()
    assert float((a.J - b.J).norm()) < 0.3 * float((a.J - tJ).norm()) + 1e-3


def test_runs_on_the_data_device(gen):
    x = (_truth(5).sample(500, gen)).to(torch.float32)
    result = solve_plm(x)
    assert result.J.device == x.device and result.J.dtype == torch.float64
    J, h = unpack(pack(result.J, result.h), 5)
    torch.testing.assert_close(J, result.J)
    torch.testing.assert_close(h, result.h)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_data_are_solved_on_the_gpu(gen):
    truth = _truth(7)
    x = truth.sample(3000, gen)
    a, b = solve_plm(x.cuda()), solve_plm(x)
    assert a.J.is_cuda
    torch.testing.assert_close(a.J.cpu(), b.J, atol=1e-5, rtol=0)


def test_blocked_evaluation_equals_one_pass(gen, monkeypatch):
    import kakusan.learn.pseudolikelihood as module

    m, n = 301, 11
    x = torch.randint(0, 2, (m, n), generator=gen).double() * 2 - 1
    w = torch.rand(m, generator=gen, dtype=torch.float64)
    w = w / w.sum()
    J = (0.3 * torch.randn(n, n, generator=gen, dtype=torch.float64)).fill_diagonal_(0.0)
    h = torch.randn(n, generator=gen, dtype=torch.float64)
    whole = value_and_grad(x, w, J, h)
    monkeypatch.setattr(module, "row_blocks", lambda x: [slice(s, s + 37) for s in range(0, len(x), 37)])
    for a, b in zip(value_and_grad(x, w, J, h), whole):
        torch.testing.assert_close(a, b)

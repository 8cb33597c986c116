import pytest
import torch

from kakusan.errors import KakusanError
from kakusan.optim.surrogate import SurrogateGD, make_optimizer, soft_threshold


def _quadratic(n: int, gen: torch.Generator):
    a = torch.randn(n, n, generator=gen, dtype=torch.float64)
    A = a @ a.T + 0.1 * torch.eye(n, dtype=torch.float64)  # positive definite, curvature A
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    return A, b, lambda th: 0.5 * th @ A @ th - b @ th


def test_step_with_true_bound_never_increases_and_converges(gen):
    A, b, f = _quadratic(7, gen)
    theta = torch.zeros(7, dtype=torch.float64, requires_grad=True)
    opt = SurrogateGD([theta], lipschitz=float(torch.linalg.eigvalsh(A).max()))
    values = []
    for _ in range(3000):
        opt.zero_grad()
        loss = f(theta)
        loss.backward()
        values.append(float(loss.detach()))
        opt.step()
    assert all(v1 <= v0 + 1e-12 for v0, v1 in zip(values, values[1:]))
    torch.testing.assert_close(theta.detach(), torch.linalg.solve(A, b), atol=1e-6, rtol=0)


def test_a_step_larger_than_one_over_L_can_increase_f(gen):
    """Negative control: with L below the curvature the guarantee is lost."""
    A, b, f = _quadratic(5, gen)
    theta = torch.ones(5, dtype=torch.float64, requires_grad=True)
    opt = SurrogateGD([theta], lipschitz=0.3 * float(torch.linalg.eigvalsh(A).max()))
    values = []
    for _ in range(50):
        opt.zero_grad()
        loss = f(theta)
        loss.backward()
        values.append(float(loss.detach()))
        opt.step()
    assert any(v1 > v0 for v0, v1 in zip(values, values[1:]))


def test_backtracking_finds_a_bound_from_a_tiny_guess(gen):
    A, b, f = _quadratic(6, gen)
    theta = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = SurrogateGD([theta], lipschitz=1e-3, backtracking=True)

    def closure():
        opt.zero_grad()
        loss = f(theta)
        loss.backward()
        return loss

    values = [float(opt.step(closure)) for _ in range(2000)]
    assert all(v1 <= v0 + 1e-12 for v0, v1 in zip(values, values[1:]))
    torch.testing.assert_close(theta.detach(), torch.linalg.solve(A, b), atol=1e-6, rtol=0)


def test_l1_proximal_step_is_the_lasso_solution_for_identity_curvature():
    a = torch.tensor([3.0, -0.2, 0.5, -2.0], dtype=torch.float64)
    theta = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = SurrogateGD([theta], lipschitz=1.0, l1=0.7)
    loss = 0.5 * ((theta - a) ** 2).sum()
    loss.backward()
    opt.step()
    torch.testing.assert_close(theta.detach(), soft_threshold(a, 0.7))
    assert theta[1] == 0 and theta[2] == 0


def test_make_optimizer_errors():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(KakusanError, match="curvature bound"):
        make_optimizer("surrogate", p)
    with pytest.raises(KakusanError, match="learning rate"):
        make_optimizer("adam", p)
    with pytest.raises(KakusanError, match="proximal"):
        make_optimizer("adam", p, lr=0.1, l1=0.1)
    with pytest.raises(KakusanError, match="unknown optimizer"):
        make_optimizer("newton", p, lr=0.1)
    with pytest.raises(KakusanError, match="positive"):
        SurrogateGD(p, lipschitz=0.0)

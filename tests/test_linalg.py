"""Matrix-calculus identities against torch autograd and central finite differences (float64).

Matrices are random and NON-symmetric, of distinct prime sizes, so a transposed formula fails.
"""

import pytest
import torch

from kakusan import linalg
from kakusan.errors import KakusanError

SIZES = (3, 5, 7)
F64 = torch.float64


def rand_matrix(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n, generator=g, dtype=F64)


def rand_vector(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + seed)
    return torch.randn(n, generator=g, dtype=F64)


def autograd(f, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x)
    return g


def check(analytic, f, x, rtol=1e-6):
    """analytic == autograd (to rounding) and == central differences (to O(eps^2))."""
    torch.testing.assert_close(analytic, autograd(f, x), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(analytic, linalg.finite_difference_gradient(f, x), rtol=rtol, atol=1e-6)


def test_random_matrices_are_not_symmetric():
    for n in SIZES:
        a = rand_matrix(n, n)
        assert (a - a.T).abs().max() > 0.1


@pytest.mark.parametrize("n", SIZES)
def test_adjugate_is_det_times_inverse(n):
    a = rand_matrix(n, n)
    adj = linalg.adjugate(a)
    torch.testing.assert_close(adj, torch.linalg.det(a) * torch.linalg.inv(a), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(a @ adj, torch.linalg.det(a) * torch.eye(n, dtype=F64), rtol=1e-10, atol=1e-10)


def test_cofactors_by_hand_and_of_singular_matrix():
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64)
    assert linalg.cofactor_matrix(a).tolist() == [[4.0, -3.0], [-2.0, 1.0]]
    assert linalg.cofactor_matrix(torch.tensor([[5.0]], dtype=F64)).tolist() == [[1.0]]
    s = torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 5.0]], dtype=F64)  # rank 2
    c = linalg.cofactor_matrix(s)
    torch.testing.assert_close(s @ c.T, torch.zeros(3, 3, dtype=F64), atol=1e-12, rtol=0)  # det = 0
    assert c.abs().max() > 0


def test_cofactor_expansion_gives_det():
    a = rand_matrix(5, 11)
    c = linalg.cofactor_matrix(a)
    for i in range(5):  # det A = sum_j A_ij C_ij along every row
        assert (a[i] * c[i]).sum().item() == pytest.approx(torch.linalg.det(a).item(), rel=1e-12)


@pytest.mark.parametrize("n", SIZES)
def test_grad_quadratic_form_x(n):
    a, x = rand_matrix(n, n), rand_vector(n, n)
    check(linalg.grad_quadratic_form_x(a, x), lambda v: linalg.quadratic_form(a, v), x)


@pytest.mark.parametrize("n", SIZES)
def test_grad_quadratic_form_a(n):
    a, x = rand_matrix(n, n), rand_vector(n, n)
    check(linalg.grad_quadratic_form_a(x), lambda m: linalg.quadratic_form(m, x), a)


@pytest.mark.parametrize("n", SIZES)
def test_grad_det_is_cofactor_matrix(n):
    a = rand_matrix(n, n + 1)
    check(linalg.grad_det(a), torch.linalg.det, a)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_grad_log_abs_det(n, sign):
    a = rand_matrix(n, n + 2)
    if torch.sign(torch.linalg.det(a)) != sign:
        a = a.clone()
        a[0] = -a[0]  # flip the sign of det
    assert torch.sign(torch.linalg.det(a)).item() == sign
    grad = linalg.grad_log_abs_det(a)
    check(grad, linalg.log_abs_det, a)
    torch.testing.assert_close(grad, linalg.cofactor_matrix(a) / torch.linalg.det(a), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", SIZES)
def test_grad_inverse_quadratic_form_symmetric(n):
    b = rand_matrix(n, n + 3)
    sigma = b @ b.T + n * torch.eye(n, dtype=F64)
    x = rand_vector(n, n)
    grad = linalg.grad_inverse_quadratic_form_x(sigma, x)
    check(grad, lambda v: v @ torch.linalg.solve(sigma, v), x)
    torch.testing.assert_close(grad, 2 * torch.linalg.inv(sigma) @ x, rtol=1e-10, atol=1e-10)


def test_batched_vectors():
    a = rand_matrix(3, 0)
    xs = torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    g = linalg.grad_quadratic_form_x(a, xs)
    assert g.shape == (5, 3)
    torch.testing.assert_close(g[2], linalg.grad_quadratic_form_x(a, xs[2]))
    assert linalg.grad_quadratic_form_a(xs).shape == (5, 3, 3)


def test_errors():
    with pytest.raises(KakusanError, match="square"):
        linalg.cofactor_matrix(torch.zeros(2, 3))
    with pytest.raises(KakusanError, match="shape"):
        linalg.grad_quadratic_form_x(torch.eye(3), torch.zeros(2))
    with pytest.raises(KakusanError, match="singular"):
        linalg.grad_log_abs_det(torch.zeros(3, 3, dtype=F64))
    with pytest.raises(KakusanError, match="symmetric"):
        linalg.grad_inverse_quadratic_form_x(rand_matrix(3, 1), torch.ones(3, dtype=F64))

"""Matrix calculus for the Gaussian and the Boltzmann machine: cofactors and analytic gradients.

The identities, for a square (not necessarily symmetric) matrix A and a vector x:

    d(x^T A x)/dx      = (A + A^T) x
    d(x^T A x)/dA      = x x^T
    d det A / dA       = C                  (the cofactor matrix, C_ij = (-1)^(i+j) M_ij)
    d ln|det A| / dA   = C / det A = (A^-1)^T
    d(x^T S^-1 x)/dx   = 2 S^-1 x           (S symmetric)

Here dF/dA is the matrix of partial derivatives dF/dA_ij, treating every entry as independent
(no symmetrisation). The cofactor route is the proof of the log-determinant identity: expanding
det A along row i, det A = sum_j A_ij C_ij, and C_ij does not contain A_ij, so d det A / dA_ij = C_ij;
the adjugate adj A = C^T satisfies A adj A = det(A) I, hence C / det A = (A^-1)^T.

Each function returns the analytic gradient and is tested against torch autograd and central
finite differences on non-symmetric matrices (tests/test_linalg.py). All functions work in the
input's dtype; pass float64 for exact comparisons.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from kakusan.errors import KakusanError


def _square(a: torch.Tensor, name: str = "A") -> torch.Tensor:
    a = torch.as_tensor(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise KakusanError(f"{name} must be a square (n, n) matrix with n >= 1, got shape {tuple(a.shape)}")
    return a


def _vector_for(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim == 0 or x.shape[-1] != a.shape[0]:
        raise KakusanError(f"x must have shape (..., {a.shape[0]}) to match A {tuple(a.shape)}, got {tuple(x.shape)}")
    return x


def minors(a: torch.Tensor) -> torch.Tensor:
    """M_ij = det of A with row i and column j deleted, for all i, j at once.

    Parameters
    ----------
    a : tensor (n, n)

    Returns
    -------
    tensor (n, n)
        The first minors. Cost O(n^2) determinants of size n - 1, i.e. O(n^5): meant for small n
        (tests and teaching, n up to a few dozen), not as a way to invert large matrices.
    """
    a = _square(a)
    n = a.shape[0]
    if n == 1:
        return torch.ones_like(a)
    keep = ~torch.eye(n, dtype=torch.bool, device=a.device)  # keep[i] drops index i
    idx = torch.arange(n, device=a.device).expand(n, n)[keep].reshape(n, n - 1)  # (n, n-1): indices without i
    sub = a[idx[:, None, :, None], idx[None, :, None, :]]  # (n, n, n-1, n-1): rows without i, columns without j
    return torch.linalg.det(sub)


def cofactor_matrix(a: torch.Tensor) -> torch.Tensor:
    """C_ij = (-1)^(i+j) M_ij, the matrix of cofactors of A (= d det A / dA).

    Parameters
    ----------
    a : tensor (n, n)

    Returns
    -------
    tensor (n, n)
        Computed from the minors (see :func:`minors` for the cost; small n only). Defined for
        singular A too.
    """
    a = _square(a)
    n = a.shape[0]
    i = torch.arange(n, device=a.device)
    sign = 1 - 2 * ((i[:, None] + i[None, :]) % 2)  # (-1)^(i+j)
    return sign.to(a.dtype) * minors(a)


def adjugate(a: torch.Tensor) -> torch.Tensor:
    """adj A = C^T, so that A adj(A) = adj(A) A = det(A) I and adj(A) = det(A) A^-1 when A is invertible.

    Parameters
    ----------
    a : tensor (n, n)

    Returns
    -------
    tensor (n, n)
    """
    return cofactor_matrix(a).T


def quadratic_form(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x^T A x for each vector in ``x`` (..., n); returns (...)."""
    a = _square(a)
    x = _vector_for(a, x)
    return torch.einsum("...i,ij,...j->...", x, a, x)


def grad_quadratic_form_x(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """d(x^T A x)/dx = (A + A^T) x, for each vector in ``x`` (..., n); returns (..., n)."""
    a = _square(a)
    x = _vector_for(a, x)
    return x @ (a + a.T).T


def grad_quadratic_form_a(x: torch.Tensor) -> torch.Tensor:
    """d(x^T A x)/dA = x x^T (independent of A), for each vector in ``x`` (..., n); returns (..., n, n)."""
    x = torch.as_tensor(x)
    return x[..., :, None] * x[..., None, :]


def grad_inverse_quadratic_form_x(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """d(x^T S^-1 x)/dx = 2 S^-1 x for symmetric S, for each vector in ``x`` (..., n); returns (..., n).

    The symmetric case of :func:`grad_quadratic_form_x` with A = S^-1 (then A + A^T = 2 S^-1);
    computed with a linear solve, not an explicit inverse.
    """
    s = _square(sigma, "sigma")
    x = _vector_for(s, x)
    if not torch.allclose(s, s.T):
        raise KakusanError("sigma must be symmetric for d(x^T S^-1 x)/dx = 2 S^-1 x: use grad_quadratic_form_x")
    return 2.0 * torch.linalg.solve(s, x.unsqueeze(-1)).squeeze(-1)


def grad_det(a: torch.Tensor) -> torch.Tensor:
    """d det A / dA = C, the cofactor matrix (by cofactor expansion along each row)."""
    return cofactor_matrix(a)


def log_abs_det(a: torch.Tensor) -> torch.Tensor:
    """ln|det A| (finite for any invertible A, whatever the sign of det A)."""
    return torch.linalg.slogdet(_square(a)).logabsdet


def grad_log_abs_det(a: torch.Tensor) -> torch.Tensor:
    """d ln|det A| / dA = (A^-1)^T = C / det A, for invertible A of either sign of determinant.

    Parameters
    ----------
    a : tensor (n, n)
        Invertible matrix.

    Returns
    -------
    tensor (n, n)
        (A^-1)^T, from a linear solve. For symmetric A (a precision matrix) this is A^-1.
    """
    a = _square(a)
    eye = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    inv, info = torch.linalg.solve_ex(a, eye)
    if info.item() != 0 or not torch.isfinite(inv).all():
        raise KakusanError("A is singular, so ln|det A| = -inf has no gradient: pass an invertible matrix")
    return inv.T


def finite_difference_gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                               eps: float = 1e-6) -> torch.Tensor:
    """dF/dx_k ~ (F(x + eps e_k) - F(x - eps e_k)) / (2 eps), entry by entry, for a scalar F.

    Parameters
    ----------
    f : callable
        Scalar function of a tensor shaped like ``x``.
    x : tensor (...)
        Point; use float64 (central differences have error O(eps^2) plus rounding O(1e-16 / eps)).
    eps : float

    Returns
    -------
    tensor, shaped like ``x``
    """
    x = torch.as_tensor(x)
    flat = x.detach().clone().reshape(-1)
    grad = torch.empty_like(flat)
    for k in range(flat.numel()):
        old = flat[k].item()
        flat[k] = old + eps
        up = float(f(flat.reshape(x.shape)))
        flat[k] = old - eps
        down = float(f(flat.reshape(x.shape)))
        flat[k] = old
        grad[k] = (up - down) / (2 * eps)
    return grad.reshape(x.shape)

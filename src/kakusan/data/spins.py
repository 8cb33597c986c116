"""±1 spin data: the one check for "a tensor of ±1 spins of width N", and what fitting adds to it.

:func:`check_spins` is the basic check every spin consumer calls (exact enumeration's likelihoods, the
starting states of Markov chains, the MCMC-free solvers). :func:`check_spin_data` is the solvers' wrapper:
it calls :func:`check_spins` first, then checks sample weights and constant columns and picks the float
dtype. :func:`compress_rows` and :func:`row_blocks` shape checked data for the solvers' objectives.

>>> import torch
>>> check_spins(torch.tensor([[1, -1], [-1, -1]]), 2).tolist()
[[1, -1], [-1, -1]]
>>> x, w = check_spin_data(torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]]))
>>> x.dtype, w.tolist()
(torch.float64, [0.3333333333333333, 0.3333333333333333, 0.3333333333333333])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from kakusan.errors import DataError, KakusanError

Tensor = torch.Tensor


class SpinData(NamedTuple):
    """Checked data: ±1 spins ``x`` (M, N) and weights ``w`` (M,) summing to 1, on the same device."""

    x: Tensor
    w: Tensor


def check_spins(data, n_spins: int | None = None, *, name: str = "data", rows: str = "n_samples",
                min_rows: int = 0, fix: str = "") -> Tensor:
    """``data`` as a 2-D tensor (M, N) of ±1 values (a tensor is returned as it is); a one-line
    :class:`DataError` otherwise.

    Parameters
    ----------
    data : tensor, NumPy array or nested lists of real numbers (or booleans).
    n_spins : the width N the caller needs (a model's number of spins); None accepts any N ≥ 1.
    name : what the error messages call ``data`` (e.g. ``"x0"`` for the starting states of chains).
    rows : what a row is, in the shape the message asks for (``"n_samples"``, ``"n_chains"``).
    min_rows : the fewest rows accepted.
    fix : appended to the shape error (e.g. ``": use mcmc.random_spins(n_chains, n_spins)"``).

    The errors name a wrong shape, non-numbers, NaN/inf (with the first place), 0/1 data (with the fix,
    :func:`kakusan.data.to_spins`) and any other value (with its place).
    """
    x = as_real_tensor(data, name)
    if n_spins is None:
        if x.ndim != 2 or x.shape[0] < max(min_rows, 1) or x.shape[1] < 1:
            raise DataError(f"{name} must be a 2-D array (M samples, N spins), got shape {tuple(x.shape)}{fix}")
    elif x.ndim != 2 or x.shape[1] != n_spins or x.shape[0] < min_rows:
        raise DataError(f"{name} must have shape ({rows}, {n_spins}) to match the model, got {tuple(x.shape)}{fix}")
    _check_values(x.to(torch.int8) if x.dtype == torch.bool else x, name)  # in the input's dtype: int8 checks fast
    return x


def as_real_tensor(v, name: str) -> Tensor:
    """``v`` as a tensor of real numbers (or booleans; a tensor is returned as it is); a :class:`DataError`
    naming ``name`` otherwise."""
    if isinstance(v, Tensor):
        t = v
    else:
        try:
            t = torch.as_tensor(np.asarray(v))
        except (TypeError, ValueError, RuntimeError):
            raise DataError(f"{name} must be an array of numbers") from None
    if t.is_complex() or not (t.is_floating_point() or t.dtype in _INTS or t.dtype == torch.bool):
        raise DataError(f"{name} must be an array of real numbers, got dtype {t.dtype}")
    return t


_INTS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _check_values(x: Tensor, name: str = "data") -> None:
    """DataError unless every entry is −1 or +1; NaN and 0/1 data get their own messages."""
    bad = x.abs() != 1  # one pass; NaN and ±inf are != 1 too
    if not bool(bad.any()):
        return
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        i, k = (int(v) for v in (~torch.isfinite(x)).nonzero()[0])
        raise DataError(f"{name} hold NaN or infinite values (first at row {i}, column {k}): remove those rows")
    if bool(((x == 0) | (x == 1)).all()):
        raise DataError(f"{name} hold 0/1 values, but ±1 spins are needed: convert with kakusan.data.to_spins(x)")
    i, k = (int(v) for v in bad.nonzero()[0])
    raise DataError(f"{name} must be ±1 spins, found {float(x[i, k]):g} at row {i}, column {k}: "
                    "binarise the data and convert with kakusan.data.to_spins")


# ---------------------------------------------------------------- data for fitting


def check_spin_data(data, weights=None, *, dtype: torch.dtype | None = torch.float64,
                    more_rows_than_spins: bool = False, why_rows: str = "this method") -> SpinData:
    """Check ±1 data (M, N) and optional weights (M,); return x in ``dtype``, w in float64 summing to 1.

    Calls :func:`check_spins` first (shape, numbers, NaN/inf, values other than ±1, 0/1 data named as
    such), then raises :class:`~kakusan.errors.DataError` for bad weights, no row of positive weight, at
    most N such rows when ``more_rows_than_spins`` (``why_rows`` names what needs them), or a column that is
    constant over those rows (its field would be ±∞).
    """
    x = check_spins(data).detach()
    x = x.to(pick_dtype(dtype, x.numel()))
    w = _check_weights(weights, x)
    used = w > 0
    n_used, n = int(used.sum()), x.shape[1]
    if more_rows_than_spins and n_used <= n:
        raise DataError(f"{why_rows} needs more samples than spins, got M = {n_used} ≤ N = {n}: "
                        "collect more samples or use plm or mpf with l2 > 0")
    _check_constant_columns(x if n_used == len(x) else x[used])
    return SpinData(x, w)


LARGE = 1 << 20
"""Data with more entries than this are evaluated in float32 when a solver's ``dtype`` is None."""


def pick_dtype(dtype: torch.dtype | None, n_entries: int) -> torch.dtype:
    """``dtype`` itself, or for None float32 above :data:`LARGE` entries (≈ 4× faster) and float64 below."""
    if dtype is None:
        return torch.float32 if n_entries > LARGE else torch.float64
    if dtype not in (torch.float32, torch.float64):
        raise KakusanError(f"dtype must be torch.float32, torch.float64 or None, got {dtype!r}")
    return dtype


def _check_weights(weights, x: Tensor) -> Tensor:
    m = x.shape[0]
    if weights is None:
        return torch.full((m,), 1.0 / m, dtype=torch.float64, device=x.device)
    w = as_real_tensor(weights, "weights").detach().to(dtype=torch.float64, device=x.device)
    if w.shape != (m,):
        raise DataError(f"weights must have shape ({m},), one per sample, got {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not float(w.sum()) > 0:
        raise DataError("weights must be finite and non-negative with a positive sum")
    return w / w.sum()


def _check_constant_columns(x: Tensor) -> None:
    """DataError naming the columns of ±1 data x that never change: |Σ_i x_ik| = M (sums exact in float32)."""
    sums = x.sum(0) if x.dtype == torch.float64 or len(x) < 1 << 24 else x.double().sum(0)
    const = sums.abs() == len(x)
    if bool(const.any()):
        cols = const.nonzero().squeeze(1).tolist()
        shown = ", ".join(str(c) for c in cols[:8]) + (" ..." if len(cols) > 8 else "")
        value = "+1" if float(x[0, cols[0]]) > 0 else "−1"
        raise DataError(f"column {shown} of the data is constant (column {cols[0]} is always {value}), so its "
                        "field would be infinite: drop constant columns before fitting")


def compress_rows(x: Tensor, w: Tensor, dtype: torch.dtype | None = None) -> SpinData:
    """Distinct rows of x with their summed weights when that shrinks the data by ≥ 2× (else x, w), in
    ``dtype`` (None: :func:`pick_dtype` for the rows kept).

    Rows are compared as packed bits (N/8 bytes each, sorted by NumPy on the CPU).
    """
    m = x.shape[0]
    if m >= 64:
        packed = np.packbits((x > 0).cpu().numpy(), axis=1)  # (M, ⌈N/8⌉) uint8
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        if 2 * len(first) <= m:
            inverse = torch.as_tensor(inverse.ravel(), device=x.device)
            x = x[torch.as_tensor(first, device=x.device)]
            w = torch.zeros(len(first), dtype=w.dtype, device=w.device).index_add_(0, inverse, w)
    dtype = pick_dtype(dtype, x.numel())
    return SpinData(x.to(dtype), w.to(dtype))


def row_blocks(x: Tensor, bytes_per_block: int = 1 << 20) -> list[slice]:
    """Slices of about ``bytes_per_block`` of x's rows (at least 256 rows): element-wise passes over a block
    stay in cache, which makes the GEMM + element-wise objectives of the solvers about 1.7× faster than
    whole passes."""
    rows = max(256, bytes_per_block // max(1, x.shape[1] * x.element_size()))
    return [slice(s, s + rows) for s in range(0, x.shape[0], rows)]

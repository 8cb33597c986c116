"""The fully visible Boltzmann machine (Ising model): q(x) = exp(−β E(x)) / Z, x ∈ {−1,+1}^N.

E(x) = −½ xᵀJx − hᵀx = −Σ_{k<l} J_kl x_k x_l − Σ_k h_k x_k, with J symmetric and zero on the
diagonal. The model file format is an ``.npz`` with ``J`` (N, N) and ``h`` (N,)
(:func:`save_ising_npz`, :func:`load_ising_npz`).

Parametrisation of J. The parameter ``J`` is a full (N, N) matrix; energies use its symmetric part
S = ½(J + Jᵀ) with the diagonal zeroed, and autograd gives the true derivative of that map: for the
mean negative log-likelihood ∂/∂J_kl = −½β(⟨x_k x_l⟩_data − ⟨x_k x_l⟩_model) on each of the two mirror
entries (their sum is the derivative with respect to the coupling J_kl = J_lk), zero on the diagonal,
so a symmetric J stays symmetric under any element-wise optimizer. Because the gradient is the true
one, line searches and the curvature bound L = N(N+1)/2 of ``kakusan.learn.lipschitz_bound`` hold
in these coordinates as they do per coupling.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kakusan.boltzmann import exact
from kakusan.errors import KakusanError, check_positive_int
from kakusan.registry import register_model
from kakusan.files import atomic_write_bytes
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor


class _LogZ(torch.autograd.Function):
    """log Z(S, h) by exact enumeration; ∂log Z/∂S = ½β⟨x xᵀ⟩ and ∂log Z/∂h = β⟨x⟩."""

    @staticmethod
    def forward(ctx, S: Tensor, h: Tensor, beta: float) -> Tensor:
        params = exact.IsingParams(S.detach(), h.detach())
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            stats = exact.exact_stats(params, beta=beta)
            ctx.save_for_backward(stats.mean.to(h.dtype), stats.corr.to(S.dtype))
            ctx.beta = beta
            return S.new_tensor(stats.log_z)
        return S.new_tensor(exact.log_z(params, beta=beta))

    @staticmethod
    def backward(ctx, grad: Tensor):
        mean, corr = ctx.saved_tensors
        return grad * (0.5 * ctx.beta) * corr, grad * ctx.beta * mean, None


@register_model
class IsingModel(nn.Module):
    """Fully visible Boltzmann machine q(x) = exp(−β E(x)) / Z, E(x) = −½ xᵀJx − hᵀx, x ∈ {−1,+1}^N.

    Parameters
    ----------
    n_visible : number of spins N.
    dtype : parameter dtype (float64 by default, as exact enumeration uses).

    Attributes
    ----------
    J : (N, N) parameter; energies use its symmetric part with zero diagonal (see the module docstring).
    h : (N,) parameter, the fields.
    config : ``{"n_visible": N}``, so ``IsingModel(**config)`` rebuilds it for a checkpoint.

    Notes
    -----
    ``log_z``, ``log_prob`` and ``sample`` enumerate all 2^N states (exact; N ≤ 32).
    """

    def __init__(self, n_visible: int, *, dtype: torch.dtype = torch.float64):
        super().__init__()
        check_positive_int(n_visible, "n_visible")
        self.config = {"n_visible": n_visible}
        self.J = nn.Parameter(torch.zeros(n_visible, n_visible, dtype=dtype))
        self.h = nn.Parameter(torch.zeros(n_visible, dtype=dtype))

    @classmethod
    def from_params(cls, J: Tensor | np.ndarray, h: Tensor | np.ndarray) -> IsingModel:
        """A model with couplings J (N, N) and fields h (N,), checked by :func:`check_params`."""
        J, h = check_params(J, h)
        model = cls(len(h))
        model.set_params(J, h)
        return model

    @property
    def n_visible(self) -> int:
        return self.config["n_visible"]

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}"

    @torch.no_grad()
    def set_params(self, J: Tensor, h: Tensor) -> None:
        """Copy J (symmetrised, diagonal zeroed) and h into the parameters."""
        J = torch.as_tensor(J, dtype=self.J.dtype, device=self.J.device)
        self.J.copy_(0.5 * (J + J.T) - torch.diag_embed(torch.diagonal(J)))
        self.h.copy_(torch.as_tensor(h, dtype=self.h.dtype))

    def couplings(self) -> Tensor:
        """The symmetric, zero-diagonal coupling matrix used in energies (N, N); differentiable."""
        off = 1.0 - torch.eye(self.J.shape[0], dtype=self.J.dtype, device=self.J.device)
        return 0.5 * (self.J + self.J.T) * off

    def energy(self, x: Tensor) -> Tensor:
        """E(x) = −½ xᵀJx − hᵀx: (..., N) -> (...)."""
        x = x.to(self.J.dtype)
        return -0.5 * ((x @ self.couplings()) * x).sum(-1) - x @ self.h

    def local_field(self, x: Tensor, k: int | None = None) -> Tensor:
        """Local field Jx + h = −∂E/∂x: (B, N) -> (B, N), or (B,) for the single spin ``k``."""
        x = x.to(self.J.dtype)
        S = self.couplings()
        if k is None:
            return x @ S + self.h
        return x @ S[:, k] + self.h[k]

    def conditional_up(self, x: Tensor, k: int | None = None, *, beta: float = 1.0) -> Tensor:
        """q(x_k = +1 | x_rest) = σ(2β (Jx + h)_k): (B, N) -> (B, N), or (B,) for spin ``k``."""
        return torch.sigmoid(2.0 * beta * self.local_field(x, k))

    def log_z(self, *, beta: float = 1.0) -> Tensor:
        """log Z = log Σ_x exp(−β E(x)) by exact enumeration: a 0-d tensor, differentiable in J and h."""
        return _LogZ.apply(self.couplings(), self.h, float(beta))

    def log_prob(self, x: Tensor, *, beta: float = 1.0) -> Tensor:
        """log q(x) = −β E(x) − log Z, exact: (B, N) -> (B,); differentiable (moment-matching gradient)."""
        return -beta * self.energy(x) - self.log_z(beta=beta)

    @torch.no_grad()
    def sample(self, n: int, generator: Seed = None, *, beta: float = 1.0) -> Tensor:
        """n exact independent draws from q (by enumeration): (n, N) ±1 in the model's dtype."""
        g = make_generator(generator)
        return exact.exact_sample(self, n, beta=beta, generator=g).to(self.J.dtype)


def check_params(J: Tensor | np.ndarray, h: Tensor | np.ndarray, source: str = "") -> tuple[Tensor, Tensor]:
    """Check couplings J (N, N) and fields h (N,); return them as float64 tensors (J exactly symmetric).

    Raises KakusanError for wrong shapes, non-finite values, an asymmetric J or a nonzero diagonal.
    """
    where = f"{source}: " if source else ""
    J, h = (_as_real(v, name, where) for v, name in ((J, "J"), (h, "h")))
    if J.ndim != 2 or J.shape[0] != J.shape[1] or J.shape[0] == 0:
        raise KakusanError(f"{where}J must be a square (N, N) matrix with N ≥ 1, got shape {tuple(J.shape)}")
    if h.shape != (J.shape[0],):
        raise KakusanError(f"{where}h must have shape ({J.shape[0]},) to match J, got {tuple(h.shape)}")
    for v, name in ((J, "J"), (h, "h")):
        if not bool(torch.isfinite(v).all()):
            raise KakusanError(f"{where}{name} contains NaN or infinite values: every entry must be finite")
    tol = 1e-10 * max(1.0, float(J.abs().max()))
    asym = (J - J.T).abs()
    if float(asym.max()) > tol:
        k, l = divmod(int(asym.argmax()), J.shape[0])
        raise KakusanError(f"{where}J is not symmetric (J[{k},{l}] = {J[k, l]:.6g} but J[{l},{k}] = {J[l, k]:.6g}): "
                           "use (J + J.T) / 2")
    diag = torch.diagonal(J).abs()
    if float(diag.max()) > tol:
        k = int(diag.argmax())
        raise KakusanError(f"{where}J has a nonzero diagonal (J[{k},{k}] = {J[k, k]:.6g}); x_k² = 1 makes it a "
                           "constant, so set it to 0 (numpy.fill_diagonal(J, 0))")
    J = 0.5 * (J + J.T)
    return J - torch.diag_embed(torch.diagonal(J)), h


def _as_real(v, name: str, where: str) -> Tensor:
    try:
        t = torch.as_tensor(np.asarray(v) if not isinstance(v, Tensor) else v.detach().cpu())
    except (TypeError, ValueError, RuntimeError):
        raise KakusanError(f"{where}{name} must be an array of real numbers") from None
    if t.is_complex() or t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in _INTS):
        raise KakusanError(f"{where}{name} must be an array of real numbers, got dtype {t.dtype}")
    return t.to(torch.float64)


_INTS = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def save_ising_npz(path: str | Path, model: IsingModel) -> Path:
    """Write ``J`` (N, N) and ``h`` (N,) as float64 to an ``.npz``, atomically (temporary file, then rename)."""
    path = Path(path)
    buf = io.BytesIO()
    J = model.couplings().detach().cpu().to(torch.float64).numpy()
    np.savez(buf, J=J, h=model.h.detach().cpu().to(torch.float64).numpy())
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_ising_npz(path: str | Path) -> IsingModel:
    """Read an ``.npz`` with ``J`` (N, N, symmetric, zero diagonal) and ``h`` (N,) into a float64 model."""
    from kakusan.data.user_files import read_npz

    path = Path(path)
    if not path.is_file():
        raise KakusanError(f"no such file {path}: give an .npz holding arrays J (N, N) and h (N,)")
    try:
        arrays = read_npz(path)  # the one reader of user archives: no pickle, damaged members caught
    except KakusanError as e:
        raise KakusanError(f"cannot read the model file: {e}; a model file is numpy.savez(path, J=J, h=h)") from None
    missing = [k for k in ("J", "h") if k not in arrays]
    if missing:
        raise KakusanError(f"{path} lacks array(s) {', '.join(missing)} (has {sorted(arrays)}): "
                           "save it with numpy.savez(path, J=J, h=h)")
    J, h = check_params(arrays["J"], arrays["h"], source=str(path))
    return IsingModel.from_params(J, h)

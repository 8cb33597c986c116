"""What the MCMC-free inverse-Ising solvers share: their result type and J, h packed as one vector.

The solvers (:mod:`kakusan.learn.mean_field`, :mod:`kakusan.learn.pseudolikelihood`, :mod:`kakusan.learn.mpf`,
:func:`kakusan.learn.exact.solve_exact`) import this module; :mod:`kakusan.learn.inverse` dispatches to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from kakusan.boltzmann.ising import IsingModel

Tensor = torch.Tensor


@dataclass(frozen=True)
class InverseResult:
    """Couplings and fields learned from data, with the solver's diagnostics.

    Attributes
    ----------
    J : (N, N) couplings, symmetric with zero diagonal (E(x) = −½ xᵀJx − hᵀx).
    h : (N,) fields.
    method : the solver's name (``"nmf"``, ``"tap"``, ``"plm"``, ...).
    iterations : optimizer iterations (0 for closed forms).
    converged : True when the optimizer met its tolerance (always True for closed forms).
    wall_time : seconds spent in the solver, data checks included.
    objective : the final value of the minimised objective (nan for closed forms).
    message : the optimizer's stop reason, or what a closed form had to do (e.g. TAP pairs without a real root).
    """

    J: Tensor
    h: Tensor
    method: str
    iterations: int = 0
    converged: bool = True
    wall_time: float = 0.0
    objective: float = float("nan")
    message: str = ""

    def to_model(self) -> IsingModel:
        """The learned parameters as a float64 :class:`~kakusan.boltzmann.IsingModel`."""
        from kakusan.boltzmann.ising import IsingModel

        return IsingModel.from_params(self.J.detach().cpu(), self.h.detach().cpu())


# ---------------------------------------------------------------- parameters as one vector


def n_coupling_params(n: int, symmetric: bool) -> int:
    """How many free couplings: N(N−1)/2 for a symmetric J, N(N−1) for one row per spin."""
    return n * (n - 1) // 2 if symmetric else n * (n - 1)


def _coupling_index(n: int, symmetric: bool, device) -> tuple[Tensor, Tensor]:
    if symmetric:
        k, l = torch.triu_indices(n, n, 1, device=device)
        return k, l
    off = ~torch.eye(n, dtype=torch.bool, device=device)
    k, l = off.nonzero(as_tuple=True)
    return k, l


def pack(J: Tensor, h: Tensor, symmetric: bool = True) -> Tensor:
    """θ = (couplings, h): J_kl for k < l (symmetric) or for k ≠ l (row-major), then h (N,)."""
    k, l = _coupling_index(len(h), symmetric, h.device)
    return torch.cat([J[k, l], h])


def unpack(theta: Tensor, n: int, symmetric: bool = True) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack`: θ -> J (N, N) with zero diagonal (symmetric if ``symmetric``) and h (N,)."""
    k, l = _coupling_index(n, symmetric, theta.device)
    p = n_coupling_params(n, symmetric)
    J = torch.zeros(n, n, dtype=theta.dtype, device=theta.device)
    J[k, l] = theta[:p]
    return (J + J.T if symmetric else J), theta[p:]


def pack_grad(gJ: Tensor, gh: Tensor, symmetric: bool = True) -> Tensor:
    """∂f/∂θ from entry-by-entry ∂f/∂J_kl (N, N): a symmetric coupling gets ∂f/∂J_kl + ∂f/∂J_lk."""
    k, l = _coupling_index(len(gh), symmetric, gh.device)
    return torch.cat([(gJ + gJ.T)[k, l] if symmetric else gJ[k, l], gh])

"""Standard test models: SK and Edwards–Anderson spin glasses, Curie–Weiss and 2-D ferromagnets.

Every generator returns a float64 :class:`IsingModel` with q(x) ∝ exp(−E(x)): the inverse
temperature β is folded into the parameters (J ← βJ, h ← βh), so ``beta`` here is the physical
β and the model is used at β = 1. Fields are h_k = β (field + field_std · z_k), z_k ~ N(0, 1).
A seed (int or ``torch.Generator``) fixes every random draw: couplings first, then fields.

Lattice sites of an L × L lattice are numbered k = row · L + column; bonds join each site to its
right and lower neighbours, wrapping around when ``periodic`` (then L ≥ 3, so that no pair is
joined twice) and stopping at the edge otherwise (open boundaries).
"""

from __future__ import annotations

from typing import Literal

import torch

from kakusan.boltzmann.ising import IsingModel
from kakusan.errors import KakusanError, check_positive_int
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
F64 = torch.float64


def sherrington_kirkpatrick(
    n: int, *, beta: float = 1.0, field: float = 0.0, field_std: float = 0.0, seed: Seed = None
) -> IsingModel:
    """Sherrington–Kirkpatrick spin glass: J_kl ~ N(0, β²/N) i.i.d. for k < l, complete graph.

    The spin-glass transition (h = 0) is at β = 1.
    """
    check_positive_int(n, "n")
    g = make_generator(seed)
    k, l = torch.triu_indices(n, n, 1)
    J = torch.zeros(n, n, dtype=F64)
    J[k, l] = torch.randn(len(k), generator=g, dtype=F64) * (beta / n**0.5)
    return _model(J + J.T, _fields(n, beta, field, field_std, g))


def edwards_anderson_2d(
    side: int,
    *,
    beta: float = 1.0,
    couplings: Literal["pm", "gaussian"] = "pm",
    periodic: bool = True,
    field: float = 0.0,
    field_std: float = 0.0,
    seed: Seed = None,
) -> IsingModel:
    """2-D Edwards–Anderson spin glass on an L × L lattice: J_kl = β·(±1 with probability ½) or β·N(0, 1)."""
    if couplings not in ("pm", "gaussian"):
        raise KakusanError(f"couplings must be 'pm' (±J) or 'gaussian', got {couplings!r}")
    g = make_generator(seed)
    k, l = lattice_bonds(side, periodic)
    if couplings == "pm":
        values = 2.0 * torch.randint(0, 2, (len(k),), generator=g).to(F64) - 1.0
    else:
        values = torch.randn(len(k), generator=g, dtype=F64)
    return _model(_from_bonds(side * side, k, l, beta * values), _fields(side * side, beta, field, field_std, g))


def curie_weiss(
    n: int, *, beta: float = 1.0, field: float = 0.0, field_std: float = 0.0, seed: Seed = None
) -> IsingModel:
    """Curie–Weiss ferromagnet: J_kl = β/N on the complete graph; the transition is at β = 1."""
    check_positive_int(n, "n")
    J = torch.full((n, n), beta / n, dtype=F64)
    J.fill_diagonal_(0.0)
    return _model(J, _fields(n, beta, field, field_std, make_generator(seed)))


def ferromagnet_2d(
    side: int,
    *,
    beta: float = 0.4406867935097715,
    periodic: bool = True,
    field: float = 0.0,
    field_std: float = 0.0,
    seed: Seed = None,
) -> IsingModel:
    """2-D Ising ferromagnet: J_kl = β on lattice bonds; β defaults to Onsager's β_c = ½ ln(1 + √2)."""
    k, l = lattice_bonds(side, periodic)
    J = _from_bonds(side * side, k, l, torch.full((len(k),), float(beta), dtype=F64))
    return _model(J, _fields(side * side, beta, field, field_std, make_generator(seed)))


def lattice_bonds(side: int, periodic: bool = True) -> tuple[Tensor, Tensor]:
    """Bonds (k, l) of an L × L square lattice, each pair once: two (n_bonds,) int64 tensors."""
    check_positive_int(side, "side")
    if periodic and side < 3:
        raise KakusanError(f"a periodic lattice needs side ≥ 3 (side {side} would join a pair twice): "
                           "use periodic=False")
    r, c = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    r, c = r.reshape(-1), c.reshape(-1)
    ks, ls = [], []
    for dr, dc in ((0, 1), (1, 0)):  # right, down
        r2, c2 = r + dr, c + dc
        keep = torch.ones_like(r, dtype=torch.bool) if periodic else (r2 < side) & (c2 < side)
        ks.append((r * side + c)[keep])
        ls.append(((r2 % side) * side + c2 % side)[keep])
    return torch.cat(ks), torch.cat(ls)


def _from_bonds(n: int, k: Tensor, l: Tensor, values: Tensor) -> Tensor:
    J = torch.zeros(n, n, dtype=F64)
    J[k, l] = values
    J[l, k] = values
    return J


def _fields(n: int, beta: float, field: float, field_std: float, g: torch.Generator) -> Tensor:
    h = torch.full((n,), float(field), dtype=F64)
    if field_std:
        h = h + field_std * torch.randn(n, generator=g, dtype=F64)
    return beta * h


def _model(J: Tensor, h: Tensor) -> IsingModel:
    return IsingModel.from_params(J, h)


INSTANCES = {
    "sk": sherrington_kirkpatrick,
    "ea2d": edwards_anderson_2d,
    "curie_weiss": curie_weiss,
    "ferro2d": ferromagnet_2d,
}
"""Name -> generator; the first argument is N for ``sk`` and ``curie_weiss``, the side L otherwise."""

"""Gibbs sampling of Ising models: single-site heat bath, and block Gibbs for bipartite couplings.

Heat bath draws one spin from its conditional given all the others,

    q(x_k = +1 | x_rest) = σ(2β f_k),      f = h + Jx,

which is the same as proposing x_k → −x_k and flipping with probability 1 / (1 + e^{βΔE}),
ΔE = 2 x_k f_k (Glauber dynamics); :class:`HeatBath` shares its sweeps with
:class:`~kakusan.mcmc.metropolis.Metropolis`.

When the couplings are bipartite — two groups A and B with no coupling inside a group, as in a
restricted Boltzmann machine, E(a, b) = −aᵀWb − h_Aᵀa − h_Bᵀb — the spins of A are conditionally
independent given B, so :class:`BlockGibbs` draws all of A at once (one GEMM), then all of B.
"""

from __future__ import annotations

import torch

from kakusan.errors import KakusanError
from kakusan.mcmc.base import F64, Beta, ChainState, IsingLike, SpinGraph, StepInfo, as_beta, check_spins
from kakusan.mcmc.metropolis import SingleSiteKernel
from kakusan.runtime import make_generator

Tensor = torch.Tensor


class HeatBath(SingleSiteKernel):
    """Single-site heat bath (Gibbs): x_k ~ q(x_k | x_rest), q(x_k = +1 | x_rest) = σ(2β f_k).

    Implemented as the flip x_k → −x_k taken with probability 1 / (1 + e^{βΔE}), ΔE = 2 x_k f_k.
    Parameters as in :class:`~kakusan.mcmc.metropolis.SingleSiteKernel` (order, backend, dtype).

    >>> import torch
    >>> from kakusan.boltzmann import instances
    >>> from kakusan.mcmc import HeatBath, random_spins
    >>> kernel = HeatBath(instances.sherrington_kirkpatrick(64, seed=0))
    >>> state = kernel.init(random_spins(256, 64, generator=0), beta=torch.linspace(0.2, 1.0, 256))
    >>> state, info = kernel.step(state, torch.Generator().manual_seed(0))
    """

    rule = 1  # kakusan.mcmc._compiled.GLAUBER
    name = "heat_bath"

    def flip_probability(self, y: Tensor) -> Tensor:
        """1 / (1 + e^{y}) = σ(−y)."""
        return torch.sigmoid(-y)


class BlockGibbs:
    """Block Gibbs for bipartite couplings: a ~ q(a | b), then b ~ q(b | a), each in one draw.

    E(x) = −aᵀWb − h_Aᵀa − h_Bᵀb with a = x[A], b = x[B]; q(a_i = +1 | b) = σ(2β (Wb + h_A)_i)
    and q(b_j = +1 | a) = σ(2β (Wᵀa + h_B)_j). One step updates every spin once.

    Parameters
    ----------
    model : an Ising-type model (``couplings()``, ``h``) whose couplings are bipartite.
    groups : the sites of A and of B, (n_A,) and (n_B,) index tensors that partition 0..N−1;
        default: the two colours of the coupling graph.
    dtype : float64 (default) or float32.

    Notes
    -----
    :meth:`from_weights` builds it from (W, b, c) directly (x = [visible, hidden], ±1 units), without
    forming the (N, N) coupling matrix: the form an RBM with spin units uses. For 0/1 units
    v = (1 + s)/2, rewrite the energy in spins first.
    """

    name = "block_gibbs"

    def __init__(self, model: IsingLike, *, groups: tuple[Tensor, Tensor] | None = None, dtype: torch.dtype = F64):
        self._setup(*_bipartite_params(SpinGraph.from_model(model), groups), dtype)

    def _setup(self, a: Tensor, b: Tensor, W: Tensor, h_a: Tensor, h_b: Tensor, dtype: torch.dtype) -> None:
        if dtype not in (torch.float32, F64):
            raise KakusanError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.dtype = dtype
        self.a, self.b = a, b  # site indices of the two groups
        self.W = W.to(dtype)  # (n_A, n_B)
        self.h_a, self.h_b = h_a.to(F64), h_b.to(F64)
        self.n_spins = len(a) + len(b)

    @classmethod
    def from_weights(cls, W: Tensor, b: Tensor, c: Tensor, *, dtype: torch.dtype = F64) -> BlockGibbs:
        """Block Gibbs for E(v, h) = −vᵀWh − bᵀv − cᵀh, v ∈ {±1}^{n_v}, h ∈ {±1}^{n_h}; x = [v, h].

        W is (n_visible, n_hidden), b (n_visible,), c (n_hidden,); read once, now.
        """
        W, b, c = (torch.as_tensor(t).detach().to(F64) for t in (W, b, c))
        if W.ndim != 2 or b.shape != (W.shape[0],) or c.shape != (W.shape[1],):
            raise KakusanError(f"W must be (n_visible, n_hidden) with b (n_visible,) and c (n_hidden,), "
                               f"got {tuple(W.shape)}, {tuple(b.shape)}, {tuple(c.shape)}")
        n_v, n_h = W.shape
        kernel = cls.__new__(cls)
        arange = lambda lo, hi: torch.arange(lo, hi, device=W.device)  # noqa: E731
        kernel._setup(arange(0, n_v), arange(n_v, n_v + n_h), W, b.to(W.device), c.to(W.device), dtype)
        return kernel

    def __repr__(self) -> str:
        return f"BlockGibbs(n_a={len(self.a)}, n_b={len(self.b)})"

    def energy(self, x: Tensor) -> Tensor:
        """E(x) = −aᵀWb − h_Aᵀa − h_Bᵀb: (C, N) -> (C,) float64."""
        xa, xb = x[:, self.a].to(F64), x[:, self.b].to(F64)
        return -((xa @ self.W.to(F64)) * xb).sum(1) - xa @ self.h_a - xb @ self.h_b

    def init(self, x0: Tensor, beta: Beta = 1.0) -> ChainState:
        """A state for x0 (n_chains, N) ±1 (copied) at β (a float or (n_chains,))."""
        x = check_spins(x0, self.n_spins).to(self.W.device, self.dtype).contiguous().clone()
        return ChainState(x, as_beta(beta, len(x), x.device), self.energy(x))

    def step(self, state: ChainState, generator: torch.Generator | None = None) -> tuple[ChainState, StepInfo]:
        """Draw a given b, then b given the new a; updates ``state.x`` and ``state.energy`` in place."""
        if state.x.dtype != self.dtype or state.energy.dtype != F64:
            state = ChainState(state.x.to(self.dtype), state.beta, state.energy.to(F64))
        x, g = state.x, make_generator(generator, device=state.x.device)
        two_beta = 2.0 * state.beta[:, None]
        xa_old = x[:, self.a]
        f_a = x[:, self.b] @ self.W.T + self.h_a  # (C, n_A)
        xa = _draw(two_beta * f_a, g).to(x.dtype)
        xb_old = x[:, self.b]
        f_b = xa @ self.W + self.h_b  # (C, n_B)
        xb = _draw(two_beta * f_b, g).to(x.dtype)
        x[:, self.a] = xa
        x[:, self.b] = xb
        state.energy.copy_(-(xb.to(F64) * f_b.to(F64)).sum(1) - xa.to(F64) @ self.h_a)
        changed = (xa != xa_old).sum(1) + (xb != xb_old).sum(1)
        return state, StepInfo(changed.to(F64) / self.n_spins)


def _draw(logit: Tensor, g: torch.Generator) -> Tensor:
    """±1 with P(+1) = σ(logit), elementwise (float64)."""
    u = torch.rand(logit.shape, generator=g, dtype=F64, device=logit.device)
    return torch.where(u < torch.sigmoid(logit.to(F64)), 1.0, -1.0)


def _bipartite_params(graph: SpinGraph, groups: tuple[Tensor, Tensor] | None):
    """(A, B, W = J[A][:, B], h_A, h_B), checking that no coupling joins two sites of one group."""
    n = graph.n_spins
    if groups is None:
        if graph.colour is None:
            raise KakusanError("BlockGibbs needs bipartite couplings (two groups, no coupling inside a group); "
                               "this model's are not: use HeatBath or Metropolis")
        groups = tuple(torch.nonzero(graph.colour == c).flatten() for c in (0, 1))
    a, b = (torch.as_tensor(t, dtype=torch.int64, device=graph.h.device) for t in groups)
    if sorted(torch.cat([a, b]).tolist()) != list(range(n)):
        raise KakusanError(f"groups must partition the sites 0..{n - 1} into two index sets")
    J = graph.J if graph.J is not None else _dense(graph)
    for g, name in ((a, "first"), (b, "second")):
        if bool((J[g][:, g] != 0).any()):
            raise KakusanError(f"the {name} group has couplings inside it, so it cannot be drawn at once: "
                               "pass groups=(A, B) with no coupling inside A or B, or use HeatBath")
    return a, b, J[a][:, b], graph.h[a], graph.h[b]


def _dense(graph: SpinGraph) -> Tensor:
    J = torch.zeros(graph.n_spins, graph.n_spins, dtype=F64, device=graph.h.device)
    return J.scatter_add_(1, graph.nbr, graph.weight)

"""Block Gibbs for bipartite models: v ~ q_β(v | h), then h ~ q_β(h | v), each layer in one draw.

In a bipartite model no two units of one layer interact, so given the other layer all units of a
layer are independent and one sweep is two batched draws (two matrix products). :class:`BlockGibbs`
works through the model's layer functions,

    hidden_field(v) = a(v),  visible_energy(v) = E_v(v),  with E(v, h) = E_v(v) − hᵀa(v),
    hidden_units.sample(β a, generator),  sample_visible(h, generator, beta),

which every RBM of :mod:`kakusan.rbm` exposes (Bernoulli, spin and Gaussian-visible), and which
:class:`BipartiteIsing` presents for an Ising model E(x) = −½ xᵀJx − hᵀx whose couplings join two
groups of sites A and B and none inside a group: a is the "visible" layer, b the "hidden" one, W = J[A, B]
and the fields h_A, h_B are the biases — a spin RBM, E(a, b) = −aᵀWb − h_Aᵀa − h_Bᵀb.

The chain state ``x`` holds both layers in the model's dtype: (v, h) side by side for an RBM,
(n_chains, n_visible + n_hidden); the N spins in site order for an Ising model. ``energy`` is E(v, h)
in float64, computed from the field the hidden draw used. The model is read at every step, so a kernel
follows a model that is being trained (PCD), and replica exchange
(:class:`kakusan.mcmc.tempering.ReplicaExchange`) wraps it through the per-chain β.
"""

from __future__ import annotations

import torch

from kakusan.errors import KakusanError
from kakusan.mcmc.base import F64, Beta, ChainState, IsingLike, SpinGraph, StepInfo, as_beta, check_spins
from kakusan.rbm.base import scale
from kakusan.rbm.units import SPIN
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor


class BlockGibbs:
    """Block Gibbs sweeps of a bipartite model at a β per chain: v ~ q_β(v | h), then h ~ q_β(h | v).

    Parameters
    ----------
    model : an RBM (``kakusan.rbm``), read live at every step; or an Ising-type model (``couplings()``,
        ``h``) with bipartite couplings, read once, now, through :class:`BipartiteIsing`.
    groups : Ising models only: the sites of A and of B, (n_A,) and (n_B,) index tensors that partition
        0..N−1; default: the two colours of the coupling graph.
    dtype : Ising models only: float64 (default) or float32 (an RBM samples in its own dtype).

    Notes
    -----
    :meth:`from_weights` builds it from (W, b, c) with ±1 units directly (x = [visible, hidden]),
    without forming the (N, N) coupling matrix.

    >>> import torch
    >>> from kakusan.rbm import BernoulliRBM
    >>> from kakusan.mcmc import BlockGibbs
    >>> kernel = BlockGibbs(BernoulliRBM(6, 4, seed=0))
    >>> state = kernel.init(torch.zeros(8, 6), beta=torch.linspace(0.2, 1.0, 8), generator=0)
    >>> state, info = kernel.step(state, torch.Generator().manual_seed(1))
    >>> state.x.shape, info.acceptance.shape
    (torch.Size([8, 10]), torch.Size([8]))
    """

    name = "block_gibbs"
    recomputes_energy = True  # every step computes E(v, h) afresh: kept chains need no re-initialisation

    def __init__(self, model, *, groups: tuple[Tensor, Tensor] | None = None, dtype: torch.dtype | None = None):
        if not hasattr(model, "hidden_field"):  # an Ising model: present it as a spin RBM
            model = BipartiteIsing(model, groups=groups, dtype=F64 if dtype is None else dtype)
        elif groups is not None or dtype is not None:
            raise KakusanError("groups and dtype are for Ising models; an RBM's layers and dtype are its own")
        self.model = model
        self.n_visible, self.n_hidden = model.n_visible, model.n_hidden
        self.n_spins = self.n_visible + self.n_hidden  # units per chain, the ChainState's width
        sites = getattr(model, "sites", None)  # where each layer sits in x
        self._v, self._h = sites if sites is not None else (slice(0, self.n_visible), slice(self.n_visible, None))

    @classmethod
    def from_weights(cls, W: Tensor, b: Tensor, c: Tensor, *, dtype: torch.dtype = F64) -> BlockGibbs:
        """Block Gibbs for E(v, h) = −vᵀWh − bᵀv − cᵀh, v ∈ {±1}^{n_v}, h ∈ {±1}^{n_h}; x = [v, h]
        (:meth:`BipartiteIsing.from_weights`)."""
        return cls(BipartiteIsing.from_weights(W, b, c, dtype=dtype))

    def __repr__(self) -> str:
        return f"BlockGibbs({type(self.model).__name__}, n_visible={self.n_visible}, n_hidden={self.n_hidden})"

    def visible(self, state: ChainState) -> Tensor:
        """The visible units (n_chains, n_visible) of a state (a view for an RBM, a copy for an Ising model)."""
        return state.x[:, self._v]

    def hidden(self, state: ChainState) -> Tensor:
        """The hidden units (n_chains, n_hidden) of a state (a view for an RBM, a copy for an Ising model)."""
        return state.x[:, self._h]

    def energy(self, x: Tensor) -> Tensor:
        """E(v, h) of joint states x (C, n_visible + n_hidden) laid out as the chains are: (C,) float64."""
        v = x[:, self._v].to(self.model.device, self.model.dtype)
        return self._energy(v, x[:, self._h].to(v), self.model.hidden_field(v))

    @torch.no_grad()
    def init(self, x0: Tensor, beta: Beta = 1.0, generator: Seed = None) -> ChainState:
        """A state from x0: (n_chains, n_visible) visible units or the joint (n_chains, n_visible + n_hidden),
        copied into the model's dtype and device. Given only v, h is drawn from q_β(h | v) with
        ``generator``, or set to its most probable value when no generator is given."""
        m = self.model
        x0 = torch.as_tensor(x0)
        if x0.ndim != 2 or x0.shape[1] not in (self.n_visible, self.n_spins) or len(x0) == 0:
            raise KakusanError(f"x0 must be (n_chains, {self.n_visible}) visible units or (n_chains, {self.n_spins}) "
                               f"visible and hidden units, got {tuple(x0.shape)}")
        if hasattr(m, "check_units"):
            m.check_units(x0)
        b = as_beta(beta, len(x0), m.device)
        if x0.shape[1] == self.n_spins:
            x = x0.to(m.device, m.dtype).clone(memory_format=torch.contiguous_format)
            v = x[:, self._v]
            return ChainState(x, b, self._energy(v, x[:, self._h], m.hidden_field(v)))
        v = x0.to(m.device, m.dtype)
        a = m.hidden_field(v)
        field = b.to(a.dtype)[:, None] * a
        if generator is None:  # deterministic start: the more probable value of each hidden unit
            lo, hi = m.hidden_units.values
            h = torch.where(field > 0, hi, lo).to(a.dtype)
        else:
            h = m.hidden_units.sample(field, make_generator(generator, m.device))
        x = torch.empty(len(v), self.n_spins, dtype=m.dtype, device=m.device)
        x[:, self._v], x[:, self._h] = v, h.to(m.dtype)
        return ChainState(x, b, self._energy(v, h, a))

    def _energy(self, v: Tensor, h: Tensor, a: Tensor) -> Tensor:
        """E(v, h) = E_v(v) − hᵀa(v) as float64 (accumulated in the model's dtype)."""
        return (self.model.visible_energy(v) - (h * a).sum(1)).to(F64)

    @staticmethod
    def _beta(state: ChainState) -> Beta:
        """The chains' β as a (n_chains,) tensor, or the float 1.0 when every chain is at β = 1 (saves a pass)."""
        return 1.0 if bool((state.beta == 1.0).all()) else state.beta

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None) -> tuple[ChainState, StepInfo]:
        """One sweep: v ~ q_β(v | h), then h ~ q_β(h | v); updates ``state.x`` and ``state.energy`` in place."""
        g = make_generator(generator, device=state.x.device)
        state, changed = self.visible_step(state, g)
        changed = changed + self.hidden_step(state, self.model.hidden_field(self.visible(state)), g)
        return state, StepInfo(changed.to(F64) / self.n_spins)

    @torch.no_grad()
    def visible_step(self, state: ChainState, generator: torch.Generator | None = None, *,
                     count: bool = True) -> tuple[ChainState, Tensor | None]:
        """The first half of a sweep, v ~ q_β(v | h), in place; returns the state and the number of visible
        units that changed per chain (n_chains,), or None when not ``count``. ``state.energy`` is stale
        until :meth:`hidden_step`."""
        m = self.model
        if state.x.dtype != m.dtype or state.energy.dtype != F64:
            state = ChainState(state.x.to(m.dtype), state.beta, state.energy.to(F64))
        v = m.sample_visible(self.hidden(state), make_generator(generator, device=state.x.device),
                             beta=self._beta(state))
        changed = (v != self.visible(state)).sum(1) if count else None
        state.x[:, self._v] = v.to(state.x.dtype)
        return state, changed

    @torch.no_grad()
    def hidden_step(self, state: ChainState, field: Tensor, generator: torch.Generator | None = None, *,
                    count: bool = True) -> Tensor | None:
        """The second half of a sweep, h ~ q_β(h | v), given the hidden field a(v) (n_chains, n_hidden) of the
        current v at β = 1 (e.g. one the caller computed anyway); updates h and the energy in place and
        returns the number of hidden units that changed per chain (None when not ``count``)."""
        m, beta = self.model, self._beta(state)
        field = field.detach()
        h = m.hidden_units.sample(scale(beta, field), make_generator(generator, device=state.x.device))
        changed = (h != self.hidden(state)).sum(1) if count else None
        state.x[:, self._h] = h.to(state.x.dtype)
        state.energy.copy_(self._energy(self.visible(state), h, field))
        return changed


class BipartiteIsing:
    """An Ising model with bipartite couplings presented through an RBM's layer functions (±1 units).

    E(x) = −aᵀWb − h_Aᵀa − h_Bᵀb with a = x[A] (the "visible" layer), b = x[B] (the "hidden" one),
    W = J[A, B]; q(a_i = +1 | b) = σ(2β (Wb + h_A)_i), q(b_j = +1 | a) = σ(2β (Wᵀa + h_B)_j).

    Parameters
    ----------
    model : an Ising-type model (``couplings()``, ``h``) whose couplings are bipartite; read once, now.
    groups : the sites of A and of B, (n_A,) and (n_B,) index tensors that partition 0..N−1;
        default: the two colours of the coupling graph.
    dtype : float64 (default) or float32 for the spins and W (fields and energies are float64).
    """

    visible_units = SPIN
    hidden_units = SPIN

    def __init__(self, model: IsingLike, *, groups: tuple[Tensor, Tensor] | None = None, dtype: torch.dtype = F64):
        self._setup(*_bipartite_params(SpinGraph.from_model(model), groups), dtype)

    def _setup(self, a: Tensor, b: Tensor, W: Tensor, h_a: Tensor, h_b: Tensor, dtype: torch.dtype) -> None:
        if dtype not in (torch.float32, F64):
            raise KakusanError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.dtype = dtype
        self.sites = (a, b)  # site indices of the two groups in x
        self.W = W.to(dtype)  # (n_A, n_B)
        self.h_a, self.h_b = h_a.to(F64), h_b.to(F64)
        self.n_visible, self.n_hidden = W.shape  # the layer sizes n_A, n_B
        self.device = W.device

    @classmethod
    def from_weights(cls, W: Tensor, b: Tensor, c: Tensor, *, dtype: torch.dtype = F64) -> BipartiteIsing:
        """E(v, h) = −vᵀWh − bᵀv − cᵀh, v ∈ {±1}^{n_v}, h ∈ {±1}^{n_h}, x = [v, h], without forming J.

        W is (n_visible, n_hidden), b (n_visible,), c (n_hidden,); read once, now.
        """
        W, b, c = (torch.as_tensor(t).detach().to(F64) for t in (W, b, c))
        if W.ndim != 2 or b.shape != (W.shape[0],) or c.shape != (W.shape[1],):
            raise KakusanError(f"W must be (n_visible, n_hidden) with b (n_visible,) and c (n_hidden,), "
                               f"got {tuple(W.shape)}, {tuple(b.shape)}, {tuple(c.shape)}")
        n_v, n_h = W.shape
        model = cls.__new__(cls)
        arange = lambda lo, hi: torch.arange(lo, hi, device=W.device)  # noqa: E731
        model._setup(arange(0, n_v), arange(n_v, n_v + n_h), W, b.to(W.device), c.to(W.device), dtype)
        return model

    def check_units(self, x: Tensor) -> None:
        """Refuse anything but ±1 spins."""
        check_spins(x, x.shape[1])

    def hidden_field(self, v: Tensor) -> Tensor:
        """a(v) = Wᵀv + h_B: (C, n_A) -> (C, n_B) float64."""
        return v @ self.W + self.h_b

    def visible_field(self, h: Tensor) -> Tensor:
        """g(h) = Wh + h_A: (C, n_B) -> (C, n_A) float64."""
        return h @ self.W.T + self.h_a

    def visible_energy(self, v: Tensor) -> Tensor:
        """E_v(v) = −h_Aᵀv: (C, n_A) -> (C,) float64."""
        return -(v.to(F64) @ self.h_a)

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None, beta: Beta = 1.0) -> Tensor:
        """v ~ q_β(v | h), all units at once: (C, n_B) -> (C, n_A) ±1 float64."""
        return self.visible_units.sample(scale(beta, self.visible_field(h)), generator)


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


__all__ = ["BipartiteIsing", "BlockGibbs"]

"""Block Gibbs for restricted Boltzmann machines: v ~ q_β(v | h), then h ~ q_β(h | v), each in one draw.

In an RBM no two units of one layer interact, so given the other layer all units of a layer are
independent: one sweep is two batched draws (two matrix products). The kernel works with any model
that exposes the RBM layer functions (:class:`kakusan.rbm.base.RBM` and its subclasses):

    hidden_field(v) = a(v),  visible_energy(v) = E_v(v),  with E(v, h) = E_v(v) − hᵀa(v),
    hidden_units.sample(β a, generator),  sample_visible(h, generator, beta),

so Bernoulli, spin and Gaussian-visible RBMs share it, and replica exchange
(:class:`kakusan.mcmc.tempering.ReplicaExchange`) wraps it through the per-chain β. The chain state
``x`` is the concatenation (v, h) of shape (n_chains, n_visible + n_hidden) in the model's dtype;
``energy`` is E(v, h) of that joint state in float64, computed from the field the hidden draw used.
The model is read at every step, so a kernel follows a model that is being trained (PCD).
"""

from __future__ import annotations

import torch

from kakusan.errors import KakusanError
from kakusan.mcmc.base import F64, Beta, ChainState, StepInfo, as_beta
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor


class BipartiteGibbs:
    """Block Gibbs sweeps of an RBM at a β per chain: v ~ q_β(v | h), then h ~ q_β(h | v).

    Parameters
    ----------
    model : an RBM (``kakusan.rbm``); read live at every step.

    >>> import torch
    >>> from kakusan.rbm import BernoulliRBM
    >>> from kakusan.mcmc.bipartite import BipartiteGibbs
    >>> kernel = BipartiteGibbs(BernoulliRBM(6, 4, seed=0))
    >>> state = kernel.init(torch.zeros(8, 6), beta=torch.linspace(0.2, 1.0, 8), generator=0)
    >>> state, info = kernel.step(state, torch.Generator().manual_seed(1))
    >>> state.x.shape, info.acceptance.shape
    (torch.Size([8, 10]), torch.Size([8]))
    """

    name = "bipartite_gibbs"

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.n_visible, self.n_hidden = model.n_visible, model.n_hidden
        self.n_spins = self.n_visible + self.n_hidden  # units per chain, the ChainState's width

    def __repr__(self) -> str:
        return f"BipartiteGibbs({type(self.model).__name__}, n_visible={self.n_visible}, n_hidden={self.n_hidden})"

    def visible(self, state: ChainState) -> Tensor:
        """The visible units (n_chains, n_visible) of a state (a view)."""
        return state.x[:, : self.n_visible]

    def hidden(self, state: ChainState) -> Tensor:
        """The hidden units (n_chains, n_hidden) of a state (a view)."""
        return state.x[:, self.n_visible :]

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
        v = x0[:, : self.n_visible].to(m.device, m.dtype)
        b = as_beta(beta, len(v), m.device)
        a = m.hidden_field(v)
        field = b.to(a.dtype)[:, None] * a
        if x0.shape[1] == self.n_spins:
            h = x0[:, self.n_visible :].to(m.device, m.dtype)
        elif generator is None:  # deterministic start: the more probable value of each hidden unit
            lo, hi = m.hidden_units.values
            h = torch.where(field > 0, hi, lo).to(a.dtype)
        else:
            h = m.hidden_units.sample(field, make_generator(generator, m.device))
        x = torch.cat([v, h], dim=1)
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
        if state.x.dtype != m.dtype:
            state = ChainState(state.x.to(m.dtype), state.beta, state.energy)
        v_old = self.visible(state)
        v = m.sample_visible(self.hidden(state), make_generator(generator, device=state.x.device),
                             beta=self._beta(state))
        changed = (v != v_old).sum(1) if count else None
        v_old.copy_(v)
        return state, changed

    @torch.no_grad()
    def hidden_step(self, state: ChainState, field: Tensor, generator: torch.Generator | None = None, *,
                    count: bool = True) -> Tensor | None:
        """The second half of a sweep, h ~ q_β(h | v), given the hidden field a(v) (n_chains, n_hidden) of the
        current v at β = 1 (e.g. one the caller computed anyway); updates h and the energy in place and
        returns the number of hidden units that changed per chain (None when not ``count``)."""
        m, beta = self.model, self._beta(state)
        field = field.detach()
        scaled = field if isinstance(beta, float) else beta.to(field.dtype)[:, None] * field
        h = m.hidden_units.sample(scaled, make_generator(generator, device=state.x.device))
        h_old = self.hidden(state)
        changed = (h != h_old).sum(1) if count else None
        h_old.copy_(h)
        state.energy.copy_(self._energy(self.visible(state), h, field))
        return changed

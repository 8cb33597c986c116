"""Persistent chains: Markov chains kept across calls while the model they sample changes.

Learning an energy model needs samples of the current model at every parameter update. Persistent
chains (Younes 1989; Tieleman 2008) are not restarted: each call builds a kernel for the model as it
is now, advances the same chains, and keeps them for the next call. Because the parameters move
little per update, the chains stay close to equilibrium. Two samplers share this chain-keeping:

* :class:`PersistentSampler` — ``n_chains`` chains of one kernel, ``n_sweeps`` sweeps per call;
* :class:`TemperedSampler` — ``n_systems`` replica-exchange systems over a ladder β_0 < … < β_{R−1} = 1
  (:class:`~kakusan.mcmc.tempering.ReplicaExchange`), ``n_rounds`` swap rounds per call, whose β = 1
  replicas are the samples; hot replicas cross between modes and swap their states down to β = 1.

The Boltzmann-learning statistics estimators (:mod:`kakusan.learn.pcd`, :mod:`kakusan.learn.tempered`)
and the RBM negative phases (:mod:`kakusan.rbm.negatives`) are these samplers with their own start
(random spins, or rows of the data) and their own readout. At the first call the chains start from
``start()`` and run ``burn_in`` unrecorded sweeps (rounds); at later calls kernels whose energies
could be stale (those that update E incrementally) recompute them under the new parameters.
``state_dict()`` / ``load_state_dict()`` save and restore the chains, so a resumed run continues them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from kakusan.errors import KakusanError, check_positive_int
from kakusan.mcmc.base import F64, ChainState, Kernel
from kakusan.mcmc.ladders import check_ladder
from kakusan.mcmc.swaps import chain_betas
from kakusan.mcmc.tempering import ReplicaExchange, SwapStats, TemperingState

Tensor = torch.Tensor


def _fresh(kernel: Kernel, state: ChainState) -> ChainState:
    """The kept chains with energies under the kernel's (current) model: re-initialised unless every
    step of this kernel recomputes E from scratch (``kernel.recomputes_energy``)."""
    return state if getattr(kernel, "recomputes_energy", False) else kernel.init(state.x, state.beta)


class PersistentSampler:
    """``n_chains`` Markov chains kept across calls, advanced ``n_sweeps`` sweeps per call.

    Parameters
    ----------
    n_chains : number of chains (None: the subclass picks it at the first call, e.g. the batch size).
    n_sweeps : kernel sweeps per call.
    burn_in : unrecorded sweeps after the chains start, at the first call.

    Attributes
    ----------
    state : the chains' :class:`~kakusan.mcmc.base.ChainState` after the last call (None before).
    """

    def __init__(self, n_chains: int | None = None, n_sweeps: int = 1, *, burn_in: int = 0):
        if n_chains is not None:
            check_positive_int(n_chains, "n_chains")
        self.n_chains, self.n_sweeps = n_chains, check_positive_int(n_sweeps, "n_sweeps")
        self.burn_in = check_positive_int(burn_in, "burn_in", 0)
        self.state: ChainState | None = None

    def advance(self, kernel: Kernel, generator: torch.Generator, start: Callable[[], ChainState], *,
                n_sweeps: int | None = None, observe: Callable[[ChainState], None] | None = None) -> ChainState:
        """Advance the chains ``n_sweeps`` (default: :attr:`n_sweeps`) sweeps of ``kernel``, calling
        ``observe(state)`` after each; at the first call they start from ``start()`` with ``burn_in`` sweeps."""
        if self.state is None:
            state = start()
            for _ in range(self.burn_in):
                state, _ = kernel.step(state, generator)
        else:
            state = _fresh(kernel, self.state)
        for _ in range(self.n_sweeps if n_sweeps is None else n_sweeps):
            state, _ = kernel.step(state, generator)
            if observe is not None:
                observe(state)
        self.state = state
        return state

    def state_dict(self) -> dict[str, Tensor]:
        """The chains ``x`` (n_chains, N), or nothing before the first call."""
        return {} if self.state is None else {"x": self.state.x.clone(memory_format=torch.contiguous_format)}

    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        """Restore chains saved by :meth:`state_dict` at β = 1 (energies are recomputed at the next call)."""
        if "x" in tensors:
            x = tensors["x"]
            self.state = ChainState(x.clone(), torch.ones(len(x), dtype=F64), torch.zeros(len(x), dtype=F64))

    def reset(self) -> None:
        """Forget the chains (the next call starts fresh ones)."""
        self.state = None


class TemperedSampler:
    """``n_systems`` persistent replica-exchange systems on a ladder ending at β = 1.

    Parameters
    ----------
    betas : the ladder, increasing, ending at exactly 1 (the model); from :mod:`kakusan.mcmc.ladders`.
    n_systems : independent systems S, one β = 1 sample each (None: the subclass picks it at the first call).
    n_rounds : replica-exchange steps per call, each ``sweeps`` kernel sweeps and one swap round.
    sweeps : kernel sweeps between two swap rounds.
    burn_in : unrecorded steps after the replicas start, at the first call (the swap statistics then restart).

    Attributes
    ----------
    state : the :class:`~kakusan.mcmc.tempering.TemperingState` after the last call (None before).
    """

    def __init__(self, betas: Tensor | Sequence[float], n_systems: int | None = None, n_rounds: int = 1, *,
                 sweeps: int = 1, burn_in: int = 0):
        self.betas = check_ladder(betas)
        if float(self.betas[-1]) != 1.0:
            raise KakusanError(f"the ladder must end at β = 1 (the model), got largest β = {float(self.betas[-1])}")
        if n_systems is not None:
            check_positive_int(n_systems, "n_systems")
        self.n_systems, self.n_rounds = n_systems, check_positive_int(n_rounds, "n_rounds")
        self.sweeps, self.burn_in = check_positive_int(sweeps, "sweeps"), check_positive_int(burn_in, "burn_in", 0)
        self.state: TemperingState | None = None
        self._pt: ReplicaExchange | None = None
        self._saved: dict[str, Tensor] | None = None

    @property
    def n_replicas(self) -> int:
        return len(self.betas)

    def advance(self, kernel: Kernel, generator: torch.Generator, start: Callable[[ReplicaExchange], TemperingState],
                *, n_systems: int | None = None,
                observe: Callable[[TemperingState], None] | None = None) -> TemperingState:
        """Advance every replica ``n_rounds`` steps (sweeps and a swap round) of ``kernel``, calling
        ``observe(state)`` after each; at the first call the systems start from ``start(pt)`` (or from chains
        given to :meth:`load_state_dict`) with ``burn_in`` steps."""
        pt = ReplicaExchange(kernel, self.betas, n_systems=n_systems or self.n_systems, sweeps=self.sweeps)
        if self.state is not None:
            state = dataclasses.replace(self.state, chains=_fresh(kernel, self.state.chains))
        elif self._saved is not None:
            state, self._saved = _restore(pt, self._saved), None
        else:
            state = start(pt)
            for _ in range(self.burn_in):
                state, _ = pt.step(state, generator)
            state = pt.reset_statistics(state)
        for _ in range(self.n_rounds):
            state, _ = pt.step(state, generator)
            if observe is not None:
                observe(state)
        self.state, self._pt = state, pt
        return state

    def cold(self) -> ChainState:
        """The S chains at β = 1 (one per system) after the last call, as a copy."""
        return self.state.at(self.n_replicas - 1)

    def swap_stats(self) -> SwapStats:
        """Swap acceptance per pair and round trips accumulated since the replicas started (or were restored)."""
        if self.state is None or self._pt is None:
            raise KakusanError("no replica exchange has run yet: draw samples first (model_stats, or fit)")
        return self._pt.stats(self.state)

    def state_dict(self) -> dict[str, Tensor]:
        """The replicas (replica order), which replica sits at which temperature, and the swap-round parity."""
        if self.state is None:
            return {}
        x = self.state.chains.x.clone(memory_format=torch.contiguous_format)
        return {"x": x, "replica": self.state.replica.clone(), "step": torch.tensor(self.state.step)}

    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        """Restore replicas saved by :meth:`state_dict` at the next call (the swap statistics and round trips restart)."""
        self._saved = tensors if "x" in tensors else None
        self.state = None

    def reset(self) -> None:
        """Forget the replicas (the next call starts fresh ones)."""
        self.state, self._pt, self._saved = None, None, None


def _restore(pt: ReplicaExchange, saved: dict[str, Tensor]) -> TemperingState:
    """The systems of a :meth:`TemperedSampler.state_dict`: replicas at their saved temperatures and parity."""
    replica = saved["replica"].to(torch.int64)
    state = pt.init(saved["x"])
    chains = state.chains.with_beta(chain_betas(pt.betas, replica).to(state.chains.x.device))
    return dataclasses.replace(state, chains=chains, replica=replica, step=int(saved["step"]))


__all__ = ["PersistentSampler", "TemperedSampler"]

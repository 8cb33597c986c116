"""Model statistics from persistent replica exchange: the β = 1 replicas of S tempering systems.

Like :class:`~kakusan.learn.pcd.PCDEstimator`, but each of the S persistent chains at the model's
temperature β = 1 belongs to a replica-exchange system whose other replicas run at β < 1 (where the
energy landscape is flatter) and swap temperatures with it (:mod:`kakusan.mcmc.tempering`). A model
with well-separated modes — common once couplings grow during learning — is then still sampled
across its modes, where single persistent chains stay in the mode they are in.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kakusan.errors import KakusanError
from kakusan.learn.base import Stats
from kakusan.learn.pcd import KernelFactory, _Accumulator, _check_count, _heat_bath, on_device
from kakusan.mcmc.base import random_spins
from kakusan.mcmc.ladders import geometric_ladder
from kakusan.mcmc.tempering import ReplicaExchange, SwapStats, TemperingState, check_ladder


class TemperedEstimator:
    """⟨x⟩ and ⟨x xᵀ⟩ under q from the β = 1 replicas of ``n_systems`` persistent tempering systems.

    Parameters
    ----------
    kernel_factory : model -> kernel that accepts a β per chain (default: ``HeatBath``); rebuilt
        at every call, so it sees the current parameters.
    n_systems : S, independent replica-exchange systems; each contributes one β = 1 chain.
    n_sweeps : replica-exchange steps (a sweep and a swap round) per call; statistics average them.
    betas : the ladder, increasing, with its largest value 1.0 (default: ``geometric_ladder(beta_min, 1, n_replicas)``).
    n_replicas, beta_min : the default ladder's size and lowest β.
    burn_in : steps before the first call's statistics.

    Attributes
    ----------
    state : the :class:`~kakusan.mcmc.tempering.TemperingState` after the last call (None before).

    Notes
    -----
    Stochastic, like PCD: use ``adam``, ``sgd``, ``momentum`` or ``surrogate`` (not ``backtracking``).
    The cost per call is n_replicas × that of PCD with ``n_systems`` chains.
    """

    def __init__(self, kernel_factory: KernelFactory | None = None, n_systems: int = 32, n_sweeps: int = 2, *,
                 betas: Sequence[float] | torch.Tensor | None = None, n_replicas: int = 8, beta_min: float = 0.3,
                 burn_in: int = 0):
        _check_count(n_systems, "n_systems", 1)
        _check_count(n_sweeps, "n_sweeps", 1)
        _check_count(burn_in, "burn_in", 0)
        self.betas = geometric_ladder(beta_min, 1.0, n_replicas) if betas is None else check_ladder(betas)
        if float(self.betas[-1]) != 1.0:
            raise KakusanError(f"the ladder must end at β = 1 (the model), got largest β = {float(self.betas[-1])}")
        self.kernel_factory = kernel_factory if kernel_factory is not None else _heat_bath
        self.n_systems, self.n_sweeps, self.burn_in = n_systems, n_sweeps, burn_in
        self.state: TemperingState | None = None
        self._pt: ReplicaExchange | None = None
        self._device_generator: torch.Generator | None = None

    def __repr__(self) -> str:
        return f"TemperedEstimator(n_systems={self.n_systems}, n_replicas={len(self.betas)}, n_sweeps={self.n_sweeps})"

    def model_stats(self, model: torch.nn.Module, generator: torch.Generator | None = None) -> Stats:
        """Advance every replica ``n_sweeps`` steps under the current parameters; Stats of the β = 1 replicas."""
        target = model.as_ising() if hasattr(model, "as_ising") else model
        generator, self._device_generator = on_device(generator, target.h.device, self._device_generator)
        pt = ReplicaExchange(self.kernel_factory(target), self.betas, n_systems=self.n_systems)
        if self.state is None:
            state = pt.init(random_spins(pt.n_chains, target.h.numel(), generator, device=target.h.device))
            for _ in range(self.burn_in):
                state, _ = pt.step(state, generator)
            state = pt.reset_statistics(state)
        else:
            state = pt.resume(self.state)  # energies under the new parameters
        acc = _Accumulator()
        for _ in range(self.n_sweeps):
            state, _ = pt.step(state, generator)
            acc.add(state.at(pt.n_replicas - 1).x)
        self.state, self._pt = state, pt
        return acc.stats()

    def swap_stats(self) -> SwapStats:
        """Swap acceptance per pair and round trips accumulated since the first call."""
        if self.state is None or self._pt is None:
            raise KakusanError("no replica exchange has run yet: call model_stats (or fit) first")
        return self._pt.stats(self.state)

    def reset(self) -> None:
        """Forget the replicas (the next call starts fresh ones)."""
        self.state, self._pt, self._device_generator = None, None, None

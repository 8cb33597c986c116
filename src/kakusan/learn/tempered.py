"""Model statistics from persistent replica exchange: the β = 1 replicas of S tempering systems.

Like :class:`~kakusan.learn.pcd.PCDEstimator`, but each of the S persistent chains at the model's
temperature β = 1 belongs to a replica-exchange system whose other replicas run at β < 1 (where the
energy landscape is flatter) and swap temperatures with it (:mod:`kakusan.mcmc.tempering`). A model
with well-separated modes — common once couplings grow during learning — is then still sampled
across its modes, where single persistent chains stay in the mode they are in. The chain-keeping
is :class:`kakusan.mcmc.persistent.TemperedSampler`, shared with the RBM's PT-PCD.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kakusan.errors import check_positive_int
from kakusan.learn.base import Stats
from kakusan.learn.pcd import KernelFactory, _Accumulator, _heat_bath, spin_model
from kakusan.mcmc.base import random_spins
from kakusan.mcmc.ladders import geometric_ladder
from kakusan.mcmc.persistent import TemperedSampler
from kakusan.runtime import make_generator


class TemperedEstimator(TemperedSampler):
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
    The cost per call is n_replicas × that of PCD with ``n_systems`` chains. :meth:`swap_stats` reports
    the swaps since the first call.
    """

    def __init__(self, kernel_factory: KernelFactory | None = None, n_systems: int = 32, n_sweeps: int = 2, *,
                 betas: Sequence[float] | torch.Tensor | None = None, n_replicas: int = 8, beta_min: float = 0.3,
                 burn_in: int = 0):
        ladder = geometric_ladder(beta_min, 1.0, n_replicas) if betas is None else betas
        super().__init__(ladder, check_positive_int(n_systems, "n_systems"), check_positive_int(n_sweeps, "n_sweeps"),
                         burn_in=burn_in)
        self.kernel_factory = kernel_factory if kernel_factory is not None else _heat_bath

    @property
    def n_sweeps(self) -> int:
        """Replica-exchange steps per call (each one sweep and one swap round)."""
        return self.n_rounds

    def __repr__(self) -> str:
        return f"TemperedEstimator(n_systems={self.n_systems}, n_replicas={self.n_replicas}, n_sweeps={self.n_sweeps})"

    def model_stats(self, model: torch.nn.Module, generator: torch.Generator | None = None) -> Stats:
        """Advance every replica ``n_sweeps`` steps under the current parameters; Stats of the β = 1 replicas."""
        target = spin_model(model)
        device = target.h.device
        g = make_generator(generator, device)
        acc = _Accumulator()
        self.advance(self.kernel_factory(target), g,
                     lambda pt: pt.init(random_spins(pt.n_chains, target.h.numel(), g, device=device)),
                     observe=lambda state: acc.add(state.at(self.n_replicas - 1).x))
        return acc.stats()

"""Model statistics from persistent chains (PCD; Tieleman, ICML 2008; Younes 1989).

⟨x_k⟩_q and ⟨x_k x_l⟩_q are estimated from n_chains Markov chains that are *not* restarted between
parameter updates: each call advances them ``n_sweeps`` sweeps under the model's current
parameters and averages x and x xᵀ over the chains and those sweeps. Because the parameters move
little per step the chains stay close to equilibrium, and the estimate is nearly unbiased at the
cost of Monte Carlo noise ~ 1/√(n_chains · n_sweeps / τ). The chain-keeping is
:class:`kakusan.mcmc.persistent.PersistentSampler`, shared with the RBM negative phases.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from kakusan.errors import KakusanError
from kakusan.learn.base import Stats
from kakusan.mcmc.base import Kernel, random_spins
from kakusan.mcmc.persistent import PersistentSampler
from kakusan.runtime import make_generator

KernelFactory = Callable[[torch.nn.Module], Kernel]


class PCDEstimator(PersistentSampler):
    """⟨x⟩ and ⟨x xᵀ⟩ under q from persistent chains advanced ``n_sweeps`` sweeps per call.

    Parameters
    ----------
    kernel_factory : model -> kernel, e.g. ``HeatBath`` or ``lambda m: Metropolis(m, order="random")``.
        Kernels read the couplings when built, so a new kernel is built at every call: it always
        sees the current parameters.
    n_chains : number of persistent chains.
    n_sweeps : sweeps per call (per optimizer step); the statistics average all of them.
    burn_in : extra sweeps before the first call's statistics (the chains start uniform at random).

    Attributes
    ----------
    state : the chains' :class:`~kakusan.mcmc.base.ChainState` after the last call (None before).

    Notes
    -----
    Stochastic: the statistics carry Monte Carlo noise, so use an optimizer that tolerates it
    (``adam``, ``sgd``, ``momentum`` or the fixed-L ``surrogate``), not ``backtracking``. The chains
    travel in ``state_dict()`` / ``load_state_dict()`` (:class:`~kakusan.mcmc.persistent.PersistentSampler`).
    A CPU generator drives chains on a GPU through a device generator drawn from it at each call.
    """

    def __init__(self, kernel_factory: KernelFactory | None = None, n_chains: int = 256, n_sweeps: int = 1, *,
                 burn_in: int = 0):
        super().__init__(n_chains, n_sweeps, burn_in=burn_in)
        self.kernel_factory = kernel_factory if kernel_factory is not None else _heat_bath

    def __repr__(self) -> str:
        return f"PCDEstimator(n_chains={self.n_chains}, n_sweeps={self.n_sweeps})"

    def model_stats(self, model: torch.nn.Module, generator: torch.Generator | None = None) -> Stats:
        """Advance the chains ``n_sweeps`` sweeps under the current parameters; Stats of the visited states."""
        target = spin_model(model)
        device = target.h.device
        g = make_generator(generator, device)
        kernel = self.kernel_factory(target)
        acc = _Accumulator()
        self.advance(kernel, g, lambda: kernel.init(random_spins(self.n_chains, target.h.numel(), g, device=device)),
                     observe=lambda state: acc.add(state.x))
        return acc.stats()


def spin_model(model: torch.nn.Module) -> torch.nn.Module:
    """The fully visible Ising model whose spins the chains sample (``model.as_ising()`` for a model with hidden units)."""
    return model.as_ising() if hasattr(model, "as_ising") else model


class _Accumulator:
    """Running Σ x and Σ x xᵀ over batches of ±1 configurations (C, N), in float64."""

    def __init__(self) -> None:
        self.n, self.s1, self.s2 = 0, None, None

    def add(self, x: torch.Tensor) -> None:
        x = x.to(torch.float64)
        s1, s2 = x.sum(0), x.T @ x
        self.s1 = s1 if self.s1 is None else self.s1 + s1
        self.s2 = s2 if self.s2 is None else self.s2 + s2
        self.n += len(x)

    def stats(self) -> Stats:
        return Stats((self.s1 / self.n).cpu(), (self.s2 / self.n).cpu())


def _heat_bath(model: torch.nn.Module) -> Kernel:
    from kakusan.mcmc.gibbs import HeatBath

    return HeatBath(model)


def _metropolis(model: torch.nn.Module) -> Kernel:
    from kakusan.mcmc.metropolis import Metropolis

    return Metropolis(model)


SAMPLERS: dict[str, KernelFactory] = {"gibbs": _heat_bath, "metropolis": _metropolis}
"""Kernel factories by name: ``gibbs`` (single-site heat bath) and ``metropolis`` (single-spin flip)."""


def kernel_factory(name: str) -> KernelFactory:
    """The factory model -> kernel named ``name`` in :data:`SAMPLERS`."""
    if name not in SAMPLERS:
        raise KakusanError(f"unknown sampler {name!r}: choose from {', '.join(SAMPLERS)}")
    return SAMPLERS[name]

"""Markov chain Monte Carlo for Ising models and RBMs: kernels, one driver, replica exchange, diagnostics.

>>> from kakusan.boltzmann import instances
>>> from kakusan.mcmc import HeatBath, random_spins, run_chain, diagnostics
>>> model = instances.sherrington_kirkpatrick(12, beta=1.0, seed=0)
>>> kernel = HeatBath(model)                                   # numba on the CPU, torch on GPUs
>>> state = kernel.init(random_spins(64, 12, generator=0))     # 64 chains at β = 1
>>> trace = run_chain(kernel, state, 1000, burn_in=100, generator=1)
>>> est = diagnostics.estimate(trace["energy"])                # mean, MCSE from τ_int, τ_int
"""

from kakusan.mcmc import diagnostics
from kakusan.mcmc.base import (
    BUILTIN_OBSERVABLES,
    ChainState,
    Kernel,
    SpinGraph,
    StepInfo,
    Trace,
    as_beta,
    random_spins,
    run_chain,
)
from kakusan.mcmc.bipartite import BipartiteIsing, BlockGibbs
from kakusan.mcmc.gibbs import HeatBath
from kakusan.mcmc.ladders import adapt_ladder, geometric_ladder, ladder_log_z
from kakusan.mcmc.metropolis import Metropolis, SingleSiteKernel
from kakusan.mcmc.tempering import ReplicaExchange, TemperingState, run_tempering

__all__ = [
    "BUILTIN_OBSERVABLES",
    "BipartiteIsing",
    "BlockGibbs",
    "ChainState",
    "HeatBath",
    "Kernel",
    "Metropolis",
    "SingleSiteKernel",
    "SpinGraph",
    "StepInfo",
    "Trace",
    "as_beta",
    "diagnostics",
    "random_spins",
    "run_chain",
    "ReplicaExchange",
    "TemperingState",
    "adapt_ladder",
    "geometric_ladder",
    "ladder_log_z",
    "run_tempering",
]

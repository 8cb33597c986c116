"""Boltzmann machines on ±1 spins: the Ising model, exact enumeration and standard test models.

>>> from kakusan.boltzmann import exact, instances
>>> model = instances.sherrington_kirkpatrick(12, beta=1.0, seed=0)
>>> stats = exact.exact_stats(model)            # log Z, <x_k>, <x_k x_l>, exact
>>> x = model.sample(1000, generator=0)         # (1000, 12) exact draws
"""

from kakusan.boltzmann.exact import (
    ExactStats,
    IsingParams,
    all_states,
    exact_sample,
    exact_stats,
    kl_divergence,
    log_prob_all,
    log_z,
    mean_log_likelihood,
    state_index,
)
from kakusan.boltzmann.ising import IsingModel, check_params, load_ising_npz, save_ising_npz

__all__ = [
    "ExactStats",
    "IsingModel",
    "IsingParams",
    "all_states",
    "check_params",
    "exact_sample",
    "exact_stats",
    "kl_divergence",
    "load_ising_npz",
    "log_prob_all",
    "log_z",
    "mean_log_likelihood",
    "save_ising_npz",
    "state_index",
]

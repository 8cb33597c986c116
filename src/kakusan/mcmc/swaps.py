"""The swap round of replica exchange and its bookkeeping: who sits where, direction labels, round trips.

One round proposes, for every system, the pairs (t, t+1) with t of the step's parity and accepts
each with min(1, exp((β_t − β_{t+1})(E_t − E_{t+1}))) (see :mod:`kakusan.mcmc.tempering`). A swap
exchanges temperatures, not configurations: ``replica[s, t]`` records which replica of system s sits
at temperature t. Each replica's trip state says which end of the ladder it saw last, which gives the
"up" labels of f(β) and the round trips β_0 → β_{R−1} → β_0. The loop is compiled with numba: the
bookkeeping costs microseconds, not a sweep.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numba as nb
import numpy as np
import torch

from kakusan.mcmc.base import F64

if TYPE_CHECKING:
    from kakusan.mcmc.tempering import TemperingState

Tensor = torch.Tensor

# trip states of a replica: where it has been, for round trips and direction labels
_NONE, _UP, _DOWN_TRIP, _DOWN = 0, 1, 2, 3  # up: last end β_0; down: last end β_{R−1} (_DOWN_TRIP: after β_0)


def zero_counts(S: int, R: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Zeroed swap counts of S systems of R replicas: n_attempted (R−1,), n_accepted (S, R−1), n_up, n_labelled (R,)."""
    i64 = torch.int64
    return (torch.zeros(R - 1, dtype=i64), torch.zeros(S, R - 1, dtype=i64), torch.zeros(R, dtype=i64),
            torch.zeros(R, dtype=i64))


def chain_betas(betas: Tensor, replica: Tensor) -> Tensor:
    """(S·R,) β of each chain (replica order) given which replica sits at which temperature."""
    S, R = replica.shape
    out = np.empty(S * R)
    out[(np.arange(S)[:, None] * R + replica.numpy()).reshape(-1)] = np.tile(betas.numpy(), S)
    return torch.from_numpy(out)


def swap_round(state: TemperingState, g: torch.Generator) -> tuple[TemperingState, Tensor, Tensor]:
    """One round of swaps between the pairs (t, t+1) with t of this step's parity; updates the
    permutation, labels and counts in place (compiled: the bookkeeping costs µs, not a sweep)."""
    S, R = state.replica.shape
    parity = state.step % 2
    u = torch.rand(S, len(range(parity, R - 1, 2)), generator=g, dtype=F64, device=g.device).cpu().numpy()
    beta = np.empty(S * R)
    accepted = np.zeros((S, R - 1), dtype=np.bool_)
    _swap_round(state.chains.energy.detach().cpu().numpy(), state.betas.numpy(), state.replica.numpy(),
                state.trip.numpy(), state.round_trips.numpy(), state.n_attempted.numpy(), state.n_accepted.numpy(),
                state.n_up.numpy(), state.n_labelled.numpy(), u, parity, True, beta, accepted)
    chains = dataclasses.replace(state.chains, beta=torch.from_numpy(beta).to(state.chains.x.device))
    new = dataclasses.replace(state, chains=chains, n_steps=state.n_steps + 1, step=state.step + 1)
    attempted = torch.zeros(R - 1, dtype=torch.bool)
    attempted[parity::2] = True
    return new, attempted, torch.from_numpy(accepted)


def label_ends(state: TemperingState) -> TemperingState:
    """Label the replicas that start at the two ends of the ladder (no swaps, no counts)."""
    S, R = state.replica.shape
    _swap_round(np.zeros(S * R), state.betas.numpy(), state.replica.numpy(), state.trip.numpy(),
                state.round_trips.numpy(), state.n_attempted.numpy(), state.n_accepted.numpy(), state.n_up.numpy(),
                state.n_labelled.numpy(), np.zeros((S, 0)), R, False, np.empty(S * R), np.zeros((S, R - 1), np.bool_))
    return state


@nb.njit(cache=True, nogil=True, boundscheck=False)
def _swap_round(energy, betas, replica, trip, trips, n_attempted, n_accepted, n_up, n_labelled, u, parity, count,
                beta_out, accepted):  # pragma: no cover - compiled
    S, R = replica.shape
    for t in range(parity, R - 1, 2):
        n_attempted[t] += 1
    for s in range(S):
        p = 0
        for t in range(parity, R - 1, 2):  # accept with min(1, e^{(β_t − β_{t+1})(E_t − E_{t+1})})
            a, b = replica[s, t], replica[s, t + 1]
            log_ratio = (betas[t] - betas[t + 1]) * (energy[s * R + a] - energy[s * R + b])
            if log_ratio >= 0.0 or u[s, p] < np.exp(log_ratio):
                replica[s, t], replica[s, t + 1] = b, a
                n_accepted[s, t] += 1
                accepted[s, t] = True
            p += 1
        hot, cold = replica[s, 0], replica[s, R - 1]
        if trip[s, hot] == _DOWN_TRIP:  # back at β_0 after β_0 -> β_{R−1}: one round trip
            trips[s, hot] += 1
        trip[s, hot] = _UP
        if trip[s, cold] == _UP:
            trip[s, cold] = _DOWN_TRIP
        elif trip[s, cold] == _NONE:
            trip[s, cold] = _DOWN
        for t in range(R):
            r = replica[s, t]
            beta_out[s * R + r] = betas[t]
            if count:
                n_up[t] += trip[s, r] == _UP
                n_labelled[t] += trip[s, r] != _NONE

"""Replica exchange (parallel tempering): R replicas at β_0 < … < β_{R−1} swap temperatures.

Each of R replicas of a system runs its own Markov chain at its own inverse temperature. After
every sweep, neighbouring temperatures t, t+1 propose to exchange their configurations x_i, x_j,
accepted with the Metropolis probability (Hukushima & Nemoto, J. Phys. Soc. Jpn. 65, 1604 (1996))

    A = min(1, exp((β_i − β_j)(E(x_i) − E(x_j)))),

which keeps the product Π_t q_{β_t}(x_t) invariant (see docs/tempering.md for the derivation).
Swaps are proposed in a deterministic even–odd order: pairs (0,1), (2,3), … after even steps
and (1,2), (3,4), … after odd ones (the "DEO" scheme of Syed et al., JRSS B 84, 321 (2022)),
which makes each replica's walk in temperature non-reversible.

A swap exchanges the *temperatures* of two chains, not their configurations: the configurations
stay in place (``state.chains``) and a permutation records which replica sits at which
temperature. Each replica carries a direction label — "up" (its last visit to an end of the
ladder was β_0) or "down" (β_{R−1}) — and a *round trip* is a replica's journey β_0 → β_{R−1} → β_0.
The swap round and that bookkeeping live in :mod:`kakusan.mcmc.swaps`, the ladders in
:mod:`kakusan.mcmc.ladders`.

Several independent PT systems (S of them, each with its own R replicas) run batched: chain
s·R + r is replica r of system s, and all S·R chains go through one kernel call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from kakusan.errors import KakusanError, check_positive_int
from kakusan.mcmc.base import F64, ChainState, Kernel, Observable, Trace, run_chain
from kakusan.mcmc.ladders import check_ladder
from kakusan.mcmc.swaps import chain_betas, label_ends, swap_round, zero_counts
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor

@dataclass(frozen=True)
class TemperingState:
    """S independent replica-exchange systems of R replicas each, and their swap statistics.

    Attributes
    ----------
    chains : (S·R, N) :class:`~kakusan.mcmc.base.ChainState` in *replica* order: chain s·R + r is
        replica r of system s, and ``chains.beta`` is the temperature each one sits at now.
    betas : (R,) float64, the ladder β_0 < β_1 < … < β_{R−1}.
    replica : (S, R) int64, ``replica[s, t]`` is the replica of system s at temperature t.
    trip : (S, R) int8 per replica: 0 no end visited yet, 1 last end β_0 (going up), 2 last end
        β_{R−1} after a visit to β_0 (coming back), 3 last end β_{R−1} with no β_0 before it.
    round_trips : (S, R) int64, round trips β_0 → β_{R−1} → β_0 completed by each replica.
    n_attempted : (R−1,) int64, swap attempts of each pair t, t+1 (the same in every system).
    n_accepted : (S, R−1) int64, accepted swaps of each pair in each system.
    n_up, n_labelled : (R,) int64, replica-steps at each temperature labelled "up", and labelled at all.
    n_steps : steps since the statistics were last reset; ``step`` : steps since :meth:`ReplicaExchange.init`
        (its parity picks the next swap pairs).

    Notes
    -----
    ``x``, ``energy`` and ``beta`` are the chains in *temperature* order (index s·R + t), so
    :func:`~kakusan.mcmc.base.run_chain` and its observables see temperature-ordered traces.
    Like a kernel's, :meth:`ReplicaExchange.step` updates the chains, the permutation and the counts in
    place and returns the state to use next; :meth:`clone` keeps a snapshot.
    """

    chains: ChainState
    betas: Tensor
    replica: Tensor
    trip: Tensor
    round_trips: Tensor
    n_attempted: Tensor
    n_accepted: Tensor
    n_up: Tensor
    n_labelled: Tensor
    n_steps: int = 0
    step: int = 0

    @property
    def n_systems(self) -> int:
        return self.replica.shape[0]

    @property
    def n_replicas(self) -> int:
        return self.replica.shape[1]

    @property
    def n_chains(self) -> int:
        return self.chains.n_chains

    @property
    def n_spins(self) -> int:
        return self.chains.n_spins

    @property
    def order(self) -> Tensor:
        """(S·R,) the chain at each (system s, temperature t), index s·R + t."""
        offset = torch.arange(self.n_systems, device=self.replica.device)[:, None] * self.n_replicas
        return (self.replica + offset).reshape(-1)

    @property
    def x(self) -> Tensor:
        """(S·R, N) configurations in temperature order (a copy)."""
        return self.chains.x[self.order.to(self.chains.x.device)]

    @property
    def energy(self) -> Tensor:
        """(S·R,) float64 energies E(x) in temperature order."""
        return self.chains.energy[self.order.to(self.chains.energy.device)]

    @property
    def beta(self) -> Tensor:
        """(S·R,) float64 the ladder repeated for each system: β of index s·R + t is β_t."""
        return self.betas.repeat(self.n_systems)

    @property
    def slot(self) -> Tensor:
        """(S, R) int64, the temperature index of each replica (the inverse of ``replica``)."""
        return torch.argsort(self.replica, dim=1)

    def clone(self) -> TemperingState:
        """A copy that later steps will not modify."""
        tensors = {f.name: getattr(self, f.name).clone() for f in dataclasses.fields(self)
                   if isinstance(getattr(self, f.name), Tensor)}
        return dataclasses.replace(self, chains=self.chains.clone(), **tensors)

    def at(self, t: int) -> ChainState:
        """The S chains at temperature index ``t`` (one per system), as a copy."""
        return self.chains.take(self.replica[:, t].to(self.chains.x.device)
                                + torch.arange(self.n_systems, device=self.chains.x.device) * self.n_replicas)


class SwapInfo(NamedTuple):
    """What one replica-exchange step did.

    ``acceptance`` (S·R,) is the kernel's :attr:`StepInfo.acceptance` in temperature order;
    ``swap_attempted`` (R−1,) bool marks the pairs t, t+1 proposed this step; ``swap_accepted``
    (S, R−1) bool marks those accepted (False where not attempted).
    """

    acceptance: Tensor
    swap_attempted: Tensor
    swap_accepted: Tensor


class SwapStats(NamedTuple):
    """Swap statistics since the last reset (see :meth:`ReplicaExchange.stats`).

    Attributes
    ----------
    betas : (R,) the ladder.
    acceptance : (R−1,) swap acceptance A_t of each pair t, t+1, pooled over systems.
    acceptance_per_system : (S, R−1).
    rejection_sum : Λ = Σ_t (1 − A_t).
    round_trips : round trips β_0 → β_{R−1} → β_0 completed in all systems.
    round_trips_per_10k : round trips per system per 10⁴ sweeps.
    up_fraction : (R,) f(β_t), the fraction of labelled replica visits to β_t made going up
        (Katzgraber et al. 2006); nan where no labelled replica has been.
    n_steps, n_sweeps : steps and kernel sweeps per chain since the reset.
    """

    betas: Tensor
    acceptance: Tensor
    acceptance_per_system: Tensor
    rejection_sum: float
    round_trips: int
    round_trips_per_10k: float
    up_fraction: Tensor
    n_steps: int
    n_sweeps: int


class ReplicaExchange:
    """Replica exchange over any kernel that accepts a β per chain: sweeps, then an even–odd swap round.

    Parameters
    ----------
    kernel : a :class:`~kakusan.mcmc.base.Kernel` (``HeatBath``, ``Metropolis``, ``BlockGibbs`` …).
    betas : (R,) increasing inverse temperatures, R ≥ 2 (e.g. :func:`~kakusan.mcmc.ladders.geometric_ladder`).
    n_systems : S, independent PT systems run batched.
    sweeps : kernel sweeps between two swap rounds.

    >>> from kakusan.boltzmann import instances
    >>> from kakusan.mcmc import HeatBath, random_spins
    >>> from kakusan.mcmc.tempering import ReplicaExchange, run_tempering
    >>> from kakusan.mcmc.ladders import geometric_ladder
    >>> pt = ReplicaExchange(HeatBath(instances.sherrington_kirkpatrick(16, seed=0)), geometric_ladder(0.2, 2.0, 8))
    >>> state = pt.init(random_spins(pt.n_chains, 16, generator=0))
    >>> state, info = pt.step(state, torch.Generator().manual_seed(1))
    >>> info.swap_accepted.shape
    torch.Size([1, 7])
    >>> trace = run_tempering(pt, state, 200, burn_in=50, generator=2)
    >>> trace.stats.acceptance.shape, trace.energy.shape
    (torch.Size([7]), torch.Size([200, 1, 8]))
    """

    def __init__(self, kernel: Kernel, betas: Tensor | Sequence[float], *, n_systems: int = 1, sweeps: int = 1):
        self.kernel = kernel
        self.betas = check_ladder(betas)
        self.n_systems, self.sweeps = check_positive_int(n_systems, "n_systems"), check_positive_int(sweeps, "sweeps")

    def __repr__(self) -> str:
        return f"ReplicaExchange({self.kernel!r}, n_replicas={self.n_replicas}, n_systems={self.n_systems})"

    @property
    def n_replicas(self) -> int:
        return len(self.betas)

    @property
    def n_chains(self) -> int:
        return self.n_systems * self.n_replicas

    def init(self, x0: Tensor) -> TemperingState:
        """Replica r of system s starts from x0[s·R + r] (x0: (S·R, N) ±1) at temperature β_r."""
        S, R = self.n_systems, self.n_replicas
        if torch.as_tensor(x0).shape[0] != S * R:
            raise KakusanError(f"x0 must have n_systems × n_replicas = {S} × {R} = {S * R} rows, "
                               f"got {torch.as_tensor(x0).shape[0]}")
        chains = self.kernel.init(x0, self.betas.repeat(S))
        state = TemperingState(chains, self.betas.clone(), torch.arange(R).repeat(S, 1),
                               torch.zeros(S, R, dtype=torch.int8), torch.zeros(S, R, dtype=torch.int64),
                               *zero_counts(S, R))
        return label_ends(state)

    def step(self, state: TemperingState, generator: torch.Generator | None = None) -> tuple[TemperingState, SwapInfo]:
        """``sweeps`` kernel sweeps of every chain, then one swap round; updates the chains in place."""
        g = make_generator(generator, device=state.chains.x.device)
        chains, acceptance = state.chains, 0.0
        for _ in range(self.sweeps):
            chains, info = self.kernel.step(chains, g)
            acceptance = acceptance + info.acceptance
        state = dataclasses.replace(state, chains=chains)
        state, attempted, accepted = swap_round(state, g)
        return state, SwapInfo((acceptance / self.sweeps)[state.order.to(chains.x.device)], attempted, accepted)

    def resume(self, state: TemperingState) -> TemperingState:
        """The same configurations and bookkeeping with energies recomputed by this kernel (after the
        model's parameters changed)."""
        return dataclasses.replace(state, chains=self.kernel.init(state.chains.x, state.chains.beta))

    @staticmethod
    def reset_statistics(state: TemperingState) -> TemperingState:
        """Zero the swap counts, round trips and f(β) histograms (e.g. after burn-in); direction labels stay."""
        S, R = state.replica.shape
        return dataclasses.replace(state, round_trips=torch.zeros_like(state.round_trips), n_steps=0,
                                   **dict(zip(("n_attempted", "n_accepted", "n_up", "n_labelled"), zero_counts(S, R))))

    @staticmethod
    def set_ladder(state: TemperingState, betas: Tensor | Sequence[float]) -> TemperingState:
        """Move every replica to the new β of its temperature index, and reset the statistics."""
        betas = check_ladder(betas)
        if len(betas) != state.n_replicas:
            raise KakusanError(f"the new ladder has {len(betas)} temperatures, the state {state.n_replicas}")
        chains = state.chains.with_beta(chain_betas(betas, state.replica).to(state.chains.x.device))
        return ReplicaExchange.reset_statistics(dataclasses.replace(state, chains=chains, betas=betas))

    def stats(self, state: TemperingState) -> SwapStats:
        """Swap acceptance per pair, Λ, round trips and f(β) since the last reset."""
        attempts = (state.n_attempted * state.n_systems).clamp(min=1)
        acceptance = state.n_accepted.sum(0).to(F64) / attempts
        per_system = state.n_accepted.to(F64) / state.n_attempted.clamp(min=1)
        sweeps = state.n_steps * self.sweeps
        trips = int(state.round_trips.sum())
        rate = 1e4 * trips / (sweeps * state.n_systems) if sweeps else math.nan
        up = torch.where(state.n_labelled > 0, state.n_up.to(F64) / state.n_labelled.clamp(min=1), math.nan)
        return SwapStats(state.betas.clone(), acceptance, per_system, float((1.0 - acceptance).sum()), trips, rate, up,
                         state.n_steps, sweeps)


# ---------------------------------------------------------------- driver


TEMPERING_OBSERVABLES: dict[str, Observable] = {
    "energy": lambda s: s.energy.clone(),
    "magnetization": lambda s: s.x.to(F64).mean(1),
    "x": lambda s: s.x.to(torch.int8),
    "walk": lambda s: s.slot.reshape(-1),
    "replica": lambda s: s.replica.reshape(-1).clone(),
}
"""Observables of a :class:`TemperingState` by name, each (S·R, ...): energy, magnetisation and
``x`` in temperature order (index s·R + t); ``walk``, the temperature index of each replica (index
s·R + r); ``replica``, the replica at each temperature (index s·R + t)."""


@dataclass
class TemperingTrace:
    """What :func:`run_tempering` recorded: the :class:`Trace` (observables (n_kept, S·R, ...)) and
    the :class:`SwapStats` of the recorded steps."""

    trace: Trace
    stats: SwapStats

    def __getitem__(self, name: str) -> Tensor:
        """Observable ``name`` as (n_kept, S, R, ...)."""
        v = self.trace[name]
        S, R = self.trace.state.replica.shape
        return v.reshape(v.shape[0], S, R, *v.shape[2:])

    @property
    def energy(self) -> Tensor:
        """(n_kept, S, R) energies by temperature."""
        return self["energy"]

    @property
    def state(self) -> TemperingState:
        return self.trace.state


def run_tempering(
    pt: ReplicaExchange,
    state: TemperingState,
    n_steps: int,
    *,
    burn_in: int = 0,
    thin: int = 1,
    generator: Seed = None,
    observables: Sequence[str] | Mapping[str, Observable] = ("energy", "walk"),
    progress: bool | None = None,
) -> TemperingTrace:
    """Run ``burn_in`` steps, reset the swap statistics, then ``n_steps`` recorded steps (every ``thin``-th kept).

    Each step is ``pt.sweeps`` sweeps and one swap round. ``observables`` are names from
    :data:`TEMPERING_OBSERVABLES` or a mapping name -> f(state). Returns a :class:`TemperingTrace`.
    """
    g = make_generator(generator, device=state.chains.x.device)
    if burn_in:
        state = run_chain(pt, state, 0, burn_in=burn_in, generator=g, observables={}, progress=progress).state
    state = pt.reset_statistics(state)
    if not isinstance(observables, Mapping):
        unknown = [o for o in ([observables] if isinstance(observables, str) else observables)
                   if o not in TEMPERING_OBSERVABLES]
        if unknown:
            raise KakusanError(f"unknown observable(s) {unknown}: use {sorted(TEMPERING_OBSERVABLES)}")
        observables = {o: TEMPERING_OBSERVABLES[o] for o in ([observables] if isinstance(observables, str)
                                                             else observables)}
    trace = run_chain(pt, state, n_steps, thin=thin, generator=g, observables=observables, progress=progress)
    return TemperingTrace(trace, pt.stats(trace.state))


def nonreversible_round_trip_rate(acceptance: Tensor) -> float:
    """Round trips per swap round (all replicas of one system) of even–odd swaps when energies
    decorrelate between rounds: 1 / (2 + 2 Σ_t r_t/(1 − r_t)), r_t = 1 − A_t (Syed et al. 2022, Thm. 3)."""
    r = (1.0 - torch.as_tensor(acceptance, dtype=F64)).clamp(max=1 - 1e-12)
    return float(1.0 / (2.0 + 2.0 * (r / (1.0 - r)).sum()))


__all__ = ["ReplicaExchange", "SwapInfo", "SwapStats", "TEMPERING_OBSERVABLES", "TemperingState", "TemperingTrace",
           "check_ladder", "nonreversible_round_trip_rate", "run_tempering"]

"""The sampler contract: a kernel advances a batch of chains by one sweep; one driver runs it.

A *kernel* holds the model and the update rule; a :class:`ChainState` holds the chains, batched on
axis 0, each at its own inverse temperature β; :class:`StepInfo` reports what a step did. The
driver :func:`run_chain` runs any kernel, discards burn-in, thins, and records the observables it is
asked for in a :class:`Trace` whose size is fixed before the run. Every random draw comes from one
``torch.Generator``, so the same seed gives the same trace.

The single-site kernels sample the Ising energy E(x) = −½ xᵀJx − hᵀx over x ∈ {−1,+1}^N at
q_β(x) ∝ exp(−β E(x)); :class:`SpinGraph` turns a model's couplings into neighbour lists. Block Gibbs
(:mod:`kakusan.mcmc.bipartite`) samples any bipartite model, RBMs included, at q_β(v, h) ∝ exp(−β E(v, h)).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm

from kakusan.boltzmann.ising import check_params
from kakusan.errors import KakusanError, check_positive_int
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
Beta = float | Tensor
F64 = torch.float64


# ---------------------------------------------------------------- state, info, kernel


@dataclass(frozen=True)
class ChainState:
    """A batch of chains: configurations, their energies and their inverse temperatures.

    Attributes
    ----------
    x : (n_chains, N) units in the kernel's dtype: ±1 spins for the Ising kernels; for block Gibbs
        on an RBM, both layers (v, h) side by side, 0/1, ±1 or real as the model's units are. Its memory
        layout is the kernel's business (the numba kernels keep it spin-major, i.e. ``x.T`` contiguous).
    beta : (n_chains,) float64, the inverse temperature of each chain.
    energy : (n_chains,) float64, E(x) of each chain (not multiplied by β), kept up to date by the kernel.

    Notes
    -----
    Kernels update ``x`` and ``energy`` in place and return the state to use next; call
    :meth:`clone` to keep a snapshot. Replica exchange swaps temperatures with
    ``state.with_beta(state.beta[perm])`` (O(n_chains)), or swaps configurations with
    ``state.take(perm).with_beta(state.beta)``.
    """

    x: Tensor
    beta: Tensor
    energy: Tensor

    @property
    def n_chains(self) -> int:
        return self.x.shape[0]

    @property
    def n_spins(self) -> int:
        return self.x.shape[1]

    def take(self, index: Tensor) -> ChainState:
        """Chains ``index`` (k,) with their configurations, energies and β (a copy; layout kept)."""
        index = torch.as_tensor(index, device=self.x.device)
        return ChainState(_take_rows(self.x, index), self.beta[index], self.energy[index])

    def with_beta(self, beta: Beta) -> ChainState:
        """The same configurations (shared, not copied) at inverse temperatures ``beta`` (float or (n_chains,))."""
        return dataclasses.replace(self, beta=as_beta(beta, self.n_chains, self.x.device))

    def clone(self) -> ChainState:
        """A copy that later steps will not modify."""
        return ChainState(self.x.clone(), self.beta.clone(), self.energy.clone())


class StepInfo(NamedTuple):
    """What one sweep did: ``acceptance`` (n_chains,) float64, the fraction of single-site updates
    that changed the spin (for Metropolis, the acceptance rate; for heat bath, the flip rate)."""

    acceptance: Tensor


@runtime_checkable
class Kernel(Protocol):
    """A Markov kernel that leaves q_β(x) ∝ exp(−β E(x)) invariant for each chain's β.

    ``init(x0, beta)`` wraps starting configurations (n_chains, N) and β (a float or (n_chains,))
    in a :class:`ChainState`; ``step(state, generator)`` performs one sweep (N single-site updates per
    chain, or the equivalent) and returns the new state and a :class:`StepInfo`.

    >>> import torch
    >>> from kakusan.boltzmann import instances
    >>> from kakusan.mcmc import HeatBath, random_spins, run_chain
    >>> model = instances.sherrington_kirkpatrick(12, seed=0)
    >>> kernel = HeatBath(model)
    >>> state = kernel.init(random_spins(64, 12, generator=0), beta=1.0)
    >>> state, info = kernel.step(state, torch.Generator().manual_seed(1))
    >>> info.acceptance.shape
    torch.Size([64])
    >>> trace = run_chain(kernel, state, 100, burn_in=20, generator=2)
    >>> trace["energy"].shape
    torch.Size([100, 64])
    """

    def init(self, x0: Tensor, beta: Beta = 1.0) -> ChainState: ...

    def step(self, state: ChainState, generator: torch.Generator | None = None) -> tuple[ChainState, StepInfo]: ...


def random_spins(
    n_chains: int, n_spins: int, generator: Seed = None, *, dtype: torch.dtype = F64, device: str | torch.device = "cpu"
) -> Tensor:
    """Independent uniform ±1 spins (n_chains, n_spins): a starting point at β = 0."""
    g = make_generator(generator, device=device)
    bits = torch.randint(0, 2, (n_chains, n_spins), generator=g, device=device)
    return (2 * bits - 1).to(dtype)


def as_beta(beta: Beta, n_chains: int, device: str | torch.device = "cpu") -> Tensor:
    """β as a (n_chains,) float64 tensor; a float is broadcast. Refuses non-finite or wrong-shaped β."""
    b = torch.as_tensor(beta, dtype=F64, device=device)
    if b.ndim == 0:
        b = b.expand(n_chains).clone()
    if b.shape != (n_chains,):
        raise KakusanError(f"beta must be a float or have shape ({n_chains},) (one per chain), got {tuple(b.shape)}")
    if not bool(torch.isfinite(b).all()):
        raise KakusanError("beta must be finite: use a large finite β for a near-ground-state run")
    return b


def check_spins(x0: Tensor, n_spins: int) -> Tensor:
    """x0 as a (n_chains, N) tensor of ±1 values; refuses anything else with the fix in the message
    (:func:`kakusan.data.spins.check_spins`, the one check of ±1 data)."""
    from kakusan.data.spins import check_spins as check_spin_values

    return check_spin_values(x0, n_spins, name="x0", rows="n_chains", min_rows=1,
                             fix=": use mcmc.random_spins(n_chains, n_spins)")


def _take_rows(x: Tensor, index: Tensor) -> Tensor:
    """x[index] keeping a spin-major layout (x.T contiguous) when x has one."""
    if x.T.is_contiguous() and not x.is_contiguous():
        return x.T[:, index].T
    return x[index]


# ---------------------------------------------------------------- the driver


Observable = Callable[[ChainState], Tensor]
BUILTIN_OBSERVABLES: dict[str, Observable] = {
    "energy": lambda s: s.energy.clone(),
    "magnetization": lambda s: s.x.to(F64).mean(1),
    "x": lambda s: s.x.to(torch.int8),
}
"""Observables :func:`run_chain` knows by name: energy E(x) and magnetisation (1/N) Σ_k x_k, (n_chains,)
float64 each, and the configurations ``x`` (n_chains, N) as int8."""


@dataclass
class Trace:
    """What :func:`run_chain` recorded.

    Attributes
    ----------
    observables : name -> (n_kept, n_chains, ...) tensor on the CPU, one row per kept step.
    acceptance : (n_chains,) mean :attr:`StepInfo.acceptance` over the steps after burn-in.
    state : the final :class:`ChainState`, to continue the run.
    n_steps, burn_in, thin : the run's settings; n_kept = n_steps // thin.
    """

    observables: dict[str, Tensor]
    acceptance: Tensor
    state: ChainState
    n_steps: int
    burn_in: int
    thin: int

    def __getitem__(self, name: str) -> Tensor:
        if name not in self.observables:
            raise KakusanError(f"no observable {name!r} in this trace (it has {sorted(self.observables)}): "
                               "name it in run_chain(..., observables=...)")
        return self.observables[name]

    @property
    def n_kept(self) -> int:
        return self.n_steps // self.thin


def run_chain(
    kernel: Kernel,
    state: ChainState,
    n_steps: int,
    *,
    burn_in: int = 0,
    thin: int = 1,
    generator: Seed = None,
    observables: Sequence[str] | Mapping[str, Observable] = ("energy", "magnetization"),
    max_bytes: int = 2**30,
    progress: bool | None = None,
) -> Trace:
    """Run ``burn_in`` unrecorded steps, then ``n_steps`` steps recording every ``thin``-th.

    Parameters
    ----------
    kernel, state : the kernel and its starting state (``kernel.init(x0, beta)``).
    n_steps : steps after burn-in; n_steps // thin of them are recorded.
    generator : a ``torch.Generator`` on the state's device, or a seed.
    observables : names from :data:`BUILTIN_OBSERVABLES`, or a mapping name -> f(state) returning
        (n_chains, ...) tensors.
    max_bytes : refuse to start if the recorded observables would take more memory than this.
    progress : show a progress bar (default: only on a terminal for runs of ≥ 1000 steps).

    Returns
    -------
    Trace whose observables are (n_steps // thin, n_chains, ...) tensors on the CPU.
    """
    for value, name, low in ((n_steps, "n_steps", 0), (burn_in, "burn_in", 0), (thin, "thin", 1)):
        check_positive_int(value, name, low)
    g = make_generator(generator, device=state.x.device)
    funcs = _resolve_observables(observables)
    buffers = _allocate(funcs, state, n_steps // thin, max_bytes)
    show = progress if progress is not None else (burn_in + n_steps >= 1000 and sys.stderr.isatty())
    acceptance = torch.zeros(state.n_chains, dtype=F64, device=state.x.device)
    with tqdm(total=burn_in + n_steps, unit="sweep", disable=not show, leave=False) as bar:
        for _ in range(burn_in):
            state, _ = kernel.step(state, g)
            bar.update()
        for t in range(n_steps):
            state, info = kernel.step(state, g)
            acceptance += info.acceptance
            if (t + 1) % thin == 0:
                for name, f in funcs.items():
                    buffers[name][(t + 1) // thin - 1] = f(state).detach()
            bar.update()
    return Trace(buffers, (acceptance / max(n_steps, 1)).cpu(), state, n_steps, burn_in, thin)


def _resolve_observables(observables: Sequence[str] | Mapping[str, Observable]) -> dict[str, Observable]:
    if isinstance(observables, Mapping):
        return dict(observables)
    if isinstance(observables, str):
        observables = (observables,)
    unknown = [name for name in observables if name not in BUILTIN_OBSERVABLES]
    if unknown:
        raise KakusanError(f"unknown observable(s) {unknown}: use {sorted(BUILTIN_OBSERVABLES)} "
                           "or pass a mapping name -> function(state)")
    return {name: BUILTIN_OBSERVABLES[name] for name in observables}


def _allocate(funcs: Mapping[str, Observable], state: ChainState, n_kept: int, max_bytes: int) -> dict[str, Tensor]:
    """Empty CPU buffers (n_kept, n_chains, ...) shaped like each observable of ``state``; refuses > max_bytes."""
    first = {name: f(state).detach() for name, f in funcs.items()}
    need = n_kept * sum(v.numel() * v.element_size() for v in first.values())
    if need > max_bytes:
        raise KakusanError(f"recording {sorted(funcs)} for {n_kept} steps takes {need / 2**30:.2f} GiB "
                           f"(max_bytes = {max_bytes / 2**30:.2f} GiB): raise thin, lower n_steps, "
                           "drop 'x', or raise max_bytes")
    return {name: torch.empty((n_kept, *v.shape), dtype=v.dtype) for name, v in first.items()}


# ---------------------------------------------------------------- the coupling graph


class IsingLike(Protocol):
    """A model with an Ising energy: ``couplings()`` (N, N) symmetric, zero diagonal, and fields ``h`` (N,)."""

    h: Tensor

    def couplings(self) -> Tensor: ...


@dataclass(frozen=True)
class SpinGraph:
    """The couplings of E(x) = −½ xᵀJx − hᵀx as padded neighbour lists, and J itself when dense.

    Attributes
    ----------
    h : (N,) float64 fields.
    nbr : (N, D) int64, the sites coupled to each site; D is a multiple of 4 and the padding points
        at the site itself.
    weight : (N, D) float64, J[k, nbr[k, j]], 0 on the padding.
    J : (N, N) float64 when more than 1/8 of the couplings are nonzero, else None.
    colour : (N,) int64 in {0, 1} with no coupling inside a colour (a checkerboard), or None when
        the coupling graph is not bipartite.
    """

    h: Tensor
    nbr: Tensor
    weight: Tensor
    J: Tensor | None
    colour: Tensor | None

    @classmethod
    def from_model(cls, model: IsingLike) -> SpinGraph:
        """The graph of ``model.couplings()`` and ``model.h`` (detached), on the model's device."""
        J, h = check_params(model.couplings().detach(), model.h.detach())
        return cls.from_couplings(J, h).to(model.h.device)

    @classmethod
    def from_couplings(cls, J: Tensor, h: Tensor) -> SpinGraph:
        """The graph of couplings J (N, N), symmetric with zero diagonal, and fields h (N,), on the CPU."""
        J, h = J.to("cpu", F64), h.to("cpu", F64)
        n = len(h)
        rows, cols = torch.nonzero(J, as_tuple=True)  # row-major: each row's neighbours in order
        degree = torch.bincount(rows, minlength=n)
        width = max(4, -(-int(degree.max()) // 4) * 4)
        slot = torch.arange(len(rows)) - (torch.cumsum(degree, 0) - degree)[rows]
        nbr = torch.arange(n)[:, None].repeat(1, width)  # padding points at the site itself ...
        weight = torch.zeros(n, width, dtype=F64)  # ... with weight 0
        nbr[rows, slot], weight[rows, slot] = cols, J[rows, cols]
        dense = J if len(rows) * 8 > n**2 else None
        return cls(h, nbr, weight, dense, _two_colouring(nbr.numpy(), degree.numpy()))

    @property
    def n_spins(self) -> int:
        return self.h.shape[0]

    def to(self, device: str | torch.device) -> SpinGraph:
        """The same graph on ``device``."""
        return SpinGraph(*(None if t is None else t.to(device) for t in (self.h, self.nbr, self.weight, self.J,
                                                                        self.colour)))

    def fields(self, x: Tensor, sites: Tensor | None = None) -> Tensor:
        """Local fields f = h + Jx = −∂E/∂x: (C, N) -> (C, N), or (C, len(sites)); float64."""
        x = x.to(F64)
        if sites is None:
            sites = torch.arange(self.n_spins, device=x.device)
        if self.J is not None:
            return x @ self.J[:, sites] + self.h[sites]
        return (x[:, self.nbr[sites]] * self.weight[sites]).sum(-1) + self.h[sites]

    def energy(self, x: Tensor) -> Tensor:
        """E(x) = −½ xᵀJx − hᵀx = −½ Σ_k x_k (f_k + h_k): (C, N) -> (C,) float64."""
        x = x.to(F64)
        return -0.5 * (x * (self.fields(x) + self.h)).sum(1)


def _two_colouring(nbr: np.ndarray, degree: np.ndarray) -> Tensor | None:
    """Colours 0/1 with every coupling joining two colours (breadth-first search), or None if impossible."""
    n = len(degree)
    valid = np.arange(nbr.shape[1])[None, :] < degree[:, None]
    colour = np.full(n, -1, np.int64)
    for start in range(n):
        if colour[start] >= 0:
            continue
        colour[start] = 0
        frontier = np.array([start])
        while frontier.size:
            here = colour[frontier[0]]  # a breadth-first level has one colour
            nb = nbr[frontier][valid[frontier]]
            if np.any(colour[nb] == here):
                return None
            frontier = np.unique(nb[colour[nb] < 0])
            colour[frontier] = 1 - here
    return torch.from_numpy(colour)

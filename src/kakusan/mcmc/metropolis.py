"""Single-spin-flip Metropolis, and the single-site sweep it shares with heat bath.

A single-site kernel proposes x_k → −x_k, which changes the energy by ΔE = 2 x_k f_k with the
local field f = h + Jx, and accepts with a probability a(βΔE) that satisfies detailed balance,
a(y) / a(−y) = e^{−y}. Metropolis (Metropolis et al. 1953) takes a(y) = min(1, e^{−y}); heat bath
(:class:`kakusan.mcmc.gibbs.HeatBath`) takes a(y) = 1 / (1 + e^{y}).

One :meth:`~SingleSiteKernel.step` is a sweep of N proposals per chain, in one of three orders:

* ``"sequential"``: sites 0, 1, …, N−1;
* ``"random"``: N sites drawn uniformly with replacement, independently for each chain;
* ``"checkerboard"``: all sites of one colour of a bipartite coupling graph (e.g. a periodic
  lattice of even side) at once, then the other colour; sites of one colour do not interact, so
  this is the same Markov chain as visiting them one after another.

Backends: ``"numba"`` (CPU; see :mod:`kakusan.mcmc._compiled`) and ``"torch"`` (any device,
batched tensors; the path for GPUs). ``"auto"`` picks numba on the CPU. Both are reproducible
per seed, but they use different random numbers, so their samples differ.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch

from kakusan.errors import KakusanError
from kakusan.mcmc.base import F64, Beta, ChainState, IsingLike, SpinGraph, StepInfo, as_beta, check_spins
from kakusan.runtime import make_generator

Tensor = torch.Tensor
Order = Literal["sequential", "random", "checkerboard"]
Backend = Literal["auto", "numba", "torch"]
ORDERS = ("sequential", "random", "checkerboard")


class SingleSiteKernel:
    """Sweeps of single-spin-flip proposals accepted with probability a(βΔE), ΔE = 2 x_k f_k.

    Parameters
    ----------
    model : anything with ``couplings()`` (N, N) and ``h`` (N,), e.g. an
        :class:`~kakusan.boltzmann.IsingModel`; read once, now (build a new kernel after changing it).
    order : ``"sequential"``, ``"random"`` or ``"checkerboard"`` (bipartite couplings only).
    backend : ``"auto"`` (numba on the CPU, torch elsewhere), ``"numba"`` or ``"torch"``.
    dtype : spins and couplings in float64 (default) or float32 (faster; fields carry float32
        rounding, so energies drift by ~1e-7 |ΔE| per flip; :meth:`init` on ``state.x`` resets them).

    Notes
    -----
    Subclasses set :attr:`rule` (the compiled rule) and :meth:`flip_probability`.
    """

    rule: ClassVar[int]
    name: ClassVar[str]

    def __init__(self, model: IsingLike, *, order: Order = "sequential", backend: Backend = "auto",
                 dtype: torch.dtype = F64):
        if dtype not in (torch.float32, F64):
            raise KakusanError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.graph = SpinGraph.from_model(model)
        self.order = _check_order(order, self.graph)
        self.backend = _resolve_backend(backend, self.graph.h.device)
        self.dtype = dtype
        self._w = self.graph.weight.to(dtype)
        self._J = None if self.graph.J is None else self.graph.J.to(dtype)
        self._groups = _site_groups(self.order, self.graph)
        sites = torch.cat(self._groups).cpu().numpy() if self._groups else np.arange(0)
        self._numba_args = (self.graph.nbr.cpu().numpy(), self._w.cpu().numpy(), self.graph.h.cpu().numpy(), sites)
        self._last: ChainState | None = None  # the state the last step returned: known to be prepared
        self._views: tuple | None = None  # (state, numpy views of its x.T, energy, beta) for numba
        self._seed = torch.zeros((), dtype=torch.int64)  # one 63-bit seed per numba sweep, from the generator

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_spins={self.graph.n_spins}, order={self.order!r}, backend={self.backend!r})"

    def flip_probability(self, y: Tensor) -> Tensor:
        """a(y): the probability of taking a proposed flip with y = βΔE."""
        raise NotImplementedError

    def init(self, x0: Tensor, beta: Beta = 1.0) -> ChainState:
        """A state for configurations x0 (n_chains, N) ±1 (copied) at β (a float or (n_chains,))."""
        x = check_spins(x0, self.graph.n_spins).to(self.graph.h.device, self.dtype)
        x = x.T.contiguous().T if self.backend == "numba" else x.clone(memory_format=torch.contiguous_format)
        return ChainState(x, as_beta(beta, len(x), x.device), self.graph.energy(x))

    def step(self, state: ChainState, generator: torch.Generator | None = None) -> tuple[ChainState, StepInfo]:
        """One sweep (N proposals per chain); updates ``state.x`` and ``state.energy`` in place."""
        state = state if state is self._last else self._prepare(state)
        g = make_generator(generator, device=state.x.device)
        if self.backend == "numba":
            acceptance = self._sweep_numba(state, g)
        elif self.order == "random":
            acceptance = self._sweep_random(state, g).to(F64) / self.graph.n_spins
        else:
            acceptance = self._sweep_groups(state, g).to(F64) / self.graph.n_spins
        self._last = state
        return state, StepInfo(acceptance)

    # ------------------------------------------------------------ sweeps

    def _sweep_numba(self, state: ChainState, g: torch.Generator) -> Tensor:
        from kakusan.mcmc import _compiled

        if self._views is None or self._views[0] is not state:  # numpy views share the tensors' memory
            self._views = (state, state.x.T.numpy(), state.energy.numpy(), state.beta.numpy())
        _, x, energy, beta = self._views
        seed = np.uint64(self._seed.random_(generator=g).item())
        nbr, w, h, sites = self._numba_args
        if self.order == "random":
            return torch.from_numpy(_compiled.sweep_random(x, energy, beta, nbr, w, h, seed, self.rule))
        return torch.from_numpy(_compiled.sweep_sites(x, energy, beta, nbr, w, h, sites, seed, self.rule))

    def _sweep_groups(self, state: ChainState, g: torch.Generator) -> Tensor:
        """Each group of mutually uncoupled sites at once (one site per group when sequential)."""
        x, beta = state.x, state.beta[:, None]
        u = torch.rand(state.n_chains, self.graph.n_spins, generator=g, dtype=F64, device=x.device)
        flips = torch.zeros(state.n_chains, dtype=torch.int64, device=x.device)
        start = 0
        for sites in self._groups:
            xs = x[:, sites]  # (C, G)
            de = 2.0 * xs.to(F64) * self._fields(x, sites).to(F64)
            flip = u[:, start : start + len(sites)] < self.flip_probability(beta * de)
            x[:, sites] = torch.where(flip, -xs, xs)
            state.energy.add_((de * flip).sum(1))
            flips += flip.sum(1)
            start += len(sites)
        return flips

    def _sweep_random(self, state: ChainState, g: torch.Generator) -> Tensor:
        """N updates per chain at sites drawn independently per chain."""
        x, n = state.x, self.graph.n_spins
        sites = torch.randint(0, n, (n, state.n_chains), generator=g, device=x.device)
        u = torch.rand(n, state.n_chains, generator=g, dtype=F64, device=x.device)
        rows = torch.arange(state.n_chains, device=x.device)
        flips = torch.zeros(state.n_chains, dtype=torch.int64, device=x.device)
        for t in range(n):
            k = sites[t]
            xs = x[rows, k]
            if self._J is not None:
                f = (x * self._J[k]).sum(1) + self.graph.h[k]
            else:
                f = (x.gather(1, self.graph.nbr[k]) * self._w[k]).sum(1) + self.graph.h[k]
            de = 2.0 * xs.to(F64) * f.to(F64)
            flip = u[t] < self.flip_probability(state.beta * de)
            x[rows, k] = torch.where(flip, -xs, xs)
            state.energy.add_(de * flip)
            flips += flip
        return flips

    def _fields(self, x: Tensor, sites: Tensor) -> Tensor:
        """h + Jx at ``sites``: (C, N) -> (C, len(sites)), in the kernel's dtype (h added in float64)."""
        if self._J is not None:
            return x @ self._J[:, sites] + self.graph.h[sites]
        return (x[:, self.graph.nbr[sites]] * self._w[sites]).sum(-1) + self.graph.h[sites]

    def _prepare(self, state: ChainState) -> ChainState:
        """The state with the dtype, device and memory layout this kernel works in (a copy if needed)."""
        x, device = state.x, self.graph.h.device
        ok_x = x.dtype == self.dtype and x.device == device
        ok_x = ok_x and (x.T.is_contiguous() if self.backend == "numba" else x.is_contiguous())
        ok_e = state.energy.dtype == F64 and state.energy.is_contiguous() and state.energy.device == device
        ok_b = state.beta.dtype == F64 and state.beta.is_contiguous() and state.beta.shape == (len(x),)
        if ok_x and ok_e and ok_b:
            return state
        x = x.to(device, self.dtype)
        x = x.T.contiguous().T if self.backend == "numba" else x.contiguous()
        return ChainState(x, as_beta(state.beta, len(x), device), state.energy.to(device, F64).contiguous())


class Metropolis(SingleSiteKernel):
    """Single-spin-flip Metropolis: propose x_k → −x_k, accept with probability min(1, e^{−βΔE}).

    ΔE = 2 x_k f_k with f = h + Jx. See :class:`SingleSiteKernel` for the parameters.

    >>> import torch
    >>> from kakusan.boltzmann import instances
    >>> from kakusan.mcmc import Metropolis, random_spins
    >>> kernel = Metropolis(instances.ferromagnet_2d(8), order="checkerboard")
    >>> state = kernel.init(random_spins(16, 64, generator=0))
    >>> state, info = kernel.step(state, torch.Generator().manual_seed(0))
    """

    rule = 0  # kakusan.mcmc._compiled.METROPOLIS
    name = "metropolis"

    def flip_probability(self, y: Tensor) -> Tensor:
        """min(1, e^{−y})."""
        return torch.exp(-y.clamp(min=0.0))


def _check_order(order: str, graph: SpinGraph) -> str:
    if order not in ORDERS:
        raise KakusanError(f"order must be one of {ORDERS}, got {order!r}")
    if order == "checkerboard" and graph.colour is None:
        raise KakusanError("order='checkerboard' needs couplings that form a bipartite graph (e.g. a periodic "
                           "lattice of even side); this model's do not: use order='sequential' or 'random'")
    return order


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in ("auto", "numba", "torch"):
        raise KakusanError(f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")
    if backend == "numba" and device.type != "cpu":
        raise KakusanError(f"the numba backend runs on the CPU but the model is on {device}: "
                           "use backend='torch' (or 'auto'), or move the model to the CPU")
    if backend == "auto":
        return "numba" if device.type == "cpu" else "torch"
    return backend


def _site_groups(order: str, graph: SpinGraph) -> list[Tensor]:
    """Sites in sweep order, grouped so that each group may be updated at once."""
    n, device = graph.n_spins, graph.h.device
    if order == "checkerboard":
        return [torch.nonzero(graph.colour == c).flatten().to(device) for c in (0, 1)]
    if order == "sequential":
        return list(torch.arange(n, device=device).reshape(n, 1))
    return []

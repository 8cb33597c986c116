"""Where the negative (model) samples of the free-energy contrast come from: CD-k, PCD-k, PT-PCD.

The gradient of the mean negative log-likelihood of an RBM is ⟨∂F/∂θ⟩_data − ⟨∂F/∂θ⟩_model; the
model average is estimated from "negative" visible samples. Three estimators, all running the block
Gibbs kernel :class:`~kakusan.mcmc.bipartite.BlockGibbs`:

* :class:`ContrastiveDivergence` (CD-k, Hinton 2002): k sweeps from the data batch itself. Cheap and
  low-variance, but biased: the chains never leave the data's neighbourhood.
* :class:`PersistentChains` (PCD-k, Tieleman 2008): the chains persist across parameter updates, so
  with small learning rates they track the model distribution and the bias vanishes.
* :class:`ParallelTempering` (PT-PCD, Desjardins et al. 2010): each persistent chain is a
  replica-exchange system over β_0 < … < β_{R−1} = 1 (:class:`~kakusan.mcmc.tempering.ReplicaExchange`);
  hot replicas cross between modes and swap their states down to β = 1.

Each is called as ``negatives(model, v_data, generator) -> NegativeSample``. The persistent ones are
the chain keepers of :mod:`kakusan.mcmc.persistent` (shared with Boltzmann learning's PCD and PT
estimators) started at data rows; they carry their chains in ``state_dict()`` / ``load_state_dict()``
so a resumed run continues them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import torch

from kakusan.errors import check_positive_int
from kakusan.mcmc.bipartite import BlockGibbs
from kakusan.mcmc.ladders import linear_ladder
from kakusan.mcmc.persistent import PersistentSampler, TemperedSampler
from kakusan.mcmc.tempering import ReplicaExchange, TemperingState
from kakusan.rbm.base import RBM

Tensor = torch.Tensor


class NegativeSample(NamedTuple):
    """Visible negative samples ``v`` (n_negative, n_visible), detached, and ``metrics`` (name -> float).

    ``complete``, when not None, finishes the chains' last sweep: ``complete(a, generator)`` with the
    hidden field a(v) (n_negative, n_hidden) of these samples at the current parameters, which the
    free-energy contrast computes anyway; this saves the kernel one matrix product per update. If
    nobody calls it, the negative phase computes the field itself at its next call.
    """

    v: Tensor
    metrics: dict[str, float]
    complete: Callable[[Tensor, torch.Generator], None] | None = None


class NegativePhase(Protocol):
    """``negatives(model, v_data, generator) -> NegativeSample``; ``name`` says which estimator it is."""

    name: str

    def __call__(self, model: RBM, v_data: Tensor, generator: torch.Generator) -> NegativeSample: ...


def _check_k(k: int) -> int:
    return check_positive_int(k, "k (Gibbs sweeps per update)")


def _start_rows(v_data: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """n rows of the data batch, drawn with replacement: where persistent chains start."""
    idx = torch.randint(0, len(v_data), (n,), generator=generator, device=v_data.device)
    return v_data[idx]


class ContrastiveDivergence:
    """CD-k: k block-Gibbs sweeps started at the data batch; the negatives are the final visible states.

    Parameters
    ----------
    k : sweeps per parameter update (CD-1 is the classic).
    """

    name = "cd"

    def __init__(self, k: int = 1):
        self.k = _check_k(k)

    def __repr__(self) -> str:
        return f"ContrastiveDivergence(k={self.k})"

    @torch.no_grad()
    def __call__(self, model: RBM, v_data: Tensor, generator: torch.Generator) -> NegativeSample:
        kernel = BlockGibbs(model)
        state = kernel.init(v_data, generator=generator)
        for _ in range(self.k):
            state, _ = kernel.step(state, generator)
        return NegativeSample(kernel.visible(state), {})

    def state_dict(self) -> dict[str, Tensor]:
        return {}

    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        pass


class PersistentChains(PersistentSampler):
    """PCD-k: ``n_chains`` block-Gibbs chains that persist across updates, advanced k sweeps per update.

    Parameters
    ----------
    k : sweeps per parameter update.
    n_chains : number of persistent chains; default: the size of the first batch. They start at
        data rows drawn from the first batch.

    Notes
    -----
    The hidden half of each update's last sweep, h ~ q(h | v⁻), is drawn from the hidden field a(v⁻) that
    the free-energy contrast computes anyway (:attr:`NegativeSample.complete`): the same draw at the
    same parameters, one matrix product fewer per update.
    """

    name = "pcd"

    def __init__(self, k: int = 1, n_chains: int | None = None):
        super().__init__(n_chains, _check_k(k))
        self._pending, self._kernel = False, None  # the last sweep awaits its hidden half

    @property
    def k(self) -> int:
        return self.n_sweeps

    def __repr__(self) -> str:
        return f"PersistentChains(k={self.k}, n_chains={self.n_chains})"

    @torch.no_grad()
    def __call__(self, model: RBM, v_data: Tensor, generator: torch.Generator) -> NegativeSample:
        kernel = BlockGibbs(model)
        if self.state is not None and self._pending:  # nobody completed the last sweep: draw h | v now
            kernel.hidden_step(self.state, model.hidden_field(kernel.visible(self.state)), generator, count=False)
        n = self.n_chains or len(v_data)
        self.advance(kernel, generator, lambda: kernel.init(_start_rows(v_data, n, generator), generator=generator),
                     n_sweeps=self.k - 1)
        self.state, _ = kernel.visible_step(self.state, generator, count=False)
        self._pending, self._kernel = True, kernel
        return NegativeSample(kernel.visible(self.state).clone(), {}, self._complete)

    def _complete(self, field: Tensor, generator: torch.Generator) -> None:
        """The hidden half of the last sweep, h ~ q(h | v), from the field a(v) the objective computed."""
        if self._pending:
            self._kernel.hidden_step(self.state, field, generator, count=False)
            self._pending = False

    def state_dict(self) -> dict[str, Tensor]:
        """The chains (n_chains, n_visible + n_hidden) and whether h still awaits its draw, or nothing
        before the first update."""
        out = super().state_dict()
        return {**out, "pending": torch.tensor(self._pending)} if out else out

    def load_state_dict(self, tensors: dict[str, Tensor]) -> None:
        """Restore chains saved by :meth:`state_dict` (energies are recomputed at the next sweep)."""
        super().load_state_dict(tensors)
        if "x" in tensors:
            self._pending = bool(tensors.get("pending", torch.tensor(False)))


class ParallelTempering(TemperedSampler):
    """PT-PCD: ``n_chains`` persistent replica-exchange systems whose β = 1 replicas are the negatives.

    Parameters
    ----------
    k : block-Gibbs sweeps of every replica between two swap rounds (one round per update).
    n_chains : independent PT systems (negatives per update); default: the first batch size.
    n_temperatures : replicas per system, R.
    beta_min : the hottest β_0 of the default ladder, ``linear_ladder(beta_min, 1, n_temperatures)``
        (0 is allowed for binary visible units: independent uniform units; Gaussian visible units need β > 0).
    betas : an explicit increasing ladder ending at 1 (overrides the two above).

    Notes
    -----
    Swaps use the joint energies E(v, h) that the kernel keeps, so ``metrics`` report the mean swap
    acceptance since the start (``swap_rate``) and of the worst pair (``swap_rate_min``).
    """

    name = "pt"

    def __init__(self, k: int = 1, n_chains: int | None = None, *, n_temperatures: int = 10, beta_min: float = 0.5,
                 betas: Tensor | None = None):
        ladder = linear_ladder(beta_min, 1.0, n_temperatures) if betas is None else betas
        super().__init__(ladder, n_chains, sweeps=_check_k(k))

    @property
    def k(self) -> int:
        return self.sweeps

    @property
    def n_chains(self) -> int | None:
        return self.n_systems

    def __repr__(self) -> str:
        return f"ParallelTempering(k={self.k}, n_chains={self.n_chains}, n_temperatures={self.n_replicas})"

    @torch.no_grad()
    def __call__(self, model: RBM, v_data: Tensor, generator: torch.Generator) -> NegativeSample:
        kernel = BlockGibbs(model)
        self.advance(kernel, generator, lambda pt: self._start(pt, kernel, v_data, generator),
                     n_systems=self.n_chains or len(v_data))
        stats = self.swap_stats()
        return NegativeSample(kernel.visible(self.cold()), {"swap_rate": float(stats.acceptance.mean()),
                                                            "swap_rate_min": float(stats.acceptance.min())})

    def _start(self, pt: ReplicaExchange, kernel: BlockGibbs, v_data: Tensor,
               generator: torch.Generator) -> TemperingState:
        """Every replica of system s starts at one data row, with h drawn at its own β."""
        v = _start_rows(v_data, pt.n_systems, generator).repeat_interleave(pt.n_replicas, dim=0)
        x = kernel.init(v, self.betas.repeat(pt.n_systems), generator=generator).x  # (S·R, n_visible + n_hidden)
        return pt.init(x)


NEGATIVE_PHASES = {"cd": ContrastiveDivergence, "pcd": PersistentChains, "pt": ParallelTempering}
"""The estimators by name, as the command line offers them."""


__all__ = ["NEGATIVE_PHASES", "ContrastiveDivergence", "NegativePhase", "NegativeSample", "ParallelTempering",
           "PersistentChains"]

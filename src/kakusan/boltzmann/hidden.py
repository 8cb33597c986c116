"""Boltzmann machine with hidden units: q(v) = Σ_h exp(−E(v, h)) / Z, general couplings.

The spins are x = (v, h), v ∈ {−1,+1}^{n_visible}, h ∈ {−1,+1}^{n_hidden}, with the Ising energy
E(x) = −½ xᵀJx − bᵀx over all of them (visible–visible, visible–hidden and hidden–hidden couplings).
The gradient of the mean negative log-likelihood of visible data is

    ∂(−⟨log q(v)⟩_data)/∂θ = −⟨φ⟩_clamped + ⟨φ⟩_free,

where the clamped average fixes v to the data and averages h over q(h | v) (the E-step) and the free
average is over q(v, h). Both are exact here by enumeration: the hidden states for the clamped part
(n_hidden ≤ 20), all 2^(n_visible + n_hidden) states for the free part.
"""

from __future__ import annotations

import torch
from torch import nn

from kakusan.boltzmann import exact
from kakusan.boltzmann.ising import IsingModel
from kakusan.data.spins import check_spins
from kakusan.errors import KakusanError
from kakusan.learn.base import Stats
from kakusan.registry import register_model
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
_CHUNK = 1 << 22  # elements of one (data rows, hidden states) table


@register_model
class HiddenBoltzmannMachine(nn.Module):
    """Boltzmann machine over (v, h) with general symmetric couplings; visible marginal exact by enumeration.

    Parameters
    ----------
    n_visible, n_hidden : numbers of visible and hidden ±1 units (n_hidden ≤ 20).

    Notes
    -----
    The joint model is an :class:`IsingModel` (``self.joint``) over the first ``n_visible`` spins
    (visible) and the last ``n_hidden`` (hidden); ``couplings()`` and ``h`` are its parameters.
    """

    def __init__(self, n_visible: int, n_hidden: int):
        super().__init__()
        if not (isinstance(n_hidden, int) and 0 <= n_hidden <= 20):
            raise KakusanError(f"n_hidden must be an integer in 0..20 for exact hidden sums, got {n_hidden!r}")
        self.joint = IsingModel(n_visible + n_hidden)
        self.config = {"n_visible": n_visible, "n_hidden": n_hidden}
        self.register_buffer("hidden_states", exact.all_states(n_hidden) if n_hidden else torch.zeros(1, 0,
                                                                                                    dtype=torch.float64))

    @torch.no_grad()
    def init_random(self, std: float = 0.1, generator: Seed = None) -> "HiddenBoltzmannMachine":
        """Set couplings J_kl ~ N(0, std²) (fields 0) and return self: J = 0 is a saddle point, where
        every hidden unit is independent of the visibles and learning cannot separate them."""
        g = make_generator(generator)
        n = self.h.numel()
        J = std * torch.randn(n, n, generator=g, dtype=torch.float64)
        self.joint.set_params(torch.triu(J, 1) + torch.triu(J, 1).T, torch.zeros(n, dtype=torch.float64))
        return self

    @property
    def n_visible(self) -> int:
        return self.config["n_visible"]

    @property
    def h(self) -> Tensor:
        """Fields of all units (n_visible + n_hidden,)."""
        return self.joint.h

    def couplings(self) -> Tensor:
        """Symmetric zero-diagonal couplings of all units (N, N), N = n_visible + n_hidden."""
        return self.joint.couplings()

    def as_ising(self) -> IsingModel:
        return self.joint

    def _check(self, v: Tensor) -> Tensor:
        return check_spins(v, self.n_visible).to(torch.float64)

    def _joint_logits(self, v: Tensor) -> Tensor:
        """−E(v, h) for every hidden state h: (M, n_v) -> (M, 2^n_hidden)."""
        S, b, nv = self.couplings(), self.h, self.n_visible
        H = self.hidden_states
        visible = 0.5 * ((v @ S[:nv, :nv]) * v).sum(1) + v @ b[:nv]  # (M,)
        hidden = 0.5 * ((H @ S[nv:, nv:]) * H).sum(1) + H @ b[nv:]  # (2^nh,)
        return visible[:, None] + (v @ S[:nv, nv:]) @ H.T + hidden[None, :]

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) = −log Σ_h exp(−E(v, h)): (M, n_visible) -> (M,)."""
        v = self._check(v)
        rows = max(1, _CHUNK // len(self.hidden_states))
        return torch.cat([-torch.logsumexp(self._joint_logits(v[i:i + rows]), 1) for i in range(0, len(v), rows)])

    def log_prob(self, v: Tensor) -> Tensor:
        """log q(v) = −F(v) − log Z, exact: (M, n_visible) -> (M,); differentiable."""
        return -self.free_energy(v) - self.joint.log_z()

    @torch.no_grad()
    def clamped_stats(self, v: Tensor) -> Stats:
        """⟨x⟩ and ⟨x xᵀ⟩ with v fixed to the data and h ~ q(h | v), averaged over the rows of v (the E-step)."""
        v = self._check(v)
        H, nv = self.hidden_states, self.n_visible
        N = nv + H.shape[1]
        mean, corr = torch.zeros(N, dtype=torch.float64), torch.zeros(N, N, dtype=torch.float64)
        rows = max(1, _CHUNK // len(H))
        for i in range(0, len(v), rows):
            vi = v[i:i + rows]
            post = torch.softmax(self._joint_logits(vi), 1)  # q(h | v), (m, 2^nh)
            hm = post @ H  # E[h | v], (m, nh)
            mean[:nv] += vi.sum(0)
            mean[nv:] += hm.sum(0)
            corr[:nv, :nv] += vi.T @ vi
            corr[:nv, nv:] += vi.T @ hm
            corr[nv:, nv:] += H.T @ (post.sum(0)[:, None] * H)
        corr[nv:, :nv] = corr[:nv, nv:].T
        return Stats(mean / len(v), corr / len(v))

    @torch.no_grad()
    def sample(self, n: int, generator: Seed = None) -> Tensor:
        """n exact draws of the visible units: (n, n_visible) ±1."""
        return self.joint.sample(n, make_generator(generator))[:, : self.n_visible]

"""Gibbs sampling of Ising models, one site at a time: heat bath.

Heat bath draws one spin from its conditional given all the others,

    q(x_k = +1 | x_rest) = σ(2β f_k),      f = h + Jx,

which is the same as proposing x_k → −x_k and flipping with probability 1 / (1 + e^{βΔE}),
ΔE = 2 x_k f_k (Glauber dynamics); :class:`HeatBath` shares its sweeps with
:class:`~kakusan.mcmc.metropolis.Metropolis`.

When the couplings are bipartite — two groups A and B with no coupling inside a group, as in a
restricted Boltzmann machine — the spins of A are conditionally independent given B, and
:class:`kakusan.mcmc.bipartite.BlockGibbs` draws all of A at once (one GEMM), then all of B.
"""

from __future__ import annotations

import torch

from kakusan.mcmc.metropolis import SingleSiteKernel

Tensor = torch.Tensor


class HeatBath(SingleSiteKernel):
    """Single-site heat bath (Gibbs): x_k ~ q(x_k | x_rest), q(x_k = +1 | x_rest) = σ(2β f_k).

    Implemented as the flip x_k → −x_k taken with probability 1 / (1 + e^{βΔE}), ΔE = 2 x_k f_k.
    Parameters as in :class:`~kakusan.mcmc.metropolis.SingleSiteKernel` (order, backend, dtype).

    >>> import torch
    >>> from kakusan.boltzmann import instances
    >>> from kakusan.mcmc import HeatBath, random_spins
    >>> kernel = HeatBath(instances.sherrington_kirkpatrick(64, seed=0))
    >>> state = kernel.init(random_spins(256, 64, generator=0), beta=torch.linspace(0.2, 1.0, 256))
    >>> state, info = kernel.step(state, torch.Generator().manual_seed(0))
    """

    rule = 1  # kakusan.mcmc._compiled.GLAUBER
    name = "heat_bath"

    def flip_probability(self, y: Tensor) -> Tensor:
        """1 / (1 + e^{y}) = σ(−y)."""
        return torch.sigmoid(-y)

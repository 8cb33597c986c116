"""The RBM with ±1 spin units: a bipartite Ising model.

    E(v, h) = −vᵀWh − bᵀv − cᵀh,      v ∈ {−1,+1}^{n_visible}, h ∈ {−1,+1}^{n_hidden}

Conditionals p(h_j = +1 | v) = σ(2 a_j), a = c + Wᵀv, and p(v_i = +1 | h) = σ(2 g_i), g = b + Wh;
the free energy is F(v) = −bᵀv − Σ_j log(2 cosh a_j). It is the Ising energy −½ xᵀJx − h_xᵀx of
x = (v, h) with J = [[0, W], [Wᵀ, 0]] and fields (b, c), the form :class:`kakusan.mcmc.BipartiteIsing`
presents; a 0/1 RBM maps to it by v = (s + 1)/2 (see :func:`kakusan.data.to_spins`).
"""

from __future__ import annotations

from kakusan.rbm.base import RBM
from kakusan.rbm.units import SPIN
from kakusan.registry import register_model


@register_model
class SpinRBM(RBM):
    """RBM with ±1 visible and hidden units; parameters as :class:`~kakusan.rbm.base.RBM`.

    Feed it ±1 data (``kakusan.data.to_spins(binarise(x))``).

    >>> import torch
    >>> rbm = SpinRBM(5, 3, seed=1)
    >>> rbm.sample(4, generator=0, n_steps=10).abs().eq(1).all().item()
    True
    """

    visible_units = SPIN
    hidden_units = SPIN

"""The Bernoulli–Bernoulli RBM (0/1 units), optionally centered (Melchior et al., JMLR 17(99), 2016).

    E(v, h) = −(v − μ)ᵀ W (h − λ) − bᵀv − cᵀh,      v ∈ {0,1}^{n_visible}, h ∈ {0,1}^{n_hidden}

with offsets μ, λ (both 0 for the plain RBM). The offsets change the parametrisation, not the family:
the model equals a plain RBM with biases b − Wλ and c − Wᵀμ. What they change is the gradient: the
free-energy contrast's gradient becomes ⟨(v − μ)(ĥ − λ)ᵀ⟩_data − ⟨(v − μ)(ĥ − λ)ᵀ⟩_model, which is
better conditioned when μ, λ are the mean activities (Melchior et al., Alg. 1). :meth:`update_offsets`
moves them towards new means and shifts b and c so the distribution is unchanged.

Conditionals: p(h_j = 1 | v) = σ(c_j + ((v − μ)ᵀW)_j), p(v_i = 1 | h) = σ(b_i + (W(h − λ))_i).
"""

from __future__ import annotations

import torch

from kakusan.rbm.base import RBM
from kakusan.rbm.sparse import affine
from kakusan.rbm.units import BERNOULLI
from kakusan.registry import register_model

Tensor = torch.Tensor


@register_model
class BernoulliRBM(RBM):
    """RBM with 0/1 visible and hidden units; ``centered=True`` adds the offsets μ (visible), λ (hidden).

    Parameters
    ----------
    n_visible, n_hidden, dtype, weight_std, seed : as :class:`~kakusan.rbm.base.RBM`.
    centered : use offsets μ, λ (buffers ``visible_offset``, ``hidden_offset``; start at 0.5 and are
        set from data by :meth:`init_from_data` and :meth:`update_offsets`).

    >>> import torch
    >>> rbm = BernoulliRBM(6, 3, seed=0)
    >>> v = torch.bernoulli(torch.full((4, 6), 0.5), generator=torch.Generator().manual_seed(0))
    >>> rbm.free_energy(v).shape, rbm.hidden_prob(v).shape
    (torch.Size([4]), torch.Size([4, 3]))
    """

    visible_units = BERNOULLI
    hidden_units = BERNOULLI

    def __init__(self, n_visible: int, n_hidden: int, *, centered: bool = False, dtype: str = "float32",
                 weight_std: float = 0.01, seed: int = 0):
        super().__init__(n_visible, n_hidden, dtype=dtype, weight_std=weight_std, seed=seed)
        self.centered = bool(centered)
        self._hyper["centered"] = self.centered
        offset = 0.5 if centered else 0.0
        self.register_buffer("visible_offset", torch.full((n_visible,), offset, dtype=self.dtype))
        self.register_buffer("hidden_offset", torch.full((n_hidden,), offset, dtype=self.dtype))

    # E(v, h) = E_v(v) − hᵀa(v) with a = c + Wᵀ(v − μ), E_v = −bᵀv + (v − μ)ᵀWλ
    def hidden_field(self, v: Tensor) -> Tensor:
        """a(v) = c + Wᵀ(v − μ): (B, n_visible) -> (B, n_hidden)."""
        v = self._as(v)
        if self.centered:  # c + Wᵀ(v − μ) = (c − Wᵀμ) + Wᵀv keeps v sparse
            return affine(self.c - self.visible_offset @ self.W, v, self.W, sparse=True)
        return affine(self.c, v, self.W, sparse=True)

    def visible_energy(self, v: Tensor) -> Tensor:
        """E_v(v) = −bᵀv + (v − μ)ᵀWλ: (B, n_visible) -> (B,)."""
        v = self._as(v)
        e = -(v @ self.b)
        if self.centered:
            e = e + (v - self.visible_offset) @ (self.W @ self.hidden_offset)
        return e

    # E(v, h) = E_h(h) − vᵀg(h) with g = b + W(h − λ), E_h = −cᵀh + μᵀW(h − λ)
    def visible_field(self, h: Tensor) -> Tensor:
        """g(h) = b + W(h − λ): (B, n_hidden) -> (B, n_visible)."""
        h = self._as(h)
        if self.centered:
            h = h - self.hidden_offset
        return torch.addmm(self.b, h, self.W.T)

    def hidden_energy(self, h: Tensor) -> Tensor:
        """E_h(h) = −cᵀh + μᵀW(h − λ): (B, n_hidden) -> (B,)."""
        h = self._as(h)
        e = -(h @ self.c)
        if self.centered:
            e = e + (h - self.hidden_offset) @ (self.visible_offset @ self.W)
        return e

    @torch.no_grad()
    def init_from_data(self, data: Tensor) -> BernoulliRBM:
        """b_i = logit of the data marginal; with centering also μ = data mean (λ stays 0.5). Returns self."""
        super().init_from_data(data)
        if self.centered:
            self.update_offsets(self.check_visible(data).mean(0), self.hidden_offset, rate=1.0)
        return self

    @torch.no_grad()
    def update_offsets(self, visible_mean: Tensor, hidden_mean: Tensor, rate: float = 0.01) -> None:
        """μ ← (1−ν)μ + ν·visible_mean, λ ← (1−ν)λ + ν·hidden_mean (ν = ``rate``), keeping q(v, h) unchanged.

        The reparametrisation b ← b + W(λ' − λ), c ← c + Wᵀ(μ' − μ) keeps the effective biases
        b − Wλ and c − Wᵀμ, so only the constant μᵀWλ (absorbed in Z) changes (Melchior et al., Alg. 1).
        """
        if not self.centered:
            return
        mu = (1.0 - rate) * self.visible_offset + rate * visible_mean.to(self.dtype)
        lam = (1.0 - rate) * self.hidden_offset + rate * hidden_mean.to(self.dtype)
        self.b.add_(self.W @ (lam - self.hidden_offset))
        self.c.add_((mu - self.visible_offset) @ self.W)
        self.visible_offset.copy_(mu)
        self.hidden_offset.copy_(lam)

    @torch.no_grad()
    def uncentered(self) -> BernoulliRBM:
        """The plain RBM (W, b − Wλ, c − Wᵀμ) with the same distribution q(v, h), as a new model.

        The centered energy carries the constant −μᵀWλ, so log Z(self) = log Z(plain) + μᵀWλ while
        log q(v) is the same. Use it to hand the weights to code that knows only E = −vᵀWh − bᵀv − cᵀh.
        """
        plain = BernoulliRBM(self.n_visible, self.n_hidden, dtype=str(self.dtype).removeprefix("torch."))
        plain.to(self.device)
        plain.W.copy_(self.W)
        if self.centered:
            plain.b.copy_(self.b - self.W @ self.hidden_offset)
            plain.c.copy_(self.c - self.visible_offset @ self.W)
        else:
            plain.b.copy_(self.b)
            plain.c.copy_(self.c)
        return plain

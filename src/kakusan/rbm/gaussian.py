"""The Gaussian–Bernoulli RBM: real visible units, 0/1 hidden units (Cho, Ilin & Raiko, ICANN 2011, eq. 1).

    E(v, h) = Σ_i (v_i − b_i)² / (2σ_i²) − Σ_ij (v_i/σ_i²) W_ij h_j − cᵀh,   v ∈ ℝ^{n_visible}, h ∈ {0,1}^{n_hidden}

Conditionals: p(v_i | h) = N(b_i + (Wh)_i, σ_i²) and p(h_j = 1 | v) = σ(c_j + (Wᵀ(v/σ²))_j); the
free energy is F(v) = Σ_i (v_i − b_i)²/(2σ_i²) − Σ_j softplus(a_j(v)). The per-unit variance σ_i² is
stored as ``log_var`` = log σ_i², a parameter when ``learn_variance`` (Cho et al.'s parametrisation,
which keeps σ² > 0) and a buffer otherwise. Tempering at β scales the whole energy, so
q_β(v | h) = N(b + Wh, σ²/β): β must be positive (there is no β = 0 distribution on ℝⁿ).

Summing the visible units out leaves a quadratic in h,

    −F(h) = cᵀh + Σ_i [((b + Wh)_i² − b_i²) / (2σ_i²) + ½ log(2πσ_i²)],

so log Z is exact by enumerating the hidden layer (:mod:`kakusan.rbm.exact`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from kakusan.rbm.base import RBM, Beta, row_scale, scale
from kakusan.rbm.base_rate import GaussianBase, VisibleBase
from kakusan.rbm.units import BERNOULLI
from kakusan.registry import register_model

Tensor = torch.Tensor


@register_model
class GaussianRBM(RBM):
    """RBM with Gaussian visible units of variance σ_i² and 0/1 hidden units.

    Parameters
    ----------
    n_visible, n_hidden, dtype, weight_std, seed : as :class:`~kakusan.rbm.base.RBM`.
    learn_variance : learn log σ² (a parameter) or keep it fixed (a buffer; default σ = 1, so
        standardise the data, or set ``log_var`` from it with :meth:`init_from_data`).

    >>> import torch
    >>> rbm = GaussianRBM(4, 3, learn_variance=True)
    >>> v = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    >>> rbm.free_energy(v).shape, rbm.visible_mean(rbm.sample_hidden(v, generator=None)).shape
    (torch.Size([5]), torch.Size([5, 4]))
    """

    visible_units = None
    hidden_units = BERNOULLI

    def __init__(self, n_visible: int, n_hidden: int, *, learn_variance: bool = False, dtype: str = "float32",
                 weight_std: float = 0.01, seed: int = 0):
        super().__init__(n_visible, n_hidden, dtype=dtype, weight_std=weight_std, seed=seed)
        self.learn_variance = bool(learn_variance)
        self._hyper["learn_variance"] = self.learn_variance
        log_var = torch.zeros(n_visible, dtype=self.dtype)
        if self.learn_variance:
            self.log_var = nn.Parameter(log_var)
        else:
            self.register_buffer("log_var", log_var)

    @property
    def var(self) -> Tensor:
        """σ² (n_visible,)."""
        return torch.exp(self.log_var)

    # E(v, h) = E_v(v) − hᵀa(v), E_v = Σ (v − b)²/(2σ²), a = c + Wᵀ(v/σ²)
    def hidden_field(self, v: Tensor) -> Tensor:
        """a(v) = c + Wᵀ(v/σ²): (B, n_visible) -> (B, n_hidden)."""
        return torch.addmm(self.c, self._as(v) * torch.exp(-self.log_var), self.W)

    def visible_energy(self, v: Tensor) -> Tensor:
        """E_v(v) = Σ_i (v_i − b_i)²/(2σ_i²): (B, n_visible) -> (B,)."""
        return ((self._as(v) - self.b) ** 2 * (0.5 * torch.exp(-self.log_var))).sum(-1)

    def visible_field(self, h: Tensor) -> Tensor:
        """The conditional mean b + Wh of v given h: (B, n_hidden) -> (B, n_visible)."""
        return torch.addmm(self.b, self._as(h), self.W.T)

    def hidden_energy(self, h: Tensor) -> Tensor:
        """−cᵀh, the part of E(v, h) with neither v nor (v·h): (B, n_hidden) -> (B,)."""
        return -(self._as(h) @ self.c)

    def hidden_free_energy(self, h: Tensor, beta: Beta = 1.0) -> Tensor:
        """F_β(h) = −log ∫ exp(−βE(v, h)) dv = −βcᵀh − Σ_i [β((b+Wh)_i² − b_i²)/(2σ_i²) + ½ log(2πσ_i²/β)]."""
        m = self.visible_field(h)
        quad = ((m**2 - self.b**2) * (0.5 * torch.exp(-self.log_var))).sum(-1)
        b = torch.as_tensor(beta, dtype=self.dtype, device=self.device)
        log_norm = 0.5 * (torch.log(2.0 * math.pi * self.var) - torch.log(b)[..., None]).sum(-1)
        return -row_scale(beta, quad - self.hidden_energy(h)) - log_norm

    # ---------------------------------------------------------------- the visible conditional

    def _visible_moments(self, h: Tensor, beta: Beta, base: VisibleBase | None) -> tuple[Tensor, Tensor]:
        """Mean and variance of v given h on the path q_A^{1−β} q^β (or q^β without a base)."""
        m = self.visible_field(h)
        precision = scale(beta, torch.exp(-self.log_var).expand_as(m))
        weighted = precision * m
        if base is not None:
            one_minus = 1.0 - (beta.to(m.dtype)[:, None] if isinstance(beta, Tensor) and beta.ndim > 0 else beta)
            base_precision = one_minus / base.var.to(m.dtype)
            precision = precision + base_precision
            weighted = weighted + base_precision * base.mean.to(m.dtype)
        return weighted / precision, 1.0 / precision

    def visible_mean(self, h: Tensor, beta: Beta = 1.0, base: VisibleBase | None = None) -> Tensor:
        """E[v | h] = b + Wh (at any β; with ``base``, the precision-weighted mean of the path)."""
        return self._visible_moments(h, beta, base)[0]

    def visible_prob(self, h: Tensor, beta: Beta = 1.0, base: VisibleBase | None = None) -> Tensor:
        raise TypeError("Gaussian visible units have densities, not probabilities: use visible_mean")

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None, beta: Beta = 1.0,
                       base: VisibleBase | None = None) -> Tensor:
        """v ~ N(b + Wh, σ²/β), or on the AIS path ∝ q_A(v)^{1−β} exp(−βE(v, h)) when ``base`` is given."""
        mean, var = self._visible_moments(h, beta, base)
        return mean + var.sqrt() * torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)

    # ---------------------------------------------------------------- data-dependent set-up

    def base_rate(self, data: Tensor, smoothing: float = 1.0) -> GaussianBase:
        """N(data mean, σ²) per unit, with the model's own variance σ² (``smoothing`` is unused)."""
        x = self.check_visible(data).to(torch.float64)
        return GaussianBase(x.mean(0), self.var.detach().to(torch.float64))

    def random_visible(self, n: int, generator=None) -> Tensor:
        """n draws of N(b, σ²) (n, n_visible), the visible distribution with W = 0."""
        from kakusan.runtime import make_generator

        g = make_generator(generator, self.device)
        z = torch.randn((n, self.n_visible), generator=g, dtype=self.dtype, device=self.device)
        return (self.b + self.var.sqrt() * z).detach()

    @torch.no_grad()
    def init_from_data(self, data: Tensor) -> GaussianRBM:
        """b = data mean and, when the variance is learned, σ² = data variance per unit (at least 0.01). Returns self.

        A unit whose data are (nearly) constant makes the likelihood unbounded as σ² → 0: drop such
        units or keep the variance fixed.
        """
        x = self.check_visible(data)
        self.b.copy_(x.mean(0))
        if self.learn_variance:
            self.log_var.copy_(torch.log(x.var(0).clamp_min(1e-2)))
        return self

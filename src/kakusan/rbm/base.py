"""The restricted Boltzmann machine: what every variant shares.

An RBM couples a visible layer v (n_visible units) and a hidden layer h (n_hidden units) with no
connection inside a layer, so the energy splits two ways,

    E(v, h) = E_v(v) − hᵀ a(v) = E_h(h) − vᵀ g(h),

with the hidden field a(v) = c + Wᵀv and the visible field g(h) = b + Wh for the plain binary RBM.
Each conditional is therefore a product over units, p(h | v) = Π_j p(h_j | a_j(v)), and summing the
hidden units out gives the free energy in closed form, F(v) = E_v(v) − Σ_j φ(a_j(v)) with
φ(x) = log Σ_{h_j} e^{h_j x} (softplus for 0/1 units). Subclasses fix the unit types and fields:
:class:`~kakusan.rbm.BernoulliRBM` (0/1, optional centering), :class:`~kakusan.rbm.SpinRBM` (±1) and
:class:`~kakusan.rbm.GaussianRBM` (real visible units).

Every function takes an inverse temperature ``beta`` (a float, or one per row (B,)) and works with the
tempered model q_β(v, h) ∝ exp(−β E(v, h)); β = 1 is the model.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

from kakusan.errors import KakusanError, check_positive_int
from kakusan.rbm.base_rate import VisibleBase, binary_base_rate
from kakusan.rbm.sparse import affine
from kakusan.rbm.units import BERNOULLI, Units
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor
Beta = float | Tensor
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def scale(beta: Beta, x: Tensor) -> Tensor:
    """β·x for a float β or a per-row β (B,) applied to x (B, n)."""
    if isinstance(beta, Tensor) and beta.ndim > 0:
        return beta.to(x.dtype)[:, None] * x
    return x if float(beta) == 1.0 else float(beta) * x


def row_scale(beta: Beta, x: Tensor) -> Tensor:
    """β·x for a float or per-row β and x (B,)."""
    if isinstance(beta, Tensor) and beta.ndim > 0:
        return beta.to(x.dtype) * x
    return x if float(beta) == 1.0 else float(beta) * x


class RBM(nn.Module):
    """An RBM with weights W (n_visible, n_hidden), visible biases b (n_visible,), hidden biases c (n_hidden,).

    Parameters
    ----------
    n_visible, n_hidden : layer sizes.
    dtype : ``"float32"`` (training default) or ``"float64"``; exact computations always use float64.
    weight_std : W_ij ~ N(0, weight_std²) at construction (W = 0 is a saddle point).
    seed : seed of that draw (the library never touches torch's global generator).

    Notes
    -----
    Subclasses set ``visible_units`` (None for real-valued units) and ``hidden_units``, and may
    override the four layer functions :meth:`hidden_field`, :meth:`visible_energy`,
    :meth:`visible_field` and :meth:`hidden_energy`; everything else follows from them.
    """

    visible_units: ClassVar[Units | None] = BERNOULLI
    hidden_units: ClassVar[Units] = BERNOULLI

    def __init__(self, n_visible: int, n_hidden: int, *, dtype: str = "float32", weight_std: float = 0.01,
                 seed: int = 0):
        super().__init__()
        check_positive_int(n_visible, "n_visible"), check_positive_int(n_hidden, "n_hidden")
        if dtype not in DTYPES:
            raise KakusanError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        dt = DTYPES[dtype]
        g = make_generator(seed)
        self.W = nn.Parameter(weight_std * torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64).to(dt))
        self.b = nn.Parameter(torch.zeros(n_visible, dtype=dt))
        self.c = nn.Parameter(torch.zeros(n_hidden, dtype=dt))
        self._hyper = {"weight_std": weight_std, "seed": seed}

    # ---------------------------------------------------------------- bookkeeping

    @property
    def config(self) -> dict:
        """Constructor arguments that rebuild this model (``cls(**config)``), used by checkpoints."""
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden, "dtype": str(self.dtype).removeprefix("torch."),
                **self._hyper}

    @property
    def n_visible(self) -> int:
        return self.W.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.W.dtype

    @property
    def device(self) -> torch.device:
        return self.W.device

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, dtype={self.dtype}"

    def _as(self, x: Tensor) -> Tensor:
        return torch.as_tensor(x, device=self.device).to(self.dtype)

    def check_visible(self, v: Tensor) -> Tensor:
        """v as a (B, n_visible) tensor of the model's dtype; refuses other shapes with the fix."""
        v = torch.as_tensor(v)
        if v.ndim != 2 or v.shape[1] != self.n_visible:
            raise KakusanError(f"visible units must have shape (batch, {self.n_visible}), got {tuple(v.shape)}: "
                               "flatten images with kakusan.data.flatten")
        return self._as(v)

    # ---------------------------------------------------------------- the two ways the energy splits

    def hidden_field(self, v: Tensor) -> Tensor:
        """a(v) with E(v, h) = E_v(v) − hᵀa(v); here a = c + Wᵀv: (B, n_visible) -> (B, n_hidden)."""
        return affine(self.c, self._as(v), self.W, sparse=self.visible_units is not None and self.visible_units.lo == 0)

    def visible_energy(self, v: Tensor) -> Tensor:
        """E_v(v), the part of E(v, h) without h; here −bᵀv: (B, n_visible) -> (B,)."""
        return -(self._as(v) @ self.b)

    def visible_field(self, h: Tensor) -> Tensor:
        """g(h) with E(v, h) = E_h(h) − vᵀg(h); here g = b + Wh: (B, n_hidden) -> (B, n_visible)."""
        return torch.addmm(self.b, self._as(h), self.W.T)

    def hidden_energy(self, h: Tensor) -> Tensor:
        """E_h(h), the part of E(v, h) without v; here −cᵀh: (B, n_hidden) -> (B,)."""
        return -(self._as(h) @ self.c)

    # ---------------------------------------------------------------- energies

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        """E(v, h) = E_v(v) − hᵀa(v): (B, n_visible), (B, n_hidden) -> (B,)."""
        return self.visible_energy(v) - (self._as(h) * self.hidden_field(v)).sum(-1)

    def free_energy(self, v: Tensor, beta: Beta = 1.0) -> Tensor:
        """F_β(v) = −log Σ_h exp(−βE(v, h)) = β E_v(v) − Σ_j φ(β a_j(v)): (B, n_visible) -> (B,).

        At β = 1 this is the free energy F(v), so q(v) = exp(−F(v)) / Z.
        """
        v = self.check_visible(v)
        return row_scale(beta, self.visible_energy(v)) - self.hidden_units.log_partition(
            scale(beta, self.hidden_field(v))).sum(-1)

    def hidden_free_energy(self, h: Tensor, beta: Beta = 1.0) -> Tensor:
        """F_β(h) = −log Σ_v exp(−βE(v, h)) = β E_h(h) − Σ_i φ(β g_i(h)): (B, n_hidden) -> (B,)."""
        return row_scale(beta, self.hidden_energy(h)) - self.visible_units.log_partition(
            scale(beta, self.visible_field(h))).sum(-1)

    # ---------------------------------------------------------------- conditionals

    def hidden_prob(self, v: Tensor, beta: Beta = 1.0) -> Tensor:
        """P(h_j = on | v) at β (on = 1, or +1 for spins): (B, n_visible) -> (B, n_hidden)."""
        return self.hidden_units.prob(scale(beta, self.hidden_field(v)))

    def hidden_mean(self, v: Tensor, beta: Beta = 1.0) -> Tensor:
        """E[h | v] at β: (B, n_visible) -> (B, n_hidden)."""
        return self.hidden_units.mean(scale(beta, self.hidden_field(v)))

    def sample_hidden(self, v: Tensor, generator: torch.Generator | None = None, beta: Beta = 1.0) -> Tensor:
        """h ~ q_β(h | v), all units at once: (B, n_visible) -> (B, n_hidden)."""
        return self.hidden_units.sample(scale(beta, self.hidden_field(v)), generator)

    def visible_logit(self, h: Tensor, beta: Beta = 1.0, base: VisibleBase | None = None) -> Tensor:
        """The field β g(h) + (1 − β) b_A of each visible unit on the path q_A^{1−β} q^β (q^β without a base)."""
        x = scale(beta, self.visible_field(h))
        if base is None:
            return x
        if isinstance(beta, Tensor) and beta.ndim > 0:
            return x + (1.0 - beta.to(x.dtype))[:, None] * base.bias.to(x.dtype)
        return x + (1.0 - float(beta)) * base.bias.to(x.dtype)

    def visible_prob(self, h: Tensor, beta: Beta = 1.0, base: VisibleBase | None = None) -> Tensor:
        """P(v_i = on | h) at β (with ``base``: on the AIS path): (B, n_hidden) -> (B, n_visible)."""
        return self.visible_units.prob(self.visible_logit(h, beta, base))

    def visible_mean(self, h: Tensor, beta: Beta = 1.0, base: VisibleBase | None = None) -> Tensor:
        """E[v | h] at β: (B, n_hidden) -> (B, n_visible)."""
        return self.visible_units.mean(self.visible_logit(h, beta, base))

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None, beta: Beta = 1.0,
                       base: VisibleBase | None = None) -> Tensor:
        """v ~ q_β(v | h), or on the AIS path ∝ q_A(v)^{1−β} exp(−βE(v, h)) when ``base`` is given."""
        return self.visible_units.sample(self.visible_logit(h, beta, base), generator)

    # ---------------------------------------------------------------- data-dependent set-up

    def base_rate(self, data: Tensor, smoothing: float = 1.0) -> VisibleBase:
        """The base-rate model (W = 0, visible marginals of ``data`` (M, n_visible)) that AIS starts from."""
        return binary_base_rate(self.check_visible(data), self.visible_units, smoothing)

    @torch.no_grad()
    def init_from_data(self, data: Tensor) -> RBM:
        """Visible biases from the data marginals (Hinton 2010, §8): b_i = logit P(v_i = on). Returns self."""
        base = self.base_rate(data)
        self.b.copy_(base.bias.to(self.dtype))
        return self

    # ---------------------------------------------------------------- sampling and likelihood

    def random_visible(self, n: int, generator: Seed = None) -> Tensor:
        """n uniformly random visible configurations (n, n_visible)."""
        return self.visible_units.random((n, self.n_visible), make_generator(generator, self.device), self.dtype,
                                         self.device)

    @torch.no_grad()
    def sample(self, n: int, generator: Seed = None, *, n_steps: int = 1000, beta: Beta = 1.0,
               v0: Tensor | None = None, mean: bool = False) -> Tensor:
        """n samples (n, n_visible) from n block-Gibbs chains run for ``n_steps`` sweeps.

        Parameters
        ----------
        n : number of chains (one sample each).
        generator : torch.Generator or seed.
        n_steps : Gibbs sweeps (h ~ q(h|v), v ~ q(v|h)); the samples are approximate, exact only as
            n_steps → ∞ (check mixing with several seeds or with exact enumeration on small models).
        beta : inverse temperature of the chains.
        v0 : (n, n_visible) starting points; default: uniformly random units.
        mean : return E[v | h] of the last sweep (smoother images) instead of the sampled v.
        """
        from kakusan.mcmc.base import run_chain
        from kakusan.mcmc.bipartite import BlockGibbs

        g = make_generator(generator, self.device)
        v0 = self.random_visible(n, g) if v0 is None else self.check_visible(v0)
        kernel = BlockGibbs(self)
        state = run_chain(kernel, kernel.init(v0, beta, generator=g), n_steps, generator=g, observables={},
                          progress=False).state
        if mean:
            return self.visible_mean(kernel.hidden(state), beta)
        return kernel.visible(state).clone()

    @torch.no_grad()
    def log_prob(self, v: Tensor, log_z: float | None = None) -> Tensor:
        """log q(v) = −F(v) − log Z in float64, exact: log Z by enumerating the smaller layer unless given.

        (B, n_visible) -> (B,). Enumeration is practical up to about 25 units in the smaller layer.
        """
        from kakusan.rbm.exact import log_z as exact_log_z

        model = self.to_float64()
        if log_z is None:
            log_z = exact_log_z(model)
        return -model.free_energy(model.check_visible(v)) - log_z

    def to_float64(self) -> RBM:
        """A float64 copy (self when already float64): the dtype of exact computations."""
        if self.dtype == torch.float64:
            return self
        import copy

        return copy.deepcopy(self).to(torch.float64)


Layer = Literal["visible", "hidden"]

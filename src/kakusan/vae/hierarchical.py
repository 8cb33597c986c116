"""The hierarchical VAE: L ≥ 2 stochastic layers, with Markovian bottom-up or ladder (top-down) inference.

The generative model is a Markov chain from the top layer down to the data,

    p(x, z_1, …, z_L) = p(z_L) Π_{l=1}^{L−1} p(z_l | z_{l+1}) · p(x | z_1),
    p(z_L) = N(0, I),   p(z_l | z_{l+1}) = N(μ_p,l(z_{l+1}), diag σ²_p,l(z_{l+1})),

with μ_p, log σ²_p from an MLP (or an affine map with a learned constant variance: a linear-Gaussian
hierarchy, whose marginal is exact) and p(x|z_1) any of the VAE's likelihoods and decoders.

Two inference models (``HVAEConfig.inference``):

- ``"markov"`` — the bottom-up chain q(z_1|x) q(z_2|z_1) … q(z_L|z_{L−1}) (Burda et al. 2016, §5), each a
  diagonal Gaussian from an MLP of the layer below.
- ``"ladder"`` — the ladder VAE (Sønderby et al. 2016): a deterministic bottom-up pass h_l = f_l(h_{l−1}),
  h_0 = x, gives (μ̂_l, σ̂²_l) for every layer; then a top-down pass draws z_L ~ N(μ̂_L, σ̂²_L) and, for
  l = L−1 … 1, merges the generative prior N(μ_p,l, σ²_p,l) at the drawn z_{l+1} with (μ̂_l, σ̂²_l) by
  precision weighting, σ_q² = 1/(σ̂⁻² + σ_p⁻²), μ_q = (μ̂ σ̂⁻² + μ_p σ_p⁻²) σ_q² (:func:`~kakusan.vae.ladder.merge`).
  The top-down path is the generative model's own: inference and generation share p(z_l|z_{l+1}).

The hierarchical ELBO
---------------------
For q(z|x) = Π_l q(z_l | ·) (the parent of z_l is z_{l−1} — x for l = 1 — in the Markov model, and
(z_{l+1}, x) in the ladder), Jensen's inequality gives

    log p(x) ≥ E_q[log p(x, z) − log q(z|x)]
             = E_q[log p(x|z_1)] − Σ_{l=1}^{L} E_q[KL(q(z_l|·) ‖ p(z_l|z_{l+1}))],     p(z_L|z_{L+1}) := p(z_L),

where the KL of layer l is E_q[log q(z_l|·) − log p(z_l|z_{l+1})] with the expectation over all the
latents. :meth:`HVAE.elbo` returns the reconstruction and the KL of each layer as separate groups
"z1", "z2", … (:class:`~kakusan.vae.bounds.ELBOTerms`). Each layer's KL is

- analytic per sample where q(z_l|·) and p(z_l|z_{l+1}) are both Gaussians given what was drawn before
  z_l: every layer of the ladder (the merged q against the prior at the sampled z_{l+1}; the top layer
  against N(0, I)), and the top layer of the Markov model (q(z_L|z_{L−1}) against N(0, I));
- Monte Carlo, log q(z_l|z_{l−1}) − log p(z_l|z_{l+1}) at the drawn z, for the lower layers of the Markov
  model, whose prior depends on z_{l+1}, which is drawn after z_l (and for every layer with ``kl="mc"``).

Both are unbiased for the same expectation, and the sum is the ELBO; with ``kl="mc"`` and one draw it is
log w = log p(x, z) − log q(z|x) exactly, the IWAE's k = 1 weight.

Why posteriors collapse
-----------------------
The ELBO charges every unit its KL. A unit u of layer l that the decoder does not need to model x can set
q(z_u|·) = p(z_u|z_{l+1}): its KL is then 0, its minimum, and the reconstruction is unchanged — so
gradient descent drives unused units, and often whole upper layers, to the prior (posterior collapse).
The collapsed unit adds no information about x; where the layers above it have collapsed too (or it is
the top layer) E_q[z_u|x] does not vary with x, so the active-unit criterion of Burda et al. (2016),
Cov_x(E_q[z_u|x]) > 10⁻², shows it, and the KL per unit shows it always (:mod:`kakusan.vae.diagnostics`). The pull is strongest early in training, while the decoder still
ignores z and every nat of KL is pure cost; the ladder collapses most easily, since raising σ̂²_l alone
sends its q to the prior. On binarised 8×8 digits, 300 Adam steps of the plain ELBO (latents (8, 4),
hidden (64, 32)) left the ladder with no active unit and a total KL under 10⁻³ nats, and the Markov model
with 7 + 2; free bits of λ = 0.1 nats per unit (:class:`~kakusan.vae.objectives.ELBO`) kept all 8 + 4
active in both; KL warm-up (β rising from 0 to 1) helps too, less reliably.

Everything else — the IWAE bound streamed over chunks of k, the NLL estimate with its standard error — is
the VAE's (:mod:`kakusan.vae.bounds`), through :meth:`HVAE.log_weights`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from kakusan.errors import DataError, KakusanError, check_positive_int
from kakusan.registry import register_model
from kakusan.runtime import Seed, make_generator
from kakusan.vae import bounds
from kakusan.vae.ladder import GaussianHead, GaussianLayer, Trunk, draw, gaussian_kl_units, merge, \
    standard_normal_kl_units
from kakusan.vae.latents import DiagonalGaussian
from kakusan.vae.likelihoods import BernoulliConfig, LikelihoodConfig, build_likelihood
from kakusan.vae.model import VAE
from kakusan.vae.nets import ACTIVATIONS, ConvConfig, LinearConfig, MLPConfig, NetConfig, build_decoder, width

Tensor = torch.Tensor
Inference = Literal["markov", "ladder"]
INFERENCE = ("markov", "ladder")


@dataclass(frozen=True)
class HVAEConfig:
    """A hierarchical VAE's hyper-parameters.

    data_shape : one example's shape: (D,) vectors, (H, W) or (C, H, W) images.
    latents : units per stochastic layer, bottom (z_1, next to x) to top (z_L); at least 2 layers.
        LVAE (Sønderby et al.): (64, 32, 16, 8, 4); Burda's 2-layer IWAE: (100, 50).
    hidden : the deterministic net between layer l − 1 and l (x and z_1 first), one per layer: an int w
        (two layers of w units with ``activation``: LVAE's 512, 256, …; Burda's 200, 100), an ``MLPConfig``,
        a ``LinearConfig`` (affine maps with constant variances: a linear-Gaussian hierarchy), or for the
        first layer a ``ConvConfig`` (images). The same config builds q's net upwards and p's net downwards
        (MLP widths reversed).
    activation : of the nets given as ints. ELU by default: with tanh (Burda's choice for one layer) both
        inference modes stalled early on binarised MNIST in our runs (latents (50, 25), hidden (200, 100),
        1000 Adam steps at batch 100, test ELBO: ladder with free bits 0.1 −182 nats with tanh, −134 with ELU;
        with the plain ELBO the tanh ladder collapsed to the factorised model, −201; Markov −130 with ELU,
        and still −166 with tanh after 1500 steps; the one-layer tanh VAE −143).
    likelihood : p(x|z_1): ``BernoulliConfig`` (binary data), ``AutoregressiveBernoulliConfig`` (binary images),
        ``GaussianConfig`` or ``LogisticConfig``.
    inference : ``"markov"`` (bottom-up q(z_1|x) q(z_2|z_1) …) or ``"ladder"`` (Sønderby et al. 2016).
    n_classes : > 0 makes a conditional HVAE: every net sees the one-hot label (the top prior stays N(0, I)).
    """

    data_shape: tuple[int, ...] = (784,)
    latents: tuple[int, ...] = (64, 32)
    hidden: tuple[int | MLPConfig | LinearConfig | ConvConfig, ...] = (512, 256)
    activation: str = "elu"
    likelihood: LikelihoodConfig = BernoulliConfig()
    inference: Inference = "ladder"
    n_classes: int = 0


def _net(spec, activation: str) -> NetConfig:
    if isinstance(spec, bool) or not isinstance(spec, (int, MLPConfig, LinearConfig, ConvConfig)):
        raise KakusanError(f"each hidden entry must be a width, MLPConfig, LinearConfig or ConvConfig, got {spec!r}")
    if isinstance(spec, int):
        check_positive_int(spec, "a hidden width")
        return MLPConfig((spec, spec), activation)  # type: ignore[arg-type]
    return spec


def _downward(config: NetConfig) -> NetConfig:
    """The generative direction's net: an MLP's widths reversed (z → … → wide → x)."""
    return MLPConfig(tuple(reversed(config.hidden)), config.activation) if isinstance(config, MLPConfig) else config


def _expand(q: DiagonalGaussian, k: int) -> DiagonalGaussian:
    return DiagonalGaussian(q.mean.expand(k, *q.mean.shape), q.log_var.expand(k, *q.log_var.shape))


@register_model
class HVAE(bounds.ImportanceBounds, nn.Module):
    """A hierarchical VAE with Markov or ladder inference (see the module docstring); ``HVAE(HVAEConfig(...))``.

    API-compatible with :class:`~kakusan.vae.VAE`: ``elbo``, ``log_weights``, ``iwae_bound``,
    ``importance_log_likelihood``, ``estimate_nll``, ``sample``, ``reconstruct``, ``encode``, ``decode``,
    ``image_shape``, ``n_features``; the ELBO and IWAE training objectives take it unchanged.

    Shapes: x is (n, *data_shape) or flat (n, D); cond (n,) integer labels; z_l is (n, L_l), or (k, n, L_l)
    for k draws per example. Latent groups are named "z1" (bottom) … "zL" (top). ``n_latent`` is the total
    number of latent units, ``latents`` the units per layer.
    """

    def __init__(self, config: HVAEConfig = HVAEConfig()):
        super().__init__()
        shape = tuple(config.data_shape)
        if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise KakusanError(f"data_shape must be a tuple of positive sizes, got {config.data_shape!r}")
        latents = tuple(config.latents)
        if len(latents) < 2:
            raise KakusanError(f"a hierarchical VAE needs at least 2 stochastic layers, got latents={latents!r}: "
                               "use VAE for one")
        for n in latents:
            check_positive_int(n, "a layer's latent units")
        if len(config.hidden) != len(latents):
            raise KakusanError(f"hidden needs one net per stochastic layer ({len(latents)}), got {len(config.hidden)}")
        if config.activation not in ACTIVATIONS:
            raise KakusanError(f"unknown activation {config.activation!r}: choose {', '.join(ACTIVATIONS)}")
        if config.inference not in INFERENCE:
            raise KakusanError(f"unknown inference {config.inference!r}: choose markov or ladder")
        check_positive_int(config.n_classes, "n_classes", low=0)
        nets = [_net(h, config.activation) for h in config.hidden]
        if any(isinstance(n, ConvConfig) for n in nets[1:]):
            raise KakusanError("a ConvConfig fits only the first layer (next to the images): use MLPConfig or "
                               "LinearConfig between latent layers")
        self.config = config
        self.data_shape, self.n_features = shape, math.prod(shape)
        self.latents, self.n_layers, self.n_latent = latents, len(latents), sum(latents)
        self.groups = tuple(f"z{i + 1}" for i in range(len(latents)))
        self.n_classes, self.inference = config.n_classes, config.inference
        self.image_shape: tuple[int, ...] | None = shape if len(shape) >= 2 else None
        self.likelihood = build_likelihood(config.likelihood, self.n_features, shape)
        C, D = config.n_classes, self.n_features
        image = shape if isinstance(nets[0], ConvConfig) else None
        # inference: a trunk and a Gaussian head per layer
        self.up_trunks, self.up_heads = nn.ModuleList(), nn.ModuleList()
        for l, (net, n_out) in enumerate(zip(nets, latents)):
            if config.inference == "markov":
                trunk = Trunk(net, D if l == 0 else latents[l - 1], C, image if l == 0 else None)
            else:  # the ladder's deterministic pass: the label enters once, at the bottom
                trunk = Trunk(net, D if l == 0 else self.up_trunks[l - 1].n_out, C if l == 0 else 0,
                              image if l == 0 else None)
            self.up_trunks.append(trunk)
            self.up_heads.append(GaussianHead(trunk.n_out, n_out, isinstance(net, LinearConfig)))
        # generation: p(z_l | z_{l+1}) for l = 1 … L−1 through the net between them, and p(x | z_1)
        self.priors = nn.ModuleList(GaussianLayer(_downward(nets[l + 1]), latents[l + 1], C, latents[l])
                                    for l in range(len(latents) - 1))
        self.decoder = build_decoder(_downward(nets[0]), latents[0], C, shape, self.likelihood.n_params)
        # activations per (sample, example) in one IWAE pass, to size chunks
        self.chunk_width = (self.likelihood.n_params + 1) * D + width(nets[0], shape) + \
            2 * sum(width(n, shape) for n in nets[1:]) + 8 * self.n_latent + getattr(self.likelihood, "width", 0)

    @classmethod
    def from_config(cls, config: HVAEConfig) -> "HVAE":
        return cls(config)

    # -- inputs (the VAE's checks) -----------------------------------------------------------------

    _dtype = VAE._dtype
    _device = VAE._device
    _flat = VAE._flat
    _onehot = VAE._onehot
    _inputs = VAE._inputs

    # -- the distributions -------------------------------------------------------------------------

    def _bottom_up(self, xf: Tensor, c: Tensor | None) -> list[DiagonalGaussian]:
        """The ladder's deterministic pass: N(μ̂_l, σ̂²_l) for l = 1 … L, each (n, L_l)."""
        out, h = [], xf
        for l, (trunk, head) in enumerate(zip(self.up_trunks, self.up_heads)):
            h = trunk(h, c if l == 0 else None)
            out.append(head(h))
        return out

    def _infer(self, xf: Tensor, c: Tensor | None, k: int, generator: torch.Generator | None,
               use_mean: bool = False) -> tuple[list[Tensor], list[DiagonalGaussian], list[DiagonalGaussian | None]]:
        """k draws z ~ q(z|x) through the hierarchy (or, ``use_mean``, each z_l at its conditional mean).

        Returns, bottom to top: z_l (k, n, L_l); q(z_l|·) at the drawn parents; p(z_l|z_{l+1}) at the drawn
        z_{l+1} (None for the top layer, whose prior is N(0, I)). Draws run bottom-up (Markov) or top-down
        (ladder), one (k, n, L_l) block of normals per layer from ``generator``.
        """
        n_layers = self.n_layers
        ck = None if c is None else c.expand(k, *c.shape)
        zs: list[Tensor] = [torch.empty(0)] * n_layers
        qs: list[DiagonalGaussian] = [DiagonalGaussian(torch.empty(0), torch.empty(0))] * n_layers
        ps: list[DiagonalGaussian | None] = [None] * n_layers
        if self.inference == "markov":
            parent: Tensor = xf
            for l in range(n_layers):
                q = self.up_heads[l](self.up_trunks[l](parent, c if l == 0 else ck))
                if l == 0:
                    q = _expand(q, k)
                zs[l], qs[l] = (q.mean if use_mean else draw(q, generator)), q
                parent = zs[l]
            for l in range(n_layers - 1):
                ps[l] = self.priors[l](zs[l + 1], ck)
        else:
            estimates = self._bottom_up(xf, c)
            for l in reversed(range(n_layers)):
                if l == n_layers - 1:
                    q = _expand(estimates[l], k)  # the top layer: q(z_L|x) = N(μ̂_L, σ̂²_L) (Sønderby et al.)
                else:
                    ps[l] = self.priors[l](zs[l + 1], ck)
                    q = merge(estimates[l], ps[l])
                zs[l], qs[l] = (q.mean if use_mean else draw(q, generator)), q
        return zs, qs, ps

    def _params(self, z1: Tensor, c: Tensor | None) -> Tensor:
        """Decoder output (..., P, D) for z_1 (..., n, L_1); the labels broadcast over leading draws."""
        if c is not None:
            c = c.expand(*z1.shape[:-1], c.shape[-1])
        return self.decoder(z1, c)

    def _log_px(self, xf: Tensor, z1: Tensor, c: Tensor | None) -> Tensor:
        return self.likelihood.log_prob(self._params(z1, c), xf)

    @staticmethod
    def _log_ratio_units(z: Tensor, q: DiagonalGaussian, p: DiagonalGaussian | None) -> Tensor:
        """log q(z_u|·) − log p(z_u|·) per unit at z."""
        log_p = DiagonalGaussian.prior_log_prob_units(z) if p is None else p.log_prob_units(z)
        return q.log_prob_units(z) - log_p

    def encode(self, x: Tensor, cond: Tensor | None = None, *, sample: bool = False,
               generator: Seed = None) -> dict[str, DiagonalGaussian]:
        """q(z_l|·) of every layer, {"z1": DiagonalGaussian (n, L_1), …}, along one pass through the hierarchy
        with each parent at its conditional mean (``sample=False``) or drawn (``sample=True``)."""
        xf, c = self._inputs(x, cond)
        _, qs, _ = self._infer(xf, c, 1, make_generator(generator, xf.device), use_mean=not sample)
        return {g: DiagonalGaussian(q.mean[0], q.log_var[0]) for g, q in zip(self.groups, qs)}

    def decode(self, z: Tensor, cond: Tensor | None = None, generator: Seed = None) -> Tensor:
        """E[x|z_1] in data space (probabilities, means): z_1 (n, L_1) → (n, *data_shape). An autoregressive
        decoder returns p(x_i = 1 | x_<i, z_1) along one draw of x, from ``generator``."""
        if z.ndim != 2 or z.shape[1] != self.latents[0]:
            raise DataError(f"z_1 must have shape (n, {self.latents[0]}), got {tuple(z.shape)}")
        z = z.to(self._device(), self._dtype())
        g = make_generator(generator, z.device)
        return self.likelihood.mean(self._params(z, self._onehot(cond, len(z))), g).reshape(len(z), *self.data_shape)

    def reconstruction_log_prob(self, x: Tensor, z1: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x|z_1) in nats: z_1 (n, L_1) → (n,), or (k, n, L_1) → (k, n)."""
        xf, c = self._inputs(x, cond)
        return self._log_px(xf, z1, c)

    @torch.no_grad()
    def posterior_means(self, x: Tensor, cond: Tensor | None = None, n_samples: int = 50,
                        generator: Seed = None) -> dict[str, tuple[Tensor, Tensor]]:
        """E_q[z_l|x] for every layer, {group: (mean (n, L_l), mc_var (n, L_l))}.

        E_q[z_l|x] = E_q[μ_q,l(parents)] is estimated by averaging the conditional mean μ_q,l over
        ``n_samples`` draws of the parents (Rao–Blackwellised); ``mc_var`` is that average's Monte Carlo
        variance (sample variance / n_samples), 0 where q(z_l|·) does not depend on drawn latents (z_1 of the
        Markov model, z_L of the ladder), where the mean is exact.
        """
        check_positive_int(n_samples, "n_samples")
        xf, c = self._inputs(x, cond)
        _, qs, _ = self._infer(xf, c, n_samples, make_generator(generator, xf.device))
        out = {}
        for g, q in zip(self.groups, qs):
            m = q.mean.expand(n_samples, *q.mean.shape[1:])
            var = m.var(0) / n_samples if n_samples > 1 else torch.zeros_like(m[0])
            out[g] = (m.mean(0), var)
        return out

    # -- bounds --------------------------------------------------------------------------------------

    def elbo(self, x: Tensor, cond: Tensor | None = None, generator: Seed = None, *, n_samples: int = 1,
             kl: Literal["analytic", "mc"] = "analytic") -> bounds.ELBOTerms:
        """ELBO(x) = E_q[log p(x|z_1)] − Σ_l E_q[KL(q(z_l|·) ‖ p(z_l|z_{l+1}))] per example, as named terms.

        ``reconstruction`` is the mean of log p(x|z_1) over ``n_samples`` reparameterised draws of the whole
        hierarchy; ``kl_units`` holds the KL of each layer ("z1" … "zL") per unit, averaged over the same
        draws. With ``kl="analytic"`` a layer's KL is the closed-form Gaussian KL given the drawn parents
        wherever both are Gaussian given them — every ladder layer and the Markov top layer — and the Monte
        Carlo log q(z_l|z_{l−1}) − log p(z_l|z_{l+1}) for the Markov model's lower layers; ``kl="mc"`` uses
        the Monte Carlo estimate for every layer (then one draw's ELBO is log p(x, z) − log q(z|x)).
        """
        check_positive_int(n_samples, "n_samples")
        if kl not in ("analytic", "mc"):
            raise KakusanError(f"unknown kl {kl!r}: choose analytic or mc")
        xf, c = self._inputs(x, cond)
        zs, qs, ps = self._infer(xf, c, n_samples, make_generator(generator, xf.device))
        recon = self._log_px(xf, zs[0], c).mean(0)
        kl_units = {}
        for l, (g, z, q, p) in enumerate(zip(self.groups, zs, qs, ps)):
            analytic = kl == "analytic" and (self.inference == "ladder" or l == self.n_layers - 1)
            if analytic:
                units = standard_normal_kl_units(q) if p is None else gaussian_kl_units(q, p)
            else:
                units = self._log_ratio_units(z, q, p)
            kl_units[g] = units.expand(n_samples, *units.shape[-2:]).mean(0)
        return bounds.ELBOTerms(recon, kl_units)

    def log_weights(self, x: Tensor, k: int, cond: Tensor | None = None, generator: Seed = None) -> Tensor:
        """log w_i = log p(x, z^(i)) − log q(z^(i)|x) for k draws of the hierarchy z ~ q: (k, n), with gradients."""
        check_positive_int(k, "k")
        xf, c = self._inputs(x, cond)
        zs, qs, ps = self._infer(xf, c, k, make_generator(generator, xf.device))
        log_w = self._log_px(xf, zs[0], c)
        for z, q, p in zip(zs, qs, ps):
            log_w = log_w - self._log_ratio_units(z, q, p).sum(-1)
        return log_w

    @torch.no_grad()
    def exact_log_likelihood(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) exactly, (n,), for a linear-Gaussian hierarchy (every net ``LinearConfig``, a Gaussian
        likelihood of fixed, shared or per_dim variance): x ~ N(m_x, C_x) in closed form
        (:mod:`kakusan.vae.linear_hierarchy`). No ``log_prob``: the bounds are not exact."""
        from kakusan.vae import linear_hierarchy

        xf, c = self._inputs(x, cond)
        return linear_hierarchy.log_marginal(self, xf, c)

    # -- drawing -------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: Seed = None, labels: Tensor | None = None) -> Tensor:
        """n ancestral draws z_L ~ N(0, I), z_l ~ p(z_l|z_{l+1}), returned as E[x|z_1] in data space
        (probabilities or means): (n, *data_shape). A conditional HVAE takes ``labels`` (n,) or draws them
        uniformly from the generator."""
        check_positive_int(n, "n")
        g = make_generator(generator, self._device())
        z = torch.randn((n, self.latents[-1]), generator=g, dtype=self._dtype(), device=self._device())
        if self.n_classes and labels is None:
            labels = torch.randint(0, self.n_classes, (n,), generator=g, device=self._device())
        c = self._onehot(None if labels is None else torch.as_tensor(labels, device=self._device()), n)
        for l in reversed(range(self.n_layers - 1)):
            z = draw(self.priors[l](z, c), g)
        return self.likelihood.mean(self._params(z, c), g).reshape(n, *self.data_shape)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, cond: Tensor | None = None, *, sample: bool = False,
                    generator: Seed = None) -> Tensor:
        """E[x|z_1] for z drawn from q(z|x) (``sample=True``) or with every layer at its conditional mean
        (``sample=False``): (n, *data_shape)."""
        xf, c = self._inputs(x, cond)
        g = make_generator(generator, xf.device)
        zs, _, _ = self._infer(xf, c, 1, g, use_mean=not sample)
        return self.likelihood.mean(self._params(zs[0][0], c), g).reshape(len(xf), *self.data_shape)


__all__ = ["HVAE", "HVAEConfig"]

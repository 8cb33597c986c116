"""The variational autoencoder: p(x, z) = p(z) p(x|z) with an amortised q(z|x) (Kingma & Welling 2014).

One stochastic layer z of ``n_latent`` units with a fixed prior (standard normal, or uniform bits for a
binary latent), an encoder giving q(z|x) and a decoder giving p(x|z), optionally both conditioned on a
class label (the conditional VAE, Sohn et al. 2015: p(x|z, y) and q(z|x, y), p(z) unchanged).

log p(x) is intractable in general, so the model exposes bounds under their own names — :meth:`VAE.elbo`,
:meth:`VAE.iwae_bound` — and the importance-sampled estimator :meth:`VAE.estimate_nll`; there is no
``log_prob``. Where the marginal is exact (a linear decoder with a Gaussian likelihood: probabilistic PCA
or factor analysis; or a binary latent small enough to enumerate) it is :meth:`VAE.exact_log_likelihood`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from kakusan.errors import DataError, KakusanError, check_positive_int
from kakusan.registry import register_model
from kakusan.runtime import Seed, make_generator
from kakusan.vae import bounds
from kakusan.vae.latents import FAMILIES, PARAMS_PER_UNIT, DiagonalGaussian, FactorisedBernoulli, LatentName, posterior
from kakusan.vae.likelihoods import BernoulliConfig, LikelihoodConfig, build_likelihood
from kakusan.vae.nets import MLPConfig, NetConfig, build_decoder, build_encoder, width

Tensor = torch.Tensor
MAX_ENUMERATED_LATENTS = 16  # 65,536 states


@dataclass(frozen=True)
class VAEConfig:
    """A VAE's hyper-parameters.

    data_shape : one example's shape: (D,) vectors, (H, W) or (C, H, W) images.
    n_latent : units of z (Burda et al.: 50).
    encoder, decoder : :class:`~kakusan.vae.nets.MLPConfig` (default: 200-200 tanh), ``ConvConfig`` or
        ``LinearConfig``.
    likelihood : ``BernoulliConfig`` (binary data), ``AutoregressiveBernoulliConfig`` (binary images, each pixel
        also seeing the pixels before it), ``GaussianConfig`` or ``LogisticConfig`` (8-bit images).
    latent : ``"gaussian"`` (q diagonal Gaussian, p = N(0, I)) or ``"bernoulli"`` (binary z, uniform p).
    n_classes : > 0 makes a conditional VAE whose encoder and decoder see the one-hot label.
    """

    data_shape: tuple[int, ...] = (784,)
    n_latent: int = 50
    encoder: NetConfig = MLPConfig()
    decoder: NetConfig = MLPConfig()
    likelihood: LikelihoodConfig = BernoulliConfig()
    latent: LatentName = "gaussian"
    n_classes: int = 0


@register_model
class VAE(bounds.ImportanceBounds, nn.Module):
    """A one-layer VAE (see the module docstring); ``VAE(VAEConfig(...))``.

    Shapes: x is (n, *data_shape) or flat (n, D); cond is (n,) integer labels in 0 … n_classes − 1;
    z is (n, L), or (k, n, L) for k draws per example. All log-likelihoods and bounds are in nats.
    """

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__()
        shape = tuple(config.data_shape)
        if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
            raise KakusanError(f"data_shape must be a tuple of positive sizes, got {config.data_shape!r}")
        check_positive_int(config.n_latent, "n_latent")
        check_positive_int(config.n_classes, "n_classes", low=0)
        if config.latent not in FAMILIES:
            raise KakusanError(f"unknown latent {config.latent!r}: choose gaussian or bernoulli")
        self.config = config
        self.data_shape, self.n_features = shape, math.prod(shape)
        self.n_latent, self.n_classes = config.n_latent, config.n_classes
        self.image_shape: tuple[int, ...] | None = shape if len(shape) >= 2 else None
        self.likelihood = build_likelihood(config.likelihood, self.n_features, shape)
        n_q = PARAMS_PER_UNIT[config.latent] * config.n_latent
        self.encoder = build_encoder(config.encoder, shape, config.n_classes, n_q)
        self.decoder = build_decoder(config.decoder, config.n_latent, config.n_classes, shape,
                                     self.likelihood.n_params)
        # activations per (sample, example) in one IWAE pass, to size chunks
        self.chunk_width = (self.likelihood.n_params + 1) * self.n_features + width(config.decoder, shape) + \
            4 * config.n_latent + getattr(self.likelihood, "width", 0)

    @classmethod
    def from_config(cls, config: VAEConfig) -> "VAE":
        return cls(config)

    # -- inputs ------------------------------------------------------------------------------------

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _flat(self, x: Tensor) -> Tensor:
        """x (n, *data_shape) or (n, D) → (n, D) in the model's dtype, checked by the likelihood."""
        if not isinstance(x, Tensor):
            raise DataError(f"x must be a tensor of shape (n, {', '.join(map(str, self.data_shape))}), got "
                            f"{type(x).__name__}")
        if x.ndim < 1 or (tuple(x.shape[1:]) != self.data_shape and tuple(x.shape[1:]) != (self.n_features,)):
            want = f"(n, {', '.join(map(str, self.data_shape))})"
            if len(self.data_shape) > 1:
                want += f" or (n, {self.n_features})"
            raise DataError(f"x must have shape {want}, got {tuple(x.shape)}")
        xf = x.reshape(len(x), self.n_features).to(self._device(), self._dtype())
        self.likelihood.check(xf)
        return xf

    def _onehot(self, cond: Tensor | None, n: int) -> Tensor | None:
        """(n,) labels → (n, C) one-hot (None for an unconditional model)."""
        if self.n_classes == 0:
            if cond is not None:
                raise KakusanError("this VAE is not conditional (n_classes=0): leave cond out")
            return None
        if cond is None:
            raise KakusanError(f"this conditional VAE needs cond: the ({n},) class labels in 0..{self.n_classes - 1}")
        cond = torch.as_tensor(cond, device=self._device())
        if cond.shape != (n,) or cond.is_floating_point() or cond.dtype == torch.bool:
            raise DataError(f"cond must be integer labels of shape ({n},), got {cond.dtype} {tuple(cond.shape)}")
        if n and not (0 <= int(cond.min()) and int(cond.max()) < self.n_classes):
            raise DataError(f"cond labels must lie in 0..{self.n_classes - 1}, found {int(cond.min())}.."
                            f"{int(cond.max())}")
        return F.one_hot(cond.long(), self.n_classes).to(self._dtype())

    def _inputs(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor | None]:
        xf = self._flat(x)
        return xf, self._onehot(cond, len(xf))

    # -- the distributions -------------------------------------------------------------------------

    def _q(self, xf: Tensor, c: Tensor | None) -> DiagonalGaussian | FactorisedBernoulli:
        return posterior(self.config.latent, self.encoder(xf, c))

    def _params(self, z: Tensor, c: Tensor | None) -> Tensor:
        """Decoder output (..., P, D) for z (..., n, L); the labels broadcast over leading draws."""
        if c is not None:
            c = c.expand(*z.shape[:-1], c.shape[-1])
        return self.decoder(z, c)

    def _log_px(self, xf: Tensor, z: Tensor, c: Tensor | None) -> Tensor:
        """log p(x|z): (k, n) for z (k, n, L)."""
        return self.likelihood.log_prob(self._params(z, c), xf)

    def _prior_log_prob(self, z: Tensor) -> Tensor:
        return FAMILIES[self.config.latent].prior_log_prob_units(z).sum(-1)

    def encode(self, x: Tensor, cond: Tensor | None = None) -> DiagonalGaussian | FactorisedBernoulli:
        """q(z|x): a :class:`~kakusan.vae.latents.DiagonalGaussian` (mean, log_var) or ``FactorisedBernoulli``."""
        return self._q(*self._inputs(x, cond))

    def decode(self, z: Tensor, cond: Tensor | None = None, generator: Seed = None) -> Tensor:
        """E[x|z] in data space (probabilities, means): z (n, L) → (n, *data_shape). An autoregressive decoder
        returns p(x_i = 1 | x_<i, z) along one draw of x, from ``generator``."""
        if z.ndim != 2 or z.shape[1] != self.n_latent:
            raise DataError(f"z must have shape (n, {self.n_latent}), got {tuple(z.shape)}")
        z = z.to(self._dtype())
        g = make_generator(generator, z.device)
        return self.likelihood.mean(self._params(z, self._onehot(cond, len(z))), g).reshape(len(z), *self.data_shape)

    def reconstruction_log_prob(self, x: Tensor, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x|z) in nats: z (n, L) → (n,), or (k, n, L) → (k, n)."""
        xf, c = self._inputs(x, cond)
        return self._log_px(xf, z, c)

    # -- bounds --------------------------------------------------------------------------------------

    def elbo(self, x: Tensor, cond: Tensor | None = None, generator: Seed = None, *, n_samples: int = 1,
             kl: Literal["analytic", "mc"] = "analytic") -> bounds.ELBOTerms:
        """ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) per example, as named terms (nats).

        ``reconstruction`` is the mean of log p(x|z) over ``n_samples`` draws z ~ q (reparameterised for a
        Gaussian latent); ``kl`` is the closed form (``"analytic"``) or the Monte Carlo estimate
        log q(z|x) − log p(z) at the same draws (``"mc"``; with q = the exact posterior each draw then gives
        log p(x) itself). Returns :class:`~kakusan.vae.bounds.ELBOTerms` (``.elbo``, ``.kl``, ``.metrics()``).
        """
        check_positive_int(n_samples, "n_samples")
        if kl not in ("analytic", "mc"):
            raise KakusanError(f"unknown kl {kl!r}: choose analytic or mc")
        xf, c = self._inputs(x, cond)
        q = self._q(xf, c)
        z = q.sample(n_samples, make_generator(generator, xf.device))  # (S, n, L)
        recon = self._log_px(xf, z, c).mean(0)
        if kl == "analytic":
            kl_units = q.kl_units()
        else:
            kl_units = (q.log_prob_units(z) - FAMILIES[self.config.latent].prior_log_prob_units(z)).mean(0)
        return bounds.ELBOTerms(recon, {"z": kl_units})

    def log_weights(self, x: Tensor, k: int, cond: Tensor | None = None, generator: Seed = None) -> Tensor:
        """log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x), z_i ~ q(z|x): (k, n) (one chunk, with gradients)."""
        check_positive_int(k, "k")
        xf, c = self._inputs(x, cond)
        q = self._q(xf, c)
        z = q.sample(k, make_generator(generator, xf.device))  # (k, n, L)
        return self._log_px(xf, z, c) + self._prior_log_prob(z) - q.log_prob_units(z).sum(-1)

    @torch.no_grad()
    def exact_log_likelihood(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) exactly, (n,): probabilistic PCA / factor analysis (a linear decoder with a Gaussian
        likelihood of fixed, shared or per-dimension variance; :mod:`kakusan.vae.linear_gaussian`), or a
        binary latent of at most 16 units by enumeration, log Σ_z p(z) p(x|z)."""
        xf, c = self._inputs(x, cond)
        if self.config.latent == "bernoulli":
            return self._enumerate(xf, c)
        from kakusan.vae import linear_gaussian

        if not linear_gaussian.is_linear_gaussian(self):
            raise KakusanError("exact_log_likelihood needs a linear decoder with a Gaussian likelihood of fixed, "
                               "shared or per_dim variance, or a binary latent: use estimate_nll for this VAE")
        return linear_gaussian.log_marginal(self, xf, c)

    def _enumerate(self, xf: Tensor, c: Tensor | None) -> Tensor:
        L = self.n_latent
        if L > MAX_ENUMERATED_LATENTS:
            raise KakusanError(f"enumerating 2^{L} latent states is too many (at most 2^{MAX_ENUMERATED_LATENTS}): "
                               "use estimate_nll")
        states = ((torch.arange(2**L, device=xf.device)[:, None] >> torch.arange(L, device=xf.device)) & 1)
        states = states.to(xf.dtype)  # (2^L, L)
        parts = []
        for block in states.split(max(1, bounds.CHUNK_BUDGET // max(1, len(xf) * self.chunk_width))):
            z = block[:, None, :].expand(len(block), len(xf), L)
            parts.append(self._log_px(xf, z, c))  # (block, n)
        return torch.logsumexp(torch.cat(parts), dim=0) - L * math.log(2)

    # -- drawing -------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, generator: Seed = None, labels: Tensor | None = None) -> Tensor:
        """n draws of E[x|z], z ~ p(z), in data space (probabilities or means): (n, *data_shape).

        A conditional VAE takes ``labels`` (n,) or draws them uniformly from the generator.
        """
        check_positive_int(n, "n")
        g = make_generator(generator, self._device())
        z = FAMILIES[self.config.latent].prior_sample(n, self.n_latent, g, self._dtype(), self._device())
        if self.n_classes and labels is None:
            labels = torch.randint(0, self.n_classes, (n,), generator=g, device=self._device())
        return self.decode(z, None if labels is None else torch.as_tensor(labels, device=self._device()), g)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, cond: Tensor | None = None, *, sample: bool = False,
                    generator: Seed = None) -> Tensor:
        """E[x|z] for z the mode of q(z|x) (``sample=False``) or a draw z ~ q(z|x): (n, *data_shape)."""
        xf, c = self._inputs(x, cond)
        q = self._q(xf, c)
        g = make_generator(generator, xf.device)
        z = q.sample(1, g)[0] if sample else q.mode()
        return self.likelihood.mean(self._params(z, c), g).reshape(len(xf), *self.data_shape)


__all__ = ["VAE", "VAEConfig"]


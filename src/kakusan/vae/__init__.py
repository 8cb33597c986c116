"""Variational autoencoders: ELBO and IWAE bounds as named per-example terms, learned through ``train.fit``.

A VAE is p(x, z) = p(z) p(x|z) with an encoder q(z|x); log p(x) ≥ ELBO = E_q[log p(x|z)] − KL(q ‖ p(z)),
and the importance-weighted bound L_k tightens it to log p(x) as k grows (Burda et al. 2016).

API
---
Model (registered, so ``kakusan.load(run)`` rebuilds it):

- ``VAE(VAEConfig(data_shape=(784,), n_latent=50, encoder=MLPConfig(), decoder=MLPConfig(),
  likelihood=BernoulliConfig(), latent="gaussian", n_classes=0))``
  - nets: ``MLPConfig(hidden=(200, 200), activation="tanh")`` (Burda), ``ConvConfig(channels=(32, 64),
    hidden=0, activation="relu")`` (H, W multiples of 4: 28×28, 8×8), ``LinearConfig()``;
  - likelihoods: ``BernoulliConfig()`` (0/1 data), ``GaussianConfig(variance="fixed"|"shared"|"per_dim"|
    "decoder", std=1.0)``, ``LogisticConfig(levels=256)`` (discretised logistic; bits/dim),
    ``AutoregressiveBernoulliConfig(kernel=5, channels=16)`` (binary images; each pixel also sees the pixels
    before it in a K×K window, a masked convolution; exact log p(x|z), sampled pixel by pixel);
  - ``latent="bernoulli"``: binary z with a uniform prior (score-function gradients, exact enumeration);
  - ``n_classes > 0``: a conditional VAE; every method then takes ``cond`` (n,) integer labels.
- ``vae.elbo(x, cond=None, generator=None, *, n_samples=1, kl="analytic"|"mc") -> ELBOTerms``
  (``.reconstruction`` (n,), ``.kl`` {group: (n,)}, ``.kl_units`` {group: (n, L)}, ``.elbo`` (n,), ``.metrics()``)
- ``vae.iwae_bound(x, k, cond=None, generator=None, chunk=None) -> (n,)`` float64, streamed over chunks of k
- ``vae.importance_log_likelihood(x, k, ...) -> LogMeanExp`` (per example: value, stderr, ess)
- ``vae.estimate_nll(x, k=5000, cond=None, generator=None, *, batch_size=100, chunk=None, unit=None)
  -> Estimate`` (mean NLL over examples ± s.e. across them; nats, or bits/dim for the logistic)
- ``vae.exact_log_likelihood(x, cond=None) -> (n,)``: linear-Gaussian decoder (pPCA / factor analysis) or
  a binary latent of ≤ 16 units; no ``log_prob`` (the bounds are not exact)
- ``vae.log_weights(x, k, cond=None, generator=None) -> (k, n)``: log p(x, z_i) − log q(z_i|x)
- ``vae.sample(n, generator=None, labels=None) -> (n, *data_shape)`` (probabilities / means);
  ``vae.reconstruct(x, cond=None, *, sample=False, generator=None)``; ``vae.encode(x, cond=None) -> q``
  (``DiagonalGaussian(mean, log_var)`` or ``FactorisedBernoulli(logits)``); ``vae.decode(z, cond=None,
  generator=None)`` (the generator draws the autoregressive decoder's pixels);
  ``vae.image_shape`` ((H, W) / (C, H, W), or None for vectors); ``vae.n_features`` (D).

Objectives for ``train.fit(model, objective, data, optimizer, TrainConfig(...), transform=...)``:

- ``ELBO(beta=1.0, warmup_steps=0, free_bits=0.0, n_samples=1, estimator="auto")`` (keeps its step count
  in ``state_dict`` for the warm-up); ``IWAE(k=50)``; ``dynamic_binarisation`` (the ``transform``).
  Batches are x, (x, labels) or {"x": x, "cond": labels}; metrics: reconstruction, kl, kl_z, elbo (per example).

Hierarchical VAE (registered; :mod:`kakusan.vae.hierarchical`):

- ``HVAE(HVAEConfig(data_shape=(784,), latents=(64, 32), hidden=(512, 256), activation="elu",
  likelihood=BernoulliConfig(), inference="ladder"|"markov", n_classes=0))``: L ≥ 2 Gaussian layers,
  p(z_L) = N(0, I), p(z_l|z_{l+1}) Gaussian, p(x|z_1) from the likelihoods above; ``hidden`` entries are
  widths (two layers of w units) or ``MLPConfig`` / ``LinearConfig`` (``ConvConfig`` next to images);
  Markov bottom-up inference q(z_1|x) q(z_2|z_1) …, or the ladder VAE's precision-weighted top-down merge.
  The same methods as ``VAE`` (``elbo`` with KL groups "z1", "z2", …; ``log_weights``, ``iwae_bound``,
  ``estimate_nll``, ``sample``, ``reconstruct``); ``encode`` gives {group: DiagonalGaussian};
  ``posterior_means``; ``exact_log_likelihood`` for a linear-Gaussian hierarchy
  (:mod:`kakusan.vae.linear_hierarchy`: ``set_linear_hierarchy``, ``set_exact_posterior``, ``log_marginal``).
- Diagnostics for both (:mod:`kakusan.vae.diagnostics`): ``active_units(model, x, cond=None, threshold=1e-2)
  -> {group: Activity(n_active, variance, threshold)}`` (Burda's Cov_x(E_q[z_u|x]) criterion),
  ``kl_per_unit(model, x) -> {group: (L,)}``, ``kl_per_layer(model, x) -> {group: nats}``.

Closed forms (:mod:`kakusan.vae.linear_gaussian`): ``linear_config(D, L)``, ``ppca_max_likelihood(x, L)``,
``set_decoder``, ``exact_posterior``, ``set_exact_posterior``, ``posterior_gap``. Helpers:
``bits_per_dim(log_likelihood, D)``; :class:`kakusan.evaluate.streaming.LogMeanExpStream`.

>>> import torch
>>> from kakusan.vae import VAE, VAEConfig, MLPConfig
>>> vae = VAE(VAEConfig(data_shape=(8, 8), n_latent=4, encoder=MLPConfig((16,)), decoder=MLPConfig((16,))))
>>> x = torch.bernoulli(torch.full((3, 8, 8), 0.3), generator=torch.Generator().manual_seed(0))
>>> vae.elbo(x, generator=0).elbo.shape, vae.iwae_bound(x, k=100, generator=0).shape
(torch.Size([3]), torch.Size([3]))
"""

from kakusan.vae import linear_gaussian, linear_hierarchy
from kakusan.vae.bounds import ELBOTerms, estimate_nll, importance_log_likelihood, iwae_bound
from kakusan.vae.diagnostics import Activity, active_units, kl_per_layer, kl_per_unit
from kakusan.vae.hierarchical import HVAE, HVAEConfig
from kakusan.vae.latents import DiagonalGaussian, FactorisedBernoulli
from kakusan.vae.likelihoods import (
    AutoregressiveBernoulli,
    AutoregressiveBernoulliConfig,
    BernoulliConfig,
    BernoulliLikelihood,
    DiscretisedLogistic,
    GaussianConfig,
    GaussianLikelihood,
    LogisticConfig,
    bits_per_dim,
)
from kakusan.vae.model import VAE, VAEConfig
from kakusan.vae.nets import ConvConfig, LinearConfig, MLPConfig
from kakusan.vae.objectives import ELBO, IWAE, dynamic_binarisation, split_batch

__all__ = [
    "Activity", "AutoregressiveBernoulli", "AutoregressiveBernoulliConfig", "BernoulliConfig",
    "BernoulliLikelihood", "ConvConfig", "DiagonalGaussian", "DiscretisedLogistic", "ELBO", "ELBOTerms",
    "FactorisedBernoulli", "GaussianConfig", "GaussianLikelihood", "HVAE", "HVAEConfig", "IWAE", "LinearConfig",
    "LogisticConfig", "MLPConfig", "VAE", "VAEConfig", "active_units", "bits_per_dim", "dynamic_binarisation",
    "estimate_nll", "importance_log_likelihood", "iwae_bound", "kl_per_layer", "kl_per_unit", "linear_gaussian",
    "linear_hierarchy", "split_batch",
]

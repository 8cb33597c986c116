"""The VAE's contract: nets and shapes, sampling, conditioning, named terms, and one-line errors for bad input."""

import pytest
import torch
from vae_helpers import seeded

from kakusan.errors import DataError, KakusanError
from kakusan.vae import (
    VAE,
    ConvConfig,
    GaussianConfig,
    LinearConfig,
    LogisticConfig,
    MLPConfig,
    VAEConfig,
    linear_gaussian,
)


def bits(shape, seed=0):
    return torch.bernoulli(torch.full(shape, 0.4), generator=torch.Generator().manual_seed(seed))


def test_burda_defaults():
    vae = VAE()
    assert vae.config.n_latent == 50 and vae.config.encoder == MLPConfig((200, 200), "tanh")
    linears = [m for m in vae.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 200), (200, 200), (200, 100)]
    assert sum(isinstance(m, torch.nn.Tanh) for m in vae.decoder.modules()) == 2
    assert vae.image_shape is None and vae.n_features == 784


@pytest.mark.parametrize("shape,net", [((28, 28), ConvConfig()), ((8, 8), ConvConfig((8, 16), hidden=32)),
                                       ((1, 8, 8), ConvConfig((4, 8))), ((8, 8), MLPConfig((16,))),
                                       ((8, 8), LinearConfig())])
@pytest.mark.parametrize("n_classes", [0, 3])
def test_every_net_gives_terms_samples_and_reconstructions_of_the_right_shape(shape, net, n_classes):
    vae = seeded(lambda: VAE(VAEConfig(shape, 4, net, net, n_classes=n_classes)), 0)
    x = bits((5, *shape))
    cond = torch.tensor([0, 1, 2, 0, 1]) if n_classes else None
    terms = vae.elbo(x, cond, generator=0, n_samples=2)
    assert terms.elbo.shape == (5,) and terms.kl_units["z"].shape == (5, 4)
    assert torch.allclose(terms.elbo, terms.reconstruction - terms.kl_total)
    assert set(terms.metrics()) == {"reconstruction", "kl", "kl_z", "elbo"}
    terms.elbo.sum().backward()
    assert all(p.grad is not None for p in vae.parameters())
    assert vae.log_weights(x, 3, cond, generator=0).shape == (3, 5)
    assert vae.iwae_bound(x, 10, cond, generator=0).shape == (5,)
    s = vae.sample(6, generator=1, labels=None if not n_classes else [2] * 6)
    assert s.shape == (6, *shape) and bool(((s >= 0) & (s <= 1)).all())
    assert torch.equal(s, vae.sample(6, generator=1, labels=None if not n_classes else [2] * 6))
    assert vae.reconstruct(x, cond).shape == x.shape
    assert vae.reconstruct(x.reshape(5, -1), cond, sample=True, generator=2).shape == x.shape  # flat x too
    assert vae.image_shape == shape


def test_a_conditional_decoder_uses_the_label():
    vae = seeded(lambda: VAE(VAEConfig((6,), 2, MLPConfig((8,)), MLPConfig((8,)), n_classes=4)), 1)
    z = torch.zeros(4, 2)
    out = vae.decode(z, torch.arange(4))
    assert not torch.allclose(out[0], out[1])
    q0, q1 = vae.encode(bits((1, 6)), torch.tensor([0])), vae.encode(bits((1, 6)), torch.tensor([3]))
    assert not torch.allclose(q0.mean, q1.mean)
    drawn = vae.sample(200, generator=0)  # labels drawn uniformly when not given
    assert drawn.shape == (200, 6)


def test_the_nll_estimate_has_a_standard_error_and_units():
    vae = seeded(lambda: VAE(VAEConfig((8, 8), 3, MLPConfig((16,)), MLPConfig((16,)))), 2)
    x = bits((30, 8, 8))
    est = vae.estimate_nll(x, k=50, generator=0, batch_size=7)
    assert est.unit == "nats" and est.n == 30 and est.method == "IWAE k=50" and est.stderr > 0
    per_example = vae.importance_log_likelihood(x, 50, generator=0)
    assert est.value == pytest.approx(-per_example.value.mean().item(), rel=0.05)
    logistic = seeded(lambda: VAE(VAEConfig((8, 8), 3, MLPConfig((16,)), MLPConfig((16,)),
                                            likelihood=LogisticConfig(17))), 3)
    images = torch.randint(0, 17, (10, 8, 8)) / 16
    bpd = logistic.estimate_nll(images, k=20, generator=0)
    nats = logistic.estimate_nll(images, k=20, generator=0, unit="nats")
    assert bpd.unit == "bits/dim" and bpd.value == pytest.approx(nats.value / (64 * 0.6931471805599453))


def test_exact_log_likelihood_only_where_it_is_exact():
    assert not hasattr(VAE, "log_prob")
    with pytest.raises(KakusanError, match="use estimate_nll"):
        VAE(VAEConfig((4,), 2, MLPConfig((8,)), MLPConfig((8,)), likelihood=GaussianConfig())).exact_log_likelihood(
            torch.zeros(1, 4))
    with pytest.raises(KakusanError, match="use estimate_nll"):
        VAE(VAEConfig((4,), 2, LinearConfig(), LinearConfig())).exact_log_likelihood(torch.zeros(1, 4))  # Bernoulli
    fa = VAE(linear_gaussian.linear_config(4, 2, variance="per_dim", n_classes=2)).double()
    x, y = torch.randn(3, 4, dtype=torch.float64), torch.tensor([0, 1, 1])
    W, b, V, psi = linear_gaussian.decoder_parts(fa)
    ref = torch.distributions.MultivariateNormal(b + V[:, y].T, W @ W.T + torch.diag(psi)).log_prob(x)
    assert torch.allclose(fa.exact_log_likelihood(x, y), ref.detach(), atol=1e-10)


def test_bad_input_gets_one_line_errors_naming_the_fix_or_the_shape():
    vae = VAE(VAEConfig((8, 8), 3, MLPConfig((8,)), MLPConfig((8,))))
    cases = [
        (lambda: vae.elbo(torch.rand(4, 8, 8)), DataError, "Bernoulli likelihood needs binary 0/1 data"),
        (lambda: vae.elbo(bits((4, 7))), DataError, r"x must have shape \(n, 8, 8\) or \(n, 64\), got \(4, 7\)"),
        (lambda: vae.elbo(bits((4, 8, 8)), torch.zeros(4, dtype=torch.long)), KakusanError, "not conditional"),
        (lambda: vae.decode(torch.zeros(2, 5)), DataError, r"z must have shape \(n, 3\), got \(2, 5\)"),
        (lambda: vae.iwae_bound(bits((2, 64)), 0), KakusanError, "k must be a positive integer"),
        (lambda: vae.elbo(bits((2, 64)), kl="exact"), KakusanError, "choose analytic or mc"),
        (lambda: vae.estimate_nll(bits((2, 64)), k=5, unit="bits"), KakusanError, "nats or bits/dim"),
        (lambda: VAE(VAEConfig((10, 10), 3, ConvConfig(), ConvConfig())), KakusanError,
         r"multiples of 4, got data shape \(10, 10\)"),
        (lambda: VAE(VAEConfig((4,), 0)), KakusanError, "n_latent must be a positive integer"),
        (lambda: VAE(VAEConfig((4,), 2, latent="spin")), KakusanError, "choose gaussian or bernoulli"),
    ]
    conditional = VAE(VAEConfig((4,), 2, MLPConfig((8,)), MLPConfig((8,)), n_classes=3))
    cases += [
        (lambda: conditional.elbo(bits((2, 4))), KakusanError, r"needs cond: the \(2,\) class labels in 0..2"),
        (lambda: conditional.elbo(bits((2, 4)), torch.tensor([0, 3])), DataError, "must lie in 0..2"),
        (lambda: conditional.elbo(bits((2, 4)), torch.tensor([0.0, 1.0])), DataError, r"of shape \(2,\)"),
        (lambda: conditional.elbo(bits((2, 4)), torch.tensor([0, 1, 2])), DataError, r"of shape \(2,\)"),
    ]
    for call, kind, pattern in cases:
        with pytest.raises(kind, match=pattern) as e:
            call()
        assert "\n" not in str(e.value), str(e.value)


def test_the_exact_posterior_needs_orthogonal_columns():
    vae = VAE(linear_gaussian.linear_config(4, 2)).double()
    W = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)  # WᵀW not diagonal
    linear_gaussian.set_decoder(vae, torch.zeros(4, dtype=torch.float64), W, 0.1)
    with pytest.raises(KakusanError, match="correlated latents"):
        linear_gaussian.set_exact_posterior(vae)

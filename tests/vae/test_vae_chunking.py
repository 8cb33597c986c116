"""The importance-weighted bound streamed over chunks of k: the same numbers as in one piece, bounded memory."""

import math
import time

import pytest
import torch
from vae_helpers import F64, seeded

from kakusan.evaluate import log_mean_exp
from kakusan.evaluate.streaming import LogMeanExpStream
from kakusan.vae import VAE, MLPConfig, VAEConfig
from kakusan.vae.bounds import auto_chunk


@pytest.mark.parametrize("sizes", [(10,), (3, 3, 4), (1,) * 10, (7, 1, 2)])
@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_the_stream_equals_log_mean_exp_of_everything(sizes, scale):
    log_w = scale * torch.randn(4, sum(sizes), generator=torch.Generator().manual_seed(len(sizes)), dtype=F64)
    log_w[1] -= 1000  # tiny weights: still exact in log space
    acc = LogMeanExpStream(dim=-1)
    for part in log_w.split(list(sizes), dim=-1):
        acc.add(part)
    whole, streamed = log_mean_exp(log_w, dim=-1), acc.result()
    assert streamed.n == whole.n
    for a, b in zip(streamed[:3], whole[:3]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_a_row_of_zero_weights_stays_minus_infinity():
    acc = LogMeanExpStream(dim=0)
    acc.add(torch.tensor([[-math.inf, 0.0], [-math.inf, 1.0]], dtype=F64))
    acc.add(torch.tensor([[-math.inf, 2.0]], dtype=F64))
    out = acc.result()
    assert out.value[0] == -math.inf and torch.isfinite(out.value[1])


@pytest.fixture(scope="module")
def vae():
    config = VAEConfig(data_shape=(8, 8), n_latent=5, encoder=MLPConfig((32,)), decoder=MLPConfig((32,)))
    return seeded(lambda: VAE(config), 1).to(F64)


@pytest.fixture(scope="module")
def x():
    return torch.bernoulli(torch.full((12, 8, 8), 0.3, dtype=F64), generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("chunk", [1, 7, 40, 100])
def test_chunked_bound_is_the_log_mean_exp_of_the_same_draws(vae, x, chunk):
    k = 100
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # the same draws, chunk by chunk, kept whole
        parts = [vae.log_weights(x, min(chunk, k - i), generator=g) for i in range(0, k, chunk)]
    whole = log_mean_exp(torch.cat(parts), dim=0)
    streamed = vae.importance_log_likelihood(x, k, generator=torch.Generator().manual_seed(3), chunk=chunk)
    for a, b in zip(streamed[:3], whole[:3]):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_one_chunk_or_many_give_the_same_bound_in_distribution(vae, x):
    k = 200
    one = torch.stack([vae.iwae_bound(x, k, generator=s, chunk=k) for s in range(10)])  # (10, n)
    many = torch.stack([vae.iwae_bound(x, k, generator=100 + s, chunk=1) for s in range(10)])
    d = one.mean(0) - many.mean(0)
    se = torch.sqrt((one.var(0) + many.var(0)) / 10)
    assert bool((d.abs() <= 4.5 * se).all()), d / se


def test_k_5000_runs_in_chunks_of_bounded_size(vae, x):
    k, chunk = 5000, auto_chunk(5000, len(x), vae.chunk_width, budget=2**16)
    assert chunk < 100  # a small budget: many chunks
    rows = []
    handle = vae.decoder.register_forward_hook(lambda m, args, out: rows.append(out.shape[:-2].numel()))
    try:
        t0 = time.perf_counter()
        est = vae.importance_log_likelihood(x, k, generator=4, chunk=chunk)
        seconds = time.perf_counter() - t0
    finally:
        handle.remove()
    assert max(rows) == chunk * len(x)  # no pass ever held more than one chunk of samples
    assert sum(rows) == k * len(x) and len(rows) == math.ceil(k / chunk)
    assert bool(torch.isfinite(est.value).all()) and bool((est.stderr < 0.5).all())
    assert seconds < 5
    # the default chunk fits the default budget: for 100 examples of 784 pixels, a few dozen samples per pass
    big = VAE(VAEConfig())
    assert 8 <= auto_chunk(5000, 100, big.chunk_width) <= 64

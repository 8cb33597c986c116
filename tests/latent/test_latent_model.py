"""LatentDiffusion: the autoencoder's latent scale (fit, apply, checkpoint round trip), generation (same seed, same
images; against the sampler run by hand), config checks, and the model shipped in the package."""

import dataclasses

import pytest
import torch

from kakusan import checkpoint
from kakusan.diffusion.samplers import get_sampler
from kakusan.errors import DataError, KakusanError
from kakusan.latent.autoencoder import Autoencoder, AutoencoderConfig
from kakusan.latent.model import LatentDiffusion, LatentDiffusionConfig, with_denoiser

SHIPPED_MAX_BYTES = 25 * 1000 * 1000


# -- the latent scale ------------------------------------------------------------------------------------------


def small_autoencoder(seed: int = 0) -> Autoencoder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Autoencoder(AutoencoderConfig(channels=(8, 16))).eval()


def test_fit_scale_sets_one_over_the_std_of_the_posterior_means(images):
    ae = small_autoencoder()
    x = torch.cat([images, images.flip(-1), 1 - images])
    ae.latent_scale.fill_(7.0)  # fit_scale must not depend on the scale it finds
    with torch.no_grad():
        means = ae.encoder(x[:, None] * 2 - 1)[:, :4].double()  # the first 4 channels: the mean of q(z|x)
        scale = ae.fit_scale(x, batch_size=5)  # in batches: the same numbers
    want = 1 / float(means.std())
    assert scale == pytest.approx(want, rel=1e-6)
    assert float(ae.latent_scale) == pytest.approx(want, rel=1e-6)
    with torch.no_grad():
        z = ae.encode(x)
    assert z.shape == (len(x), 4, 7, 7)
    assert float(z.double().std()) == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(z.double(), means * want, atol=1e-5, rtol=1e-5)


def test_zero_spread_latents_are_an_error(images):
    ae = small_autoencoder()
    with torch.no_grad():
        last = ae.encoder[-1]
        last.weight.zero_()
        last.bias.zero_()
        with pytest.raises(KakusanError, match="zero spread"):
            ae.fit_scale(images)


def test_decode_divides_by_the_scale_and_reconstruct_does_not_depend_on_it(images):
    ae = small_autoencoder()
    with torch.no_grad():
        r1 = ae.reconstruct(images)
        z1 = ae.encode(images)
        ae.latent_scale.fill_(2.0)  # a power of two: scaling and unscaling are exact in floating point
        assert torch.equal(ae.encode(images), 2 * z1)
        assert torch.equal(ae.reconstruct(images), r1)
        assert torch.equal(ae.decode(2 * z1), r1)
        assert torch.equal(r1, torch.sigmoid(ae.logits(z1))[:, 0])
    assert r1.shape == images.shape and 0 <= float(r1.min()) and float(r1.max()) <= 1
    with pytest.raises(DataError):
        ae.decode(torch.zeros(2, 3, 7, 7))
    with pytest.raises(DataError):
        ae.encode(torch.zeros(2, 27, 28))


def test_the_scale_round_trips_through_a_checkpoint(make_tiny, images, tmp_path, text_encoder):
    model = make_tiny(3)
    with torch.no_grad():
        scale = model.autoencoder.fit_scale(images)
    assert scale != pytest.approx(1.0) and scale != pytest.approx(2.0)
    checkpoint.save_model(tmp_path / "checkpoints", model, name="model")
    loaded = checkpoint.load_model(tmp_path / "checkpoints", "model").eval()
    assert isinstance(loaded, LatentDiffusion)
    assert torch.equal(loaded.autoencoder.latent_scale, model.autoencoder.latent_scale)
    assert float(loaded.autoencoder.latent_scale) == pytest.approx(scale, rel=1e-6)
    cond = text_encoder.encode(["a handwritten 3"]).expand(len(images))
    with torch.no_grad():
        z = model.autoencoder.encode(images)
        assert torch.equal(loaded.autoencoder.encode(images), z)
        assert torch.equal(loaded.autoencoder.decode(z), model.autoencoder.decode(z))
        assert torch.equal(loaded.diffusion.eps(z, 321.0, cond), model.diffusion.eps(z, 321.0, cond))
        # without the buffer the model would decode differently: the scale is really used
        loaded.autoencoder.latent_scale.fill_(1.0)
        assert not torch.allclose(loaded.autoencoder.decode(z), model.autoencoder.decode(z), atol=1e-4)


# -- generation ------------------------------------------------------------------------------------------------


def final_latents(model, *args, **kwargs):
    """(images, the sampler's final latents) of model.generate(*args, **kwargs), the latents by its callback."""
    seen = []
    images = model.generate(*args, callback=lambda i, t, z, z0: seen.append(z.clone()), **kwargs)
    return images, seen[-1]


def test_same_seed_same_images_other_seed_other_images(tiny_model):
    a, za = final_latents(tiny_model, "a handwritten 7", n=3, generator=11, steps=4)
    b, zb = final_latents(tiny_model, "a handwritten 7", n=3, generator=11, steps=4)
    c, zc = final_latents(tiny_model, "a handwritten 7", n=3, generator=12, steps=4)
    assert a.shape == (3, 28, 28) and a.dtype == torch.float32 and za.shape == (3, 4, 7, 7)
    assert 0 <= float(a.min()) and float(a.max()) <= 1
    assert torch.equal(a, b) and torch.equal(za, zb)
    assert (za - zc).abs().max() > 0.1 and not torch.equal(a, c)
    torch.testing.assert_close(a, tiny_model.autoencoder.decode(za).clamp(0, 1), atol=0, rtol=0)
    # a generator seeded the same is the same as the seed
    d = tiny_model.generate("a handwritten 7", n=3, generator=torch.Generator().manual_seed(11), steps=4)
    assert torch.equal(a, d)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm++2m", "heun"])
def test_every_sampler_is_deterministic(tiny_model, sampler):
    a = tiny_model.generate(["a photo of a bag", "a handwritten 2"], generator=5, sampler=sampler, steps=3)
    b = tiny_model.generate(["a photo of a bag", "a handwritten 2"], generator=5, sampler=sampler, steps=3)
    assert a.shape == (2, 28, 28) and torch.equal(a, b)


def test_generate_is_the_guided_sampler_then_the_decoder(tiny_model, text_encoder):
    """Recomputed by hand: z_T from the generator, DPM-Solver++ with ε̃ = ε̂(∅) + w (ε̂(c) − ε̂(∅)), decode, clamp."""
    model, n, w, steps = tiny_model, 2, 2.5, 5
    got, z_got = final_latents(model, "a photo of a sneaker", n=n, generator=21, steps=steps, guidance=w,
                               negative="a handwritten 1")
    diff = model.diffusion
    cond = text_encoder.encode(["a photo of a sneaker"]).expand(n)
    neg = text_encoder.encode(["a handwritten 1"]).expand(n)

    def guided(x, t, c):
        e_c, e_n = diff.eps(x, t, c), diff.eps(x, t, neg)
        return e_n + w * (e_c - e_n)

    g = torch.Generator().manual_seed(21)
    with torch.no_grad():
        z_T = torch.randn((n, 4, 7, 7), generator=g)
        z = get_sampler("dpm++2m")(guided, z_T, diff.schedule, steps, g, cond=cond)
        want = model.autoencoder.decode(z).clamp(0, 1)
    torch.testing.assert_close(z_got, z, atol=1e-5, rtol=0)  # the latents (the random decoder flattens images)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    # the prompt and the negative prompt both change the result
    _, z_plain = final_latents(model, "a photo of a sneaker", n=n, generator=21, steps=steps, guidance=w)
    _, z_other = final_latents(model, "a handwritten 4", n=n, generator=21, steps=steps, guidance=w,
                               negative="a handwritten 1")
    assert (z_plain - z).abs().max() > 1e-2 and (z_other - z).abs().max() > 1e-2


def test_prompt_count_and_argument_errors(tiny_model):
    with pytest.raises(DataError):
        tiny_model.generate(["a handwritten 1", "a handwritten 2"], n=3, generator=0, steps=2)
    with pytest.raises(DataError):
        tiny_model.generate("", n=1, generator=0, steps=2)
    with pytest.raises(KakusanError):
        tiny_model.generate("a handwritten 1", n=0, generator=0, steps=2)
    with pytest.raises(KakusanError):
        tiny_model.generate("a handwritten 1", n=1, generator=0, steps=2, sampler="euler")
    with pytest.raises(KakusanError):
        tiny_model.generate("a handwritten 1", n=1, generator=0, steps=2, guidance=float("nan"))
    assert tiny_model.generate(("a handwritten 1", "a bag"), generator=0, steps=2).shape == (2, 28, 28)


def test_config_checks():
    with pytest.raises(KakusanError, match="text encoder"):
        LatentDiffusion(dataclasses.replace(LatentDiffusionConfig(), text_encoder="clip"))
    cfg = LatentDiffusionConfig()
    bad = dataclasses.replace(cfg, diffusion=dataclasses.replace(cfg.diffusion, data_shape=(4, 8, 8)))
    with pytest.raises(KakusanError, match="latent shape"):
        LatentDiffusion(bad)
    tiny = with_denoiser(cfg, channels=(16, 32), attention=(True, True))
    assert tiny.diffusion.denoiser.channels == (16, 32) and tiny.diffusion.denoiser.context_dim == 384
    with pytest.raises(KakusanError):
        with_denoiser(cfg, channels=(16, 32, 64))  # three levels, two attention flags: checked
    assert LatentDiffusion(tiny).image_shape == (28, 28)


# -- the shipped model -------------------------------------------------------------------------------------------


def shipped_weights():
    from kakusan.commands.generate import shipped_model_dir

    path = shipped_model_dir() / "model.safetensors"
    if not path.is_file():
        pytest.skip(f"the shipped prompt → image model {path} does not exist yet (it is being trained; `make model` "
                    "writes it)")
    return path


def test_shipped_model_is_small_and_loads():
    path = shipped_weights()
    assert path.stat().st_size <= SHIPPED_MAX_BYTES, f"{path} is {path.stat().st_size / 1e6:.1f} MB"
    from kakusan.commands.generate import load_prompt_model

    model = load_prompt_model(None)
    assert isinstance(model, LatentDiffusion) and not model.training
    assert float(model.autoencoder.latent_scale) != 1.0  # the fitted scale came with the weights
    images = model.generate("a handwritten 7", n=2, generator=0, steps=4)
    assert images.shape == (2, 28, 28) and 0 <= float(images.min()) and float(images.max()) <= 1

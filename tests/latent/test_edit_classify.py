"""Image to image (kakusan.latent.edit: SDEdit, inpainting), samplers started part-way (t_start), and the diffusion
classifier (kakusan.latent.classify.prompt_scores)."""

import math

import pytest
import torch

from kakusan.diffusion.process import Schedule, ScheduleConfig
from kakusan.diffusion.samplers import SAMPLERS, get_sampler
from kakusan.errors import DataError, KakusanError
from kakusan.latent.classify import classify, prompt_scores
from kakusan.latent.edit import edit

# -- samplers from t_start ---------------------------------------------------------------------------------------


def toy_denoiser(times):
    def denoiser(x, t, cond):
        assert cond == "c"  # passed through untouched
        times.append(float(t[0]))
        assert t.dtype == torch.float64 and t.shape == (len(x),) and (t == t[0]).all()
        return 0.3 * x + 0.01 * t[0].item() / 1000

    return denoiser


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_start_at_t_start(name):
    schedule = Schedule(ScheduleConfig("linear", 1000))
    t_start, steps = 600, 6
    seen, times = [], []
    x = torch.randn((3, 4, 7, 7), generator=torch.Generator().manual_seed(0))
    out = get_sampler(name)(toy_denoiser(times), x, schedule, steps, torch.Generator().manual_seed(1), cond="c",
                            callback=lambda i, t, z, z0: seen.append((i, t)), t_start=t_start)
    assert [i for i, _ in seen] == list(range(steps))
    cb_times = [t for _, t in seen]
    assert all(t < t_start for t in cb_times) and cb_times[-1] == 0
    assert all(a > b for a, b in zip(cb_times, cb_times[1:]))
    assert cb_times == schedule.timesteps(steps, t_start).tolist()[1:]
    assert times[0] == t_start and max(times) == t_start  # the first evaluation is at t_start, none above
    again = get_sampler(name)(toy_denoiser([]), x, schedule, steps, torch.Generator().manual_seed(1), cond="c",
                              t_start=t_start)
    assert torch.equal(out, again) and out.shape == x.shape
    # from t_start = T the run is the plain one
    full = get_sampler(name)(toy_denoiser([]), x, schedule, steps, torch.Generator().manual_seed(1), cond="c")
    from_T = get_sampler(name)(toy_denoiser([]), x, schedule, steps, torch.Generator().manual_seed(1), cond="c",
                               t_start=1000)
    assert torch.equal(full, from_T)


def test_t_start_is_checked():
    schedule = Schedule(ScheduleConfig("linear", 1000))
    run = get_sampler("ddim")
    x = torch.zeros(1, 2)
    for bad in (0, -5, 1001):
        with pytest.raises(KakusanError):
            run(lambda x, t, c: x, x, schedule, 2, t_start=bad)
    with pytest.raises(KakusanError):
        run(lambda x, t, c: x, x, schedule, 11, t_start=10)  # more steps than time steps from t_start
    assert run(lambda x, t, c: x, x, schedule, 10, t_start=10).shape == x.shape


# -- SDEdit and inpainting --------------------------------------------------------------------------------------


class DecodeSpy:
    """Records the latents the autoencoder decodes (the random decoder flattens images: compare latents)."""

    def __init__(self, model):
        self.ae, self.seen = model.autoencoder, []

    def __enter__(self):
        original = type(self.ae).decode

        def decode(z):
            self.seen.append(z.clone())
            return original(self.ae, z)

        self.ae.decode = decode
        return self

    def __exit__(self, *exc):
        del self.ae.decode


def half_mask():
    m = torch.zeros(28, 28)
    m[:, 14:] = 1
    m[3:7, 2:5] = 1  # a small hole on the kept side too
    return m


def test_inpainting_keeps_the_unmasked_pixels_exactly(tiny_model, images):
    m = half_mask()
    with DecodeSpy(tiny_model) as spy:
        out = edit(tiny_model, images, "a handwritten 8", strength=1.0, mask=m, generator=3, steps=4)
    # in the latent grid (4×4 max-pool of the mask) the kept latents end exactly on the image's own
    keep_latent = torch.ones(7, 7, dtype=torch.bool)
    keep_latent[:, 3:] = False
    keep_latent[:2, :2] = False
    with torch.no_grad():
        z0 = tiny_model.autoencoder.encode(images)
    (z,) = spy.seen
    assert torch.equal(z[:, :, keep_latent], z0[:, :, keep_latent])
    assert (z[:, :, ~keep_latent] - z0[:, :, ~keep_latent]).abs().max() > 0.1
    assert out.shape == images.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    keep = (m == 0).expand_as(images)
    assert torch.equal(out[keep], images[keep])
    assert (out[~keep] - images[~keep]).abs().max() > 1e-2  # the masked part is repainted
    # one mask per image
    masks = torch.stack([m, m.flip(-1), torch.zeros(28, 28), torch.ones(28, 28)])
    out = edit(tiny_model, images, "a photo of a bag", strength=0.7, mask=masks, generator=3, steps=4)
    assert torch.equal(out[masks == 0], images[masks == 0])
    assert torch.equal(out[2], images[2])


def test_an_all_ones_mask_is_plain_sdedit(tiny_model, images):
    plain = edit(tiny_model, images, "a handwritten 8", strength=0.5, generator=4, steps=6)
    ones = edit(tiny_model, images, "a handwritten 8", strength=0.5, mask=torch.ones(28, 28), generator=4, steps=6)
    assert torch.equal(plain, ones)
    zeros = edit(tiny_model, images, "a handwritten 8", strength=0.5, mask=torch.zeros(28, 28), generator=4, steps=6)
    assert torch.equal(zeros, images)


def test_sdedit_is_the_sampler_from_the_noised_latents(tiny_model, images):
    """Recomputed by hand (module docstring): ε from the generator, z_t0 = α z0 + σ ε at t0 = round(s·T), the
    guided sampler from t0 over ⌈s·steps⌉ steps, decode."""
    model, strength, steps, w = tiny_model, 0.45, 10, 2.0
    seen = []
    with DecodeSpy(model) as spy:
        got = edit(model, images, "a handwritten 3", strength=strength, generator=9, steps=steps, guidance=w,
                   sampler="ddim")
    diff, ae = model.diffusion, model.autoencoder
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        z0 = ae.encode(images)
        eps = torch.randn(z0.shape, generator=g)
        t0 = round(strength * 1000)
        a, s = (float(v) for v in diff.schedule.alpha_sigma(torch.tensor([t0], dtype=torch.float64)))
        n_steps = math.ceil(strength * steps)
        z = get_sampler("ddim")(model.denoiser(w), a * z0 + s * eps, diff.schedule, n_steps, g,
                                cond=model.encode_text("a handwritten 3").expand(len(images)), t_start=t0,
                                callback=lambda i, t, x, x0: seen.append((t, x.clone())))
        want = ae.decode(z).clamp(0, 1)
    assert len(seen) == n_steps and seen[0][0] < t0
    torch.testing.assert_close(spy.seen[0], z, atol=1e-5, rtol=0)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert (z - z0).abs().max() > 0.1  # the edit did change the latents
    again = edit(model, images, "a handwritten 3", strength=strength, generator=9, steps=steps, guidance=w,
                 sampler="ddim")
    assert torch.equal(got, again)


@pytest.mark.parametrize("strength", [0.0, -0.2, 1.01, 2.0, float("nan")])
def test_strength_outside_0_1_is_an_error(tiny_model, images, strength):
    with pytest.raises(DataError, match="strength"):
        edit(tiny_model, images, "a handwritten 8", strength=strength, generator=0, steps=2)


def test_bad_masks_are_errors(tiny_model, images):
    for mask in (torch.zeros(27, 28), torch.zeros(3, 28, 28), torch.full((28, 28), 0.5)):
        with pytest.raises(DataError):
            edit(tiny_model, images, "a handwritten 8", mask=mask, generator=0, steps=2)


def test_small_strength_takes_one_step_from_a_low_time(tiny_model, images):
    times = []
    model = tiny_model
    original = model.diffusion.eps

    def spy(x, t, cond=None):
        times.append(float(torch.as_tensor(t).reshape(-1)[0]))
        return original(x, t, cond)

    model.diffusion.eps = spy
    try:
        edit(model, images[:1], "a handwritten 8", strength=0.01, generator=0, steps=20)
    finally:
        del model.diffusion.eps
    assert times == [10.0]  # ⌈0.01 · 20⌉ = 1 step from t0 = 10 (guided: one batched call)


# -- the diffusion classifier ------------------------------------------------------------------------------------


PROMPTS = ["a handwritten 1", "a photo of a sneaker", "a handwritten 1", "a pair of trousers"]


def test_prompt_scores_equal_a_direct_recomputation(tiny_model, text_encoder, images):
    """The docstring's draw order: u (n, M) float64, then ε (n, M, 4, 7, 7); t_m = ⌊1 + (m + u)·T/M⌋ clamped to
    [1, T]; score = −mean_m ‖ε_m − ε̂(α z0 + σ ε_m, t_m, c_k)‖² / D, each prompt encoded on its own here."""
    model, M = tiny_model, 6
    x = images[:2]
    scores = prompt_scores(model, x, PROMPTS, samples=M, generator=13)
    assert scores.shape == (2, len(PROMPTS)) and scores.dtype == torch.float64
    diff, T = model.diffusion, model.diffusion.schedule.T
    g = torch.Generator().manual_seed(13)
    with torch.no_grad():
        z0 = model.autoencoder.encode(x)
        u = torch.rand((2, M), generator=g, dtype=torch.float64)
        eps = torch.randn((2, M, 4, 7, 7), generator=g)
        for i in range(2):
            for k, p in enumerate(PROMPTS):
                cond = text_encoder.encode([p])
                errs = []
                for m in range(M):
                    t = min(T, max(1, math.floor(1 + (m + float(u[i, m])) * T / M)))
                    assert (m * T / M) < t <= ((m + 1) * T / M) + 1  # stratified
                    a, s = (float(v) for v in diff.schedule.alpha_sigma(torch.tensor([t], dtype=torch.float64)))
                    z_t = a * z0[i:i + 1] + s * eps[i, m:m + 1]
                    e = diff.eps(z_t, float(t), cond)
                    errs.append(float(((e - eps[i, m:m + 1]) ** 2).mean()))
                assert scores[i, k].item() == pytest.approx(-sum(errs) / M, rel=1e-5, abs=1e-7)
    # identical prompts, identical scores (the same draws); different prompts, different scores
    assert torch.equal(scores[:, 0], scores[:, 2])
    assert (scores[:, 0] - scores[:, 1]).abs().min() > 1e-6


def test_scores_do_not_depend_on_batching_and_are_deterministic(tiny_model, images):
    a = prompt_scores(tiny_model, images, PROMPTS, samples=4, generator=2)
    b = prompt_scores(tiny_model, images, PROMPTS, samples=4, generator=2, batch_size=3)
    c = prompt_scores(tiny_model, images, PROMPTS, samples=4, generator=3)
    assert a.shape == (len(images), len(PROMPTS))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    assert not torch.equal(a, c)
    assert torch.equal(a, prompt_scores(tiny_model, images, PROMPTS, samples=4, generator=2))
    assert torch.equal(classify(tiny_model, images, PROMPTS, samples=4, generator=2), a.argmax(1))
    with pytest.raises(KakusanError):
        prompt_scores(tiny_model, images, PROMPTS, samples=0)

"""TextCondition (cat, take, expand), a text-conditional UNet's masking of padding, and classifier-free guidance
with text conditions (the empty prompt, or a negative prompt, as the null)."""

import pytest
import torch

from kakusan.diffusion.conditioning import TextCondition, cat_cond
from kakusan.diffusion.guidance import classifier_free
from kakusan.diffusion.model import Diffusion, DiffusionConfig
from kakusan.diffusion.unet import UNet, UNetConfig
from kakusan.errors import DataError, KakusanError

D = 12  # context width of the small synthetic conditions


def random_cond(n: int, S: int, d: int = D, seed: int = 0, lengths=None) -> TextCondition:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn((n, S, d), generator=g)
    lengths = [S] * n if lengths is None else lengths
    mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]
    return TextCondition(tokens, mask, torch.randn((n, d), generator=g))


def randomized_unet(context_dim: int = D, seed: int = 0) -> UNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UNet(UNetConfig(channels=(16, 32), attention=(True, True), groups=8, time_dim=16,
                              context_dim=context_dim), (4, 7, 7), 1000)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # the output layers start at zero: make every weight matter
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return net.eval()


# -- TextCondition --------------------------------------------------------------------------------------------


def test_cat_pads_the_token_axis_and_masks_the_padding():
    a, b = random_cond(2, 3, seed=1, lengths=[3, 2]), random_cond(3, 5, seed=2, lengths=[5, 1, 4])
    c = TextCondition.cat([a, b])
    assert len(c) == 5 and c.tokens.shape == (5, 5, D) and c.mask.shape == (5, 5) and c.pooled.shape == (5, D)
    assert torch.equal(c.tokens[:2, :3], a.tokens) and torch.equal(c.tokens[2:], b.tokens)
    assert not c.tokens[:2, 3:].any()  # the padding: zeros ...
    assert torch.equal(c.mask[:2, :3], a.mask) and not c.mask[:2, 3:].any()  # ... and masked
    assert torch.equal(c.mask[2:], b.mask)
    assert torch.equal(c.pooled, torch.cat([a.pooled, b.pooled]))
    assert c.mask.sum(1).tolist() == [3, 2, 5, 1, 4]
    # cat_cond: text conditions through cat, labels through torch.cat
    assert torch.equal(cat_cond(a, b).tokens, c.tokens)
    assert torch.equal(cat_cond(torch.tensor([1, 2]), torch.tensor([3])), torch.tensor([1, 2, 3]))


def test_take_and_expand():
    c = random_cond(3, 4, seed=3, lengths=[4, 2, 3])
    t = c.take(torch.tensor([2, 0, 2]))
    for row, src in enumerate([2, 0, 2]):
        assert torch.equal(t.tokens[row], c.tokens[src]) and torch.equal(t.mask[row], c.mask[src])
        assert torch.equal(t.pooled[row], c.pooled[src])
    one = c.take(torch.tensor([1]))
    e = one.expand(4)
    assert len(e) == 4 and e.tokens.shape == (4, 4, D)
    for row in range(4):
        assert torch.equal(e.tokens[row], c.tokens[1]) and torch.equal(e.mask[row], c.mask[1])
        assert torch.equal(e.pooled[row], c.pooled[1])
    assert e.tokens.data_ptr() == one.tokens.data_ptr()  # a view, no copy
    assert c.expand(3) is c
    with pytest.raises(DataError):
        c.expand(2)


def test_invalid_conditions_are_rejected():
    tokens, pooled = torch.zeros(2, 3, D), torch.zeros(2, D)
    with pytest.raises(DataError):
        TextCondition(tokens, torch.ones(2, 3), pooled)  # mask not bool
    with pytest.raises(DataError):
        TextCondition(tokens, torch.ones(2, 4, dtype=torch.bool), pooled)
    with pytest.raises(DataError):
        TextCondition(tokens, torch.ones(2, 3, dtype=torch.bool), torch.zeros(3, D))
    c = random_cond(2, 3).to(dtype=torch.float64)
    assert c.tokens.dtype == torch.float64 and c.pooled.dtype == torch.float64 and c.mask.dtype == torch.bool


# -- the UNet's cross-attention --------------------------------------------------------------------------------


def test_masked_padding_tokens_do_not_change_the_output():
    net = randomized_unet()
    g = torch.Generator().manual_seed(5)
    x, t = torch.randn((3, 4, 7, 7), generator=g), torch.tensor([10.0, 500.0, 990.0])
    cond = random_cond(3, 4, seed=6, lengths=[4, 2, 3])
    with torch.no_grad():
        out = net(x, t, cond)
        # append masked garbage tokens (large values) and change the padding already there
        garbage = 100 * torch.randn((3, 5, D), generator=g)
        tokens = torch.cat([cond.tokens, garbage], 1)
        tokens[~torch.cat([cond.mask, torch.zeros(3, 5, dtype=torch.bool)], 1)] += 50.0
        padded = TextCondition(tokens, torch.cat([cond.mask, torch.zeros(3, 5, dtype=torch.bool)], 1), cond.pooled)
        out_padded = net(x, t, padded)
        # each row on its own, without any padding at all
        alone = torch.cat([net(x[i:i + 1], t[i:i + 1], TextCondition(cond.tokens[i:i + 1, :L], cond.mask[i:i + 1, :L],
                                                                      cond.pooled[i:i + 1]))
                           for i, L in enumerate([4, 2, 3])])
    assert out.abs().max() > 0.1  # a real, non-trivial output
    torch.testing.assert_close(out_padded, out, atol=1e-6, rtol=0)
    torch.testing.assert_close(alone, out, atol=5e-6, rtol=0)  # batch of 1 against 3: float rounding only


def test_the_output_depends_on_the_prompt():
    net = randomized_unet()
    g = torch.Generator().manual_seed(8)
    x, t = torch.randn((2, 4, 7, 7), generator=g), torch.tensor([300.0, 300.0])
    cond = random_cond(2, 4, seed=9)
    other_tokens = TextCondition(random_cond(2, 4, seed=10).tokens, cond.mask, cond.pooled)
    other_pooled = TextCondition(cond.tokens, cond.mask, random_cond(2, 4, seed=11).pooled)
    fewer = TextCondition(cond.tokens, torch.tensor([[True, True, False, False]] * 2), cond.pooled)
    with torch.no_grad():
        out = net(x, t, cond)
        for changed in (other_tokens, other_pooled, fewer):
            assert (net(x, t, changed) - out).abs().max() > 1e-3
    with pytest.raises(DataError):
        net(x, t, None)  # a text-conditional net needs a TextCondition


def test_check_cond_for_text_and_label_models():
    text = Diffusion(DiffusionConfig(data_shape=(4, 7, 7), denoiser=UNetConfig(
        channels=(16, 32), attention=(True, True), time_dim=16, context_dim=D)))
    labels = Diffusion(DiffusionConfig(data_shape=(4, 7, 7), n_classes=3, denoiser=UNetConfig(
        channels=(16, 32), attention=(False, True), time_dim=16)))
    one = random_cond(1, 3)
    got = text.check_cond(one, 4)
    assert len(got) == 4 and torch.equal(got.tokens[3], one.tokens[0])
    with pytest.raises(DataError):
        text.check_cond(torch.tensor([0, 1, 2, 0]), 4)
    with pytest.raises(DataError):
        text.check_cond(None, 4)
    with pytest.raises(KakusanError):
        labels.check_cond(one, 4)
    with pytest.raises(KakusanError):
        UNetConfig(channels=(16, 32), attention=(False, False), context_dim=D).check()


# -- classifier-free guidance ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guided_setup(tiny_model, text_encoder):
    g = torch.Generator().manual_seed(12)
    n = 3
    x = torch.randn((n, 4, 7, 7), generator=g)
    cond = text_encoder.encode(["a handwritten 7", "a photo of a sneaker", "a pair of trousers"])
    null = text_encoder.null()
    return tiny_model, x, cond, null


@pytest.mark.parametrize("t", [400.0, "tensor"])
def test_guidance_identities_with_text(guided_setup, t):
    model, x, cond, null = guided_setup
    diff = model.diffusion
    n = len(x)
    t = torch.tensor([50.0, 400.0, 900.0], dtype=torch.float64) if t == "tensor" else t
    with torch.no_grad():
        e_cond = diff.eps(x, t, cond)
        e_null = diff.eps(x, t, null.expand(n))
        assert (e_cond - e_null).abs().max() > 1e-3  # the prompt matters in this model
        torch.testing.assert_close(diff.denoiser(1.0, clip_x0=False, null=null)(x, t, cond), e_cond,
                                   atol=1e-6, rtol=0)
        torch.testing.assert_close(diff.denoiser(0.0, clip_x0=False, null=null)(x, t, cond), e_null,
                                   atol=1e-6, rtol=0)
        for w in (3.0, 0.5, -1.0):
            by_hand = e_null + w * (e_cond - e_null)
            torch.testing.assert_close(diff.denoiser(w, clip_x0=False, null=null)(x, t, cond), by_hand,
                                       atol=2e-5, rtol=0)
        # one prompt for all rows: expanded
        one = cond.take(torch.tensor([1]))
        torch.testing.assert_close(diff.denoiser(2.0, clip_x0=False, null=null)(x, t, one),
                                   2 * diff.eps(x, t, one.expand(n)) - e_null, atol=2e-5, rtol=0)


def test_negative_prompt_replaces_the_null(guided_setup, text_encoder):
    model, x, cond, null = guided_setup
    diff = model.diffusion
    n = len(x)
    t = 250.0
    neg = text_encoder.encode(["a blurry smudge"])
    with torch.no_grad():
        e_cond = diff.eps(x, t, cond)
        e_neg = diff.eps(x, t, neg.expand(n))
        e_null = diff.eps(x, t, null.expand(n))
        assert (e_neg - e_null).abs().max() > 1e-3
        w = 3.0
        want = e_neg + w * (e_cond - e_neg)
        torch.testing.assert_close(diff.denoiser(w, clip_x0=False, null=neg)(x, t, cond), want, atol=2e-5, rtol=0)
        # LatentDiffusion.denoiser: a negative prompt string, its TextCondition, or none / blank (the empty prompt)
        torch.testing.assert_close(model.denoiser(w, negative="a blurry smudge")(x, t, cond), want, atol=2e-5, rtol=0)
        torch.testing.assert_close(model.denoiser(w, negative=neg)(x, t, cond), want, atol=2e-5, rtol=0)
        plain = e_null + w * (e_cond - e_null)
        for negative in (None, "", "   "):
            torch.testing.assert_close(model.denoiser(w, negative=negative)(x, t, cond), plain, atol=2e-5, rtol=0)
        with pytest.raises(DataError):
            model.denoiser(w, negative="bad\x07negative")


def test_guidance_weight_is_checked():
    null = random_cond(1, 2)
    for w in (float("nan"), float("inf"), True, "3"):
        with pytest.raises(KakusanError):
            classifier_free(lambda x, t, c: x, w, null)

"""Captions of the 20 joint classes (kakusan.data.captions) and the caption draw of stage two
(kakusan.latent.training.CaptionedLoss.pick): blocks, drop rate, uniformity, draw order."""

import math

import numpy as np
import pytest
import torch

from kakusan.data import captions as C
from kakusan.diffusion.conditioning import TextCondition
from kakusan.errors import KakusanError
from kakusan.latent.training import CaptionedLoss, caption_conditions


def fake_captions(n_rows: int) -> TextCondition:
    """A stand-in for the encoded captions: pick only uses its length (the last row is the empty caption)."""
    return TextCondition(torch.zeros(n_rows, 2, 4), torch.ones(n_rows, 2, dtype=torch.bool), torch.zeros(n_rows, 4))


@pytest.fixture(scope="module")
def table():
    texts, labels = C.training_captions()
    offsets, counts = C.caption_table()
    return texts, labels, offsets, counts


# -- the captions ------------------------------------------------------------------------------------------


def test_synonyms_templates_and_blocks(table):
    texts, labels, offsets, counts = table
    assert len(C.SYNONYMS) == C.N_CLASSES == len(C.HELD_OUT_SYNONYMS) == 20
    assert all(len(s) >= 2 for s in C.SYNONYMS)
    for dom in C.DOMAINS:
        assert len(C.TEMPLATES[dom]) >= 5
        assert all(t.count("{}") == 1 for t in C.TEMPLATES[dom] + C.HELD_OUT_TEMPLATES[dom])
    assert labels.dtype == np.int64 and len(texts) == len(labels) == int(counts.sum())
    assert offsets[0] == 0 and np.array_equal(offsets[1:], np.cumsum(counts)[:-1])
    for c in range(C.N_CLASSES):
        block = slice(offsets[c], offsets[c] + counts[c])
        assert texts[block] == C.captions(c, "train")
        assert (labels[block] == c).all()
        dom = C.domain_of(c)
        assert counts[c] == len(C.TEMPLATES[dom]) * len(C.SYNONYMS[c])
    assert len(set(texts)) == len(texts)  # no caption names two classes (or one twice)


def test_held_out_captions_never_occur_in_training(table):
    texts = set(table[0])
    held = [p for c in range(C.N_CLASSES) for p in C.captions(c, "held-out")]
    assert held and not texts & set(held)
    assert len(set(held)) == len(held)
    for c in range(C.N_CLASSES):
        assert len(C.captions(c, "held-out")) >= 3
        # every held-out caption uses a held-out template or a held-out synonym
        dom = C.domain_of(c)
        fill = getattr(C, "fill", None) or (lambda t, s: t.format(s))  # fill: with "a"/"an" agreement
        for p in C.captions(c, "held-out"):
            assert any(h in p for h in C.HELD_OUT_SYNONYMS[c]) or any(
                p == fill(t, s) for t in C.HELD_OUT_TEMPLATES[dom] for s in C.SYNONYMS[c]), p


def test_domains_and_class_prompts():
    assert [C.domain_of(c) for c in (0, 9, 10, 19)] == ["mnist", "mnist", "fashion-mnist", "fashion-mnist"]
    for bad in (-1, 20):
        with pytest.raises(ValueError):
            C.domain_of(bad)
    with pytest.raises(ValueError):
        C.captions(3, "test")
    assert C.class_prompt(7) == "a handwritten 7"
    assert C.class_prompt(17) == "a photo of a sneaker"
    for c in range(C.N_CLASSES):
        assert C.class_prompt(c) in C.captions(c, "train")


def test_caption_conditions_are_the_encoded_captions_then_the_empty_one(text_encoder, table):
    texts, _, offsets, counts = table
    conds, off, cnt = caption_conditions(text_encoder)
    assert len(conds) == len(texts) + 1
    assert np.array_equal(off, offsets) and np.array_equal(cnt, counts)
    null = text_encoder.null()
    assert conds.mask[-1].sum() == 2 and torch.allclose(conds.pooled[-1], null.pooled[0], atol=1e-5)
    for c in (0, 13, 19):
        i = int(offsets[c]) + 1
        ref = text_encoder.encode([texts[i]])
        assert torch.allclose(conds.pooled[i], ref.pooled[0], atol=1e-5)
        L = int(ref.mask.sum())
        assert conds.mask[i].sum() == L and torch.allclose(conds.tokens[i, :L], ref.tokens[0], atol=1e-5)


# -- CaptionedLoss.pick --------------------------------------------------------------------------------------


N_DRAWS = 20_000


def make_loss(table, drop: float) -> CaptionedLoss:
    texts, _, offsets, counts = table
    return CaptionedLoss(fake_captions(len(texts) + 1), offsets, counts, caption_drop=drop)


def test_picks_lie_in_their_class_block_or_are_the_null(table):
    loss = make_loss(table, 0.1)
    _, _, offsets, counts = table
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, C.N_CLASSES, (N_DRAWS,), generator=torch.Generator().manual_seed(1))
    idx = loss.pick(labels, g).numpy()
    lab = labels.numpy()
    assert loss.null_index == len(table[0])
    null = idx == loss.null_index
    inside = (idx >= offsets[lab]) & (idx < offsets[lab] + counts[lab])
    assert (null | inside).all()
    # the drop rate: within 4 binomial standard errors of caption_drop
    p = 0.1
    assert abs(null.mean() - p) < 4 * math.sqrt(p * (1 - p) / N_DRAWS)


@pytest.mark.parametrize("drop", [0.0, 0.3])
def test_drop_rate_and_draw_order(table, drop):
    """pick draws the caption uniforms (n,), then the drop uniforms (n,): recomputed from the same generator."""
    loss = make_loss(table, drop)
    _, _, offsets, counts = table
    labels = torch.randint(0, C.N_CLASSES, (N_DRAWS,), generator=torch.Generator().manual_seed(2))
    idx = loss.pick(labels, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    u, v = torch.rand(N_DRAWS, generator=g), torch.rand(N_DRAWS, generator=g)
    off, cnt = torch.as_tensor(offsets)[labels], torch.as_tensor(counts)[labels]
    want = torch.where(v < drop, torch.tensor(loss.null_index), off + torch.floor(u * cnt).long())
    assert torch.equal(idx, want)
    rate = float((idx == loss.null_index).double().mean())
    assert abs(rate - drop) <= 4 * math.sqrt(drop * (1 - drop) / N_DRAWS)
    if drop == 0:
        assert rate == 0


@pytest.mark.parametrize("label", [7, 16])
def test_caption_choice_is_uniform_within_a_class(table, label):
    loss = make_loss(table, 0.1)
    _, _, offsets, counts = table
    labels = torch.full((N_DRAWS,), label)
    idx = loss.pick(labels, torch.Generator().manual_seed(label)).numpy()
    kept = idx[idx != loss.null_index] - offsets[label]
    k = int(counts[label])
    assert kept.min() >= 0 and kept.max() < k
    observed = np.bincount(kept, minlength=k)
    expected = len(kept) / k
    # per cell: within 4.5 binomial standard errors; and Pearson's chi-square below its 1e-6 upper quantile
    se = math.sqrt(expected * (1 - 1 / k))
    assert (np.abs(observed - expected) < 4.5 * se).all(), observed
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    from scipy.stats import chi2 as chi2_dist

    assert chi2 < chi2_dist.isf(1e-6, k - 1), chi2


def test_caption_drop_must_lie_in_0_1(table):
    texts, _, offsets, counts = table
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(KakusanError):
            CaptionedLoss(fake_captions(len(texts) + 1), offsets, counts, caption_drop=bad)


def test_the_loss_trains_on_the_picked_captions(tiny_model, text_encoder):
    """CaptionedLoss(model, (z, labels), g) is DiffusionLoss on the picked captions, with the same generator."""
    from kakusan.diffusion.objectives import DiffusionLoss

    texts = ["a handwritten 0", "the digit 0", "a handwritten 1", "the digit 1", "a handwritten 2"]
    captions = TextCondition.cat([text_encoder.encode(texts), text_encoder.null()])
    loss = CaptionedLoss(captions, [0, 2, 4], [2, 2, 1], caption_drop=0.25)
    g0 = torch.Generator().manual_seed(4)
    z = torch.randn((6, 4, 7, 7), generator=g0)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    with torch.no_grad():
        got = loss(tiny_model.diffusion, (z, labels), torch.Generator().manual_seed(5))
        g = torch.Generator().manual_seed(5)
        idx = loss.pick(labels, g)
        want = DiffusionLoss("simple", cond_drop=0.0)(tiny_model.diffusion, {"x": z, "cond": captions.take(idx)}, g)
    assert torch.isfinite(got.loss) and float(got.loss) == float(want.loss)

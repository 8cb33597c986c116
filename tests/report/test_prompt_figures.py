"""Figures of the prompt → image chapter (kakusan.report.prompt): each writes a PNG of plausible size, the drawing
functions share z_T across rows and columns as they say, and bad input gets a one-line DataError."""

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from kakusan.errors import DataError, KakusanError
from kakusan.report import prompt as report


@pytest.fixture(scope="module")
def model():
    """A tiny LatentDiffusion with every denoiser weight perturbed (a fresh UNet's zero-initialised output layers
    would ignore the prompt and the noise) and a latent scale of 2."""
    from kakusan.latent.model import LatentDiffusion, LatentDiffusionConfig, with_denoiser

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = LatentDiffusion(with_denoiser(LatentDiffusionConfig(), channels=(16, 32), attention=(True, True)))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        m.autoencoder.latent_scale.fill_(2.0)
    return m.eval()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(3)
    x = 0.3 * torch.rand((4, 28, 28), generator=g)
    x[:, 8:20, 10:18] += 0.6
    return x.clamp(0, 1)


def png(path, min_height=60, min_width=100):
    """The PNG at ``path``, checked to be a real picture of at least this many pixels; returns its array."""
    assert path.exists() and path.stat().st_size > 2000
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] >= min_height and img.shape[1] >= min_width
    assert img[..., :3].std() > 0.01  # not blank
    return img


def test_prompt_grid_writes_one_row_per_prompt_and_is_deterministic(model, tmp_path):
    prompts = ["a handwritten 7", "a photo of an ankle boot", "someone wrote a 3 by hand"]
    a = report.prompt_grid(model, prompts, tmp_path / "a.png", n_per_prompt=4, seed=5, steps=2)
    b = report.prompt_grid(model, prompts, tmp_path / "b.png", n_per_prompt=4, seed=5, steps=2)
    c = report.prompt_grid(model, prompts, tmp_path / "c.png", n_per_prompt=4, seed=6, steps=2)
    img = png(a, min_height=150, min_width=250)
    assert img.shape[0] > img.shape[1] / 4  # three rows, not one strip
    assert np.array_equal(imread(a), imread(b))
    assert not np.array_equal(imread(a), imread(c))
    assert report.prompt_grid(model, "a pair of trousers", tmp_path / "one.png", n_per_prompt=2, steps=1).exists()


def test_rows_share_the_noise_of_each_column_and_match_generate(model):
    z = report._noise(model, 3, 11)
    rows = report._draw(model, ["a handwritten 7", "a handwritten 7", "a bag"], z, guidance=2.0, steps=2,
                        sampler="dpm++2m")
    assert rows.shape == (3, 3, 28, 28)
    torch.testing.assert_close(rows[0], rows[1])  # same prompt, same z_T per column: the same images
    assert not torch.allclose(rows[0], rows[2], atol=1e-4)  # the prompt matters
    assert not torch.allclose(rows[0, 0], rows[0, 1], atol=1e-4)  # the columns' noises differ
    direct = model.generate("a bag", n=3, steps=2, guidance=2.0, z_T=z)
    torch.testing.assert_close(rows[2], direct, atol=1e-5, rtol=1e-5)


def test_guidance_sweep_writes_a_column_per_weight(model, tmp_path):
    one = png(report.guidance_sweep(model, "a handwritten 7", tmp_path / "s1.png", guidances=(0, 1, 4), n=4,
                                    steps=2), min_width=250)
    two = png(report.guidance_sweep(model, ["a handwritten 7", "a sneaker"], tmp_path / "s2.png", guidances=(0, 1, 4),
                                    n=4, steps=2), min_width=250)
    assert two.shape[0] > one.shape[0]  # one row of cells per prompt
    with pytest.raises(DataError, match="no guidance weights"):
        report.guidance_sweep(model, "a bag", tmp_path / "x.png", guidances=())
    with pytest.raises(DataError, match="guidance"):
        report.guidance_sweep(model, "a bag", tmp_path / "x.png", guidances=(1, -2))


def test_drawing_rejects_bad_prompts_and_counts(model, tmp_path):
    with pytest.raises(DataError, match="no prompts"):
        report.prompt_grid(model, [], tmp_path / "x.png")
    with pytest.raises(DataError, match="empty"):
        report.prompt_grid(model, ["a bag", "  "], tmp_path / "x.png")
    with pytest.raises(KakusanError, match="n_per_prompt"):
        report.prompt_grid(model, ["a bag"], tmp_path / "x.png", n_per_prompt=0)
    with pytest.raises(DataError, match="guidance"):
        report.prompt_grid(model, ["a bag"], tmp_path / "x.png", guidance=float("nan"))
    assert not (tmp_path / "x.png").exists()


def test_paraphrase_table_sorts_and_checks_its_rows(tmp_path):
    rows = [("someone wrote a 7 by hand", "7", 0.95), ("a tote bag", "Bag", 0.42, 50),
            ("look at this gown", "Dress", 0.81, 50)]
    png(report.paraphrase_table(rows, tmp_path / "p.png"), min_width=300)
    with pytest.raises(DataError, match="no rows"):
        report.paraphrase_table([], tmp_path / "x.png")
    with pytest.raises(DataError, match=r"fractions in \[0, 1\].*percentages"):
        report.paraphrase_table([("a gown", "Dress", 81)], tmp_path / "x.png")
    with pytest.raises(DataError, match="each row"):
        report.paraphrase_table([("a gown", 0.8)], tmp_path / "x.png")
    with pytest.raises(DataError, match="n_images"):
        report.paraphrase_table([("a gown", "Dress", 0.8, 0)], tmp_path / "x.png")


def test_confusion_figure_names_classes_and_checks_the_matrix(tmp_path):
    counts = np.random.default_rng(0).integers(0, 4, (20, 20)) + np.diag(np.full(20, 25))
    png(report.confusion_figure(counts, None, tmp_path / "c20.png", "20-way"), min_height=400, min_width=400)
    png(report.confusion_figure(torch.eye(10), range(10, 20), tmp_path / "c10.png", normalise=False))
    assert report.class_names()[10] == "T-shirt/top" and report.class_names(10)[-1] == "9"
    with pytest.raises(DataError, match="square"):
        report.confusion_figure(np.ones((3, 4)), ["a", "b", "c"], tmp_path / "x.png")
    with pytest.raises(DataError, match="square"):
        report.confusion_figure(np.ones(3), ["a", "b", "c"], tmp_path / "x.png")
    with pytest.raises(DataError, match="2 labels"):
        report.confusion_figure(np.eye(3), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(DataError, match="give the labels"):
        report.confusion_figure(np.eye(3), None, tmp_path / "x.png")
    with pytest.raises(DataError, match="≥ 0"):
        report.confusion_figure(-np.eye(2), ["a", "b"], tmp_path / "x.png")


def test_edit_and_ranking_figures(images, tmp_path):
    mask = torch.zeros(28, 28)
    mask[:, 14:] = 1
    flipped = images.flip(-1)
    plain = png(report.edit_figure(images, flipped, tmp_path / "e1.png"))
    rows = png(report.edit_figure(images, {"strength 0.3": flipped, "strength 0.9": 1 - images},
                                  tmp_path / "e2.png", mask=mask, title="towards “a bag”"))
    assert rows.shape[0] > plain.shape[0]  # four rows against two
    with pytest.raises(DataError, match="one edit per original"):
        report.edit_figure(images, images[:2], tmp_path / "x.png")
    with pytest.raises(DataError, match="only 0"):
        report.edit_figure(images, images, tmp_path / "x.png", mask=torch.full((28, 28), 0.5))
    with pytest.raises(DataError, match="labels"):
        report.edit_figure(images, images, tmp_path / "x.png", labels=["only one"])
    scores = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    png(report.ranking_figure(images, scores, ["a 1", "a 2", "a bag"], tmp_path / "r.png", truth=[0, 1, 2, 0]))
    with pytest.raises(DataError, match="shape"):
        report.ranking_figure(images, scores[:, :2], ["a 1", "a 2", "a bag"], tmp_path / "x.png")


# -- the tour's chapter (kakusan.tour.prompt), which draws with these figures ------------------------------------


def tour_context(tmp_path):
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import make_generator
    from kakusan.tour import TourContext

    return TourContext(run=RunDir.create("tour", tmp_path / "tour"), size="tiny", generator=make_generator(0))


def test_tour_chapter_says_how_to_make_the_model_when_it_is_missing(tmp_path, monkeypatch):
    import kakusan.commands.generate as generate
    from kakusan.tour import CHAPTERS, PLANNED
    from kakusan.tour import prompt as chapter

    def missing(source, device="cpu"):
        raise KakusanError("the shipped prompt → image model is missing from /x: run `make model`")

    monkeypatch.setattr(generate, "load_prompt_model", missing)
    sec = chapter.section(tour_context(tmp_path))
    assert CHAPTERS[-1] == "prompt" and not PLANNED
    assert not sec.figures and "<code>make model</code>" in sec.paragraphs[-1]
    assert "missing from /x" in sec.paragraphs[-1]


def test_tour_chapter_draws_its_figures_with_a_model(model, tmp_path, monkeypatch):
    import kakusan.commands.generate as generate
    from kakusan.tour import prompt as chapter

    monkeypatch.setattr(generate, "load_prompt_model", lambda source, device="cpu": model)
    sec = chapter.section(tour_context(tmp_path))
    assert [p.name for p, _ in sec.figures] == ["prompt_grid.png", "prompt_guidance.png", "prompt_classifier.png"]
    for p, _ in sec.figures:
        png(p)
    assert 0 <= sec.numbers["diffusion classifier: 20-way accuracy on 4 generated images"] <= 1
    assert any(k.startswith("seconds per 16 images") for k in sec.numbers)
    again = chapter.section(tour_context(tmp_path / "again"))  # the same seed: the same pictures
    for (a, _), (b, _) in zip(sec.figures, again.figures):
        assert np.array_equal(imread(a), imread(b))

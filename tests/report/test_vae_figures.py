"""The VAE figures: each writes a PNG of the expected layout from a tiny model or plain numbers."""

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from kakusan.report import vae as report
from kakusan.vae import VAE, GaussianConfig, MLPConfig, VAEConfig


def tiny(shape=(8, 8), n_latent=2, likelihood=None):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        extra = {} if likelihood is None else {"likelihood": likelihood}
        return VAE(VAEConfig(shape, n_latent, MLPConfig((8,)), MLPConfig((8,)), **extra)).eval()


def test_image_shapes_and_value_ranges():
    assert report.image_shape(tiny()) == (8, 8)
    assert report.image_shape(tiny((64,))) == (8, 8)  # square vectors are drawn as images
    assert report.image_shape(tiny((5,))) is None and report.image_shape(tiny((9,))) is None  # 3×3 is too small
    assert report.value_range(torch.rand(3, 4)) == (0.0, 1.0)
    assert report.value_range(torch.tensor([-2.0, 3.0])) == (-2.0, 3.0)
    assert report.as_images(torch.zeros(2, 1, 4, 4), (1, 4, 4)).shape == (2, 4, 4)


def test_samples_and_reconstructions_grids(tmp_path):
    model = tiny()
    x = torch.bernoulli(torch.full((5, 8, 8), 0.3), generator=torch.Generator().manual_seed(1))
    scale = report._scale((8, 8))
    s = imread(report.samples_figure(model.sample(9, generator=0), tmp_path / "s.png", (8, 8)))
    assert s.shape[:2] == (scale * (3 * 9 + 1), scale * (3 * 9 + 1))
    r = imread(report.reconstructions_figure(x, model.reconstruct(x), tmp_path / "r.png", (8, 8), per_row=3))
    assert r.shape[:2] == (scale * (4 * 9 + 1), scale * (3 * 9 + 1))  # 2 blocks of (originals, reconstructions)


def test_latent_map_two_panels_for_images_one_for_vectors(tmp_path):
    x = torch.bernoulli(torch.full((40, 8, 8), 0.3), generator=torch.Generator().manual_seed(1))
    wide = imread(report.latent_map_figure(tiny(), x, torch.arange(40) % 10, tmp_path / "m.png", grid=5))
    v = torch.randn(40, 5, generator=torch.Generator().manual_seed(2))
    narrow = imread(report.latent_map_figure(tiny((5,), likelihood=GaussianConfig()), v, None, tmp_path / "v.png"))
    assert wide.shape[1] > 1.6 * narrow.shape[1]


def test_bound_kl_and_training_figures(tmp_path):
    bounds = {1: (-30.0, 0.5), 5: (-29.0, 0.5), 50: (-28.5, 0.5)}
    assert report.bound_figure(bounds, tmp_path / "b.png", elbo=-30.2, exact=-28.0).stat().st_size > 0
    kl = {"z1": torch.tensor([3.0, 0.0, 1.0]), "z2": torch.tensor([0.5, 0.0])}
    active = {"z1": torch.tensor([True, False, True]), "z2": torch.tensor([True, False])}
    path = report.kl_units_figure(kl, tmp_path / "k.png", active=active, title="KL")
    assert imread(path).shape[1] > imread(report.kl_units_figure({"z": kl["z1"]}, tmp_path / "k1.png")).shape[1]
    history = [{"step": 10, "loss": 1.0, "elbo": -40.0}, {"step": 20, "loss": 1.0, "elbo": -35.0}]
    evals = [{"epoch": 0.0, "test_elbo": -44.0}, {"epoch": 2.0, "test_elbo": -36.0, "test_elbo_ema": -37.0}]
    assert report.training_figure(evals, history, tmp_path / "t.png", steps_per_epoch=10).exists()
    assert report.training_figure([], [], tmp_path / "none.png", steps_per_epoch=10) is None


@pytest.mark.parametrize("n", [1, 16, 17])
def test_reconstruction_rows_of_any_length(tmp_path, n):
    x = torch.rand(n, 4, 4)
    img = imread(report.reconstructions_figure(x, x, tmp_path / "r.png", (4, 4)))
    rows = 2 * -(-n // 16)
    assert img.shape[0] == report._scale((4, 4)) * (rows * 5 + 1)
    assert np.isfinite(img).all()


def test_training_figures_of_a_run_without_a_test_split_show_its_evaluations(tmp_path):
    """Data without a test split log train_* evaluations (kakusan.commands.splits): the curves still appear."""
    from kakusan.report import diffusion

    evals = [{"eval": True, "epoch": e, "step": 10 * e, "train_elbo": -50.0 + e, "train_mse": 1.0 / (e + 1)}
             for e in range(3)]
    assert report.training_figure(evals, [], tmp_path / "v.png", steps_per_epoch=10).exists()
    assert diffusion.training_figure(evals, [], tmp_path / "d.png", steps_per_epoch=10).exists()

"""The diffusion figures' numbers: the VLB's per-t terms in bits/dim, as plotted, sum to the bound the library
reports — with the exact Gaussian-mixture denoiser (continuous data, with and without a Jacobian; 8-bit data) and a
tiny conditional network."""

import math

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from kakusan.diffusion.model import Diffusion, DiffusionConfig
from kakusan.diffusion.nets import MLPDenoiserConfig
from kakusan.diffusion.process import Schedule, ScheduleConfig
from kakusan.diffusion.truth import MixtureTruth
from kakusan.diffusion.vlb import EpsModel, vlb_estimate, vlb_exact
from kakusan.errors import KakusanError
from kakusan.report import diffusion as report


@pytest.mark.parametrize("D, scale", [(2, 1.0), (16, 1.0), (16, 2.0)])
def test_per_t_terms_sum_to_the_vlb_of_the_exact_mixture_denoiser(tmp_path, D, scale):
    s = Schedule("cosine", 40)
    truth = MixtureTruth.example(D, schedule=s, seed=D)
    data = scale * truth.sample(30, 1)
    result = vlb_exact(EpsModel(truth, scale=scale), data, generator=2)
    per = report.vlb_per_t(result, D)
    assert per.shape == (41,)
    total = result.bits_per_dim(D).value
    assert abs(per.sum() - total) < 1e-9 * max(1.0, abs(total))
    # the KL terms and L_T are the library's columns, unchanged; the Jacobian D log scale lands on L_0 only
    torch.testing.assert_close(torch.from_numpy(per[1:]), result.terms[:, 1:].mean(0) / (D * math.log(2)))
    shift = D * math.log(scale) / (D * math.log(2))
    assert abs(per[0] - (float(result.terms[:, 0].mean()) / (D * math.log(2)) + shift)) < 1e-12
    assert (per[1:] >= 0).all()  # Gaussian KLs
    assert report.vlb_t_figure(result, D, tmp_path / "vlb.png", title="mixture").stat().st_size > 0


def test_per_t_terms_of_8bit_data_and_a_tiny_conditional_network(tmp_path):
    torch.manual_seed(0)
    model = Diffusion(DiffusionConfig(data_shape=(4,), schedule=ScheduleConfig("cosine", 30), target="v",
                                      denoiser=MLPDenoiserConfig(hidden=16, depth=1), n_classes=2, shift=0.5,
                                      scale=0.5, levels=256)).eval()
    data = torch.randint(0, 256, (20, 4), generator=torch.Generator().manual_seed(1)).float() / 255
    result = vlb_exact(model, data, torch.arange(20) % 2, generator=1)
    per = report.vlb_per_t(result, 4)
    assert result.estimate.unit == "bits/dim"
    assert abs(per.sum() - result.estimate.value) < 1e-9 * result.estimate.value
    assert per[0] > 0 and abs(per[0] - float(result.terms[:, 0].mean()) / (4 * math.log(2))) < 1e-12  # no Jacobian
    img = imread(report.vlb_t_figure(result, 4, tmp_path / "vlb.png"))
    assert img.ndim == 3 and np.isfinite(img).all()


def test_negative_decoder_term_and_missing_terms():
    s = Schedule("linear", 20)
    truth = MixtureTruth.example(2, schedule=s, seed=0, scale=0.05)  # narrow components: density ≫ 1, L_0 < 0
    result = vlb_exact(EpsModel(truth), truth.sample(10, 3), generator=4)
    per = report.vlb_per_t(result, 2)
    assert per[0] < 0 and abs(per.sum() - result.bits_per_dim(2).value) < 1e-9
    with pytest.raises(KakusanError, match="vlb_exact"):
        report.vlb_per_t(vlb_estimate(EpsModel(truth), truth.sample(10, 3), generator=4, n_t=5), 2)


def test_the_figure_takes_a_learned_heads_terms(tmp_path):
    """The learned curve replaces the first K terms: its bound is the fixed one moved by their difference."""
    s = Schedule("linear", 20)
    truth = MixtureTruth.example(2, schedule=s, seed=0)
    result = vlb_exact(EpsModel(truth), truth.sample(10, 3), generator=4)
    learned = result.terms[:, :3] * 0.5  # any (n, K) terms
    img = imread(report.vlb_t_figure(result, 2, tmp_path / "vlb.png", learned=learned))
    assert img.ndim == 3 and np.isfinite(img).all()
    assert report.vlb_t_figure(result, 2, tmp_path / "one.png", learned=learned[:, 0]).stat().st_size > 0

"""Training HVAEs through train.fit on binarised digits: the test ELBO rises in both inference modes, resume is
bit-exact, kakusan.load rebuilds them, and the active units show collapsed and used layers."""

import copy

import pytest
import torch
from vae_helpers import seeded

import kakusan
from kakusan import checkpoint
from kakusan.data import load, stochastic_binarise
from kakusan.optim.schedules import make_scheduler
from kakusan.report.run_dir import RunDir
from kakusan.train import TrainConfig, fit
from kakusan.vae import (ELBO, HVAE, VAE, ConvConfig, HVAEConfig, LinearConfig, MLPConfig, VAEConfig, active_units,
                         dynamic_binarisation, kl_per_layer, kl_per_unit)
from kakusan.vae.diagnostics import posterior_means

TEST_SEED = 123  # the test images are binarised once, with this seed
MODES = ("markov", "ladder")


@pytest.fixture(scope="module")
def digits():
    ds = load("digits")
    return ds.x_train, stochastic_binarise(ds.x_test, generator=TEST_SEED)


def small_hvae(inference, seed=0):
    return seeded(lambda: HVAE(HVAEConfig((8, 8), (8, 4), (64, 32), inference=inference)), seed)


@pytest.fixture(scope="module")
def trained(digits):
    """{mode: (model, (ELBO, IWAE-50) before, after, last logged metrics)} after 300 steps of the ELBO with free
    bits λ = 0.1 nats per unit (with the plain ELBO, this small problem collapses most units: digits gain only a
    few nats from a latent code)."""
    x_train, x_test = digits
    out = {}
    for inference in MODES:
        vae = small_hvae(inference)
        before = vae.elbo(x_test, generator=0).elbo.mean().item(), vae.iwae_bound(x_test, 50, generator=0).mean().item()
        result = fit(vae, ELBO(free_bits=0.1), x_train, torch.optim.Adam(vae.parameters(), lr=3e-3),
                     TrainConfig(steps=300, batch_size=100, log_every=100, progress=False),
                     transform=dynamic_binarisation)
        after = vae.elbo(x_test, generator=0).elbo.mean().item(), vae.iwae_bound(x_test, 50, generator=0).mean().item()
        out[inference] = (vae, before, after, result.history[-1])
    return out


@pytest.mark.parametrize("inference", MODES)
def test_a_short_training_on_binarised_digits_raises_the_test_elbo(trained, inference):
    _, before, after, logged = trained[inference]
    assert after[0] > before[0] + 10 and after[1] > before[1] + 10, (before, after)
    assert after[1] >= after[0] - 0.1  # IWAE-50 ≥ ELBO (up to noise)
    assert {"reconstruction", "kl", "kl_z1", "kl_z2", "elbo"} <= set(logged)


@pytest.mark.parametrize("inference", MODES)
def test_active_units_see_a_used_layer_and_a_collapsed_one(trained, digits, inference):
    x_test = digits[1]
    vae = trained[inference][0]
    active = active_units(vae, x_test, generator=0)
    assert active["z1"].n_active > 0 and active["z1"].variance.shape == (8,)
    kl = kl_per_unit(vae, x_test, generator=0)
    assert kl["z1"].shape == (8,) and float(kl["z1"].max()) > 0.1
    # collapse the top layer: its q ignores everything below and equals the prior N(0, I)
    collapsed = copy.deepcopy(vae)
    with torch.no_grad():
        for p in collapsed.up_heads[-1].parameters():
            p.zero_()
    active = active_units(collapsed, x_test, generator=0)
    assert active["z2"].n_active == 0 and float(active["z2"].variance.max()) == 0.0
    assert float(kl_per_unit(collapsed, x_test, generator=0)["z2"].abs().max()) < 1e-6
    assert active["z1"].n_active > 0
    layers = kl_per_layer(collapsed, x_test, generator=0)
    assert layers["z2"] == pytest.approx(0, abs=1e-5) and layers["z1"] > 0.5


def test_an_encoder_that_ignores_x_has_no_active_units_despite_monte_carlo_noise(trained, digits):
    x_test = digits[1]
    vae = copy.deepcopy(trained["ladder"][0])
    with torch.no_grad():  # every bottom-up estimate constant: q(z|x) no longer depends on x
        for head in vae.up_heads:
            head.mean.weight.zero_()
            head.log_var.weight.zero_()
    raw = posterior_means(vae, x_test, n_samples=4, generator=0)["z1"][0].var(0)
    assert float(raw.max()) > 1e-2  # 4 draws per example: the noise alone would pass the threshold
    active = active_units(vae, x_test, n_samples=4, generator=0)
    assert active["z1"].n_active == 0 and active["z2"].n_active == 0


def test_the_same_functions_serve_a_one_layer_vae(digits):
    x_train, x_test = digits
    vae = seeded(lambda: VAE(VAEConfig((8, 8), 8, MLPConfig((64,)), MLPConfig((64,)))), 0)
    fit(vae, ELBO(), x_train, torch.optim.Adam(vae.parameters(), lr=3e-3),
        TrainConfig(steps=200, batch_size=100, progress=False), transform=dynamic_binarisation)
    active = active_units(vae, x_test)
    assert set(active) == {"z"} and active["z"].n_active > 0
    assert kl_per_unit(vae, x_test, generator=0)["z"].shape == (8,)
    with torch.no_grad():
        vae.encoder.net[-1].weight.zero_()
    assert active_units(vae, x_test)["z"].n_active == 0


class _Stop(Exception):
    pass


def _run(run_dir, data, init_seed, inference, stop_at=None):
    """20 steps of a warmed-up ELBO with free bits, EMA and a cosine schedule, checkpointing every 6."""
    run_dir.mkdir(exist_ok=True)
    vae = small_hvae(inference, init_seed)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)

    def stop(step, out):
        if step == stop_at:
            raise _Stop

    result = fit(vae, ELBO(warmup_steps=10, free_bits=0.05), data, opt,
                 TrainConfig(steps=20, batch_size=50, checkpoint_every=6, ema_decays=(0.9,), progress=False, seed=5),
                 run=RunDir(run_dir), scheduler=make_scheduler(opt, "cosine", 20), transform=dynamic_binarisation,
                 callback=stop)
    return vae, result


@pytest.mark.parametrize("inference", MODES)
def test_resume_is_bit_exact_and_kakusan_load_rebuilds_the_hvae(digits, tmp_path, inference):
    data = digits[0][:500]
    whole, whole_result = _run(tmp_path / "a", data, 0, inference)
    with pytest.raises(_Stop):
        _run(tmp_path / "b", data, 0, inference, stop_at=13)  # killed after step 13; the checkpoint holds step 12
    resumed, result = _run(tmp_path / "b", data, 99, inference)  # other initial weights: all must come back
    assert result.resumed_from == 12
    for k, v in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    for k, v in whole_result.ema.state(0.9).items():
        assert torch.equal(result.ema.state(0.9)[k], v), k
    other, _ = _run(tmp_path / "c", data, 99, inference)  # negative control: the same run from other weights
    assert not all(torch.equal(other.state_dict()[k], v) for k, v in whole.state_dict().items())

    back = kakusan.load(tmp_path / "b", weights="last")
    assert type(back) is HVAE and back.config == whole.config and back.config.hidden == (64, 32)
    assert all(torch.equal(back.state_dict()[k], v) for k, v in whole.state_dict().items())
    averaged = kakusan.load(tmp_path / "b")  # the EMA weights by default
    assert all(torch.equal(averaged.state_dict()[k], v) for k, v in whole_result.ema.state(0.9).items())
    assert torch.equal(averaged.sample(3, generator=0), kakusan.load(tmp_path / "b").sample(3, generator=0))


def test_kakusan_load_rebuilds_nested_layer_configs(tmp_path):
    config = HVAEConfig((1, 8, 8), (4, 3, 2), (ConvConfig((4, 8), hidden=16), MLPConfig((12,), "relu"), LinearConfig()),
                        activation="elu", inference="markov", n_classes=3)
    vae = seeded(lambda: HVAE(config), 4)
    checkpoint.save_model(tmp_path / "checkpoints", vae)
    back = kakusan.load(tmp_path, weights="model")
    assert back.config == config and isinstance(back.config.hidden[0], ConvConfig)
    assert back.config.hidden[1].hidden == (12,) and back.config.latents == (4, 3, 2)
    assert torch.equal(back.sample(4, generator=1, labels=[2] * 4), vae.sample(4, generator=1, labels=[2] * 4))

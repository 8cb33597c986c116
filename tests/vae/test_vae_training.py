"""Training VAEs through train.fit: the test ELBO rises on digits, resume is bit-exact, kakusan.load rebuilds."""

import math

import pytest
import torch
from vae_helpers import seeded

import kakusan
from kakusan import checkpoint
from kakusan.data import load, stochastic_binarise
from kakusan.errors import DataError
from kakusan.optim.schedules import make_scheduler
from kakusan.report.run_dir import RunDir
from kakusan.train import TrainConfig, fit
from kakusan.vae import ELBO, IWAE, VAE, ConvConfig, LogisticConfig, MLPConfig, VAEConfig, dynamic_binarisation

TEST_SEED = 123  # the test images are binarised once, with this seed


@pytest.fixture(scope="module")
def digits():
    ds = load("digits")
    return ds.x_train, ds.y_train, stochastic_binarise(ds.x_test, generator=TEST_SEED), ds.y_test


def small_vae(seed=0, n_classes=0):
    return seeded(lambda: VAE(VAEConfig((8, 8), 8, MLPConfig((64,)), MLPConfig((64,)), n_classes=n_classes)), seed)


def test_a_short_training_on_binarised_digits_raises_the_test_elbo_and_iwae(digits):
    x_train, _, x_test, _ = digits
    for objective in (ELBO(), IWAE(k=5)):
        vae = small_vae()
        before = vae.elbo(x_test, generator=0).elbo.mean().item(), vae.iwae_bound(x_test, 50, generator=0).mean()
        result = fit(vae, objective, x_train, torch.optim.Adam(vae.parameters(), lr=3e-3),
                     TrainConfig(steps=300, batch_size=100, log_every=100, progress=False),
                     transform=dynamic_binarisation)
        after = vae.elbo(x_test, generator=0).elbo.mean().item(), vae.iwae_bound(x_test, 50, generator=0).mean()
        assert after[0] > before[0] + 10 and after[1] > before[1] + 10, (type(objective).__name__, before, after)
        assert after[1] >= after[0] - 0.1  # IWAE-50 ≥ ELBO (up to noise)
        logged = set(result.history[-1])
        assert ({"reconstruction", "kl", "kl_z", "elbo"} if isinstance(objective, ELBO) else {"iwae", "ess"}) <= logged


def test_binarisation_draws_from_the_loop_generator_and_a_bernoulli_vae_refuses_raw_intensities(digits):
    x_train = digits[0][:64]
    a = dynamic_binarisation(x_train, torch.Generator().manual_seed(1))
    assert torch.equal(a, dynamic_binarisation(x_train, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, dynamic_binarisation(x_train, torch.Generator().manual_seed(2)))
    labelled = dynamic_binarisation((x_train, torch.arange(64)), torch.Generator().manual_seed(1))
    assert torch.equal(labelled[0], a) and torch.equal(labelled[1], torch.arange(64))
    vae = small_vae()
    with pytest.raises(DataError, match="binary 0/1 data") as e:
        fit(vae, ELBO(), x_train, torch.optim.Adam(vae.parameters()), TrainConfig(steps=2, progress=False))
    assert "\n" not in str(e.value)


class _Stop(Exception):
    pass


def _run(run_dir, data, init_seed, stop_at=None, stateless=False):
    """20 steps of a warmed-up ELBO with EMA and a cosine schedule, checkpointing every 6; killed at ``stop_at``."""
    run_dir.mkdir(exist_ok=True)
    vae = small_vae(init_seed)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    objective = ELBO(warmup_steps=10, free_bits=0.05)
    call = (lambda m, b, g: objective(m, b, g)) if stateless else objective  # a lambda keeps no state

    def stop(step, out):
        if step == stop_at:
            raise _Stop

    result = fit(vae, call, data, opt, TrainConfig(steps=20, batch_size=50, checkpoint_every=6, ema_decays=(0.9,),
                                                    progress=False, seed=5),
                 run=RunDir(run_dir), scheduler=make_scheduler(opt, "cosine", 20), transform=dynamic_binarisation,
                 callback=stop)
    return vae, objective, result


def test_resume_is_bit_exact_and_carries_the_warm_up_step(digits, tmp_path):
    data = digits[0][:500]
    whole, whole_obj, whole_result = _run(tmp_path / "a", data, 0)
    with pytest.raises(_Stop):
        _run(tmp_path / "b", data, 0, stop_at=13)  # killed after step 13; the checkpoint holds step 12
    resumed, resumed_obj, result = _run(tmp_path / "b", data, 99)  # other initial weights: all must come back
    assert result.resumed_from == 12 and resumed_obj.steps == whole_obj.steps == 20
    for k, v in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k
    for k, v in whole_result.ema.state(0.9).items():
        assert torch.equal(result.ema.state(0.9)[k], v), k
    betas = [r["beta"] for r in RunDir(tmp_path / "b").read_metrics() if "beta" in r]
    assert betas[:13] == [min(1.0, s / 10) for s in range(13)]
    assert betas[13:] == [min(1.0, s / 10) for s in range(12, 20)]  # step 12 redone after the kill
    # negative control: without the objective's state the warm-up restarts at β = 0 and the weights differ
    with pytest.raises(_Stop):
        _run(tmp_path / "c", data, 0, stop_at=13, stateless=True)
    other, _, _ = _run(tmp_path / "c", data, 0, stateless=True)
    assert not all(torch.equal(other.state_dict()[k], v) for k, v in whole.state_dict().items())

    back = kakusan.load(tmp_path / "b", weights="last")  # kakusan.load rebuilds the VAE from the run
    assert type(back) is VAE and back.config == whole.config
    assert all(torch.equal(back.state_dict()[k], v) for k, v in whole.state_dict().items())
    averaged = kakusan.load(tmp_path / "b")  # the EMA weights by default
    assert all(torch.equal(averaged.state_dict()[k], v) for k, v in whole_result.ema.state(0.9).items())
    assert averaged.sample(3, generator=0).shape == (3, 8, 8)


def test_kakusan_load_rebuilds_nested_configs(tmp_path):
    config = VAEConfig((1, 8, 8), 3, ConvConfig((4, 8), hidden=16), MLPConfig((12,), "relu"),
                       likelihood=LogisticConfig(17), n_classes=10)
    vae = seeded(lambda: VAE(config), 4)
    checkpoint.save_model(tmp_path / "checkpoints", vae)
    back = kakusan.load(tmp_path, weights="model")
    assert back.config == config and isinstance(back.config.encoder, ConvConfig)
    assert back.config.encoder.channels == (4, 8) and back.config.data_shape == (1, 8, 8)
    assert torch.equal(back.sample(4, generator=1, labels=[3] * 4), vae.sample(4, generator=1, labels=[3] * 4))


def test_a_conditional_vae_learns_to_use_its_labels(digits):
    x_train, y_train, x_test, y_test = digits
    vae = small_vae(n_classes=10)
    fit(vae, ELBO(), (x_train, y_train), torch.optim.Adam(vae.parameters(), lr=3e-3),
        TrainConfig(steps=300, batch_size=100, progress=False, log_every=100), transform=dynamic_binarisation)
    right = vae.elbo(x_test, y_test, generator=0).elbo.mean().item()
    wrong = vae.elbo(x_test, (y_test + 1) % 10, generator=0).elbo.mean().item()
    assert right > wrong + 1.0, (right, wrong)


def test_warm_up_counts_optimizer_steps_not_micro_batches(digits):
    vae = small_vae()
    objective = ELBO(beta=0.5, warmup_steps=4)
    result = fit(vae, objective, digits[2][:40], torch.optim.Adam(vae.parameters()),
                 TrainConfig(steps=6, batch_size=20, accumulate=2, progress=False))
    assert [r["beta"] for r in result.history] == [0.0, 0.125, 0.25, 0.375, 0.5, 0.5]
    assert objective.steps == 6
    again = ELBO(beta=0.5, warmup_steps=4)
    again.load_state_dict(objective.state_dict())
    assert again.steps == 6


@pytest.mark.parametrize("fused", [False, True])
def test_warm_up_follows_fits_steps_whatever_the_optimizer(digits, fused):
    """torch's fused Adam (what the training commands use, kakusan.optim.adam) updates the parameters without
    bumping their version counters, so a step count read from them would stand still; fit tells the objective
    its step instead (set_step), and β rises the same with either Adam."""
    vae = small_vae()
    objective = ELBO(beta=0.5, warmup_steps=4)
    optimizer = torch.optim.Adam(vae.parameters(), fused=fused)
    result = fit(vae, objective, digits[2][:40], optimizer, TrainConfig(steps=6, batch_size=20, progress=False))
    assert [r["beta"] for r in result.history] == [0.0, 0.125, 0.25, 0.375, 0.5, 0.5]
    # the parameters' versions, which the objective counts outside fit, do not move under the fused kernel
    versions = [p._version for p in vae.parameters()]
    objective(vae, digits[2][:20], torch.Generator().manual_seed(0)).loss.backward()
    optimizer.step()
    assert ([p._version for p in vae.parameters()] == versions) == fused


def test_free_bits_and_beta_in_the_loss(digits):
    vae = small_vae()
    x = digits[2][:30]
    terms = vae.elbo(x, generator=torch.Generator().manual_seed(3))
    kl_units = terms.kl_units["z"].detach()
    out = ELBO(beta=2.0, free_bits=0.5)(vae, x, torch.Generator().manual_seed(3))
    expected = -terms.reconstruction.mean() + 2.0 * kl_units.mean(0).clamp(min=0.5).sum()
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert bool((kl_units.mean(0) < 0.5).any())  # some units sit below the floor, so the test means something
    iwae1 = IWAE(k=1)(vae, x, torch.Generator().manual_seed(4)).loss
    elbo_mc = vae.elbo(x, generator=torch.Generator().manual_seed(4), kl="mc").elbo.mean()
    assert iwae1.item() == pytest.approx(-elbo_mc.item(), rel=1e-6)  # IWAE with k = 1 is the ELBO
    assert math.isfinite(out.loss.item())

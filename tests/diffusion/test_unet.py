"""The UNet denoiser: shapes, conditioning, zero-initialised output, counted FLOPs, the channels_last GroupNorm,
a small overfit, config and checkpoint round trips."""

from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import kakusan
from kakusan import checkpoint
from kakusan.diffusion.model import Diffusion, DiffusionConfig
from kakusan.diffusion.process import q_sample
from kakusan.diffusion.unet import UNet, UNetConfig, _GroupNormNHWC, group_norm, to_channels_last
from kakusan.errors import DataError, KakusanError
from kakusan.registry import config_from_json, config_to_json

SMALL = UNetConfig(channels=(8, 16), attention=(False, True), groups=4, time_dim=16, head_dim=8)


def perturb(net: torch.nn.Module, seed: int = 0, std: float = 0.05) -> None:
    """Move every parameter off its initial value (the output conv starts at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32)])
@pytest.mark.parametrize("config", [UNetConfig(), UNetConfig.tiny(), replace(UNetConfig.tiny(), skip="cat")],
                         ids=["default", "tiny", "tiny-cat"])
def test_shapes(shape, config):
    net = UNet(config, shape, T=1000)
    out = net(torch.randn(2, *shape), torch.tensor([0.0, 731.5]))
    assert out.shape == (2, *shape) and out.is_contiguous()


@pytest.mark.parametrize("shape", [(1, 7, 7), (2, 13, 9), (1, 1, 1)])
def test_sizes_that_do_not_halve_evenly(shape):
    net = UNet(SMALL, shape, T=100)
    perturb(net)
    assert net(torch.randn(3, *shape), torch.tensor([1.0, 50.0, 99.0])).shape == (3, *shape)


def test_out_mult_doubles_the_channels():
    net = UNet(SMALL, (3, 8, 8), T=1000, out_mult=2)
    assert net(torch.randn(4, 3, 8, 8), torch.full((4,), 10.0)).shape == (4, 6, 8, 8)


def test_output_is_zero_at_initialisation():
    net = UNet(UNetConfig(), (1, 28, 28), T=1000, n_classes=10)
    out = net(torch.randn(3, 1, 28, 28), torch.tensor([1.0, 500.0, 1000.0]), torch.tensor([0, 9, 10]))
    assert torch.equal(out, torch.zeros_like(out))
    assert torch.equal(net.conv_out.weight, torch.zeros_like(net.conv_out.weight))


def test_class_conditioning_and_the_null_label():
    torch.manual_seed(0)
    net = UNet(SMALL, (1, 8, 8), T=1000, n_classes=3).eval()
    perturb(net)
    x, t = torch.randn(1, 1, 8, 8).expand(4, -1, -1, -1), torch.full((4,), 300.0)
    out = net(x, t, torch.tensor([0, 1, 2, 3]))  # 3 = the null class
    for i in range(4):
        for j in range(i):
            assert not torch.allclose(out[i], out[j], atol=1e-6), (i, j)
    unconditional = net(x, t)  # no labels: the null class
    assert torch.allclose(unconditional, out[3:].expand(4, -1, -1, -1), atol=1e-6)


def test_an_unconditional_net_refuses_labels():
    net = UNet(SMALL, (1, 8, 8), T=1000)
    with pytest.raises(DataError, match="unconditional"):
        net(torch.randn(2, 1, 8, 8), torch.ones(2), torch.tensor([0, 1]))


@pytest.mark.parametrize("config,shape,n_classes,out_mult", [
    (UNetConfig(), (1, 28, 28), 0, 1),
    (UNetConfig.tiny(), (1, 28, 28), 0, 1),
    (replace(UNetConfig.tiny(), skip="cat"), (1, 28, 28), 0, 1),
    (UNetConfig(scale_shift=True, layers=2), (3, 32, 32), 10, 2),
    (SMALL, (1, 8, 8), 2, 1),
], ids=["default", "tiny", "tiny-cat", "scale-shift-3ch", "small"])
def test_gflop_matches_the_flop_counter(config, shape, n_classes, out_mult):
    net = UNet(config, shape, T=1000, n_classes=n_classes, out_mult=out_mult)
    with FlopCounterMode(display=False) as counter:
        net(torch.randn(1, *shape), torch.tensor([500.0]))
    counted = counter.get_total_flops() / 1e9
    assert counted > 0
    assert net.gflop_per_example() == pytest.approx(counted, rel=0.05)


def test_the_presets_sizes():
    assert 0.1 <= UNet(UNetConfig(), (1, 28, 28), T=1000).gflop_per_example() <= 0.3
    tiny = UNet(UNetConfig.tiny(), (1, 28, 28), T=1000).gflop_per_example()
    assert tiny <= 0.093  # diffusers' tiny UNet2DModel
    assert tiny < UNet(replace(UNetConfig.tiny(), skip="cat"), (1, 28, 28), T=1000).gflop_per_example() <= 0.093


@pytest.mark.parametrize("skip", ["cat", "add"])
def test_channels_last_and_nchw_paths_agree(skip):
    torch.manual_seed(1)
    config = UNetConfig(channels=(8, 16, 16), attention=(False, True, True), groups=4, head_dim=8, scale_shift=True,
                        skip=skip)
    net = UNet(config, (3, 12, 12), T=1000, n_classes=2).double()
    perturb(net, std=0.2)
    x = torch.randn(3, 3, 12, 12, dtype=torch.float64, requires_grad=True)
    t, c = torch.tensor([1.0, 400.0, 999.0]), torch.tensor([0, 1, 2])
    results = []
    for cl in (True, False):
        net.channels_last = cl
        out = net(x, t, c)
        grads = torch.autograd.grad((out**2).sum(), [x, *net.parameters()])
        results.append((out, grads))
    (a, ga), (b, gb) = results
    assert torch.allclose(a, b, atol=1e-12)
    for u, v in zip(ga, gb):
        assert torch.allclose(u, v, atol=1e-10)


def test_channels_last_group_norm_gradients():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, 5, 4, generator=g, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    w = torch.randn(8, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: _GroupNormNHWC.apply(x, 4, w, b, 1e-5), (x, w, b))
    norm = torch.nn.GroupNorm(4, 8).double()
    expected = torch.nn.functional.group_norm(x.contiguous(), 4, norm.weight, norm.bias, norm.eps)
    assert torch.allclose(group_norm(x, norm), expected, atol=1e-12)


def test_channels_last_group_norm_keeps_precision_under_a_large_mean():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 16, 28, 28, generator=g) + 300.0).contiguous(memory_format=torch.channels_last)
    norm = torch.nn.GroupNorm(8, 16)
    exact = torch.nn.functional.group_norm(x.double().contiguous(), 8, norm.weight.double(), norm.bias.double())
    assert (group_norm(x, norm).double() - exact).abs().max() < 1e-4  # a one-pass E[x²] − E[x]² loses ~1e-2


def test_to_channels_last_for_one_channel():
    x = to_channels_last(torch.randn(2, 1, 5, 5))
    y = torch.nn.Conv2d(1, 4, 3, padding=1)(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()


def test_a_few_adam_steps_reduce_the_eps_error():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = Diffusion(DiffusionConfig(data_shape=(1, 8, 8), denoiser=SMALL, levels=256, shift=0.5, scale=0.5))
    data = (torch.rand(4, 1, 8, 8, generator=g) > 0.5).float()  # four fixed binary images
    T = model.schedule.T

    def eps_mse(x0, t, eps):
        a, s = model.alpha_sigma(t, x0)
        return ((model.predict(q_sample(x0, a, s, eps), t)[0] - eps) ** 2).mean()

    x_eval = model.to_model(data.repeat(8, 1, 1, 1))
    t_eval = torch.randint(1, T + 1, (32,), generator=g).double()
    e_eval = torch.randn(x_eval.shape, generator=g)
    with torch.no_grad():
        before = float(eps_mse(x_eval, t_eval, e_eval))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(25):
        x0 = model.to_model(data.repeat(8, 1, 1, 1))
        loss = eps_mse(x0, torch.randint(1, T + 1, (32,), generator=g).double(), torch.randn(x0.shape, generator=g))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = float(eps_mse(x_eval, t_eval, e_eval))
    assert before == pytest.approx(1.0, abs=0.15)  # ε̂ = 0 at initialisation
    assert after < 0.6 * before, (before, after)


def test_config_json_round_trip():
    config = UNetConfig(channels=(8, 16, 32), layers=2, attention=(False, True, True), dropout=0.1,
                        scale_shift=True, skip="add")
    again = config_from_json(config_to_json(config))
    assert again == config and isinstance(again.channels, tuple) and isinstance(again.attention, tuple)
    outer = DiffusionConfig(data_shape=(1, 8, 8), denoiser=config, n_classes=3, levels=256, shift=0.5, scale=0.5)
    back = config_from_json(config_to_json(outer))
    assert back == outer and isinstance(back.denoiser, UNetConfig)
    assert UNetConfig.tiny() == config_from_json(config_to_json(UNetConfig.tiny()))


def test_checkpoint_round_trip(tmp_path):
    model = Diffusion(DiffusionConfig(data_shape=(1, 8, 8), denoiser=SMALL, n_classes=2, levels=256, shift=0.5,
                                      scale=0.5))
    perturb(model)
    checkpoint.save_model(tmp_path / "checkpoints", model)
    back = kakusan.load(tmp_path, weights="model")
    assert type(back) is Diffusion and isinstance(back.config.denoiser, UNetConfig)
    assert config_to_json(back.config) == config_to_json(model.config)
    x, t, c = torch.randn(3, 1, 8, 8), torch.tensor([5.0, 50.0, 500.0]), torch.tensor([0, 1, 2])
    with torch.no_grad():
        assert torch.equal(back(x, t, c), model(x, t, c))


@pytest.mark.parametrize("bad,match", [
    (dict(channels=(16, 32), attention=(False,)), "one flag per level"),
    (dict(channels=(12, 32), attention=(False, False)), "multiple of groups"),
    (dict(channels=(), attention=()), "positive widths"),
    (dict(layers=0), "layers"),
    (dict(dropout=1.0), "dropout"),
    (dict(skip="sum"), "skip"),
])
def test_bad_configs_are_refused(bad, match):
    with pytest.raises(KakusanError, match=match):
        UNet(UNetConfig(**bad), (1, 8, 8), T=1000)


def test_vectors_are_refused():
    with pytest.raises(DataError, match="images"):
        UNet(SMALL, (64,), T=1000)


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    net = UNet(UNetConfig(channels=(8, 16), attention=(False, False), groups=4, dropout=0.5), (1, 8, 8), T=1000)
    perturb(net)
    x, t = torch.randn(2, 1, 8, 8), torch.full((2,), 100.0)
    assert not torch.equal(net(x, t), net(x, t))
    net.eval()
    assert torch.equal(net(x, t), net(x, t))

"""kakusan.load round-trips every registered model; nested dataclass configs come back as objects."""

import dataclasses

import pytest
import torch

import kakusan
from kakusan import checkpoint
from kakusan.errors import CheckpointError
from kakusan.registry import MODELS, config_from_json, config_to_json, import_all_models, register_model

# One small instance per registered kakusan model. A chapter that registers a model adds it here;
# the test below fails until it does, so every model is round-tripped.
EXAMPLES = {
    "IsingModel": lambda: MODELS["IsingModel"](5),
    "HiddenBoltzmannMachine": lambda: MODELS["HiddenBoltzmannMachine"](4, 3),
    "Gaussian": lambda: MODELS["Gaussian"](3),
    "GaussianMixture": lambda: MODELS["GaussianMixture"](2, 3, "diag"),
    "BernoulliRBM": lambda: MODELS["BernoulliRBM"](6, 4, centered=True),
    "GaussianRBM": lambda: MODELS["GaussianRBM"](6, 4, learn_variance=True),
    "SpinRBM": lambda: MODELS["SpinRBM"](6, 4),
    "VAE": lambda: MODELS["VAE"](_vae().VAEConfig(data_shape=(8, 8), n_latent=3, n_classes=2)),
    "HVAE": lambda: MODELS["HVAE"](_vae().HVAEConfig(data_shape=(8, 8), latents=(3, 2),
                                                      hidden=(8, _vae().MLPConfig((4,))), n_classes=2)),
    "Diffusion": lambda: MODELS["Diffusion"](_diffusion().DiffusionConfig(
        data_shape=(8, 8), schedule=_diffusion().ScheduleConfig("cosine", 50), target="v",
        denoiser=__import__("kakusan.diffusion.unet", fromlist=["x"]).UNetConfig(channels=(8, 16),
                                                                               attention=(False, True)),
        n_classes=3, learn_variance=True, shift=0.5, scale=0.5, levels=256)),
    "Autoencoder": lambda: MODELS["Autoencoder"](_latent().AutoencoderConfig(image=(8, 8), channels=(4, 8))),
    "LatentDiffusion": lambda: MODELS["LatentDiffusion"](_latent().with_denoiser(
        _latent().LatentDiffusionConfig(), channels=(8, 16), attention=(True, True))),
    "MetricNet": lambda: MODELS["MetricNet"](__import__("kakusan.evaluate.metric_net", fromlist=["x"]).MetricNetConfig(
        shape=(8, 8), channels=(4, 8), hidden=8, pooled=(False, True))),
}


def _diffusion():
    import kakusan.diffusion

    return kakusan.diffusion


def _latent():
    import kakusan.latent.autoencoder
    import kakusan.latent.model

    class _Namespace:
        AutoencoderConfig = kakusan.latent.autoencoder.AutoencoderConfig
        LatentDiffusionConfig = kakusan.latent.model.LatentDiffusionConfig
        with_denoiser = staticmethod(kakusan.latent.model.with_denoiser)

    return _Namespace


def _vae():
    import kakusan.vae

    return kakusan.vae


def kakusan_models():
    import_all_models()
    return sorted(n for n, c in MODELS.items() if c.__module__.startswith("kakusan."))


def test_every_registered_model_has_an_example():
    missing = sorted(set(kakusan_models()) - set(EXAMPLES))
    assert not missing, f"add a small instance of {missing} to EXAMPLES"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_load_round_trips(name, tmp_path):
    import_all_models()  # this worker may not have imported the model's chapter yet
    model = EXAMPLES[name]()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    checkpoint.save_model(tmp_path / "checkpoints", model, extra_parts={"ema@0.999": ema})
    back = kakusan.load(tmp_path, weights="model")
    assert type(back) is type(model)
    assert config_to_json(back.config) == config_to_json(model.config)
    for k, v in model.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    averaged = kakusan.load(tmp_path, weights="ema")  # the default
    for k, v in ema.items():
        assert torch.equal(averaged.state_dict()[k], v), k
    with pytest.raises(CheckpointError, match="unknown weights"):
        kakusan.load(tmp_path, weights="best")


@register_model
class _Composite(torch.nn.Module):
    """A model with parts: a registered component inside, configs nested as dataclasses."""

    @dataclasses.dataclass
    class Config:
        inner: "_Inner.Config"
        scale: float = 2.0
        sizes: tuple[int, ...] = (1, 2)

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.inner = _Inner(config.inner)
        self.extra = torch.nn.Parameter(torch.full((2,), config.scale))

    @classmethod
    def from_config(cls, config):
        return cls(config)


@register_model
class _Inner(torch.nn.Module):
    @dataclasses.dataclass
    class Config:
        width: int = 3

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.lin = torch.nn.Linear(config.width, 2)

    @classmethod
    def from_config(cls, config):
        return cls(config)


def test_nested_configs_rebuild_as_objects_and_components_load_alone(tmp_path):
    model = _Composite(_Composite.Config(_Inner.Config(width=4), scale=3.0, sizes=(5, 6)))
    as_json = config_to_json(model.config)
    again = config_from_json(as_json)
    assert again == model.config and isinstance(again.inner, _Inner.Config) and again.sizes == (5, 6)
    checkpoint.save_model(tmp_path, model, components={"inner": model.inner})
    whole = kakusan.load(tmp_path / "model.safetensors")
    assert isinstance(whole.inner, _Inner) and whole.config.inner.width == 4
    part = kakusan.load(tmp_path / "model.safetensors", part="inner")
    assert isinstance(part, _Inner) and torch.equal(part.lin.weight, model.inner.lin.weight)


def test_configs_naming_code_outside_kakusan_are_refused():
    with pytest.raises(CheckpointError, match="outside kakusan"):
        config_from_json({"_type": "antigravity:fly"})  # never imported: not kakusan's
    with pytest.raises(CheckpointError, match="not a dataclass"):
        config_from_json({"_type": "kakusan.runtime:make_generator"})

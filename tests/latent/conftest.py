"""Shared pieces of the prompt → image tests: the (cached) text encoder and tiny latent diffusion models.

A freshly built UNet has zero-initialised output layers (its last conv and every cross-attention's output), so
its prediction ignores the prompt; ``tiny_model(randomize=True)`` perturbs every denoiser weight so that the
prompt, the time and the input all matter — identities tested on it cannot hold by accident.
"""

import pytest
import torch


def build_tiny(seed: int = 0, randomize: bool = True, scale: float = 2.0):
    """A LatentDiffusion with a (16, 32) UNet, random weights, latent_scale ``scale``, in eval mode."""
    from kakusan.latent.model import LatentDiffusion, LatentDiffusionConfig, with_denoiser

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LatentDiffusion(with_denoiser(LatentDiffusionConfig(), channels=(16, 32), attention=(True, True)))
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        if randomize:
            for p in model.diffusion.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g))
        model.autoencoder.latent_scale.fill_(scale)
    return model.eval()


@pytest.fixture(scope="session")
def text_encoder():
    from kakusan.text import get_text_encoder

    return get_text_encoder("cpu")


@pytest.fixture(scope="session")
def tiny_model():
    """One randomized tiny model for the whole session (tests must not change it)."""
    return build_tiny(0)


@pytest.fixture
def images():
    """Four 28×28 gray images in [0, 1] with structure (a bright square on noise)."""
    g = torch.Generator().manual_seed(7)
    x = 0.3 * torch.rand((4, 28, 28), generator=g)
    x[:, 8:20, 10:18] += 0.6
    return x.clamp(0, 1)


@pytest.fixture(scope="session")
def make_tiny():
    """``build_tiny`` itself, for tests that need a model of their own (e.g. to change it)."""
    return build_tiny

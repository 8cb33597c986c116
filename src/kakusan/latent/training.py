"""Training the prompt → image model in two stages, each through ``train.fit`` with its own resumable checkpoint.

Stage one trains the :class:`~kakusan.latent.autoencoder.Autoencoder` on the joint MNIST + Fashion-MNIST images
(``RUN/autoencoder/``), then fits its latent scale. Stage two encodes every training image once (posterior
means, scaled), embeds every training caption once (:func:`kakusan.text.TextEncoder.encode`), and trains
the text-conditional latent diffusion model (``RUN/``): each step draws, for every image, one caption of its
class (a fresh draw per image and step) and replaces it with the empty caption with probability
``caption_drop`` (classifier-free guidance). ``RUN/checkpoints/model`` holds the finished
:class:`~kakusan.latent.model.LatentDiffusion` with its EMA weights.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from kakusan.errors import KakusanError
from kakusan.optim.adam import adam

Tensor = torch.Tensor


@dataclass(frozen=True)
class AutoencoderSettings:
    epochs: int = 4
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 1e-3
    seed: int = 0


def train_autoencoder(run_path, x_train: Tensor, x_test: Tensor, settings: AutoencoderSettings, device,
                      config=None, progress: bool = True):
    """Stage one (module docstring): returns the trained autoencoder (EMA weights, latent scale fitted) and a
    dict of its numbers; resumes from ``run_path/checkpoints/last`` when it is there, and skips training when the
    finished ``run_path/checkpoints/autoencoder`` is."""
    from kakusan import checkpoint
    from kakusan.data.batches import steps_per_epoch
    from kakusan.latent.autoencoder import Autoencoder, AutoencoderConfig, AutoencoderLoss
    from kakusan.optim.schedules import make_scheduler
    from kakusan.report.run_dir import RunDir
    from kakusan.train import TrainConfig, fit

    run_path.mkdir(parents=True, exist_ok=True)
    run = RunDir(run_path)
    if checkpoint.exists(run.checkpoints, "autoencoder"):
        model = checkpoint.load_model(run.checkpoints, "autoencoder", map_location=device)
        parts, head = checkpoint.load(run.checkpoints, "autoencoder")
        return model.eval(), dict(head.get("meta", {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = Autoencoder(config or AutoencoderConfig()).to(device)
    per_epoch = steps_per_epoch(len(x_train), settings.batch_size)
    total = settings.epochs * per_epoch
    optimizer = adam(model.parameters(), lr=settings.lr)
    ema = round(min(0.999, max(0.0, 1 - 10 / total)), 6)
    cfg = TrainConfig(steps=total, batch_size=settings.batch_size, log_every=min(per_epoch, 50),
                      checkpoint_every=min(per_epoch, 500), grad_clip=1.0, ema_decays=(ema,) if ema else (),
                      seed=settings.seed, progress=progress, desc="autoencoder")
    result = fit(model, AutoencoderLoss(settings.beta), x_train.to(device), optimizer, cfg, run=run,
                 scheduler=make_scheduler(optimizer, "cosine", total, warmup=min(200, total // 5)))
    final = copy.deepcopy(model)
    if result.ema is not None:
        result.ema.copy_to(final)
    final.eval()
    scale = final.fit_scale(x_train.to(device))
    psnr = final.psnr(x_test.to(device))
    meta = {"steps": total, "train_seconds": result.seconds, "latent_scale": scale,
            "test_psnr_db": float(psnr.mean()), "test_psnr_db_stderr": float(psnr.std() / len(psnr) ** 0.5),
            "settings": settings.__dict__}
    checkpoint.save_model(run.checkpoints, final, name="autoencoder", meta=meta)
    return final, meta


__all__ = ["AutoencoderSettings", "train_autoencoder"]


# ---------------------------------------------------------------- stage two


@dataclass(frozen=True)
class DenoiserSettings:
    epochs: int = 6
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 200
    caption_drop: float = 0.1
    ema: float = 0.9995
    seed: int = 0


class CaptionedLoss:
    """The stage-two objective: per image, one training caption of its class drawn uniformly (a fresh draw every
    step), replaced by the empty caption with probability ``caption_drop``; then L_simple of the latent diffusion
    model (:class:`~kakusan.diffusion.objectives.DiffusionLoss`) on (latents, caption condition).

    ``captions`` is the :class:`TextCondition` of every training caption followed by the empty caption (its last
    row); ``offsets``/``counts`` locate each class's captions (:func:`kakusan.data.captions.caption_table`).
    Randomness from the loop's generator, in this order: the caption uniforms (n,), the drop uniforms (n,), then
    the diffusion loss's own draws."""

    def __init__(self, captions, offsets, counts, caption_drop: float = 0.1):
        from kakusan.diffusion.objectives import DiffusionLoss

        if not 0 <= caption_drop < 1:
            raise KakusanError(f"the caption drop rate must lie in [0, 1), got {caption_drop}")
        self.captions = captions
        self.offsets = torch.as_tensor(offsets, dtype=torch.long)
        self.counts = torch.as_tensor(counts, dtype=torch.long)
        self.null_index = len(captions) - 1
        self.caption_drop = float(caption_drop)
        self.inner = DiffusionLoss("simple", cond_drop=0.0)

    def pick(self, labels: Tensor, generator: torch.Generator) -> Tensor:
        """Caption indices (n,) for class labels (n,), with the drop to the empty caption."""
        labels = labels.long().cpu()
        u = torch.rand(len(labels), generator=generator, device=generator.device).cpu()
        idx = self.offsets[labels] + (u * self.counts[labels]).long().clamp_max(self.counts[labels] - 1)
        drop = torch.rand(len(labels), generator=generator, device=generator.device).cpu() < self.caption_drop
        return torch.where(drop, torch.full_like(idx, self.null_index), idx)

    def __call__(self, model, batch, generator: torch.Generator):
        z, labels = batch
        idx = self.pick(labels, generator)
        cond = self.captions.take(idx).to(z.device)
        return self.inner(model, {"x": z, "cond": cond}, generator)

    def state_dict(self) -> dict[str, Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        pass


@torch.no_grad()
def encode_images(autoencoder, x: Tensor, batch_size: int = 2000) -> Tensor:
    """Scaled posterior-mean latents of every image (n, 4, 7, 7)."""
    return torch.cat([autoencoder.encode(x[i:i + batch_size]).cpu() for i in range(0, len(x), batch_size)])


def caption_conditions(text_encoder):
    """(TextCondition of every training caption then the empty caption, offsets, counts); the embeddings come from
    the disk cache after the first time (:mod:`kakusan.text.cache`)."""
    from kakusan.data.captions import caption_table, training_captions

    from kakusan.text import encode_cached

    texts, _ = training_captions()
    conds = encode_cached(text_encoder, [*texts, ""])  # every training caption, then the empty one
    offsets, counts = caption_table()
    return conds, offsets, counts


def train_denoiser(run, model, latents: Tensor, labels: Tensor, settings: DenoiserSettings, device,
                   progress: bool = True, hooks=()):
    """Stage two (module docstring) on ``model`` (a LatentDiffusion whose autoencoder is trained), in ``run``."""
    from kakusan.data.batches import steps_per_epoch
    from kakusan.text import get_text_encoder
    from kakusan.optim.schedules import make_scheduler
    from kakusan.train import TrainConfig, fit

    captions, offsets, counts = caption_conditions(get_text_encoder("cpu"))
    per_epoch = steps_per_epoch(len(latents), settings.batch_size)
    total = settings.epochs * per_epoch
    ema = min(settings.ema, max(0.0, round(1 - 10 / total, 6)))  # short runs average over their last tenth
    denoiser = model.diffusion
    optimizer = adam(denoiser.parameters(), lr=settings.lr)
    cfg = TrainConfig(steps=total, batch_size=settings.batch_size, log_every=min(per_epoch, 50),
                      checkpoint_every=min(per_epoch, 500), grad_clip=1.0,
                      ema_decays=(ema,) if ema else (), seed=settings.seed, progress=progress,
                      desc="latent diffusion")
    objective = CaptionedLoss(captions.to(device), offsets, counts, settings.caption_drop)
    result = fit(denoiser, objective, (latents.to(device), labels.to(device)), optimizer, cfg, run=run,
                 scheduler=make_scheduler(optimizer, "cosine", total, warmup=min(settings.warmup, total // 5)),
                 hooks=hooks)
    if result.ema is not None:
        result.ema.copy_to(denoiser)
    return result


__all__ += ["DenoiserSettings", "CaptionedLoss", "encode_images", "caption_conditions", "train_denoiser"]

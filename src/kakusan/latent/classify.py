"""The diffusion classifier (Li et al. 2023): rank prompts for an image by the conditional diffusion ELBO.

For an image x and prompts c_1 … c_K, the latent z_0 = E(x) and, for M pairs (t_m, ε_m) shared by all prompts,

    score_k = −(1/M) Σ_m ‖ε_m − ε̂(α_{t_m} z_0 + σ_{t_m} ε_m, t_m, c_k)‖² / D,

the Monte Carlo estimate of −L_simple(z_0 | c_k): up to the constant terms and the weighting of the time steps
(uniform here, as Li et al. use), the conditional ELBO log p(z_0 | c_k). By Bayes with a uniform prior over
the prompts, argmax_k p(c_k | x) = argmax_k p(x | c_k): the model's own generative likelihood is a zero-shot
classifier. Sharing (t_m, ε_m) across the prompts makes the differences between scores much less noisy than the
scores themselves (the same draws cancel). t is stratified: t_m uniform in the m-th of M equal slices of
[1, T].
"""

from __future__ import annotations

import torch

from kakusan.diffusion.conditioning import TextCondition
from kakusan.errors import check_positive_int
from kakusan.runtime import Seed, make_generator

Tensor = torch.Tensor


@torch.no_grad()
def prompt_scores(model, images: Tensor, prompts, samples: int = 32, generator: Seed = None,
                  batch_size: int = 1024) -> Tensor:
    """Scores (n, K) of K prompts (a list, or their TextCondition) for n images; higher is more likely."""
    check_positive_int(samples, "samples")
    ae, diff = model.autoencoder, model.diffusion
    device = next(model.parameters()).device
    cond = prompts if isinstance(prompts, TextCondition) else model.encode_text(list(prompts))
    cond = cond.to(device)
    K, M = len(cond), samples
    z0 = ae.encode(ae.check_images(images)[:, 0])
    n, T = len(z0), diff.schedule.T
    g = make_generator(generator, device)
    # per image: M stratified times and noises, shared by the K prompts
    u = torch.rand((n, M), generator=g, device=device, dtype=torch.float64)
    t = (1 + (torch.arange(M, device=device, dtype=torch.float64) + u) * (T / M)).floor().clamp(1, T)
    eps = torch.randn((n, M, *z0.shape[1:]), generator=g, device=device, dtype=z0.dtype)
    a, s = (v.to(device, z0.dtype).reshape(n, M, 1, 1, 1) for v in diff.schedule.alpha_sigma(t.cpu().reshape(-1)))
    z_t = a * z0[:, None] + s * eps  # (n, M, …)
    scores = torch.empty(n, K, dtype=torch.float64)
    rows = [(i, k) for i in range(n) for k in range(K)]
    per = max(1, batch_size // M)
    for j in range(0, len(rows), per):
        chunk = rows[j:j + per]
        ii = torch.tensor([i for i, _ in chunk], device=device)
        kk = torch.tensor([k for _, k in chunk], device=device)
        x = z_t[ii].reshape(-1, *z0.shape[1:])
        tt = t[ii].reshape(-1)
        c = cond.take(kk.repeat_interleave(M))
        err = ((diff.eps(x, tt.cpu(), c) - eps[ii].reshape(x.shape)) ** 2).flatten(1).mean(1)
        scores[ii.cpu(), kk.cpu()] = -err.reshape(len(chunk), M).mean(1).double().cpu()
    return scores


def classify(model, images: Tensor, prompts, samples: int = 32, generator: Seed = None) -> Tensor:
    """The index of the best prompt for each image, (n,)."""
    return prompt_scores(model, images, prompts, samples, generator).argmax(1)


__all__ = ["prompt_scores", "classify"]

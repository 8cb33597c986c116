"""Diffusion models: the forward process as data, objectives and the VLB, samplers, denoisers, likelihoods.

A diffusion model is a hierarchical VAE whose encoder is fixed: q(x_{1:T} | x_0) adds Gaussian noise on a
schedule, and the decoder p(x_{t−1} | x_t) is learned by predicting the noise (docs/diffusion.md).

Modules: :mod:`~kakusan.diffusion.process` (schedules, log-SNR, ε/x0/v/score conversions),
:mod:`~kakusan.diffusion.truth` (Gaussian-mixture ground truth: exact denoiser, score and density).
"""

from kakusan.diffusion.process import (Schedule, ScheduleConfig, convert, eps_to_score, q_sample, to_eps, to_v,
                                       to_x0)
from kakusan.diffusion.truth import MixtureTruth
from kakusan.diffusion.nets import MLPDenoiserConfig
from kakusan.diffusion.model import Diffusion, DiffusionConfig

__all__ = ["Schedule", "ScheduleConfig", "convert", "eps_to_score", "q_sample", "to_eps", "to_v", "to_x0",
           "MixtureTruth", "MLPDenoiserConfig", "Diffusion", "DiffusionConfig"]

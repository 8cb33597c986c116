"""Training an RBM: configuration of :func:`kakusan.train.fit` for the free-energy contrast.

This module writes no loop and no callback. From an :class:`RBMTrainConfig` it builds the negative
phase, the objective, the optimizer and the learning-rate schedule (a ``LambdaLR``), and an
evaluation hook that measures the log-likelihood (exact when the smaller layer is small, else the
pseudo-log-likelihood) every ``eval_every`` updates; :func:`kakusan.train.fit` runs them, shows the
objective's metrics on its progress bar and keeps the persistent chains with the optimizer in every
checkpoint, so a killed run resumes bit-exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import torch

from kakusan.errors import KakusanError
from kakusan.rbm.base import RBM
from kakusan.rbm.negatives import NEGATIVE_PHASES, NegativePhase, ParallelTempering, PersistentChains
from kakusan.rbm.objective import FreeEnergyContrast, likelihood_proxy
from kakusan.data.batches import steps_per_epoch
from kakusan.optim.schedules import lr_factor, make_scheduler
from kakusan.runtime import make_generator
from kakusan.train import Hook, HookContext, StepOutput, TrainConfig, TrainResult, fit

if TYPE_CHECKING:
    from kakusan.report.run_dir import RunDir

Tensor = torch.Tensor
Method = Literal["cd", "pcd", "pt"]
Schedule = Literal["constant", "linear", "cosine"]


@dataclass(frozen=True)
class RBMTrainConfig:
    """How to train an RBM.

    Attributes
    ----------
    method : negative phase — ``"cd"`` (CD-k), ``"pcd"`` (PCD-k) or ``"pt"`` (PT-PCD).
    epochs, batch_size : passes over the data and examples per update (the last partial batch of an
        epoch is dropped).
    lr, momentum, optimizer : SGD with this (heavy-ball) momentum, or ``"adam"`` (momentum unused).
    lr_schedule : ``"constant"``, ``"linear"`` (to 0 at the end) or ``"cosine"``; applied per update.
    weight_decay : L2 penalty (λ/2)‖W‖².
    k : Gibbs sweeps per update (per swap round for PT).
    n_chains : persistent chains / PT systems (default: batch_size).
    n_temperatures, beta_min : the PT ladder, evenly spaced in β from beta_min to 1.
    offset_rate : sliding rate of the centering offsets (centered Bernoulli RBMs).
    eval_every : updates between evaluations (0: once per epoch; < 0: never); one also runs before training.
    eval_rows : rows of the train and test sets used by each evaluation (0: all).
    exact_limit : evaluate the exact log-likelihood when the enumerated layer has at most this many units.
    log_every, checkpoint_every, seed, progress : as :class:`kakusan.train.TrainConfig`.
    """

    method: Method = "pcd"
    epochs: int = 10
    batch_size: int = 100
    lr: float = 0.05
    momentum: float = 0.5
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr_schedule: Schedule = "constant"
    weight_decay: float = 1e-4
    k: int = 1
    n_chains: int | None = None
    n_temperatures: int = 10
    beta_min: float = 0.5
    offset_rate: float = 0.01
    eval_every: int = 0
    eval_rows: int = 1000
    exact_limit: int = 20
    log_every: int = 10
    checkpoint_every: int = 0
    seed: int = 0
    progress: bool = True


class RBMFitResult(NamedTuple):
    """``train`` from :func:`kakusan.train.fit`; ``evaluations``, one dict per evaluation (step, epoch,
    kind "exact" or "pseudo", train_log_likelihood, test_log_likelihood (nats/example), seconds);
    ``seconds`` of training, evaluations excluded; ``negatives`` the negative phase (with its chains)."""

    train: TrainResult
    evaluations: list[dict]
    seconds: float
    negatives: NegativePhase


def make_negatives(config: RBMTrainConfig) -> NegativePhase:
    """The negative phase named by ``config.method``."""
    if config.method not in NEGATIVE_PHASES:
        raise KakusanError(f"unknown method {config.method!r}: choose cd, pcd or pt")
    if config.method == "cd":
        return NEGATIVE_PHASES["cd"](config.k)
    if config.method == "pcd":
        return PersistentChains(config.k, config.n_chains or config.batch_size)
    return ParallelTempering(config.k, config.n_chains or config.batch_size, n_temperatures=config.n_temperatures,
                             beta_min=config.beta_min)


def make_optimizer(model: RBM, config: RBMTrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (or Adam) over all the model's parameters, at the schedule's first rate.

    The L2 penalty (λ/2)‖W‖² enters as the optimizer's ``weight_decay`` on W alone (the same gradient λW
    as a loss term, added in one pass instead of through autograd).
    """
    if not config.lr > 0:
        raise KakusanError(f"the learning rate must be positive, got {config.lr}")
    if config.weight_decay < 0:
        raise KakusanError(f"weight_decay must be non-negative, got {config.weight_decay}")
    others = [p for name, p in model.named_parameters() if name != "W"]
    groups = [{"params": [model.W], "weight_decay": config.weight_decay}, {"params": others, "weight_decay": 0.0}]
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    if config.optimizer != "sgd":
        raise KakusanError(f"unknown optimizer {config.optimizer!r}: choose sgd or adam")
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def exact_size(model: RBM) -> int:
    """Units in the layer exact enumeration would sum over."""
    from kakusan.rbm.exact import smaller_layer

    return model.n_hidden if smaller_layer(model) == "hidden" else model.n_visible


@torch.no_grad()
def evaluate(model: RBM, train: Tensor, test: Tensor | None = None, *, exact_limit: int = 20,
             generator: torch.Generator | None = None) -> dict[str, float | str]:
    """Mean log-likelihood of train (and test) rows: exact (nats/example) when the smaller layer has at
    most ``exact_limit`` units, else the likelihood proxy (:func:`~kakusan.rbm.objective.likelihood_proxy`,
    the pseudo-log-likelihood from 16 flipped units per example)."""
    from kakusan.rbm.exact import log_z

    if exact_size(model) <= exact_limit:
        lz = log_z(model)
        out: dict[str, float | str] = {"kind": "exact", "log_z": lz,
                                       "train_log_likelihood": float(model.log_prob(train, lz).mean())}
        if test is not None:
            out["test_log_likelihood"] = float(model.log_prob(test, lz).mean())
        return out
    proxy = {split: likelihood_proxy(model, x, generator, n_flips=16)
             for split, x in (("train", train), ("test", test)) if x is not None}
    out = {"kind": "proxy", **{f"{split}_{k}": v for split, d in proxy.items() for k, v in d.items()}}
    return out


def fit_rbm(model: RBM, data: Tensor, config: RBMTrainConfig = RBMTrainConfig(), *, test: Tensor | None = None,
            run: RunDir | None = None, resume: bool = True,
            callback: Callable[[int, StepOutput], None] | None = None) -> RBMFitResult:
    """Train ``model`` on ``data`` (M, n_visible) by the free-energy contrast with ``config.method``'s negatives.

    Parameters
    ----------
    model : an RBM (parameters updated in place).
    data : training data, values matching the model's visible units (0/1, ±1 or real).
    config : :class:`RBMTrainConfig`.
    test : held-out data for the evaluations.
    run : a run directory: metrics, checkpoints (with the persistent chains) and resume.
    resume : continue from ``run``'s last checkpoint when there is one.
    callback : called as ``callback(step, StepOutput)`` after every update.

    Returns
    -------
    :class:`RBMFitResult`.
    """
    data = model.check_visible(data)
    per_epoch = steps_per_epoch(len(data), config.batch_size)
    total = config.epochs * per_epoch
    negatives = make_negatives(config)
    objective = FreeEnergyContrast(negatives, offset_rate=config.offset_rate)  # weight decay: in the optimizer
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config.lr_schedule, total)
    hooks = []
    if config.eval_every >= 0:
        evaluator = _Evaluator(model, data, test, config, per_epoch)
        hooks.append(Hook(per_epoch if config.eval_every == 0 else config.eval_every, evaluator, "eval", at_start=True))
    train_config = TrainConfig(steps=total, batch_size=config.batch_size, log_every=config.log_every,
                               checkpoint_every=config.checkpoint_every, seed=config.seed, progress=config.progress,
                               desc=f"rbm {config.method}")
    result = fit(model, objective, data, optimizer, train_config, run=run, resume=resume, callback=callback,
                 scheduler=scheduler, hooks=hooks)
    return RBMFitResult(result, result.events, result.seconds, negatives)


class _Evaluator:
    """The evaluation hook of :func:`fit_rbm`: log-likelihood of (the first ``eval_rows``) train and test rows."""

    def __init__(self, model: RBM, data: Tensor, test: Tensor | None, config: RBMTrainConfig, per_epoch: int):
        rows = config.eval_rows or len(data)
        self.train_rows = data[:rows]
        self.test_rows = None if test is None else model.check_visible(test)[:rows]
        self.config, self.per_epoch = config, per_epoch

    def __call__(self, ctx: HookContext) -> dict:
        t0 = time.perf_counter()
        record = {"eval": True, "epoch": ctx.step / self.per_epoch,
                  **evaluate(ctx.model, self.train_rows, self.test_rows, exact_limit=self.config.exact_limit,
                             generator=make_generator(ctx.seed))}
        record["seconds"] = time.perf_counter() - t0
        return record


__all__ = ["RBMFitResult", "RBMTrainConfig", "evaluate", "exact_size", "fit_rbm", "lr_factor",
           "make_negatives", "make_optimizer"]

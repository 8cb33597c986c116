"""The one training loop for every torch model: batches, optimizer, schedule, EMA, hooks, checkpoints, DDP.

An *objective* is a callable ``objective(model, batch, generator) -> StepOutput``. ``StepOutput.loss`` is
the tensor to back-propagate — a mean over the batch's examples (for energy-based models, a surrogate
whose gradient is data statistics minus model statistics); ``StepOutput.value``, when the objective can
compute it, is the true objective (e.g. the exact KL) that line-search optimizers compare; ``metrics``
are tensors or floats (per-example tensors are averaged), kept on the device and reduced to means over
each logging interval, so nothing waits for the device between logs.

One call of :func:`fit` does, per optimizer step s:

1. take the batch of step s (:func:`kakusan.data.batches.batch_at`; a tensor, tuple or dict), shard it
   over the ``torchrun`` ranks, apply ``transform(batch, generator)`` (dynamic binarisation, flips);
2. cut it into ``accumulate`` micro-batches, back-propagate each loss weighted by its share of the
   batch (so the gradient equals the whole batch's), clip the gradient norm, step the optimizer
   (closure optimizers — backtracking, L-BFGS — get a closure, as ``torch.optim`` specifies), step the
   scheduler and update the EMA weights;
3. every ``log_every`` steps log metric means (all-reduced over ranks), run the hooks (evaluation,
   sampling) that are due, in ``model.eval()`` and ``torch.no_grad()``, and write the checkpoint when
   it is due: every ``checkpoint_every`` steps, or by default (``checkpoint_every=0``) at the first
   step end at least ``checkpoint_seconds`` (60 s) after the last checkpoint — so epochs shorter than a
   minute are checkpointed about once a minute and longer ones every minute within the epoch, and a
   kill loses about a minute of work at most. The last step is always checkpointed.

The checkpoint ``checkpoints/last`` is one file written atomically (:mod:`kakusan.checkpoint`): model,
EMA weights, optimizer, scheduler, step, every rank's generator and the objective's own state
(``state_dict``/``load_state_dict``, e.g. persistent chains), so a run killed at any instant resumes
bit-identically. An objective whose loss depends on the step (a KL warm-up) may define ``set_step(s)``:
``fit`` calls it with the 0-based step number before each optimizer step (never count steps from tensor
version counters: a fused optimizer does not bump them). Ctrl-C finishes the step, writes the checkpoint and
raises :class:`Interrupted`.

Under ``torchrun`` the model is wrapped, with the objective, in a :class:`LossModule` inside
``DistributedDataParallel``, so gradient hooks fire whatever model methods the objective calls; each
rank gets its shard of each batch and its own generator, and only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from kakusan import checkpoint
from kakusan.data.batches import batch_at, batch_len, device_of, split
from kakusan.errors import CheckpointError, KakusanError
from kakusan.optim.ema import EMA
from kakusan.runtime import make_generator, rank_seed, world
from kakusan.train_state import Interrupted, restore, save_state, sigint_flag, stop_requested


@dataclass
class StepOutput:
    """What an objective returns for one batch: the loss to differentiate, the true value, metrics."""

    loss: torch.Tensor
    value: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


Objective = Callable[[torch.nn.Module, Any, torch.Generator], StepOutput]


@dataclass(frozen=True)
class TrainConfig:
    """Loop settings; the optimizer (and scheduler) are passed to :func:`fit`.

    ``batch_size`` None passes the data whole; ``drop_last`` drops each epoch's partial batch;
    ``accumulate`` splits every batch into that many micro-batches (same gradient, less memory);
    ``ema_decays`` keeps one average of the weights per decay; ``autocast="bf16"`` runs the objective
    in bfloat16 autocast; ``log_every`` steps per logged record (means over the interval);
    ``checkpoint_every`` N checkpoints every N steps, 0 (the default) every ``checkpoint_seconds`` of
    wall time (at the next step end); the last step is always checkpointed.
    """

    steps: int = 1000
    batch_size: int | None = None
    drop_last: bool = True
    log_every: int = 1
    checkpoint_every: int = 0
    checkpoint_seconds: float = 60.0
    grad_clip: float | None = None
    accumulate: int = 1
    ema_decays: tuple[float, ...] = ()
    autocast: str | None = None
    seed: int = 0
    progress: bool = True
    desc: str = "train"


@dataclass
class Hook:
    """A periodic job run every ``every`` steps (and at the last step) in eval mode, without gradients.

    ``fn(context)`` gets a :class:`HookContext` and may return a dict of numbers, which is logged as an
    event (``{"event": name, "step": s, ...}``) and shown on the progress bar. ``at_start`` also runs
    it before the first step of a fresh (not resumed) run.
    """

    every: int
    fn: Callable[["HookContext"], dict[str, Any] | None]
    name: str = "eval"
    at_start: bool = False


@dataclass
class HookContext:
    step: int
    model: torch.nn.Module
    ema: EMA | None
    seed: int  # a seed of the hook's own, from (run seed, step): hooks never touch the training generator
    run: Any


@dataclass
class TrainResult:
    steps: int
    history: list[dict[str, float]]
    resumed_from: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # training time, hooks excluded
    ema: EMA | None = None


class LossModule(torch.nn.Module):
    """``forward(batch, generator)`` runs the objective on the model, so DDP sees one forward."""

    def __init__(self, model: torch.nn.Module, objective: Objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, batch, generator):  # noqa: D401
        return self.objective(self.model, batch, generator)


def fit(model: torch.nn.Module, objective: Objective, data: Any, optimizer: torch.optim.Optimizer,
        config: TrainConfig = TrainConfig(), *, run=None, resume: bool = True,
        callback: Callable[[int, StepOutput], None] | None = None, scheduler=None,
        transform: Callable[[Any, torch.Generator], Any] | None = None,
        hooks: Sequence[Hook] = ()) -> TrainResult:
    """Minimise ``objective`` over ``config.steps`` optimizer steps, writing to ``run`` (a RunDir) if given.

    With a run directory and ``resume=True``, a run that finds ``checkpoints/last`` continues from it.
    A non-finite loss or parameter stops the run with a :class:`KakusanError` and keeps the last
    checkpoint. ``callback(step, out)`` runs after every step (``out`` is the step's StepOutput).
    """
    _check_config(config)
    rank, size = world()
    device = device_of(data, next(iter(model.parameters()), torch.empty(0)).device)
    generator = make_generator(rank_seed(config.seed, rank), device)
    ema = EMA(model, config.ema_decays) if config.ema_decays else None
    start = 0
    if run is not None and resume and checkpoint.exists(run.checkpoints, "last"):
        start = restore(run.checkpoints, model, optimizer, generator, objective, scheduler, ema, rank, size)
    engine = LossModule(model, objective)
    if size > 1:
        from torch.nn.parallel import DistributedDataParallel

        engine = DistributedDataParallel(engine, device_ids=[device.index] if device.type == "cuda" else None)
    loop = _Loop(model, engine, optimizer, config, scheduler, ema, generator, transform, rank, size, device)
    result = TrainResult(steps=config.steps, history=[], resumed_from=start, ema=ema)
    bar = _progress(config, start, rank)
    save = (lambda step: save_state(run.checkpoints, model, optimizer, generator, step, objective, scheduler, ema,
                                    rank, size)) if run is not None else (lambda step: None)
    set_step = getattr(objective, "set_step", None)
    for hook in hooks:
        if hook.at_start and start == 0:
            _run_hook(hook, 0, model, ema, config, run, result, bar, rank)
    t0 = last_save = time.perf_counter()
    with sigint_flag() as interrupted:
        for step in range(start, config.steps):
            batch = None if data is None else batch_at(data, config.batch_size, step, config.seed, config.drop_last)
            if set_step is not None:
                set_step(step)
            out = loop.step(batch)
            done = step + 1
            last = done == config.steps
            if done % config.log_every == 0 or last:
                record = loop.flush(done)
                result.history.append(record)
                if run is not None and rank == 0:
                    run.log_metrics(**record)
                _show(bar, record)
            elif device.type == "cpu":  # cheap here; on a GPU the check waits for the logging interval
                loop.check_finite(done)
            if callback is not None:
                callback(done, out)
            if bar is not None:
                bar.update(1)
            due = [h for h in hooks if h.every > 0 and (done % h.every == 0 or last)]
            if due:
                result.seconds += time.perf_counter() - t0
                for hook in due:
                    _run_hook(hook, done, model, ema, config, run, result, bar, rank)
                t0 = time.perf_counter()
            timed = (not config.checkpoint_every and run is not None
                     and time.perf_counter() - last_save >= config.checkpoint_seconds)
            stop, timed = stop_requested(interrupted, size, device, timed)
            if not last and (stop or timed or (config.checkpoint_every and done % config.checkpoint_every == 0)):
                loop.check_finite(done)
                save(done)
                last_save = time.perf_counter()
            if stop and not last:
                _close(bar)
                where = f"; checkpoint saved in {run.checkpoints}" if run is not None else ""
                raise Interrupted(f"interrupted at step {done} of {config.steps}{where}", done)
        result.seconds += time.perf_counter() - t0
        if config.steps > start:
            loop.check_finite(config.steps)
            save(config.steps)
    _close(bar)
    if size > 1:  # when fit returns, rank 0's checkpoint is written, on every rank
        import torch.distributed as dist

        dist.barrier()
    return result


class _Loop:
    """The per-step work of :func:`fit` and the metric sums of the current logging interval."""

    def __init__(self, model, engine, optimizer, config: TrainConfig, scheduler, ema, generator, transform, rank,
                 size, device):
        self.model, self.engine, self.optimizer, self.config = model, engine, optimizer, config
        self.scheduler, self.ema, self.generator, self.transform = scheduler, ema, generator, transform
        self.rank, self.size, self.device = rank, size, device
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def step(self, batch) -> StepOutput:
        shard, scale = batch, 1.0
        if batch is not None and self.size > 1 and self.config.batch_size is not None:  # full batches: not split
            n = batch_len(batch)
            if n < self.size:
                raise KakusanError(f"a batch of {n} cannot be shared by {self.size} processes: use a batch size of "
                                   f"at least {self.size}")
            shard = split(batch, self.size)[self.rank]
            scale = batch_len(shard) * self.size / n  # DDP averages over ranks: weight each by its share
        if shard is not None and self.transform is not None:
            shard = self.transform(shard, self.generator)
        micro = [shard] if shard is None or self.config.accumulate == 1 else split(shard, self.config.accumulate)
        holder: list[StepOutput] = []

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            outs = []
            for i, mb in enumerate(micro):
                weight = scale * (1.0 if len(micro) == 1 else batch_len(mb) / batch_len(shard))
                sync = i == len(micro) - 1 or not hasattr(self.engine, "no_sync")
                with (contextlib.nullcontext() if sync else self.engine.no_sync()), self._autocast():
                    out = self.engine(mb, self.generator)
                (out.loss * weight if weight != 1.0 else out.loss).backward()
                outs.append((out, weight / scale))
            if self.config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            combined = outs[0][0] if len(outs) == 1 else _combine(outs)
            if not holder:
                holder.append(combined)
            if combined.value is not None:
                return torch.tensor(combined.value, dtype=torch.float64)
            return combined.loss.detach()

        self.optimizer.step(closure)
        if self.scheduler is not None:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        out = holder[0]  # the objective at the parameters the step started from
        self._accumulate(out)
        return out

    def _autocast(self):
        if self.config.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _accumulate(self, out: StepOutput) -> None:
        values = {"loss": out.loss.detach()}
        if out.value is not None:
            values["value"] = torch.tensor(float(out.value), dtype=torch.float64)
        for k, v in out.metrics.items():
            values[k] = v.detach().double().mean() if isinstance(v, torch.Tensor) else torch.tensor(
                float(v), dtype=torch.float64)
        for k, v in values.items():
            v = v.to(torch.float64)
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += 1

    def flush(self, step: int) -> dict[str, float]:
        """The metric means of the interval ending at ``step`` (averaged over ranks), and a finiteness check."""
        names = sorted(self.sums)
        means = torch.stack([self.sums[k].to(self.device) for k in names]) / max(self.count, 1)
        if self.size > 1:
            import torch.distributed as dist

            dist.all_reduce(means)
            means /= self.size
        values = means.tolist()
        self.sums, self.count = {}, 0
        record = {"step": step, **dict(zip(names, values))}
        if not all(v == v and abs(v) != float("inf") for v in (record["loss"], record.get("value", 0.0))):
            raise _diverged(step)
        self.check_finite(step)
        return record

    def check_finite(self, step: int) -> None:
        sums = [p.detach().sum() for p in self.model.parameters()]
        if sums and not bool(torch.isfinite(torch.stack(sums)).all()):
            raise _diverged(step)


def _combine(outs: list[tuple[StepOutput, float]]) -> StepOutput:
    """One StepOutput from micro-batch outputs weighted by their share of the batch."""
    loss = sum(o.loss.detach() * w for o, w in outs)
    value = sum(o.value * w for o, w in outs) if all(o.value is not None for o, _ in outs) else None
    metrics: dict[str, Any] = {}
    for k in outs[0][0].metrics:
        parts = [o.metrics[k] for o, _ in outs if k in o.metrics]
        if len(parts) == len(outs):
            metrics[k] = sum((p.detach().double().mean() if isinstance(p, torch.Tensor) else float(p)) * w
                             for p, (_, w) in zip(parts, outs))
    return StepOutput(loss=loss, value=value, metrics=metrics)


def _diverged(step: int) -> KakusanError:
    return KakusanError(f"training diverged by step {step} (non-finite loss or parameters): lower the learning rate, "
                        "add regularisation or gradient clipping; the last checkpoint is kept")


def _check_config(config: TrainConfig) -> None:
    for name in ("steps", "log_every", "accumulate"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < (0 if name == "steps" else 1):
            raise KakusanError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(config.checkpoint_every, int) or config.checkpoint_every < 0:
        raise KakusanError(f"checkpoint_every must be 0 (every checkpoint_seconds) or a positive number of steps, got "
                           f"{config.checkpoint_every!r}")
    if not config.checkpoint_seconds >= 0:
        raise KakusanError(f"checkpoint_seconds must be ≥ 0, got {config.checkpoint_seconds!r}")
    if config.batch_size is not None and config.batch_size < 1:
        raise KakusanError(f"batch_size must be a positive integer, got {config.batch_size}")
    if config.grad_clip is not None and not config.grad_clip > 0:
        raise KakusanError(f"grad_clip must be positive, got {config.grad_clip}")
    if config.autocast not in (None, "bf16"):
        raise KakusanError(f"autocast must be None or 'bf16', got {config.autocast!r}")


def _run_hook(hook: Hook, step: int, model, ema, config, run, result: TrainResult, bar, rank: int) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            values = hook.fn(HookContext(step, model, ema, rank_seed(config.seed * 7 + 1 + step, rank), run))
    finally:
        model.train(was_training)
    if values:
        event = {"event": hook.name, "step": step, **values}
        result.events.append(event)
        if run is not None and rank == 0:
            run.log_metrics(**event)
        _show(bar, {f"{k}": v for k, v in values.items() if isinstance(v, (int, float))})


def _progress(config: TrainConfig, start: int, rank: int):
    if not config.progress or rank != 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=config.steps, initial=start, desc=config.desc, unit="step", file=sys.stderr, leave=False,
                disable=None)


def _show(bar, values: dict[str, Any]) -> None:
    if bar is None:
        return
    post = dict(getattr(bar, "_kakusan_post", {}))
    post.update({k: f"{v:.4g}" for k, v in values.items() if k != "step" and isinstance(v, (int, float))})
    bar._kakusan_post = post
    bar.set_postfix(post, refresh=False)


def _close(bar) -> None:
    if bar is not None:
        bar.close()


__all__ = ["CheckpointError", "Hook", "HookContext", "Interrupted", "LossModule", "Objective", "StepOutput",
           "TrainConfig", "TrainResult", "batch_at", "fit"]

"""One training loop for every torch objective: batches, optimizer, metrics, progress, checkpoint/resume.

An *objective* is a callable ``objective(model, batch, generator) -> StepOutput``. ``StepOutput.loss``
is the tensor to back-propagate (for energy-based models, a surrogate whose gradient is data statistics
minus model statistics); ``StepOutput.value``, when the objective can compute it, is the true objective
(e.g. the exact KL) that line-search optimizers compare; ``metrics`` go to ``metrics.jsonl``.

Optimizers follow ``torch.optim``; those that need to re-evaluate the objective (backtracking, L-BFGS)
get a closure, as ``torch.optim`` specifies.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from kakusan.errors import KakusanError
from kakusan.report.checkpoint import load_tensors, save_model, save_tensors
from kakusan.report.run_dir import RunDir
from kakusan.runtime import make_generator


@dataclass
class StepOutput:
    """What an objective returns for one batch: the loss to differentiate, the true value, metrics."""

    loss: torch.Tensor
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


Objective = Callable[[torch.nn.Module, Any, torch.Generator], StepOutput]


@dataclass(frozen=True)
class TrainConfig:
    """Loop settings; the optimizer itself is passed to :func:`fit`."""

    steps: int = 1000
    batch_size: int | None = None  # None: full batch (the data tensor is passed whole)
    log_every: int = 1
    checkpoint_every: int = 0  # 0: only at the end (when a run directory is given)
    grad_clip: float | None = None
    seed: int = 0
    progress: bool = True


@dataclass
class TrainResult:
    steps: int
    history: list[dict[str, float]]
    resumed_from: int = 0


def batch_at(data: torch.Tensor, batch_size: int | None, step: int, seed: int) -> torch.Tensor:
    """The batch of optimizer step ``step``: the whole tensor, or a mini-batch of that epoch's permutation.

    Each epoch's permutation comes from (seed, epoch) alone, so a resumed run sees the same batches.
    """
    if batch_size is None or batch_size >= len(data):
        return data
    per_epoch = len(data) // batch_size
    epoch, i = divmod(step, per_epoch)
    perm = _epoch_permutation(len(data), seed, epoch)
    return data[perm[i * batch_size : (i + 1) * batch_size]]


@functools.lru_cache(maxsize=2)
def _epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def fit(model: torch.nn.Module, objective: Objective, data: torch.Tensor | None, optimizer: torch.optim.Optimizer,
        config: TrainConfig = TrainConfig(), *, run: RunDir | None = None, resume: bool = True,
        callback: Callable[[int, StepOutput], None] | None = None) -> TrainResult:
    """Minimise ``objective`` over ``config.steps`` optimizer steps, writing to ``run`` if given.

    With a run directory and ``resume=True``, a run that finds ``checkpoints/last`` continues from it
    (model, optimizer, step and generator state), so a killed run picks up where it stopped.
    A non-finite loss or parameter stops the run with a :class:`KakusanError` and keeps the last checkpoint.
    """
    generator = make_generator(config.seed)
    start = _resume(run, model, optimizer, generator, objective) if (run is not None and resume) else 0
    history: list[dict[str, float]] = []
    steps = range(start, config.steps)
    if config.progress:
        from tqdm import tqdm

        steps = tqdm(steps, initial=start, total=config.steps, desc="train", file=sys.stderr, leave=False,
                     disable=None)
    for step in steps:
        batch = None if data is None else batch_at(data, config.batch_size, step, config.seed)
        out = _step(model, objective, batch, optimizer, generator, config.grad_clip)
        _check_finite(model, out, step)
        record = {"step": step + 1, "loss": float(out.loss.detach()), **out.metrics}
        if out.value is not None:
            record["value"] = out.value
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            history.append(record)
            if run is not None:
                run.log_metrics(**record)
        if config.progress and hasattr(steps, "set_postfix"):
            steps.set_postfix(loss=f"{record.get('value', record['loss']):.4g}", refresh=False)
        if callback is not None:
            callback(step + 1, out)
        if run is not None and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
            save_training_state(run, model, optimizer, generator, step + 1, objective)
    if run is not None and config.steps > start:
        save_training_state(run, model, optimizer, generator, config.steps, objective)
    return TrainResult(steps=config.steps, history=history, resumed_from=start)


def _step(model, objective, batch, optimizer, generator, grad_clip) -> StepOutput:
    holder: dict[str, StepOutput] = {}

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        out = objective(model, batch, generator)
        out.loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        holder.setdefault("first", out)
        return torch.tensor(out.value, dtype=torch.float64) if out.value is not None else out.loss.detach()

    optimizer.step(closure)
    return holder["first"]  # the objective at the parameters the step started from


def _check_finite(model: torch.nn.Module, out: StepOutput, step: int) -> None:
    # a sum is non-finite whenever an element is: one reduction per parameter, no full-size temporaries
    sums = [p.detach().sum() for p in model.parameters()]
    bad = not torch.isfinite(out.loss.detach()).all() or (sums and not bool(torch.isfinite(torch.stack(sums)).all()))
    if bad:
        raise KakusanError(
            f"training diverged at step {step + 1} (non-finite loss or parameters): lower the learning rate, "
            "add regularisation or gradient clipping; the last checkpoint is kept"
        )


def save_training_state(run: RunDir, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        generator: torch.Generator, step: int, objective: Objective | None = None) -> None:
    """Write ``checkpoints/last``: model (rebuildable by name), optimizer state, step and generator state.

    An objective with state of its own (e.g. an RBM's persistent chains) exposes ``state_dict()`` →
    {name: tensor} and ``load_state_dict(tensors)``; its tensors go into the same file as the optimizer
    and the step, so they are always restored together.
    """
    tensors, plain = _flatten_optimizer_state(optimizer.state_dict())
    tensors["generator_state"] = generator.get_state()
    if hasattr(objective, "state_dict"):
        tensors.update({f"objective.{k}": v.detach().cpu().contiguous() for k, v in objective.state_dict().items()})
    save_tensors(run.checkpoints, "optimizer", tensors, {"step": step, "optimizer": type(optimizer).__name__,
                                                         "state": plain})
    save_model(run.checkpoints, model, name="last", meta={"step": step})


def _resume(run: RunDir, model, optimizer, generator, objective=None) -> int:
    if not (run.path / "checkpoints" / "last.json").exists():
        return 0
    model_tensors, _ = load_tensors(run.checkpoints, "last")
    model.load_state_dict(model_tensors)
    tensors, info = load_tensors(run.checkpoints, "optimizer")
    generator.set_state(tensors.pop("generator_state"))
    own = {k.removeprefix("objective."): tensors.pop(k) for k in [k for k in tensors if k.startswith("objective.")]}
    if own and hasattr(objective, "load_state_dict"):
        objective.load_state_dict(own)
    optimizer.load_state_dict(_unflatten_optimizer_state(tensors, info["state"]))
    return int(info["step"])


def _flatten_optimizer_state(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and a JSON-able remainder."""
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict] = {}
    for pid, entry in state["state"].items():
        plain_state[str(pid)] = {}
        for k, v in entry.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{pid}.{k}"] = v
            else:
                plain_state[str(pid)][k] = v
    return tensors, {"state": plain_state, "param_groups": state["param_groups"]}


def _unflatten_optimizer_state(tensors: dict[str, torch.Tensor], plain: dict) -> dict:
    state: dict[int, dict] = {int(pid): dict(entry) for pid, entry in plain["state"].items()}
    for key, v in tensors.items():
        _, pid, k = key.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    return {"state": state, "param_groups": plain["param_groups"]}

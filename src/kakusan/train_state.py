"""A training run's checkpoint, ``checkpoints/last``: everything a bit-exact resume needs, in one file.

Parts (see :mod:`kakusan.checkpoint`): ``model``; ``ema@d`` per EMA decay; ``optimizer`` (its tensor
state); ``objective`` (an objective's own ``state_dict()``, e.g. persistent chains); ``generator``
(``rank0``, ``rank1``, … — every process's generator state). The manifest holds the model's class and
config (so ``kakusan.load(run, weights="last")`` rebuilds it), the step, the optimizer's and the
scheduler's non-tensor state, the EMA decays and the number of processes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path

import torch

from kakusan import checkpoint
from kakusan.errors import CheckpointError, KakusanError

NAME = "last"


class Interrupted(KakusanError):
    """Ctrl-C during training: the step finished and the checkpoint was written; ``step`` is where it stopped."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def save_state(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
               step: int, objective=None, scheduler=None, ema=None, rank: int = 0, size: int = 1) -> None:
    """Write ``last`` (rank 0 only; every rank's generator state is gathered to it)."""
    states = _gather_generators(generator, rank, size)
    if rank != 0:
        return
    opt_tensors, opt_plain = flatten_optimizer_state(optimizer.state_dict())
    parts = {"model": model.state_dict(), "optimizer": opt_tensors,
             "generator": {f"rank{r}": s for r, s in enumerate(states)}}
    described = {"model": {"kind": "model"}, "optimizer": {"kind": "training"}, "generator": {"kind": "training"}}
    if ema is not None:
        parts.update(ema.parts())
        described.update({p: {"kind": "ema"} for p in ema.parts()})
    if hasattr(objective, "state_dict"):
        parts["objective"] = {k: v for k, v in objective.state_dict().items()}
        described["objective"] = {"kind": "training"}
    try:
        manifest = checkpoint.model_manifest(model)
    except CheckpointError:  # an unregistered model still resumes; it just cannot be loaded by name
        manifest = {}
    manifest.update({"parts": described, "step": step, "world_size": size,
                     "optimizer": {"type": type(optimizer).__name__, "state": opt_plain},
                     "scheduler": None if scheduler is None else _jsonable_scheduler(scheduler.state_dict()),
                     "ema_decays": [] if ema is None else list(ema.decays)})
    checkpoint.save(directory, NAME, parts, manifest)


def restore(directory: Path, model, optimizer, generator, objective=None, scheduler=None, ema=None, rank: int = 0,
            size: int = 1) -> int:
    """Load ``last`` into the given objects; return its step.

    The checkpoint must be format 3 (its manifest — step, optimizer and scheduler state — is hashed with
    the tensors); an older one is refused in one line unless ``KAKUSAN_TRUST_OLD_CHECKPOINTS=1`` (format 2
    only). Shapes must fit the model and weights, EMA averages and optimizer state must be finite.
    """
    path = checkpoint.path_of(directory, NAME)
    parts, head = checkpoint.load(directory, NAME)
    fmt = head.get("format", 1)
    if fmt < checkpoint.FORMAT and (fmt < 2 or not checkpoint.trust_old()):
        how = (f"; or set {checkpoint.TRUST_OLD}=1 to resume it anyway (its next checkpoint gets the full hash)"
               if fmt >= 2 else "")
        raise CheckpointError(f"{path} was written by an older kakusan (checkpoint format {fmt}), before its step "
                              "and optimizer state were covered by a hash: it loads for sampling but does not resume; "
                              f"start a new run directory{how}")
    try:
        return _restore(path, parts, head, model, optimizer, generator, objective, scheduler, ema, rank, size)
    except KakusanError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as e:
        raise CheckpointError(f"{path} does not fit this run ({type(e).__name__}: {checkpoint._first_line(e)}): "
                              "resume with the settings the run was started with") from None


def _restore(path, parts, head, model, optimizer, generator, objective, scheduler, ema, rank, size) -> int:
    if head.get("world_size", 1) != size:
        raise CheckpointError(f"the run was trained by {head.get('world_size', 1)} processes and is resumed by {size}:"
                              f" resume with --nproc-per-node {head.get('world_size', 1)}")
    step = head.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{path} records no valid step ({step!r}); the checkpoint is damaged")
    if "model" not in parts:
        raise CheckpointError(f"{path} has no model part; it is not a training checkpoint")
    fresh = model.state_dict()  # before loading: where the untrained model itself is non-finite, so may an EMA be
    for name, state in parts.items():
        if name == "optimizer" or name.startswith("ema"):
            _check_finite(path, name, state, fresh if name.startswith("ema") else {})
    checkpoint.check_weights(path, model, parts["model"], "model")
    optimizer.load_state_dict(unflatten_optimizer_state(parts.get("optimizer", {}), head["optimizer"]["state"]))
    generator.set_state(parts["generator"][f"rank{rank}"])
    if hasattr(objective, "load_state_dict") and parts.get("objective"):
        objective.load_state_dict(parts["objective"])
    if (scheduler is None) != (head.get("scheduler") is None):
        raise CheckpointError(f"the run was saved {'without' if scheduler is not None else 'with'} a learning-rate "
                              "scheduler: resume with the settings it was started with")
    if scheduler is not None:
        scheduler.load_state_dict(head["scheduler"])
    if ema is not None:
        ema.load_parts(parts)
    return step


def _check_finite(path: Path, part: str, state: dict, reference: dict) -> None:
    """Refuse NaN/inf in a part's floating tensors, except where ``reference`` (the fresh model) has them too."""
    for key, value in state.items():
        if not (torch.is_tensor(value) and value.is_floating_point()):
            continue
        bad = ~torch.isfinite(value)
        ref = reference.get(key)
        if torch.is_tensor(ref) and ref.shape == value.shape and ref.is_floating_point():
            bad &= torch.isfinite(ref)
        if bool(bad.any()):
            raise CheckpointError(f"{path}: part {part!r} tensor {key!r} holds {int(bad.sum())} non-finite value(s); "
                                  "the run diverged or the file was damaged")


@contextlib.contextmanager
def sigint_flag():
    """While training, the first Ctrl-C only raises a flag (the step finishes and a checkpoint is written)."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if flag["set"]:  # a second Ctrl-C: stop at once
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag["set"] = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_requested(flag: dict, size: int, device: torch.device, due: bool = False) -> tuple[bool, bool]:
    """(Ctrl-C seen, a timed checkpoint due) — on any rank, so every rank agrees (one all-reduce under DDP)."""
    if size == 1:
        return flag["set"], due
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag["set"] else 0.0, 1.0 if due else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t[0].item() > 0), bool(t[1].item() > 0)


def _gather_generators(generator: torch.Generator, rank: int, size: int) -> list[torch.Tensor]:
    state = generator.get_state()
    if size == 1:
        return [state]
    import torch.distributed as dist

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    local = state.to(device)
    gathered = [torch.empty_like(local) for _ in range(size)]
    dist.all_gather(gathered, local)
    return [g.cpu() for g in gathered]


def _jsonable_scheduler(state: dict) -> dict:
    out = {}
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        out[k] = v
    return out


def flatten_optimizer_state(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
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


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], plain: dict) -> dict:
    state: dict[int, dict] = {int(pid): dict(entry) for pid, entry in plain["state"].items()}
    for key, v in tensors.items():
        _, pid, k = key.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    return {"state": state, "param_groups": plain["param_groups"]}


__all__ = ["Interrupted", "flatten_optimizer_state", "restore", "save_state", "sigint_flag", "stop_requested",
           "unflatten_optimizer_state"]

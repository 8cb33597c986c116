"""One way to pick a device, a random generator and the thread count."""

from __future__ import annotations

import os

import torch

from kakusan.errors import KakusanError

Seed = int | torch.Generator | None


def pick_device(name: str | None = None) -> torch.device:
    """Return ``torch.device(name)``; ``None`` or ``"auto"`` picks CUDA when present, else CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise KakusanError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise KakusanError(f"device {name!r} asked for but no CUDA GPU is available: use --device cpu")
    return device


def make_generator(seed: Seed = None, device: torch.device | str | None = None) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` from a seed or a generator (``None`` draws a fresh seed).

    A generator already on ``device`` (or any generator when ``device`` is None) passes through. A
    generator on another device — a CPU training generator for chains on a GPU — seeds a new generator
    on ``device`` with one 62-bit draw from it: deterministic given its state, and checkpointing the
    CPU generator is enough to resume. A seed gives a generator on ``device`` (the CPU when None).

    The library never seeds torch's global generator: every random function takes the
    generator this returns, so the same seed gives the same result.
    """
    if isinstance(seed, torch.Generator):
        if device is None or _same_device(seed.device, torch.device(device)):
            return seed
        derived = int(torch.randint(0, 2**62, (1,), generator=seed, device=seed.device))
        return torch.Generator(device=device).manual_seed(derived)
    g = torch.Generator(device="cpu" if device is None else device)
    if seed is None:
        g.seed()
    else:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise KakusanError(f"seed must be a non-negative integer, got {seed!r}")
        g.manual_seed(seed)
    return g


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Whether a and b are one device (``cuda`` without an index means the current GPU)."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device()
    return (current if a.index is None else a.index) == (current if b.index is None else b.index)


def set_threads(n: int | None = None) -> int:
    """Size torch's intra-op thread pool to the cores this process may use (or to ``n``)."""
    if n is None:
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            n = os.cpu_count() or 1
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless a ``torch.distributed`` group is running."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str | None = None) -> tuple[int, int]:
    """Join the process group ``torchrun`` set up (env ``WORLD_SIZE`` > 1): gloo on CPU, NCCL on GPU.

    Returns (rank, world size); a single process (no ``torchrun``) returns (0, 1) and starts nothing.
    On GPU each rank takes the device ``LOCAL_RANK``.
    """
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return world()
    use_cuda = device not in (None, "auto") and str(device).startswith("cuda") or (
        device in (None, "auto") and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return world()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s generator: ``seed`` itself on rank 0, a distinct derived seed elsewhere."""
    return seed if rank == 0 else (seed * 1_000_003 + 7919 * rank) % (2**63 - 1)


def broadcast_text(text: str | None) -> str:
    """Rank 0's ``text`` on every rank (bytes in a tensor: nothing is pickled)."""
    import torch.distributed as dist

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    data = torch.tensor(list((text or "").encode()), dtype=torch.uint8, device=device)
    size = torch.tensor([data.numel()], dtype=torch.int64, device=device)
    dist.broadcast(size, 0)
    buf = data if dist.get_rank() == 0 else torch.empty(int(size.item()), dtype=torch.uint8, device=device)
    dist.broadcast(buf, 0)
    return bytes(buf.cpu().tolist()).decode()


def finish_distributed(barrier: bool = True, exit_status: int | None = None) -> None:
    """Leave the process group cleanly (a barrier when all went well, then destroy): a rank that exits with
    gloo's threads still running aborts ("terminate called without an active exception").

    Even after the destroy, gloo's C++ objects can still abort in the interpreter's teardown now and then (seen
    once in ~20 two-rank runs, after all work was done and written), and torchrun then reports a failed run. With
    ``exit_status`` the process flushes its streams and leaves by ``os._exit(exit_status)`` straight after the
    destroy, skipping that teardown; everything kakusan writes is closed and fsync'd by then."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()
    if exit_status is not None:
        import os
        import sys

        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        os._exit(exit_status)

"""A run directory: ``config.json``, ``argv.json``, ``metrics.jsonl``, ``checkpoints/``, ``figures/``.

A run never overwrites another run's directory: an automatic name gets a numeric suffix on a
collision, and an explicit directory that already holds files is refused.

Under ``torchrun`` rank 0 creates the directory and tells the other ranks its name; they read from it
(a resumed checkpoint) but write nothing: their metrics, config and JSON writes are skipped and their
figures go to a scratch folder.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from kakusan.errors import KakusanError
from kakusan.files import atomic_save_npy, atomic_write_bytes, atomic_write_json, to_jsonable

__all__ = ["RunDir", "atomic_save_npy", "atomic_write_bytes", "atomic_write_json", "to_jsonable"]


class RunDir:
    """The directory one command writes; see the module docstring for its layout."""

    def __init__(self, path: Path, writer: bool | None = None):
        self.path = Path(path)
        if writer is None:
            from kakusan.runtime import world

            writer = world()[0] == 0
        self.writer = writer

    @classmethod
    def create(cls, command: str, path: str | Path | None = None, root: str | Path = "runs") -> "RunDir":
        """Make a fresh run directory: ``path`` if given (must be new or empty), else ``root/command-TIME``.

        Under ``torchrun``, rank 0 makes it and the other ranks get the same path (see the module docstring).
        """
        from kakusan.runtime import broadcast_text, world

        rank, size = world()
        if size == 1:
            return cls._make(command, path, root)
        made = cls._make(command, path, root).path if rank == 0 else None
        return cls(Path(broadcast_text(None if made is None else str(made))), writer=rank == 0)

    @classmethod
    def _make(cls, command: str, path: str | Path | None, root: str | Path) -> "RunDir":
        if path is not None:
            p = Path(path)
            if p.is_dir() and any(p.iterdir()) and _stopped_before_checkpoint(p):
                _clear(p)
                sys.stderr.write(f"kakusan: note: reusing {p}: its earlier run stopped before its first checkpoint\n")
            if p.exists() and (not p.is_dir() or any(p.iterdir())):
                raise KakusanError(
                    f"run directory {p} already exists and is not empty: choose another --run-dir or remove it"
                )
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise KakusanError(f"cannot create run directory {p}: {e.strerror}; choose another --run-dir") from None
            return cls(p)
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise KakusanError(f"cannot create {root}: {e.strerror}; pass --run-dir somewhere writable") from None
        stem = f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"
        for k in range(1, 10_000):
            p = root / (stem if k == 1 else f"{stem}-{k}")
            try:
                p.mkdir()
            except FileExistsError:
                continue
            return cls(p)
        raise KakusanError(f"could not find a free run directory name under {root}")  # pragma: no cover

    @property
    def figures(self) -> Path:
        if not self.writer:
            import tempfile

            return Path(tempfile.mkdtemp(prefix="kakusan-figures-"))
        p = self.path / "figures"
        p.mkdir(exist_ok=True)
        return p

    @property
    def checkpoints(self) -> Path:
        p = self.path / "checkpoints"
        p.mkdir(exist_ok=True)
        return p

    def write_config(self, config: Any, argv: list[str] | None = None) -> None:
        """Save the resolved configuration (it should name the model class) and the argv."""
        if not self.writer:
            return
        atomic_write_json(self.path / "config.json", config)
        atomic_write_json(self.path / "argv.json", list(sys.argv if argv is None else argv))

    def log_metrics(self, **metrics: Any) -> None:
        """Append one JSON line of metrics (e.g. ``step=3, loss=0.1``) to ``metrics.jsonl``."""
        if not self.writer:
            return
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(to_jsonable(metrics)) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.path / name
        if not self.writer:
            return path
        atomic_write_json(path, obj)
        return path


_RUN_FILES = {"config.json", "argv.json", "metrics.jsonl"}
_RUN_FOLDERS = {"checkpoints", "figures"}


def _temporary(entry: Path) -> bool:
    """A file an atomic write left behind when its process was killed (``.NAME.tmp-PID``)."""
    return entry.is_file() and entry.name.startswith(".") and ".tmp-" in entry.name


def _stopped_before_checkpoint(p: Path) -> bool:
    """Whether ``p`` holds only what a training run writes before its first checkpoint (so rerunning loses nothing).

    That is: its config, argv and metrics, a ``checkpoints`` folder with no checkpoint in it (at most the
    temporary file of a killed write), a ``figures`` folder and temporary files — no summary, no model, no
    file of anyone else's — and a config, if readable, of a training command (it has a ``train`` entry).
    """
    for entry in p.iterdir():
        if _temporary(entry) or (entry.name in _RUN_FILES and entry.is_file()):
            continue
        if entry.name in _RUN_FOLDERS and entry.is_dir() and not entry.is_symlink():
            inside = list(entry.iterdir())
            if all(f.is_file() and not f.is_symlink() for f in inside) and (
                    entry.name == "figures" or all(_temporary(f) for f in inside)):
                continue
        return False
    config = p / "config.json"
    if config.is_file():
        try:
            recorded = json.loads(config.read_text())
        except (OSError, ValueError):
            return True  # killed while writing it (atomic writes make this rare)
        return isinstance(recorded, dict) and "train" in recorded
    return True


def _clear(p: Path) -> None:
    for entry in p.iterdir():
        if entry.is_dir():
            for f in entry.iterdir():
                f.unlink()
            entry.rmdir()
        else:
            entry.unlink()

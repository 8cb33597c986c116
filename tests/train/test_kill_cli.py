"""`kakusan rbm train` killed (SIGKILL) and interrupted (SIGINT) at random moments of every phase resumes bit-exactly.

Each attempt starts the real CLI in one run directory — with ``--resume`` once a training checkpoint is
there, plainly otherwise (a run stopped before its first checkpoint is rerun in its own directory) — and
signals it at a random moment of one phase: start-up (imports, data), training (just as a checkpoint is
being written, or shortly after), or the end (the exported model and figures). After every signal the
checkpoints read back whole (hashes checked); an interrupted process exits with status 130 and one line.
The run finished by the last ``--resume`` must equal an uninterrupted run bit for bit.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from kakusan import checkpoint

ARGS = ["rbm", "train", "--data", "digits", "--hidden", "16", "--epochs", "8", "--samples", "0",
        "--checkpoint-every", "1", "--seed", "3"]
PHASES = (["start", "write", "training"] * 5 + ["start", "write", "start"]) + ["end"] * 2  # 20 signals


def _enough(kills: dict, signals: dict) -> bool:
    """At least 20 signals landed, in every phase (8 or more while training) and of both kinds."""
    return (sum(kills.values()) >= 20 and all(kills.values()) and all(signals.values())
            and kills["training"] + kills["write"] >= 8)


def _command(run_dir, resume):
    return [sys.executable, "-m", "kakusan", *ARGS, "--run-dir", str(run_dir), *(["--resume"] if resume else [])]


def _env():
    return {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _wait_for(proc, ready, limit=120.0):
    """Poll until ``ready()`` or the process ends; True when ready while it still runs."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(0.0005)
    return False


@pytest.mark.slow
def test_sigkill_and_sigint_in_every_phase_resume_bit_identically(tmp_path):
    rng = random.Random(2024)
    whole = subprocess.run(_command(tmp_path / "whole", False), capture_output=True, text=True, env=_env(),
                           timeout=300)
    assert whole.returncode == 0, whole.stderr

    run = tmp_path / "killed"
    ckpts = run / "checkpoints"
    kills = {"start": 0, "write": 0, "training": 0, "end": 0}
    signals = {signal.SIGKILL: 0, signal.SIGINT: 0}
    steps, mid_write, finished_early = [], 0, 0
    # the schedule once, then again while fewer than 20 signals landed: on a loaded machine a signal can come after
    # its attempt finished the run (that run is checked, and the next attempt starts anew)
    for i, phase in enumerate(PHASES * 2):
        if i >= len(PHASES) and _enough(kills, signals):
            break
        sig = signal.SIGKILL if i % 2 == 0 else signal.SIGINT
        resume = checkpoint.exists(ckpts, "last")
        proc = subprocess.Popen(_command(run, resume), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_env())
        if phase == "start":
            ready = _wait_for(proc, lambda t=time.monotonic() + rng.uniform(0.05, 1.5): time.monotonic() > t)
        elif phase == "write":  # a checkpoint is being written: its temporary file is there
            stale = set(ckpts.glob(".last.safetensors.tmp-*"))  # left by an earlier kill mid-write
            ready = _wait_for(proc, lambda: bool(set(ckpts.glob(".last.safetensors.tmp-*")) - stale))
        elif phase == "training":  # some steps after training began
            before = ckpts.joinpath("last.safetensors").stat().st_mtime_ns if resume else 0
            ready = _wait_for(proc, lambda: (ckpts / "last.safetensors").exists()
                              and (ckpts / "last.safetensors").stat().st_mtime_ns != before)
            time.sleep(rng.uniform(0.0, 0.03))
        else:  # the end: the model is exported, figures are drawn
            ready = _wait_for(proc, lambda: (ckpts / "model.safetensors").exists())
            time.sleep(rng.uniform(0.0, 0.3))
        if ready and proc.poll() is None:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            kills[phase] += 1
            signals[sig] += 1
            mid_write += any(ckpts.glob(".last.safetensors.tmp-*"))
        if sig == signal.SIGINT and proc.returncode == 130:
            # one line; a rerun in the directory of a run stopped before its first checkpoint first notes the reuse
            lines = [l for l in err.splitlines() if not l.startswith("kakusan: note: reusing ")]
            assert len(lines) == 1 and lines[0].startswith("kakusan: interrupted"), err
        else:
            assert proc.returncode in (0, -sig, 130), (phase, sig, proc.returncode, err)
        if checkpoint.exists(ckpts, "last"):  # whole after every signal: hashes check
            steps.append(checkpoint.load(ckpts, "last")[1]["step"])
        if proc.returncode == 0 and phase != "end" and checkpoint.exists(ckpts, "model"):
            # the signal came too late (a loaded machine): this attempt finished the run, which must then equal the
            # uninterrupted one; the next attempts start a new run in the same directory, so every phase keeps its
            # chance to be hit
            _assert_same(tmp_path / "whole" / "checkpoints", ckpts)
            shutil.rmtree(run)
            steps.clear()
            finished_early += 1

    assert _enough(kills, signals), (kills, signals, finished_early)
    assert steps == sorted(steps)  # never went back
    final = subprocess.run(_command(run, checkpoint.exists(ckpts, "last")), capture_output=True, text=True,
                           env=_env(), timeout=300)
    assert final.returncode == 0, final.stderr

    _assert_same(tmp_path / "whole" / "checkpoints", ckpts)
    print(f"kills by phase {kills}, by signal {dict((s.name, n) for s, n in signals.items())}, "
          f"{mid_write} left a half-written checkpoint, {finished_early} attempts finished before their signal")


def _assert_same(whole, ckpts):
    """The run in ``ckpts`` ends bit-identical to the uninterrupted one in ``whole``: last and exported model."""
    for name in ("last", "model"):
        a, head_a = checkpoint.load(whole, name)
        b, head_b = checkpoint.load(ckpts, name)
        assert set(a) == set(b)
        for part in a:
            assert set(a[part]) == set(b[part]), (name, part)
            for key in a[part]:
                assert torch.equal(a[part][key], b[part][key]), (name, part, key)
        assert head_a.get("step") == head_b.get("step") and head_a.get("meta") == head_b.get("meta")

"""Damaged run directories: a ``config.json`` truncated, bit-flipped, header-scrambled or with trailing bytes; one
edited into something else (no command, another command, a misfit ``data`` entry, not an object); and damaged
checkpoint files (the checkpoint's integrity checks). Every command that reads a run ends with one line, or reads
an intact run."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .support import CORRUPTION, corrupt, examples, fresh

EXTRA = {"rbm evaluate": ["--exact"], "rbm sample": ["-n", "2", "--steps", "2"], "vae evaluate": ["--k", "2"],
         "vae reconstruct": ["-n", "2"], "diffusion evaluate": ["--n-t", "2"], "sample": ["-n", "2", "--steps", "2"]}


@examples(50)
@given(c=CORRUPTION, command=st.sampled_from(["rbm evaluate", "rbm sample", "vae evaluate", "diffusion evaluate",
                                              "sample"]))
def test_corrupted_config_json_is_one_line(probe, home, runs, c, command):
    kind = command.split()[0] if command != "sample" else "rbm"
    copy = fresh(home, "cfg")
    shutil.copytree(runs[kind], copy)
    cfg = copy / "config.json"
    cfg.write_bytes(corrupt(cfg.read_bytes(), *c))
    probe([*command.split(), copy, *EXTRA[command], "--runs-root", home / "cfg-runs"])
    shutil.rmtree(copy)


CONFIG_EDITS = {
    "no command": lambda c: {k: v for k, v in c.items() if k != "command"},
    "command null": lambda c: {**c, "command": None},
    "other command": lambda c: {**c, "command": "gaussian fit"},
    "no data": lambda c: {k: v for k, v in c.items() if k != "data"},
    "data a list": lambda c: {**c, "data": [1, 2]},
    "data extra key": lambda c: {**c, "data": {**c["data"], "colour": "red"}},
    "a list": lambda c: [c],
    "NaN token": lambda c: "NaN",
}


@pytest.mark.parametrize("edit", list(CONFIG_EDITS), ids=list(CONFIG_EDITS))
@pytest.mark.parametrize("command", ["rbm evaluate", "rbm sample", "vae evaluate", "vae reconstruct",
                                     "diffusion evaluate"])
def test_edited_config_json_is_one_line(fails, home, runs, edit, command):
    kind = command.split()[0]
    copy = fresh(home, f"edit-{kind}-")
    shutil.copytree(runs[kind], copy)
    config = json.loads((copy / "config.json").read_text())
    edited = CONFIG_EDITS[edit](config)
    (copy / "config.json").write_text(edited if isinstance(edited, str) else json.dumps(edited))
    err = fails([*command.split(), copy, *EXTRA[command], "--runs-root", home / "edit-runs"])
    assert "None" not in err, err
    shutil.rmtree(copy)


@examples(40)
@given(c=CORRUPTION, kind=st.sampled_from(["rbm", "vae", "diffusion"]))
def test_corrupted_checkpoints_are_one_line(probe, home, runs, c, kind):
    """Damaged checkpoint files (the checkpoint module's integrity checks) end with one line, or load intact."""
    copy = fresh(home, "ck")
    shutil.copytree(runs[kind], copy)
    victims = sorted(p for p in (copy / "checkpoints").rglob("*") if p.is_file() and p.name.startswith("model"))
    victim = victims[c[1] % len(victims)]
    victim.write_bytes(corrupt(victim.read_bytes(), *c))
    argv = {"rbm": ["rbm", "sample", copy, "-n", "2", "--steps", "2"], "vae": ["vae", "evaluate", copy, "--k", "2"],
            "diffusion": ["diffusion", "evaluate", copy, "--n-t", "2"]}[kind]
    probe([*argv, "--runs-root", home / "ck-runs"])
    shutil.rmtree(copy)

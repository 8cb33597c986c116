"""benchmarks/eval_diffusion.py: the table it writes, --append keeping what the file held, and the rows the FD
figure reads back (conditional and unconditional apart)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("eval_diffusion", ROOT / "benchmarks" / "eval_diffusion.py")
ev = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ev)


def _fd_row(label, sampler, steps, fd, unconditional=False):
    option = " --unconditional" if unconditional else ""
    result = {"fd": fd, "fd_stderr": 3.0, "floor": {"fd": 11.5}, "precision": 0.6, "recall": 0.9,
              "sampler": sampler, "steps": steps, "guidance": 1.0, "unconditional": unconditional}
    command = f"kakusan diffusion evaluate RUN --nll none --fd --sampler {sampler} --steps {steps}{option}"
    return (label, result, 12.0, command)


def test_append_keeps_the_earlier_table_and_notes_and_adds_rows_after_its_last_row(tmp_path):
    out = tmp_path / "results.md"
    args = argparse.Namespace(run="RUN", out=str(out))
    ev.write(args, [("VLB", {"nll": 980.0, "nll_stderr": 60.0, "bits_per_dim": 1.8, "bits_per_dim_stderr": 0.11},
                     244.0, "kakusan diffusion evaluate RUN --nll vlb"), _fd_row("ddpm 100", "ddpm", 100, 16.2)], 60.0)
    out.write_text(out.read_text() + "\nA note written by hand that must survive.\n")
    before = out.read_text()
    ev.write(args, [_fd_row("ddpm 1000", "ddpm", 1000, 15.1)], 60.0, previous=before)
    after = out.read_text()
    assert "A note written by hand that must survive." in after
    table = [line for line in after.splitlines() if line.startswith("|")]
    assert [line for line in before.splitlines() if line.startswith("|")] == table[:-1]  # old rows unchanged
    assert table[-1].startswith("| appended: ddpm 1000 |")
    assert after.count("Appended: `python") == 1
    results = ev.read_table(out)
    assert [(r["sampler"], r["steps"], r["fd"]) for r in results] == [("ddpm", 100, 16.2), ("ddpm", 1000, 15.1)]


def test_fd_curves_keep_the_conditional_and_the_null_class_apart(tmp_path):
    import kakusan.diffusion as diffusion

    out = tmp_path / "results.md"
    args = argparse.Namespace(run="RUN", out=str(out))
    ev.write(args, [_fd_row("dpm++2m 20", "dpm++2m", 20, 29.3), _fd_row("dpm++2m 20, unconditional", "dpm++2m", 20,
                                                                         40.0, unconditional=True)], 60.0)
    results = ev.read_table(out)
    schedule = diffusion.Schedule("cosine", 1000)
    conditional, floor = ev.fd_curves(results, schedule)
    null, _ = ev.fd_curves(results, schedule, unconditional=True)
    assert conditional["dpm++2m"][1] == [29.3] and null["dpm++2m"][1] == [40.0] and floor == 11.5

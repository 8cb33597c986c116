"""benchmarks/device_check.sh, the prepared run for a session lent a GPU: its VLB recipe (train for a timed budget, fit
the ten-step head, evaluate the VLB) runs end to end on the CPU at toy size, so an option renamed in the CLI fails
here rather than inside a GPU session's few minutes; and bench_diffusion.py refuses a CUDA device it does not have."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "device_check.sh"


def test_the_script_parses_and_names_its_modes():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    out = subprocess.run(["bash", str(SCRIPT), "nonsense"], capture_output=True, text=True)
    assert out.returncode == 2 and "prepare|run|smoke" in out.stderr


def test_the_vlb_recipe_runs_end_to_end_on_the_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "STEPS": "vlb", "TRAIN_S": "2", "PY": sys.executable,
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(SCRIPT), "smoke"], env=env, capture_output=True, text=True, timeout=600)
    summary = (tmp_path / "summary.txt").read_text()
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("train", "head", "vlb"):
        assert f"{step}: exit 0," in summary, summary + (tmp_path / "vlb.log").read_text()[-3000:]
    assert "epochs for TRAIN_S=2 s:" in summary
    result = json.loads((tmp_path / "vlb.json").read_text())
    assert result["n"] == 50 and result["exact_steps"] == 10
    assert math.isfinite(result["bits_per_dim"]) and result["bits_per_dim_stderr"] > 0
    log = (tmp_path / "vlb.log").read_text()
    assert "--bf16 --device cpu" in log and '"bf16": true' in log  # the run trained in bf16 autocast, as asked


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_the_benchmark_refuses_a_cuda_device_it_does_not_have():
    peer = sys.executable  # any existing Python passes the peer check; the device check comes next
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_diffusion.py"), "--device", "cuda",
                          "--peer-python", peer], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "no CUDA GPU is available" in out.stdout

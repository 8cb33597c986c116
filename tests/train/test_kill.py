"""A training process killed with SIGKILL at random moments resumes to the bit-identical result.

The script checkpoints after every step and its checkpoint (model, Adam state, two EMA decays, a
warm-up + cosine schedule, the generator that draws its dropout noise and data transform, and an
objective with state of its own) is a few MB, so writing it takes most of each step: the kills land
across the checkpoint write. After every kill the checkpoint must read back whole (hash checked),
and the run resumed from it again and again must end exactly where an uninterrupted run ends.
"""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from kakusan import checkpoint

SCRIPT = textwrap.dedent('''
    import sys
    import torch
    torch.set_num_threads(1)
    from kakusan.optim.schedules import make_scheduler
    from kakusan.registry import register_model
    from kakusan.report.run_dir import RunDir
    from kakusan.train import StepOutput, TrainConfig, fit

    @register_model
    class KillNet(torch.nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.config = {"width": width}
            self.a = torch.nn.Linear(32, width)
            self.b = torch.nn.Linear(width, 32)

    class Denoise:
        """Reconstruct x from a noisy copy; counts its calls (state of its own, saved with the checkpoint)."""
        def __init__(self):
            self.calls = torch.zeros((), dtype=torch.int64)
        def __call__(self, model, x, generator):
            self.calls += 1
            noisy = x + 0.3 * torch.randn(x.shape, generator=generator)
            out = model.b(torch.tanh(model.a(noisy)))
            return StepOutput(loss=((out - x) ** 2).mean())
        def state_dict(self):
            return {"calls": self.calls}
        def load_state_dict(self, state):
            self.calls = state["calls"].clone()

    def flip(x, generator):  # a random sign flip per example, from the step's generator
        return x * (2 * torch.randint(0, 2, (len(x), 1), generator=generator) - 1)

    steps = int(sys.argv[2])
    data = torch.randn(512, 32, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)  # the initial weights (nn.Linear draws them from the global generator)
    model = KillNet(2048)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = make_scheduler(opt, "cosine", steps, warmup=10)
    run = RunDir(sys.argv[1])
    run.path.mkdir(exist_ok=True)
    config = TrainConfig(steps=steps, batch_size=16, checkpoint_every=1, ema_decays=(0.99, 0.9), seed=5,
                         progress=False, log_every=10)
    objective = Denoise()
    def announce(step, out):
        print(step, flush=True)
    fit(model, objective, data, opt, config, run=run, scheduler=sched, transform=flip, callback=announce)
    print("done", int(objective.calls), flush=True)
''')

STEPS = 80
KILLS = 10  # test_kill_cli.py signals the CLI 20 more times, in every phase


def _start(script, run_dir):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(run_dir), str(STEPS)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_sigkill_at_random_moments_resumes_bit_identically(tmp_path):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    rng = random.Random(1234)

    reference = subprocess.run([sys.executable, str(script), str(tmp_path / "whole"), str(STEPS)],
                               capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert reference.returncode == 0, reference.stderr
    assert f"done {STEPS}" in reference.stdout

    kills, steps_seen, finished = 0, [], None
    while finished is None:
        proc = _start(script, tmp_path / "killed")
        first = proc.stdout.readline()  # training has started (or the run is already complete)
        if kills < KILLS and first.strip().isdigit():
            time.sleep(rng.uniform(0.0, 0.1))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            if proc.returncode == -signal.SIGKILL:
                kills += 1
                if checkpoint.exists(tmp_path / "killed" / "checkpoints", "last"):
                    _, head = checkpoint.load(tmp_path / "killed" / "checkpoints", "last")  # whole: hash checks
                    steps_seen.append(head["step"])
                continue
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        finished = first + out
    assert kills >= KILLS
    assert steps_seen == sorted(steps_seen) and steps_seen[-1] < STEPS  # progress, and killed before the end
    # every objective call happened exactly once in the surviving history: the saved call count is the step's
    assert f"done {STEPS}" in finished

    a, head_a = checkpoint.load(tmp_path / "whole" / "checkpoints", "last")
    b, head_b = checkpoint.load(tmp_path / "killed" / "checkpoints", "last")
    assert head_a["step"] == head_b["step"] == STEPS
    assert set(a) == set(b) >= {"model", "optimizer", "generator", "objective", "ema@0.99", "ema@0.9"}
    for part in a:
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    assert head_a["scheduler"] == head_b["scheduler"]
    leftovers = [p.name for p in (tmp_path / "killed" / "checkpoints").iterdir() if p.name != "last.safetensors"]
    assert len(leftovers) <= 1, leftovers  # at most the temporary file of the last killed write

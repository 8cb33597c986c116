"""DistributedDataParallel through train.fit: 2 gloo processes on CPU equal 1 process with the same global batch.

The objective is deterministic (least squares), so the only difference between the runs is that each
rank back-propagates its shard of the batch and DDP averages the gradients; the global batch of 15
splits 8 + 7, so the test also checks that unequal shards are weighted by their share. The second
torchrun resumes the first one's checkpoint (both ranks' generators are in it).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from kakusan import checkpoint

SCRIPT = textwrap.dedent('''
    import sys
    import torch
    torch.set_num_threads(1)
    from kakusan.registry import register_model
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import finish_distributed, init_distributed, world
    from kakusan.train import StepOutput, TrainConfig, fit

    @register_model
    class DDPLine(torch.nn.Module):
        def __init__(self, dim: int):
            super().__init__()
            self.config = {"dim": dim}
            self.w = torch.nn.Parameter(torch.zeros(dim, dtype=torch.float64))
            self.hidden = torch.nn.Linear(dim, 4, dtype=torch.float64)

        def predict(self, x):  # not forward: the objective calls another method, as VAEs do
            return x @ self.w + torch.tanh(self.hidden(x)).sum(1)

    def objective(model, batch, generator):
        x, y = batch
        return StepOutput(loss=((model.predict(x) - y) ** 2).mean())

    rank, size = init_distributed("cpu")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(61, 5, generator=g, dtype=torch.float64)
    y = x @ torch.arange(5, dtype=torch.float64) + torch.randn(61, generator=g, dtype=torch.float64)
    torch.manual_seed(1)
    model = DDPLine(5)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    run = RunDir(sys.argv[1])
    run.path.mkdir(exist_ok=True)
    fit(model, objective, (x, y), opt, TrainConfig(steps=int(sys.argv[2]), batch_size=15, seed=3, progress=False,
                                                  log_every=4), run=run)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # every rank got here
    if rank == 0:
        print("ranks", size, "ok", flush=True)
    finish_distributed(exit_status=0)  # leave without gloo's C++ teardown, which can abort now and then
''')


def _torchrun(script, run_dir, steps, nproc):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "GLOO_SOCKET_IFNAME": "lo"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", str(script),
           str(run_dir), str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="this torch build has no gloo backend")
def test_two_gloo_processes_equal_one_process_and_resume(tmp_path):
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    single = subprocess.run([sys.executable, str(script), str(tmp_path / "one"), "20"], capture_output=True,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert single.returncode == 0, single.stderr
    assert "ranks 1 ok" in single.stdout

    out = _torchrun(script, tmp_path / "two", 10, 2)  # 10 steps, then a second torchrun resumes to 20
    assert "ranks 2 ok" in out  # torchrun's exit status 0 says every rank finished
    _, head = checkpoint.load(tmp_path / "two" / "checkpoints", "last")
    assert head["step"] == 10 and head["world_size"] == 2
    _torchrun(script, tmp_path / "two", 20, 2)

    one, _ = checkpoint.load(tmp_path / "one" / "checkpoints", "last")
    two, head = checkpoint.load(tmp_path / "two" / "checkpoints", "last")
    assert head["step"] == 20 and set(two["generator"]) == {"rank0", "rank1"}
    for key in one["model"]:
        torch.testing.assert_close(two["model"][key], one["model"][key], rtol=1e-10, atol=1e-12)
    assert not torch.equal(two["generator"]["rank0"], two["generator"]["rank1"])  # a generator per rank
    steps = [r["step"] for r in map(json.loads, (tmp_path / "two" / "metrics.jsonl").read_text().splitlines())]
    assert steps == [4, 8, 10, 12, 16, 20]  # rank 0 alone writes

    again = subprocess.run([sys.executable, str(script), str(tmp_path / "two"), "30"], capture_output=True, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert again.returncode != 0 and "resume with --nproc-per-node 2" in again.stderr


def test_the_kakusan_command_trains_under_torchrun(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "GLOO_SOCKET_IFNAME": "lo"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "kakusan", "rbm",
           "train", "--data", "digits", "--hidden", "4", "--epochs", "1", "--method", "cd", "--samples", "0",
           "--runs-root", str(tmp_path / "runs")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained BernoulliRBM") == 1  # rank 0 reports
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1  # one run directory, made by rank 0 and shared with rank 1
    _, head = checkpoint.load(runs[0] / "checkpoints", "last")
    assert head["world_size"] == 2 and head["step"] == 15

"""Drive the peer diffusion library ``diffusers`` (0.42.1) for the diffusion speed benchmark (``bench_diffusion.py``).

Runs INSIDE its own virtualenv (``benchmarks/.peer-venv-diffusers``, gitignored); it imports numpy, torch and
diffusers only, never kakusan. Training images come from the parent as a ``.npy`` file, float32 of shape
(rows, 1, 28, 28) in [−1, 1] (MNIST scaled by the parent, so both sides train on the same pixels). Results are
JSON lines on stdout (diffusers' warnings go to stderr).

The model, "tiny, no attention, 28×28": ``UNet2DModel(sample_size=28, in_channels=1, out_channels=1,
block_out_channels=(16, 32, 32), layers_per_block=1, down_block_types=("DownBlock2D",)*3,
up_block_types=("UpBlock2D",)*3, norm_num_groups=8, add_attention=False)`` — ``add_attention=False`` turns off
the self-attention that ``UNetMidBlock2D`` otherwise adds at 7×7 even with attention-free down/up blocks (with
it the model has 0.0934 GFLOP per image instead of 0.0930 and was ~7 % slower in a quick check). 263,025 parameters, asserted.
Initialisation: diffusers' own. GFLOP per image: a batch-1 forward under ``torch.utils.flop_counter.
FlopCounterMode`` (multiply-adds × 2 of the convs and linear layers).

``--device cuda`` moves the UNet, the images and the random generators to the GPU and synchronises it before
each clock reading; ``--bf16`` runs the UNet's forward passes (training and the pipeline) in bfloat16 autocast.

Subcommands (all at ``--threads`` torch threads, OMP_WAIT_POLICY=PASSIVE):

* ``serve``: builds the model, prints one JSON line (versions, parameters, GFLOP per image), then answers
  commands read from stdin, one JSON line each, with one JSON line on stdout — ``{"cmd": "train", "steps": k}``
  (k timed training steps; their times), ``{"cmd": "sample"}`` (one timed pipeline call), ``{"cmd": "quit"}``.
  ``bench_diffusion.py`` keeps one such process and alternates with kakusan at the granularity of a few steps,
  so that both see the same machine load.
* ``run``: the same measurements in one go (``--warmup`` + ``--steps`` training steps, then one untimed and
  ``--sample-repeats`` timed pipeline calls), one JSON line: diffusers alone.

What is timed:

* **GFLOP per image**: a batch-1 forward under ``FlopCounterMode``.
* **train**: one training step is the body of diffusers' own example loop
  (``examples/unconditional_image_generation/train_unconditional.py``) with Adam instead of its AdamW: a
  batch of 64 from a permutation of the rows, ε ~ N(0, I), t ~ uniform{0 … 999}, ``DDPMScheduler.add_noise``,
  ``unet(noisy, t).sample``, ``F.mse_loss(pred, ε)``, ``zero_grad``, ``backward``, ``Adam.step`` (lr 1e-4). No
  accelerate, EMA, LR scheduler or logging; no ``loss.item()``.
* **sample**: one call of the pipeline, ``DDPMPipeline(unet, scheduler=DPMSolverMultistepScheduler(
  num_train_timesteps=1000, beta_schedule="linear", algorithm_type="dpmsolver++", solver_order=2))`` with
  the progress bar disabled, ``pipe(batch_size=64, generator=g, num_inference_steps=20, output_type="pt")`` —
  the pipeline itself (``torch.no_grad``, 20 UNet calls and 20 ``scheduler.step``, then ``(x/2 + 0.5).clamp(0,
  1)``), not a re-implementation. The UNet is the one being trained (in eval mode while sampling). The schedule
  (linear β from 1e-4 to 0.02 over 1000 steps) is kakusan's default.

Install recipe (what was run; torch first from the local CPU wheel, so that diffusers' ``torch`` requirement is
already met and pip pulls no CUDA build — afterwards ``pip list`` shows torch 2.13.0+cpu)::

    cd /work/main
    python3.11 -m venv benchmarks/.peer-venv-diffusers      # Python 3.11.7
    P=benchmarks/.peer-venv-diffusers/bin/pip
    $P install torch==2.13.0                                # CPU build (2.13.0+cpu)
    $P install "diffusers==0.42.*"                          # → diffusers 0.42.1
    $P list | grep -iE "torch|diffusers"                    # diffusers 0.42.1, torch 2.13.0+cpu
    benchmarks/.peer-venv-diffusers/bin/python -c "import diffusers"

diffusers' dependencies came with it: huggingface-hub 2.4.0, numpy 2.4.6, Pillow 13.0.0, safetensors 0.8.0,
regex, requests, importlib_metadata, httpx2 and friends (nothing is downloaded at run time: the model is built
from its config, not from the Hub). Example::

    V=benchmarks/.peer-venv-diffusers/bin/python
    $V benchmarks/peer_diffusion.py run --train X.npy --steps 10 --warmup 3 --sample-repeats 2
    printf '{"cmd": "train", "steps": 3}\\n{"cmd": "sample"}\\n{"cmd": "quit"}\\n' | \\
        $V benchmarks/peer_diffusion.py serve --train X.npy
"""

from __future__ import annotations

import os

os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before torch is imported (it is imported lazily in main)
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing to fetch
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

N_PARAMS = 263_025
T_TRAIN = 1000
BATCH = 64


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def build_unet(seed: int):
    import torch
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(16, 32, 32),
                       layers_per_block=1, down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3,
                       norm_num_groups=8, add_attention=False)
    n = sum(p.numel() for p in unet.parameters())
    assert n == N_PARAMS, f"the diffusers UNet has {n} parameters, expected {N_PARAMS}"
    return unet


def gflop_per_image(unet) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        unet(torch.zeros(1, 1, 28, 28), torch.tensor([500]))
    return counter.get_total_flops() / 1e9


class Peer:
    """The diffusers side: the UNet, its training loop body and its sampling pipeline."""

    def __init__(self, args):
        import numpy as np
        import torch
        from diffusers import DDPMPipeline, DDPMScheduler, DPMSolverMultistepScheduler

        torch.set_num_threads(args.threads)
        self.torch, self.args, self.device = torch, args, torch.device(args.device)
        x = torch.from_numpy(np.load(args.train).astype(np.float32, copy=False))
        assert x.ndim == 4 and x.shape[1:] == (1, 28, 28), f"expected (rows, 1, 28, 28) images, got {tuple(x.shape)}"
        self.x = x.to(self.device)
        self.unet = build_unet(args.seed)
        self.gflop = gflop_per_image(self.unet)  # on the CPU, before the move
        self.unet.to(self.device)
        self.noise_scheduler = DDPMScheduler(num_train_timesteps=T_TRAIN, beta_schedule="linear")
        self.optimizer = torch.optim.Adam(self.unet.parameters(), lr=args.lr)
        self.g = torch.Generator().manual_seed(args.seed)  # the batch order (indices on the CPU)
        self.gd = torch.Generator(self.device).manual_seed(args.seed)  # the noise and times, on the device
        self.perm, self.step_index = torch.randperm(len(x), generator=self.g), 0
        self.scheduler = DPMSolverMultistepScheduler(num_train_timesteps=T_TRAIN, beta_schedule="linear",
                                                     algorithm_type="dpmsolver++", solver_order=2)
        self.pipe = DDPMPipeline(unet=self.unet, scheduler=self.scheduler).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.samples = 0

    def header(self) -> dict:
        return {"lib": "diffusers", "version": _version("diffusers"), "torch": self.torch.__version__,
                "threads": self.args.threads, "params": N_PARAMS, "gflop_per_image": self.gflop, "batch": BATCH,
                "device": str(self.device), "bf16": self.args.bf16}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def _autocast(self):
        if not self.args.bf16:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device.type, dtype=self.torch.bfloat16)

    def _batch(self):
        if (self.step_index + 1) * BATCH > len(self.perm):
            self.perm, self.step_index = self.torch.randperm(len(self.x), generator=self.g), 0
        idx = self.perm[self.step_index * BATCH:(self.step_index + 1) * BATCH]
        self.step_index += 1
        return self.x[idx]

    def train(self, steps: int) -> dict:
        """``steps`` training steps (the example loop's body); the seconds of each."""
        import torch.nn.functional as F

        torch = self.torch
        self.unet.train()
        times = []
        for _ in range(steps):
            clean = self._batch()
            self._sync()
            w0 = time.perf_counter()
            noise = torch.randn(clean.shape, generator=self.gd, device=self.device)
            timesteps = torch.randint(0, T_TRAIN, (len(clean),), generator=self.gd, device=self.device).long()
            noisy = self.noise_scheduler.add_noise(clean, noise, timesteps)
            with self._autocast():
                pred = self.unet(noisy, timesteps, return_dict=False)[0]
            loss = F.mse_loss(pred.float(), noise.float())
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self._sync()
            times.append(time.perf_counter() - w0)
        return {"train_s": times, "loss": float(loss.detach())}

    def sample(self) -> dict:
        """One pipeline call: 64 images, DPM-Solver++(2M), ``--sample-steps`` steps; its seconds."""
        self.unet.eval()
        gen = self.torch.Generator(self.device).manual_seed(self.args.seed + 1000 + self.samples)
        self.samples += 1
        self._sync()
        w0 = time.perf_counter()
        with self._autocast():
            images = self.pipe(batch_size=BATCH, generator=gen, num_inference_steps=self.args.sample_steps,
                               output_type="pt").images
        self._sync()
        seconds = time.perf_counter() - w0
        assert images.shape == (BATCH, 1, 28, 28), tuple(images.shape)
        return {"sample_s": seconds, "nfe": len(self.scheduler.timesteps), "images_mean": float(images.mean())}


def cmd_serve(args) -> int:
    peer = Peer(args)
    print(json.dumps({"ready": True, **peer.header()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req["cmd"] == "quit":
            break
        out = peer.train(int(req.get("steps", 1))) if req["cmd"] == "train" else peer.sample()
        print(json.dumps(out), flush=True)
    return 0


def cmd_run(args) -> int:
    peer = Peer(args)
    peer.train(args.warmup)
    times = peer.train(args.steps)["train_s"]
    peer.sample()  # warm-up
    samples = [peer.sample()["sample_s"] for _ in range(args.sample_repeats)]
    print(json.dumps({**peer.header(), "train_steps": args.steps, "warmup": args.warmup,
                      "train_s_per_step": statistics.median(times), "train_s_per_step_all": times,
                      "sample_steps": args.sample_steps, "sample_s": statistics.median(samples),
                      "sample_s_all": samples}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, what in (("serve", "answer train/sample commands from stdin (JSON lines)"),
                       ("run", "timed training steps and pipeline sampling in one go; one JSON line")):
        p = sub.add_parser(name, help=what)
        p.add_argument("--train", required=True, help=".npy of (rows, 1, 28, 28) float32 images in [-1, 1]")
        p.add_argument("--sample-steps", type=int, default=20)
        p.add_argument("--lr", type=float, default=1e-4)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
        p.add_argument("--bf16", action="store_true", help="the UNet's forward passes in bfloat16 autocast")
        if name == "run":
            p.add_argument("--steps", type=int, default=10)
            p.add_argument("--warmup", type=int, default=3)
            p.add_argument("--sample-repeats", type=int, default=2)
    args = parser.parse_args(argv)
    return cmd_serve(args) if args.cmd == "serve" else cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())

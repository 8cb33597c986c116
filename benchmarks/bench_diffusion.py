"""Diffusion speed against diffusers 0.42: seconds per training step and seconds to sample 64 images.

The contestants, both on 28×28 MNIST (``kakusan.data.load("mnist")``; the first ``--rows`` training images,
handed to diffusers as a temporary ``.npy`` scaled to [−1, 1]), batch 64, linear β schedule over T = 1000:

* kakusan: ``Diffusion(DiffusionConfig(data_shape=(1, 28, 28), denoiser=UNetConfig.tiny(), levels=256,
  shift=0.5, scale=0.5))`` — the UNet of :mod:`kakusan.diffusion.unet` at the widths of the diffusers model
  (16, 32, 32), no attention, additive skips (``tiny``); by default also timed, in the same alternation, the same
  with concatenated skips (``tiny-cat``, the topology of kakusan's default UNet). ``--configs`` picks the
  variants (``default``: the MNIST model ``UNetConfig()``); the first is the one the goals are checked on.
* diffusers: ``UNet2DModel`` "tiny, no attention" (``benchmarks/peer_diffusion.py`` in
  ``benchmarks/.peer-venv-diffusers``; the config, the recipe and what exactly is timed are in its docstring).

Measured in ONE run. diffusers runs as one long-lived process under its venv's python (``peer_diffusion.py
serve``) and the two sides take turns at a fine grain — each repeat: ``--steps`` training steps of one side,
then of the other, then one sampling call of each (the order flips every repeat) — so that both see the same
machine load (others share it); per repeat the ratio of the two sides' times is formed, and the median of
those ratios is the result (the ratio of the median times is printed too).

* GFLOP per image of one denoiser call: kakusan's ``gflop_per_example()`` (counted with hooks) and, on both
  sides, ``torch.utils.flop_counter.FlopCounterMode`` on a batch-1 forward (multiply-adds × 2).
* Training step, batch 64: t uniform, ε ~ N(0, I), x_t = α_t x_0 + σ_t ε, the net, the ε-MSE, zero_grad,
  backward, Adam step (lr 1e-4). diffusers: the body of its example training loop (``add_noise``,
  ``unet(x_t, t).sample``, ``mse_loss``). kakusan: the same written with its API (``model.to_model``,
  ``model.alpha_sigma``, ``q_sample``, ``model.predict``); also timed, as a second row, kakusan's training
  objective ``DiffusionLoss("simple")`` (which also computes the VLB term as a metric). ``--warmup`` untimed
  steps on each side first; per repeat the median step.
* Sampling 64 images with DPM-Solver++(2M), 20 steps (20 denoiser calls), with the model being trained:
  kakusan ``model.sample(64, sampler="dpm++2m", steps=20)`` (``kakusan.diffusion.samplers``; if that module is
  missing, the equivalent loop of 20 ``model.eps`` calls and DPM-Solver++(2M) updates, and the report says so);
  diffusers ``DDPMPipeline(unet, DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2))(
  batch_size=64, num_inference_steps=20, output_type="pt")``. One untimed call on each side first.

Ratio = kakusan's time ÷ diffusers' time (goals: training ≤ 0.8, sampling ≤ 0.5, at GFLOP/img ≤ diffusers').
Both sides run ``--threads`` torch threads (default: the cores this process may use) with
``OMP_WAIT_POLICY=PASSIVE``; the load average is printed with every repeat.

On a GPU (``--device cuda``), both sides move their model, data and random generators to it, synchronise the
device before each clock reading, and with ``--bf16`` run the forward passes (training and sampling) in bfloat16
autocast; ``--peer-python`` names a Python that imports diffusers there (``benchmarks/device_check.sh`` does all
of this on a lent GPU machine).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_diffusion.py --json diffusion.json   # ~5 min
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_diffusion.py --quick                  # smoke run
    python3 benchmarks/bench_diffusion.py --device cuda --bf16 --peer-python python3 --json gpu.json  # a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".peer-venv-diffusers" / "bin" / "python"  # diffusers 0.42.1; recipe in peer_diffusion.py
BATCH = 64
LR = 1e-4
SAMPLE_STEPS = 20
GOAL_TRAIN = 0.8
GOAL_SAMPLE = 0.5


# --------------------------------------------------------------------------------------------- data


def mnist_images(rows: int) -> tuple[torch.Tensor, str]:
    """The first ``rows`` MNIST training images (rows, 1, 28, 28) in [0, 1]; random images if MNIST is missing."""
    try:
        from kakusan.data import load

        x = load("mnist").x_train[:rows].to(torch.float32).reshape(-1, 1, 28, 28).contiguous()
        return x, "MNIST"
    except Exception as e:  # noqa: BLE001 — any missing-data error: the timing does not depend on the pixels
        print(f"(MNIST unavailable: {e}; timing on uniform random images)", flush=True)
        return torch.rand(rows, 1, 28, 28, generator=torch.Generator().manual_seed(0)), "uniform random images"


# --------------------------------------------------------------------------------------------- kakusan side


def unet_config(name: str):
    from dataclasses import replace

    from kakusan.diffusion.unet import UNetConfig

    return {"tiny": UNetConfig.tiny(), "tiny-cat": replace(UNetConfig.tiny(), skip="cat"),
            "default": UNetConfig()}[name]


def synchronise(device: torch.device) -> None:
    """Wait for the device's queued work (a CUDA clock reading without it times the launch, not the work)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, bf16: bool):
    """bfloat16 autocast on ``device`` when ``bf16``, else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def kakusan_model(config_name: str, seed: int):
    from kakusan.diffusion.model import Diffusion, DiffusionConfig

    torch.manual_seed(seed)
    denoiser = unet_config(config_name)
    return Diffusion(DiffusionConfig(data_shape=(1, 28, 28), denoiser=denoiser, levels=256, shift=0.5, scale=0.5))


def flops_counted(model) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, 28, 28, device=device), torch.tensor([500.0], device=device))
    return counter.get_total_flops() / 1e9


class Kakusan:
    """The kakusan side: the model, its training step (two ways) and its sampler."""

    def __init__(self, config_name: str, x: torch.Tensor, seed: int, device: torch.device = torch.device("cpu"),
                 bf16: bool = False):
        self.device, self.bf16 = device, bf16
        self.model = kakusan_model(config_name, seed).to(device)
        self.x, self.seed, self.samples = x.to(device), seed, 0
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.g = torch.Generator().manual_seed(seed)  # the batch order (indices on the CPU)
        self.gd = torch.Generator(device).manual_seed(seed)  # the noise and times, on the model's device
        self.perm, self.step_index = torch.randperm(len(x), generator=self.g), 0
        try:
            from kakusan.diffusion.objectives import DiffusionLoss

            self.objective, self.objective_error = DiffusionLoss("simple", cond_drop=0.0), None
        except ImportError as e:
            self.objective, self.objective_error = None, str(e)

    def header(self) -> dict:
        return {"lib": "kakusan", "config": repr(self.model.config.denoiser), "params": sum(p.numel() for p in self.model.parameters()),
                "gflop_per_image": self.model.gflop_per_example(), "gflop_counted": flops_counted(self.model),
                "objective_error": self.objective_error}

    def _batch(self) -> torch.Tensor:
        if (self.step_index + 1) * BATCH > len(self.perm):
            self.perm, self.step_index = torch.randperm(len(self.x), generator=self.g), 0
        idx = self.perm[self.step_index * BATCH:(self.step_index + 1) * BATCH]
        self.step_index += 1
        return self.x[idx]

    def train(self, steps: int) -> dict:
        """``steps`` ε-MSE steps written with kakusan's API; the seconds of each."""
        from kakusan.diffusion.process import q_sample

        model, T, device = self.model, self.model.schedule.T, self.device
        model.train()
        times = []
        for _ in range(steps):
            data = self._batch()
            synchronise(device)
            w0 = time.perf_counter()
            x0 = model.to_model(data)
            eps = torch.randn(x0.shape, generator=self.gd, device=device)
            t = torch.randint(1, T + 1, (len(x0),), generator=self.gd, device=device).double()
            alpha, sigma = model.alpha_sigma(t, x0)
            with autocast(device, self.bf16):
                pred = model.predict(q_sample(x0, alpha, sigma, eps), t)[0]
            loss = torch.nn.functional.mse_loss(pred.float(), eps)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            synchronise(device)
            times.append(time.perf_counter() - w0)
        return {"train_s": times, "loss": float(loss.detach())}

    def train_objective(self, steps: int) -> dict:
        """``steps`` steps of kakusan's ``DiffusionLoss("simple")``; the seconds of each."""
        if self.objective is None:
            return {}
        self.model.train()
        times = []
        for _ in range(steps):
            data = self._batch()
            synchronise(self.device)
            w0 = time.perf_counter()
            with autocast(self.device, self.bf16):
                result = self.objective(self.model, data, self.gd)
            self.optimizer.zero_grad()
            result.loss.backward()
            self.optimizer.step()
            synchronise(self.device)
            times.append(time.perf_counter() - w0)
        return {"objective_s": times}

    def sample(self) -> dict:
        self.model.eval()
        self.samples += 1
        synchronise(self.device)
        w0 = time.perf_counter()
        with autocast(self.device, self.bf16):
            images, how = _sample_loop(self.model, BATCH, SAMPLE_STEPS, self.seed + 1000 + self.samples)
        synchronise(self.device)
        seconds = time.perf_counter() - w0
        assert images.shape == (BATCH, 1, 28, 28), tuple(images.shape)
        return {"sample_s": seconds, "sampler": how, "images_mean": float(images.mean())}


def _sample_loop(model, n: int, steps: int, seed: int) -> tuple[torch.Tensor, str]:
    """``model.sample(n, sampler="dpm++2m", steps)``; without kakusan.diffusion.samplers, the same 20 ε̂ calls
    and DPM-Solver++(2M) updates written out here."""
    if importlib.util.find_spec("kakusan.diffusion.samplers") is not None:
        return model.sample(n, generator=seed, sampler="dpm++2m", steps=steps), "Diffusion.sample(dpm++2m)"
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        ts = model.schedule.timesteps(steps)
        al, si = (v.tolist() for v in model.schedule.alpha_sigma(ts))
        x = torch.randn((n, *model.data_shape), generator=g)
        x0_prev = h_prev = None
        for i in range(steps):
            eps = model.eps(x, float(ts[i]))
            x0 = (x - si[i] * eps) / al[i]
            if si[i + 1] == 0:
                x = x0
                continue
            h = math.log(al[i + 1] / si[i + 1]) - math.log(al[i] / si[i])
            d = x0 if x0_prev is None else (1 + h / (2 * h_prev)) * x0 - h / (2 * h_prev) * x0_prev
            x = (si[i + 1] / si[i]) * x - al[i + 1] * math.expm1(-h) * d
            x0_prev, h_prev = x0, h
        return model.to_data(x).clamp(0, 1), "equivalent loop (kakusan.diffusion.samplers missing)"


# --------------------------------------------------------------------------------------------- diffusers side


class Diffusers:
    """``peer_diffusion.py serve`` in the diffusers venv, kept running; commands in, JSON lines out."""

    def __init__(self, train_npy: Path, threads: int, seed: int, python: Path = PEER_PYTHON, device: str = "cpu",
                 bf16: bool = False):
        t = str(threads)
        env = {**os.environ, "OMP_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t, "MKL_NUM_THREADS": t,
               "OMP_WAIT_POLICY": "PASSIVE"}
        cmd = [str(python), str(HERE / "peer_diffusion.py"), "serve", "--train", str(train_npy),
               "--sample-steps", str(SAMPLE_STEPS), "--lr", str(LR), "--seed", str(seed), "--threads", t,
               "--device", device] + (["--bf16"] if bf16 else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._read()

    def _read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the diffusers process ended (exit status {self.proc.wait()}); run "
                                   "peer_diffusion.py serve by hand to see why")
            if line.startswith("{"):
                return json.loads(line)

    def _ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def header(self) -> dict:
        return self.info

    def train(self, steps: int) -> dict:
        return self._ask(cmd="train", steps=steps)

    def sample(self) -> dict:
        return self._ask(cmd="sample")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


# --------------------------------------------------------------------------------------------- driver


def environment(threads: int, device: torch.device) -> dict:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=HERE).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True,
                                    cwd=HERE).stdout)
    except OSError:  # pragma: no cover
        sha, dirty = "?", False
    return {"git": sha + (" (uncommitted changes)" if dirty else ""),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": platform.processor() or platform.machine(), "cores": len(os.sched_getaffinity(0)),
            "threads": threads, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "load_average_start": os.getloadavg(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=12, help="alternating repeats (median reported)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads, both sides")
    p.add_argument("--rows", type=int, default=4096, help="MNIST training rows the batches are drawn from")
    p.add_argument("--steps", type=int, default=4, help="timed training steps per side and repeat")
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps on each side first")
    p.add_argument("--configs", default="tiny,tiny-cat",
                   help="kakusan's UNets, comma-separated: tiny (UNetConfig.tiny(), the benchmark; the goals are "
                        "checked on the first), tiny-cat (the same with concatenated skips), default (UNetConfig())")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke run: 2 repeats of 2 steps")
    p.add_argument("--json", default=None, help="also write the records to this JSON file")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]: where both sides train and sample")
    p.add_argument("--bf16", action="store_true", help="both sides' forward passes in bfloat16 autocast")
    p.add_argument("--peer-python", default=str(PEER_PYTHON),
                   help="the Python that runs peer_diffusion.py (it must import diffusers 0.42)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.warmup, args.rows = 2, 2, 1, 512
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    unknown = sorted(set(configs) - {"tiny", "tiny-cat", "default"})
    if unknown or not configs:
        print(f"unknown --configs {unknown}: choose from tiny, tiny-cat, default")
        return 2
    peer_python = Path(args.peer_python)
    if not (peer_python.exists() or shutil.which(args.peer_python)):
        print(f"{peer_python} is missing: build it with the recipe in benchmarks/peer_diffusion.py")
        return 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"--device {args.device}: no CUDA GPU is available here; use --device cpu")
        return 2
    torch.set_num_threads(args.threads)
    x, source = mnist_images(args.rows)
    env = environment(args.threads, device)
    print(f"git {env['git']}; {env['date']}; {env['cpu']}, {env['cores']} cores; torch {env['torch']}, python "
          f"{env['python']}; load average {'/'.join(f'{v:.1f}' for v in env['load_average_start'])}; "
          f"{args.threads} thread(s); device {env['device']}{', bf16 autocast' if args.bf16 else ''}; {len(x)} "
          f"{source} rows; kakusan configs {', '.join(configs)}", flush=True)
    repeats: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(args.threads):
        train_npy = Path(tmp) / "train.npy"
        np.save(train_npy, (2 * x - 1).numpy().astype(np.float32))
        peer = Diffusers(train_npy, args.threads, args.seed, peer_python, args.device, args.bf16)
        try:
            sides = {"diffusers": peer, **{c: Kakusan(c, x, args.seed, device, args.bf16) for c in configs}}
            headers = {name: side.header() for name, side in sides.items()}
            for side in sides.values():  # warm-up: training steps and one sampling call each
                side.train(args.warmup)
                side.sample()
            sides[configs[0]].train_objective(args.warmup)
            names = list(sides)
            for r in range(args.repeats):
                order = names[r % len(names):] + names[:r % len(names)]  # rotate who goes first
                if r // len(names) % 2:
                    order = order[::-1]
                rec: dict = {"repeat": r + 1, "order": order, "load_average": os.getloadavg()[0]}
                for name in order:
                    rec[f"{name}_train"] = sides[name].train(args.steps)["train_s"]
                rec[f"{configs[0]}_objective"] = sides[configs[0]].train_objective(args.steps).get("objective_s")
                for name in order:
                    out = sides[name].sample()
                    rec[f"{name}_sample"] = out["sample_s"]
                    if "sampler" in out:
                        rec["sampler"] = out["sampler"]
                for name in names:
                    rec[f"{name}_step"] = med(rec[f"{name}_train"])
                rec[f"{configs[0]}_objective_step"] = med(rec[f"{configs[0]}_objective"] or [])
                repeats.append(rec)
                d = rec
                print(f"repeat {r + 1}/{args.repeats} (load {rec['load_average']:.1f}): s per step / per 64 samples: "
                      + "; ".join(f"{n} {d[n + '_step']:.3f} / {d[n + '_sample']:.2f}" for n in names)
                      + "; ratios " + "; ".join(f"{c} {d[c + '_step'] / d['diffusers_step']:.2f} / "
                                                 f"{d[c + '_sample'] / d['diffusers_sample']:.2f}" for c in configs),
                      flush=True)
        finally:
            peer.close()
    env["load_average_end"] = os.getloadavg()
    return report(args, env, configs, headers, repeats)


def report(args, env: dict, configs: list[str], headers: dict, repeats: list[dict]) -> int:
    d = headers["diffusers"]

    def col(key: str) -> list[float]:
        return [r[key] for r in repeats if r.get(key) is not None]

    def ratios(kk: str, dk: str) -> list[float]:
        return [r[kk] / r[dk] for r in repeats if r.get(kk) is not None and r.get(dk)]

    def fmt(v, spec):
        return format(v, spec) if v is not None else "—"

    summary: dict = {}
    for c in configs:
        for what, kk, dk in (("train", f"{c}_step", "diffusers_step"), ("sample", f"{c}_sample", "diffusers_sample"),
                             ("objective", f"{c}_objective_step", "diffusers_step")):
            rs = ratios(kk, dk)
            if rs:
                summary[f"{c}_{what}"] = {"kakusan_median": med(col(kk)), "diffusers_median": med(col(dk)),
                                          "ratio_median": med(rs), "ratio_min": min(rs), "ratio_max": max(rs),
                                          "ratio_of_medians": med(col(kk)) / med(col(dk))}
    loads = col("load_average")
    where = f"{args.threads} thread(s)" if env["device"] == "cpu" else env["device"]
    where += ", bf16 autocast" if args.bf16 else ""
    print(f"\n28×28 MNIST, batch 64, {where}; {len(repeats)} alternating repeats ({args.steps} "
          f"training steps and 1 sampling call per contestant each); times: medians over the repeats; ratio = "
          f"kakusan time ÷ diffusers time, the median of the per-repeat ratios [their range]; load average "
          f"{min(loads):.1f}–{max(loads):.1f}\n")
    label = {"tiny": "`UNetConfig.tiny()`", "tiny-cat": "tiny, `skip=\"cat\"`", "default": "`UNetConfig()`"}
    print("| | " + " | ".join(f"kakusan {label[c]}" for c in configs) + f" | diffusers {d.get('version')} "
          "`UNet2DModel` |")
    print("|---|" + "---|" * (len(configs) + 1))
    print("| GFLOP per image (`FlopCounterMode`) | " + " | ".join(
        f"{headers[c]['gflop_counted']:.4f} ({headers[c]['gflop_counted'] / d['gflop_per_image']:.2f}×)"
        for c in configs) + f" | {d['gflop_per_image']:.4f} |")
    print("| parameters | " + " | ".join(f"{headers[c]['params']:,}" for c in configs) + f" | {d['params']:,} |")
    for what, text, dk in (("train", "s per training step (ε-MSE, Adam)", "diffusers_step"),
                           ("objective", 's per training step, `DiffusionLoss("simple")`', "diffusers_step"),
                           ("sample", "s to sample 64 images, DPM-Solver++(2M), 20 steps", "diffusers_sample")):
        cells = []
        for c in configs:
            sm = summary.get(f"{c}_{what}")
            cells.append(f"{sm['kakusan_median']:.3f} — **{sm['ratio_median']:.2f}×** [{sm['ratio_min']:.2f}–"
                         f"{sm['ratio_max']:.2f}]" if sm else "—")
        print(f"| {text} | " + " | ".join(cells) + f" | {fmt(med(col(dk)), '.3f')} |")
    c = configs[0]
    train, sample = summary[f"{c}_train"]["ratio_median"], summary[f"{c}_sample"]["ratio_median"]
    gflop = headers[c]["gflop_counted"] / d["gflop_per_image"]
    print(f"\n{c}: goal training ≤ {GOAL_TRAIN}×: {train:.2f}× — {'met' if train <= GOAL_TRAIN else 'NOT met'}; "
          f"goal sampling ≤ {GOAL_SAMPLE}×: {sample:.2f}× — {'met' if sample <= GOAL_SAMPLE else 'NOT met'}; "
          f"GFLOP ratio {gflop:.2f} ({'≤ 1' if gflop <= 1 else '> 1!'}); ratios of the median times: training "
          f"{summary[f'{c}_train']['ratio_of_medians']:.2f}, sampling {summary[f'{c}_sample']['ratio_of_medians']:.2f}")
    print(f"kakusan sampler: {repeats[0].get('sampler') if repeats else '?'}; objective row: "
          f"{'DiffusionLoss(simple)' if not headers[c].get('objective_error') else headers[c]['objective_error']}, "
          f"{c} only")
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "args": vars(args), "headers": headers,
                                               "summary": summary, "repeats": repeats}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

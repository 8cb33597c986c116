"""VAE speed against pythae 0.1.2: time per training step and per epoch, and NLL-evaluation throughput.

Both libraries train the same model — a one-layer VAE with the MLP nets of Burda et al. (2016): encoder
784-200-200 tanh → 50 Gaussian latents (mean and log σ²), decoder 50-200-200 tanh → 784 Bernoulli logits /
probabilities, 425,284 parameters on each side (asserted) — on the same bits: the 60,000 MNIST training
images binarised once with seed 0 and the 10,000 test images with seed 1 (``kakusan.data.load("mnist")``,
``stochastic_binarise``), handed to pythae as temporary ``.npy`` files. Batch 100, Adam lr 1e-3, one
thread (torch and BLAS limited), both in one run with the contestants alternating (the order flips every
repeat) so that both see the same machine load. Reported: the fastest of ``--repeats`` (medians in the
JSON), wall and CPU seconds, and the ratio of rates kakusan/pythae (= pythae's time ÷ kakusan's time).

(a) Training, per step and per epoch:

* kakusan: ``kakusan.train.fit(VAE(VAEConfig()), ELBO(), x, adam, TrainConfig(batch_size=100,
  log_every=600, progress=False))`` — the whole loop (batching by permutation, the objective's data
  check, backward, Adam, the finiteness check, metric sums), with the Adam ``kakusan vae train`` builds
  (``kakusan.optim.adam``: torch's fused kernel). *Per step*: a fit call of ``--steps`` steps
  after a ``--warmup``-step call. *Per epoch*: one fit call of ``--epochs`` × 600 steps with a ``Hook``
  every 600 steps that evaluates the test ELBO on the 10,000 test rows (the counterpart of pythae's
  evaluation pass); an epoch runs from the end of one evaluation to the end of the next.
* pythae (``benchmarks/peer_vae.py`` in ``benchmarks/.peer-venv-pythae``, recipe there): *per step*, the
  body of ``BaseTrainer.train_step`` on pre-sliced batches (model forward, ``_optimizers_step``: zero_grad,
  backward, Adam), checked bit for bit against ``train_step`` itself; *per epoch*, ``BaseTrainer.train()``
  with the test rows as its eval set (DataLoader, steps, tqdm, evaluation pass, best-model deepcopy, log).
  The trainer's steps alone (its training part ÷ 600) are reported too.

(b) NLL evaluation, importance sampling with k = ``--k`` (100) samples per image, on the first ``--images``
test rows, with the same weights on both sides (the kakusan model trained by the epoch timing is handed
to pythae as an ``.npz``):

* kakusan: ``vae.estimate_nll(x, k=100, batch_size=100)`` (its defaults otherwise: chunks over k from a
  16 MiB budget, the standard error computed);
* pythae: ``VAE.get_nll(x, n_samples=100, batch_size=100)`` under ``torch.no_grad()``, as pythae's own
  reproducibility script calls it (and, on ``--grad-images`` rows, with autograd on, as a plain call runs).

Same-model check: pythae's get_nll value and kakusan's estimate on the same images and weights must agree
within 5 Monte Carlo standard errors of their difference (+0.05 nats), else the run exits 1.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_vae.py --json vae.json   # ~4 min
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_vae.py --quick           # smoke run, ~20 s

Goals (issue 11): per epoch ≥ 4× pythae; NLL evaluation ≥ 10× pythae's images per second.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
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

from kakusan.data import flatten, load, stochastic_binarise  # noqa: E402
from kakusan.optim import adam  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".peer-venv-pythae" / "bin" / "python"  # pythae 0.1.2; recipe in peer_vae.py
N_PARAMS = 425_284
BATCH = 100
LR = 1e-3
# kakusan's Adam (--adam): the fused kernel the training commands use, or torch's default implementation
OPTIMIZERS = {"fused": adam, "default": lambda params, lr: torch.optim.Adam(params, lr=lr)}
OPTIMIZER = "fused"
GOAL_EPOCH = 4.0
GOAL_NLL = 10.0


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


# --------------------------------------------------------------------------------------------- data


def mnist_bits(seed_train: int = 0, seed_test: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST train and test images, flattened (n, 784) float32, binarised once with fixed seeds."""
    d = load("mnist")
    x = stochastic_binarise(flatten(d.x_train), generator=seed_train).to(torch.float32).contiguous()
    xt = stochastic_binarise(flatten(d.x_test), generator=seed_test).to(torch.float32).contiguous()
    assert x.shape[1] == 784 and xt.shape[1] == 784
    return x, xt


# --------------------------------------------------------------------------------------------- kakusan side


def kakusan_model(seed: int):
    """kakusan's VAE with the Burda et al. nets, spelled out (they are also VAEConfig()'s defaults)."""
    from kakusan.vae import VAE, BernoulliConfig, MLPConfig, VAEConfig

    torch.manual_seed(seed)
    config = VAEConfig(data_shape=(784,), n_latent=50, encoder=MLPConfig((200, 200), "tanh"),
                       decoder=MLPConfig((200, 200), "tanh"), likelihood=BernoulliConfig(), latent="gaussian")
    model = VAE(config)
    n = sum(p.numel() for p in model.parameters())
    assert n == N_PARAMS, f"kakusan VAE has {n} parameters, expected {N_PARAMS}"
    return model


def _fit(model, optimizer, x: torch.Tensor, steps: int, seed: int, hooks=()):
    from kakusan.train import TrainConfig, fit
    from kakusan.vae import ELBO

    per_epoch = len(x) // BATCH
    config = TrainConfig(steps=steps, batch_size=BATCH, log_every=per_epoch, progress=False, seed=seed)
    return fit(model, ELBO(), x, optimizer, config, hooks=hooks)


def kakusan_steps(x: torch.Tensor, steps: int, warmup: int, seed: int) -> dict:
    """Seconds per optimizer step of ``train.fit`` (ELBO, Adam, batch 100) after a warm-up call."""
    model = kakusan_model(seed)
    optimizer = OPTIMIZERS[OPTIMIZER](model.parameters(), lr=LR)
    if warmup:
        _fit(model, optimizer, x, warmup, seed)
    w0, c0 = clock()
    result = _fit(model, optimizer, x, steps, seed + 1)
    w1, c1 = clock()
    return {"lib": "kakusan", "what": "steps", "steps": steps, "warmup": warmup, "rows": len(x),
            "wall_s": w1 - w0, "cpu_s": c1 - c0, "s_per_step": (w1 - w0) / steps,
            "cpu_s_per_step": (c1 - c0) / steps, "loss_after": result.history[-1]["loss"]}


def kakusan_epochs(x: torch.Tensor, x_eval: torch.Tensor, epochs: int, seed: int) -> tuple[list[dict], object]:
    """Per epoch of one ``train.fit`` run: training, then a test-ELBO hook on ``x_eval``; and the model."""
    from kakusan.train import Hook

    per_epoch = len(x) // BATCH
    marks: list[tuple[tuple[float, float], tuple[float, float], float]] = []

    def evaluate(ctx) -> dict:
        start = clock()
        g = torch.Generator().manual_seed(ctx.seed)
        total = 0.0
        for i in range(0, len(x_eval), 1000):
            total += float(ctx.model.elbo(x_eval[i:i + 1000], generator=g).elbo.sum())
        marks.append((start, clock(), total / len(x_eval)))
        return {"test_elbo": total / len(x_eval)}

    model = kakusan_model(seed)
    optimizer = OPTIMIZERS[OPTIMIZER](model.parameters(), lr=LR)
    t_start = clock()
    result = _fit(model, optimizer, x, epochs * per_epoch, seed, hooks=[Hook(every=per_epoch, fn=evaluate)])
    out = []
    prev = t_start
    for e, ((ws, cs), (we, ce), elbo) in enumerate(marks):
        out.append({"lib": "kakusan", "what": "epoch", "epoch": e + 1, "rows": len(x), "eval_rows": len(x_eval),
                    "steps": per_epoch, "epoch_wall_s": we - prev[0], "epoch_cpu_s": ce - prev[1],
                    "train_wall_s": ws - prev[0], "train_cpu_s": cs - prev[1], "eval_wall_s": we - ws,
                    "eval_cpu_s": ce - cs, "s_per_step": (ws - prev[0]) / per_epoch, "test_elbo": elbo,
                    "train_loss": next((h["loss"] for h in result.history if h["step"] == (e + 1) * per_epoch),
                                       None)})
        prev = (we, ce)
    assert len(out) == epochs, f"expected {epochs} evaluation hooks, got {len(out)}"
    return out, model


def kakusan_nll(model, x: torch.Tensor, k: int, seed: int) -> dict:
    """Images per second of ``estimate_nll`` (k importance samples per image, batch 100)."""
    model.eval()
    model.estimate_nll(x[:4], k=k, generator=seed)  # warm-up
    w0, c0 = clock()
    est = model.estimate_nll(x, k=k, generator=seed, batch_size=BATCH)
    w1, c1 = clock()
    return {"lib": "kakusan", "what": "nll", "images": len(x), "k": k, "wall_s": w1 - w0, "cpu_s": c1 - c0,
            "s_per_image": (w1 - w0) / len(x), "cpu_s_per_image": (c1 - c0) / len(x),
            "images_per_s": len(x) / (w1 - w0), "nll": est.value, "nll_stderr": est.stderr}


def export_weights(model, path: Path) -> None:
    """The kakusan VAE's weights in the neutral layout that ``peer_vae.py nll --weights`` reads."""
    enc, dec = model.encoder.net, model.decoder.net
    layers = [m for m in enc if isinstance(m, torch.nn.Linear)] + [m for m in dec if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in layers] == [(200, 784), (200, 200), (100, 200), (200, 50), (200, 200),
                                                       (784, 200)], "unexpected kakusan net layout"
    e0, e2, e4, d0, d2, d4 = layers
    L = model.n_latent
    arrays = {"enc.0": (e0.weight, e0.bias), "enc.2": (e2.weight, e2.bias),
              # kakusan's encoder output is [mean, log σ²] (latents.posterior: raw.chunk(2))
              "enc.mean": (e4.weight[:L], e4.bias[:L]), "enc.log_var": (e4.weight[L:], e4.bias[L:]),
              "dec.0": (d0.weight, d0.bias), "dec.2": (d2.weight, d2.bias), "dec.4": (d4.weight, d4.bias)}
    out = {}
    for name, (w, b) in arrays.items():
        out[f"{name}.weight"] = w.detach().cpu().numpy().astype(np.float32)
        out[f"{name}.bias"] = b.detach().cpu().numpy().astype(np.float32)
    np.savez(path, **out)


def same_model_check(model, x: torch.Tensor, k: int, seed: int, pythae_mean_log_lik: float) -> dict:
    """pythae's get_nll value against kakusan's importance estimate on the same images and weights."""
    with torch.no_grad():
        r = model.importance_log_likelihood(x, k, generator=seed + 7)
    ours = float(r.value.mean())
    se = math.sqrt(2.0 * float((r.stderr**2).sum())) / len(x)  # two independent estimates of the same mean
    diff = pythae_mean_log_lik - ours
    ok = abs(diff) <= 5 * se + 0.05
    return {"same_model_images": len(x), "kakusan_mean_log_lik": ours, "pythae_mean_log_lik": pythae_mean_log_lik,
            "difference": diff, "difference_se": se, "same_model_ok": ok}


# --------------------------------------------------------------------------------------------- pythae side


def pythae(cmd: str, args: list[str], threads: int) -> list[dict]:
    """Run ``peer_vae.py CMD ARGS`` in the pythae venv; its JSON lines (empty if it failed)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run([str(PEER_PYTHON), str(HERE / "peer_vae.py"), cmd, *args, "--threads", str(threads)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"(pythae {cmd} failed: {proc.stderr.strip().splitlines()[-3:]})", flush=True)
        return []
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


# --------------------------------------------------------------------------------------------- driver


def environment() -> dict:
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
            "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "load_average": os.getloadavg()[0]}


def best(records: list[dict], key: str) -> dict:
    values = [r[key] for r in records if r.get(key) is not None]
    return {"min": min(values), "median": statistics.median(values), "n": len(values)} if values else {}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats; the fastest is reported")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--adam", choices=("fused", "default"), default="fused",
                   help="kakusan's optimizer: fused (kakusan.optim.adam, what `vae train` builds) or torch's default "
                        "Adam (what it built before 2026-12-07)")
    p.add_argument("--rows", type=int, default=60000, help="training rows (an epoch = rows/100 steps)")
    p.add_argument("--eval-rows", type=int, default=10000, help="test rows of the per-epoch evaluation")
    p.add_argument("--steps", type=int, default=300, help="timed steps of the per-step measurement")
    p.add_argument("--warmup", type=int, default=30, help="untimed steps before them")
    p.add_argument("--epochs", type=int, default=2, help="epochs per repeat of the per-epoch measurement")
    p.add_argument("--images", type=int, default=1000, help="test images of the NLL timing")
    p.add_argument("--grad-images", type=int, default=50, help="pythae get_nll with autograd on, on this many")
    p.add_argument("--k", type=int, default=100, help="importance samples per image")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["kakusan", "pythae"], default=None, help="run one side only")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2,000 rows, 500 eval rows, 20 steps, 1 repeat, 50 images")
    p.add_argument("--json", default=None, help="also write the records to this JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.rows, args.eval_rows, args.steps, args.warmup = 1, 2000, 500, 20, 3
        args.epochs, args.images, args.grad_images = 2, 50, 10
    return args


def main(argv: list[str] | None = None) -> int:
    global OPTIMIZER
    args = parse_args(argv)
    OPTIMIZER = args.adam
    sides = [s for s in ("kakusan", "pythae") if args.only in (None, s)]
    if "pythae" in sides and not PEER_PYTHON.exists():
        print(f"({PEER_PYTHON} is missing: build it with the recipe in benchmarks/peer_vae.py; pythae skipped)")
        sides.remove("pythae")
    torch.set_num_threads(args.threads)
    x_all, xt_all = mnist_bits()
    x, x_eval, x_nll = x_all[: args.rows], xt_all[: args.eval_rows], xt_all[: args.images]
    env = environment()
    print(f"git {env['git']}; {env['date']}; {env['cpu']}, {env['cores']} cores; torch {env['torch']}, numpy "
          f"{env['numpy']}, python {env['python']}; load average {env['load_average']:.1f}; {args.threads} "
          f"thread(s); rows {len(x)}, eval rows {len(x_eval)}, NLL images {len(x_nll)}, k={args.k}", flush=True)
    rec: dict[str, list[dict]] = {f"{s}_{w}": [] for s in ("kakusan", "pythae") for w in ("steps", "epoch", "nll")}
    checks: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(args.threads):
        tmp = Path(tmp)
        train_npy, test_npy, weights = tmp / "train.npy", tmp / "test.npy", tmp / "weights.npz"
        np.save(train_npy, x.numpy())
        np.save(test_npy, xt_all.numpy())
        common = ["--batch-size", str(BATCH), "--lr", str(LR), "--seed", str(args.seed)]
        model = None
        for r in range(args.repeats):
            order = sides if r % 2 == 0 else sides[::-1]
            print(f"repeat {r + 1}/{args.repeats} ({' then '.join(order)})", flush=True)
            for side in order:  # (a) per step
                if side == "kakusan":
                    rec["kakusan_steps"].append(kakusan_steps(x, args.steps, args.warmup, args.seed + r))
                else:
                    rec["pythae_steps"] += pythae("steps", ["--train", str(train_npy), "--steps", str(args.steps),
                                                            "--warmup", str(args.warmup), "--check-rows",
                                                            str(min(500, len(x)) if r == 0 else 0), *common],
                                                  args.threads)
            for side in order:  # (a) per epoch, with evaluation
                if side == "kakusan":
                    epochs, model = kakusan_epochs(x, x_eval, args.epochs, args.seed + r)
                    rec["kakusan_epoch"] += epochs
                else:
                    rec["pythae_epoch"] += pythae("epoch", ["--train", str(train_npy), "--eval", str(test_npy),
                                                            "--eval-rows", str(len(x_eval)), "--epochs",
                                                            str(args.epochs), *common], args.threads)
            if model is None:  # pythae only: its NLL timing trains its own model
                nll_model = ["--train", str(train_npy), "--train-steps", str(min(100, args.steps))]
            else:
                export_weights(model, weights)
                nll_model = ["--weights", str(weights)]
            for side in order:  # (b) NLL evaluation
                if side == "kakusan":
                    rec["kakusan_nll"].append(kakusan_nll(model, x_nll, args.k, args.seed + r))
                else:
                    out = pythae("nll", ["--test", str(test_npy), "--images", str(len(x_nll)), "--k", str(args.k),
                                         "--grad-images", str(args.grad_images if r == 0 else 0), *nll_model,
                                         *common], args.threads)
                    rec["pythae_nll"] += out
                    if out and model is not None:
                        checks.append(same_model_check(model, x_nll, args.k, args.seed + r,
                                                       out[0]["mean_log_likelihood"]))
    return report(args, env, rec, checks)


def report(args, env: dict, rec: dict[str, list[dict]], checks: list[dict]) -> int:
    summary = {
        "kakusan_s_per_step": best(rec["kakusan_steps"], "s_per_step"),
        "pythae_raw_s_per_step": best(rec["pythae_steps"], "s_per_step"),
        "kakusan_epoch_s_per_step": best(rec["kakusan_epoch"], "s_per_step"),
        "pythae_trainer_s_per_step": best(rec["pythae_epoch"], "s_per_step"),
        "kakusan_epoch_s": best(rec["kakusan_epoch"], "epoch_wall_s"),
        "pythae_epoch_s": best(rec["pythae_epoch"], "epoch_wall_s"),
        "kakusan_epoch_cpu_s": best(rec["kakusan_epoch"], "epoch_cpu_s"),
        "pythae_epoch_cpu_s": best(rec["pythae_epoch"], "epoch_cpu_s"),
        "kakusan_eval_s": best(rec["kakusan_epoch"], "eval_wall_s"),
        "pythae_eval_s": best(rec["pythae_epoch"], "eval_wall_s"),
        "kakusan_nll_s_per_image": best(rec["kakusan_nll"], "s_per_image"),
        "pythae_nll_s_per_image": best(rec["pythae_nll"], "s_per_image"),
        "pythae_nll_grad_s_per_image": best(rec["pythae_nll"], "grad_s_per_image"),
    }

    def val(key: str) -> float | None:
        return summary[key].get("min")

    def ratio(pythae_key: str, kakusan_key: str) -> str:
        a, b = val(pythae_key), val(kakusan_key)
        return f"**{a / b:.2f}×**" if a and b else "—"

    def ms(key: str) -> str:
        v = val(key)
        return f"{1000 * v:.2f}" if v is not None else "—"

    def s(key: str) -> str:
        v = val(key)
        return f"{v:.2f}" if v is not None else "—"

    def ips(key: str) -> str:
        v = val(key)
        return f"{1 / v:.0f}" if v is not None else "—"

    steps_e = (rec["kakusan_epoch"] or rec["pythae_epoch"] or [{"steps": "?"}])[0]["steps"]
    print(f"\nBurda VAE (425,284 parameters), batch {BATCH}, Adam (kakusan: {OPTIMIZER}), {args.threads} thread(s); fastest of "
          f"{args.repeats} alternating repeats; ratio = kakusan rate / pythae rate (pythae time ÷ kakusan time)\n")
    print("| measure | kakusan | pythae 0.1.2 | kakusan/pythae |")
    print("|---|---|---|---|")
    print(f"| ms per training step (kakusan `train.fit`; pythae raw `train_step` body) | {ms('kakusan_s_per_step')} "
          f"| {ms('pythae_raw_s_per_step')} | {ratio('pythae_raw_s_per_step', 'kakusan_s_per_step')} |")
    print(f"| ms per step inside the epoch (pythae: `BaseTrainer`) | {ms('kakusan_epoch_s_per_step')} | "
          f"{ms('pythae_trainer_s_per_step')} | {ratio('pythae_trainer_s_per_step', 'kakusan_epoch_s_per_step')} |")
    print(f"| s per epoch ({steps_e} steps + evaluation on {args.eval_rows} test rows), wall | {s('kakusan_epoch_s')} "
          f"| {s('pythae_epoch_s')} | {ratio('pythae_epoch_s', 'kakusan_epoch_s')} |")
    print(f"| s per epoch, CPU | {s('kakusan_epoch_cpu_s')} | {s('pythae_epoch_cpu_s')} | "
          f"{ratio('pythae_epoch_cpu_s', 'kakusan_epoch_cpu_s')} |")
    print(f"| of which evaluation, s | {s('kakusan_eval_s')} | {s('pythae_eval_s')} | "
          f"{ratio('pythae_eval_s', 'kakusan_eval_s')} |")
    print(f"| NLL evaluation, k={args.k}: images per second | {ips('kakusan_nll_s_per_image')} | "
          f"{ips('pythae_nll_s_per_image')} | {ratio('pythae_nll_s_per_image', 'kakusan_nll_s_per_image')} |")
    print(f"| NLL evaluation, k={args.k}: ms per image | {ms('kakusan_nll_s_per_image')} | "
          f"{ms('pythae_nll_s_per_image')} (autograd on: {ms('pythae_nll_grad_s_per_image')}) | |")
    goals = {}
    if val("pythae_epoch_s") and val("kakusan_epoch_s"):
        goals["epoch"] = val("pythae_epoch_s") / val("kakusan_epoch_s")
        print(f"\ngoal per epoch ≥ {GOAL_EPOCH:g}×: {goals['epoch']:.2f}× — "
              f"{'met' if goals['epoch'] >= GOAL_EPOCH else 'NOT met'}")
    if val("pythae_nll_s_per_image") and val("kakusan_nll_s_per_image"):
        goals["nll"] = val("pythae_nll_s_per_image") / val("kakusan_nll_s_per_image")
        print(f"goal NLL throughput ≥ {GOAL_NLL:g}×: {goals['nll']:.2f}× — "
              f"{'met' if goals['nll'] >= GOAL_NLL else 'NOT met'}")
    loop_checks = [r.get("loop_check_bit_identical") for r in rec["pythae_steps"] if "loop_check_bit_identical" in r]
    if loop_checks:
        print(f"pythae raw loop = BaseTrainer.train_step bit for bit: {all(loop_checks)}")
    for c in checks:
        print(f"same model: pythae get_nll {c['pythae_mean_log_lik']:.3f}, kakusan {c['kakusan_mean_log_lik']:.3f} "
              f"nats per image (difference {c['difference']:+.3f} ± {c['difference_se']:.3f}) — "
              f"{'ok' if c['same_model_ok'] else 'MISMATCH'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "args": vars(args), "summary": summary,
                                               "goals": goals, "same_model": checks, "records": rec},
                                              indent=2) + "\n")
    return 0 if all(c["same_model_ok"] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Where a diffusion model's VLB spends its bits, step by step, and the most that learned variances could save.

For each t ≥ 2 the term L_{t−1} with the fixed variance β̃_t is ½ Σ_d r_d per example, r_d = (SNR(t−1) − SNR(t))
(x_0,d − x̂_0,d)² (docs/diffusion.md §2). A per-dimension variance β̃_t e^s lowers it to ½ Σ_d [s + (1 + r_d) e^−s − 1],
at best (e^s = 1 + r_d) to ½ Σ_d log(1 + r_d): the *oracle*, which knows each pixel's own error. A head that sees
only x_t can at best use E[r | x_t] instead (Jensen: never below the oracle), so the oracle bounds what a learned
head of `--loss decoder --decoder-steps K` gains at t ≥ 2, for the denoiser's x̂_0 as it is. The table prints, per
t, the fixed term, the oracle, and the oracle's saving, in bits/dim on the first ``--rows`` test images (one draw of
x_t each, the model's EMA weights, labels as in training), with the sums over ranges of t.

    python benchmarks/vlb_profile.py runs/ddpm-mnist-cond-r2 [--rows 200] [--seed 0] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

STEPS = tuple(range(2, 21)) + (25, 30, 40, 50, 60, 80, 100, 150, 200, 300, 400, 600, 800, 1000)


def profile(run: str, rows: int, seed: int, steps=STEPS) -> list[tuple[int, float, float]]:
    """(t, fixed term, oracle term) in bits/dim for each t of ``steps`` (≤ the model's T)."""
    import torch

    import kakusan
    from kakusan.commands.diffusion_common import DiffusionDataSpec, prepare_data, read_config
    from kakusan.diffusion.vlb import _coefficients, _col, _integer_t, _x0_hat

    model = kakusan.load(run).eval()
    spec = DiffusionDataSpec(**read_config(run)["data"])
    data = prepare_data(spec)
    x0 = model.to_model(data.test[:rows])
    n = len(x0)
    cond = model.check_cond(data.test_labels[:rows], n) if model.n_classes else None
    g = torch.Generator().manual_seed(seed)
    bits = x0[0].numel() * math.log(2)
    out = []
    for t in (s for s in steps if s <= model.schedule.T):
        tt = _integer_t(model.schedule, t, n)
        a, s = (v.to(x0) for v in model.schedule.alpha_sigma(tt.double()))
        x_t = _col(a, x0) * x0 + _col(s, x0) * torch.randn(x0.shape, generator=g).to(x0)
        with torch.no_grad():
            x0_hat, _ = _x0_hat(model, x_t, tt, cond, bool(model.config.levels))
        c = _coefficients(model.schedule, tt, x0)
        r = (c.c0**2 / c.post)[:, None] * ((x0 - x0_hat).double().reshape(n, -1) ** 2)
        out.append((t, float(0.5 * r.sum(1).mean()) / bits, float(0.5 * torch.log1p(r).sum(1).mean()) / bits))
    return out


def table(rows: list[tuple[int, float, float]]) -> str:
    lines = ["| t | fixed β̃_t, bits/dim | oracle variance, bits/dim | oracle saving |", "|---|---|---|---|"]
    lines += [f"| {t} | {f:.4f} | {o:.4f} | {f - o:.4f} |" for t, f, o in rows]
    by_t = {t: (f, o) for t, f, o in rows}
    for lo, hi in ((2, 10), (11, 20)):
        if all(t in by_t for t in range(lo, hi + 1)):
            f = sum(by_t[t][0] for t in range(lo, hi + 1))
            o = sum(by_t[t][1] for t in range(lo, hi + 1))
            lines.append(f"| sum {lo}…{hi} | {f:.4f} | {o:.4f} | {f - o:.4f} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--rows", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="append the table to this markdown file")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    rows = profile(args.run, args.rows, args.seed)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    text = (f"`python benchmarks/vlb_profile.py {args.run} --rows {args.rows} --seed {args.seed}` "
            f"({usage.ru_utime + usage.ru_stime:.0f} CPU-s, {time.time() - t0:.0f} s)\n\n" + table(rows))
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

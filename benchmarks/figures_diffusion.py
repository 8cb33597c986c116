"""Draw the diffusion chapter's figures from a trained run, with fixed seeds, into one folder.

    python benchmarks/figures_diffusion.py runs/ddpm-mnist-cond --out docs/figures

writes ``<prefix>_forward.png`` (a test image noised and denoised), ``<prefix>_samplers.png`` (the same x_T through
each sampler at 5–50 steps), ``<prefix>_classes.png`` (ten samples per class, DPM-Solver++(2M), 20 steps, guidance
2), ``<prefix>_vlb_t.png`` (bits/dim of each VLB term against t and their running sum, by ``vlb_exact`` on the first
``--vlb-rows`` test images; with ``--decoder-run`` also the terms L_0 … L_{K−1} of a learned head fitted to the run,
and the bound with them) and ``<prefix>_fd_nfe.png`` (FD against network evaluations, redrawn from the rows of
``--results``, the table ``benchmarks/eval_diffusion.py`` wrote — measuring FD again costs ~10 CPU-minutes; run that
script to refresh it). The prefix is ``diffusion_mnist`` or ``diffusion_fashion`` after the run's data set. Every
figure is drawn by the current code from the run's EMA weights; the whole command takes ~3 CPU-minutes on MNIST's
UNet (0.2 GFLOP per image and step), most of it the 1000 network calls of the exact VLB.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).parent))
from eval_diffusion import fd_curves, read_table  # noqa: E402

SAMPLERS = ("ddpm", "ddim", "dpm++2m", "dpm++2m-sde", "heun")
STEPS = (5, 10, 20, 50)
PREFIX = {"mnist": "diffusion_mnist", "fashion-mnist": "diffusion_fashion"}
FIGURES = ("forward", "samplers", "classes", "vlb_t", "fd_nfe")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a trained run directory (kakusan diffusion train)")
    p.add_argument("--out", required=True, help="folder for the PNGs")
    p.add_argument("--prefix", help="file name prefix (default: diffusion_<data set>)")
    p.add_argument("--results", help="eval_diffusion.py's table for the FD figure (default: "
                                     "benchmarks/results_<prefix>.md; skipped when missing)")
    p.add_argument("--vlb-rows", type=int, default=32, help="test images for the bits/dim-against-t figure")
    p.add_argument("--decoder-run", help="a run fitted by `--loss decoder --init RUN` to this one: the vlb_t figure "
                                         "adds the terms its head serves and its bound (same images, same x_t)")
    p.add_argument("--only", nargs="+", choices=FIGURES, help="draw only these figures (default: all)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch

    from kakusan.commands.diffusion import _load
    from kakusan.report import diffusion as report
    from kakusan.runtime import set_threads

    set_threads()
    model, test, labels, _, spec, _, device = _load(argparse.Namespace(source=args.run, device="cpu", weights="ema",
                                                                       data=None, rows=0))
    prefix = args.prefix or PREFIX.get(spec.data, f"diffusion_{Path(str(spec.data)).stem}")
    out = Path(args.out)
    k = model.n_classes

    def timed(name: str, draw) -> None:
        t0 = time.process_time()
        path = draw(out / f"{prefix}_{name}.png")
        if path is not None:
            print(f"{path}: {time.process_time() - t0:.0f} CPU-s", flush=True)

    def forward(path):
        return report.forward_process_figure(model, test[:1], path, generator=torch.Generator().manual_seed(args.seed))

    def samplers(path):
        n = 8
        cond = torch.arange(n) % k if k else None
        x_T = torch.randn((n, *model.data_shape), generator=torch.Generator().manual_seed(args.seed + 1))
        grid = {name: {s: model.sample(n, args.seed + 2, sampler=name, steps=s, labels=cond, x_T=x_T) for s in STEPS}
                for name in SAMPLERS}
        return report.sampler_grid_figure(grid, path, n_show=n)

    def classes(path):
        if not k:
            return report.samples_figure(model.sample(100, args.seed + 3, steps=20), path, nrow=10)
        cond = torch.arange(k).repeat_interleave(10)
        return report.samples_figure(model.sample(len(cond), args.seed + 3, steps=20, labels=cond, guidance=2.0),
                                     path, nrow=10)

    def vlb_t(path):
        from kakusan.diffusion.vlb import vlb_exact

        x = test[: args.vlb_rows]
        cond = None if not k or labels is None else labels[: args.vlb_rows].long()
        result = vlb_exact(model, x, cond, generator=args.seed + 4, batch=args.vlb_rows)
        bpd = result.bits_per_dim(model.n_features)
        print(f"VLB (exact sum over t) on {len(x)} test images: {bpd.value:.4f} ± {bpd.stderr:.4f} bits/dim")
        learned = None
        if args.decoder_run:  # the same x_t: vlb_exact's first K draws (one batch) are those of t = 1 … K
            from kakusan.diffusion.decoder import head_term
            from kakusan.runtime import make_generator

            fitted = _load(argparse.Namespace(source=args.decoder_run, device="cpu", weights="ema", data=None,
                                              rows=0))[0]
            x0 = fitted.to_model(x)
            g = make_generator(args.seed + 4, x0.device)
            eps = [torch.randn(x0.shape, generator=g, dtype=x0.dtype) for _ in range(fitted.head_steps())]
            with torch.no_grad():
                learned = torch.stack([head_term(fitted, x0, t + 1, cond, eps=e) for t, e in enumerate(eps)], 1)
                torch.testing.assert_close(head_term(model, x0, 1, cond, eps=eps[0]), result.terms[:, 0])  # same x_1
            bits = model.n_features * math.log(2)
            K = learned.shape[1]
            print(f"L_0 … L_{K - 1}: {float(result.terms[:, :K].sum(1).mean()) / bits:.4f} (fixed), "
                  f"{float(learned.sum(1).mean()) / bits:.4f} (learned) bits/dim; L_0: "
                  f"{float(result.terms[:, 0].mean()) / bits:.4f} (fixed), {float(learned[:, 0].mean()) / bits:.4f} "
                  "(learned)")
        return report.vlb_t_figure(result, model.n_features, path, learned=learned,
                                   title=f"{spec.data}: the VLB's terms on {len(x)} test images")

    def fd_nfe(path):
        results = Path(args.results or f"benchmarks/results_{prefix}.md")
        if not results.exists():
            print(f"{results} missing: no FD figure (write it with benchmarks/eval_diffusion.py)")
            return None
        curves, floor = fd_curves(read_table(results), model.schedule)
        return report.fd_nfe_figure(curves, path, floor=floor) if curves else None

    t0 = time.process_time()
    draws = {"forward": forward, "samplers": samplers, "classes": classes, "vlb_t": vlb_t, "fd_nfe": fd_nfe}
    for name in args.only or FIGURES:
        timed(name, draws[name])
    print(f"all figures: {time.process_time() - t0:.0f} CPU-s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Evaluate a trained diffusion run the way docs/benchmarks.md reports it: test bits/dim (VLB and PF-ODE), FD /
precision / recall against the number of network evaluations for each sampler, class accuracy with guidance.

Every number comes from a ``kakusan diffusion evaluate`` command, run here one after another; the table records
each command and the CPU seconds it took (user + system of the child process).

    python benchmarks/eval_diffusion.py runs/ddpm-mnist-cond --out benchmarks/results_diffusion_mnist.md \
        [--rows 1000] [--ode-rows 32] [--n-samples 500] [--unconditional] [--append]

``--unconditional`` evaluates a class-conditional run's null class (``diffusion evaluate --unconditional``: the
unconditional model its label dropout trained). ``--append`` adds the rows to the table already in ``--out``
instead of rewriting it (its earlier rows and notes stay; the FD figure is then drawn from all FD rows).

``benchmarks/figures_diffusion.py`` redraws the FD-against-NFE figure from the table this writes (``read_table``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
KAKUSAN = [sys.executable, "-m", "kakusan"]
SAMPLERS = (("dpm++2m", 10), ("dpm++2m", 20), ("ddim", 20), ("ddim", 50), ("heun", 10), ("ddpm", 100))


def evaluate(run: str, *options: str) -> tuple[dict, float, str]:
    argv = ["diffusion", "evaluate", run, *options, "--json", "--runs-root", "/tmp/kakusan-eval-runs"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(KAKUSAN + argv, check=True, capture_output=True, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(out.strip().splitlines()[-1]), cpu, "kakusan " + " ".join(argv[:-2])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--out", required=True)
    p.add_argument("--rows", type=int, default=1000, help="test images for the VLB")
    p.add_argument("--ode-rows", type=int, default=32, help="test images for the PF-ODE likelihood")
    p.add_argument("--n-samples", type=int, default=500, help="samples per FD point")
    p.add_argument("--guidance", type=float, nargs="*", default=[2.0], help="extra guidance scales (dpm++2m, 20)")
    p.add_argument("--skip-nll", action="store_true")
    p.add_argument("--skip-ode", action="store_true", help="the VLB row without the PF-ODE one")
    p.add_argument("--unconditional", action="store_true", help="a conditional run's null class (no guidance rows)")
    p.add_argument("--append", action="store_true", help="add the rows to the table in --out, keeping the rest")
    p.add_argument("--samplers", default=",".join(f"{a}:{b}" for a, b in SAMPLERS),
                   help="sampler:steps pairs for the FD rows (default: %(default)s)")
    args = p.parse_args()
    rows: list[tuple[str, dict, float]] = []
    t0 = time.time()

    if args.unconditional and args.guidance:
        p.error("--unconditional takes no guidance rows: give --guidance with no values")
    previous = Path(args.out).read_text() if args.append and Path(args.out).exists() else None

    def record(label, *options):
        if args.unconditional:
            label, options = f"{label}, unconditional", (*options, "--unconditional")
        result, cpu, command = evaluate(args.run, *options)
        result["unconditional"] = args.unconditional
        rows.append((label, result, cpu, command))
        print(f"{label}: {json.dumps(result)} ({cpu:.0f} CPU-s)", flush=True)
        write(args, rows, time.time() - t0, previous)
        fd_figure(args, rows)

    if not args.skip_nll:
        record("VLB", "--nll", "vlb", "--rows", str(args.rows), "--n-t", "50")
        if not args.skip_ode:
            record("PF-ODE", "--nll", "ode", "--rows", str(args.ode_rows))
    for sampler, steps in (pair.split(":") for pair in args.samplers.split(",") if pair):
        record(f"{sampler} {steps}", "--nll", "none", "--fd", "--n-samples", str(args.n_samples), "--sampler", sampler,
               "--steps", str(steps))
    for w in args.guidance:
        record(f"dpm++2m 20, w={w:g}", "--nll", "none", "--fd", "--n-samples", str(args.n_samples), "--sampler",
               "dpm++2m", "--steps", "20", "--guidance", str(w))
    return 0


def fd_figure(args, rows) -> None:
    """FD against network evaluations per sampler (guidance 1), beside ``--out`` as ``<stem>_fd_nfe.png``."""
    import kakusan
    from kakusan.report.diffusion import fd_nfe_figure

    results = [r for _, r, _, _ in rows]
    if args.append and Path(args.out).exists():  # every FD row of the table, earlier ones included
        results = read_table(args.out)
    curves, floor = fd_curves(results, kakusan.load(args.run).schedule, args.unconditional)
    if curves:
        out = Path(args.out)
        fd_nfe_figure(curves, out.with_name(out.stem + "_fd_nfe.png"), floor=floor)


def fd_curves(results, schedule, unconditional: bool = False) -> tuple[dict, float | None]:
    """({sampler: ([NFE], [FD])}, the train-vs-test floor) from evaluation results without guidance (w = 1), of
    the conditional model or (``unconditional``) of a conditional run's null class."""
    from kakusan.diffusion.samplers import nfe

    curves, floor = {}, None
    for r in results:
        if "fd" not in r or r.get("guidance", 1.0) != 1.0 or r.get("unconditional", False) != unconditional:
            continue
        xs, ys = curves.setdefault(r["sampler"], ([], []))
        xs.append(nfe(r["sampler"], r["steps"], schedule))
        ys.append(r["fd"])
        floor = r["floor"]["fd"] if isinstance(r.get("floor"), dict) else floor
    return curves, floor


def read_table(path: str | Path) -> list[dict]:
    """The FD rows of a table that :func:`write` made, as evaluation results: {sampler, steps, guidance, fd,
    floor: {fd}} read from each row's FD cells and its command's options (so a figure can be redrawn without
    re-measuring)."""
    import shlex

    lines = [line for line in Path(path).read_text().splitlines() if line.startswith("|")]
    if not lines:
        raise SystemExit(f"{path}: no table found (write it with benchmarks/eval_diffusion.py --out)")
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    col = {name: header.index(name) for name in ("FD", "FD floor (train vs test)", "command")}
    results = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        fd, floor = cells[col["FD"]], cells[col["FD floor (train vs test)"]]
        if not fd:
            continue
        argv = shlex.split(cells[col["command"]].strip("`"))
        option = {k: v for k, v in zip(argv, argv[1:]) if k.startswith("--")}
        results.append({"sampler": option.get("--sampler", "dpm++2m"), "steps": int(option.get("--steps", 20)),
                        "guidance": float(option.get("--guidance", 1.0)), "fd": float(fd.split("±")[0]),
                        "unconditional": "--unconditional" in argv,
                        "floor": {"fd": float(floor)} if floor else None})
    return results


def write(args, rows, wall: float, previous: str | None = None) -> None:
    """The table of ``rows`` to ``--out``; with ``previous`` (the file's text before an ``--append`` run) the rows
    go after its table's last row and the command line is added below its own, everything else kept."""
    said = (f"`python {' '.join(sys.argv)}` — {wall / 60:.0f} min wall, load {os.getloadavg()[0]:.1f} at the end"
            + (" (the rows marked so)." if previous is not None else "."))
    lines = [f"# Diffusion evaluation of `{args.run}`", "", said, "",
             "| what | nll (nats) | bits/dim | FD | FD floor (train vs test) | precision | recall | class accuracy | NFE "
             "| CPU-s | command |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += table_rows(rows, mark="appended: " if previous is not None else "")
    lines += ["", f"Figures: `python benchmarks/figures_diffusion.py {args.run} --out docs/figures` redraws the "
              "chapter's figures from the run with fixed seeds (the FD-against-NFE one from this table's rows)."]
    if previous is not None:
        old = previous.splitlines()
        rows_at = [i for i, line in enumerate(old) if line.startswith("|")]
        if not rows_at:
            raise SystemExit(f"{args.out}: no table to append to; run without --append")
        first = next(i for i, line in enumerate(old) if line.startswith("`python "))
        lines = (old[:first + 1] + ["", "Appended: " + said] + old[first + 1:rows_at[-1] + 1]
                 + table_rows(rows, mark="appended: ") + old[rows_at[-1] + 1:])
        # a second append replaces nothing: its rows and line stack under the earlier ones
    Path(args.out).write_text("\n".join(lines) + "\n")


def table_rows(rows, mark: str = "") -> list[str]:
    lines = []
    for label, r, cpu, command in rows:
        def f(key, fmt="{:.4g}"):
            v = r.get(key)
            return "" if v is None else fmt.format(v)
        nll = f"{r['nll']:.2f} ± {r['nll_stderr']:.2f}" if "nll" in r else ""
        bpd = f"{r['bits_per_dim']:.4f} ± {r['bits_per_dim_stderr']:.4f}" if "bits_per_dim" in r else ""
        fd = f"{r['fd']:.3g} ± {r['fd_stderr']:.2g}" if "fd_stderr" in r else f("fd")
        floor = f"{r['floor']['fd']:.3g}" if isinstance(r.get("floor"), dict) else ""
        nfe = r.get("nfe", "")
        lines.append(f"| {mark}{label} | {nll} | {bpd} | {fd} | {floor} | {f('precision', '{:.3f}')} "
                     f"| {f('recall', '{:.3f}')} | {f('class_accuracy', '{:.3f}')} | {nfe} | {cpu:.0f} | `{command}` |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())

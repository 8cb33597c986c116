"""``kakusan tour``: the main job — walk the road chapter by chapter (on the bundled digits; the last chapter with the
shipped prompt → image model), write one HTML report."""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time

from kakusan.commands.args import harden_run_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tour", help="run every chapter (bundled digits; the shipped prompt → image model) and write an "
                                           "HTML report")
    p.add_argument("--size", choices=("tiny", "default"), default="default",
                   help="tiny: seconds, for CI; default: the full tour (under two minutes on 2 CPU cores)")
    p.add_argument("--chapters", default=None, help="comma-separated chapter names to run (default: all)")
    harden_run_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kakusan.errors import KakusanError
    from kakusan.report.html import provenance, render_section, write_report
    from kakusan.report.run_dir import RunDir
    from kakusan.runtime import make_generator, set_threads
    from kakusan.tour import CHAPTERS, PLANNED, TourContext

    chapters = list(CHAPTERS) if args.chapters is None else [c.strip() for c in args.chapters.split(",") if c.strip()]
    if not chapters:
        raise KakusanError(f"--chapters {args.chapters!r} names no chapter: choose from {', '.join(CHAPTERS)}")
    unknown = [c for c in chapters if c not in CHAPTERS]
    if unknown:
        raise KakusanError(f"unknown chapter(s) {', '.join(unknown)}: choose from {', '.join(CHAPTERS)}")
    set_threads()
    run_dir = RunDir.create("tour", args.run_dir, args.runs_root)
    run_dir.write_config({"command": "tour", "size": args.size, "chapters": chapters, "seed": args.seed},
                         argv=args.argv)
    ctx = TourContext(run=run_dir, size=args.size, generator=make_generator(args.seed))
    rendered = []
    started = time.perf_counter()
    bar = tqdm(chapters, desc="tour", unit="chapter", file=sys.stderr)
    for i, name in enumerate(bar):
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        section = importlib.import_module(f"kakusan.tour.{name}").section(ctx)
        seconds = time.perf_counter() - t0
        section.numbers.setdefault("time for this section (s)", round(seconds, 2))
        run_dir.log_metrics(chapter=name, seconds=seconds, **{k: v for k, v in section.numbers.items()})
        rendered.append((f"s{i}", section.title, render_section(f"{i + 1}. {section.title}", section.paragraphs,
                                                                 section.figures, section.numbers, anchor=f"s{i}")))
    header = {
        "command": shlex.join(args.argv if getattr(args, "argv", None) else ["kakusan", "tour"]),
        "size": f"{args.size} (chapters: {', '.join(chapters)})",
        "seed": args.seed,
        **provenance("cpu"),
        "run directory": str(run_dir.path),
        "time": f"{time.perf_counter() - started:.1f} s",
    }
    report = write_report(run_dir.path / "report.html", "kakusan tour: from KL divergence to diffusion", rendered,
                          intro="Every model on this road is learned by minimising KL(p<sub>0</sub>&#8214;q), the "
                                "divergence from the data's empirical distribution to the model. The chapters "
                                "below run on scikit-learn's bundled 8×8 digits, and the last one, prompt → image, "
                                "on the latent diffusion model shipped with kakusan (trained on MNIST and "
                                "Fashion-MNIST).",
                          header=header, planned=PLANNED)
    print(f"report: {report}")
    return 0

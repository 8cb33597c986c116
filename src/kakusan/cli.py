"""kakusan: generative models from the Boltzmann machine to the diffusion model.

Each subcommand module has ``add_parser(subparsers)`` and ``run(args) -> int``.

Errors a user can fix leave with exit status 2 and one line on stderr (``kakusan: error: ...``),
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see kakusan/__init__.py)

# Subcommand modules under kakusan.commands, in the order `kakusan --help` lists them.
COMMANDS = ("tour", "data", "sample", "gaussian", "ising", "rbm", "vae", "diffusion", "generate", "metric_net")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from kakusan import __version__

    parser = OneLineParser(prog="kakusan", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kakusan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"kakusan.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"kakusan.commands.{name}":
                continue  # a chapter not written yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Building the parser imports every command module, torch among them. A KeyboardInterrupt raised while
    # torch's C++ is calling back into Python cannot be caught: pybind11 turns it into a C++ exception and the
    # process aborts. So Ctrl-C is only noted while the modules load, and acted on (one line, status 130) after.
    noted: list[int] = []
    deferring = (threading.current_thread() is threading.main_thread()
                 and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN)  # a process told to ignore it still does
    if deferring:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        from kakusan.commands.generate import rewrite_argv

        parser = build_parser()
        args = parser.parse_args(rewrite_argv(sys.argv[1:] if argv is None else list(argv)))
    except KeyboardInterrupt:
        noted.append(signal.SIGINT)
    finally:
        if deferring:
            signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    if noted:
        sys.stderr.write("kakusan: interrupted\n")
        return 130
    args.argv = ["kakusan", *(sys.argv[1:] if argv is None else argv)]  # recorded in each run's argv.json
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    status, crashed = 1, True
    try:
        status = _run(args)
        crashed = False
        return status
    finally:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # leave torchrun's process group cleanly
            from kakusan.runtime import finish_distributed

            # after a clean finish, leave at once (gloo's teardown can abort); a crash keeps its traceback
            finish_distributed(barrier=status == 0, exit_status=None if crashed else status)


def _run(args: argparse.Namespace) -> int:
    from kakusan.errors import KakusanError
    from kakusan.train_state import Interrupted

    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # under torchrun: join the process group first
            from kakusan.runtime import init_distributed

            if init_distributed(getattr(args, "device", None))[0] != 0:
                sys.stdout = open(os.devnull, "w")  # rank 0 reports; the others only compute
        return int(args.run(args) or 0)
    except Interrupted as e:
        sys.stderr.write(f"kakusan: {e}; run the same command with --resume to continue\n")
        return 130
    except KakusanError as e:
        sys.stderr.write(f"kakusan: error: {e}\n")
        return 2
    except FileNotFoundError as e:
        sys.stderr.write(f"kakusan: error: file not found: {e.filename}; check the path\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("kakusan: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

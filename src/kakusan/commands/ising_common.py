"""What the ``kakusan ising`` subcommands share: method names, the enumeration limits, the PT ladder options.

The parser (:mod:`kakusan.commands.ising`) and the subcommand bodies (:mod:`~kakusan.commands.ising_sample`,
:mod:`~kakusan.commands.ising_fit`, :mod:`~kakusan.commands.ising_inverse`) import this module; it imports
none of them.
"""

from __future__ import annotations

import argparse

SAMPLE_METHODS = ("exact", "gibbs", "metropolis", "pt")
INVERSE_METHODS = ("nmf", "tap", "sm", "plm", "mpf")  # MCMC-free solvers: kakusan.learn.inverse.solve
FIT_METHODS = ("exact", "pcd", "pt", *INVERSE_METHODS)
EXACT_CHECK_SPINS = 20
"""Up to this N, ``ising sample`` adds exact ⟨E⟩ and ⟨m⟩ to its diagnostics and ``ising fit --method pcd|pt``
reports the exact KL (enumeration takes milliseconds)."""


def check_enumerable(n: int) -> None:
    """A one-line error when N spins are too many for exact enumeration."""
    from kakusan.boltzmann.exact import MAX_SPINS
    from kakusan.errors import KakusanError

    if n > MAX_SPINS:
        raise KakusanError(f"N = {n} spins is too many to enumerate (limit {MAX_SPINS}): use a sampler")


def add_ladder_options(p: argparse.ArgumentParser) -> None:
    """--betas, --replicas and --beta-min of a replica-exchange ladder."""
    p.add_argument("--betas", default=None,
                   help="pt: the ladder, comma-separated increasing β ending at 1 (default: geometric, see below)")
    from kakusan.commands.args import open_unit, positive_int

    p.add_argument("--replicas", type=positive_int, default=None,
                   help="pt: temperatures of the default geometric ladder (default 12)")
    p.add_argument("--beta-min", type=open_unit, default=None,
                   help="pt: lowest β of the default geometric ladder (default 0.2)")


def parse_ladder(args: argparse.Namespace):
    """The PT ladder from --betas, or geometric from --beta-min to 1 with --replicas temperatures; ends at β = 1."""
    from kakusan.errors import KakusanError
    from kakusan.mcmc.ladders import check_ladder, geometric_ladder

    if args.betas is None:
        beta_min = 0.2 if args.beta_min is None else args.beta_min
        if not 0 < beta_min < 1:
            raise KakusanError(f"--beta-min must be in (0, 1), got {beta_min}")
        return geometric_ladder(beta_min, 1.0, 12 if args.replicas is None else args.replicas)
    if args.replicas is not None or args.beta_min is not None:
        raise KakusanError("--replicas and --beta-min make the default ladder, which --betas replaces: give one or the "
                           "other")
    try:
        values = [float(v) for v in args.betas.split(",") if v.strip()]
    except ValueError:
        raise KakusanError(f"--betas must be comma-separated numbers, got {args.betas!r}") from None
    betas = check_ladder(values)
    if abs(float(betas[-1]) - 1.0) > 1e-12:
        raise KakusanError(f"--betas must end at 1 (the model's temperature, where samples are taken), "
                           f"got largest β = {float(betas[-1])}")
    betas[-1] = 1.0
    return betas

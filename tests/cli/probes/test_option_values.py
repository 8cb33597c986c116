"""Every numeric option of every subcommand against negative, zero, NaN, ±inf, overflowing, fractional and
non-numeric text: an invalid value is refused by the parser (one line naming the option), a valid one parses to the
value it names (the other modules run the commands); options that do not apply to the chosen method are an
error naming them, and leave no run directory."""

from __future__ import annotations

import argparse
import math

import pytest

from kakusan.cli import build_parser

from .support import fill

BAD_NUMBERS = ["-1", "nan", "inf", "-inf", "1e400", "abc", "", "0x10"]
# (subcommand argv prefix, option, kind): kind decides which values are valid
OPTIONS = [
    (["rbm", "train"], "--hidden", "pos_int"), (["rbm", "train"], "--epochs", "pos_int"),
    (["rbm", "train"], "--batch-size", "pos_int"), (["rbm", "train"], "--lr", "pos_float"),
    (["rbm", "train"], "--momentum", "below_one"), (["rbm", "train"], "--weight-decay", "nonneg_float"),
    (["rbm", "train"], "--k", "pos_int"), (["rbm", "train"], "--chains", "pos_int"),
    (["rbm", "train"], "--temperatures", "pos_int"), (["rbm", "train"], "--beta-min", "open_unit"),
    (["rbm", "train"], "--eval-every", "interval"), (["rbm", "train"], "--checkpoint-every", "nonneg_int"),
    (["rbm", "train"], "--samples", "nonneg_int"), (["rbm", "train"], "--sample-steps", "pos_int"),
    (["rbm", "train"], "--data-seed", "seed"), (["rbm", "train"], "--seed", "seed"),
    (["rbm", "train"], "--holdout", "open_unit"),
    (["rbm", "sample", "RUN"], "-n", "pos_int"), (["rbm", "sample", "RUN"], "--steps", "pos_int"),
    (["rbm", "evaluate", "RUN"], "--runs", "pos_int"), (["rbm", "evaluate", "RUN"], "--betas", "pos_int"),
    (["rbm", "evaluate", "RUN"], "--reverse-steps", "nonneg_int"),
    (["ising", "sample", "M", "--out", "o.npy"], "-n", "pos_int"),
    (["ising", "sample", "M", "--out", "o.npy"], "--chains", "pos_int"),
    (["ising", "sample", "M", "--out", "o.npy"], "--burn-in", "nonneg_int"),
    (["ising", "sample", "M", "--out", "o.npy"], "--thin", "pos_int"),
    (["ising", "sample", "M", "--out", "o.npy"], "--replicas", "pos_int"),
    (["ising", "sample", "M", "--out", "o.npy"], "--beta-min", "open_unit"),
    (["ising", "sample", "M", "--out", "o.npy"], "--adapt", "nonneg_int"),
    (["ising", "fit", "D", "--out", "o.npz"], "--steps", "pos_int"),
    (["ising", "fit", "D", "--out", "o.npz"], "--lr", "pos_float"),
    (["ising", "fit", "D", "--out", "o.npz"], "--l1", "nonneg_float"),
    (["ising", "fit", "D", "--out", "o.npz"], "--l2", "nonneg_float"),
    (["ising", "fit", "D", "--out", "o.npz"], "--chains", "pos_int"),
    (["ising", "fit", "D", "--out", "o.npz"], "--sweeps", "pos_int"),
    (["ising", "fit", "D", "--out", "o.npz"], "--beta-min", "open_unit"),
    (["gaussian", "fit", "D"], "--reg", "nonneg_float"),
    (["vae", "train"], "--epochs", "pos_int"), (["vae", "train"], "--lr", "pos_float"),
    (["vae", "train"], "--k", "pos_int"), (["vae", "train"], "--batch-size", "pos_int"),
    (["vae", "train"], "--warmup", "nonneg_int"), (["vae", "train"], "--free-bits", "nonneg_float"),
    (["vae", "train"], "--ema", "below_one"), (["vae", "train"], "--grad-clip", "pos_float"),
    (["vae", "train"], "--eval-every", "interval"), (["vae", "train"], "--checkpoint-every", "nonneg_int"),
    (["vae", "train"], "--holdout", "open_unit"), (["vae", "train"], "--data-seed", "seed"),
    (["vae", "train"], "--autoregressive", "odd_int"), (["vae", "train"], "--ar-channels", "nonneg_int"),
    (["vae", "evaluate", "RUN"], "--k", "pos_int"), (["vae", "evaluate", "RUN"], "--rows", "nonneg_int"),
    (["vae", "reconstruct", "RUN"], "-n", "pos_int"),
    (["diffusion", "train"], "--T", "pos_int"), (["diffusion", "train"], "--epochs", "pos_int"),
    (["diffusion", "train"], "--lr", "pos_float"), (["diffusion", "train"], "--warmup", "nonneg_int"),
    (["diffusion", "train"], "--ema", "below_one"), (["diffusion", "train"], "--grad-clip", "pos_float"),
    (["diffusion", "train"], "--cond-drop", "below_one"), (["diffusion", "train"], "--eval-every", "interval"),
    (["diffusion", "train"], "--hidden", "pos_int"), (["diffusion", "train"], "--depth", "pos_int"),
    (["diffusion", "train"], "--holdout", "open_unit"),
    (["diffusion", "evaluate", "RUN"], "--n-t", "pos_int"), (["diffusion", "evaluate", "RUN"], "--rows", "nonneg_int"),
    (["diffusion", "evaluate", "RUN"], "--n-samples", "pos_int"),
    (["diffusion", "evaluate", "RUN"], "--guidance", "nonneg_float"),
    (["diffusion", "sample", "RUN"], "-n", "pos_int"), (["diffusion", "sample", "RUN"], "--class", "nonneg_int"),
    (["sample", "RUN"], "-n", "pos_int"), (["sample", "RUN"], "--steps", "pos_int"),
    (["sample", "RUN"], "--class", "nonneg_int"), (["sample", "RUN"], "--guidance", "finite_float"),
    (["tour"], "--seed", "seed"),
]


def _oracle(kind: str, text: str):
    """The value ``text`` names for an option of ``kind``, or None where it must be refused."""
    try:
        value = int(text) if "int" in kind or kind in ("seed", "interval") else float(text)
    except ValueError:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    ok = {"pos_int": value >= 1, "nonneg_int": value >= 0, "interval": value >= -1, "seed": 0 <= value < 2**32,
          "pos_float": value > 0, "nonneg_float": value >= 0, "below_one": 0 <= value < 1,
          "open_unit": 0 < value < 1, "finite_float": True, "odd_int": value >= 3 and value % 2 == 1}[kind]
    return value if ok else None


@pytest.mark.parametrize("prefix, option, kind", OPTIONS, ids=[f"{' '.join(p[:2])} {o}" for p, o, _ in OPTIONS])
@pytest.mark.parametrize("text", [*BAD_NUMBERS, "0", "1", "0.5", "1.5", "-2", "4294967296", "3", "4"])
def test_option_values_are_checked_by_the_parser(probe, prefix, option, kind, text):
    argv = [*prefix, f"{option}={text}"]
    expected = _oracle(kind, text)
    if expected is None:
        probe.fails(argv, f"argument {option}")
        return
    probe.count()
    parser = build_parser()
    args = parser.parse_args(argv)  # a valid value parses to what it names (running commands: the other probes)
    assert getattr(args, _dest(parser, prefix, option)) == expected


def _dest(parser, prefix: list[str], option: str) -> str:
    """The attribute ``option`` of the subcommand ``prefix`` is stored in."""
    for word in prefix:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        parser = subs[0].choices[word]
    return next(a.dest for a in parser._actions if option in a.option_strings)


NOT_APPLICABLE = [
    (["ising", "sample", "{model}", "--out", "{tmp}/a.npy", "--method", "exact", "--chains", "4"], "--chains"),
    (["ising", "sample", "{model}", "--out", "{tmp}/a.npy", "--method", "exact", "--burn-in", "4"], "--burn-in"),
    (["ising", "sample", "{model}", "--out", "{tmp}/a.npy", "--method", "exact", "--thin", "2"], "--thin"),
    (["ising", "sample", "{model}", "--out", "{tmp}/a.npy", "--method", "gibbs", "--adapt", "2"], "--adapt"),
    (["ising", "sample", "{model}", "--out", "{tmp}/a.npy", "--method", "pt", "--betas", "0.5,1", "--replicas", "3"],
     "--replicas"),
    (["ising", "fit", "{spins}", "--out", "{tmp}/a.npz", "--method", "exact", "--asymmetric"], "--asymmetric"),
    (["ising", "fit", "{spins}", "--out", "{tmp}/a.npz", "--method", "mpf", "--asymmetric"], "--asymmetric"),
    (["ising", "fit", "{spins}", "--out", "{tmp}/a.npz", "--method", "exact", "--lr", "0.1"], "--lr"),
    (["ising", "fit", "{spins}", "--out", "{tmp}/a.npz", "--method", "nmf", "--steps", "3"], "--steps"),
    (["ising", "fit", "{spins}", "--out", "{tmp}/a.npz", "--method", "plm", "--chains", "3"], "--chains"),
    (["ising", "fit", "{spins}", "--out", "{tmp}/a.npz", "--method", "pcd", "--l1", "0.1"], "--l1"),
    (["ising", "fit", "{spins}", "--out", "{tmp}/a.npz", "--method", "exact", "--sweeps", "2"], "--sweeps"),
    (["rbm", "train", "--data", "{bits}", "--method", "cd", "--chains", "3"], "--chains"),
    (["rbm", "train", "--data", "{bits}", "--method", "pcd", "--temperatures", "3"], "--temperatures"),
    (["rbm", "train", "--data", "{bits}", "--method", "cd", "--beta-min", "0.3"], "--beta-min"),
    (["rbm", "train", "--data", "{bits}", "--units", "gaussian", "--binarise", "threshold"], "--binarise"),
    (["rbm", "train", "--data", "{bits}", "--units", "gaussian", "--data-seed", "3"], "--data-seed"),
    (["rbm", "train", "--data", "{bits}", "--binarise", "threshold", "--data-seed", "3"], "--data-seed"),
    (["rbm", "train", "--data", "{bits}", "--units", "spin", "--centered"], "--centered"),
    (["rbm", "evaluate", "{rbm}", "--exact", "--runs", "3"], "--runs"),
    (["rbm", "evaluate", "{rbm}", "--reverse-steps", "3"], "--reverse-steps"),
    (["vae", "train", "--data", "{img}", "--likelihood", "bernoulli", "--variance", "fixed"], "--variance"),
    (["vae", "train", "--data", "{img}", "--model", "vae", "--inference", "markov"], "--inference"),
    (["vae", "train", "--data", "{img}", "--model", "iwae", "--warmup", "5"], "--warmup"),
    (["vae", "train", "--data", "{real}", "--likelihood", "gaussian", "--data-seed", "1"], "--data-seed"),
    (["diffusion", "train", "--data", "{real}", "--cond-drop", "0.2"], "--cond-drop"),
    (["diffusion", "train", "--data", "{real}", "--channels", "8,16"], "--channels"),
    (["diffusion", "train", "--data", "{img}", "--denoiser", "unet", "--depth", "2"], "--depth"),
    (["diffusion", "evaluate", "{diffusion}", "--steps", "3"], "--steps"),
    (["diffusion", "evaluate", "{diffusion}", "--nll", "ode", "--n-t", "3"], "--n-t"),
    (["tour", "--chapters", ","], "--chapters"),
    (["tour", "--chapters", " , ,"], "--chapters"),
    (["data", "get", "digits", "--force"], "--force"),
    (["data", "get", "digits", "--from-wheel", "{tmp}/x.whl"], "--from-wheel"),
    (["data", "get", "fashion-mnist", "--force"], "--force"),
]


@pytest.mark.parametrize("argv, option", NOT_APPLICABLE, ids=[o + " " + " ".join(a[:2]) for a, o in NOT_APPLICABLE])
def test_options_that_do_not_apply_are_an_error(fails, names, home, argv, option):
    argv = fill(argv, names)
    fails(argv if argv[0] == "data" else [*argv, "--runs-root", home / "na-runs"], option)
    assert not (home / "na-runs").exists() or not any((home / "na-runs").iterdir()), "a run directory was left"

"""Explicit data splits for the training commands, and the names their evaluations report under.

``rbm train``, ``vae train`` and ``diffusion train`` take ``--holdout FRACTION`` or ``--test FILE`` for data
without a test split (:func:`add_split_options`; the split itself is :func:`kakusan.data.recipes.explicit_split`).
Without either, such data have no held-out rows: evaluation then measures the training rows, and says so — its
metrics carry the prefix ``train_`` (:func:`split_names`), ``"split"`` is ``"train"``, and a note
(:func:`no_held_out_note`) says there is no held-out data. With a test split the metrics keep their own names
and ``"split"`` is ``"test"``.
"""

from __future__ import annotations

import argparse

from kakusan.commands.args import open_unit

HOW_TO_HOLD_OUT = "train with --holdout FRACTION or --test FILE to have some"


def add_split_options(parser: argparse.ArgumentParser, rows_seed: str) -> None:
    """``--holdout FRACTION`` and ``--test FILE`` (one or the other); ``rows_seed`` says what chooses the held-out
    rows."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--holdout", type=open_unit, default=None, metavar="FRACTION",
                       help="for a data file without a test split: hold out this fraction of its rows as the test "
                            f"split ({rows_seed}), so that evaluation has held-out data")
    group.add_argument("--test", default=None, metavar="FILE",
                       help="for a data file without a test split: the rows of FILE (.npy, or .npz with x and y) are "
                            "the test split; they must have the training rows' shape")


def split_names(result: dict, split: str, names: tuple[str, ...]) -> dict:
    """``result`` with each key in ``names`` renamed ``train_KEY``, and ``n_test`` renamed ``n_train``, when ``split``
    is "train" (the rows measured are the training rows), in the same order; unchanged otherwise."""
    if split != "train":
        return result
    return {"n_train" if k == "n_test" else f"train_{k}" if k in names else k: v for k, v in result.items()}


def no_held_out_note(data: str, what: str) -> str:
    """The note an evaluation of data without a test split carries: ``what`` (e.g. "training-set ELBO and NLL")
    were measured on the training rows."""
    return f"{data} has no test split: there is no held-out data, so these are {what} (train_*); {HOW_TO_HOLD_OUT}"

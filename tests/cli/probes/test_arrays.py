"""Hypothesis arrays — 15 dtypes (complex, object, text and structured among them), scalar, empty, zero-row,
zero-column and 1-D to 4-D shapes, NaN/inf/1e300 — as ``.npy`` or ``.npz``, into every command that reads a user
array: each is read correctly (checked against numpy) or refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .support import arrays, examples, fresh, real_finite, save_array


@examples(140)
@given(x=arrays(), container=st.sampled_from(["npy", "npz-x", "npz-split"]))
def test_data_info_loads_an_array_or_says_why_not(probe, home, x, container):
    path = save_array(x, home, container)
    rc, out, err = probe(["data", "info", path, "--json"])
    assert rc == (0 if real_finite(x) else 2), (x.dtype, x.shape, err)
    if rc == 0:
        d = json.loads(out)
        assert d["n_train"] == len(x) and d["shape"] == list(x.shape[1:])
        assert d["max"] == pytest.approx(float(x.astype(np.float64).max()), rel=1e-3)


@examples(70)
@given(x=arrays())
def test_gaussian_fit_fits_or_says_why_not(probe, home, x):
    path = save_array(x, home, "npy")
    rc, out, err = probe(["gaussian", "fit", path, "--json", "--reg", "1e-3", "--runs-root", home / "g"])
    if not real_finite(x) or x.ndim > 2:
        assert rc == 2, (x.dtype, x.shape)
    if rc == 0:
        mean = np.asarray(json.loads(out)["mean"])
        assert np.allclose(mean, x.astype(np.float64).reshape(len(x), -1).mean(0), atol=1e-6)


@examples(70)
@given(x=arrays(), method=st.sampled_from(["nmf", "exact"]))
def test_ising_fit_takes_spins_or_says_why_not(probe, home, x, method):
    path = save_array(x, home, "npy")
    argv = ["ising", "fit", path, "--out", fresh(home, "fit", ".npz"), "--method", method, "--runs-root", home / "i"]
    if method == "exact":
        argv += ["--steps", "3"]
    rc, _, err = probe(argv)
    spins = real_finite(x) and x.ndim == 2 and (set(np.unique(x.astype(float))) <= {-1.0, 1.0}
                                                or set(np.unique(x.astype(float))) <= {0.0, 1.0})
    if not spins:
        assert rc == 2, (x.dtype, x.shape, err)


@examples(60)
@given(x=arrays(), command=st.sampled_from(["rbm", "vae", "diffusion"]))
def test_training_commands_refuse_bad_arrays(fails, home, x, command):
    """Only hostile arrays here (each must be refused before training); valid ones are trained elsewhere."""
    if real_finite(x):
        x = x.astype(np.float64)
        x.reshape(-1)[-1] = np.nan
    path = save_array(x, home, "npy")
    root = ["--runs-root", home / "t"]
    argv = {"rbm": ["rbm", "train", "--data", path, "--hidden", "2", "--epochs", "1", "--samples", "0", *root],
            "vae": ["vae", "train", "--data", path, "--likelihood", "gaussian", "--epochs", "1", *root],
            "diffusion": ["diffusion", "train", "--data", path, "--epochs", "1", "--T", "10", *root]}[command]
    fails(argv)


@examples(50)
@given(x=arrays(), command=st.sampled_from(["vae evaluate", "vae reconstruct", "diffusion evaluate"]))
def test_evaluation_data_files_are_checked(probe, home, runs, x, command):
    path = save_array(x, home, "npy")
    run = runs[command.split()[0]]
    argv = [*command.split(), run, "--data", path, "--runs-root", home / "e"]
    argv += {"vae evaluate": ["--k", "2", "--ladder", "1"], "vae reconstruct": ["-n", "2"],
             "diffusion evaluate": ["--n-t", "2"]}[command]
    rc, _, err = probe(argv)
    if not real_finite(x):
        assert rc == 2, err


@examples(50)
@given(J=arrays(), h=arrays(), command=st.sampled_from(["exact", "sample"]))
def test_ising_model_files_are_checked(probe, home, J, h, command):
    path = fresh(home, "m", ".npz")
    np.savez(path, J=J, h=h)
    argv = ["ising", command, path, "--runs-root", home / "m"]
    if command == "sample":
        argv += ["--out", fresh(home, "s", ".npy"), "-n", "3"]
    probe.fails(argv) if J.ndim != 2 else probe(argv)

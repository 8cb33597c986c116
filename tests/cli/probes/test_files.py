"""Files that are not what their name says (text, empty, IDX, gzip, pickle, zip, HTML), corrupted ``.npy`` and
``.npz`` files (truncated, bit-flipped, header-scrambled, with trailing bytes), and ``--out``/``--run-dir`` paths
that cannot be written: each is read correctly or refused in one line, and no run directory is left behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .support import CORRUPTION, corrupt, examples, fill, fresh

NOT_NUMPY = {
    "text": b"1 2 3\n4 5 6\n", "empty": b"", "idx": b"\x00\x00\x08\x01\x00\x00\x00\x03abc",
    "gzip": b"\x1f\x8b\x08\x00junk", "pickle": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.",
    "zip-not-npz": b"PK\x03\x04garbage", "html": b"<html>not found</html>",
}


@pytest.mark.parametrize("content", list(NOT_NUMPY), ids=list(NOT_NUMPY))
@pytest.mark.parametrize("suffix, argv", [
    (".npy", ["data", "info", "{f}"]), (".npz", ["data", "info", "{f}"]), (".npy", ["gaussian", "fit", "{f}"]),
    (".npy", ["ising", "fit", "{f}", "--out", "{tmp}/o.npz"]), (".npz", ["ising", "exact", "{f}"]),
    (".npy", ["ising", "exact", "{f}"]), (".npz", ["ising", "sample", "{f}", "--out", "{tmp}/o.npy"]),
    (".npy", ["rbm", "train", "--data", "{f}"]), (".npz", ["vae", "train", "--data", "{f}"]),
    (".npy", ["diffusion", "train", "--data", "{f}"]), (".npy", ["vae", "evaluate", "{vae}", "--data", "{f}"]),
    (".npy", ["diffusion", "evaluate", "{diffusion}", "--data", "{f}"]),
    (".npy", ["rbm", "train", "--data", "{bits}", "--test", "{f}"]),
    (".npz", ["vae", "train", "--data", "{img}", "--likelihood", "gaussian", "--test", "{f}"]),
    (".npy", ["diffusion", "train", "--data", "{real}", "--test", "{f}"]),
])
def test_files_that_are_not_numpy_are_one_line(fails, home, names, content, suffix, argv):
    f = home / f"not-numpy-{content}{suffix}"
    f.write_bytes(NOT_NUMPY[content])
    argv = fill(argv, {**names, "f": str(f)})
    err = fails(argv if argv[0] == "data" else [*argv, "--runs-root", home / "nn"])
    assert "numpy.save" in err or "not a" in err or "IDX" in err or "npz" in err


@examples(80)
@given(c=CORRUPTION, which=st.sampled_from(["real", "spins", "labelled", "model", "img"]))
def test_corrupted_numpy_files_are_read_or_refused(probe, home, files, c, which):
    original = files[which]
    path = fresh(home, "bad", original.suffix)
    path.write_bytes(corrupt(original.read_bytes(), *c))
    if which == "model":
        probe(["ising", "exact", path, "--json", "--runs-root", home / "c"])
        return
    rc, out, err = probe(["data", "info", path, "--json"])
    if rc == 0:  # it still reads: what it reports is what numpy reads, and it is finite
        d = json.loads(out)
        x = np.load(path) if path.suffix == ".npy" else np.load(path)["x"]
        assert d["n_train"] == len(x) and np.isfinite(x.astype(np.float64)).all()


@pytest.mark.parametrize("argv", [
    ["ising", "sample", "{model}", "--out", "{blocker}/x.npy"],
    ["ising", "fit", "{spins}", "--out", "{blocker}/x.npz", "--method", "nmf"],
    ["sample", "{rbm}", "--out", "{blocker}/x.npy", "-n", "2", "--steps", "2"],
    ["vae", "reconstruct", "{vae}", "--out", "{blocker}/x.npy"],
    ["ising", "sample", "{model}", "--out", "{tmp}/no-such-folder/x.npy"],
    ["ising", "sample", "{model}", "--out", "{tmp}/x.txt"],
    ["ising", "sample", "{model}", "--out", "{model}"],
    ["rbm", "sample", "{rbm}", "--run-dir", "{blocker}/run", "-n", "2", "--steps", "2"],
    ["gaussian", "fit", "{real}", "--run-dir", "{blocker}/run"],
    ["rbm", "sample", "{blocker}"], ["rbm", "evaluate", "{tmp}/no-such-run"], ["vae", "evaluate", "{blocker}"],
    ["diffusion", "evaluate", "{rbm}"], ["rbm", "evaluate", "{vae}"], ["sample", "{tmp}/nothing-here"],
])
def test_paths_are_one_line_and_leave_no_run_directory(fails, home, names, argv):
    blocker = home / "a-file"
    blocker.write_text("I am a file\n")
    root = fresh(home, "p-runs-")
    fails([*fill(argv, {**names, "blocker": str(blocker)}), "--runs-root", root])
    assert not root.exists() or not any(root.iterdir())

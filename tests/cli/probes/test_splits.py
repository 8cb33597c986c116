"""Test splits are explicit: ``--holdout FRACTION`` and ``--test FILE`` for data without a test split, refused for
data with one, each other, and files that do not fit; evaluation without held-out data reports training names."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .support import arrays, examples, fill, fresh, real_finite, save_array

TRAIN = {  # a tiny training command per model, on the probes' files: (argv, data key, shape of a row)
    "rbm": (["rbm", "train", "--data", "{bits}", "--hidden", "2", "--epochs", "1", "--samples", "0"], "bits", (4,)),
    "vae": (["vae", "train", "--data", "{img}", "--likelihood", "gaussian", "--epochs", "1", "--latent", "2",
             "--hidden", "4"], "img", (4, 4)),
    "diffusion": (["diffusion", "train", "--data", "{real}", "--epochs", "1", "--hidden", "8", "--depth", "1", "--T",
                   "10"], "real", (3,)),
}


def _train(command: str, names: dict, home, *extra) -> list[str]:
    return [*fill(TRAIN[command][0], names), *map(str, extra), "--runs-root", str(home / "split-runs")]


@pytest.mark.parametrize("command", list(TRAIN))
@pytest.mark.parametrize("option", [["--holdout", "0.2"], ["--test", "{real}"]], ids=["holdout", "test"])
@pytest.mark.parametrize("data", ["digits", "{labelled-split}"], ids=["digits", "npz-split"])
def test_data_with_their_own_split_refuse_holdout_and_test(fails, names, home, command, option, data):
    split = home / "labelled-split.npz"
    if not split.exists():
        np.savez(split, x_train=np.random.default_rng(0).random((10, 3)), x_test=np.zeros((4, 3)))
    argv = _train(command, {**names, "labelled-split": str(split)}, home, *fill(option, names))
    argv[argv.index("--data") + 1] = data.format(**{"labelled-split": str(split)})
    fails(argv, "own test split", option[0])


@pytest.mark.parametrize("command", list(TRAIN))
@pytest.mark.parametrize("fraction", ["0.001", "0.999"])
def test_a_holdout_that_leaves_no_rows_is_one_line(fails, names, home, command, fraction):
    fails(_train(command, names, home, "--holdout", fraction), "--holdout", "leaves no")


@pytest.mark.parametrize("command", list(TRAIN))
def test_holdout_and_test_exclude_each_other(fails, names, home, command):
    fails(_train(command, names, home, "--holdout", "0.2", "--test", names[TRAIN[command][1]]), "--holdout", "--test")


@pytest.mark.parametrize("command", list(TRAIN))
@pytest.mark.parametrize("what", ["no such file", "a folder", "a name", "npz with a split", "bad labels",
                                  "unseen class"])
def test_test_files_that_do_not_fit_are_one_line(fails, names, home, command, what):
    shape = TRAIN[command][2] if what != "unseen class" else (3,)
    path = fresh(home, what.replace(" ", "-"), ".npz")
    if what == "npz with a split":
        np.savez(path, x_train=np.zeros((3, *shape)), x_test=np.zeros((3, *shape)))
    elif what == "bad labels":
        np.savez(path, x=np.zeros((3, *shape)), y=np.array([0, 1, 70000]))
    elif what == "unseen class":  # the training file knows classes 0, 1, 2
        np.savez(path, x=np.zeros((3, *shape)), y=np.array([0, 1, 5]))
    path = {"no such file": home / "no-such-test.npy", "a folder": home, "a name": "digits"}.get(what, path)
    argv = _train(command, names, home, "--test", path)
    if what == "unseen class":
        argv[argv.index("--data") + 1] = names["labelled"]
    fails(argv, str(path))


@examples(45)
@given(x=arrays(), command=st.sampled_from(list(TRAIN)), container=st.sampled_from(["npy", "npz-x"]))
def test_hostile_test_files_are_refused(fails, names, home, x, command, container):
    """Hostile arrays as --test FILE: refused in one line naming the file, before anything is trained (a fitting one
    is made hostile with a NaN; the ones of another row shape are refused for their shape)."""
    if real_finite(x) and x.shape[1:] == TRAIN[command][2]:
        x = x.astype(np.float64)
        x.reshape(-1)[-1] = np.nan
    path = save_array(x, home, container)
    err = fails(_train(command, names, home, "--test", path), str(path))
    if real_finite(x):
        assert str(TRAIN[command][2]) in err and str(tuple(x.shape[1:])) in err  # both shapes named


@pytest.mark.parametrize("command", list(TRAIN))
def test_resume_refuses_another_split(fails, probe, names, home, command):
    run = fresh(home, f"split-{command}-")
    rc, _, err = probe(_train(command, names, home, "--holdout", "0.25", "--run-dir", run))
    assert rc == 0, err
    fails(_train(command, names, home, "--resume", "--holdout", "0.5", "--run-dir", run), "--holdout 0.5", "0.25")
    fails(_train(command, names, home, "--resume", "--test", names[TRAIN[command][1]], "--run-dir", run), "--test")


def test_rbm_holdout_evaluates_exactly_the_held_out_rows(probe, home, files):
    """--holdout 0.25 of 24 rows: evaluate's exact test log-likelihood is the model's mean log p over those 6 rows."""
    import kakusan
    from kakusan.data import load
    from kakusan.data.recipes import explicit_split
    from kakusan.rbm.exact import log_z

    run = fresh(home, "holdout-rbm-")
    rc, _, err = probe(["rbm", "train", "--data", files["bits"], "--hidden", "2", "--epochs", "1", "--samples", "0",
                        "--holdout", "0.25", "--run-dir", run])
    assert rc == 0, err
    rc, out, _ = probe(["rbm", "evaluate", run, "--exact", "--json", "--runs-root", home / "ev"])
    result = json.loads(out)
    held = explicit_split(load(files["bits"]), "bits", holdout=0.25, seed=0).x_test.double()  # 0/1: as binarised
    model = kakusan.load(run).to_float64()
    assert result["split"] == "test" and result["n_test"] == 6 == len(held)
    assert result["test_log_likelihood"] == pytest.approx(float(model.log_prob(held, log_z(model)).mean()), abs=1e-4)


def test_rbm_evaluate_without_a_test_split_says_train(probe, home, runs):
    rc, out, _ = probe(["rbm", "evaluate", runs["rbm"], "--exact", "--json", "--runs-root", home / "ev"])
    assert rc == 0
    result = json.loads(out)
    assert result["split"] == "train" and "train_log_likelihood" in result and "n_train" in result
    assert not any(k.startswith("test_") or k == "n_test" for k in result)
    rc, out, _ = probe(["rbm", "evaluate", runs["rbm"], "--exact", "--runs-root", home / "ev"])
    assert "train log-likelihood" in out and "test log-likelihood" not in out and "no held-out data" in out


@pytest.mark.parametrize("command, plain", [
    (["vae", "evaluate", "{vae}", "--k", "2"], ("elbo", "iwae", "nll", "nll_stderr", "n_test", "bits_per_dim")),
    (["diffusion", "evaluate", "{diffusion}", "--n-t", "2"], ("nll", "nll_stderr")),
])
def test_vae_and_diffusion_evaluate_without_a_test_split_say_train(probe, home, names, runs, command, plain):
    argv = [*fill(command, names), "--runs-root", home / "ev"]
    rc, out, _ = probe([*argv, "--json"])
    assert rc == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["split"] == "train" and "no held-out data" in result["note"]
    assert not set(plain) & set(result)  # no test name for a training figure
    assert {f"train_{k}" if k != "n_test" else "n_train" for k in plain} <= set(result)
    rc, out, _ = probe(argv)
    assert rc == 0 and "no held-out data" in out and "test ELBO" not in out
    summary = json.loads((runs[command[0]] / "summary.json").read_text())  # and training said so too
    assert summary["split"] == "train" and not any(k.startswith("test_") for k in summary)

"""Learning rates that blow training up: the divergence guard stops the run with one line naming --lr, and keeps
the checkpoints written before."""

from __future__ import annotations

import pytest

from .support import fill


@pytest.mark.parametrize("argv, lr", [
    (["ising", "fit", "{spins}", "--out", "{tmp}/div1.npz", "--method", "pcd", "--lr", "1e9", "--steps", "5"], "1e+09"),
    (["ising", "fit", "{spins}", "--out", "{tmp}/div2.npz", "--optimizer", "sgd", "--lr", "1e12", "--steps", "5"],
     "1e+12"),
    (["rbm", "train", "--data", "{bits}", "--hidden", "2", "--epochs", "2", "--lr", "1e6", "--samples", "0"], "1e+06"),
    (["rbm", "train", "--data", "{real}", "--units", "gaussian", "--hidden", "2", "--epochs", "2", "--lr", "1e8",
      "--samples", "0"], "1e+08"),
])
def test_divergence_stops_with_one_line_naming_the_learning_rate(fails, home, files, argv, lr):
    names = {**{k: str(v) for k, v in files.items()}, "tmp": str(home)}
    err = fails([*fill(argv, names), "--runs-root", home / "div"], "diverged", f"--lr {lr}")
    assert "lower it" in err


def test_divergence_keeps_the_last_good_checkpoint(probe, home, files, monkeypatch):
    """A run that diverges after checkpoints were written keeps them: the guard stops it before the next one."""
    from kakusan.checkpoint import exists
    from kakusan.commands import guard

    check = guard.DivergenceGuard.__call__

    def explode_at_update_4(self, step, out):  # as if the parameters exploded at update 4
        check(self, step, out)
        if step == 4:
            raise self.error(step, "a parameter reached |θ| = 1e+30")

    monkeypatch.setattr(guard.DivergenceGuard, "__call__", explode_at_update_4)
    run = home / "div-ckpt"
    rc, _, err = probe(["rbm", "train", "--data", files["bits"], "--hidden", "2", "--epochs", "3",
                        "--batch-size", "4", "--lr", "0.2", "--checkpoint-every", "1", "--samples", "0",
                        "--run-dir", run, "--runs-root", home / "div"])
    assert rc == 2 and "diverged at update 4" in err and "--lr 0.2" in err
    assert exists(run / "checkpoints", "last")  # update 3's checkpoint: written before the divergence, kept

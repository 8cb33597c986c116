"""`--init RUN` of `vae train` and `diffusion train`: a new run starts from another run's saved weights (its EMA
average by default), with a fresh optimizer and schedule; a different model, or --init with --resume, is one line."""

import json

import pytest
import torch

import kakusan
import kakusan.cli as cli

VAE = ["vae", "train", "--data", "digits", "--latent", "4", "--hidden", "16,16", "--batch-size", "200"]
DIFFUSION = ["diffusion", "train", "--data", "digits", "--channels", "8,16", "--batch-size", "200", "--T", "50"]


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(sa[k], sb[k], rtol=0, atol=1e-20) for k in sa)


@pytest.mark.parametrize("command", [VAE, DIFFUSION], ids=["vae", "diffusion"])
def test_a_new_run_starts_from_the_saved_weights(tmp_path, command):
    source, tuned = tmp_path / "source", tmp_path / "tuned"
    assert cli.main([*command, "--epochs", "2", "--run-dir", str(source)]) == 0
    # an Adam step moves each weight by about lr: at 1e-30 the tuned run's raw weights are the ones it started from
    assert cli.main([*command, "--epochs", "1", "--lr", "1e-30", "--ema", "0", "--init", str(source),
                     "--run-dir", str(tuned)]) == 0
    start = kakusan.load(source, weights="ema")
    assert not _same_weights(start, kakusan.load(source, weights="model"))  # the EMA average is what was taken
    assert _same_weights(kakusan.load(tuned, weights="model"), start)
    init = json.loads((tuned / "config.json").read_text())["init"]
    assert init["run"] == str(source.resolve()) and init["weights"].startswith("ema") and init["checkpoint"] == "model"
    steps = json.loads((source / "summary.json").read_text())["steps"]
    assert init["step"] == steps and len(init["sha256_all"]) == 64
    # the raw weights on request
    raw = tmp_path / "raw"
    assert cli.main([*command, "--epochs", "1", "--lr", "1e-30", "--ema", "0", "--init", f"{source}:model",
                     "--run-dir", str(raw)]) == 0
    assert _same_weights(kakusan.load(raw, weights="model"), kakusan.load(source, weights="model"))


def test_a_different_model_or_resume_is_one_line_and_leaves_no_run(tmp_path, capsys):
    source = tmp_path / "source"
    assert cli.main([*VAE, "--epochs", "1", "--run-dir", str(source)]) == 0
    capsys.readouterr()
    cases = [
        ([*VAE[:-6], "--latent", "5", "--hidden", "16,16", "--batch-size", "200"], "n_latent: 4 there, 5 here"),
        ([*DIFFUSION], "saved a VAE"),
        ([*VAE, "--resume"], "give one of them"),
    ]
    for i, (argv, words) in enumerate(cases):
        run = tmp_path / f"bad{i}"
        assert cli.main([*argv, "--epochs", "1", "--init", str(source), "--run-dir", str(run)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err
        assert not run.exists() or not any(run.iterdir())
    assert cli.main([*VAE, "--epochs", "1", "--init", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path / "c")]) == 2
    assert "not a run directory" in capsys.readouterr().err

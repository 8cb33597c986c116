"""`kakusan generate PROMPT`, `generate score` and `generate edit` on a tiny random LatentDiffusion saved as a run
(checkpoints/model.safetensors), and on the shipped model when it is there."""

import re

import numpy as np
import pytest
import torch

import kakusan.cli as cli
from kakusan import checkpoint
from kakusan.runtime import make_generator

PROMPT = "a handwritten 7"


def tiny_latent_diffusion(seed: int = 0):
    from kakusan.latent.model import LatentDiffusion, LatentDiffusionConfig, with_denoiser

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LatentDiffusion(with_denoiser(LatentDiffusionConfig(), channels=(16, 32), attention=(True, True)))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # the UNet's output layers start at zero: make the prompt matter
        for p in model.diffusion.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        model.autoencoder.latent_scale.fill_(2.0)
    return model.eval()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompt") / "run"
    checkpoint.save_model(path / "checkpoints", tiny_latent_diffusion(), name="model")
    return path


@pytest.fixture(autouse=True)
def keep_threads(monkeypatch):
    """The commands size torch's thread pool to the machine; the tests keep the one thread conftest set."""
    monkeypatch.setattr("kakusan.runtime.set_threads", lambda n=None: torch.get_num_threads())


@pytest.fixture
def images_file(tmp_path):
    g = torch.Generator().manual_seed(3)
    x = 0.3 * torch.rand((3, 28, 28), generator=g)
    x[:, 6:22, 10:18] += 0.6
    path = tmp_path / "images.npy"
    np.save(path, x.clamp(0, 1).numpy().astype(np.float32))
    return path


def one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.match(r"kakusan( generate(-\w+)?)?: error: ", err[0]), err
    assert all(w in err[0] for w in words), err
    return err[0]


def generate(run, out, *extra, prompt=PROMPT):
    """The exit status of `kakusan generate …` (a usage error refused by the parser exits 2 as SystemExit)."""
    try:
        return cli.main(["generate", prompt, "-n", "3", "--steps", "3", "--model", str(run), "--out", str(out), *extra])
    except SystemExit as e:
        return e.code


# -- generate ----------------------------------------------------------------------------------------------------


def test_same_seed_same_npy(run, tmp_path, capsys):
    a, b, c = tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "c.npy"
    assert generate(run, a, "--seed", "5") == 0
    assert "wrote 3 images" in capsys.readouterr().out
    assert generate(run, b, "--seed", "5") == 0
    assert generate(run, c, "--seed", "6") == 0
    xa, xb, xc = np.load(a), np.load(b), np.load(c)
    assert xa.shape == (3, 28, 28) and xa.dtype == np.float32
    assert 0 <= xa.min() and xa.max() <= 1
    assert np.array_equal(xa, xb)
    assert not np.array_equal(xa, xc)
    # the library gives the same images for the same seed
    from kakusan.commands.generate import load_prompt_model

    model = load_prompt_model(str(run))
    want = model.generate(PROMPT, n=3, generator=make_generator(5), steps=3, guidance=3.0).numpy()
    assert np.array_equal(xa, want.astype(np.float32))


def test_guidance_and_negative_prompt_reach_the_model(run, tmp_path):
    base, neg, w1 = tmp_path / "base.npy", tmp_path / "neg.npy", tmp_path / "w1.npy"
    assert generate(run, base) == 0
    assert generate(run, neg, "--negative", "a photo of a bag") == 0
    assert generate(run, w1, "--guidance", "1") == 0
    assert not np.array_equal(np.load(base), np.load(neg))
    assert not np.array_equal(np.load(base), np.load(w1))


def test_png_grid(run, tmp_path, capsys):
    from matplotlib.image import imread

    out = tmp_path / "grid.png"
    assert generate(run, out) == 0
    assert str(out) in capsys.readouterr().out
    assert imread(out).ndim >= 2


def test_an_existing_out_is_never_overwritten(run, tmp_path, capsys):
    for name in ("taken.npy", "taken.png"):
        out = tmp_path / name
        out.write_bytes(b"precious")
        assert generate(run, out) == 2
        one_error_line(capsys, "already exists")
        assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("prompt", ["", "   ", "a\x07b", "two\nlines", "tab\there"])
def test_bad_prompts_exit_2_with_one_line(tmp_path, capsys, prompt):
    out = tmp_path / "x.npy"
    # checked before any model is read: no --model needed
    assert cli.main(["generate", prompt, "-n", "1", "--out", str(out)]) == 2
    one_error_line(capsys, "prompt")
    assert not out.exists()


def test_a_prompt_too_long_for_the_encoder_exits_2(run, tmp_path, capsys):
    out = tmp_path / "x.npy"
    assert generate(run, out, prompt="seven " * 300) == 2
    one_error_line(capsys, "256")
    assert not out.exists()


@pytest.mark.parametrize("args, words", [
    (["--negative", "bad\x07negative"], ["negative prompt"]),
    (["-n", "0"], ["-n"]),
    (["--steps", "0"], ["--steps"]),
    (["--guidance", "-1"], ["--guidance"]),
    (["--guidance", "nan"], ["--guidance"]),
    (["--seed", "-1"], ["--seed"]),
])
def test_bad_options_exit_2_with_one_line(run, tmp_path, capsys, args, words):
    out = tmp_path / "x.npy"
    assert generate(run, out, *args) == 2
    one_error_line(capsys, *words)
    assert not out.exists()


def test_bad_out_and_model_exit_2(run, tmp_path, capsys):
    assert generate(run, tmp_path / "x.txt") == 2
    one_error_line(capsys, ".png", ".npy")
    assert generate(tmp_path / "no-such-run", tmp_path / "x.npy") == 2
    one_error_line(capsys, "--model")
    # a run that holds some other model
    from kakusan.latent.autoencoder import Autoencoder

    other = tmp_path / "other"
    checkpoint.save_model(other / "checkpoints", Autoencoder(), name="model")
    assert generate(other, tmp_path / "x.npy") == 2
    one_error_line(capsys, "Autoencoder")
    assert not (tmp_path / "x.npy").exists()


# -- score -------------------------------------------------------------------------------------------------------


def test_score_ranks_prompts_like_the_library(run, images_file, capsys):
    prompts = ["a handwritten 7", "a photo of a sneaker", "a pair of trousers"]
    assert cli.main(["generate", "score", str(images_file), "--prompts", *prompts, "--model", str(run),
                     "--samples", "4", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    best = re.findall(r'^image (\d+): best "(.*)"$', out, flags=re.M)
    from kakusan.commands.generate import load_prompt_model
    from kakusan.latent.classify import prompt_scores

    scores = prompt_scores(load_prompt_model(str(run)), torch.from_numpy(np.load(images_file)), prompts, 4,
                           make_generator(2))
    assert [(int(i), p) for i, p in best] == [(i, prompts[int(k)]) for i, k in enumerate(scores.argmax(1))]
    for i, row in enumerate(scores):  # every score printed, to 4 decimals
        for k, p in enumerate(prompts):
            assert f"{p:<20}  {float(row[k]):+.4f}" in out


def test_score_errors(run, images_file, tmp_path, capsys):
    base = ["generate", "score", str(images_file), "--model", str(run)]
    assert cli.main([*base, "--prompts", "a handwritten 7"]) == 2
    one_error_line(capsys, "two")
    assert cli.main([*base, "--prompts", "a handwritten 7", ""]) == 2
    one_error_line(capsys, "empty")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((2, 28, 28), 255.0, dtype=np.float32))
    assert cli.main(["generate", "score", str(bad), "--prompts", "a 1", "a 2", "--model", str(run)]) == 2
    one_error_line(capsys, "[0, 1]")
    np.save(bad, np.zeros((2, 28, 27), dtype=np.float32))
    assert cli.main(["generate", "score", str(bad), "--prompts", "a 1", "a 2", "--model", str(run)]) == 2
    one_error_line(capsys, "shape")
    assert cli.main(["generate", "score", str(tmp_path / "none.npy"), "--prompts", "a 1", "a 2"]) == 2
    one_error_line(capsys, "does not exist")


# -- edit --------------------------------------------------------------------------------------------------------


def test_edit_with_a_mask_keeps_the_rest_exactly(run, images_file, tmp_path, capsys):
    mask = np.zeros((28, 28), dtype=np.float32)
    mask[:, 14:] = 1
    mask_file, out = tmp_path / "mask.npy", tmp_path / "edited.npy"
    np.save(mask_file, mask)
    assert cli.main(["generate", "edit", str(images_file), "a handwritten 8", "--mask", str(mask_file), "--model",
                     str(run), "--steps", "3", "--out", str(out)]) == 0
    assert "inpainted 3 images" in capsys.readouterr().out
    x, y = np.load(images_file), np.load(out)
    assert y.shape == x.shape and y.dtype == np.float32 and 0 <= y.min() and y.max() <= 1
    keep = np.broadcast_to(mask == 0, x.shape)
    assert np.array_equal(y[keep], x[keep])
    assert not np.array_equal(y[~keep], x[~keep])
    # the same again: same result; an existing --out stays as it is
    again = tmp_path / "again.npy"
    assert cli.main(["generate", "edit", str(images_file), "a handwritten 8", "--mask", str(mask_file), "--model",
                     str(run), "--steps", "3", "--out", str(again)]) == 0
    assert np.array_equal(np.load(again), y)
    before = out.read_bytes()
    assert cli.main(["generate", "edit", str(images_file), "a handwritten 8", "--model", str(run), "--out",
                     str(out)]) == 2
    one_error_line(capsys, "already exists")
    assert out.read_bytes() == before


def test_sdedit_without_mask(run, images_file, tmp_path, capsys):
    out = tmp_path / "sdedit.npy"
    assert cli.main(["generate", "edit", str(images_file), "a photo of a bag", "--strength", "0.3", "--model",
                     str(run), "--steps", "4", "--out", str(out)]) == 0
    assert "strength 0.3" in capsys.readouterr().out
    assert np.load(out).shape == (3, 28, 28)


def test_edit_errors(run, images_file, tmp_path, capsys):
    base = ["generate", "edit", str(images_file), "a handwritten 8", "--model", str(run), "--steps", "2"]
    for strength in ("0", "1.5", "-0.5"):
        assert cli.main([*base, "--strength", strength, "--out", str(tmp_path / "o.npy")]) == 2
        one_error_line(capsys, "strength")
    half = tmp_path / "half.npy"
    np.save(half, np.full((28, 28), 0.5, dtype=np.float32))
    assert cli.main([*base, "--mask", str(half), "--out", str(tmp_path / "o.npy")]) == 2
    one_error_line(capsys, "0 (keep) and 1 (repaint)")
    two = tmp_path / "two.npy"
    np.save(two, np.zeros((2, 28, 28), dtype=np.float32))
    assert cli.main([*base, "--mask", str(two), "--out", str(tmp_path / "o.npy")]) == 2
    one_error_line(capsys, "2 masks for 3 images")
    assert cli.main([*base[:3], "", "--model", str(run)]) == 2
    one_error_line(capsys, "empty")
    assert not (tmp_path / "o.npy").exists()


# -- the shipped model -------------------------------------------------------------------------------------------


def shipped_model_present() -> bool:
    from kakusan.commands.generate import shipped_model_dir

    return (shipped_model_dir() / "model.safetensors").is_file()


def test_generate_with_the_shipped_model(tmp_path, capsys):
    if not shipped_model_present():
        pytest.skip("the shipped prompt → image model (src/kakusan/models/prompt/model.safetensors) does not exist "
                    "yet: it is being trained (`make model` writes it)")
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert cli.main(["generate", PROMPT, "-n", "2", "--out", str(a)]) == 0
    assert cli.main(["generate", PROMPT, "-n", "2", "--out", str(b)]) == 0
    x = np.load(a)
    assert x.shape == (2, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.array_equal(x, np.load(b))
    assert x.std() > 0.05  # a trained model draws something, not a flat field


def test_a_missing_shipped_model_is_one_line(tmp_path, capsys):
    if shipped_model_present():
        pytest.skip("the shipped model is there (test_generate_with_the_shipped_model covers it)")
    assert cli.main(["generate", PROMPT, "-n", "1", "--out", str(tmp_path / "x.npy")]) == 2
    one_error_line(capsys, "make model", "--model")
    assert not (tmp_path / "x.npy").exists()


@pytest.mark.slow
@pytest.mark.requires("mnist", "fashion-mnist")
def test_generate_train_tiny_run_resumes_and_extends(tmp_path):
    """`kakusan generate train` end to end at a tiny size (both stages), then --resume --epochs extends stage two;
    the finished run is a model `kakusan generate --model` reads."""
    import json

    from kakusan.cli import main

    run = tmp_path / "run"
    base = ["generate", "train", "--limit", "256", "--ae-epochs", "1", "--channels", "16,32", "--eval-images", "0",
            "--no-progress", "--run-dir", str(run)]
    assert main([*base, "--epochs", "1"]) == 0
    steps = json.loads((run / "summary.json").read_text())["steps"]
    assert steps == 2  # 256 rows / batch 128
    assert main(["generate", "train", "--resume", "--epochs", "0", "--run-dir", str(run)]) == 2
    assert main(["generate", "train", "--resume", "--epochs", "2", "--run-dir", str(run), "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 4
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 2
    out = tmp_path / "x.npy"
    assert main(["generate", "a handwritten 7", "-n", "2", "--model", str(run), "--out", str(out)]) == 0
    assert np.load(out).shape == (2, 28, 28)

"""`kakusan diffusion train|sample|evaluate` and `kakusan sample` on diffusion runs, at tiny sizes: a 2-D Gaussian
mixture (MLP denoiser, continuous data) and the bundled 8×8 digits (UNet, class-conditional, 17-level grid)."""

import json
import math

import numpy as np
import pytest
import torch
from matplotlib.image import imread

import kakusan
import kakusan.cli as cli
from kakusan import checkpoint
from kakusan.diffusion import MixtureTruth
from kakusan.errors import KakusanError

UNET = ["--channels", "16,32", "--batch-size", "100", "--lr", "2e-3", "--T", "200"]


@pytest.fixture(scope="module")
def mixture_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "mix.npy"
    np.save(path, MixtureTruth.example(2, seed=1).sample(1000, 0).numpy().astype(np.float32) * 3 + 5)
    return path


@pytest.fixture(scope="module")
def mixture_run(tmp_path_factory, mixture_file):
    run = tmp_path_factory.mktemp("mix") / "run"
    assert cli.main(["diffusion", "train", "--data", str(mixture_file), "--epochs", "8", "--batch-size", "100",
                     "--hidden", "64", "--T", "200", "--run-dir", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("digits") / "run"
    assert cli.main(["diffusion", "train", "--data", "digits", "--conditional", "--epochs", "2", *UNET,
                     "--checkpoint-every", "5", "--run-dir", str(run)]) == 0
    return run


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


def test_continuous_run_is_complete_and_in_data_space(mixture_run, tmp_path, capsys):
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoints/model.safetensors",
                 "checkpoints/last.safetensors", "figures/samples.png", "figures/training.png"):
        assert (mixture_run / name).exists(), name
    config = json.loads((mixture_run / "config.json").read_text())
    model_config = config["model"]
    assert config["class"] == "Diffusion" and model_config["levels"] == 0 and model_config["target"] == "v"
    assert model_config["schedule"]["kind"] == "linear" and model_config["schedule"]["T"] == 200
    _, head = checkpoint.load(mixture_run / "checkpoints", "last")
    assert head["optimizer"]["state"]["param_groups"][0]["fused"] is True   # kakusan.optim.adam: fused on the CPU
    assert abs(model_config["shift"] - 5.2) < 1 and abs(model_config["scale"] - 3) < 1.5  # standardised
    model = kakusan.load(mixture_run)
    assert model.config == kakusan.load(mixture_run, weights="model").config
    out = tmp_path / "s.npy"
    assert cli.main(["diffusion", "sample", str(mixture_run), "-n", "300", "--sampler", "ddim", "--steps", "50",
                     "--out", str(out), "--run-dir", str(tmp_path / "srun")]) == 0
    x = np.load(out)
    assert x.shape == (300, 2) and abs(x.mean() - 5.2) < 1.5  # samples come back in data space
    evals = [r for r in map(json.loads, (mixture_run / "metrics.jsonl").read_text().splitlines()) if r.get("eval")]
    # the file has no test split: the evaluation hook measures training rows and names them so
    assert evals[-1]["train_mse"] < evals[0]["train_mse"] and "train_mse_ema" in evals[-1]
    assert not any("test_mse" in e for e in evals)


def test_evaluate_continuous_gives_nats_per_example(mixture_run, tmp_path, capsys):
    assert cli.main(["diffusion", "evaluate", str(mixture_run), "--nll", "ode", "--rows", "40", "--json",
                     "--run-dir", str(tmp_path / "e1")]) == 0
    ode = _json(capsys)  # the file has no test split: training rows, train_* names
    assert ode["split"] == "train" and "no held-out data" in ode["note"] and "nll" not in ode
    ode = {k.removeprefix("train_"): v for k, v in ode.items()}
    assert ode["n"] == 40 and math.isfinite(ode["nll"]) and ode["nll_stderr"] > 0 and "bits_per_dim" not in ode
    assert cli.main(["diffusion", "evaluate", str(mixture_run), "--nll", "vlb", "--rows", "40", "--n-t", "20",
                     "--json", "--run-dir", str(tmp_path / "e2")]) == 0
    vlb = {k.removeprefix("train_"): v for k, v in _json(capsys).items()}
    # the data are 3× the unit mixture, shifted: its entropy is the unit one + 2 log 3 nats; a trained-for-seconds
    # model sits above it, and the VLB above the ODE likelihood (within their errors)
    floor = MixtureTruth.example(2, seed=1).entropy_mc(20_000) + 2 * math.log(3)
    assert ode["nll"] > floor - 4 * ode["nll_stderr"] and ode["nll"] < floor + 3
    assert vlb["nll"] > ode["nll"] - 4 * math.hypot(vlb["nll_stderr"], ode["nll_stderr"])


def test_conditional_digits_run_samples_classes_and_evaluates_bits(digits_run, tmp_path, capsys):
    config = json.loads((digits_run / "config.json").read_text())
    assert config["model"]["levels"] == 17 and config["model"]["n_classes"] == 10
    assert config["model"]["target"] == "eps" and config["model"]["schedule"]["kind"] == "cosine"
    out = tmp_path / "seven.png"
    assert cli.main(["diffusion", "sample", str(digits_run), "-n", "16", "--class", "7", "--guidance", "2",
                     "--steps", "10", "--out", str(out), "--run-dir", str(tmp_path / "s")]) == 0
    assert imread(out).ndim >= 2
    npy = tmp_path / "x.npy"
    assert cli.main(["sample", str(digits_run), "-n", "6", "--sampler", "heun", "--steps", "5", "--out", str(npy),
                     "--run-dir", str(tmp_path / "s2")]) == 0
    x = np.load(npy)
    assert x.shape == (6, 8, 8) and x.min() >= 0 and x.max() <= 1  # images (n, H, W) in [0, 1]
    assert cli.main(["diffusion", "evaluate", str(digits_run), "--rows", "30", "--n-t", "10", "--json",
                     "--run-dir", str(tmp_path / "e")]) == 0
    result = _json(capsys)
    assert result["bits_per_dim"] == pytest.approx(result["nll"] / (64 * math.log(2)))
    assert 0 < result["bits_per_dim"] < 20
    assert "one standard error across the examples" in result["stderr_means"] and "stratified t" in result[
        "stderr_means"]


def test_evaluate_says_what_its_errors_mean(digits_run, tmp_path, capsys):
    assert cli.main(["diffusion", "evaluate", str(digits_run), "--rows", "10", "--n-t", "5", "--fd", "--n-samples",
                     "20", "--steps", "3", "--run-dir", str(tmp_path / "e")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert " ± " in lines[0] and "bits/dim" in lines[0] and "(real images: " in lines[0]
    assert lines[1].startswith("± is NLL: one standard error across the examples") and "calibrated" in lines[1]
    assert "FD: the spread of FD over 50 Gaussian resamples" in lines[1]


def test_unconditional_evaluation_of_a_conditional_run_is_its_null_class(digits_run, tmp_path, capsys):
    """--unconditional evaluates log p(x) of the null class (what label dropout trained): the same number as the
    API's vlb_estimate with cond=None; the default is log p(x|y), and the JSON says which."""
    from kakusan.commands.diffusion_common import DiffusionDataSpec, prepare_data
    from kakusan.diffusion.vlb import vlb_estimate
    from kakusan.runtime import make_generator

    base = ["diffusion", "evaluate", str(digits_run), "--rows", "20", "--n-t", "8", "--json", "--seed", "3"]
    assert cli.main([*base, "--run-dir", str(tmp_path / "c")]) == 0
    given = _json(capsys)
    assert cli.main([*base, "--unconditional", "--run-dir", str(tmp_path / "u")]) == 0
    null = _json(capsys)
    assert given["conditioning"].startswith("labels") and null["conditioning"].startswith("none")
    model = kakusan.load(digits_run).eval()
    x = prepare_data(DiffusionDataSpec("digits", True)).test[:20]  # what the command evaluates
    with torch.no_grad():
        api = vlb_estimate(model, x, cond=None, generator=make_generator(3), n_t=8)
    nats = api.nats if hasattr(api, "nats") else api
    assert null["nll"] == pytest.approx(nats.value, rel=1e-9)
    assert null["nll"] != pytest.approx(given["nll"], rel=1e-6)  # p(x) and p(x|y) are different numbers


def test_unconditional_sampling_is_the_null_class_at_one_network_call(digits_run):
    """sample(unconditional=True) follows the null class: the same deterministic DDIM path as guidance w = 0
    (which evaluates the labelled and the null network and keeps the null one)."""
    model = kakusan.load(digits_run).eval()
    x_T = torch.randn(4, *model.data_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        null = model.sample(4, 0, sampler="ddim", steps=5, x_T=x_T, unconditional=True)
        w0 = model.sample(4, 0, sampler="ddim", steps=5, x_T=x_T, labels=torch.tensor([1, 2, 3, 4]), guidance=0.0)
        seven = model.sample(4, 0, sampler="ddim", steps=5, x_T=x_T, labels=7)
    assert torch.allclose(null, w0, atol=1e-5)
    assert not torch.allclose(null, seven, atol=1e-3)


def test_unconditional_refuses_what_it_cannot_mean(digits_run, mixture_run, tmp_path, capsys):
    assert cli.main(["diffusion", "evaluate", str(mixture_run), "--unconditional", "--rows", "5",
                     "--run-dir", str(tmp_path / "a")]) == 2
    _one_error_line(capsys, "--unconditional", "unconditional already")
    assert cli.main(["diffusion", "evaluate", str(digits_run), "--unconditional", "--nll", "none", "--fd",
                     "--guidance", "2", "--run-dir", str(tmp_path / "b")]) == 2
    _one_error_line(capsys, "--unconditional", "--guidance")
    model = kakusan.load(digits_run)
    with pytest.raises(KakusanError, match="leave out labels"):
        model.sample(2, 0, labels=3, unconditional=True)


def test_resume_extends_a_run(digits_run, capsys):
    before = json.loads((digits_run / "summary.json").read_text())["steps"]
    assert cli.main(["diffusion", "train", "--resume", "--run-dir", str(digits_run), "--epochs", "3"]) == 0
    after = json.loads((digits_run / "summary.json").read_text())
    assert after["steps"] == before * 3 // 2 and after["resumed_from"] == before


def test_bf16_trains_under_autocast_records_it_and_resumes_with_it(mixture_file, tmp_path, monkeypatch, capsys):
    import kakusan.train as train

    seen, real = [], train.fit

    def spy(model, objective, batches, optimizer, config, **kw):
        seen.append(config.autocast)
        return real(model, objective, batches, optimizer, config, **kw)

    monkeypatch.setattr(train, "fit", spy)
    run = tmp_path / "run"
    assert cli.main(["diffusion", "train", "--data", str(mixture_file), "--epochs", "1", "--batch-size", "100",
                     "--hidden", "32", "--T", "50", "--bf16", "--run-dir", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["bf16"] is True
    assert math.isfinite(json.loads((run / "summary.json").read_text())["train_mse"])  # no test split
    assert cli.main(["diffusion", "train", "--resume", "--run-dir", str(run), "--epochs", "2"]) == 0
    assert seen == ["bf16", "bf16"]  # the recorded setting carries over to --resume
    assert cli.main(["diffusion", "train", "--data", str(mixture_file), "--epochs", "1", "--batch-size", "100",
                     "--hidden", "32", "--T", "50", "--run-dir", str(tmp_path / "fp32")]) == 0
    assert seen[-1] is None and json.loads((tmp_path / "fp32" / "config.json").read_text())["train"]["bf16"] is False


def test_bad_input_is_one_line(mixture_file, tmp_path, capsys):
    cases = [
        (["diffusion", "train", "--data", str(mixture_file), "--denoiser", "unet", "--run-dir", str(tmp_path / "a")],
         ("--denoiser unet", "mlp")),
        (["diffusion", "train", "--data", str(mixture_file), "--conditional", "--run-dir", str(tmp_path / "b")],
         ("--conditional", "labels")),
        (["diffusion", "train", "--data", "digits", "--epochs", "0", "--run-dir", str(tmp_path / "c")],
         ("--epochs",)),
        (["diffusion", "evaluate", str(tmp_path)], ("not a run directory",)),
    ]
    for argv, words in cases:
        try:
            status = cli.main(argv)
        except SystemExit as e:  # the parser refuses a bad value (e.g. --epochs 0) itself
            status = e.code
        assert status == 2
        _one_error_line(capsys, *words)


def test_an_exploding_learning_rate_stops_with_one_line_naming_it(tmp_path, capsys):
    run = tmp_path / "run"
    status = cli.main(["diffusion", "train", "--data", "digits", "--epochs", "1", "--lr", "1e9", "--run-dir", str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "diverged" in err[0] and "--lr 1e+09" in err[0], err
    assert not (run / "checkpoints" / "model.safetensors").exists()


def test_holdout_and_test_file_give_a_test_split(tmp_path, capsys):
    """--test FILE: the run's test split is exactly the file's rows (evaluate gives the numbers `--data FILE` gives);
    --holdout keeps each label with its row (a conditional run evaluates); data with their own split refuse both."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 2)).astype(np.float32), np.arange(80) % 3
    np.save(tmp_path / "train.npy", x[:60])
    np.save(tmp_path / "test.npy", x[60:])
    np.savez(tmp_path / "labelled.npz", x=x, y=y)
    base = ["diffusion", "train", "--epochs", "1", "--hidden", "8", "--depth", "1", "--T", "10"]
    root = ["--runs-root", str(tmp_path / "runs")]
    assert cli.main([*base, "--data", str(tmp_path / "train.npy"), "--test", str(tmp_path / "test.npy"),
                     "--run-dir", str(tmp_path / "t")]) == 0
    assert cli.main([*base, "--data", str(tmp_path / "labelled.npz"), "--conditional", "--holdout", "0.25",
                     "--run-dir", str(tmp_path / "h")]) == 0
    capsys.readouterr()
    evals = [r for r in map(json.loads, (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()) if r.get("eval")]
    assert evals and all("test_mse" in e for e in evals)
    evaluate = ["diffusion", "evaluate", str(tmp_path / "t"), "--n-t", "5", "--json", *root]
    assert cli.main(evaluate) == 0
    held = _json(capsys)
    assert cli.main([*evaluate, "--data", str(tmp_path / "test.npy")]) == 0
    same = _json(capsys)
    assert held["split"] == "test" and held["n"] == 20 and "note" not in held and same["split"] == "file"
    assert (held["nll"], held["nll_stderr"]) == (same["nll"], same["nll_stderr"])
    assert cli.main(["diffusion", "evaluate", str(tmp_path / "h"), "--n-t", "5", "--json", *root]) == 0
    assert _json(capsys)["n"] == 20  # a quarter of 80 rows
    assert cli.main([*base, "--data", "digits", "--test", str(tmp_path / "test.npy"),
                     "--run-dir", str(tmp_path / "d")]) == 2
    _one_error_line(capsys, "digits has its own test split", "--test")
    assert cli.main([*base, "--data", str(tmp_path / "labelled.npz"), "--conditional", "--test",
                     str(tmp_path / "test.npy"), "--run-dir", str(tmp_path / "c")]) == 2
    _one_error_line(capsys, "--conditional", "labels", "test.npy")


def test_a_learned_decoder_fitted_to_a_run_lowers_only_its_decoder_term(tmp_path, capsys):
    """`--loss decoder --init RUN` on 8-bit images: a new run whose denoiser is RUN's, whose L_0 (and so the VLB)
    is lower by the same amount, which `kakusan.load` rebuilds, which resumes, and which refuses what it cannot
    mean, each in one line, leaving no run directory behind."""
    rng = np.random.default_rng(0)
    x = np.zeros((500, 8, 8), np.float32)  # mostly 0 like MNIST, a 3×3 blob of grey levels
    for img, (r, c) in zip(x, rng.integers(0, 6, (500, 2))):
        img[r:r + 3, c:c + 3] = rng.integers(60, 256, (3, 3)) / 255
    data = tmp_path / "blobs.npy"
    np.save(data, x)
    split = ["--data", str(data), "--holdout", "0.2"]
    base, fitted = tmp_path / "base", tmp_path / "decoder"
    assert cli.main(["diffusion", "train", *split, "--epochs", "4", *UNET, "--run-dir", str(base)]) == 0
    assert cli.main(["diffusion", "train", *split, "--loss", "decoder", "--init", str(base), "--epochs", "16",
                     "--batch-size", "100", "--lr", "3e-3", "--run-dir", str(fitted)]) == 0
    out = capsys.readouterr().out
    assert "decoder L_0" in out
    evaluations = []
    for run in (base, fitted):
        assert cli.main(["diffusion", "evaluate", str(run), "--n-t", "20", "--json", "--run-dir",
                         str(tmp_path / f"eval-{run.name}")]) == 0
        evaluations.append(_json(capsys))
    fixed, learned = evaluations
    assert cli.main(["diffusion", "evaluate", str(fitted), "--n-t", "5", "--run-dir", str(tmp_path / "eval-text")]) == 0
    printed = capsys.readouterr().out.splitlines()[0]
    assert "of which the decoder term L_0" in printed and "(learned decoder)" in printed
    assert fixed["decoder"].startswith("fixed") and learned["decoder"].startswith("learned")
    drop = fixed["decoder_bits_per_dim"] - learned["decoder_bits_per_dim"]
    assert drop > 0.3, (fixed["decoder_bits_per_dim"], learned["decoder_bits_per_dim"])
    assert fixed["bits_per_dim"] - learned["bits_per_dim"] == pytest.approx(drop, abs=1e-6)  # same draws elsewhere
    a, b = kakusan.load(base), kakusan.load(fitted)
    assert a.decoder_head is None and b.decoder_head is not None
    for k, v in a.net.state_dict().items():
        assert torch.equal(v, b.net.state_dict()[k]), k
    assert cli.main(["diffusion", "train", "--resume", "--run-dir", str(fitted), "--epochs", "17"]) == 0
    assert json.loads((fitted / "summary.json").read_text())["steps"] == 17 * 4
    capsys.readouterr()
    cases = [(["--loss", "decoder"], ("--loss decoder", "--init RUN")),
             (["--loss", "decoder", "--init", str(base), "--channels", "8,8"], ("--channels", "--init run's")),
             (["--loss", "decoder", "--init", str(fitted)], ("learned decoder already",)),
             (["--holdout", "0.3", "--loss", "decoder", "--init", str(base)], ("--init", "same --data")),
             (["--decoder-steps", "3"], ("--decoder-steps", "--loss decoder only")),
             (["--variance", "posterior"], ("--variance", "--loss vlb only")),
             (["--loss", "decoder", "--init", str(base), "--decoder-steps", "201"], ("--decoder-steps 201", "T = 200")),
             (["--loss", "vlb", "--init", str(base)], ("learn_variance",))]
    for i, (extra, words) in enumerate(cases):
        bad = tmp_path / f"bad{i}"
        assert cli.main(["diffusion", "train", *split, *extra, "--run-dir", str(bad)]) == 2
        _one_error_line(capsys, *words)
        assert not bad.exists()

    # a head for the first 3 steps: its terms below the fixed model's on the same estimator and the same draws
    steps3 = tmp_path / "steps3"
    assert cli.main(["diffusion", "train", *split, "--loss", "decoder", "--init", str(base), "--decoder-steps", "3",
                     "--epochs", "16", "--batch-size", "100", "--lr", "3e-3", "--run-dir", str(steps3)]) == 0
    assert "head terms L_0 … L_2" in capsys.readouterr().out
    evaluations = []
    for run in (base, steps3):
        assert cli.main(["diffusion", "evaluate", str(run), "--n-t", "20", "--exact-steps", "3", "--json",
                         "--run-dir", str(tmp_path / f"eval3-{run.name}")]) == 0
        evaluations.append(_json(capsys))
    fixed, learned = evaluations
    assert fixed["exact_steps"] == learned["exact_steps"] == 3 and "t = 2 … 3" in learned["decoder"]
    gain = (fixed["decoder_bits_per_dim"] + fixed["early_bits_per_dim"] - learned["decoder_bits_per_dim"]
            - learned["early_bits_per_dim"])
    assert learned["early_bits_per_dim"] < fixed["early_bits_per_dim"], (fixed, learned)
    assert fixed["bits_per_dim"] - learned["bits_per_dim"] == pytest.approx(gain, abs=1e-6)
    assert cli.main(["diffusion", "evaluate", str(steps3), "--n-t", "5", "--run-dir", str(tmp_path / "e3")]) == 0
    assert "and L_1 … L_2" in capsys.readouterr().out  # the head's steps are computed exactly by default
    # the VLB with the posterior's fixed variances: fine-tunes a model trained on L_simple
    tuned = tmp_path / "tuned"
    assert cli.main(["diffusion", "train", *split, "--loss", "vlb", "--variance", "posterior", "--init", str(base),
                     "--epochs", "1", *UNET, "--run-dir", str(tuned)]) == 0
    config = json.loads((tuned / "config.json").read_text())
    assert config["model"]["learn_variance"] is False and config["train"]["variance"] == "posterior"

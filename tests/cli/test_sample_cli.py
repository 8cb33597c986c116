import numpy as np

from kakusan.cli import main


def test_sample_rebuilds_a_saved_model(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(200, 2)) @ np.array([[1.0, 0.5], [0.0, 2.0]]) + [3.0, -1.0]
    np.save(tmp_path / "x.npy", x)
    assert main(["gaussian", "fit", str(tmp_path / "x.npy"), "--run-dir", str(tmp_path / "fit")]) == 0
    args = ["sample", str(tmp_path / "fit"), "-n", "5000", "--seed", "1", "--runs-root", str(tmp_path / "runs")]
    assert main(args + ["--out", str(tmp_path / "s.npy")]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (5000, 2)
    np.testing.assert_allclose(s.mean(0), x.mean(0), atol=0.1)
    assert main(args + ["--out", str(tmp_path / "s2.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "s2.npy"), s)  # same seed, same samples


def test_sample_without_a_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["sample", str(tmp_path / "empty"), "--runs-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint" in err[0]


def test_sample_reads_weights_and_passes_only_options_the_model_takes(tmp_path, capsys):
    assert main(["rbm", "train", "--data", "digits", "--hidden", "6", "--epochs", "1", "--samples", "0",
                 "--run-dir", str(tmp_path / "rbm")]) == 0
    root = ["--runs-root", str(tmp_path / "runs")]
    for weights in ("ema", "model", "last"):  # an RBM keeps no EMA: "ema" falls back to its weights
        assert main(["sample", str(tmp_path / "rbm"), "-n", "9", "--steps", "3", "--weights", weights, *root]) == 0
    out = capsys.readouterr().out
    assert "(model weights of model)" in out and "(model weights of last)" in out
    grids = sorted((tmp_path / "runs").glob("*/figures/samples.png"))
    assert len(grids) == 3  # 8x8 digits come back as an image grid
    assert main(["sample", str(tmp_path / "rbm"), "--prompt", "a seven", *root]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "takes no --prompt" in err[0]
    assert main(["sample", str(tmp_path / "rbm"), "--weights", "ema@0.99", *root]) == 2
    assert "keeps no ema@0.99" in capsys.readouterr().err


def test_ctrl_c_during_training_saves_and_says_one_line(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "kakusan", "rbm", "train", "--data", "digits", "--hidden", "12",
                             "--epochs", "3000", "--eval-every", "-1", "--samples", "0", "--run-dir", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted at step" in lines[0] and "--resume" in lines[0], err
    from kakusan import checkpoint

    _, head = checkpoint.load(run / "checkpoints", "last")
    assert f"interrupted at step {head['step']} of 45000" in lines[0]

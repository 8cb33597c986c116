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

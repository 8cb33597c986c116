"""The metric net on digits: accuracy, determinism, the cache (hit, damaged, stale), features that separate data
from noise, evaluate_samples with its floor, and `kakusan metric-net`."""

import copy
import dataclasses
import json
import math

import pytest
import torch

import kakusan.evaluate.metric_net as mn
from kakusan import checkpoint
from kakusan.cli import main
from kakusan.data import load
from kakusan.errors import DataError
from kakusan.evaluate.sample_quality import class_accuracy, frechet_distance_features, precision_recall


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The digits net, trained once into a temporary data home: (folder, net)."""
    folder = tmp_path_factory.mktemp("kakusan-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAKUSAN_DATA", str(folder))
        net = mn.get_metric_net("digits", progress=False)
    return folder, net


@pytest.fixture
def home(trained, monkeypatch):
    monkeypatch.setenv("KAKUSAN_DATA", str(trained[0]))
    return trained[0]


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture
def fake_training(trained, monkeypatch):
    """train_metric_net replaced by a copy of the trained net (no second training); its calls are counted."""
    calls = []

    def fake(name, device=None, progress=True, data=None):
        calls.append(name)
        meta = {k: v for k, v in trained[1].meta.items() if k not in ("path", "from_cache")}
        meta["recipe"] = dataclasses.asdict(mn.RECIPES[name])  # as trained now
        return copy.deepcopy(trained[1]), meta

    monkeypatch.setattr(mn, "train_metric_net", fake)
    return calls


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_digits_net_is_accurate_and_cached(trained, home, digits):
    _, net = trained
    assert net.meta["from_cache"] is False and net.meta["data"] == "digits"
    assert mn.cache_path("digits") == home / "metric-nets" / "digits.safetensors"
    assert mn.cache_path("digits").is_file()
    assert net.meta["test_accuracy"] >= 0.95
    acc = class_accuracy(net, digits.x_test, digits.y_test)  # measured again, the same number
    assert acc.value == pytest.approx(net.meta["test_accuracy"], abs=1e-12) and acc.n == 297
    x = digits.x_test[:20]
    f = net.features(x)
    assert f.shape == (20, 128) and bool((f >= 0).all())
    for form in (x[:, None], x.reshape(20, 64), x.numpy()):  # (n, 1, H, W), flattened, NumPy
        assert torch.equal(net.features(form), f)


def test_second_call_is_a_cache_hit(trained, home, monkeypatch):
    path = mn.cache_path("digits")
    stamp = path.stat().st_mtime_ns
    monkeypatch.setattr(mn, "train_metric_net", lambda *a, **k: pytest.fail("trained again despite the cache"))
    again = mn.get_metric_net("digits", progress=False)
    assert again.meta["from_cache"] is True and path.stat().st_mtime_ns == stamp
    assert _same_weights(again, trained[1]) and not again.training


def test_training_is_deterministic(trained, home, tmp_path):
    """A second training from scratch gives bit-identical weights, hence the same checkpoint hash."""
    net, meta = mn.train_metric_net("digits", progress=False)
    assert _same_weights(net, trained[1]) and meta["test_accuracy"] == trained[1].meta["test_accuracy"]
    checkpoint.save_model(tmp_path, net, name="digits", meta={})
    ours = checkpoint.load(tmp_path, "digits")[1]["sha256"]
    cached = checkpoint.load(home / "metric-nets", "digits")[1]["sha256"]
    assert ours == cached


@pytest.mark.parametrize("damage", ["flipped byte", "garbage", "wrong shapes", "stale recipe"])
def test_damaged_or_stale_cache_is_retrained_with_one_warning_line(trained, tmp_path, monkeypatch, capsys,
                                                                  fake_training, damage):
    monkeypatch.setenv("KAKUSAN_DATA", str(tmp_path))
    path = mn.cache_path("digits")
    path.parent.mkdir(parents=True)
    good = (trained[0] / "metric-nets" / "digits.safetensors").read_bytes()
    if damage == "flipped byte":
        blob = bytearray(good)
        blob[-100] ^= 0xFF
        path.write_bytes(bytes(blob))
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    elif damage == "wrong shapes":  # tensors of another width under the current config
        other = mn.MetricNet(mn.MetricNetConfig(shape=(8, 8), hidden=16, pooled=(False, True)))
        other.config = mn.CONFIGS["digits"]
        checkpoint.save_model(path.parent, other, name="digits", meta=trained[1].meta)
    else:
        path.write_bytes(good)
        monkeypatch.setitem(mn.RECIPES, "digits", mn.Recipe(epochs=1))
    net = mn.get_metric_net("digits", progress=False)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("kakusan: warning: metric net cache") and "retraining" in err
    assert fake_training == ["digits"] and net.meta["from_cache"] is False
    assert mn.get_metric_net("digits", progress=False).meta["from_cache"] is True  # the rewritten file is good
    assert capsys.readouterr().err == ""


def test_train_features_are_close_to_test_features_and_far_from_noise(trained, digits):
    _, net = trained
    g = torch.Generator().manual_seed(0)
    f_test, _ = mn.embed(net, digits.x_test)
    f_train, _ = mn.embed(net, digits.x_train[torch.randperm(1500, generator=g)[:297]])
    f_noise, _ = mn.embed(net, torch.rand(297, 8, 8, generator=g))
    data_fd, noise_fd = frechet_distance_features(f_train, f_test), frechet_distance_features(f_noise, f_test)
    assert data_fd < 0.15 * noise_fd  # ≈ 0.05-0.08: at n = 297, d = 128 the O(1/n) bias dominates data_fd
    noise_pr, data_pr = precision_recall(f_test, f_noise), precision_recall(f_test, f_train)
    assert data_pr.precision > 0.6 and data_pr.recall > 0.6
    # noise lands in a few outliers' wide k-NN balls (a known weakness of k-NN precision), never near most data
    assert noise_pr.precision < 0.4 and noise_pr.recall < 0.1


def test_evaluate_samples_reports_the_real_data_floor(trained, home, digits):
    _, net = trained
    real = mn.evaluate_samples("digits", digits.x_train[-400:], labels=digits.y_train[-400:], n_boot=10)
    assert real["n_samples"] == 400 and real["n_reference"] == 297 and real["feature_dim"] == 128
    assert real["floor"]["split"] == "train" and real["floor"]["n"] == 400
    assert real["metric_net"]["test_accuracy"] == net.meta["test_accuracy"]
    assert real["class_accuracy"] > 0.97 and real["fd_stderr"] > 0 and 0.5 < real["floor"]["precision"] <= 1
    # real images against real images: FD agrees with the floor within three standard errors
    assert abs(real["fd"] - real["floor"]["fd"]) < 3 * math.hypot(real["fd_stderr"], real["floor"]["fd_stderr"])
    g = torch.Generator().manual_seed(1)
    noise = mn.evaluate_samples("digits", torch.rand(400, 64, generator=g), labels=digits.y_train[:400],
                                n_boot=10)
    assert noise["fd"] > 8 * noise["floor"]["fd"] and noise["precision"] < 0.4 and noise["recall"] < 0.1
    assert noise["class_accuracy"] < 0.3 and noise["floor"] == real["floor"]  # same seed, same floor
    json.dumps(real)  # plain numbers
    with pytest.raises(DataError, match="no metric net"):
        mn.evaluate_samples("cifar", torch.rand(10, 8, 8))


def test_inputs_are_checked(trained):
    _, net = trained
    with pytest.raises(DataError, match=r"\(n, 8, 8\)"):
        net.features(torch.rand(5, 28, 28))
    with pytest.raises(DataError, match=r"\(x \+ 1\) / 2"):
        net.features(torch.rand(5, 8, 8) * 2 - 1)
    with pytest.raises(DataError, match="non-finite"):
        net.features(torch.full((5, 8, 8), float("nan")))
    x = torch.rand(5, 8, 8)
    assert torch.equal(net.features(x * 1.1), net.features((x * 1.1).clamp(0, 1)))  # overshoot is clamped


def test_random_shift_moves_each_image_by_at_most_one_pixel():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 1, 6, 6, generator=g) + 1.0  # no zeros inside
    y = mn.random_shift(x, 1, g)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    seen = set()
    for i in range(50):
        hits = [(dy, dx) for dy in range(3) for dx in range(3) if torch.equal(y[i, 0], padded[i, 0, dy:dy + 6,
                                                                                                 dx:dx + 6])]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) == 9  # every shift occurs
    assert torch.equal(mn.random_shift(x, 0, g), x)


def test_cli_train_and_show(trained, home, capsys, fake_training):
    assert main(["metric-net", "train", "--data", "digits", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trained"] is False and out["test_accuracy"] == trained[1].meta["test_accuracy"]
    assert out["path"] == str(home / "metric-nets" / "digits.safetensors") and out["train_cpu_seconds"] > 0
    assert main(["metric-net", "train", "--data", "digits"]) == 0
    assert capsys.readouterr().out.startswith("cached metric net for digits: test accuracy")
    assert main(["metric-net", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["data"] for e in shown["nets"]] == ["digits"] and shown["nets"][0]["current"] is True
    assert main(["metric-net", "show"]) == 0
    assert "digits" in capsys.readouterr().out
    assert fake_training == []
    assert main(["metric-net", "train", "--data", "digits", "--rebuild", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trained"] is True and fake_training == ["digits"]


def test_cli_errors_are_one_line(home, capsys):
    assert main(["metric-net", "train", "--data", "cifar"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no metric net for 'cifar'" in err


def test_show_lists_a_damaged_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAKUSAN_DATA", str(tmp_path))
    assert main(["metric-net", "show"]) == 0
    assert "no metric nets" in capsys.readouterr().out
    (tmp_path / "metric-nets").mkdir()
    (tmp_path / "metric-nets" / "mnist.safetensors").write_bytes(b"junk")
    assert main(["metric-net", "show"]) == 0
    assert "damaged" in capsys.readouterr().out


def test_cli_score_gives_what_evaluate_samples_gives(home, digits, tmp_path, capsys, fake_training):
    """`metric-net score` of a .npy = evaluate_samples of the same images (FD, floor, class accuracy); real
    images score near their floor, and bad files or labels are one line each."""
    import numpy as np

    samples, labels = tmp_path / "s.npy", tmp_path / "y.npy"
    np.save(samples, digits.x_train[-300:].reshape(300, 8, 8).numpy())
    np.save(labels, digits.y_train[-300:].numpy().astype(np.int64))
    assert main(["metric-net", "score", str(samples), "--data", "digits", "--labels", str(labels), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    api = mn.evaluate_samples("digits", digits.x_train[-300:], labels=digits.y_train[-300:], progress=False)
    for key in ("fd", "fd_stderr", "precision", "recall", "class_accuracy"):
        assert out[key] == pytest.approx(api[key], rel=1e-12), key
    assert out["floor"] == api["floor"] and out["cpu_seconds"] > 0 and out["class_accuracy"] > 0.97
    assert main(["metric-net", "score", str(samples), "--data", "digits"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("300 samples against 297 test images of digits: FD") and "class accuracy" not in line
    np.save(tmp_path / "wide.npy", np.full((10, 8, 8), 255.0, dtype=np.float32))
    np.save(tmp_path / "bad_y.npy", np.zeros(7, dtype=np.int64))
    for argv, words in [
        ([str(tmp_path / "missing.npy"), "--data", "digits"], ("no such data file",)),
        ([str(tmp_path / "wide.npy"), "--data", "digits"], ("[0, 1]", "/ 255")),
        ([str(samples), "--data", "digits", "--labels", str(tmp_path / "bad_y.npy")], ("--labels", "(300,)")),
        ([str(samples), "--data", "cifar"], ("no metric net for 'cifar'",)),
    ]:
        assert main(["metric-net", "score", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and all(w in err[0] for w in words), err
    assert fake_training == []  # the cached net was used

"""Checkpoint integrity: hashes required and covering everything, shapes and finiteness on load, one-line errors.

Also the resume guard (options given with --resume against the run's own), timed default checkpoints, and
rerunning a run directory whose run stopped before its first checkpoint.
"""

import argparse
import hashlib
import json
import struct

import pytest
import torch
from safetensors.torch import save as st_save

from kakusan import checkpoint
from kakusan.cli import main
from kakusan.commands import check_resume, resume_run, typed_options
from kakusan.errors import CheckpointError, KakusanError
from kakusan.rbm import BernoulliRBM
from kakusan.report.run_dir import RunDir
from kakusan.train import StepOutput, TrainConfig, fit
from kakusan.train_state import restore


def _rewrite(path, edit_manifest=None, edit_header=None):
    """Rewrite a checkpoint's safetensors header (its manifest, or the tensor entries), keeping the data bytes."""
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    if edit_manifest is not None:
        manifest = json.loads(header["__metadata__"]["kakusan"])
        edit_manifest(manifest)
        header["__metadata__"]["kakusan"] = json.dumps(manifest)
    if edit_header is not None:
        edit_header(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + blob[8 + n:])


def _rbm(hidden=4, seed=0):
    return BernoulliRBM(6, hidden, seed=seed)


@pytest.fixture
def saved(tmp_path):
    model = _rbm()
    checkpoint.save_model(tmp_path, model, name="model", meta={"step": 3})
    return tmp_path, checkpoint.path_of(tmp_path, "model"), model


def _fails(folder, match, name="model"):
    with pytest.raises(CheckpointError, match=match) as info:
        checkpoint.load_model(folder, name)
    message = str(info.value)
    assert "\n" not in message and str(folder / name) in message
    return message


def test_new_checkpoints_carry_both_hashes_and_load(saved):
    folder, path, model = saved
    _, head = checkpoint.load(folder, "model")
    assert head["format"] == checkpoint.FORMAT == 3
    assert len(head["sha256"]) == 64 and len(head["sha256_all"]) == 64
    back = checkpoint.load_model(folder, "model")
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), model.state_dict().values()))


def test_read_manifest_gives_the_checked_manifest_without_reading_the_data(saved):
    folder, path, _ = saved
    _, head = checkpoint.load(folder, "model")
    assert checkpoint.read_manifest(path) == head
    with pytest.raises(CheckpointError, match="cannot read"):
        checkpoint.read_manifest(folder / "missing.safetensors")


@pytest.mark.parametrize("key", ["sha256", "sha256_all"])
def test_deleting_a_hash_fails(saved, key):
    folder, path, _ = saved
    _rewrite(path, lambda m: m.pop(key))
    _fails(folder, "hash is required")


@pytest.mark.parametrize("edit", [
    lambda m: m["meta"].update(step=700),  # the step
    lambda m: m.update(step=5),  # a new key
    lambda m: m["config"].update(seed=1),  # the config
    lambda m: m.update(format=2),  # a downgrade that keeps the full hash
    lambda m: m["parts"]["model"].update(kind="weights"),
])
def test_any_manifest_edit_fails(saved, edit):
    folder, path, _ = saved
    _rewrite(path, edit)
    _fails(folder, "hash check")


def test_tensor_header_edit_and_data_flip_fail(saved, tmp_path):
    folder, path, _ = saved
    original = path.read_bytes()

    def transpose(header):
        entry = header["model/W"]
        entry["shape"] = entry["shape"][::-1]

    _rewrite(path, edit_header=transpose)  # the same bytes read as another shape
    _fails(folder, "manifest or header changed")
    path.write_bytes(original[:-3] + bytes([original[-3] ^ 1]) + original[-2:])
    _fails(folder, "tensor data")
    path.write_bytes(original[: len(original) // 2])
    _fails(folder, "damaged")
    path.write_bytes(b"\x00" * 4)
    _fails(folder, "not a safetensors file")


def test_training_checkpoint_step_edit_is_detected(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    _fit(run, steps=6)
    _rewrite(checkpoint.path_of(run.checkpoints, "last"), lambda m: m.update(step=2))
    with pytest.raises(CheckpointError, match="hash check"):
        _fit(run, steps=10)


def _nan_checkpoint(folder, name="model"):
    model = _rbm()
    with torch.no_grad():
        model.W[1, 2] = float("nan")
        model.W[0, 0] = float("inf")
    checkpoint.save_model(folder, model, name=name)  # valid hashes: the weights themselves are bad


def test_nan_weights_are_refused(tmp_path):
    _nan_checkpoint(tmp_path)
    message = _fails(tmp_path, "non-finite")
    assert "2 non-finite" in message and "'W'" in message


def test_shapes_are_checked_against_the_config_and_the_class(tmp_path):
    small, big = _rbm(4), _rbm(5)
    manifest = checkpoint.model_manifest(small)
    checkpoint.save(tmp_path, "model", {"model": big.state_dict()}, {**manifest, "parts": {"model": {"kind": "model"}}})
    _fails(tmp_path, "has shape")
    checkpoint.save(tmp_path, "other", {"model": small.state_dict()},
                    {**manifest, "class": "NoSuchNet", "parts": {"model": {"kind": "model"}}})
    _fails(tmp_path, "unknown model class", name="other")
    checkpoint.save(tmp_path, "bad", {"model": small.state_dict()},
                    {**manifest, "config": {"n_visible": "six"}, "parts": {"model": {"kind": "model"}}})
    _fails(tmp_path, "cannot rebuild|config", name="bad")


def _legacy_format2(folder, name, parts, manifest):
    """A checkpoint as kakusan wrote it before the full hash: format 2, sha256 of the tensor data only."""
    tensors = {f"{p}/{k}": v.contiguous() for p, entries in parts.items() for k, v in entries.items()}
    bare = st_save(tensors)
    n = int.from_bytes(bare[:8], "little")
    head = {"format": 2, **manifest, "sha256": hashlib.sha256(bare[8 + n:]).hexdigest()}
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint.path_of(folder, name).write_bytes(st_save(tensors, metadata={"kakusan": json.dumps(head)}))


def test_old_format2_models_still_load_and_old_training_checkpoints_need_an_explicit_option(tmp_path, monkeypatch):
    model = _rbm()
    manifest = {**checkpoint.model_manifest(model), "parts": {"model": {"kind": "model"}}, "meta": {}}
    _legacy_format2(tmp_path, "model", {"model": model.state_dict()}, manifest)
    back = checkpoint.load_model(tmp_path, "model")  # the shipped model and existing runs keep loading
    assert torch.equal(back.W, model.W)
    _rewrite(checkpoint.path_of(tmp_path, "model"), lambda m: m.pop("sha256"))
    _fails(tmp_path, "hash is required")  # even an old file must carry its hash

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    _fit(run, steps=4)
    parts, head = checkpoint.load(run.checkpoints, "last")
    _legacy_format2(run.checkpoints, "last", parts, {k: v for k, v in head.items()
                                                     if k not in ("format", "sha256", "sha256_all")})
    with pytest.raises(CheckpointError, match="older kakusan.*KAKUSAN_TRUST_OLD_CHECKPOINTS=1") as info:
        _fit(run, steps=8)
    assert "\n" not in str(info.value)
    monkeypatch.setenv("KAKUSAN_TRUST_OLD_CHECKPOINTS", "1")
    resumed = _fit(run, steps=8)
    assert resumed.resumed_from == 4
    assert checkpoint.load(run.checkpoints, "last")[1]["format"] == 3  # re-saved with the full hash


def test_upgrade_resaves_an_old_file_with_the_full_hash(tmp_path):
    model = _rbm()
    manifest = {**checkpoint.model_manifest(model), "parts": {"model": {"kind": "model"}}, "meta": {"step": 1}}
    _legacy_format2(tmp_path, "model", {"model": model.state_dict()}, manifest)
    checkpoint.upgrade(tmp_path, "model")
    _, head = checkpoint.load(tmp_path, "model")
    assert head["format"] == 3 and head["meta"] == {"step": 1}
    assert torch.equal(checkpoint.load_model(tmp_path, "model").W, model.W)


def test_format1_without_its_hash_is_refused(tmp_path):
    blob = st_save({"W": torch.zeros(6, 4)})
    (tmp_path / "model.safetensors").write_bytes(blob)
    (tmp_path / "model.json").write_text(json.dumps({"class": "BernoulliRBM", "config": {}}))
    _fails(tmp_path, "no sha256")


# ---------------------------------------------------------------- training checkpoints


class _Line(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))


def _mse(model, batch, generator):
    return StepOutput(loss=((batch - model.w) ** 2).mean())


def _fit(run, steps, **config):
    torch.manual_seed(0)
    model = _Line()
    data = torch.randn(40, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    return fit(model, _mse, data, opt, TrainConfig(steps=steps, batch_size=8, progress=False, **config), run=run)


def test_nan_in_a_training_checkpoint_is_refused_on_resume(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    _fit(run, steps=3)
    parts, head = checkpoint.load(run.checkpoints, "last")
    parts["optimizer"]["state.0.exp_avg"][0] = float("nan")
    checkpoint.save(run.checkpoints, "last", parts, head)
    with pytest.raises(CheckpointError, match="'optimizer'.*non-finite"):
        _fit(run, steps=6)


def test_default_checkpoints_are_timed(tmp_path, monkeypatch):
    import kakusan.train as train

    written = []
    real = train.save_state
    monkeypatch.setattr(train, "save_state", lambda *a, **k: (written.append(a[4]), real(*a, **k)))
    run = RunDir(tmp_path / "a")
    run.path.mkdir()
    _fit(run, steps=5)  # a short run: only the end (60 s never pass)
    assert written == [5]
    written.clear()
    run = RunDir(tmp_path / "b")
    run.path.mkdir()
    _fit(run, steps=5, checkpoint_seconds=0.0)  # every step end is past the interval
    assert written == [1, 2, 3, 4, 5]
    with pytest.raises(KakusanError, match="checkpoint_seconds"):
        _fit(None, steps=1, checkpoint_seconds=-1.0)


# ---------------------------------------------------------------- the CLI


def _train(run, *extra):
    return main(["rbm", "train", "--data", "digits", "--hidden", "4", "--epochs", "1", "--samples", "0",
                 "--run-dir", str(run), *extra])


def test_cli_refuses_a_damaged_checkpoint_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run) == 0
    capsys.readouterr()
    _rewrite(run / "checkpoints" / "model.safetensors", lambda m: m["meta"].update(step=1))
    assert main(["rbm", "sample", str(run), "-n", "2", "--steps", "1", "--run-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.safetensors" in err and "hash check" in err
    _nan_checkpoint(run / "checkpoints")
    assert main(["rbm", "sample", str(run), "-n", "2", "--steps", "1", "--run-dir", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "non-finite" in err


def _args(argv, run):
    return argparse.Namespace(argv=["kakusan", *argv], run_dir=str(run))


def test_resume_refuses_conflicting_options_and_lists_them(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "--lr", "0.05") == 0
    base = ["rbm", "train", "--run-dir", str(run), "--resume"]
    assert check_resume(_args(base + ["--data", "digits", "--lr", "0.05", "--hidden", "4"], run))  # the same: fine
    with pytest.raises(KakusanError) as info:
        check_resume(_args(base + ["--lr", "0.1", "--hid", "16", "--method=cd", "--epochs", "5"], run))
    message = str(info.value)
    assert "\n" not in message
    for part in ("--lr 0.1 (the run has 0.05)", "--hidden 16 (the run has 4)", "--method cd (the run has pcd)"):
        assert part in message
    assert "--epochs" not in message.split("differ:")[1].split("; leave")[0]
    with pytest.raises(KakusanError, match="--holdout 0.2 \\(the run did not set it\\)"):  # not "(the run has None)"
        check_resume(_args(base + ["--holdout", "0.2"], run))
    typed, names = typed_options(["kakusan", "rbm", "train", "--epochs=3", "--resume"])
    assert typed == {"epochs": 3, "resume": True} and names["epochs"] == "--epochs"


def test_resume_run_extends_epochs_with_a_note_and_checks_flags(tmp_path, capsys):
    from kakusan.commands.vae_common import read_config
    from kakusan.commands.vae_train import VAETrainSettings

    run = tmp_path / "vae"
    argv = ["vae", "train", "--data", "digits", "--epochs", "1", "--batch-size", "100", "--hidden", "8",
            "--latent", "2", "--eval-every", "-1", "--run-dir", str(run)]
    assert main(argv) == 0
    capsys.readouterr()
    args = _args(["vae", "train", "--run-dir", str(run), "--resume", "--epochs", "2"], run)
    _, config, settings, _ = resume_run(str(run), read_config, VAETrainSettings, None, args=args)
    assert settings.epochs == 2 and "from 1 to 2 epochs" in capsys.readouterr().err
    args = _args(["vae", "train", "--run-dir", str(run), "--resume", "--lr", "1"], run)
    with pytest.raises(KakusanError, match="--lr 1.0 \\(the run has"):
        resume_run(str(run), read_config, VAETrainSettings, None, args=args)


def test_a_run_stopped_before_its_first_checkpoint_can_be_rerun_in_its_directory(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"command": "rbm train", "train": {}}))
    (run / "argv.json").write_text("[]")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / ".last.safetensors.tmp-123").write_bytes(b"partial")
    assert main(["vae", "train", "--run-dir", str(run), "--resume"]) == 2
    assert "without --resume" in capsys.readouterr().err
    assert _train(run) == 0
    assert "reusing" in capsys.readouterr().err
    assert checkpoint.exists(run / "checkpoints", "last")
    assert _train(run) == 2  # now it holds a checkpoint: never overwritten
    other = tmp_path / "mine"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"train": {}}))
    (other / "notes.txt").write_text("a user's file")
    assert _train(other) == 2 and (other / "notes.txt").exists()

import json

import pytest
import torch

from kakusan.errors import CheckpointError, KakusanError
from kakusan import checkpoint
from kakusan.registry import register_model
from kakusan.report.run_dir import RunDir


def test_automatic_run_dirs_never_collide(tmp_path):
    a = RunDir.create("fit", root=tmp_path)
    b = RunDir.create("fit", root=tmp_path)
    assert a.path != b.path and a.path.is_dir() and b.path.is_dir()


def test_explicit_run_dir_that_holds_files_is_refused(tmp_path):
    run = RunDir.create("fit", tmp_path / "r")
    run.write_config({"class": "X"}, argv=["kakusan", "x"])
    with pytest.raises(KakusanError, match="already exists"):
        RunDir.create("fit", tmp_path / "r")
    assert json.loads((tmp_path / "r" / "config.json").read_text()) == {"class": "X"}  # untouched


def test_config_argv_and_metrics(tmp_path):
    run = RunDir.create("fit", tmp_path / "r")
    run.write_config({"class": "Gaussian", "dim": 3, "shape": (2, 3)}, argv=["kakusan", "fit"])
    run.log_metrics(step=0, loss=torch.tensor(1.5))
    run.log_metrics(step=1, loss=1.25, kl=float("inf"))
    assert json.loads((run.path / "argv.json").read_text()) == ["kakusan", "fit"]
    assert json.loads((run.path / "config.json").read_text())["shape"] == [2, 3]
    assert [m["loss"] for m in run.read_metrics()] == [1.5, 1.25]
    assert "Infinity" not in (run.path / "metrics.jsonl").read_text()  # strict JSON
    assert run.read_metrics()[1]["kl"] == "inf"


@register_model
class _Affine(torch.nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.config = {"dim": dim}
        self.weight = torch.nn.Parameter(torch.randn(dim, dim, dtype=torch.float64))
        self.register_buffer("bias", torch.arange(dim, dtype=torch.float64))


def test_checkpoint_round_trip_rebuilds_the_model(tmp_path):
    model = _Affine(5)
    checkpoint.save_model(tmp_path, model, meta={"step": 7})
    again = checkpoint.load_model(tmp_path)
    assert isinstance(again, _Affine)
    torch.testing.assert_close(again.weight, model.weight, rtol=0, atol=0)
    torch.testing.assert_close(again.bias, model.bias, rtol=0, atol=0)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_damaged_or_mismatched_checkpoints_are_refused(tmp_path):
    checkpoint.save_model(tmp_path, _Affine(3))
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="damaged"):
        checkpoint.load_model(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint 'other'"):
        checkpoint.load_model(tmp_path, name="other")


def test_unknown_class_is_refused_without_importing_anything(tmp_path):
    checkpoint.save(tmp_path, "model", {"model": {"w": torch.zeros(2)}}, {"class": "system", "module": "os",
                                                                          "config": {}})
    with pytest.raises(CheckpointError, match="unknown model class"):
        checkpoint.load_model(tmp_path)


def test_unregistered_models_cannot_be_saved(tmp_path):
    with pytest.raises(CheckpointError, match="not registered"):
        checkpoint.save_model(tmp_path, torch.nn.Linear(2, 2))

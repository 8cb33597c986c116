import pytest
import torch

from kakusan.errors import KakusanError
from kakusan.registry import register_model
from kakusan.report.run_dir import RunDir
from kakusan.train import StepOutput, TrainConfig, fit


@register_model
class _Line(torch.nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.config = {"dim": dim}
        self.w = torch.nn.Parameter(torch.zeros(dim, dtype=torch.float64))


def _least_squares(model, batch, generator):
    x, y = batch[:, :-1], batch[:, -1]
    loss = ((x @ model.w - y) ** 2).mean()
    return StepOutput(loss=loss, metrics={"mse": float(loss.detach())})


def _data(gen, n=61, d=3):
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.01 * torch.randn(n, generator=gen,
                                                                                      dtype=torch.float64)
    return torch.cat([x, y[:, None]], 1)


def test_fit_minimises_and_logs_metrics(tmp_path, gen):
    model, data = _Line(3), _data(gen)
    run = RunDir.create("t", tmp_path / "r")
    res = fit(model, _least_squares, data, torch.optim.Adam(model.parameters(), lr=0.05),
              TrainConfig(steps=400, batch_size=16, progress=False), run=run)
    torch.testing.assert_close(model.w.detach(), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), atol=0.02,
                               rtol=0)
    assert len(run.read_metrics()) == 400 == len(res.history)
    assert (run.path / "checkpoints" / "last.safetensors").exists()


def test_killed_run_resumes_to_the_same_result(tmp_path, gen):
    data = _data(gen)
    config = TrainConfig(steps=40, batch_size=8, checkpoint_every=10, progress=False, seed=3)

    whole = _Line(3)
    fit(whole, _least_squares, data, torch.optim.Adam(whole.parameters(), lr=0.05), config,
        run=RunDir.create("t", tmp_path / "whole"))

    run = RunDir.create("t", tmp_path / "parts")
    first = _Line(3)
    fit(first, _least_squares, data, torch.optim.Adam(first.parameters(), lr=0.05),
        TrainConfig(steps=20, batch_size=8, checkpoint_every=10, progress=False, seed=3), run=run)
    fresh = _Line(3)  # a new process: fresh model and optimizer, state from the checkpoint
    res = fit(fresh, _least_squares, data, torch.optim.Adam(fresh.parameters(), lr=0.05), config, run=run)
    assert res.resumed_from == 20
    torch.testing.assert_close(fresh.w, whole.w, rtol=0, atol=0)
    assert [m["step"] for m in run.read_metrics()] == list(range(1, 41))


def test_divergence_is_a_clear_error(gen):
    model = _Line(3)
    with pytest.raises(KakusanError, match="diverged by step"):
        fit(model, _least_squares, _data(gen) * 1e3, torch.optim.SGD(model.parameters(), lr=10.0),
            TrainConfig(steps=200, progress=False))


def test_closure_optimizers_work(gen):
    model = _Line(3)
    fit(model, _least_squares, _data(gen), torch.optim.LBFGS(model.parameters(), max_iter=50),
        TrainConfig(steps=3, progress=False))
    torch.testing.assert_close(model.w.detach(), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), atol=0.02,
                               rtol=0)

"""train.fit's features, each against a hand computation: structured batches, transforms, partial batches,
accumulation, schedules, EMA, clipping, hooks, interval means, Ctrl-C, autocast."""

import math
import os
import signal

import pytest
import torch

import kakusan
from kakusan import checkpoint
from kakusan.data.batches import batch_at, steps_per_epoch
from kakusan.errors import CheckpointError, KakusanError
from kakusan.optim.schedules import lr_factor, make_scheduler
from kakusan.registry import register_model
from kakusan.report.run_dir import RunDir
from kakusan.train import Hook, Interrupted, StepOutput, TrainConfig, fit


@register_model
class TinyRegressor(torch.nn.Module):
    """y ≈ x·w + b, float64."""

    def __init__(self, dim: int = 3):
        super().__init__()
        self.config = {"dim": dim}
        self.w = torch.nn.Parameter(torch.zeros(dim, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x):
        return x @ self.w + self.b

    def sample(self, n, generator=None):
        return self.w.detach().expand(n, -1).clone()


def mse(model, batch, generator):
    x, y = batch["x"], batch["y"]
    per_example = (model(x) - y) ** 2
    return StepOutput(loss=per_example.mean(), metrics={"mse": per_example.detach()})


def make_data(n=50, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)[:dim] + 0.3 + 0.1 * torch.randn(n, generator=g,
                                                                                            dtype=torch.float64)
    return {"x": x, "y": y}


def run_fit(tmp_path=None, name="r", steps=30, resume=True, model=None, **kw):
    model = TinyRegressor() if model is None else model
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    sched = kw.pop("schedule", None)
    scheduler = make_scheduler(opt, sched[0], steps, warmup=sched[1]) if sched else None
    config = TrainConfig(steps=steps, batch_size=kw.pop("batch_size", 8), progress=False, **kw.pop("config", {}))
    run = None if tmp_path is None else (RunDir(tmp_path / name) if (tmp_path / name).exists()
                                         else RunDir.create("t", tmp_path / name))
    res = fit(model, kw.pop("objective", mse), kw.pop("data", make_data()), opt, config, run=run, resume=resume,
              scheduler=scheduler, **kw)
    return model, res, run


def test_structured_batches_keep_their_rows_together():
    data = {"x": torch.arange(10.0)[:, None], "y": torch.arange(10.0) * 2}
    for step in range(7):
        b = batch_at(data, 4, step, seed=1)
        assert torch.equal(b["y"], b["x"][:, 0] * 2)
    tup = (torch.arange(10.0), torch.arange(10) + 100)
    b = batch_at(tup, 3, 2, seed=1)
    assert isinstance(b, tuple) and torch.equal(b[1], b[0].long() + 100)
    with pytest.raises(KakusanError, match="different numbers of rows"):
        batch_at({"x": torch.zeros(4), "y": torch.zeros(5)}, 2, 0, 0)


def test_partial_last_batch_kept_or_dropped():
    data = torch.arange(10)
    assert steps_per_epoch(10, 4, drop_last=True) == 2 and steps_per_epoch(10, 4, drop_last=False) == 3
    kept = torch.cat([batch_at(data, 4, s, 0, drop_last=False) for s in range(3)])
    assert sorted(kept.tolist()) == list(range(10))  # every example once per epoch
    assert len(batch_at(data, 4, 2, 0, drop_last=False)) == 2
    dropped = torch.cat([batch_at(data, 4, s, 0) for s in range(2)])
    assert len(dropped) == 8 and len(set(dropped.tolist())) == 8


def test_transform_gets_the_step_generator_and_resume_is_bit_exact(tmp_path):
    seen = []

    def noisy(batch, generator):  # dynamic "binarisation": fresh noise every step, from the loop's generator
        seen.append(generator)
        return {**batch, "y": batch["y"] + 0.1 * torch.randn(len(batch["y"]), generator=generator,
                                                              dtype=torch.float64)}

    whole, _, _ = run_fit(tmp_path, "whole", steps=30, transform=noisy)
    assert all(isinstance(g, torch.Generator) for g in seen) and len(seen) == 30
    run_fit(tmp_path, "parts", steps=12, transform=noisy)
    resumed, res, _ = run_fit(tmp_path, "parts", steps=30, transform=noisy)
    assert res.resumed_from == 12
    assert torch.equal(resumed.w, whole.w) and torch.equal(resumed.b, whole.b)
    plain, _, _ = run_fit(None, steps=30)
    assert not torch.equal(plain.w, whole.w)  # the transform did change the data


def test_accumulation_gives_the_same_steps_as_the_whole_batch():
    a, _, _ = run_fit(steps=20, batch_size=12)
    b, _, _ = run_fit(steps=20, batch_size=12, config={"accumulate": 5})  # micro-batches of 3, 3, 2, 2, 2 rows
    torch.testing.assert_close(a.w, b.w, rtol=0, atol=1e-12)


def test_warmup_cosine_schedule_sets_the_learning_rate_and_resumes(tmp_path):
    expected = [0.05 * lr_factor("cosine", s, 20, warmup=5) for s in range(21)]
    assert expected[0] == pytest.approx(0.01) and expected[4] == pytest.approx(0.05)
    assert expected[20] == pytest.approx(0.0, abs=1e-15) and expected[5] == pytest.approx(0.05)
    opt_lrs = []

    def record(step, out):
        opt_lrs.append(sched_holder[0].get_last_lr()[0])

    m = TinyRegressor()
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    sched_holder = [make_scheduler(opt, "cosine", 20, warmup=5)]
    fit(m, mse, make_data(), opt, TrainConfig(steps=20, batch_size=8, progress=False), scheduler=sched_holder[0],
        callback=record)
    assert opt_lrs == pytest.approx(expected[1:])
    whole, _, _ = run_fit(tmp_path, "w", steps=20, schedule=("cosine", 5))
    with pytest.raises(Interrupted):
        run_fit(tmp_path, "p", steps=20, schedule=("cosine", 5), callback=_interrupt_at(7))
    with pytest.raises(CheckpointError, match="with a learning-rate scheduler"):
        run_fit(tmp_path, "p", steps=20)  # same run, scheduler forgotten: refused, not silently different
    resumed, res, _ = run_fit(tmp_path, "p", steps=20, schedule=("cosine", 5))
    assert res.resumed_from == 7 and torch.equal(resumed.w, whole.w)


def _interrupt_at(when):
    def interrupt(step, out):
        if step == when:
            os.kill(os.getpid(), signal.SIGINT)
    return interrupt


def test_ema_matches_the_recursion_and_loads_in_one_line(tmp_path):
    history, model = [], TinyRegressor()
    model, res, run = run_fit(tmp_path, "e", steps=25, model=model, config={"ema_decays": (0.9, 0.5)},
                              callback=lambda s, o: history.append(model.w.detach().clone()))
    # recompute: θ̄_0 = θ_0 = 0, θ̄_s = d θ̄_{s-1} + (1 - d) θ_s
    for d in (0.9, 0.5):
        avg = torch.zeros(3, dtype=torch.float64)
        for w in history:
            avg = d * avg + (1 - d) * w
        torch.testing.assert_close(res.ema.state(d)["w"], avg, rtol=1e-12, atol=1e-14)
    loaded = kakusan.load(run.path, weights="ema")
    torch.testing.assert_close(loaded.w, res.ema.state(0.9)["w"], rtol=0, atol=0)
    torch.testing.assert_close(kakusan.load(run.path, weights="ema@0.5").w, res.ema.state(0.5)["w"], rtol=0, atol=0)
    torch.testing.assert_close(kakusan.load(run.path, weights="last").w, model.w, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="no ema@0.7"):
        kakusan.load(run.path, weights="ema@0.7")


def test_gradient_clipping_bounds_the_step():
    m = TinyRegressor()
    data = make_data()
    data["y"] = data["y"] * 1e6
    fit(m, mse, data, torch.optim.SGD(m.parameters(), lr=1.0), TrainConfig(steps=1, batch_size=8, progress=False,
                                                                          grad_clip=0.5))
    step = torch.cat([m.w.detach(), m.b.detach()[None]])
    assert float(step.norm()) == pytest.approx(0.5, rel=1e-9)


def test_hooks_run_in_eval_mode_without_gradients(tmp_path):
    calls = []

    def hook(ctx):
        calls.append((ctx.step, ctx.model.training, torch.is_grad_enabled()))
        return {"w0": float(ctx.model.w[0])}

    model, res, run = run_fit(tmp_path, "h", steps=10, hooks=[Hook(4, hook, "probe", at_start=True)])
    assert calls == [(0, False, False), (4, False, False), (8, False, False), (10, False, False)]
    assert model.training  # back in train mode afterwards
    events = [r for r in run.read_metrics() if r.get("event") == "probe"]
    assert [e["step"] for e in events] == [0, 4, 8, 10] and events == res.events


def test_logged_metrics_are_interval_means():
    losses = []
    _, res, _ = run_fit(steps=12, config={"log_every": 5}, callback=lambda s, o: losses.append(float(o.loss.detach())))
    assert [r["step"] for r in res.history] == [5, 10, 12]
    assert res.history[0]["loss"] == pytest.approx(sum(losses[:5]) / 5, rel=1e-12)
    assert res.history[2]["loss"] == pytest.approx(sum(losses[10:]) / 2, rel=1e-12)
    assert res.history[0]["mse"] == pytest.approx(res.history[0]["loss"], rel=1e-12)  # per-example mean


def test_ctrl_c_finishes_the_step_saves_and_resumes(tmp_path):
    whole, _, _ = run_fit(tmp_path, "whole", steps=20)
    with pytest.raises(Interrupted, match="interrupted at step 7 of 20; checkpoint saved") as info:
        run_fit(tmp_path, "parts", steps=20, callback=_interrupt_at(7))
    assert info.value.step == 7
    _, head = checkpoint.load(tmp_path / "parts" / "checkpoints", "last")
    assert head["step"] == 7
    resumed, res, _ = run_fit(tmp_path, "parts", steps=20)
    assert res.resumed_from == 7 and torch.equal(resumed.w, whole.w)


def test_bf16_autocast_runs_the_objective_under_autocast():
    seen = []

    def objective(model, batch, generator):
        seen.append(torch.is_autocast_enabled("cpu"))
        return mse(model, batch, generator)

    run_fit(steps=2, objective=objective, config={"autocast": "bf16"})
    assert seen == [True, True]
    with pytest.raises(KakusanError, match="autocast"):
        run_fit(steps=1, config={"autocast": "fp8"})


def test_bad_settings_are_one_line_errors():
    for cfg, word in (({"accumulate": 0}, "accumulate"), ({"log_every": 0}, "log_every"),
                      ({"grad_clip": -1.0}, "grad_clip")):
        with pytest.raises(KakusanError, match=word):
            run_fit(steps=2, config=cfg)
    with pytest.raises(KakusanError, match="EMA decays"):
        run_fit(steps=2, config={"ema_decays": (1.5,)})


def test_old_format_run_loads_but_does_not_resume(tmp_path):
    import hashlib
    import json

    from safetensors.torch import save as st_save

    folder = tmp_path / "old" / "checkpoints"
    folder.mkdir(parents=True)
    blob = st_save({"w": torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), "b": torch.tensor(0.5, dtype=torch.float64)})
    (folder / "last.safetensors").write_bytes(blob)
    (folder / "last.json").write_text(json.dumps({"class": "TinyRegressor", "config": {"dim": 3},
                                                  "sha256": hashlib.sha256(blob).hexdigest(), "meta": {"step": 5}}))
    old = kakusan.load(tmp_path / "old")
    assert old.w.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(CheckpointError, match="older kakusan"):
        run_fit(tmp_path, "old", steps=10)


def test_lr_factor_schedules():
    assert lr_factor("linear", 5, 10) == 0.5 and lr_factor("constant", 3, 10) == 1.0
    assert lr_factor("cosine", 5, 10) == pytest.approx(0.5)
    assert lr_factor("cosine", 0, 10, warmup=4) == 0.25 and lr_factor("cosine", 4, 10, warmup=4) == 1.0
    assert lr_factor("cosine", 7, 10, warmup=4) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    with pytest.raises(KakusanError, match="unknown lr schedule"):
        lr_factor("step", 0, 1)

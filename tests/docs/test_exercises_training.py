"""The exercises of docs/training.md: each printed answer is what kakusan computes."""

import math

import pytest
import torch

from exercise_answers import answers, check
from kakusan.optim.schedules import lr_factor, make_scheduler
from kakusan.train import StepOutput, TrainConfig, fit

PAGE = "training"


class Scalar(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))


def test_the_page_prints_every_answer():
    assert set(answers(PAGE)) == {"f(0)", "f(90)", "f(160)", "f(299)", "lag after 20 steps", "lag after 100 steps",
                                  "gradient, equal weights", "gradient, weighted by share", "w after one step"}


def test_exercise_1_warm_up_and_cosine():
    w = torch.nn.Parameter(torch.zeros(()))
    opt = torch.optim.SGD([w], lr=1.0)
    scheduler = make_scheduler(opt, "cosine", 300, warmup=20)
    used = []
    for _ in range(300):
        used.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    for s in (0, 90, 160, 299):
        by_hand = (s + 1) / 20 if s < 20 else 0.5 * (1 + math.cos(math.pi * (s - 20) / 280))
        assert lr_factor("cosine", s, 300, warmup=20) == pytest.approx(by_hand, abs=1e-15)
        assert used[s] == pytest.approx(by_hand, abs=1e-15)
        check(PAGE, f"f({s})", by_hand)


def test_exercise_2_how_far_the_average_lags():
    for steps in (20, 100):
        model = Scalar()
        result = fit(model, lambda m, batch, g: StepOutput(loss=-m.w), torch.zeros(4, 1),
                     torch.optim.SGD(model.parameters(), lr=0.1), TrainConfig(steps=steps, ema_decays=(0.9,),
                                                                              progress=False))
        lag = float(model.w.detach()) - float(result.ema.state()["w"])
        assert lag == pytest.approx(0.1 * 0.9 / 0.1 * (1 - 0.9**steps), rel=1e-12)
        check(PAGE, f"lag after {steps} steps", lag)


def test_exercise_3_weights_by_share():
    x = torch.arange(15.0, dtype=torch.float64)
    grad = [float(-2 * part.mean()) for part in (x[:8], x[8:])]  # d/dw of the piece's mean loss at w = 0
    check(PAGE, "gradient, equal weights", sum(grad) / 2)
    check(PAGE, "gradient, weighted by share", 8 / 15 * grad[0] + 7 / 15 * grad[1])
    assert 8 / 15 * grad[0] + 7 / 15 * grad[1] == pytest.approx(float(-2 * x.mean()), rel=1e-15)
    for accumulate in (1, 2, 3):
        model = Scalar()
        fit(model, lambda m, batch, g: StepOutput(loss=((m.w - batch[:, 0]) ** 2).mean()), x[:, None],
            torch.optim.SGD(model.parameters(), lr=0.01),
            TrainConfig(steps=1, batch_size=15, accumulate=accumulate, progress=False))
        check(PAGE, "w after one step", float(model.w.detach()))

"""DiffusionLoss: L_simple against the hand-computed ε error for every target, the VLB loss as an unbiased
estimate of the exact VLB (uniform and importance-sampled t), the hybrid's stop-gradient, label dropout,
batch forms, the importance sampler's state through a checkpoint, and a short training run."""

import math

import pytest
import torch

from kakusan.diffusion.model import Diffusion, DiffusionConfig
from kakusan.diffusion.nets import MLPDenoiserConfig
from kakusan.diffusion.objectives import DiffusionLoss, drop_labels
from kakusan.diffusion.process import ScheduleConfig, q_sample
from kakusan.diffusion.truth import MixtureTruth
from kakusan.diffusion.vlb import vlb_exact
from kakusan.errors import KakusanError
from kakusan.report.run_dir import RunDir
from kakusan.train import TrainConfig, fit

f64 = torch.float64


def make_model(target="eps", learn_variance=False, n_classes=0, T=40, D=3, seed=0, dtype=torch.float32, **kw):
    """A small MLP model whose output layer is randomised (it starts at zero), so every layer gets gradients."""
    torch.manual_seed(seed)
    config = DiffusionConfig(data_shape=(D,), schedule=ScheduleConfig("cosine", T), target=target,
                             denoiser=MLPDenoiserConfig(hidden=24, depth=1, time_dim=16),
                             learn_variance=learn_variance, n_classes=n_classes, **kw)
    model = Diffusion(config).to(dtype)
    with torch.no_grad():
        last = model.net.out[-1]
        last.weight.normal_(0, 0.3)
        last.bias.normal_(0, 0.1)
    return model


def data(n=64, D=3, seed=0):
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("target", ["eps", "x0", "v"])
def test_simple_loss_is_the_eps_mse_at_fixed_t_and_noise(target):
    model = make_model(target)
    x0 = data()
    g = torch.Generator().manual_seed(3)
    t = torch.randint(1, 41, (64,), generator=g)
    eps = torch.randn(64, 3, generator=g)
    loss, metrics, _ = DiffusionLoss("simple").terms(model, x0, t, eps)
    a, s = model.alpha_sigma(t.double(), x0)
    by_hand = ((eps - model.eps(q_sample(x0, a, s, eps), t.double())) ** 2).mean(1)
    torch.testing.assert_close(loss, by_hand, rtol=2e-4, atol=1e-6)
    torch.testing.assert_close(metrics["mse"], by_hand.detach(), rtol=2e-4, atol=1e-6)
    # the call draws t then ε from the generator (no labels: no dropout draws) and averages over the batch
    out = DiffusionLoss("simple")(model, x0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(out.loss, by_hand.mean(), rtol=2e-4, atol=1e-6)
    assert set(out.metrics) == {"mse", "vlb"}


@pytest.mark.parametrize("target", ["eps", "x0", "v"])
@pytest.mark.parametrize("weighting", ["x0", "v"])
def test_x0_and_v_weightings_are_the_squared_errors_in_those_spaces(target, weighting):
    """Whatever the network predicts, weighting="x0" fits ‖x_0 − x̂_0‖² and weighting="v" ‖v − v̂‖² (the v-loss),
    computed here by hand from the model's own conversions; the metric stays the ε-MSE."""
    from kakusan.diffusion.process import to_v

    model = make_model(target, dtype=f64)
    x0 = data().double()
    g = torch.Generator().manual_seed(5)
    t = torch.randint(1, 41, (64,), generator=g)
    eps = torch.randn(64, 3, generator=g, dtype=f64)
    loss, metrics, _ = DiffusionLoss("simple", weighting=weighting).terms(model, x0, t, eps)
    a, s = model.alpha_sigma(t.double(), x0)
    x_t = q_sample(x0, a, s, eps)
    if weighting == "x0":
        by_hand = ((model.x0(x_t, t.double()) - x0) ** 2).mean(1)
    else:
        pred = model.predict(x_t, t.double())[0]
        v_true = a[:, None] * eps - s[:, None] * x0
        by_hand = ((to_v(pred, target, x_t, a, s) - v_true) ** 2).mean(1)
    torch.testing.assert_close(loss, by_hand, rtol=1e-8, atol=1e-10)
    eps_mse = ((eps - model.eps(x_t, t.double())) ** 2).mean(1)
    torch.testing.assert_close(metrics["mse"], eps_mse.detach(), rtol=1e-8, atol=1e-10)
    assert not torch.allclose(loss, eps_mse)  # a different weighting of the same errors
    with pytest.raises(KakusanError, match="unknown weighting"):
        DiffusionLoss("simple", weighting="score")


@pytest.mark.parametrize("loss,target,learn_variance", [("simple", "eps", False), ("simple", "v", True),
                                                        ("vlb", "x0", False), ("vlb", "eps", True),
                                                        ("hybrid", "v", True), ("hybrid", "eps", True)])
def test_every_loss_runs_and_its_gradients_reach_every_layer(loss, target, learn_variance):
    model = make_model(target, learn_variance, n_classes=2)
    labels = torch.arange(64) % 2
    out = DiffusionLoss(loss)(model, (data(), labels), torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    for name, p in model.named_parameters():
        if "classes" in name:
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert float(p.grad.abs().sum()) > 0, name
    assert out.metrics["mse"].shape == (64,) and out.metrics["vlb"].shape == (64,)


def test_eight_bit_data_gets_the_discretised_decoder_and_bits_per_dim():
    model = make_model("eps", True, shift=0.5, scale=0.5, levels=256)
    x = torch.randint(0, 256, (64, 3), generator=torch.Generator().manual_seed(1)).float() / 255
    for loss in ("vlb", "hybrid"):
        out = DiffusionLoss(loss)(model, x, torch.Generator().manual_seed(0))
        out.loss.backward()
        assert torch.isfinite(out.loss)
        torch.testing.assert_close(out.metrics["bpd"], out.metrics["vlb"] / (3 * math.log(2)))


def test_hybrid_trains_the_mean_by_l_simple_only_and_the_variance_by_the_vlb():
    model = make_model("eps", True)
    x0 = model.to_model(data())
    g = torch.Generator().manual_seed(5)
    t = torch.randint(1, 41, (64,), generator=g)
    eps = torch.randn(64, 3, generator=g)
    captured = []
    predict = model.predict

    def spy(x_t, tt, cond=None):
        pred, v = predict(x_t, tt, cond)
        captured.append((pred, v))
        return pred, v

    model.predict = spy
    grads = {}
    for loss in ("simple", "hybrid", "vlb"):
        per_example, _, _ = DiffusionLoss(loss, hybrid_weight=0.01).terms(model, x0, t, eps)
        pred, v = captured[-1]
        grads[loss] = torch.autograd.grad(per_example.mean(), [pred, v], allow_unused=True)
    torch.testing.assert_close(grads["hybrid"][0], grads["simple"][0])  # the VLB term does not move the mean
    assert grads["simple"][1] is None or float(grads["simple"][1].abs().sum()) == 0
    assert float(grads["hybrid"][1].abs().sum()) > 0 and float(grads["vlb"][0].abs().sum()) > 0
    with pytest.raises(KakusanError, match="learn_variance"):
        DiffusionLoss("hybrid")(make_model(), data(), torch.Generator().manual_seed(0))


@pytest.mark.parametrize("t_sampling", ["uniform", "importance"])
def test_vlb_loss_is_an_unbiased_estimate_of_the_exact_vlb(t_sampling):
    model = make_model("eps", True, T=30, D=2, dtype=f64)
    x = data(150, 2, seed=4).double()
    objective = DiffusionLoss("vlb", t_sampling=t_sampling)
    g = torch.Generator().manual_seed(6)
    if t_sampling == "importance":
        for _ in range(40):  # warm-up: uniform until every t has 10 recorded terms
            objective(model, x, g)
            if objective.sampler.warmed_up:
                break
        assert objective.sampler.warmed_up
        p = objective.sampler.probabilities()
        assert float(p.max() / p.min()) > 3  # no longer uniform
    R = 60
    est = torch.stack([objective(model, x, g).metrics["vlb"] for _ in range(R)]).mean(0)
    exact = vlb_exact(model, x, generator=7).values
    d = est - exact
    z = float(d.mean() / (d.std() / math.sqrt(len(d))))
    assert abs(z) < 4, z


def test_importance_sampling_is_only_for_the_vlb_and_bad_settings_are_one_line_errors():
    with pytest.raises(KakusanError, match="loss='vlb'"):
        DiffusionLoss("simple", t_sampling="importance")
    with pytest.raises(KakusanError, match="unknown diffusion loss"):
        DiffusionLoss("l1")
    with pytest.raises(KakusanError, match="cond_drop"):
        DiffusionLoss(cond_drop=1.5)


def test_label_dropout_rate_is_cond_drop():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(20_000) % 5
    out = drop_labels(labels, 5, 0.3, g)
    dropped = out == 5
    rate = float(dropped.double().mean())
    assert abs(rate - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 20_000)
    assert torch.equal(out[~dropped], labels[~dropped])
    assert drop_labels(None, 5, 0.3, g) is None and torch.equal(drop_labels(labels, 5, 0.0, g), labels)
    # through the objective: the labels the network sees
    model = make_model(n_classes=3)
    seen = []
    predict = model.predict
    model.predict = lambda x_t, t, cond=None: (seen.append(cond), predict(x_t, t, cond))[1]
    objective = DiffusionLoss(cond_drop=0.25)
    x, y = data(500), torch.arange(500) % 3
    for seed in range(8):
        objective(model, (x, y), torch.Generator().manual_seed(seed))
    cond = torch.cat(seen)
    rate = float((cond == 3).double().mean())
    assert abs(rate - 0.25) < 4 * math.sqrt(0.25 * 0.75 / len(cond))
    kept = cond != 3
    assert torch.equal(cond[kept], y.repeat(8)[kept])


def test_batch_forms_give_the_same_loss():
    model = make_model(n_classes=2)
    x, y = data(), torch.arange(64) % 2
    losses = [float(DiffusionLoss()(model, b, torch.Generator().manual_seed(2)).loss.detach())
              for b in ((x, y), [x, y], {"x": x, "cond": y})]
    assert losses[0] == losses[1] == losses[2]
    unconditional = make_model()
    a = DiffusionLoss()(unconditional, x, torch.Generator().manual_seed(2)).loss
    b = DiffusionLoss()(unconditional, {"x": x}, torch.Generator().manual_seed(2)).loss
    assert torch.equal(a, b)


def test_importance_state_resumes_bit_exactly_through_the_training_checkpoint(tmp_path):
    x = MixtureTruth.example(2, seed=0).sample(256, 0).float()

    def train(name, steps):
        model = make_model("eps", True, T=20, D=2, seed=1)
        objective = DiffusionLoss("vlb", t_sampling="importance")
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        run = RunDir(tmp_path / name) if (tmp_path / name).exists() else RunDir.create("t", tmp_path / name)
        fit(model, objective, x, opt, TrainConfig(steps=steps, batch_size=64, progress=False), run=run)
        return model, objective

    whole, obj_whole = train("whole", 30)
    train("parts", 12)
    resumed, obj_resumed = train("parts", 30)
    assert obj_whole.sampler.warmed_up  # 30 × 64 draws over 20 steps: the importance weights were in use
    assert torch.equal(obj_whole.sampler.history, obj_resumed.sampler.history)
    for (name, p), q in zip(whole.named_parameters(), resumed.parameters()):
        assert torch.equal(p, q), name
    state = obj_whole.state_dict()
    fresh = DiffusionLoss("vlb", t_sampling="importance")
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.sampler.probabilities(), obj_whole.sampler.probabilities())
    assert DiffusionLoss().state_dict() == {}


def test_simple_loss_trains_a_denoiser_on_mixture_data():
    truth = MixtureTruth.example(2, seed=0)
    x = (truth.sample(2048, 0) / 3).float()
    model = make_model("eps", T=50, D=2, seed=2)
    objective = DiffusionLoss("simple")
    with torch.no_grad():
        before = float(torch.stack([objective(model, x, torch.Generator().manual_seed(s)).loss
                                    for s in range(3)]).mean())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    fit(model, objective, x, opt, TrainConfig(steps=150, batch_size=256, progress=False))
    with torch.no_grad():
        after = float(torch.stack([objective(model, x, torch.Generator().manual_seed(s)).loss
                                   for s in range(3)]).mean())
    assert after < 0.6 and after < 0.5 * before, (before, after)

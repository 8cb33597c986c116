"""Learning: the exact log-likelihood of a 64-16 RBM on binarised digits rises under CD, PCD and PT (seeded)."""

import math

import pytest
import torch

from kakusan.data import binarise, flatten, load
from kakusan.rbm import BernoulliRBM, GaussianRBM, SpinRBM
from kakusan.rbm.fit import RBMTrainConfig, evaluate, fit_rbm, lr_factor
from kakusan.rbm.negatives import ContrastiveDivergence, ParallelTempering, PersistentChains
from kakusan.rbm.objective import FreeEnergyContrast, pseudo_log_likelihood
from kakusan.report.run_dir import RunDir


@pytest.fixture(scope="module")
def digits():
    ds = load("digits")
    return binarise(flatten(ds.x_train)), binarise(flatten(ds.x_test))


def train(data, method, *, epochs=20, n_hidden=16, seed=0, **kw):
    x, xt = data
    model = BernoulliRBM(64, n_hidden, seed=seed, **{k: kw.pop(k) for k in ("centered",) if k in kw}).init_from_data(x)
    config = RBMTrainConfig(method=method, epochs=epochs, batch_size=50, lr=0.1, lr_schedule="linear",
                            weight_decay=0.0, n_chains=50, beta_min=0.3, seed=seed, progress=False, **kw)
    return model, fit_rbm(model, x, config, test=xt)


@pytest.fixture(scope="module")
def runs(digits):
    return {method: train(digits, method)[1] for method in ("cd", "pcd", "pt")}


@pytest.mark.parametrize("method", ["cd", "pcd", "pt"])
def test_exact_log_likelihood_rises(runs, method):
    ev = runs[method].evaluations
    assert all(e["kind"] == "exact" for e in ev) and len(ev) == 21  # before training and after each epoch
    first, last = ev[0], ev[-1]
    assert last["train_log_likelihood"] > first["train_log_likelihood"] + 3.0
    assert last["test_log_likelihood"] > first["test_log_likelihood"] + 3.0
    tail = [e["train_log_likelihood"] for e in ev[-5:]]
    assert max(tail) - min(tail) < 0.5  # settled under the decaying learning rate


def test_pt_reaches_the_pcd_likelihood(runs):
    pt, pcd = runs["pt"].evaluations[-1], runs["pcd"].evaluations[-1]
    assert pt["test_log_likelihood"] >= pcd["test_log_likelihood"] - 0.3
    swap = runs["pt"].train.history[-1]
    assert 0.05 < swap["swap_rate_min"] <= swap["swap_rate"] < 1.0  # the ladder mixes


def test_centered_training_rises_and_tracks_the_data_mean(digits):
    model, result = train(digits, "pcd", epochs=15, centered=True)
    ev = result.evaluations
    assert ev[-1]["test_log_likelihood"] > ev[0]["test_log_likelihood"] + 2.0
    assert float((model.visible_offset - digits[0].mean(0)).abs().max()) < 0.05


def test_negative_phases_return_detached_samples(digits):
    x = digits[0][:40]
    model = BernoulliRBM(64, 7, seed=1)
    g = torch.Generator().manual_seed(0)
    for neg, n in ((ContrastiveDivergence(2), 40), (PersistentChains(1, 13), 13),
                   (ParallelTempering(1, 11, n_temperatures=4, beta_min=0.2), 11)):
        out = neg(model, x, g)
        assert out.v.shape == (n, 64) and not out.v.requires_grad and set(out.v.unique().tolist()) <= {0.0, 1.0}
    assert {"swap_rate", "swap_rate_min"} <= set(out.metrics)


def test_objective_gradient_is_data_minus_model_statistics(digits):
    """For a plain Bernoulli RBM, ∂loss/∂W = −⟨v σ(a)ᵀ⟩_data + ⟨v σ(a)ᵀ⟩_neg (+ λW)."""
    x = digits[0][:30].double()
    model = BernoulliRBM(64, 5, seed=2, dtype="float64")
    neg = ContrastiveDivergence(1)
    out = FreeEnergyContrast(neg, weight_decay=0.01, proxy_rows=0)(model, x, torch.Generator().manual_seed(3))
    out.loss.backward()
    v_neg = neg(model, x, torch.Generator().manual_seed(3)).v
    with torch.no_grad():
        want = -(x.T @ model.hidden_prob(x)) / 30 + (v_neg.T @ model.hidden_prob(v_neg)) / 30 + 0.01 * model.W
    torch.testing.assert_close(model.W.grad, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method,centered", [("pcd", False), ("pcd", True), ("pt", False)])
def test_resume_continues_exactly(digits, tmp_path, method, centered):
    """Chains and pending centering offsets travel in the checkpoint: the resumed run is bit-identical."""
    x = digits[0][:500]
    config = dict(method=method, n_temperatures=4, batch_size=50, lr=0.05, weight_decay=1e-4, progress=False, eval_every=-1, seed=4)
    whole = BernoulliRBM(64, 9, seed=5, centered=centered).init_from_data(x)
    fit_rbm(whole, x, RBMTrainConfig(epochs=4, **config))
    run = RunDir.create("rbm", tmp_path / "run")
    first = BernoulliRBM(64, 9, seed=5, centered=centered).init_from_data(x)
    fit_rbm(first, x, RBMTrainConfig(epochs=2, **config), run=run)  # "killed" after 2 epochs
    assert not (run.checkpoints / "negatives.json").exists()  # one file holds optimizer, step and chains
    resumed = BernoulliRBM(64, 9, seed=99, centered=centered)  # parameters come from the checkpoint
    result = fit_rbm(resumed, x, RBMTrainConfig(epochs=4, **config), run=run)
    assert result.train.resumed_from == 20
    for name, p in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], p, rtol=0, atol=0)


def test_schedules_and_evaluation_fallback(digits):
    assert lr_factor("constant", 5, 10) == 1.0 and lr_factor("linear", 5, 10) == 0.5
    assert lr_factor("cosine", 10, 10) == pytest.approx(0.0, abs=1e-15)
    model = BernoulliRBM(64, 30, seed=6)  # 30 hidden > exact_limit: the pseudo-likelihood proxy
    out = evaluate(model, digits[0][:50], digits[1][:50], exact_limit=20, generator=torch.Generator().manual_seed(0))
    assert out["kind"] == "proxy" and math.isfinite(out["test_pseudo_log_likelihood"])
    pll = pseudo_log_likelihood(model, digits[0][:50], torch.Generator().manual_seed(0))
    assert pll.shape == (50,) and bool((pll <= 0).all())


def test_spin_and_gaussian_rbms_learn(digits):
    x, xt = digits
    spin = SpinRBM(64, 8, seed=7)
    s, st = 2 * x - 1, 2 * xt - 1
    spin.init_from_data(s)
    cfg = RBMTrainConfig(method="pcd", epochs=6, batch_size=50, lr=0.05, lr_schedule="linear", weight_decay=0.0,
                         progress=False, seed=7)
    ev = fit_rbm(spin, s, cfg, test=st).evaluations
    assert ev[-1]["test_log_likelihood"] > ev[0]["test_log_likelihood"] + 1.0
    ds = load("digits")
    real, real_t = flatten(ds.x_train), flatten(ds.x_test)
    keep = real.std(0) > 0.1  # constant pixels would let a learned variance collapse to 0 (unbounded density)
    mean, std = real.mean(0)[keep], real.std(0)[keep]
    z, zt = (real[:, keep] - mean) / std, (real_t[:, keep] - mean) / std
    for learn in (False, True):
        g = GaussianRBM(z.shape[1], 8, learn_variance=learn, seed=8).init_from_data(z)
        cfg = RBMTrainConfig(method="pcd", epochs=6, batch_size=50, lr=0.02, weight_decay=0.0, progress=False,
                             seed=8)
        ev = fit_rbm(g, z, cfg, test=zt).evaluations
        assert ev[-1]["kind"] == "exact" and ev[-1]["test_log_likelihood"] > ev[0]["test_log_likelihood"] + 2.0


def test_pseudo_log_likelihood_with_every_unit_flipped_is_exact():
    model = BernoulliRBM(7, 3, dtype="float64", weight_std=1.0, seed=9)
    v = torch.bernoulli(torch.full((5, 7), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    want = torch.zeros(5, dtype=torch.float64)
    with torch.no_grad():
        for i in range(7):
            flipped = v.clone()
            flipped[:, i] = 1 - flipped[:, i]
            want += torch.nn.functional.logsigmoid(model.free_energy(flipped) - model.free_energy(v))
    torch.testing.assert_close(pseudo_log_likelihood(model, v, n_flips=7), want, rtol=0, atol=1e-12)

"""AIS (forward and reverse) against exact log Z, for random and trained RBMs (seeded)."""

import math

import pytest
import torch

from kakusan.data import binarise, flatten, load
from kakusan.errors import KakusanError
from kakusan.rbm import BernoulliRBM, GaussianRBM, SpinRBM, exact
from kakusan.rbm.ais import AISInterval, ais, default_betas, reverse_ais, sandwich, scaled_betas
from kakusan.rbm.fit import RBMTrainConfig, fit_rbm

F64 = torch.float64


def digits_bits():
    ds = load("digits")
    return binarise(flatten(ds.x_train))


def random_model(cls, n_visible, n_hidden, seed, std, **kw):
    g = torch.Generator().manual_seed(seed)
    model = cls(n_visible, n_hidden, dtype="float64", weight_std=std, seed=seed, **kw)
    with torch.no_grad():
        model.b.normal_(0, 1.0, generator=g)
        model.c.normal_(0, 0.5, generator=g)
    return model


def agrees(est, truth, k=4.0, floor=0.01):
    """|log Ẑ − log Z| within k standard errors (plus a small floor for the AIS bias)."""
    return abs(est.log_z - truth) <= k * est.log_z_stderr + floor


def test_default_schedule_is_salakhutdinov_and_murrays():
    b = default_betas()
    assert len(b) == 14500 and float(b[0]) == 0.0 and float(b[-1]) == 1.0 and bool((b[1:] > b[:-1]).all())
    assert int((b < 0.5).sum()) == 500 and int(((b >= 0.5) & (b < 0.9)).sum()) == 4000
    with pytest.raises(KakusanError, match="0 to exactly 1"):
        ais(BernoulliRBM(3, 2), betas=torch.tensor([0.0, 0.5]))


def test_scaled_schedule_keeps_the_proportions():
    """``rbm evaluate --betas n``: the defaults at 14,500, default_betas(50, 400, 1000) at 1,450, n values."""
    assert torch.equal(scaled_betas(14500), default_betas())
    assert torch.equal(scaled_betas(1450), default_betas(50, 400, 1000))
    for n in (4, 5, 100, 777):
        b = scaled_betas(n)
        assert len(b) == n and float(b[0]) == 0.0 and float(b[-1]) == 1.0 and bool((b[1:] >= b[:-1]).all())
    assert torch.equal(scaled_betas(1), torch.tensor([0.0, 0.5, 0.9, 1.0], dtype=torch.float64))
    with pytest.raises(KakusanError, match="positive"):
        scaled_betas(0)
    with pytest.raises(KakusanError, match="n_high must be an integer ≥ 2"):
        default_betas(5, 5, 1)  # one β in [0.9, 1] would stop at 0.9


def test_zero_weights_need_no_annealing():
    """With W = 0 and the base rate equal to the model, every importance weight is exactly 1."""
    model = BernoulliRBM(6, 3, dtype="float64", weight_std=0.0)
    with torch.no_grad():
        model.b.copy_(torch.linspace(-1, 1, 6))
        model.c.copy_(torch.tensor([0.5, -0.3, 0.1]))
    base = model.base_rate(torch.sigmoid(model.b.detach())[None].expand(1000, -1).bernoulli(
        generator=torch.Generator().manual_seed(0)))
    base = type(base)(model.b.detach().clone(), base.units)
    est = ais(model, base, n_runs=10, betas=default_betas(5, 5, 5), generator=0)
    assert est.log_z == pytest.approx(exact.log_z(model), abs=1e-12) and est.log_z_stderr < 1e-12


def test_ais_is_reproducible_and_vectorised():
    model = random_model(BernoulliRBM, 13, 5, seed=1, std=0.5)
    a = ais(model, n_runs=7, betas=default_betas(10, 20, 30), generator=3)
    b = ais(model, n_runs=7, betas=default_betas(10, 20, 30), generator=3)
    assert torch.equal(a.log_w, b.log_w) and a.log_w.shape == (7,) and a.n_betas == 60 and 1 <= a.ess <= 7


@pytest.mark.parametrize("cls,kw,std", [(BernoulliRBM, {}, 0.3), (BernoulliRBM, {"centered": True}, 0.3),
                                        (SpinRBM, {}, 0.15), (GaussianRBM, {"learn_variance": True}, 0.2)],
                         ids=["bernoulli", "centered", "spin", "gaussian"])
def test_forward_and_reverse_agree_with_exact_on_random_models(cls, kw, std):
    model = random_model(cls, 29, 11, seed=2, std=std, **kw)
    truth = exact.log_z(model)
    betas = default_betas(50, 300, 650)
    fwd = ais(model, n_runs=100, betas=betas, generator=0)
    rev = reverse_ais(model, model.sample(100, 1, n_steps=200), betas=betas, generator=2)
    assert agrees(fwd, truth) and agrees(rev, truth), (truth, fwd.log_z, fwd.log_z_stderr, rev.log_z, rev.log_z_stderr)
    lo, hi = fwd.interval()
    assert lo < fwd.log_z < hi


@pytest.mark.slow
@pytest.mark.parametrize("n_hidden,kind", [(15, "trained"), (20, "trained"), (20, "random")])
def test_ais_with_default_schedule_on_random_and_trained_rbms(n_hidden, kind):
    """Salakhutdinov & Murray's check: 14,500 βs, 100 runs, against the exact log Z (15–20 hidden units)."""
    data = digits_bits()
    if kind == "trained":
        model = BernoulliRBM(64, n_hidden, seed=3).init_from_data(data)
        fit_rbm(model, data, RBMTrainConfig(method="pcd", epochs=15, batch_size=50, lr=0.1, eval_every=-1,
                                            progress=False, seed=3))
    else:
        model = random_model(BernoulliRBM, 64, n_hidden, seed=4, std=0.3)
    truth = exact.log_z(model)
    fwd = ais(model, data, n_runs=100, generator=5, dtype=F64)
    rev = reverse_ais(model, model.sample(100, 6, n_steps=2000, v0=data[:100]), data, generator=7, dtype=F64)
    assert agrees(fwd, truth), (truth, fwd.log_z, fwd.log_z_stderr)
    assert agrees(rev, truth), (truth, rev.log_z, rev.log_z_stderr)
    assert math.isfinite(fwd.ess) and fwd.ess > 10


def test_forward_ais_keeps_its_runs_last_states():
    """``states`` are the visible states the runs ended in: with the two-point schedule (0, 1) no sweep is made,
    so they are the base model's draws; reverse AIS keeps none."""
    model = random_model(BernoulliRBM, 13, 5, seed=1, std=0.5)
    est = ais(model, n_runs=9, betas=torch.tensor([0.0, 1.0], dtype=F64), generator=4)
    from kakusan.rbm.ais import resolve_base

    base = resolve_base(model, None)
    assert torch.equal(est.states, base.sample(9, torch.Generator().manual_seed(4), model.dtype))
    rev = reverse_ais(model, est.states, betas=default_betas(3, 3, 3), generator=0)
    assert rev.states is None


def test_the_last_states_of_a_slow_anneal_are_close_to_model_samples():
    """After 1,000 βs the runs' last states follow the model closely: their mean matches E_q[v] by enumeration
    within 4 standard errors, unit by unit (2,000 runs of a 12-6 RBM with strong weights)."""
    model = random_model(BernoulliRBM, 12, 6, seed=5, std=1.0)
    est = ais(model, n_runs=2000, betas=default_betas(100, 300, 600), generator=6)
    import itertools

    v = torch.tensor(list(itertools.product([0.0, 1.0], repeat=12)), dtype=F64)
    p = model.log_prob(v).exp()
    mean = p @ v
    se = (mean * (1 - mean) / 2000).sqrt()
    z = (est.states.mean(0) - mean) / se
    assert float(z.abs().max()) < 4, z


def test_the_forward_reverse_sandwich_holds_log_z_where_each_side_alone_does_not():
    """A short schedule (18 βs, 20 runs) on a 16-8 RBM with strong weights: each side's ±2 s.e. alone covers the
    exact log Z in only ~85 % of 300 independent pairs (biased and heavy-tailed), the interval [forward − 2 s.e.,
    reverse + 2 s.e.] in ≥ 93 %: forward errs low and reverse high, so each end fails only in one tail."""
    model = random_model(BernoulliRBM, 16, 8, seed=3, std=1.0)
    truth = exact.log_z(model)
    betas = default_betas(3, 5, 10)
    covered, forward_alone, reverse_alone, n = 0, 0, 0, 300
    for s in range(n):
        fwd = ais(model, n_runs=20, betas=betas, generator=s)
        rev = reverse_ais(model, exact.sample(model, 20, 1000 + s), betas=betas, generator=2000 + s)
        iv = sandwich(fwd, rev)
        covered += iv.low <= truth <= iv.high
        forward_alone += abs(fwd.log_z - truth) <= 2 * fwd.log_z_stderr
        reverse_alone += abs(rev.log_z - truth) <= 2 * rev.log_z_stderr
    assert covered / n >= 0.93, covered / n
    assert forward_alone / n <= 0.90 and reverse_alone / n <= 0.90, (forward_alone / n, reverse_alone / n)


def test_sandwich_ends_flags_and_errors():
    model = random_model(BernoulliRBM, 10, 4, seed=1, std=0.5)
    fwd = ais(model, n_runs=30, betas=default_betas(5, 10, 20), generator=0)
    rev = reverse_ais(model, exact.sample(model, 30, 1), betas=default_betas(5, 10, 20), generator=2)
    iv = sandwich(fwd, rev, k=3.0)
    assert iv == AISInterval(fwd.log_z - 3 * fwd.log_z_stderr, rev.log_z + 3 * rev.log_z_stderr, 3.0)
    assert iv.consistent and iv.shifted(-5.0) == (-5.0 - iv.high, -5.0 - iv.low)
    far = rev._replace(log_z=fwd.log_z - 10 * (fwd.log_z_stderr + rev.log_z_stderr) - 1)
    assert not sandwich(fwd, far).consistent  # the two disagree beyond their error bars
    with pytest.raises(KakusanError, match="forward and a reverse"):
        sandwich(rev, fwd)
    with pytest.raises(KakusanError, match="k must be"):
        sandwich(fwd, rev, k=-1.0)

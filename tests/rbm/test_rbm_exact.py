"""Exact log Z by enumerating one layer, against brute force over both layers (distinct prime sizes)."""

import itertools
import math
import time

import pytest
import torch
from scipy import integrate

from kakusan.errors import KakusanError
from kakusan.rbm import BernoulliRBM, GaussianRBM, SpinRBM, exact

F64 = torch.float64


def states(n, values):
    return torch.tensor(list(itertools.product(values, repeat=n)), dtype=F64).reshape(-1, n)


def random_model(cls, n_visible, n_hidden, seed=0, std=0.8, **kwargs):
    g = torch.Generator().manual_seed(seed)
    model = cls(n_visible, n_hidden, dtype="float64", weight_std=std, seed=seed, **kwargs)
    with torch.no_grad():
        model.b.normal_(0, 1.0, generator=g)
        model.c.normal_(0, 1.0, generator=g)
        if kwargs.get("centered"):
            model.visible_offset.uniform_(generator=g)
            model.hidden_offset.uniform_(generator=g)
    return model


def brute_log_z(model):
    vs, hs = states(model.n_visible, model.visible_units.values), states(model.n_hidden, model.hidden_units.values)
    with torch.no_grad():
        E = torch.stack([model.energy(vs, h.expand(len(vs), -1)) for h in hs])
    return float(torch.logsumexp(-E.reshape(-1), 0))


@pytest.mark.parametrize("cls,kw", [(BernoulliRBM, {}), (BernoulliRBM, {"centered": True}), (SpinRBM, {})],
                         ids=["bernoulli", "centered", "spin"])
@pytest.mark.parametrize("sizes", [(5, 3), (3, 5), (7, 2), (2, 7), (1, 1)])
def test_log_z_matches_brute_force_through_either_layer(cls, kw, sizes):
    model = random_model(cls, *sizes, **kw)
    want = brute_log_z(model)
    for layer in ("visible", "hidden", None):
        assert exact.log_z(model, layer) == pytest.approx(want, abs=1e-12)
    assert exact.log_z(model, chunk=5) == pytest.approx(want, abs=1e-12)  # many small chunks


def test_log_z_with_huge_fields_takes_the_exact_fallback():
    """Weights of size ~10 over 211 units underflow the grouped products; the softplus path must take over."""
    model = random_model(BernoulliRBM, 211, 6, seed=1, std=10.0)
    hs = states(6, (0.0, 1.0))
    with torch.no_grad():  # independent reference: sum the visible units out directly
        want = float(torch.logsumexp(-model.hidden_free_energy(hs), 0))
    assert exact.log_z(model, "hidden") == pytest.approx(want, abs=1e-9)
    assert exact.log_z(model, "hidden", chunk=64) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("cls", [BernoulliRBM, SpinRBM])
def test_exact_log_prob_is_normalised(cls):
    model = random_model(cls, 5, 3, seed=2).to(torch.float32)  # float32 models are evaluated in float64
    p = model.log_prob(states(5, model.visible_units.values)).exp()
    assert p.dtype == F64 and float(p.sum()) == pytest.approx(1.0, abs=1e-12)


def test_gaussian_log_z_by_quadrature():
    """Z = Σ_h ∫ exp(−E(v, h)) dv, the integral separating over the visible units given h."""
    model = random_model(GaussianRBM, 2, 3, seed=3, learn_variance=True)
    with torch.no_grad():
        model.log_var.copy_(torch.tensor([0.3, -0.5], dtype=F64))
    W, b, c, var = (t.detach() for t in (model.W, model.b, model.c, model.var))
    terms = []
    for h in states(3, (0.0, 1.0)):
        log_int = float(c @ h)
        for i in range(2):
            f = lambda x, i=i: math.exp(-((x - float(b[i])) ** 2) / (2 * float(var[i])) + x * float(W[i] @ h) / float(var[i]))
            log_int += math.log(integrate.quad(f, -50, 50, epsabs=0, epsrel=1e-13, limit=200)[0])
        terms.append(log_int)
    want = float(torch.logsumexp(torch.tensor(terms, dtype=F64), 0))
    assert exact.log_z(model) == pytest.approx(want, abs=1e-9)
    with pytest.raises(KakusanError, match="hidden layer"):
        exact.log_z(model, "visible")


def test_enumeration_form_reads_the_model():
    model = random_model(BernoulliRBM, 4, 3, seed=4, centered=True)
    form = exact.enumeration_form(model, "hidden")
    assert form.coupling.shape == (3, 4) and form.values == (0.0, 1.0)
    assert exact.smaller_layer(model) == "hidden"
    assert exact.smaller_layer(random_model(BernoulliRBM, 2, 3)) == "visible"
    assert exact.smaller_layer(GaussianRBM(2, 3)) == "hidden"


def test_too_many_units_is_refused():
    with pytest.raises(KakusanError, match="ais"):
        exact.log_z(BernoulliRBM(40, 40))


def test_784_visible_matches_the_direct_sum_over_hidden_states():
    model = BernoulliRBM(784, 11, weight_std=0.5, seed=5)
    with torch.no_grad():
        model.b.normal_(-1, 2, generator=torch.Generator().manual_seed(0))
        want = float(torch.logsumexp(-model.to_float64().hidden_free_energy(states(11, (0.0, 1.0))), 0))
    assert exact.log_z(model) == pytest.approx(want, abs=1e-9)


@pytest.mark.slow
def test_twenty_hidden_units_on_784_visible_in_a_few_cpu_seconds():
    """rbms takes ~30 s and 3 GB for this; the two-block grouped enumeration needs ~1–2 CPU-s and 2 MiB blocks."""
    model = BernoulliRBM(784, 20, weight_std=0.5, seed=5)
    with torch.no_grad():
        model.b.normal_(-1, 2, generator=torch.Generator().manual_seed(0))
    t0 = time.process_time()
    lz = exact.log_z(model)
    cpu = time.process_time() - t0
    assert cpu < 13.0, f"{cpu:.1f} CPU-s"
    assert math.isfinite(lz)


@pytest.mark.parametrize("cls,kw", [(BernoulliRBM, {}), (BernoulliRBM, {"centered": True}), (SpinRBM, {})],
                         ids=["bernoulli", "centered", "spin"])
def test_exact_samples_follow_the_exact_distribution(cls, kw):
    """Pearson χ² of 100,000 exact draws over all 2^6 visible states against exp(log_prob)."""
    from scipy import stats

    model = random_model(cls, 6, 4, seed=3, **kw)
    vs = states(6, model.visible_units.values)
    p = model.log_prob(vs).exp().numpy()
    x = exact.sample(model, 100_000, generator=0)
    lo = model.visible_units.lo
    index = ((x - lo) / (model.visible_units.hi - lo)).round().long() @ (2 ** torch.arange(5, -1, -1))
    counts = torch.bincount(index, minlength=64).numpy()
    chi2 = float(((counts - 1e5 * p) ** 2 / (1e5 * p)).sum())
    assert stats.chi2.sf(chi2, 63) > 1e-4
    # a negative control the test must catch: one Gibbs sweep from uniform is not the model
    y = model.sample(100_000, 0, n_steps=1)
    index = ((y - lo) / (model.visible_units.hi - lo)).round().long() @ (2 ** torch.arange(5, -1, -1))
    counts = torch.bincount(index, minlength=64).numpy()
    assert stats.chi2.sf(float(((counts - 1e5 * p) ** 2 / (1e5 * p)).sum()), 63) < 1e-6


def test_exact_samples_of_a_gaussian_rbm_have_the_exact_mean():
    model = random_model(GaussianRBM, 3, 5, seed=4, std=0.5)
    hs = states(5, (0.0, 1.0))
    with torch.no_grad():
        q = torch.softmax(-model.hidden_free_energy(hs), 0)
        want = (q[:, None] * model.visible_mean(hs)).sum(0)
    x = exact.sample(model, 200_000, generator=1)
    z = (x.mean(0) - want) / (x.std(0) / math.sqrt(len(x)))
    assert float(z.abs().max()) < 5


def test_exact_sampling_refuses_large_hidden_layers():
    with pytest.raises(KakusanError, match="model.sample"):
        exact.sample(BernoulliRBM(4, 30), 10)


def test_uncentered_model_has_the_same_distribution():
    model = random_model(BernoulliRBM, 5, 3, seed=6, centered=True)
    plain = model.uncentered()
    assert not plain.centered and plain.dtype == model.dtype
    vs = states(5, (0.0, 1.0))
    torch.testing.assert_close(plain.log_prob(vs), model.log_prob(vs), rtol=0, atol=1e-12)
    shift = float(model.visible_offset @ model.W.detach() @ model.hidden_offset)
    assert exact.log_z(model) == pytest.approx(exact.log_z(plain) + shift, abs=1e-12)

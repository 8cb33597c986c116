"""RBM energies, free energies and conditionals against brute force and autograd (exact tier, float64).

Sizes are distinct primes so that swapped axes fail.
"""

import itertools
import math

import pytest
import torch
from scipy import integrate

from kakusan.mcmc import BlockGibbs
from kakusan.rbm import BernoulliRBM, BinaryBase, GaussianBase, GaussianRBM, SpinRBM
from kakusan.checkpoint import load_model, save_model

F64 = torch.float64


def states(n, values):
    return torch.tensor(list(itertools.product(values, repeat=n)), dtype=F64).reshape(-1, n)


def random_model(cls, n_visible, n_hidden, seed=0, **kwargs):
    g = torch.Generator().manual_seed(seed)
    model = cls(n_visible, n_hidden, dtype="float64", weight_std=0.8, seed=seed, **kwargs)
    with torch.no_grad():
        model.b.normal_(0, 0.7, generator=g)
        model.c.normal_(0, 0.7, generator=g)
        if kwargs.get("centered"):
            model.visible_offset.uniform_(generator=g)
            model.hidden_offset.uniform_(generator=g)
        if cls is GaussianRBM:
            model.log_var.normal_(0, 0.4, generator=g)
    return model


BINARY = [(BernoulliRBM, {}), (BernoulliRBM, {"centered": True}), (SpinRBM, {})]
IDS = ["bernoulli", "centered", "spin"]


def joint_energies(model):
    """E(v, h) for every pair: (n_v states, n_h states), with the state tables."""
    vs, hs = states(model.n_visible, model.visible_units.values), states(model.n_hidden, model.hidden_units.values)
    v = vs.repeat_interleave(len(hs), 0)
    h = hs.repeat(len(vs), 1)
    with torch.no_grad():
        return model.energy(v, h).reshape(len(vs), len(hs)), vs, hs


@pytest.mark.parametrize("cls,kw", BINARY, ids=IDS)
@pytest.mark.parametrize("sizes", [(5, 3), (3, 5)])
def test_free_energies_match_brute_force(cls, kw, sizes):
    model = random_model(cls, *sizes, **kw)
    E, vs, hs = joint_energies(model)
    with torch.no_grad():
        for beta in (1.0, 0.7):
            torch.testing.assert_close(model.free_energy(vs, beta), -torch.logsumexp(-beta * E, 1), rtol=0, atol=1e-12)
            torch.testing.assert_close(model.hidden_free_energy(hs, beta), -torch.logsumexp(-beta * E, 0),
                                       rtol=0, atol=1e-12)
        beta = torch.linspace(0.2, 1.3, len(vs), dtype=F64)  # one β per row
        torch.testing.assert_close(model.free_energy(vs, beta), -torch.logsumexp(-beta[:, None] * E, 1),
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls,kw", BINARY, ids=IDS)
def test_conditionals_match_brute_force(cls, kw):
    model = random_model(cls, 5, 3, seed=1, **kw)
    E, vs, hs = joint_energies(model)
    hi_v, hi_h = model.visible_units.hi, model.hidden_units.hi
    for beta in (1.0, 0.6):
        p = torch.softmax(-beta * E, 1)  # p(h | v) for every v: (n_v states, n_h states)
        want_h = p @ (hs == hi_h).to(F64)  # P(h_j = on | v)
        q = torch.softmax(-beta * E, 0)  # p(v | h)
        want_v = q.T @ (vs == hi_v).to(F64)
        with torch.no_grad():
            torch.testing.assert_close(model.hidden_prob(vs, beta), want_h, rtol=0, atol=1e-12)
            torch.testing.assert_close(model.visible_prob(hs, beta), want_v, rtol=0, atol=1e-12)
            torch.testing.assert_close(model.hidden_mean(vs, beta), p @ hs, rtol=0, atol=1e-12)
            torch.testing.assert_close(model.visible_mean(hs, beta), q.T @ vs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls,kw", BINARY, ids=IDS)
def test_visible_conditional_on_the_ais_path(cls, kw):
    """p_β(v | h) ∝ q_A(v)^{1−β} exp(−βE(v, h)) for a base-rate model q_A."""
    model = random_model(cls, 3, 5, seed=2, **kw)
    E, vs, hs = joint_energies(model)
    base = BinaryBase(torch.tensor([0.3, -1.2, 0.8], dtype=F64), model.visible_units)
    beta = 0.35
    log_w = -(1 - beta) * base.energy(vs)[:, None] - beta * E  # (v, h)
    q = torch.softmax(log_w, 0)
    with torch.no_grad():
        got = model.visible_prob(hs, beta, base=base)
    torch.testing.assert_close(got, q.T @ (vs == model.visible_units.hi).to(F64), rtol=0, atol=1e-12)


def test_spin_rbm_is_the_bipartite_ising_model_of_block_gibbs():
    model = random_model(SpinRBM, 7, 3, seed=3)
    kernel = BlockGibbs.from_weights(model.W.detach(), model.b.detach(), model.c.detach())
    x = states(10, (-1.0, 1.0))[::7]
    with torch.no_grad():
        torch.testing.assert_close(model.energy(x[:, :7], x[:, 7:]), kernel.energy(x), rtol=0, atol=1e-12)


def test_centering_changes_the_parametrisation_not_the_distribution():
    model = random_model(BernoulliRBM, 5, 3, seed=4, centered=True)
    vs = states(5, (0.0, 1.0))
    before = model.log_prob(vs)
    model.update_offsets(torch.rand(5, dtype=F64), torch.rand(3, dtype=F64), rate=0.7)
    torch.testing.assert_close(model.log_prob(vs), before, rtol=0, atol=1e-12)
    assert abs(float(before.exp().sum()) - 1.0) < 1e-12


def test_centered_gradient_is_the_centered_statistics_difference():
    """∂F/∂W = −(v − μ)(σ(a) − λ)ᵀ, the centered form of Melchior et al."""
    model = random_model(BernoulliRBM, 5, 3, seed=5, centered=True)
    v = states(5, (0.0, 1.0))[[3, 17, 30]]
    model.free_energy(v).sum().backward()
    with torch.no_grad():
        want = -(v - model.visible_offset).T @ (model.hidden_prob(v) - model.hidden_offset)
    torch.testing.assert_close(model.W.grad, want, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- Gaussian visible units


def test_gaussian_conditionals_by_autograd_and_brute_force():
    model = random_model(GaussianRBM, 5, 3, seed=6, learn_variance=True)
    hs = states(3, (0.0, 1.0))
    v = torch.randn(4, 5, dtype=F64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean = model.visible_mean(hs)
    for h, m in zip(hs, mean):  # E(·, h) is a quadratic in v: its minimiser is the mean, its curvature 1/σ²
        x = m.clone().requires_grad_(True)
        grad, = torch.autograd.grad(model.energy(x[None], h[None]).sum(), x, create_graph=True)
        torch.testing.assert_close(grad, torch.zeros(5, dtype=F64), rtol=0, atol=1e-12)
        hess = torch.stack([torch.autograd.grad(grad[i], x, retain_graph=True)[0] for i in range(5)])
        torch.testing.assert_close(hess, torch.diag(torch.exp(-model.log_var.detach())), rtol=0, atol=1e-12)
    E = torch.stack([model.energy(v, h.expand(4, -1)) for h in hs], 1).detach()  # (4, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.free_energy(v), -torch.logsumexp(-E, 1), rtol=0, atol=1e-12)
        torch.testing.assert_close(model.hidden_prob(v), torch.softmax(-E, 1) @ hs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("beta", [1.0, 0.6])
def test_gaussian_hidden_free_energy_by_quadrature(beta):
    model = random_model(GaussianRBM, 3, 2, seed=7, learn_variance=True)
    W, b, c, var = (t.detach().double() for t in (model.W, model.b, model.c, model.var))
    for h in states(2, (0.0, 1.0)):
        log_int = beta * float(c @ h)  # E separates over visible units given h
        for i in range(3):
            def weight(x, i=i):
                return math.exp(-beta * ((x - float(b[i])) ** 2 / (2 * float(var[i])) - x * float(W[i] @ h) / float(var[i])))
            log_int += math.log(integrate.quad(weight, -40, 40, epsabs=0, epsrel=1e-13, limit=200)[0])
        with torch.no_grad():
            assert float(model.hidden_free_energy(h[None], beta)) == pytest.approx(-log_int, abs=1e-9)


def test_gaussian_path_moments_by_autograd():
    """On the AIS path the conditional of v is ∝ exp(−(1−β)E_A(v) − βE(v, h)): its mean minimises that."""
    model = random_model(GaussianRBM, 4, 3, seed=8, learn_variance=True)
    base = GaussianBase(torch.tensor([0.1, -0.4, 0.3, 0.0], dtype=F64), torch.tensor([0.5, 2.0, 1.0, 0.3], dtype=F64))
    h = torch.tensor([[1.0, 0.0, 1.0]], dtype=F64)
    beta = 0.3
    with torch.no_grad():
        mean, var = model._visible_moments(h, beta, base)
    x = mean[0].clone().requires_grad_(True)
    energy = (1 - beta) * base.energy(x[None]) + beta * model.energy(x[None], h)
    grad, = torch.autograd.grad(energy.sum(), x, create_graph=True)
    torch.testing.assert_close(grad, torch.zeros(4, dtype=F64), rtol=0, atol=1e-12)
    curvature = torch.stack([torch.autograd.grad(grad[i], x, retain_graph=True)[0][i] for i in range(4)])
    torch.testing.assert_close(curvature, 1.0 / var[0], rtol=1e-12, atol=0)


# ---------------------------------------------------------------- contracts


@pytest.mark.parametrize("cls,kw", [*BINARY, (GaussianRBM, {"learn_variance": True}), (GaussianRBM, {})],
                         ids=[*IDS, "gaussian-learned", "gaussian-fixed"])
def test_checkpoint_rebuilds_every_variant(cls, kw, tmp_path):
    model = random_model(cls, 5, 3, seed=9, **kw).to(torch.float32)
    save_model(tmp_path, model)
    loaded = load_model(tmp_path)
    assert type(loaded) is cls and loaded.config == model.config and loaded.dtype == torch.float32
    v = model.random_visible(6, 0)
    torch.testing.assert_close(loaded.free_energy(v), model.free_energy(v), rtol=0, atol=0)


def test_defaults_float32_and_seeded_sampling():
    model = BernoulliRBM(7, 5)
    assert model.dtype == torch.float32 and model.to_float64().dtype == F64
    a = model.sample(9, generator=3, n_steps=20)
    assert torch.equal(a, model.sample(9, generator=3, n_steps=20))
    assert a.shape == (9, 7) and set(a.unique().tolist()) <= {0.0, 1.0}
    s = SpinRBM(7, 5).sample(4, generator=0, n_steps=5)
    assert set(s.unique().tolist()) <= {-1.0, 1.0}
    assert torch.isfinite(GaussianRBM(7, 5, learn_variance=True).sample(4, generator=0, n_steps=5)).all()


def test_bad_shapes_are_refused_with_the_fix():
    from kakusan.errors import KakusanError

    with pytest.raises(KakusanError, match="flatten"):
        BernoulliRBM(7, 5).free_energy(torch.zeros(3, 8))
    with pytest.raises(KakusanError, match="positive integer"):
        BernoulliRBM(0, 5)


@pytest.mark.parametrize("centered", [False, True])
def test_sparse_visible_path_matches_the_dense_product(centered):
    """Sparse 0/1 batches (as binarised MNIST) take a zero-skipping path: same fields and gradients."""
    g = torch.Generator().manual_seed(10)
    model = BernoulliRBM(211, 37, weight_std=0.3, seed=10, centered=centered)
    v = (torch.rand(67, 211, generator=g) < 0.1).float()
    dense = model.to_float64()
    assert float(v.mean()) < 0.25
    model.free_energy(v).sum().backward()
    dense.free_energy(v.double()).sum().backward()
    with torch.no_grad():
        torch.testing.assert_close(model.hidden_field(v).double(), dense.hidden_field(v.double()), rtol=0, atol=1e-5)
    torch.testing.assert_close(model.W.grad.double(), dense.W.grad, rtol=0, atol=1e-4)
    torch.testing.assert_close(model.c.grad.double(), dense.c.grad, rtol=0, atol=1e-4)

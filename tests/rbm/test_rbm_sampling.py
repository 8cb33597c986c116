"""Block Gibbs for RBMs (kakusan.mcmc.bipartite): energies kept right, and the joint distribution reached.

The statistical tests are seeded: chi-squared of the joint state frequencies of many independent
chains against the exact q_β(v, h), with a negative control that must fail.
"""

import itertools

import pytest
import torch
from scipy import stats

from kakusan.mcmc import StepInfo, run_chain
from kakusan.mcmc.bipartite import BlockGibbs
from kakusan.mcmc.tempering import ReplicaExchange
from kakusan.rbm import BernoulliRBM, GaussianRBM, SpinRBM

F64 = torch.float64


def states(n, values):
    return torch.tensor(list(itertools.product(values, repeat=n)), dtype=F64).reshape(-1, n)


def small_model(cls=BernoulliRBM, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    model = cls(3, 2, weight_std=1.2, seed=seed, dtype="float64", **kw)
    with torch.no_grad():
        model.b.normal_(0, 0.8, generator=g)
        model.c.normal_(0, 0.8, generator=g)
    return model


def exact_joint(model, beta):
    vs, hs = states(model.n_visible, model.visible_units.values), states(model.n_hidden, model.hidden_units.values)
    x = torch.cat([vs.repeat_interleave(len(hs), 0), hs.repeat(len(vs), 1)], 1)
    with torch.no_grad():
        p = torch.softmax(-beta * model.energy(x[:, :3], x[:, 3:]), 0)
    return x, p


def chi_squared_p(model, kernel, beta, seed, n_chains=4000, n_steps=30):
    x_all, p = exact_joint(model, beta)
    v0 = model.random_visible(n_chains, seed)
    g = torch.Generator().manual_seed(seed + 1)
    state = run_chain(kernel, kernel.init(v0, beta, generator=g), n_steps, generator=g, observables={}).state
    lo, hi = model.visible_units.values
    bits = ((state.x - lo) / (hi - lo)).round().long()  # (n_chains, 5) in {0, 1}
    index = (bits * (2 ** torch.arange(4, -1, -1))).sum(1)
    ref = ((x_all - lo) / (hi - lo)).round().long() @ (2 ** torch.arange(4, -1, -1))
    counts = torch.bincount(index, minlength=32)[ref].double()
    return stats.chisquare(counts.numpy(), (p * n_chains).numpy()).pvalue


class SimultaneousGibbs(BlockGibbs):
    """WRONG ON PURPOSE (a negative control): draws v from the old h and h from the old v at once."""

    def step(self, state, generator=None):
        m = self.model
        v_old, h_old = self.visible(state).clone(), self.hidden(state).clone()
        self.visible(state).copy_(m.sample_visible(h_old, generator, beta=state.beta))
        self.hidden(state).copy_(m.sample_hidden(v_old, generator, beta=state.beta))
        return state, StepInfo(torch.ones(state.n_chains, dtype=F64))


@pytest.mark.parametrize("cls", [BernoulliRBM, SpinRBM])
@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_block_gibbs_reaches_the_exact_joint_distribution(cls, beta):
    model = small_model(cls, seed=1)
    p_values = [chi_squared_p(model, BlockGibbs(model), beta, seed) for seed in (0, 10, 20)]
    assert stats.combine_pvalues(p_values).pvalue > 1e-3, p_values


def test_negative_control_fails():
    model = small_model(BernoulliRBM, seed=1)
    p_values = [chi_squared_p(model, SimultaneousGibbs(model), 1.0, seed) for seed in (0, 10, 20)]
    assert stats.combine_pvalues(p_values).pvalue < 1e-6


@pytest.mark.parametrize("cls,kw", [(BernoulliRBM, {"centered": True}), (SpinRBM, {}),
                                    (GaussianRBM, {"learn_variance": True})])
def test_kernel_keeps_the_joint_energy_at_a_beta_per_chain(cls, kw):
    model = cls(7, 5, weight_std=0.5, seed=2, **kw)
    kernel = BlockGibbs(model)
    beta = torch.linspace(0.3, 1.0, 6, dtype=F64)
    state = kernel.init(model.random_visible(6, 0), beta, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        state, info = kernel.step(state, torch.Generator().manual_seed(1))
        with torch.no_grad():
            want = model.energy(kernel.visible(state), kernel.hidden(state)).double()
        torch.testing.assert_close(state.energy, want, rtol=1e-5, atol=1e-4)
        assert info.acceptance.shape == (6,) and bool(((info.acceptance >= 0) & (info.acceptance <= 1)).all())
    assert torch.equal(state.beta, beta)


def test_replica_exchange_wraps_the_kernel():
    model = small_model(BernoulliRBM, seed=3)
    pt = ReplicaExchange(BlockGibbs(model), torch.tensor([0.2, 0.6, 1.0], dtype=F64), n_systems=2000)
    g = torch.Generator().manual_seed(4)
    state = pt.init(BlockGibbs(model).init(model.random_visible(6000, g), 1.0, generator=g).x)
    for _ in range(30):
        state, _ = pt.step(state, g)
    x_all, p = exact_joint(model, 1.0)
    cold = state.at(2).x.round().long()  # the β = 1 replicas
    index = cold @ (2 ** torch.arange(4, -1, -1))
    counts = torch.bincount(index, minlength=32)[x_all.long() @ (2 ** torch.arange(4, -1, -1))].double()
    assert stats.chisquare(counts.numpy(), (p * 2000).numpy()).pvalue > 1e-4
    assert 0 < float(pt.stats(state).acceptance.min()) <= 1


def test_init_without_generator_is_deterministic_and_bad_shapes_refused():
    from kakusan.errors import KakusanError

    model = BernoulliRBM(7, 5, seed=3)
    kernel = BlockGibbs(model)
    v = model.random_visible(4, 0)
    assert torch.equal(kernel.init(v).x, kernel.init(v).x)
    with pytest.raises(KakusanError, match="n_chains"):
        kernel.init(torch.zeros(4, 6))

"""Persistent chains (kakusan.mcmc.persistent): one protocol for Boltzmann learning's estimators and RBM negatives.

Exact, not statistical: the protocol's checks, that both families implement it, and that chains saved with
``state_dict`` and restored with ``load_state_dict`` continue exactly where the uninterrupted run goes.
"""

import pytest
import torch

from kakusan.boltzmann import instances
from kakusan.errors import KakusanError
from kakusan.learn.base import MomentMatching
from kakusan.learn.pcd import PCDEstimator
from kakusan.learn.tempered import TemperedEstimator
from kakusan.mcmc import BlockGibbs, Metropolis
from kakusan.mcmc.persistent import PersistentSampler, TemperedSampler
from kakusan.rbm import BernoulliRBM
from kakusan.rbm.negatives import ContrastiveDivergence, ParallelTempering, PersistentChains

ESTIMATORS = {
    "pcd-heat-bath": lambda: PCDEstimator(n_chains=9, n_sweeps=2, burn_in=3),
    "pcd-metropolis": lambda: PCDEstimator(lambda m: Metropolis(m, order="random"), n_chains=9, n_sweeps=2),
    "pt": lambda: TemperedEstimator(n_systems=3, n_sweeps=2, n_replicas=4, burn_in=3),
}


def _stats_run(make, model, n_calls, *, restore_at=None):
    """Stats of ``n_calls`` calls; at call ``restore_at`` the estimator is rebuilt from its state_dict."""
    est, g, out = make(), torch.Generator().manual_seed(0), []
    for i in range(n_calls):
        if i == restore_at:
            saved = {k: v.clone() for k, v in est.state_dict().items()}
            est = make()
            est.load_state_dict(saved)
        with torch.no_grad():
            model.h.mul_(0.9)  # the parameters move between calls
        s = est.model_stats(model, g)
        out.append(torch.cat([s.mean, s.corr.reshape(-1)]))
    return torch.stack(out)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_ising_estimators_resume_their_chains_exactly(name):
    model = instances.sherrington_kirkpatrick(7, beta=0.8, field_std=0.5, seed=1)
    whole = _stats_run(ESTIMATORS[name], model, 6)
    model = instances.sherrington_kirkpatrick(7, beta=0.8, field_std=0.5, seed=1)
    resumed = _stats_run(ESTIMATORS[name], model, 6, restore_at=3)
    torch.testing.assert_close(resumed, whole, rtol=0, atol=0)


def test_moment_matching_hands_the_chains_to_the_checkpoint(gen):
    est = PCDEstimator(n_chains=5, n_sweeps=1)
    objective = MomentMatching(est)
    assert objective.state_dict() == {}
    est.model_stats(instances.curie_weiss(4, beta=0.5), gen)
    saved = objective.state_dict()
    assert set(saved) == {"estimator.x"} and saved["estimator.x"].is_contiguous()
    other = MomentMatching(PCDEstimator(n_chains=5, n_sweeps=1))
    other.load_state_dict(saved)
    assert torch.equal(other.estimator.state.x, est.state.x)


def test_one_protocol_for_both_families():
    for sampler in (PCDEstimator(), PersistentChains()):
        assert isinstance(sampler, PersistentSampler)
    for sampler in (TemperedEstimator(), ParallelTempering()):
        assert isinstance(sampler, TemperedSampler)
    assert ContrastiveDivergence().state_dict() == {}


def test_rbm_negatives_keep_their_chains_across_a_reload():
    x = (torch.rand(40, 12, generator=torch.Generator().manual_seed(0)) < 0.4).to(torch.float32)
    for make in (lambda: PersistentChains(2, 6), lambda: ParallelTempering(1, 5, n_temperatures=3, beta_min=0.2)):
        runs = []
        for reload in (False, True):
            model, neg, g, out = BernoulliRBM(12, 4, seed=2), make(), torch.Generator().manual_seed(1), []
            for i in range(5):
                if reload and i == 2:
                    saved = neg.state_dict()
                    neg = make()
                    neg.load_state_dict(saved)
                out.append(neg(model, x[8 * i: 8 * i + 8], g).v)
            runs.append(torch.stack(out))
        assert torch.equal(runs[0], runs[1])


def test_block_gibbs_chains_are_not_reinitialised():
    """A kernel that computes E afresh at every step (block Gibbs) keeps its state object across calls."""
    est = PCDEstimator(lambda m: BlockGibbs(m), n_chains=4, n_sweeps=1)
    model = instances.ferromagnet_2d(4)
    g = torch.Generator().manual_seed(0)
    est.model_stats(model, g)
    first = est.state.x
    est.model_stats(model, g)
    assert est.state.x is first  # advanced in place, not copied by kernel.init


def test_the_protocol_checks_its_arguments():
    with pytest.raises(KakusanError, match="n_sweeps"):
        PCDEstimator(n_sweeps=0)
    with pytest.raises(KakusanError, match="burn_in"):
        PersistentSampler(4, 1, burn_in=-1)
    with pytest.raises(KakusanError, match="n_sweeps"):
        TemperedEstimator(n_sweeps=0)
    with pytest.raises(KakusanError, match="end at β = 1"):
        TemperedSampler([0.2, 0.5])
    with pytest.raises(KakusanError, match="k \\(Gibbs sweeps"):
        ParallelTempering(0)
    with pytest.raises(KakusanError, match="strictly increasing"):
        ParallelTempering(betas=torch.tensor([0.5, 0.5, 1.0]))
    with pytest.raises(KakusanError, match="draw samples first"):
        TemperedSampler([0.5, 1.0]).swap_stats()


# ---------------------------------------------------------------- the generator follows the chains' device


def test_make_generator_passes_a_generator_on_the_right_device_through():
    from kakusan.runtime import make_generator

    g = torch.Generator().manual_seed(0)
    assert make_generator(g) is g and make_generator(g, "cpu") is g and make_generator(g, torch.device("cpu")) is g
    assert make_generator(3).device == torch.device("cpu")
    assert torch.equal(torch.rand(4, generator=make_generator(3)), torch.rand(4, generator=make_generator(3)))


@pytest.mark.requires("gpu")
def test_a_cpu_generator_drives_chains_on_a_gpu_deterministically():
    """A CPU training generator derives a device generator (one draw from it): the same seed, the same chains."""
    from kakusan.runtime import make_generator

    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    ga, gb = make_generator(a, "cuda"), make_generator(b, "cuda")
    assert ga.device.type == "cuda" and make_generator(ga, "cuda") is ga
    assert torch.equal(torch.rand(3, generator=ga, device="cuda"), torch.rand(3, generator=gb, device="cuda"))
    model = instances.sherrington_kirkpatrick(6, seed=0).to("cuda")
    runs = []
    for _ in range(2):
        est, g = PCDEstimator(lambda m: Metropolis(m, backend="torch"), n_chains=8, n_sweeps=2), torch.Generator()
        g.manual_seed(1)
        runs.append(torch.stack([est.model_stats(model, g).mean for _ in range(3)]))
    assert torch.equal(runs[0], runs[1])
    rbm = BernoulliRBM(6, 3, seed=0).to("cuda")
    kernel, g = BlockGibbs(rbm), torch.Generator().manual_seed(2)
    state, _ = kernel.step(kernel.init(rbm.random_visible(4, 0), generator=g), g)
    assert state.x.device.type == "cuda"

"""Monte Carlo statistics estimators for learning: persistent chains (PCD) and persistent replica exchange (PT).

Fast: the estimators see parameter changes, return Stats of the right shapes, plug into fit_boltzmann.
Slow (seeded): on N = 12 their learned couplings match the exact learner's within the Monte Carlo noise
(iterates averaged over the second half, as Polyak averaging does); on an SK model with N = 64 — too many
spins to enumerate — they recover the couplings from the model's own samples, drawn by replica exchange.
"""

import pytest
import torch

from kakusan.boltzmann import IsingModel, exact, instances
from kakusan.errors import KakusanError
from kakusan.learn import ESTIMATORS, fit_boltzmann, make_estimator
from kakusan.learn.base import MomentMatching, Stats
from kakusan.learn.pcd import PCDEstimator, kernel_factory
from kakusan.learn.tempered import TemperedEstimator
from kakusan.mcmc import HeatBath, Metropolis, random_spins
from kakusan.mcmc.ladders import geometric_ladder
from kakusan.mcmc.tempering import ReplicaExchange, run_tempering
from kakusan.train import TrainConfig, fit

F64 = torch.float64


def _estimators():
    return [PCDEstimator(n_chains=128, n_sweeps=3), TemperedEstimator(n_systems=32, n_sweeps=3, n_replicas=4)]


@pytest.mark.parametrize("estimator", _estimators(), ids=["pcd", "pt"])
def test_the_kernel_sees_the_current_parameters(estimator, gen):
    """Strong fields h = ±3 flip sign between two calls: the chains follow at once."""
    model = IsingModel(5)
    with torch.no_grad():
        model.h.fill_(3.0)
    up = estimator.model_stats(model, gen)
    with torch.no_grad():
        model.h.fill_(-3.0)
    down = estimator.model_stats(model, gen)
    t = float(torch.tanh(torch.tensor(3.0)))
    assert up.mean.shape == (5,) and up.corr.shape == (5, 5)
    assert float(up.mean.min()) > t - 0.05 and float(down.mean.max()) < -t + 0.05
    torch.testing.assert_close(torch.diagonal(down.corr), torch.ones(5, dtype=F64))


@pytest.mark.parametrize("estimator", _estimators(), ids=["pcd", "pt"])
def test_statistics_agree_with_enumeration(estimator, gen):
    model = instances.sherrington_kirkpatrick(7, beta=0.8, field_std=0.4, seed=3)
    ex = exact.exact_stats(model)
    stats = [estimator.model_stats(model, gen) for _ in range(60)]
    mean = torch.stack([s.mean for s in stats]).mean(0)
    corr = torch.stack([s.corr for s in stats]).mean(0)
    assert float((mean - ex.mean).abs().max()) < 0.05
    assert float((corr - ex.corr).abs().max()) < 0.05


def test_tempered_estimator_reports_swaps_and_checks_its_ladder(gen):
    est = TemperedEstimator(n_systems=4, n_sweeps=5, betas=[0.2, 0.5, 1.0])
    with pytest.raises(KakusanError, match="model_stats"):
        est.swap_stats()
    est.model_stats(instances.curie_weiss(6, beta=0.5), gen)
    assert est.swap_stats().acceptance.shape == (2,)
    with pytest.raises(KakusanError, match="end at β = 1"):
        TemperedEstimator(betas=[0.2, 0.5])


def test_registry_options_and_optimizer_defaults():
    assert {"exact", "pcd", "pt"} <= set(ESTIMATORS)
    pcd = make_estimator("pcd", n_chains=64, n_sweeps=3, sampler="metropolis")
    assert (pcd.n_chains, pcd.n_sweeps) == (64, 3)
    assert isinstance(pcd.kernel_factory(instances.curie_weiss(4)), Metropolis)
    assert isinstance(kernel_factory("gibbs")(instances.curie_weiss(4)), HeatBath)
    assert make_estimator("pt", n_systems=8, n_replicas=5).betas.shape == (5,)
    with pytest.raises(KakusanError, match="no option"):
        make_estimator("pcd", n_replicas=4)
    with pytest.raises(KakusanError, match="unknown sampler"):
        make_estimator("pcd", sampler="hmc")
    data = instances.curie_weiss(4, beta=0.5).sample(200, generator=0)
    with pytest.raises(KakusanError, match="backtracking"):
        fit_boltzmann(data, method="pcd", optimizer="backtracking", steps=2, progress=False)
    model, result = fit_boltzmann(data, method="pcd", steps=5, progress=False, options={"n_chains": 32})
    assert len(result.history) == 5 and "moment_error" in result.history[-1]


# ---------------------------------------------------------------- learning (slow)


def _averaged_fit(estimator, data, n, steps, lr, seed=0):
    """Adam on the moment-matching objective; the couplings averaged over the second half of the steps."""
    model = IsingModel(n)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    total = {"J": torch.zeros(n, n, dtype=F64), "h": torch.zeros(n, dtype=F64), "k": 0}

    def average(step, _):
        if step > steps // 2:
            total["J"] += model.couplings().detach()
            total["h"] += model.h.detach()
            total["k"] += 1

    fit(model, MomentMatching(estimator), data, opt, TrainConfig(steps=steps, progress=False, seed=seed),
        callback=average)
    return total["J"] / total["k"], total["h"] / total["k"]


def _relative_error(J, truth):
    k, l = torch.triu_indices(len(J), len(J), 1)
    return float((J[k, l] - truth[k, l]).norm() / truth[k, l].norm())


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pcd", "pt"])
def test_monte_carlo_learner_matches_the_exact_learner(method):
    truth = instances.sherrington_kirkpatrick(12, beta=0.8, field_std=0.3, seed=1)
    data = truth.sample(4000, generator=2)
    exact_model, _ = fit_boltzmann(data, steps=300, progress=False)
    J_ex, h_ex = exact_model.couplings().detach(), exact_model.h.detach()
    chains = 256 if method == "pcd" else 64  # chains at β = 1 (PT: one per system)
    estimator = PCDEstimator(n_chains=chains, n_sweeps=2, burn_in=50) if method == "pcd" else \
        TemperedEstimator(n_systems=chains, n_sweeps=2, burn_in=50)
    J, h = _averaged_fit(estimator, Stats.of(data), 12, steps=800, lr=0.01)
    # The averaged iterates keep Monte Carlo noise ∝ 1/√chains: ~0.02 per coupling with 256 chains at β = 1.
    # (The exact learner itself is ~15 % from the truth with these 4000 samples.)
    tol = 0.6 / chains**0.5
    assert float((J - J_ex).abs().max()) < tol
    assert float((h - h_ex).abs().max()) < tol
    assert _relative_error(J, J_ex) < 1.3 * tol


@pytest.mark.slow
def test_pcd_recovers_a_64_spin_glass_from_its_own_samples():
    """SK, N = 64, β = 0.8: 32 000 samples from a replica-exchange run; PCD learns J within ~15 %, which is
    the finite-data error (it falls as 1/√M, see benchmarks/results_tempering.md)."""
    n = 64
    truth = instances.sherrington_kirkpatrick(n, beta=0.8, field_std=0.3, seed=1)
    pt = ReplicaExchange(HeatBath(truth), geometric_ladder(0.3, 1.0, 8), n_systems=16)
    trace = run_tempering(pt, pt.init(random_spins(pt.n_chains, n, generator=0)), 10000, burn_in=1000, thin=5,
                          generator=1, observables=("x",))
    data = Stats.of(trace["x"][:, :, -1].reshape(-1, n))
    J, _ = _averaged_fit(PCDEstimator(n_chains=256, n_sweeps=2, burn_in=50), data, n, steps=800, lr=0.01)
    assert _relative_error(J, truth.couplings().detach()) < 0.2

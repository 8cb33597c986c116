"""Statistical tests of replica exchange against exact enumeration, with negative controls (seeded, slow).

* every temperature of a PT run samples q_β: ⟨E⟩, ⟨x_k⟩, ⟨x_k x_l⟩ within 5 MCSE of enumeration, where a
  PT that swaps without the Metropolis rule fails;
* the measured round-trip rate matches the theory for even–odd swaps when the kernel draws exact
  independent samples (Syed et al. 2022): a check of the round-trip counting;
* a single heat-bath chain at low temperature is stuck (R-hat ≫ 1, wrong P(m)) where PT is right;
* the adaptive ladder equalises the swap acceptance of a real spin glass, never losing a pair.
"""

import numpy as np
import pytest
import torch

from kakusan.boltzmann import exact, instances
from kakusan.mcmc import ChainState, HeatBath, SpinGraph, StepInfo, as_beta, diagnostics, random_spins, run_chain
from kakusan.mcmc.ladders import adapt_ladder, geometric_ladder, ladder_log_z
from kakusan.mcmc.swaps import chain_betas
from kakusan.mcmc.tempering import ReplicaExchange, nonreversible_round_trip_rate
from kakusan.mcmc.tempering import run_tempering

F64 = torch.float64
Z_MAX = 5.0
pytestmark = pytest.mark.slow


class BlindSwaps(ReplicaExchange):
    """WRONG ON PURPOSE — a negative control: swaps every even–odd pair whatever the energies."""

    def step(self, state, generator=None):
        state, info = super().step(state, generator)  # counts and labels as usual; then overwrite the swaps
        rep = state.replica.numpy()
        lo = np.arange(state.step % 2, self.n_replicas - 1, 2)
        rep[:, lo], rep[:, lo + 1] = rep[:, lo + 1].copy(), rep[:, lo].copy()
        chains = state.chains.with_beta(chain_betas(state.betas, state.replica))
        return type(state)(**{**state.__dict__, "chains": chains}), info


def z_scores_per_temperature(cls, model, betas, seed=0, n_steps=3000):
    """(estimate − exact)/MCSE for E, ⟨x_k⟩, ⟨x_k x_l⟩ at every temperature: (R, n_observables)."""
    n = model.n_visible
    pt = cls(HeatBath(model), betas, n_systems=8)
    trace = run_tempering(pt, pt.init(random_spins(pt.n_chains, n, generator=seed)), n_steps, burn_in=200,
                          generator=seed + 1, observables=("energy", "x"))
    k, l = torch.triu_indices(n, n, 1)
    out = []
    for t, b in enumerate(betas.tolist()):
        x = trace["x"][:, :, t].to(F64)  # (steps, systems, N)
        obs = torch.cat([trace.energy[:, :, t, None], x, x[..., k] * x[..., l]], -1)
        ex = exact.exact_stats(model, beta=b)
        truth = torch.cat([torch.tensor([ex.energy_mean]), ex.mean, ex.corr[k, l]])
        est = diagnostics.estimate(obs)
        out.append((est.mean - truth) / est.error.clamp(min=1e-12))
    return torch.stack(out)


def test_every_temperature_samples_its_boltzmann_distribution():
    model = instances.sherrington_kirkpatrick(7, beta=1.0, field_std=0.4, seed=11)
    betas = torch.tensor([0.3, 0.7, 1.2, 2.0], dtype=F64)
    z = z_scores_per_temperature(ReplicaExchange, model, betas)
    assert z.abs().max() < Z_MAX, f"max |z| = {z.abs().max():.2f}"
    bad = z_scores_per_temperature(BlindSwaps, model, betas)
    assert bad.abs().max() > 3 * Z_MAX, "the negative control passed: the test cannot see a wrong swap rule"


class ExactDraws:
    """A kernel that replaces each chain by an exact independent draw at its β (decorrelates fully)."""

    def __init__(self, model):
        self.graph = SpinGraph.from_model(model)
        self.states = exact.all_states(model.n_visible).to(F64)
        self.energies = self.graph.energy(self.states)

    def init(self, x0, beta=1.0):
        x = x0.to(F64).clone()
        return ChainState(x, as_beta(beta, len(x)), self.graph.energy(x))

    def step(self, state, generator=None):
        p = torch.softmax(-state.beta[:, None] * self.energies, 1)  # (chains, 2^N)
        i = torch.multinomial(p, 1, generator=generator).squeeze(1)
        state.x.copy_(self.states[i])
        state.energy.copy_(self.energies[i])
        return state, StepInfo(torch.ones(state.n_chains, dtype=F64))


def test_round_trip_rate_matches_even_odd_theory():
    model = instances.sherrington_kirkpatrick(8, field_std=0.3, seed=0)
    pt = ReplicaExchange(ExactDraws(model), torch.linspace(0.0, 2.0, 6, dtype=F64), n_systems=16)
    trace = run_tempering(pt, pt.init(random_spins(pt.n_chains, 8, generator=0)), 3000, burn_in=50, generator=1,
                          observables=())
    s = trace.stats
    measured = s.round_trips / (s.n_steps * 16)  # round trips per swap round, per system
    theory = nonreversible_round_trip_rate(s.acceptance)
    assert abs(measured / theory - 1) < 0.06, (measured, theory)


def _m_distance(m_trace, model):
    """Total variation distance between the histogram of m = (1/N) Σ x_k in a trace and the exact P(m)."""
    n = model.n_visible
    states = exact.all_states(n)
    p = torch.exp(exact.log_prob_all(model))
    values = torch.arange(-n, n + 1, 2, dtype=F64) / n
    m_states = states.to(F64).mean(1)
    truth = torch.stack([p[(m_states - v).abs() < 1e-9].sum() for v in values])
    freq = torch.stack([((m_trace - v).abs() < 1e-9).to(F64).mean() for v in values])
    return 0.5 * float((freq - truth).abs().sum())


def test_single_chain_is_stuck_where_replica_exchange_is_not():
    """SK, N = 16 at β = 3 (no field): P(m) is symmetric; 16 heat-bath chains stay near the states they find."""
    beta, n = 3.0, 16
    glass = instances.sherrington_kirkpatrick(n, beta=beta, seed=1)
    hb = HeatBath(glass)
    single = run_chain(hb, hb.init(random_spins(16, n, generator=0)), 2000, burn_in=200, generator=1)
    unit = instances.sherrington_kirkpatrick(n, beta=1.0, seed=1)  # the same couplings / β: run the ladder on it
    pt = ReplicaExchange(HeatBath(unit), geometric_ladder(0.1, beta, 12), n_systems=16)
    trace = run_tempering(pt, pt.init(random_spins(pt.n_chains, n, generator=0)), 2000, burn_in=200, generator=1,
                          observables=("energy", "magnetization"))
    m_pt, e_pt = trace["magnetization"][:, :, -1], trace.energy[:, :, -1] * beta
    assert float(diagnostics.rhat(single["magnetization"])) > 1.2
    assert float(diagnostics.rhat(m_pt)) < 1.05
    assert _m_distance(single["magnetization"], glass) > 3 * _m_distance(m_pt, glass)
    ess_single, ess_pt = (float(diagnostics.effective_sample_size(m)) for m in (single["magnetization"], m_pt))
    assert ess_pt / pt.n_replicas > 3 * ess_single  # more independent samples per sweep, counting every replica
    est = diagnostics.estimate(e_pt)
    assert abs(float(est.mean) - exact.exact_stats(glass).energy_mean) < Z_MAX * float(est.error)


def test_adaptive_ladder_equalises_swap_acceptance_on_a_spin_glass():
    model = instances.sherrington_kirkpatrick(64, seed=5)
    pt = ReplicaExchange(HeatBath(model), geometric_ladder(0.2, 2.5, 10), n_systems=4)
    state = pt.init(random_spins(pt.n_chains, 64, generator=0))
    before = run_tempering(pt, state, 1000, burn_in=200, generator=1, observables=()).stats.acceptance
    state, history = adapt_ladder(pt, state, rounds=8, steps=300, growth=1.3, generator=2)
    after = run_tempering(pt, state, 1000, generator=3, observables=()).stats.acceptance
    assert bool((history.acceptance > 0.05).all()), history.acceptance  # no round ever lost a pair
    assert float(after.max() - after.min()) < 0.5 * float(before.max() - before.min())
    assert float(after.min()) > float(before.min())
    b = history.betas
    assert bool((b[:, 0] == 0.2).all() and (b[:, -1] == 2.5).all() and (b.diff(dim=1) > 0).all())


def test_log_z_errors_are_calibrated_over_repeated_runs():
    """The error bars of log Z along the ladder (BAR and TI) are honest: over 16 short seeded runs the
    z-scores against enumeration have a root mean square near 1 (it would be ≈ 1.5 if the correlations
    between neighbouring temperatures were ignored)."""
    model = instances.sherrington_kirkpatrick(12, seed=1)
    betas = geometric_ladder(0.1, 2.5, 8)
    truth = exact.log_z(model, beta=2.5) - exact.log_z(model, beta=0.1)
    z = {"bar": [], "ti": []}
    for seed in range(16):
        pt = ReplicaExchange(HeatBath(model), betas, n_systems=8)
        trace = run_tempering(pt, pt.init(random_spins(pt.n_chains, 12, generator=seed)), 600, burn_in=100,
                              generator=seed + 100)
        for method in z:
            est = ladder_log_z(betas, trace.energy, log_z0=0.0, method=method)
            z[method].append(float((est.log_z[-1] - truth) / est.error[-1]))
    for method, values in z.items():
        rms = float(torch.tensor(values).pow(2).mean().sqrt())
        assert 0.5 < rms < 1.5, (method, values)

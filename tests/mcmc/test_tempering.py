"""Replica exchange: the swap rule, the bookkeeping, round trips, ladders and log Z (fast tests).

Exact checks run on scripted kernels (a kernel that never moves, so only swaps act); the
statistical checks here are small and seeded; longer ones live in test_tempering_statistical.py.
"""

import math

import pytest
import torch

from kakusan.boltzmann import exact, instances
from kakusan.errors import KakusanError
from kakusan.mcmc import BlockGibbs, ChainState, HeatBath, Metropolis, SpinGraph, StepInfo, as_beta, random_spins
from kakusan.mcmc import run_chain
from kakusan.mcmc.ladders import equalise_acceptance, gap_lengths, geometric_ladder, ladder_log_z
from kakusan.mcmc.tempering import ReplicaExchange, check_ladder, nonreversible_round_trip_rate
from kakusan.mcmc.tempering import run_tempering

F64 = torch.float64


class Frozen:
    """A kernel that never moves: only the swaps act. ``energies`` fixes E of each chain's configuration."""

    def __init__(self, energies):
        self.energies = torch.as_tensor(energies, dtype=F64)

    def init(self, x0, beta=1.0):
        x = torch.as_tensor(x0, dtype=F64).clone()
        return ChainState(x, as_beta(beta, len(x)), self.energies.clone())

    def step(self, state, generator=None):
        return state, StepInfo(torch.zeros(state.n_chains, dtype=F64))


def frozen_pt(energies, betas, n_systems=1):
    pt = ReplicaExchange(Frozen(torch.as_tensor(energies, dtype=F64).repeat(n_systems)), betas, n_systems=n_systems)
    return pt, pt.init(torch.ones(pt.n_chains, 3))


# ---------------------------------------------------------------- the swap rule and bookkeeping


@pytest.mark.parametrize("e_cold,e_hot", [(0.0, -2.0), (-2.0, 0.0), (1.5, 1.5)])
def test_swap_acceptance_is_min_one_exp_dbeta_de(e_cold, e_hot):
    """Replica 0 at β_0 = 0.5 has E = e_hot, replica 1 at β_1 = 1.5 has E = e_cold: one swap attempt each."""
    S = 20000
    pt, state = frozen_pt([e_hot, e_cold], [0.5, 1.5], n_systems=S)
    state, info = pt.step(state, torch.Generator().manual_seed(0))
    p = min(1.0, math.exp((0.5 - 1.5) * (e_hot - e_cold)))
    rate = float(info.swap_accepted.to(F64).mean())
    assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / S) + 1e-12
    assert info.swap_attempted.tolist() == [True]


def test_even_odd_pairs_alternate_and_betas_follow_the_replicas():
    pt, state = frozen_pt([0.0] * 6, geometric_ladder(0.1, 2.0, 6), n_systems=3)
    g = torch.Generator().manual_seed(1)
    for step in range(8):
        state, info = pt.step(state, g)
        assert info.swap_attempted.tolist() == [(t % 2) == (step % 2) for t in range(5)]
        assert bool(info.swap_accepted.all() == info.swap_attempted.all())  # equal energies: every swap accepted
        for s in range(3):
            for t in range(6):
                assert float(state.chains.beta[s * 6 + int(state.replica[s, t])]) == float(state.betas[t])
        assert torch.equal(state.beta, state.betas.repeat(3))
        assert torch.equal(torch.sort(state.replica, 1).values, torch.arange(6).repeat(3, 1))


def test_round_trips_of_a_deterministic_walk():
    """With every swap accepted each replica zig-zags through the ladder: one round trip per 2R steps."""
    R, n = 5, 400
    pt, state = frozen_pt([0.0] * R, geometric_ladder(0.1, 1.0, R))
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        state, _ = pt.step(state, g)
    stats = pt.stats(state)
    assert abs(stats.round_trips - n * R / (2 * R)) <= R  # 1/2 round trip per step, all replicas together
    assert stats.acceptance.tolist() == [1.0] * (R - 1) and stats.rejection_sum == 0.0
    assert nonreversible_round_trip_rate(stats.acceptance) == 0.5
    assert stats.round_trips_per_10k == pytest.approx(1e4 * stats.round_trips / n)
    up = stats.up_fraction
    assert float(up[0]) == 1.0 and float(up[-1]) == 0.0


def test_no_swap_is_accepted_across_an_impossible_gap():
    """The cold replica's E is lower by 1e4: exp(−Δβ ΔE) underflows, nothing moves, no round trips."""
    pt, state = frozen_pt([0.0, -1e4], [0.1, 1.0])
    state = run_tempering(pt, state, 50, generator=0).state
    stats = pt.stats(state)
    assert stats.acceptance.tolist() == [0.0] and stats.round_trips == 0
    assert state.replica.tolist() == [[0, 1]]


def test_run_chain_records_temperature_ordered_energies():
    model = instances.sherrington_kirkpatrick(11, field_std=0.3, seed=2)
    pt = ReplicaExchange(HeatBath(model), geometric_ladder(0.2, 1.5, 4), n_systems=2)
    state = pt.init(random_spins(pt.n_chains, 11, generator=0))
    trace = run_chain(pt, state, 30, generator=1, observables={"energy": lambda s: s.energy.clone(),
                                                               "x": lambda s: s.x.clone()})
    graph = SpinGraph.from_model(model)
    torch.testing.assert_close(trace["energy"][-1], graph.energy(trace["x"][-1]))
    torch.testing.assert_close(trace["x"][-1], trace.state.chains.x[trace.state.order])
    assert trace.acceptance.shape == (8,)


@pytest.mark.parametrize("kernel", ["metropolis_torch", "block_gibbs"])
def test_any_kernel_with_per_chain_beta(kernel):
    model = instances.edwards_anderson_2d(4, beta=1.0, seed=3)
    k = Metropolis(model, backend="torch") if kernel == "metropolis_torch" else BlockGibbs(model)
    pt = ReplicaExchange(k, [0.2, 0.5, 1.0], n_systems=2, sweeps=2)
    trace = run_tempering(pt, pt.init(random_spins(6, 16, generator=0)), 20, burn_in=5, generator=1)
    assert trace.energy.shape == (20, 2, 3)
    assert trace.stats.n_sweeps == 40
    torch.testing.assert_close(trace.state.energy, SpinGraph.from_model(model).energy(trace.state.x))


def test_set_ladder_moves_replicas_and_resets_counts():
    pt, state = frozen_pt([0.0] * 4, [0.1, 0.2, 0.4, 0.8])
    state = run_tempering(pt, state, 7, generator=0).state
    new = pt.set_ladder(state, [0.1, 0.3, 0.5, 0.8])
    assert int(new.n_attempted.sum()) == 0 and int(new.round_trips.sum()) == 0
    assert torch.equal(new.beta, torch.tensor([0.1, 0.3, 0.5, 0.8], dtype=F64))
    assert torch.equal(new.chains.beta[new.order], new.betas)


@pytest.mark.parametrize("betas,words", [([1.0], "at least 2"), ([0.5, 0.5], "strictly increasing"),
                                         ([-0.1, 1.0], "≥ 0"), ([0.1, float("inf")], "finite")])
def test_bad_ladders_are_one_line_errors(betas, words):
    with pytest.raises(KakusanError, match=words):
        check_ladder(betas)


def test_init_checks_the_number_of_rows():
    pt = ReplicaExchange(HeatBath(instances.curie_weiss(5)), [0.5, 1.0], n_systems=3)
    with pytest.raises(KakusanError, match="3 × 2 = 6 rows"):
        pt.init(random_spins(5, 5, generator=0))


# ---------------------------------------------------------------- ladders


def test_geometric_ladder():
    b = geometric_ladder(0.2, 3.0, 7)
    assert float(b[0]) == 0.2 and float(b[-1]) == 3.0
    torch.testing.assert_close(b[1:] / b[:-1], torch.full((6,), 15.0 ** (1 / 6), dtype=F64))


def test_gap_lengths_invert_the_gaussian_acceptance():
    x = torch.tensor([0.1, 0.8, 2.0], dtype=F64)
    torch.testing.assert_close(gap_lengths(torch.special.erfc(x / 2)), x)


def test_equalise_acceptance_keeps_ends_order_and_bounds():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        R = int(torch.randint(2, 20, (1,), generator=g))
        betas = torch.cumsum(torch.rand(R, generator=g, dtype=F64) + 1e-3, 0)
        acc = torch.rand(R - 1, generator=g, dtype=F64)
        acc[torch.rand(R - 1, generator=g) < 0.2] = 0.0
        acc[torch.rand(R - 1, generator=g) < 0.2] = 1.0
        new = equalise_acceptance(betas, acc, damping=float(torch.rand(1, generator=g)) + 1e-3, max_ratio=1.5)
        assert float(new[0]) == float(betas[0]) and float(new[-1]) == float(betas[-1])
        ratio = new.diff() / betas.diff()
        assert bool((ratio > 0).all()) and bool((ratio <= 1.5 + 1e-9).all()) and bool((ratio >= 1 / 1.5 - 1e-9).all())


def _gaussian_acceptance(betas, sigma):
    """Exact swap acceptance for Gaussian energies of width σ(β): erfc(∫σ dβ / 2) per gap (fine quadrature)."""
    out = []
    for a, b in zip(betas[:-1].tolist(), betas[1:].tolist()):
        grid = torch.linspace(a, b, 201, dtype=F64)
        out.append(float(torch.special.erfc(torch.trapezoid(sigma(grid), grid) / 2)))
    return torch.tensor(out, dtype=F64)


@pytest.mark.parametrize("height,width", [(0.0, 1.0), (20.0, 0.05), (60.0, 0.03), (200.0, 0.01)])
def test_equalise_acceptance_converges_without_ever_closing_a_gap(height, width):
    """σ_E(β) = 4 + a sharp peak at β = 1 (a 'transition'): from a geometric ladder the iteration reaches
    equal acceptance, and in no round does the worst pair fall below half the worst of the start, although the
    peak crosses gap boundaries (the update assumes a uniform density inside each gap)."""
    sigma = lambda b: 4.0 + height * torch.exp(-0.5 * ((b - 1.0) / width) ** 2)  # noqa: E731
    betas = geometric_ladder(0.2, 2.0, 16)
    acc = _gaussian_acceptance(betas, sigma)
    worst = float(acc.min())
    for _ in range(40):
        betas = equalise_acceptance(betas, acc, damping=0.5)
        acc = _gaussian_acceptance(betas, sigma)
        assert float(acc.min()) >= 0.5 * worst
    assert float(acc.max() - acc.min()) < 0.02
    assert float(acc.min()) > 0.4


# ---------------------------------------------------------------- log Z along the ladder


def test_log_z_along_the_ladder_matches_enumeration():
    model = instances.sherrington_kirkpatrick(10, field_std=0.5, seed=4)
    betas = torch.cat([torch.zeros(1, dtype=F64), geometric_ladder(0.1, 2.0, 9)])
    pt = ReplicaExchange(HeatBath(model), betas, n_systems=4)
    trace = run_tempering(pt, pt.init(random_spins(pt.n_chains, 10, generator=0)), 3000, burn_in=200, generator=1)
    truth = torch.tensor([exact.log_z(model, beta=float(b)) for b in betas], dtype=F64)
    for method in ("bar", "ti"):
        est = ladder_log_z(betas, trace.energy, log_z0=10 * math.log(2), method=method)
        z = (est.log_z[1:] - truth[1:]) / est.error[1:]
        assert float(z.abs().max()) < 4.0, (method, z)
        assert float(est.error[-1]) < 0.03
    bar_err, ti_err = (ladder_log_z(betas, trace.energy, log_z0=0.0, method=m).error[-1] for m in ("bar", "ti"))
    assert bar_err < ti_err  # BAR uses whole distributions, TI only their means and a quadrature


def test_clone_is_a_snapshot():
    pt, state = frozen_pt([0.0] * 4, [0.1, 0.2, 0.4, 0.8])
    snap = state.clone()
    state = run_tempering(pt, state, 5, generator=0).state
    assert snap.replica.tolist() == [[0, 1, 2, 3]] and int(snap.n_attempted.sum()) == 0
    assert state.replica.tolist() != snap.replica.tolist()

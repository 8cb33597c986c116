"""Statistical tests of every sampler against exact enumeration, with negative controls.

Each sampler's estimates of ⟨E⟩, the magnetisation, every ⟨x_k⟩ and every ⟨x_k x_l⟩ must agree
with exact enumeration within 5 σ, σ the Monte Carlo standard error from the measured τ_int
(Sokal window, autocovariance averaged over chains). A deliberately wrong sampler that updates all
spins at once from the old configuration must fail the same check. A chi-squared test compares
state frequencies with exact probabilities on four spins (three repeats, Fisher-combined).
All runs are seeded.
"""

import pytest
import torch
from scipy import stats

from kakusan.boltzmann import IsingModel, exact, instances
from kakusan.boltzmann.instances import lattice_bonds
from kakusan.mcmc import BlockGibbs, ChainState, HeatBath, Metropolis, SpinGraph, StepInfo, as_beta, diagnostics
from kakusan.mcmc import random_spins, run_chain

F64 = torch.float64
Z_MAX = 5.0


class SynchronousHeatBath:
    """WRONG ON PURPOSE — a negative control, never a sampler: draws every x_k from q(x_k | old x) at once.

    Updating coupled spins simultaneously from the old configuration does not leave q invariant.
    """

    def __init__(self, model):
        self.graph = SpinGraph.from_model(model)

    def init(self, x0, beta=1.0):
        x = x0.to(F64).clone()
        return ChainState(x, as_beta(beta, len(x)), self.graph.energy(x))

    def step(self, state, generator=None):
        p_up = torch.sigmoid(2.0 * state.beta[:, None] * self.graph.fields(state.x))
        new = torch.where(torch.rand(p_up.shape, generator=generator, dtype=F64) < p_up, 1.0, -1.0)
        changed = (new != state.x).to(F64).mean(1)
        state.x.copy_(new)
        state.energy.copy_(self.graph.energy(new))
        return state, StepInfo(changed)


# ---------------------------------------------------------------- models and the check


def sk12() -> IsingModel:
    return instances.sherrington_kirkpatrick(12, beta=1.0, field_std=0.3, seed=3)


def ea4() -> IsingModel:
    return instances.edwards_anderson_2d(4, beta=0.8, field_std=0.3, seed=5)


def z_scores(kernel, model, *, beta=1.0, n_chains=64, n_steps=1000, burn_in=100, seed=0) -> torch.Tensor:
    """(estimate − exact) / MCSE for E, magnetisation, each ⟨x_k⟩ and each ⟨x_k x_l⟩, k < l."""
    n = model.n_visible
    ex = exact.exact_stats(model, beta=beta)
    state = kernel.init(random_spins(n_chains, n, generator=seed), beta)
    trace = run_chain(kernel, state, n_steps, burn_in=burn_in, generator=seed + 1, observables=("energy", "x"))
    x = trace["x"].to(F64)  # (steps, chains, N)
    k, l = torch.triu_indices(n, n, 1)
    obs = torch.cat([trace["energy"][..., None], x.mean(-1, keepdim=True), x, x[..., k] * x[..., l]], -1)
    truth = torch.cat([torch.tensor([ex.energy_mean, float(ex.mean.mean())]), ex.mean, ex.corr[k, l]])
    est = diagnostics.estimate(obs)
    return (est.mean - truth) / est.error.clamp(min=1e-12)


SINGLE_SITE = [(cls, order, backend) for cls in (Metropolis, HeatBath) for order in ("sequential", "random")
               for backend in ("numba", "torch")]


@pytest.mark.slow
@pytest.mark.parametrize("cls,order,backend", SINGLE_SITE)
def test_single_site_agrees_with_exact_sk(cls, order, backend):
    model = sk12()
    z = z_scores(cls(model, order=order, backend=backend), model)
    assert z.abs().max() < Z_MAX, f"max |z| = {z.abs().max():.2f}"


@pytest.mark.slow
@pytest.mark.parametrize("cls,order,backend", SINGLE_SITE + [(cls, "checkerboard", backend) for cls in
                                                         (Metropolis, HeatBath) for backend in ("numba", "torch")])
def test_single_site_agrees_with_exact_lattice(cls, order, backend):
    model = ea4()
    z = z_scores(cls(model, order=order, backend=backend), model, seed=10)
    assert z.abs().max() < Z_MAX, f"max |z| = {z.abs().max():.2f}"


def test_heat_bath_checkerboard_agrees_with_exact_lattice():
    model = ea4()
    z = z_scores(HeatBath(model, order="checkerboard"), model, seed=20)
    assert z.abs().max() < Z_MAX, f"max |z| = {z.abs().max():.2f}"


def test_block_gibbs_agrees_with_exact_lattice():
    model = ea4()
    z = z_scores(BlockGibbs(model), model, seed=30)
    assert z.abs().max() < Z_MAX, f"max |z| = {z.abs().max():.2f}"


def test_block_gibbs_from_weights_agrees_with_exact_rbm():
    g = torch.Generator().manual_seed(7)
    n_v, n_h = 7, 5  # distinct primes, so swapped axes fail
    W, b, c = 0.5 * torch.randn(n_v, n_h, generator=g, dtype=F64), 0.3 * torch.randn(n_v, generator=g, dtype=F64), \
        0.3 * torch.randn(n_h, generator=g, dtype=F64)
    J = torch.zeros(n_v + n_h, n_v + n_h, dtype=F64)
    J[:n_v, n_v:] = W
    model = IsingModel.from_params(J + J.T, torch.cat([b, c]))
    z = z_scores(BlockGibbs.from_weights(W, b, c), model, seed=40)
    assert z.abs().max() < Z_MAX, f"max |z| = {z.abs().max():.2f}"


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_heat_bath_sequential_agrees_with_exact_sk(backend):
    model = sk12()
    z = z_scores(HeatBath(model, backend=backend), model, seed=50)
    assert z.abs().max() < Z_MAX, f"max |z| = {z.abs().max():.2f}"


@pytest.mark.parametrize("model_fn", [sk12, ea4])
def test_negative_control_fails_the_same_check(model_fn):
    model = model_fn()
    z = z_scores(SynchronousHeatBath(model), model, seed=60)
    assert z.abs().max() > 2 * Z_MAX, f"the broken sampler passed: max |z| = {z.abs().max():.2f}"


@pytest.mark.slow
@pytest.mark.parametrize("cls", [Metropolis, HeatBath])
def test_per_chain_beta_samples_each_temperature(cls):
    model = sk12()
    betas = torch.cat([torch.full((32,), 0.5, dtype=F64), torch.full((32,), 1.5, dtype=F64)])
    kernel = cls(model)
    trace = run_chain(kernel, kernel.init(random_spins(64, 12, generator=0), betas), 2000, burn_in=200, generator=1)
    for half, beta in ((slice(0, 32), 0.5), (slice(32, 64), 1.5)):
        est = diagnostics.estimate(trace["energy"][:, half])
        truth = exact.exact_stats(model, beta=beta).energy_mean
        assert abs(float(est.mean) - truth) < Z_MAX * float(est.error), (beta, float(est.mean), truth)


# ---------------------------------------------------------------- chi-squared on four spins


def four_spins(bipartite: bool, seed: int) -> IsingModel:
    """A 4-spin model: random dense couplings, or random couplings on a 4-cycle (bipartite)."""
    g = torch.Generator().manual_seed(seed)
    J = torch.zeros(4, 4, dtype=F64)
    if bipartite:
        k, l = lattice_bonds(2, periodic=False)  # the square 0-1-3-2
        J[k, l] = 0.8 * torch.randn(len(k), generator=g, dtype=F64)
    else:
        J = torch.triu(0.6 * torch.randn(4, 4, generator=g, dtype=F64), 1)
    return IsingModel.from_params(J + J.T, 0.4 * torch.randn(4, generator=g, dtype=F64))


def chi2_pvalue(kernel, model, seed: int, n_chains: int = 4000, n_sweeps: int = 25) -> float:
    """Pearson chi-squared of the final states of independent chains against exact probabilities."""
    state = kernel.init(random_spins(n_chains, 4, generator=seed))
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(n_sweeps):
        state, _ = kernel.step(state, g)
    counts = torch.bincount(exact.state_index(state.x), minlength=16).to(F64)
    expected = torch.exp(exact.log_prob_all(model)) * n_chains
    return float(stats.chisquare(counts.numpy(), expected.numpy() * counts.sum().item() / expected.sum().item()).pvalue)


def combined_pvalue(make_kernel, bipartite: bool) -> float:
    pvalues = []
    for rep in range(3):
        model = four_spins(bipartite, seed=rep)
        pvalues.append(max(chi2_pvalue(make_kernel(model), model, seed=100 + rep), 1e-300))
    return float(stats.combine_pvalues(pvalues, method="fisher").pvalue)


CHI2_KERNELS = {
    "metropolis-seq-numba": (lambda m: Metropolis(m, backend="numba"), False),
    "metropolis-random-torch": (lambda m: Metropolis(m, order="random", backend="torch"), False),
    "metropolis-checker-torch": (lambda m: Metropolis(m, order="checkerboard", backend="torch"), True),
    "heatbath-seq-torch": (lambda m: HeatBath(m, backend="torch"), False),
    "heatbath-random-numba": (lambda m: HeatBath(m, order="random", backend="numba"), False),
    "heatbath-checker-numba": (lambda m: HeatBath(m, order="checkerboard", backend="numba"), True),
    "block-gibbs": (lambda m: BlockGibbs(m), True),
}


@pytest.mark.parametrize("name", list(CHI2_KERNELS))
def test_chi_squared_four_spins(name):
    make_kernel, bipartite = CHI2_KERNELS[name]
    assert combined_pvalue(make_kernel, bipartite) > 1e-3


def test_chi_squared_rejects_negative_control():
    assert combined_pvalue(SynchronousHeatBath, False) < 1e-6

"""Exact and contract tests of the MCMC kernels, the chain state and the driver (no statistics)."""

import numpy as np
import pytest
import torch

from kakusan.boltzmann import IsingModel, instances
from kakusan.errors import KakusanError
from kakusan.mcmc import (
    BlockGibbs,
    ChainState,
    HeatBath,
    Kernel,
    Metropolis,
    SpinGraph,
    random_spins,
    run_chain,
)

F64 = torch.float64
ORDERS = ("sequential", "random", "checkerboard")


def lattice(side: int = 4) -> IsingModel:
    return instances.edwards_anderson_2d(side, beta=0.7, couplings="gaussian", field_std=0.2, seed=1)


def sk(n: int = 11) -> IsingModel:
    return instances.sherrington_kirkpatrick(n, beta=1.0, field_std=0.3, seed=2)


MODELS = {"lattice": lattice, "sk": sk}
CASES = [(m, cls, o, b) for m in MODELS for cls in (Metropolis, HeatBath)
         for o in (ORDERS if m == "lattice" else ORDERS[:2]) for b in ("numba", "torch")]
CASES += [("lattice", BlockGibbs, None, None)]


def make_kernel(cls, model, order, backend):
    return cls(model) if order is None else cls(model, order=order, backend=backend)


def case_id(case) -> str:
    return "-".join(str(v.__name__ if isinstance(v, type) else v) for v in case)


# ---------------------------------------------------------------- the coupling graph


@pytest.mark.parametrize("model_fn", [lattice, sk])
def test_spin_graph_reproduces_energy_and_fields(model_fn):
    model = model_fn()
    graph = SpinGraph.from_model(model)
    x = random_spins(13, model.n_visible, generator=0)
    assert torch.allclose(graph.energy(x), model.energy(x), atol=1e-12)
    assert torch.allclose(graph.fields(x), model.local_field(x), atol=1e-12)
    sites = torch.tensor([3, 0, 5])
    assert torch.allclose(graph.fields(x, sites), model.local_field(x)[:, sites], atol=1e-12)
    assert graph.nbr.shape[1] % 4 == 0


def test_spin_graph_sparse_lattice_and_dense_sk():
    lat, dense = SpinGraph.from_model(instances.ferromagnet_2d(6)), SpinGraph.from_model(sk())
    assert lat.J is None and lat.nbr.shape == (36, 4)
    assert dense.J is not None and dense.colour is None


def test_checkerboard_colouring_is_proper():
    graph = SpinGraph.from_model(lattice(6))
    J = lattice(6).couplings().detach()
    same = graph.colour[:, None] == graph.colour[None, :]
    assert not bool((J[same] != 0).any())
    assert int(graph.colour.sum()) == 18


def test_odd_periodic_lattice_and_sk_refuse_checkerboard():
    assert SpinGraph.from_model(instances.ferromagnet_2d(3)).colour is None
    with pytest.raises(KakusanError, match="bipartite"):
        Metropolis(sk(), order="checkerboard")
    with pytest.raises(KakusanError, match="bipartite"):
        BlockGibbs(sk())


# ---------------------------------------------------------------- kernels


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_energy_stays_exact_and_spins_stay_pm1(case):
    model_name, cls, order, backend = case
    model = MODELS[model_name]()
    kernel, n = make_kernel(cls, model, order, backend), model.n_visible
    state = kernel.init(random_spins(17, n, generator=3), beta=torch.linspace(0.1, 2.0, 17))
    g = torch.Generator().manual_seed(4)
    for _ in range(30):
        state, info = kernel.step(state, g)
    assert isinstance(kernel, Kernel)
    assert state.x.shape == (17, n) and bool(((state.x == 1) | (state.x == -1)).all())
    assert torch.allclose(state.energy, model.energy(state.x).detach(), atol=1e-10)
    assert info.acceptance.shape == (17,) and bool(((info.acceptance >= 0) & (info.acceptance <= 1)).all())


@pytest.mark.parametrize("case", [c for c in CASES if c[0] == "lattice"], ids=case_id)
def test_same_seed_same_chain_other_seed_other_chain(case):
    _, cls, order, backend = case
    kernel = make_kernel(cls, lattice(), order, backend)

    def run(seed):
        state = kernel.init(random_spins(8, 16, generator=0))
        return run_chain(kernel, state, 20, generator=seed, observables=("energy", "x"))

    a, b, c = run(5), run(5), run(6)
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["energy"], b["energy"])
    assert not torch.equal(a["x"], c["x"])


def test_numba_and_torch_differ_but_both_are_reproducible():
    model = lattice()
    x0 = random_spins(8, 16, generator=0)
    runs = {b: HeatBath(model, backend=b) for b in ("numba", "torch")}
    out = {b: run_chain(k, k.init(x0), 10, generator=1, observables=("x",))["x"] for b, k in runs.items()}
    assert not torch.equal(out["numba"], out["torch"])


def test_beta_zero_metropolis_accepts_every_flip():
    kernel = Metropolis(sk(), backend="numba")
    state = kernel.init(random_spins(5, 11, generator=0), beta=0.0)
    x0 = state.x.clone()
    state, info = kernel.step(state, torch.Generator().manual_seed(0))
    assert torch.equal(info.acceptance, torch.ones(5, dtype=F64))
    assert torch.equal(state.x, -x0)  # sequential: every spin flipped once


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_cold_ferromagnet_stays_in_its_ground_state(backend):
    kernel = Metropolis(instances.ferromagnet_2d(4), order="checkerboard", backend=backend)
    state = kernel.init(torch.ones(3, 16), beta=50.0)
    state, info = kernel.step(state, torch.Generator().manual_seed(0))
    assert torch.equal(info.acceptance, torch.zeros(3, dtype=F64)) and bool((state.x == 1).all())


def test_float32_kernel_runs_with_small_energy_error():
    model = sk(32)
    kernel = HeatBath(model, dtype=torch.float32)
    state = kernel.init(random_spins(64, 32, generator=0))
    state = run_chain(kernel, state, 200, generator=1).state
    assert state.x.dtype == torch.float32
    assert torch.allclose(state.energy, model.energy(state.x.double()).detach(), atol=1e-3)


def test_init_refuses_bad_input():
    kernel = HeatBath(sk())
    with pytest.raises(KakusanError, match="shape"):
        kernel.init(torch.ones(4, 10))
    with pytest.raises(KakusanError, match="±1"):
        kernel.init(torch.zeros(4, 11))
    with pytest.raises(KakusanError, match="one per chain"):
        kernel.init(torch.ones(4, 11), beta=torch.ones(3))
    with pytest.raises(KakusanError, match="finite"):
        kernel.init(torch.ones(4, 11), beta=float("inf"))
    with pytest.raises(KakusanError, match="order"):
        HeatBath(sk(), order="diagonal")
    with pytest.raises(KakusanError, match="backend"):
        HeatBath(sk(), backend="jax")


# ---------------------------------------------------------------- state operations (replica exchange)


def test_take_and_with_beta_move_whole_chains():
    kernel = Metropolis(lattice(), order="checkerboard")  # numba: spin-major layout
    state = kernel.init(random_spins(6, 16, generator=0), beta=torch.arange(6, dtype=F64))
    perm = torch.tensor([5, 4, 3, 2, 1, 0])
    swapped = state.take(perm)
    assert torch.equal(swapped.x, state.x[perm]) and torch.equal(swapped.beta, state.beta[perm])
    assert swapped.x.T.is_contiguous()  # layout kept: no copy on the next step
    configs_swapped = state.take(perm).with_beta(state.beta)  # swap configurations, keep temperatures
    assert torch.equal(configs_swapped.beta, state.beta) and torch.equal(configs_swapped.energy, state.energy[perm])
    hot = state.with_beta(0.0)
    assert hot.x is state.x and torch.equal(hot.beta, torch.zeros(6, dtype=F64))
    snapshot = state.clone()
    kernel.step(state, torch.Generator().manual_seed(0))
    assert not torch.equal(snapshot.x, state.x)


def test_a_state_from_another_layout_is_accepted():
    model = lattice()
    torch_state = HeatBath(model, backend="torch").init(random_spins(4, 16, generator=0))
    state, _ = HeatBath(model, backend="numba").step(torch_state, torch.Generator().manual_seed(0))
    assert torch.allclose(state.energy, model.energy(state.x).detach(), atol=1e-10)


# ---------------------------------------------------------------- block Gibbs


def test_block_gibbs_from_weights_matches_the_ising_energy():
    g = torch.Generator().manual_seed(0)
    W, b, c = torch.randn(5, 3, generator=g, dtype=F64), torch.randn(5, generator=g, dtype=F64), \
        torch.randn(3, generator=g, dtype=F64)
    J = torch.zeros(8, 8, dtype=F64)
    J[:5, 5:] = W
    model = IsingModel.from_params(J + J.T, torch.cat([b, c]))
    x = random_spins(7, 8, generator=1)
    kernel = BlockGibbs.from_weights(W, b, c)
    assert torch.allclose(kernel.energy(x), model.energy(x).detach(), atol=1e-12)
    assert torch.allclose(BlockGibbs(model).energy(x), model.energy(x).detach(), atol=1e-12)


def test_block_gibbs_checks_its_groups():
    model = lattice()
    with pytest.raises(KakusanError, match="partition"):
        BlockGibbs(model, groups=(torch.arange(8), torch.arange(7, 16)))
    with pytest.raises(KakusanError, match="inside"):
        BlockGibbs(model, groups=(torch.arange(8), torch.arange(8, 16)))
    with pytest.raises(KakusanError, match="n_hidden"):
        BlockGibbs.from_weights(torch.zeros(3, 2), torch.zeros(2), torch.zeros(2))
    with pytest.raises(KakusanError, match="±1"):
        BlockGibbs(model).init(torch.ones(2, 16) * torch.tensor([0.0, 1.0]).repeat(8))


def test_one_block_gibbs_kernel_for_ising_models_and_rbms():
    """An Ising model goes through BipartiteIsing (sites in place, draws from A first); an RBM through its own
    conditionals (x = [v, h]); groups and dtype belong to the Ising form only."""
    from kakusan.mcmc import BipartiteIsing
    from kakusan.rbm import BernoulliRBM

    model = lattice()
    kernel = BlockGibbs(model, dtype=torch.float32)
    assert isinstance(kernel.model, BipartiteIsing) and kernel.n_spins == 16
    state = kernel.init(random_spins(5, 16, generator=0))
    state, _ = kernel.step(state, torch.Generator().manual_seed(1))
    assert state.x.dtype == torch.float32
    torch.testing.assert_close(state.energy, model.energy(state.x.double()).detach(), rtol=0, atol=1e-5)
    a, b = kernel.model.sites
    assert torch.equal(kernel.visible(state), state.x[:, a]) and torch.equal(kernel.hidden(state), state.x[:, b])
    rbm = BernoulliRBM(6, 3, seed=0)
    assert BlockGibbs(rbm).model is rbm
    with pytest.raises(KakusanError, match="Ising models"):
        BlockGibbs(rbm, dtype=torch.float64)


# ---------------------------------------------------------------- the driver


def test_run_chain_burn_in_thin_and_observables():
    kernel = HeatBath(sk())
    state = kernel.init(random_spins(4, 11, generator=0))
    trace = run_chain(kernel, state, 25, burn_in=5, thin=3, generator=1,
                      observables={"x0": lambda s: s.x[:, 0].clone(), "energy": lambda s: s.energy.clone()})
    assert trace.n_kept == 8 and trace["x0"].shape == (8, 4) and trace["energy"].shape == (8, 4)
    assert trace.acceptance.shape == (4,) and trace.state.x.shape == (4, 11)
    with pytest.raises(KakusanError, match="no observable"):
        trace["magnetization"]
    again = run_chain(kernel, kernel.init(random_spins(4, 11, generator=0)), 25, burn_in=5, thin=3, generator=1,
                      observables=("energy", "magnetization", "x"))
    assert torch.equal(again["energy"], trace["energy"])
    assert again["x"].dtype == torch.int8 and again["x"].shape == (8, 4, 11)
    assert torch.allclose(again["magnetization"], again["x"].double().mean(-1))


def test_run_chain_is_memory_bounded():
    kernel = HeatBath(sk())
    state = kernel.init(random_spins(4, 11, generator=0))
    with pytest.raises(KakusanError, match="max_bytes"):
        run_chain(kernel, state, 10_000, observables=("x",), max_bytes=10_000)
    with pytest.raises(KakusanError, match="unknown observable"):
        run_chain(kernel, state, 10, observables=("entropy",))
    with pytest.raises(KakusanError, match="thin"):
        run_chain(kernel, state, 10, thin=0)


def test_exp_neg_is_accurate_to_rounding():
    from numba import njit

    from kakusan.mcmc._compiled import exp_neg

    @njit
    def many(y):
        out = np.empty_like(y)
        for i in range(len(y)):
            out[i] = exp_neg(y[i])
        return out

    y = np.concatenate([np.linspace(0, 50, 20001), np.linspace(50, 700, 2001)])
    assert np.max(np.abs(many(y) / np.exp(-y) - 1)) < 5e-16


def test_chain_state_is_a_frozen_dataclass():
    state = ChainState(torch.ones(2, 3), torch.ones(2, dtype=F64), torch.zeros(2, dtype=F64))
    assert state.n_chains == 2 and state.n_spins == 3
    with pytest.raises(AttributeError):
        state.x = torch.zeros(2, 3)


def test_compiled_inner_loops_vectorise():
    """The speed of the numba backend rests on LLVM vectorising the loops over chains (see _compiled.py)."""
    import numba

    from kakusan.mcmc import _compiled

    c = 64
    s = _compiled.seed_streams(np.uint64(1), c)
    decide = numba.njit(boundscheck=False)(_compiled._decide_row.py_func)  # a fresh, uncached compile
    decide(np.ones(c), np.zeros(c), np.zeros(c), np.ones(c), s, np.zeros(c, np.int64), 1)
    field = numba.njit(boundscheck=False)(_compiled._field_row.py_func)
    field(np.zeros(c), np.ones((8, c)), np.zeros((8, 4), np.int64), np.zeros((8, 4)), np.zeros(8), 0)
    for f in (decide, field):
        assert "vector.body" in next(iter(f.inspect_llvm().values())), f.py_func.__name__

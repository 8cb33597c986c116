"""Exact enumeration against closed forms and a naive loop over states, on distinct prime sizes."""

import math

import pytest
import torch

from kakusan.boltzmann import contraction, exact
from kakusan.boltzmann.exact import IsingParams
from kakusan.errors import KakusanError

F64 = torch.float64


@pytest.fixture(params=["dense", "blocks"])
def path(request, monkeypatch):
    """Run a test through the one-table path (N ≤ 12) and through the three-block contraction."""
    monkeypatch.setattr(exact, "_DENSE", 12 if request.param == "dense" else 0)
    return request.param


def random_params(n: int, seed: int, scale: float = 1.0, field: float = 0.5) -> IsingParams:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=F64) * scale
    J = (A + A.T) / 2
    J.fill_diagonal_(0.0)
    return IsingParams(J, field * torch.randn(n, generator=g, dtype=F64))


def naive(p: IsingParams, beta: float = 1.0) -> dict:
    """Everything by a plain Python loop over the 2^N states (index order: spin k is bit k)."""
    n = len(p.h)
    J, h = p.J.tolist(), p.h.tolist()
    states, log_w = [], []
    for i in range(2**n):
        x = [2 * ((i >> k) & 1) - 1 for k in range(n)]
        e = -sum(J[k][l] * x[k] * x[l] for k in range(n) for l in range(k + 1, n)) - sum(h[k] * x[k] for k in range(n))
        states.append(x)
        log_w.append(-beta * e)
    X, lw = torch.tensor(states, dtype=F64), torch.tensor(log_w, dtype=F64)
    lz = torch.logsumexp(lw, 0)
    q = torch.exp(lw - lz)
    E = -lw / beta
    em = q @ E
    return dict(log_z=float(lz), mean=q @ X, corr=X.T @ (q[:, None] * X), e_mean=float(em),
                e_var=float(q @ (E - em) ** 2), log_q=lw - lz, X=X)


def assert_stats(st: exact.ExactStats, ref: dict, tol: float = 1e-10) -> None:
    assert st.log_z == pytest.approx(ref["log_z"], rel=tol, abs=tol)
    torch.testing.assert_close(st.mean, ref["mean"], rtol=0, atol=tol)
    torch.testing.assert_close(st.corr, ref["corr"], rtol=0, atol=tol)


# ---------------------------------------------------------------- closed forms


def test_two_spins_closed_form(path):
    J12, h1, h2 = 0.7, -0.3, 1.1
    p = IsingParams(torch.tensor([[0.0, J12], [J12, 0.0]], dtype=F64), torch.tensor([h1, h2], dtype=F64))
    z = 2 * math.exp(J12) * math.cosh(h1 + h2) + 2 * math.exp(-J12) * math.cosh(h1 - h2)
    m1 = (2 * math.exp(J12) * math.sinh(h1 + h2) + 2 * math.exp(-J12) * math.sinh(h1 - h2)) / z
    m2 = (2 * math.exp(J12) * math.sinh(h1 + h2) - 2 * math.exp(-J12) * math.sinh(h1 - h2)) / z
    c12 = (2 * math.exp(J12) * math.cosh(h1 + h2) - 2 * math.exp(-J12) * math.cosh(h1 - h2)) / z
    st = exact.exact_stats(p)
    assert st.log_z == pytest.approx(math.log(z), rel=1e-14)
    torch.testing.assert_close(st.mean, torch.tensor([m1, m2], dtype=F64), rtol=0, atol=1e-14)
    torch.testing.assert_close(st.corr, torch.tensor([[1, c12], [c12, 1]], dtype=F64), rtol=0, atol=1e-14)


def test_three_spins_high_temperature_expansion(path):
    """h = 0: Z = 8 (c12 c13 c23 + s12 s13 s23), ⟨x1 x2⟩ = (s12 c13 c23 + c12 s13 s23) / (Z / 8)."""
    J12, J13, J23 = 0.4, -1.3, 0.9
    J = torch.tensor([[0, J12, J13], [J12, 0, J23], [J13, J23, 0]], dtype=F64)
    c1, c2, c3 = math.cosh(J12), math.cosh(J13), math.cosh(J23)
    s1, s2, s3 = math.sinh(J12), math.sinh(J13), math.sinh(J23)
    z8 = c1 * c2 * c3 + s1 * s2 * s3
    c12 = (s1 * c2 * c3 + c1 * s2 * s3) / z8
    c13 = (c1 * s2 * c3 + s1 * c2 * s3) / z8
    c23 = (c1 * c2 * s3 + s1 * s2 * c3) / z8
    st = exact.exact_stats(IsingParams(J, torch.zeros(3, dtype=F64)))
    assert st.log_z == pytest.approx(math.log(8 * z8), rel=1e-14)
    torch.testing.assert_close(st.mean, torch.zeros(3, dtype=F64), rtol=0, atol=1e-14)
    want = torch.tensor([[1, c12, c13], [c12, 1, c23], [c13, c23, 1]], dtype=F64)
    torch.testing.assert_close(st.corr, want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("n", [1, 4, 13])
def test_independent_spins(n, path):
    """J = 0: log Z = Σ log 2cosh(βh_k), ⟨x_k⟩ = tanh(βh_k), Var E = Σ h_k² / cosh²(βh_k)."""
    p = IsingParams(torch.zeros(n, n, dtype=F64), torch.linspace(-2, 1.5, n, dtype=F64))
    st = exact.exact_stats(p, beta=0.8, energy_var=True)
    bh = 0.8 * p.h
    assert st.log_z == pytest.approx(float(torch.log(2 * torch.cosh(bh)).sum()), rel=1e-13)
    torch.testing.assert_close(st.mean, torch.tanh(bh), rtol=0, atol=1e-13)
    want = torch.outer(st.mean, st.mean)
    want.fill_diagonal_(1.0)
    torch.testing.assert_close(st.corr, want, rtol=0, atol=1e-13)
    assert st.energy_mean == pytest.approx(float(-(p.h * torch.tanh(bh)).sum()), rel=1e-12)
    assert st.energy_var == pytest.approx(float((p.h**2 / torch.cosh(bh) ** 2).sum()), rel=1e-10)


# ---------------------------------------------------------------- against the naive loop


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 11])
def test_stats_match_naive_loop(n, path):
    """Sizes cross every block boundary (N < 3 leaves blocks empty); primes make swapped axes fail."""
    p = random_params(n, seed=n)
    st = exact.exact_stats(p, beta=0.9, energy_var=True)
    ref = naive(p, beta=0.9)
    assert_stats(st, ref)
    assert st.energy_mean == pytest.approx(ref["e_mean"], rel=1e-11, abs=1e-11)
    assert st.energy_var == pytest.approx(ref["e_var"], rel=1e-9)
    assert exact.log_z(p, beta=0.9) == pytest.approx(ref["log_z"], rel=1e-13)
    torch.testing.assert_close(exact.log_prob_all(p, beta=0.9), ref["log_q"], rtol=0, atol=1e-11)


@pytest.mark.parametrize("n", [5, 7])
def test_direct_columns_forced(monkeypatch, n):
    """Every column through the log-space fallback gives the same answers."""
    monkeypatch.setattr(contraction, "TINY", math.inf)
    monkeypatch.setattr(exact, "_DENSE", 0)
    p = random_params(n, seed=10 + n)
    st = exact.exact_stats(p, energy_var=True)
    ref = naive(p)
    assert_stats(st, ref)
    assert st.energy_var == pytest.approx(ref["e_var"], rel=1e-9)


def test_strongly_frustrated_model_underflows_and_is_still_exact(monkeypatch):
    """|J| ~ 300: products of the shifted tables underflow; the fallback keeps results exact."""
    monkeypatch.setattr(exact, "_DENSE", 0)
    p = random_params(9, seed=1, scale=300.0)
    calls = []
    real = contraction.direct_columns

    def spy(bk, beta, cols):
        calls.append(len(cols))
        return real(bk, beta, cols)

    monkeypatch.setattr(contraction, "direct_columns", spy)
    st = exact.exact_stats(p)
    assert sum(calls) > 0
    assert_stats(st, naive(p), tol=1e-9)


# ---------------------------------------------------------------- invariances


def test_invariances_of_log_z(path):
    n = 10
    p = random_params(n, seed=3)
    st = exact.exact_stats(p)
    # global spin flip: h -> -h leaves Z, flips ⟨x⟩
    flipped = exact.exact_stats(IsingParams(p.J, -p.h))
    assert flipped.log_z == pytest.approx(st.log_z, rel=1e-13)
    torch.testing.assert_close(flipped.mean, -st.mean)
    # gauge: x_k -> s_k x_k maps J -> s J s, h -> s h
    s = torch.tensor([1, -1, -1, 1, 1, -1, 1, -1, -1, 1], dtype=F64)
    gauged = exact.exact_stats(IsingParams(s[:, None] * p.J * s[None, :], s * p.h))
    assert gauged.log_z == pytest.approx(st.log_z, rel=1e-13)
    torch.testing.assert_close(gauged.corr, s[:, None] * st.corr * s[None, :])
    # permutation: moves spins across block boundaries
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    permuted = exact.exact_stats(IsingParams(p.J[perm][:, perm], p.h[perm]))
    assert permuted.log_z == pytest.approx(st.log_z, rel=1e-13)
    torch.testing.assert_close(permuted.mean, st.mean[perm])
    torch.testing.assert_close(permuted.corr, st.corr[perm][:, perm])
    # temperature: log Z(β; J, h) = log Z(1; βJ, βh)
    assert exact.log_z(p, beta=0.3) == pytest.approx(exact.log_z(IsingParams(0.3 * p.J, 0.3 * p.h)), rel=1e-13)
    # β = 0: uniform
    assert exact.log_z(p, beta=0.0) == pytest.approx(n * math.log(2), rel=1e-14)


def test_energy_moments_are_derivatives_of_log_z(path):
    """⟨E⟩ = −∂log Z/∂β and Var E = ∂²log Z/∂β², by central differences."""
    p = random_params(8, seed=5)
    st = exact.exact_stats(p, beta=0.7, energy_var=True)
    eps = 1e-4
    up, mid, dn = (exact.log_z(p, beta=0.7 + d) for d in (eps, 0.0, -eps))
    assert st.energy_mean == pytest.approx(-(up - dn) / (2 * eps), rel=1e-7)
    assert st.energy_var == pytest.approx((up - 2 * mid + dn) / eps**2, rel=1e-5)


# ---------------------------------------------------------------- KL and likelihood


def test_kl_is_zero_for_the_model_and_positive_otherwise(path):
    p = random_params(7, seed=2)
    ref = naive(p)
    q = torch.exp(ref["log_q"])
    assert abs(exact.kl_divergence(p, ref["X"], q)) < 1e-12
    other = random_params(7, seed=9)
    kl = exact.kl_divergence(other, ref["X"], q)
    want = float((q * (ref["log_q"] - naive(other)["log_q"])).sum())
    assert kl == pytest.approx(want, rel=1e-10) and kl > 0


def test_kl_and_likelihood_of_data_rows():
    """KL(p0||q) = −H(p0) − ⟨log q⟩_p0 with duplicate rows merged; mean log-likelihood by hand."""
    p = random_params(5, seed=4)
    ref = naive(p)
    idx = torch.tensor([0, 3, 3, 7, 31, 31, 31, 12])
    data = ref["X"][idx]
    ll = exact.mean_log_likelihood(p, data)
    assert ll == pytest.approx(float(ref["log_q"][idx].mean()), rel=1e-12)
    p0 = torch.tensor([1, 2, 1, 3, 1], dtype=F64) / 8
    entropy = -float((p0 * torch.log(p0)).sum())
    assert exact.kl_divergence(p, data) == pytest.approx(-entropy - ll, rel=1e-12)
    w = torch.rand(len(data), generator=torch.Generator().manual_seed(0), dtype=F64)
    assert exact.mean_log_likelihood(p, data, w) == pytest.approx(float(w @ ref["log_q"][idx] / w.sum()), rel=1e-12)


def test_bad_data_is_refused():
    p = random_params(4, seed=0)
    with pytest.raises(KakusanError, match="±1 spins"):
        exact.mean_log_likelihood(p, torch.zeros(3, 4))
    with pytest.raises(KakusanError, match="shape"):
        exact.kl_divergence(p, torch.ones(3, 5))
    with pytest.raises(KakusanError, match="weights"):
        exact.kl_divergence(p, torch.ones(3, 4), torch.tensor([1.0, -1.0, 0.5]))


# ---------------------------------------------------------------- states and limits


def test_state_index_and_all_states_round_trip():
    X = exact.all_states(6)
    assert X.shape == (64, 6) and X.dtype == F64
    torch.testing.assert_close(exact.state_index(X), torch.arange(64))
    assert torch.equal(X[5], torch.tensor([1, -1, 1, -1, -1, -1], dtype=F64))


def test_size_limits_name_the_alternative():
    big = IsingParams(torch.zeros(exact.MAX_SPINS + 1, exact.MAX_SPINS + 1), torch.zeros(exact.MAX_SPINS + 1))
    with pytest.raises(KakusanError, match="AIS"):
        exact.log_z(big)
    with pytest.raises(KakusanError, match="limit"):
        exact.log_prob_all(IsingParams(torch.zeros(25, 25), torch.zeros(25)))


def test_stats_at_moderate_size_are_consistent():
    """N = 20 (blocks 7, 7, 6): normalised probabilities reproduce the moments of the contraction."""
    p = random_params(20, seed=6, scale=20**-0.5, field=0.3)
    st = exact.exact_stats(p)
    q = torch.exp(exact.log_prob_all(p))
    assert float(q.sum()) == pytest.approx(1.0, rel=1e-12)
    X = exact.all_states(20)
    torch.testing.assert_close(st.mean, q @ X, rtol=0, atol=1e-12)
    torch.testing.assert_close(st.corr[3], (q * X[:, 3]) @ X, rtol=0, atol=1e-12)

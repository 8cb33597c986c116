"""Diagnostics against analytic answers: AR(1) autocorrelation and τ_int, iid error bars, R-hat, blocking."""

import math

import numpy as np
import pytest
import torch
from scipy import signal

from kakusan.errors import KakusanError
from kakusan.mcmc import diagnostics

F64 = torch.float64


def ar1(rho: float, n_steps: int, n_chains: int, seed: int) -> torch.Tensor:
    """x_t = ρ x_{t−1} + ε_t, ε ~ N(0, 1), started in the stationary law N(0, 1/(1 − ρ²)): (n_steps, n_chains)."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((n_steps, n_chains))
    x0 = rng.standard_normal(n_chains) / math.sqrt(1 - rho**2)
    x, _ = signal.lfilter([1.0], [1.0, -rho], eps, axis=0, zi=(rho * x0)[None, :])
    return torch.from_numpy(x)


def tau_ar1(rho: float) -> float:
    return (1 + rho) / (1 - rho)


def test_autocorrelation_of_ar1_is_geometric():
    rho = diagnostics.autocorrelation(ar1(0.7, 2**14, 8, seed=0))
    assert rho.shape == (2**14,)
    assert torch.allclose(rho[:6], 0.7 ** torch.arange(6, dtype=F64), atol=0.02)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_integrated_time_of_ar1_matches_analytic(rho):
    tau = diagnostics.integrated_time(ar1(rho, 2**16, 16, seed=1))
    assert abs(float(tau) / tau_ar1(rho) - 1) < 0.04, (float(tau), tau_ar1(rho))


def test_integrated_time_per_chain_and_trailing_dims():
    x = torch.stack([ar1(0.5, 2**13, 6, seed=2), ar1(0.8, 2**13, 6, seed=3)], -1)  # (n, 6, 2)
    tau = diagnostics.integrated_time(x)
    per_chain = diagnostics.integrated_time(x, per_chain=True)
    assert tau.shape == (2,) and per_chain.shape == (6, 2)
    assert torch.allclose(tau, torch.tensor([tau_ar1(0.5), tau_ar1(0.8)], dtype=F64), rtol=0.1)
    assert torch.allclose(per_chain.mean(0), tau, rtol=0.1)


def test_white_noise_has_tau_one_and_full_ess():
    x = torch.from_numpy(np.random.default_rng(4).standard_normal((4096, 8)))
    assert abs(float(diagnostics.integrated_time(x)) - 1) < 0.1
    assert abs(float(diagnostics.effective_sample_size(x)) / (4096 * 8) - 1) < 0.1


def test_mcse_iid_and_ar1():
    n, m = 2**15, 8
    iid = torch.from_numpy(np.random.default_rng(5).standard_normal((n, m)))
    assert abs(float(diagnostics.mcse(iid)) * math.sqrt(n * m) - 1) < 0.1
    rho = 0.9
    x = ar1(rho, n, m, seed=6)
    truth = math.sqrt(tau_ar1(rho) / (1 - rho**2) / (n * m))  # √(Var x · τ / (n m))
    est = diagnostics.estimate(x)
    assert abs(float(est.error) / truth - 1) < 0.1
    assert abs(float(est.ess) - n * m / tau_ar1(rho)) / (n * m / tau_ar1(rho)) < 0.1


def test_constant_trace_gives_zero_error_not_nan():
    est = diagnostics.estimate(torch.ones(100, 4))
    assert float(est.error) == 0.0 and float(est.tau) == 1.0


def test_rhat_near_one_for_well_mixed_chains():
    x = torch.from_numpy(np.random.default_rng(7).standard_normal((2000, 4)))
    assert float(diagnostics.rhat(x)) < 1.01


def test_rhat_flags_chains_at_different_means():
    x = torch.from_numpy(np.random.default_rng(8).standard_normal((2000, 4)))
    x[:, 0] += 2.0
    assert float(diagnostics.rhat(x)) > 1.1


def test_rhat_tail_part_flags_different_scales():
    x = torch.from_numpy(np.random.default_rng(9).standard_normal((2000, 4)))
    x[:, :2] *= 4.0  # same mean, different spread: only the folded (tail) R-hat sees it
    assert float(diagnostics.rhat(x)) > 1.1


def test_rhat_flags_a_trend_within_chains():
    t = torch.linspace(0, 3, 2000, dtype=F64)[:, None]
    x = t + 0.1 * torch.from_numpy(np.random.default_rng(10).standard_normal((2000, 4)))
    assert float(diagnostics.rhat(x)) > 1.1  # split halves disagree


def test_blocking_iid_error():
    n, m = 2**14, 4
    x = torch.from_numpy(np.random.default_rng(11).standard_normal((n, m)))
    b = diagnostics.blocking(x)
    assert abs(float(b.error) * math.sqrt(n * m) - 1) < 0.1
    assert b.errors.shape == (14,)
    assert int(b.level.max()) <= 6  # the plateau starts at level 0; noise may lift it a few levels


def test_blocking_ar1_error_matches_analytic():
    n, m, rho = 2**16, 8, 0.9
    b = diagnostics.blocking(ar1(rho, n, m, seed=12))
    truth = math.sqrt(tau_ar1(rho) / (1 - rho**2) / (n * m))
    assert abs(float(b.error) / truth - 1) < 0.15, (float(b.error), truth)
    assert int(b.level.min()) >= 3  # correlated data needs several halvings
    naive = float(b.errors[0])  # level 0 ignores correlation: too small by √τ
    assert naive < 0.4 * truth


def test_short_traces_are_refused():
    with pytest.raises(KakusanError):
        diagnostics.blocking(torch.randn(10, 2))
    with pytest.raises(KakusanError):
        diagnostics.rhat(torch.randn(3, 2))
    with pytest.raises(KakusanError):
        diagnostics.integrated_time(torch.randn(1))


def test_between_chain_error_matches_the_analytic_error_of_ar1_chains():
    """sd(chain means)/√m against √(Var · τ / (n m)) of AR(1) chains, long ones and ones only 4 τ long (it needs
    no autocorrelation window, only independent chains)."""
    rho, n, m = 0.9, 2**12, 256
    truth = math.sqrt(tau_ar1(rho) / (1 - rho**2) / (n * m))
    assert abs(float(diagnostics.between_chain_error(ar1(rho, n, m, seed=7))) / truth - 1) < 0.1
    rho, n = 0.99, 800  # τ = 199 steps: 4 τ per chain
    truth = math.sqrt(tau_ar1(rho) / (1 - rho**2) / (n * m))
    short = ar1(rho, n, m, seed=8)
    assert abs(float(diagnostics.between_chain_error(short)) / truth - 1) < 0.1
    with pytest.raises(KakusanError, match="at least 2 chains"):
        diagnostics.between_chain_error(torch.randn(100, 1))

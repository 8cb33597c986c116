"""blocking's error bar through the calibration harness on AR(1) chains with known mean (0) and τ_int.

Short chains (4 × 2000 steps, ρ = 0.95, τ_int = 39) are where Jonsson's lag-1 test, chain by chain, stopped too
early: over these 100 seeds it gave sd(z) 1.38 and ±2 s.e. coverage 83 % ("too narrow"). With the level chosen
jointly over the chains and at the Flyvbjerg–Petersen plateau it must pass the harness (sd(z) ∈ [0.75, 1.33],
coverage ≥ 90 %; it gives 1.15 and 93 %). About 0.3 CPU-seconds.
"""

import math

from test_mcmc_diagnostics import ar1, tau_ar1

from kakusan.evaluate.calibration import calibrate
from kakusan.mcmc import diagnostics

RHO, STEPS, CHAINS, SEEDS = 0.95, 2000, 4, 100


def test_blocking_is_calibrated_on_short_ar1_chains():
    cal = calibrate(lambda seed: diagnostics.blocking(ar1(RHO, STEPS, CHAINS, seed=5000 + seed)), 0.0, SEEDS,
                    estimator="blocking", case=f"AR(1) ρ = {RHO}, {CHAINS} × {STEPS}")
    assert cal.calibrated, str(cal)
    truth = math.sqrt(tau_ar1(RHO) / (1 - RHO**2) / (STEPS * CHAINS))  # exact s.e. of the grand mean
    assert abs(float(cal.stderrs.mean()) / truth - 1) < 0.1, (float(cal.stderrs.mean()), truth)

"""The numbers docs/mcmc.md quotes from benchmark results, each found in the results file it cites (see page_numbers).

The page's own scripts (its example and the 20-seed re-run) are checked against their printed output by
test_exercises_mcmc.py. The calibration table is too long to re-run in a test and is cited from its results
file; the negative control's misses are recomputed as its own test runs it. The sweep rates are on
docs/benchmarks.md (test_numbers_benchmarks.py).
"""

from pathlib import Path

import pytest

from page_numbers import check, cite

PAGE = "mcmc"
CALIBRATION = "results_calibration.md"


def test_the_calibration_table():
    tau = "| MCMC mean {}, MCSE from τ_int (Sokal window, c = 5) | SK N = 12, β = {},"
    block = "| MCMC mean {}, blocking (plateau level) | SK N = 12, β = {},"
    for row, numbers in (((tau, "⟨E/N⟩", "1.0"), ("1.01",)), ((tau, "⟨m⟩", "1.0"), ("97",)),
                         ((tau, "⟨E/N⟩", "1.5"), ("0.00316",)), ((tau, "⟨m⟩", "1.5"), ("1.14", "92")),
                         ((block, "⟨E/N⟩", "1.0"), ("1.00",)), ((block, "⟨m⟩", "1.0"), ("97",)),
                         ((block, "⟨E/N⟩", "1.5"), ("1.15", "92"))):
        template, observable, beta = row
        cite(PAGE, CALIBRATION, template.format(observable, beta), *numbers)
    cite(PAGE, CALIBRATION, "On the β = 1.5 glass its error is ~12 % low", "12", "0.00316", "0.00358")
    cite(PAGE, CALIBRATION, "Jonsson's test, chain by chain, stopped at level ≈ 4", "4", "7", "1.29", "1.46", "82",
         "88", "5.3", "6.6")
    assert f"{1 - 1 / 1.29:.2f}" == "0.22" and f"{1 - 1 / 1.46:.2f}" == "0.32"  # "22–32 % low"


@pytest.mark.slow
def test_how_far_the_negative_control_misses():  # ~10 CPU-seconds
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "mcmc" / "test_mcmc_statistical.py"
    spec = importlib.util.spec_from_file_location("mcmc_statistical_for_docs", path)
    statistical = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(statistical)
    for name, model in (("SK glass", statistical.sk12()), ("4 × 4 lattice", statistical.ea4())):
        z = statistical.z_scores(statistical.SynchronousHeatBath(model), model, seed=60)  # as that test runs it
        check(PAGE, f"max |z|, {name}", float(z.abs().max()))

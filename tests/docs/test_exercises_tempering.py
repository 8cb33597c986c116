"""The exercises of docs/tempering.md: each printed answer, and the output its example quotes, is what kakusan computes.

The page's example is run as printed and its output compared line by line with the ```text block after it.
"""

import contextlib
import io
import math
import re
from pathlib import Path

import pytest
import torch

from exercise_answers import answers, check
from kakusan.boltzmann import exact, instances
from kakusan.mcmc import HeatBath, random_spins
from kakusan.mcmc.tempering import ReplicaExchange, nonreversible_round_trip_rate, run_tempering

PAGE = "tempering"
TEXT = (Path(__file__).resolve().parents[2] / "docs" / "tempering.md").read_text(encoding="utf-8")
F64 = torch.float64


def glass():
    return instances.sherrington_kirkpatrick(10, field_std=0.3, seed=0)


def test_the_page_prints_every_answer():
    assert set(answers(PAGE)) == {
        "A exact", "A Gaussian", "A measured", "s.e.", "Λ uneven", "Λ equal", "rate uneven", "rate equal",
        "log Z(1) - log Z(0)", *(f"{rule}, R {R}" for rule in ("trapezoid", "corrected") for R in (3, 5, 11))}


def test_exercise_1_swap_acceptance():
    model = glass()
    E = model.energy(exact.all_states(10)).detach()
    lo, hi = 1.0, 1.3
    q_lo, q_hi = torch.softmax(-lo * E, 0), torch.softmax(-hi * E, 0)
    A = (q_lo[:, None] * q_hi[None, :] * torch.exp(((lo - hi) * (E[:, None] - E[None, :])).clamp(max=0))).sum()
    sd = [exact.exact_stats(model, beta=b, energy_var=True).energy_var ** 0.5 for b in (lo, hi)]
    pt = ReplicaExchange(HeatBath(model), torch.tensor([lo, hi], dtype=F64), n_systems=64)
    trace = run_tempering(pt, pt.init(random_spins(128, 10, generator=0)), 2000, burn_in=200, generator=1)
    a = trace.stats.acceptance_per_system[:, 0]
    check(PAGE, "A exact", float(A))
    check(PAGE, "A Gaussian", math.erfc((hi - lo) * (sum(sd) / 2) / 2))
    check(PAGE, "A measured", float(a.mean()))
    check(PAGE, "s.e.", float(a.std() / math.sqrt(len(a))))


def test_exercise_2_round_trip_rates():
    for name, acc in (("uneven", [0.9, 0.9, 0.1]), ("equal", [0.6, 0.6, 0.6])):
        rate = nonreversible_round_trip_rate(acc)
        assert rate == pytest.approx(1 / (2 + 2 * sum((1 - a) / a for a in acc)), rel=1e-12)  # by hand
        check(PAGE, f"Λ {name}", sum(1 - a for a in acc))
        check(PAGE, f"rate {name}", rate)


def test_exercise_3_thermodynamic_integration_with_exact_moments():
    model = glass()
    truth = exact.log_z(model) - 10 * math.log(2)
    check(PAGE, "log Z(1) - log Z(0)", truth)
    for R in (3, 5, 11):
        betas = torch.linspace(0, 1, R, dtype=F64)
        stats = [exact.exact_stats(model, beta=float(b), energy_var=True) for b in betas]
        m = torch.tensor([s.energy_mean for s in stats])
        v = torch.tensor([s.energy_var for s in stats])
        h = float(betas[1] - betas[0])
        trapezoid = h * (m[:-1] + m[1:]) / 2
        check(PAGE, f"trapezoid, R {R}", -float(trapezoid.sum()) - truth)
        check(PAGE, f"corrected, R {R}", -float((trapezoid + h**2 * (v[1:] - v[:-1]) / 12).sum()) - truth)


def test_the_pages_example_prints_what_the_page_quotes():
    code, output = re.search(r"^```python\n(.*?)^```\n.*?^```text\n(.*?)^```", TEXT, flags=re.S | re.M).groups()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/tempering.md", "exec"), {})
    assert out.getvalue().splitlines() == output.splitlines()

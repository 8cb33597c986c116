"""The answers of docs/tempering.md's exercises, and the output its example quotes, are what kakusan computes today.

Each exercise's checked numbers are the bold ones in its **Answer.** paragraph, in order; the page's example
is run as printed and its output compared line by line with the ```text block that follows it.
"""

import contextlib
import io
import math
import re
from pathlib import Path

import pytest
import torch

from kakusan.boltzmann import exact, instances
from kakusan.mcmc import HeatBath, random_spins
from kakusan.mcmc.tempering import ReplicaExchange, nonreversible_round_trip_rate, run_tempering

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tempering.md"
TEXT = PAGE.read_text(encoding="utf-8")
F64 = torch.float64


def answers(n: int) -> list[float]:
    """The bold numbers of exercise n's answer, in order."""
    section = re.search(rf"^### Exercise {n}\b(.*?)(?=^#|\Z)", TEXT, flags=re.S | re.M).group(1)
    answer = section.split("**Answer.**", 1)[1]
    return [float(v.replace("−", "-")) for v in re.findall(r"\*\*([-−]?\d+(?:\.\d+)?)\*\*", answer)]


def glass():
    return instances.sherrington_kirkpatrick(10, field_std=0.3, seed=0)


def sig(v: float, digits: int) -> float:
    return float(f"{v:.{digits}g}")


def test_exercise_1_swap_acceptance():
    model = glass()
    E = model.energy(exact.all_states(10)).detach()
    lo, hi = 1.0, 1.3
    q_lo, q_hi = torch.softmax(-lo * E, 0), torch.softmax(-hi * E, 0)
    A = (q_lo[:, None] * q_hi[None, :] * torch.exp(((lo - hi) * (E[:, None] - E[None, :])).clamp(max=0))).sum()
    sd = [exact.exact_stats(model, beta=b, energy_var=True).energy_var ** 0.5 for b in (lo, hi)]
    gaussian = math.erfc((hi - lo) * (sum(sd) / 2) / 2)
    pt = ReplicaExchange(HeatBath(model), torch.tensor([lo, hi], dtype=F64), n_systems=64)
    trace = run_tempering(pt, pt.init(random_spins(128, 10, generator=0)), 2000, burn_in=200, generator=1)
    a = trace.stats.acceptance_per_system[:, 0]
    got = [float(A), gaussian, float(a.mean()), float(a.std() / math.sqrt(len(a)))]
    assert answers(1) == [round(v, 4) for v in got]


def test_exercise_2_round_trip_rates():
    ladders = ([0.9, 0.9, 0.1], [0.6, 0.6, 0.6])
    lam = [sum(1 - a for a in acc) for acc in ladders]
    rate = [nonreversible_round_trip_rate(acc) for acc in ladders]
    assert rate == pytest.approx([1 / (2 + 2 * sum((1 - a) / a for a in acc)) for acc in ladders], rel=1e-12)
    assert answers(2) == [round(v, 4) for v in lam + rate]


def test_exercise_3_thermodynamic_integration_with_exact_moments():
    model = glass()
    truth = exact.log_z(model) - 10 * math.log(2)
    plain, corrected = [], []
    for R in (3, 5, 11):
        betas = torch.linspace(0, 1, R, dtype=F64)
        stats = [exact.exact_stats(model, beta=float(b), energy_var=True) for b in betas]
        m = torch.tensor([s.energy_mean for s in stats])
        v = torch.tensor([s.energy_var for s in stats])
        h = float(betas[1] - betas[0])
        trapezoid = h * (m[:-1] + m[1:]) / 2
        plain.append(-float(trapezoid.sum()) - truth)
        corrected.append(-float((trapezoid + h**2 * (v[1:] - v[:-1]) / 12).sum()) - truth)
    assert answers(3) == [round(truth, 6), *(sig(e, 3) if abs(e) > 0.01 else sig(e, 2) for e in plain),
                          *(sig(e, 2) for e in corrected)]


def test_the_pages_example_prints_what_the_page_quotes():
    code, output = re.search(r"^```python\n(.*?)^```\n.*?^```text\n(.*?)^```", TEXT, flags=re.S | re.M).groups()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(PAGE), "exec"), {})
    assert out.getvalue().splitlines() == output.splitlines()

"""benchmarks/bench_seeds.py: its statistics against hand computations, and a --quick run end to end."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_seeds", ROOT / "benchmarks" / "bench_seeds.py")
bench = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_mean_and_one_standard_error_use_the_n_minus_1_standard_deviation():
    mean, se = bench.mean_se([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    # deviations −4/3, −1/3, 5/3: squares sum to 42/9; / (n − 1) = 7/3; s.e. = sqrt(7/3) / sqrt(3) = sqrt(7) / 3
    assert se == pytest.approx(math.sqrt(7) / 3, rel=1e-12)


def test_paired_difference_two_seeds_against_the_cauchy_t_test():
    d = bench.paired([3.0, 7.0], [2.0, 4.0])  # differences 1 and 3
    assert (d["mean"], d["n"]) == (2.0, 2)
    assert d["se"] == pytest.approx(1.0)  # sd sqrt(2), over sqrt(2)
    assert d["z"] == pytest.approx(2.0)
    # one degree of freedom: the t distribution is Cauchy, P(|T| > t) = 1 − (2/π) atan(t)
    assert d["p"] == pytest.approx(1 - 2 / math.pi * math.atan(2.0), rel=1e-10)
    assert not d["resolved"]


def test_paired_difference_three_seeds_against_the_two_degree_of_freedom_t_test():
    a, b = [1.0, 2.0, 3.5], [0.5, 1.0, 1.0]  # differences 0.5, 1, 2.5: mean 4/3
    d = bench.paired(a, b)
    se = math.sqrt(((0.5 - 4 / 3) ** 2 + (1 - 4 / 3) ** 2 + (2.5 - 4 / 3) ** 2) / 2 / 3)
    assert d["mean"] == pytest.approx(4 / 3) and d["se"] == pytest.approx(se, rel=1e-12)
    t = (4 / 3) / se
    assert d["p"] == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-10)  # P(|T| > t), 2 degrees of freedom


def test_pairing_cancels_what_the_seeds_share():
    # a seed effect of size 10 shared by both methods: the unpaired errors are large, the paired one is not
    shared = [0.0, 10.0, -10.0, 5.0, -5.0]
    a = [s + 1.0 + e for s, e in zip(shared, (0.1, -0.1, 0.0, 0.05, -0.05))]
    b = list(shared)
    d = bench.paired(a, b)
    assert d["mean"] == pytest.approx(1.0) and d["se"] < 0.06 < 1 < bench.mean_se(a)[1]
    assert d["resolved"] and d["z"] > 15


@pytest.mark.parametrize("mean, se, text", [
    (-20.2712, 0.0134, "−20.271 ± 0.013"), (126.04, 2.31, "126.0 ± 2.3"), (0.1942, 0.0046, "0.194 ± 0.005"),
    (3.43, 0.63, "3.4 ± 0.6"), (69.7, 13.2, "70 ± 13"), (0.5, 0.0996, "0.50 ± 0.10"),
    (-0.0004, 0.03, "0.00 ± 0.03")])
def test_numbers_are_rounded_to_the_digits_their_error_supports(mean, se, text):
    assert bench.pm(mean, se) == text


def test_a_signed_difference_keeps_its_plus():
    assert bench.pm(0.0213, 0.0071, signed=True) == "+0.021 ± 0.007"


def test_the_quick_run_writes_its_report_json_and_figure_and_redraws_them_from_the_json(tmp_path, capsys):
    out, js, fig = tmp_path / "seeds.md", tmp_path / "seeds.json", tmp_path / "seeds.png"
    assert bench.main(["--only", "rbm", "centering", "--quick", "--json", str(js), "--out", str(out),
                       "--figure", str(fig)]) == 0
    saved = json.loads(js.read_text())
    rbm = saved["results"][0]
    assert [r["comparison"] for r in saved["results"]] == ["rbm", "centering"] and rbm["seeds"] == 2
    values = [s["pt"]["test log-likelihood"] for s in rbm["per_seed"]]
    assert rbm["summary"]["methods"]["pt"]["test log-likelihood"]["mean"] == pytest.approx(sum(values) / 2)
    pair = next(p for p in rbm["summary"]["pairs"] if (p["a"], p["b"]) == ("pt", "cd"))
    diffs = [s["pt"]["test log-likelihood"] - s["cd"]["test log-likelihood"] for s in rbm["per_seed"]]
    assert pair["se"] == pytest.approx(abs(diffs[0] - diffs[1]) / 2)  # two seeds: sd |d0 − d1|/√2, over √2
    text = out.read_text()
    assert "Command: `nice -n 19 .venv/bin/python benchmarks/bench_seeds.py --only rbm centering --quick" in text
    assert "| centered − plain | final |" in text and fig.stat().st_size > 0
    again = tmp_path / "again.md"
    assert bench.main(["--from-json", str(js), "--out", str(again)]) == 0
    assert again.read_text() == text


def test_one_seed_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--seeds", "1", "--only", "rbm"])
    assert exit_.value.code == 2 and "at least 2" in capsys.readouterr().err


def test_the_committed_report_is_the_committed_json_rendered(tmp_path):
    # the docs tests read the pairs' p-values from results_seeds.json and the numbers from results_seeds.md
    out = tmp_path / "seeds.md"
    assert bench.main(["--from-json", "--out", str(out)]) == 0
    assert out.read_text() == (ROOT / "benchmarks" / "results_seeds.md").read_text()

"""The numbers docs/mcmc-free.md quotes from benchmarks/results_inverse.md, each found there (see page_numbers).

The benchmark takes minutes and races ConIII, so nothing is recomputed: every cell of the page's accuracy and
time tables, and every number its prose takes from the benchmark, must be in the results file's row for that
model, sample size and solver.
"""

import re

import pytest

from page_numbers import BENCHMARKS, cite, page

PAGE = "mcmc-free"
INVERSE = "results_inverse.md"
SIZES = {"10³": "1e3", "10⁴": "1e4", "10⁵": "1e5", "3·10⁴": "3e4"}
SOLVERS = {"nMF": "nMF", "TAP": "TAP", "SM": "SM", "PLM": "PLM sym", "PLM asym": "PLM asym", "MPF": "MPF",
           "exact ML": "exact ML (L-BFGS)", "ConIII nMF": "ConIII nMF", "ConIII Pseudo": "ConIII Pseudo",
           "ConIII MPF": "ConIII MPF"}


def table(heading: str) -> list[dict[str, str]]:
    """The rows of the page table after the paragraph starting with ``heading``, as {column: cell}."""
    text = page(PAGE).split(heading, 1)[1]
    lines = [ln for ln in text.split("\n\n", 2)[1].splitlines() if ln.startswith("|")]
    columns = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(columns, (c.strip() for c in ln.strip("|").split("|")))) for ln in lines[2:]]


def result_row(model: str, size: str, solver: str) -> str:
    rows = [ln for ln in (BENCHMARKS / INVERSE).read_text(encoding="utf-8").splitlines()
            if ln.startswith(f"| {model} | {size} | {solver} |")]
    assert len(rows) == 1, (model, size, solver)
    return rows[0]


@pytest.mark.parametrize("heading", ["**Accuracy**", "**Time**"])
def test_every_cell_of_the_tables_is_in_the_results_file(heading):
    cells = 0
    for row in table(heading):
        model, size = row.pop("model"), SIZES[row.pop("M")]
        for column, cell in row.items():
            if cell == "—":
                continue
            entry = f"| {model} | {size} | {SOLVERS[column]} |"
            if "e+" in cell:  # a time printed as the file prints it, 6.8e+02 ms
                assert f"| {cell} |" in result_row(model, size, SOLVERS[column]) and cell in page(PAGE)
            else:
                cite(PAGE, INVERSE, entry, re.match(r"[\d.]+", cell).group(0))
            cells += 1
    assert cells >= (90 if heading == "**Accuracy**" else 30)


def test_the_prose_numbers():
    cite(PAGE, INVERSE, "| SK N=64 β=1 | 1e5 | PLM sym |", "3.1", "51")
    cite(PAGE, INVERSE, "| SK N=64 β=1 | 1e5 | PLM asym |", "41")
    cite(PAGE, INVERSE, "| SK N=64 β=1 | 1e5 | ConIII Pseudo |", "155")
    cite(PAGE, INVERSE, "| EA 8×8 ±J β=0.5 | 3e4 | PLM sym |", "42")
    cite(PAGE, INVERSE, "| SK N=16 β=1.0 | 1e3 | MPF |", "0.2642", "9.6")
    cite(PAGE, INVERSE, "| SK N=16 β=1.0 | 1e3 | ConIII MPF |", "0.2647", "32")
    assert round(32.1 / 9.6e-3, -2) == 3300  # "about 3,300× faster"
    cite(PAGE, INVERSE, "| SK N=16 β=1.0 | 1e4 | ConIII MCH |", "0.46", "19")
    cite(PAGE, INVERSE, "| SK N=16 β=1.0 | 1e4 | PLM sym |", "0.083", "33")
    cite(PAGE, INVERSE, "| SK N=16 β=1.0 | 1e5 | nMF |", "0.26")
    cite(PAGE, INVERSE, "| SK N=16 β=1.5 | 1e5 | nMF |", "1.0")
    cite(PAGE, INVERSE, "| SK N=16 β=1.0 | 1e5 | TAP |", "0.15")
    cite(PAGE, INVERSE, "| SK N=16 β=1.5 | 1e5 | TAP |", "0.41")
    cite(PAGE, INVERSE, "Data: SK N = 16: exact samples", "1.1")  # τ_int of the energy, in kept samples
    seconds = [float(v) * (1e-3 if unit == "ms" else 1.0) for ln in (BENCHMARKS / INVERSE).read_text(encoding="utf-8")
               .splitlines() if re.match(r"\| [^|]+ \| [^|]+ \| (nMF|TAP|SM) \|", ln)
               for v, unit in [re.findall(r"\| ([\d.e+]+) (ms|s) \|", ln)[0]]]
    assert (f"{min(seconds) * 1e3:.2f}", f"{max(seconds):.2f}") == ("0.25", "0.13")
    assert "0.25 ms to 0.13 s" in page(PAGE)
    iterations = [int(n) for ln in (BENCHMARKS / INVERSE).read_text(encoding="utf-8").splitlines()
                  if re.match(r"\| [^|]+ \| [^|]+ \| (PLM sym|PLM asym|MPF) \|", ln)
                  for n in re.findall(r"(\d+) iterations", ln)]
    assert (min(iterations), max(iterations)) == (11, 194) and "11–194 iterations" in page(PAGE)

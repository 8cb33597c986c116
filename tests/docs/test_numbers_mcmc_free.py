"""The numbers docs/mcmc-free.md quotes from benchmarks/results_inverse.md, each found there (see page_numbers).

The benchmark takes minutes and races ConIII, so nothing is recomputed: every cell of the page's accuracy table,
and every number its prose takes from the benchmark, must be in the results file's row for that model, sample
size and solver. The solvers' times against ConIII's are on docs/benchmarks.md; test_numbers_benchmarks.py checks
them with ``check_cells`` from here.
"""

import re

from page_numbers import BENCHMARKS, cite, page

PAGE = "mcmc-free"
INVERSE = "results_inverse.md"
SIZES = {"10³": "1e3", "10⁴": "1e4", "10⁵": "1e5", "3·10⁴": "3e4"}
SOLVERS = {"nMF": "nMF", "TAP": "TAP", "SM": "SM", "PLM": "PLM sym", "PLM asym": "PLM asym", "MPF": "MPF",
           "exact ML": "exact ML (L-BFGS)", "ConIII nMF": "ConIII nMF", "ConIII Pseudo": "ConIII Pseudo",
           "ConIII MPF": "ConIII MPF"}


def table(heading: str, stem: str = PAGE) -> list[dict[str, str]]:
    """The rows of the table on ``docs/<stem>.md`` after the paragraph starting with ``heading``, as {column: cell}."""
    text = page(stem).split(heading, 1)[1]
    lines = [ln for ln in text.split("\n\n", 2)[1].splitlines() if ln.startswith("|")]
    columns = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(columns, (c.strip() for c in ln.strip("|").split("|")))) for ln in lines[2:]]


def result_row(model: str, size: str, solver: str) -> str:
    rows = [ln for ln in (BENCHMARKS / INVERSE).read_text(encoding="utf-8").splitlines()
            if ln.startswith(f"| {model} | {size} | {solver} |")]
    assert len(rows) == 1, (model, size, solver)
    return rows[0]


def check_cells(stem: str, heading: str) -> int:
    """Every cell of the table after ``heading`` on ``docs/<stem>.md`` is in its row of the results file; the count."""
    cells = 0
    for row in table(heading, stem):
        model, size = row.pop("model"), SIZES[row.pop("M")]
        for column, cell in row.items():
            if cell == "—":
                continue
            entry = f"| {model} | {size} | {SOLVERS[column]} |"
            if "e+" in cell:  # a time printed as the file prints it, 6.8e+02 ms
                assert f"| {cell} |" in result_row(model, size, SOLVERS[column]) and cell in page(stem)
            else:
                cite(stem, INVERSE, entry, re.match(r"[\d.]+", cell).group(0))
            cells += 1
    return cells


def test_every_cell_of_the_accuracy_table_is_in_the_results_file():
    assert check_cells(PAGE, "**Accuracy**") >= 90


def test_the_prose_numbers():
    cite(PAGE, INVERSE, "| SK N=16 β=1.0 | 1e5 | nMF |", "0.26")
    cite(PAGE, INVERSE, "| SK N=16 β=1.5 | 1e5 | nMF |", "1.0")
    cite(PAGE, INVERSE, "| SK N=16 β=1.0 | 1e5 | TAP |", "0.15")
    cite(PAGE, INVERSE, "| SK N=16 β=1.5 | 1e5 | TAP |", "0.41")
    cite(PAGE, INVERSE, "Data: SK N = 16: exact samples", "1.1")  # τ_int of the energy, in kept samples

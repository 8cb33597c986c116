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


SEED_ROWS = {  # β, M: PLM, MPF, exact ML, PLM − exact ML, MPF − PLM (mean, one s.e.), as docs/mcmc-free.md prints them
    ("0.5", "1,000"): ("0.319 0.008", "0.322 0.008", "0.318 0.008", "+0.0004 0.0004", "+0.0035 0.0007"),
    ("0.5", "10,000"): ("0.0991 0.0023", "0.1000 0.0023", "0.0991 0.0023", "+0.00002 0.00011", "+0.0009 0.0004"),
    ("0.5", "100,000"): ("0.0305 0.0009", "0.0308 0.0010", "0.0306 0.0010", "−0.00008 0.00004", "+0.00022 0.00010"),
    ("1", "1,000"): ("0.285 0.007", "0.309 0.008", "0.278 0.008", "+0.0075 0.0019", "+0.024 0.003"),
    ("1", "10,000"): ("0.0851 0.0021", "0.0906 0.0019", "0.0842 0.0023", "+0.0009 0.0003", "+0.0055 0.0009"),
    ("1", "100,000"): ("0.0275 0.0008", "0.0291 0.0009", "0.0273 0.0008", "+0.00021 0.00019", "+0.0016 0.0004"),
    ("1.5", "1,000"): ("0.70 0.15", "1.03 0.27", "0.93 0.28", "−0.23 0.13", "+0.33 0.13"),
    ("1.5", "10,000"): ("0.1121 0.0026", "0.1344 0.0020", "0.1103 0.0028", "+0.0018 0.0011", "+0.0223 0.0029"),
    ("1.5", "100,000"): ("0.0364 0.0006", "0.0434 0.0012", "0.0356 0.0006", "+0.0008 0.0004", "+0.0070 0.0012"),
}


def test_plm_mpf_and_exact_ml_over_ten_data_sets():
    from test_numbers_rbm import seed_pair, seed_run

    seeds = "results_seeds.md"
    cite(PAGE, seeds, "`--only inverse`", "10")
    section = page(PAGE).split("**Over data sets.**", 1)[1].split("\n## ", 1)[0]
    text = section.split("\n\n", 2)[1]  # the table
    prose = " ".join(section.split())
    resolved = {}
    for (beta, m), (plm, mpf, exact, plm_exact, mpf_plm) in SEED_ROWS.items():
        setting = f"β {beta}, M {m}"
        for method, numbers in (("PLM", plm), ("MPF", mpf), ("exact ML", exact)):
            cite(PAGE, seeds, f"| {setting}, {method} |", *numbers.split())
        for (a, b), numbers in ((("PLM", "exact ML"), plm_exact), (("MPF", "PLM"), mpf_plm)):
            cite(PAGE, seeds, f"| {setting}: {a} − {b} |", *numbers.split())
            resolved[setting, a, b] = seed_pair("inverse", f"{setting}, {a}", f"{setting}, {b}", "relative error")
            mean, se = numbers.split()
            shown = f"**{mean} ± {se}**".replace("-", "−")
            assert (shown in text) == resolved[setting, a, b]["resolved"], (setting, a, b)  # bold where resolved
    mpf_worse = [k for k, p in resolved.items() if k[1] == "MPF" and p["resolved"] and p["mean"] > 0]
    assert len(mpf_worse) == 8 and "in 8 of the 9 settings" in prose
    means = {m: v["relative error"]["mean"] for m, v in seed_run("inverse")["summary"]["methods"].items()}

    def excess(beta, m, a, b):  # A's error over B's, in per cent of B's
        return round(100 * resolved[f"β {beta}, M {m}", a, b]["mean"] / means[f"β {beta}, M {m}, {b}"])
    assert [excess("0.5", m, "MPF", "PLM") for m in ("1,000", "10,000")] == [1, 1]
    assert sorted(excess("1", m, "MPF", "PLM") for m in ("1,000", "10,000", "100,000")) == [6, 6, 8]
    assert sorted(excess("1.5", m, "MPF", "PLM") for m in ("10,000", "100,000")) == [19, 20]
    plm_resolved = sorted(k[0] for k, p in resolved.items() if k[1] == "PLM" and p["resolved"])
    assert plm_resolved == ["β 0.5, M 100,000", "β 1, M 1,000", "β 1, M 10,000"]
    assert [round(100 * resolved[f"β 1, M {m}", "PLM", "exact ML"]["mean"] / means[f"β 1, M {m}, exact ML"])
            for m in ("1,000", "10,000")] == [3, 1]
    assert f"{resolved['β 0.5, M 100,000', 'PLM', 'exact ML']['p']:.3f}" == "0.048" and "$p = 0.048$" in prose
    # "on three of the ten draws every method's error exceeds 1" (β = 1.5, M = 10³)
    per_seed = seed_run("inverse")["per_seed"]
    above = [all(s[f"β 1.5, M 1,000, {m}"]["relative error"] > 1 for m in ("PLM", "MPF", "exact ML")) for s in per_seed]
    assert sum(above) == 3 == sum(any(s[f"β 1.5, M 1,000, {m}"]["relative error"] > 1 for m in ("PLM", "MPF",
                                                                                               "exact ML"))
                                  for s in per_seed)

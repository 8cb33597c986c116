"""The numbers docs/benchmarks.md quotes, each found in the results file it cites (see page_numbers).

Speed, races against peer libraries and the cost of long runs live on this page rather than in the chapters;
none of them is re-run by a test (timings on a shared machine are not repeatable): each is cited from the
``benchmarks/results_*.md`` file that names its command, so a re-run that changes the file without the page, or
a page edited away from its source, fails here.
"""

from page_numbers import cite

PAGE = "benchmarks"


def test_the_enumeration_rates():
    cite(PAGE, "results_exact.md", "| 20 | 1 |", "1.8", scale=1e9)
    cite(PAGE, "results_exact.md", "| 24 | 1 |", "4.9", scale=1e9)
    cite(PAGE, "results_exact.md", "| 20 | 1 |", "266")
    cite(PAGE, "results_exact.md", "| 24 | 1 |", "936")
    cite(PAGE, "results_exact.md", "| 12 | 1 |", "183")
    cite(PAGE, "results_exact.md", "rates vary by up to", "2")

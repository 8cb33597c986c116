"""The answers a docs page prints in its ``## Exercises`` section, read back for the tests that recompute them.

An answer is written in inline code as `` `name = number` `` (e.g. `` `ln Z = 2.5749` ``, one space either side of
the ``=``), so a test can find it by name and compare it with what kakusan computes: the test fails when the page
and the code disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
ANSWER = re.compile(r"`([^`]+?) = (-?\d+(?:\.\d+)?)`")  # spaces around "=": `reg_covar=0.0` is no answer


def exercises(stem: str) -> str:
    """The text of the ``## Exercises`` section of ``docs/<stem>.md`` (to the next level-2 heading)."""
    text = (DOCS / f"{stem}.md").read_text(encoding="utf-8")
    _, found, rest = text.partition("\n## Exercises\n")
    assert found, f"docs/{stem}.md has no '## Exercises' section"
    return rest.split("\n## ", 1)[0]


def answers(stem: str) -> dict[str, str]:
    """``{name: number as printed}`` for every `` `name = number` `` in the page's exercises."""
    return {name.strip(): number for name, number in ANSWER.findall(exercises(stem))}


def printed(value: float, decimals: int) -> str:
    """``value`` as the page prints it, rounded to ``decimals`` places (``-0.0000`` as ``0.0000``)."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def check(stem: str, name: str, value: float) -> None:
    """The page prints ``name = <value rounded to the printed number of decimals>``."""
    shown = answers(stem).get(name)
    assert shown is not None, f"docs/{stem}.md prints no answer `{name} = …` (it has {sorted(answers(stem))})"
    decimals = len(shown.partition(".")[2])
    assert shown == printed(value, decimals), f"docs/{stem}.md says {name} = {shown}; kakusan gives {value!r}"

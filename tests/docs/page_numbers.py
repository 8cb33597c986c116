"""The numbers a docs page prints, read back so that a test can check each one against its source.

Every measured number on a page of ``docs/`` (a result, not an equation's constant, an option's default or an
input the page chooses) has one of two sources, and a test in ``tests/docs/`` checks it:

1. **A small computation** (a few CPU-seconds at most, seeded, deterministic). The page quotes the number in
   inline code as `` `name = number` `` — one space either side of the ``=``, e.g. `` `KL(p0||q) = 0.068` `` —
   or as a list, `` `natural steps = 8, 16, 26` ``, anywhere on the page; exercise answers are quoted the same
   way. ``tests/docs/test_numbers_<page>.py`` (or ``test_exercises_<page>.py`` for the answers) recomputes the
   number with kakusan and calls ``check(stem, name, value)``, which compares it with the page at the number of
   decimals the page prints. A name is quoted with one value per page, so a test fails when the page and the
   code disagree.
2. **A benchmark** (timings, races against peer libraries, long trainings, anything a test cannot afford or a
   machine cannot repeat). The page links the ``benchmarks/results_*.md`` file as ``../benchmarks/results_*.md``
   and quotes the number in its prose; the test calls ``cite(stem, results, entry, *numbers)``. It checks that
   the page links that file and prints each number, that the results file's entry (the table row, or the
   paragraph or list item, that contains ``entry``) holds each number — the same at the page's decimals, after
   dividing by ``scale`` (a number the page prints without a sign may be the entry's magnitude, as in "1.7 s.e.
   below") — and that the entry's section (or the file's preamble) names the command that made it
   (a ``Command:`` line, a code block, or a line that opens with the command as inline code, as
   ``benchmarks/eval_diffusion.py`` and ``bench_prompt.py`` write them). A re-run that changes the results file without the page, or a page
   edited away from its source, fails the test. A record that a program writes into the repository beside what
   it made (the shipped prompt model's ``metrics.json``) is cited the same way by
   ``cite_json(stem, path, key, *numbers)``.

A number a ```python block would only state in a comment is checked by an ``assert`` in the block instead
(``tests/test_docs.py`` runs every block), or quoted in the prose after it.

Timings on a shared machine are never recomputed by a test: they are quoted from a results file, or replaced by
a count (steps, states, flops) that a small computation checks. Each ``±`` on a page says whether it is one or
two standard errors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BENCHMARKS = ROOT / "benchmarks"
NUMBER = r"[-−]?\d+(?:\.\d+)?"
# `name = number` or `name = n1, n2, ...`; spaces around "=", so `reg_covar=0.0` is no quote.
QUOTE = re.compile(rf"`([^`]+?) = ({NUMBER}(?:, {NUMBER})*)`")
# A number in a results file: thousands commas, a sign (ASCII, Unicode minus or plus), an exponent.
RESULT_NUMBER = re.compile(r"[-−+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?")


def page(stem: str) -> str:
    """The Markdown text of ``docs/<stem>.md``."""
    return (DOCS / f"{stem}.md").read_text(encoding="utf-8")


def exercises(stem: str) -> str:
    """The text of the ``## Exercises`` section of ``docs/<stem>.md`` (to the next level-2 heading)."""
    _, found, rest = page(stem).partition("\n## Exercises\n")
    assert found, f"docs/{stem}.md has no '## Exercises' section"
    return rest.split("\n## ", 1)[0]


def _quotes(text: str, where: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, number in QUOTE.findall(text):
        name, number = name.strip(), number.replace("−", "-")
        assert found.get(name, number) == number, f"{where} quotes `{name} = …` twice: {found[name]} and {number}"
        found[name] = number
    return found


def answers(stem: str) -> dict[str, str]:
    """``{name: number as printed}`` for every `` `name = number` `` in the page's exercises."""
    return _quotes(exercises(stem), f"docs/{stem}.md's exercises")


def quoted(stem: str) -> dict[str, str]:
    """``{name: number(s) as printed}`` for every `` `name = number` `` anywhere on ``docs/<stem>.md``."""
    return _quotes(page(stem), f"docs/{stem}.md")


def printed(value: float, decimals: int) -> str:
    """``value`` as the page prints it, rounded to ``decimals`` places (``-0.0000`` as ``0.0000``)."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _decimals(number: str) -> int:
    return len(number.partition(".")[2])


def check(stem: str, name: str, value) -> None:
    """The page quotes `` `name = <value rounded to the printed number of decimals>` `` (a list for a list)."""
    shown = quoted(stem).get(name)
    assert shown is not None, f"docs/{stem}.md quotes no `{name} = …` (it has {sorted(quoted(stem))})"
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    numbers = shown.split(", ")
    computed = ", ".join(printed(float(v), _decimals(n)) for v, n in zip(values, numbers))
    assert len(values) == len(numbers) and shown == computed, (
        f"docs/{stem}.md says `{name} = {shown}`; kakusan gives {values!r}")


def _sections(text: str) -> list[str]:
    """The file's preamble and its ``## `` sections, each with its heading."""
    return re.split(r"\n(?=## )", text)


def _entries(section: str) -> list[str]:
    """A section's table rows, list items and paragraphs, each joined onto one line."""
    entries, current = [], []
    for line in section.splitlines():
        starts = line.startswith("|") or re.match(r"\s*(?:[*-]|\d+\.) ", line) is not None
        if not line.strip() or starts or (current and current[0].startswith("|")):
            if current:
                entries.append(" ".join(current))
            current = []
        if line.strip():
            current.append(line.strip())
    if current:
        entries.append(" ".join(current))
    return entries


def _names_a_command(text: str) -> bool:
    opens_with_command = re.search(r"(?m)^`[^`\n]*\b(?:python|kakusan) [^`\n]*`", text) is not None
    return "Command:" in text or "```" in text or opens_with_command


def cite(stem: str, results: str, entry: str, *numbers: str, scale: float = 1.0) -> None:
    """``docs/<stem>.md`` links ``benchmarks/<results>`` and prints ``numbers``, which its entry holds.

    ``entry`` is a piece of text that occurs in exactly one table row, list item or paragraph of the results
    file; each of ``numbers`` (as the page prints it, e.g. ``"3.5"``, ``"−85.46"``, ``"14,500"``) must occur on
    the page, and in that entry as a number that, divided by ``scale`` and rounded to the page's decimals, reads
    the same (``3.49`` in the file cites ``3.5`` on the page; ``4.87e+09`` with ``scale=1e9`` cites ``4.9``).
    """
    text = page(stem)
    assert f"](../benchmarks/{results})" in text, f"docs/{stem}.md quotes {results} but does not link it"
    source = (BENCHMARKS / results).read_text(encoding="utf-8")
    sections = _sections(source)
    hits = [(s, e) for s in sections for e in _entries(s) if entry in e]
    assert len(hits) == 1, f"benchmarks/{results}: {len(hits)} entries contain {entry!r} (want exactly one)"
    section, row = hits[0]
    assert _names_a_command(section) or _names_a_command(sections[0]), (
        f"benchmarks/{results}: the section of {entry!r} names no command (a 'Command:' line or a code block)")
    found = [float(n.replace(",", "").replace("−", "-")) for n in RESULT_NUMBER.findall(row)]
    _prints_each(stem, text, numbers, found, scale, f"the entry of benchmarks/{results} holding {entry!r}: {row}")


def _prints_each(stem: str, text: str, numbers, found: list[float], scale: float, source: str) -> None:
    """The page ``text`` prints each of ``numbers``, and one of ``found`` / ``scale`` reads as each."""
    flat = text.replace("−", "-")
    for number in numbers:
        plain = number.replace("−", "-")
        assert re.search(rf"(?<![\w.]){re.escape(plain)}(?!\d|\.\d)", flat), f"docs/{stem}.md does not print {number}"
        target = plain.replace(",", "").lstrip("+")
        signed = plain[0] in "+-"   # an unsigned number on the page may be a magnitude ("1.7 s.e. below")
        values = found if signed else found + [abs(v) for v in found]
        assert any(printed(v / scale, _decimals(target)) == target for v in values), (
            f"docs/{stem}.md prints {number}, but {source} does not")


def cite_json(stem: str, path: str, key: str, *numbers: str, scale: float = 1.0) -> None:
    """``docs/<stem>.md`` names ``path`` (a JSON file of the repository) and its ``key``, and prints ``numbers``.

    ``key`` is dotted (``"autoencoder.train_seconds"``, ``"psnr_db.mnist"``); the page must name the file's name and,
    in inline code, the key or its first part (e.g. ``metrics.json`` and `` `psnr_db` ``), and each number is checked against the value as
    in :func:`cite`. For a run's record that a program writes, such as the shipped model's ``metrics.json``.
    """
    text = page(stem)
    name, first = Path(path).name, key.split(".")[0]
    assert name in text and (f"`{key}`" in text or f"`{first}`" in text), (
        f"docs/{stem}.md quotes {path} but does not name it and `{key}`")
    value = json.loads((ROOT / path).read_text(encoding="utf-8"))
    for part in key.split("."):
        value = value[part]
    _prints_each(stem, text, numbers, [float(value)], scale, f"{path}'s {key} = {value!r}")

"""The manifest of docs/figures (benchmarks/figures.py): every PNG has a recipe, every recipe names files that exist
and commands that exist (a script, a module, a kakusan subcommand, a tour chapter, a page's python block)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("docs_figures_manifest", ROOT / "benchmarks" / "figures.py")
figures = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(figures)


def test_every_png_in_docs_figures_has_a_recipe_and_every_recipe_names_a_png_that_is_there():
    pngs = {p.name for p in (ROOT / "docs" / "figures").glob("*.png")}
    assert sorted(pngs - set(figures.MANIFEST)) == [], "PNGs in docs/figures with no recipe in benchmarks/figures.py"
    assert sorted(set(figures.MANIFEST) - pngs) == [], "recipes naming a PNG that docs/figures does not hold"


def test_no_figure_has_two_recipes_and_every_cost_is_a_known_class():
    names = [name for r in figures.RECIPES for name in r.files]
    assert len(names) == len(set(names))
    assert len({r.name for r in figures.RECIPES}) == len(figures.RECIPES)
    assert {r.cost for r in figures.RECIPES} <= set(figures.COSTS)


def test_every_figure_a_page_shows_is_in_the_manifest():
    shown = {m for page in (ROOT / "docs").glob("*.md")
             for m in re.findall(r"\]\(figures/([\w.-]+\.png)\)", page.read_text(encoding="utf-8"))}
    assert shown, "no page links a figure: the pattern is wrong"
    assert sorted(shown - set(figures.MANIFEST)) == []


def _commands():
    return [(r, cmd) for r in figures.RECIPES for cmd in r.commands]


@pytest.mark.parametrize("recipe, cmd", _commands(), ids=lambda x: x if isinstance(x, str) else None)
def test_each_command_names_something_that_exists(recipe, cmd):
    from kakusan.cli import COMMANDS
    from kakusan.tour import CHAPTERS

    if cmd[0] == figures.PAGE_BLOCK:
        block = figures.page_block(cmd[1], cmd[2])  # raises when the page or its heading or block is gone
        for name, made in recipe.files.items():
            assert f'"{made}"' in block, f"{cmd[1]}'s block does not write {made}"
    elif cmd[0] == "kakusan":
        assert cmd[1] in COMMANDS, f"no kakusan subcommand {cmd[1]!r}"
        if cmd[1] == "tour":
            chapter = cmd[cmd.index("--chapters") + 1]
            assert chapter in CHAPTERS
            run = cmd[cmd.index("--run-dir") + 1]
            source = (ROOT / "src" / "kakusan" / "tour" / f"{chapter}.py").read_text(encoding="utf-8")
            for made in recipe.files.values():
                assert made.startswith(f"{run}/figures/")
                assert f'ctx.figure("{made.rsplit("/", 1)[1]}")' in source, f"tour chapter {chapter} draws no {made}"
    elif cmd[0] == "python":
        if cmd[1] == "-m":
            assert importlib.util.find_spec(cmd[2]) is not None, f"no module {cmd[2]}"
        elif cmd[1] == "-c":
            compile(cmd[2], "<figures recipe>", "exec")
        else:
            assert (ROOT / cmd[1]).is_file(), f"no script {cmd[1]}"
    else:
        pytest.fail(f"unknown command {shlex.join(cmd)}")


def test_list_prints_one_line_per_figure_and_a_bad_name_is_a_one_line_error(capsys, tmp_path):
    assert figures.main(["--list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(figures.MANIFEST)
    assert figures.main(["--only", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown recipe(s) nope" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_costly_recipe_is_printed_not_run(capsys, tmp_path):
    race = figures.MANIFEST["rbm_race.png"]
    assert race.cost not in figures.CHEAP
    assert figures.main(["--only", race.name, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert race.shell() in out and "race.png -> docs/figures/rbm_race.png" in out
    assert list(tmp_path.iterdir()) == []


def test_the_intuition_recipe_draws_its_figures_under_the_docs_names(tmp_path):
    assert figures.main(["--only", "intuition", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["intuition_jensen.png", "intuition_log.png",
                                                          "intuition_surrogate.png"]


def test_the_prompt_model_recipe_draws_with_the_benchmarks_own_figure_function():
    # benchmarks/figures.py --prompt calls bench_prompt.figures, so both draw the same PNGs (byte-identical when made)
    assert "def figures(b: Bench, results: dict, folder: Path)" in (ROOT / "benchmarks" / "bench_prompt.py").read_text()
    assert set(figures.RECIPES[[r.name for r in figures.RECIPES].index("prompt-model")].files) == {
        "prompt_grid.png", "prompt_guidance.png", "prompt_edit.png", "prompt_confusion.png"}
    assert (ROOT / "benchmarks" / "results_prompt_confusion.json").is_file()  # the matrix it redraws

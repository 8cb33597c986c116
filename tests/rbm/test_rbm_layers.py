"""Layering: model, sampler and estimator modules never import report/ or commands/ (those sit on top)."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "kakusan"
# rbm/fit.py is the training layer (it writes run directories), not a model module
MODULES = sorted(p for package in ("rbm", "mcmc", "evaluate") for p in (SRC / package).glob("*.py")
                 if p.name != "fit.py")


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", MODULES, ids=[f"{p.parent.name}/{p.name}" for p in MODULES])
def test_no_model_module_imports_report_or_commands(path):
    bad = sorted(n for n in imported(path) if n.startswith(("kakusan.report", "kakusan.commands")))
    assert not bad, f"{path.relative_to(SRC)} imports {bad}: figures belong in kakusan/report/, wiring in commands/"

"""The suite holds at least 500 probes, counted over every probe module.

Each test declares the probes it makes (one, or ``n`` hypothesis examples: ``support.examples``), and conftest
checks that each test that passed made at least as many; the declarations are read from the collected tests, so
the count holds however the tests are spread over processes (``pytest -n 2``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import DESELECTED, declared_probes

SUITE = Path(__file__).parent
MINIMUM = 500


def test_there_are_at_least_500_probes(request):
    items = [item for item in request.session.items if Path(item.path).parent == SUITE]
    collected = {Path(item.path).name for item in items}
    modules = {path.name for path in SUITE.glob("test_*.py")}
    if collected != modules or request.config.stash.get(DESELECTED, False):
        pytest.skip(f"a part of the probe suite was selected: run all of {SUITE} to count its probes")
    total = sum(declared_probes(item) for item in items)
    assert total >= MINIMUM, total

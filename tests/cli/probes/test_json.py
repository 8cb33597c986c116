"""``--json`` output is strict JSON: non-finite values become strings, never the bare tokens NaN or Infinity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .support import fill


@pytest.mark.parametrize("argv", [
    ["data", "info", "{real}", "--json"], ["gaussian", "fit", "{real}", "--json"],
    ["ising", "exact", "{model}", "--json"], ["rbm", "evaluate", "{rbm}", "--json", "--exact"],
    ["vae", "evaluate", "{vae}", "--json", "--k", "2"], ["diffusion", "evaluate", "{diffusion}", "--json", "--n-t", "2"],
    ["metric-net", "show", "--json"],
])
def test_json_output_is_strict(probe, home, names, argv):
    argv = fill(argv, names)
    rc, out, _ = probe(argv if argv[0] in ("data", "metric-net") else [*argv, "--runs-root", home / "js"])
    assert rc == 0
    json.loads(out.strip().splitlines()[-1], parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))


def test_nonfinite_values_become_strings_in_json():
    from kakusan.files import dumps_strict

    assert json.loads(dumps_strict({"a": float("nan"), "b": [float("inf")], "c": np.float32("-inf")})) == \
        {"a": "nan", "b": ["inf"], "c": "-inf"}

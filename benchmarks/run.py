"""Run every benchmark in this folder (``bench_*.py``) in turn; each writes its own results_*.md.

    make bench                               # all of them, full size
    .venv/bin/python benchmarks/run.py exact mcmc   # only these
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    failed = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        failed += subprocess.call([sys.executable, str(script)], env=env) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

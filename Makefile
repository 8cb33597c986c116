# The two commands a new user needs (see README): `make demo` and `make test`.
# Both create .venv on first use. The CPU build of torch goes in first, so that nothing
# pulls a multi-GB CUDA build as a dependency.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.kakusan-installed
TOUR_ARGS ?=
TEST_ARGS ?=
TORCH_CPU ?= torch==2.13.0
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_CPU)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kakusan tour $(TOUR_ARGS)

test: $(STAMP)
	$(PY) -m pytest -n 2 $(TEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache

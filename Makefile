# Two entry points for a fresh machine:  `make demo`  and  `make test` (lint, then tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: demo test test-all lint mutants bench install

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Main job: the bundled small ARGenSeg segments the bundled scene ("the red circle"):
# answer text, mask, overlay, per-scale previews and the IoU with the true mask.
demo: install
	$(VENV)/bin/argenseg segment --out out/mask.png --overlay out/overlay.png --previews out/previews $(ARGS)

# Test files run on JOBS worker processes (pytest-xdist), each file on one worker, so a
# file's module fixtures and compiled programs are built once.
JOBS ?= 2

test: lint
	$(PY) -m pytest -q -m "not slow" -n $(JOBS) --dist loadfile --durations=15 $(ARGS)

lint: install
	$(VENV)/bin/ruff check .

test-all: install
	$(PY) -m pytest -q $(ARGS)

# Plants plausible bugs one at a time (tests/mutants.py); every one must be caught.
mutants: install
	$(PY) tests/mutants.py $(ARGS)

bench: install
	$(PY) benchmarks/vqvae_bench.py $(ARGS)

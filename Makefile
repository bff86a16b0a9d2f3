# Two entry points for a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: demo test test-all bench install

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Main job (until the bundled ARGenSeg segments): the bundled scene's mask through the
# bundled mask VQ-VAE -> multi-scale codes -> reconstruction, previews and the IoU.
demo: install
	$(VENV)/bin/argenseg vae-roundtrip --out out/mask_roundtrip.png --previews out/previews $(ARGS)

test: install
	$(PY) -m pytest -q -m "not slow" --durations=15 $(ARGS)

test-all: install
	$(PY) -m pytest -q $(ARGS)

bench: install
	$(PY) benchmarks/vqvae_bench.py $(ARGS)

# Quick start:  make train   (set up, then `neurornn train` with the default task)
#               make test    (set up, then the whole test suite; this is what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup train test test-fast bench clean

setup: $(VENV)/.installed

# The CPU build of torch 2.13.0 goes in first so that nothing pulls a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,neurogym,nwb,ray]'
	touch $@

train: setup
	$(BIN)/neurornn train

test: setup
	$(BIN)/python -m pytest -q -n 2

test-fast: setup
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

bench: setup
	$(BIN)/python benchmarks/bench_train_step.py

clean:
	rm -rf $(VENV) .pytest_cache

# ghostswap: every target builds .venv from pyproject.toml first, so a fresh
# machine needs nothing but python3 (3.11+) with venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The tests and the demo run the pure source; bench/replay.py starts its
# native run itself (GHOSTSWAP_NATIVE, ghostswap/native.py).
unexport GHOSTSWAP_NATIVE

.PHONY: demo test test-slow test-root test-all lint native bench check-all clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ghostswap run

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

# zswap last: once enabled, this kernel swaps in no large folios until reboot.
test-root: $(STAMP)
	$(PY) -m pytest -m "root and not zswap"
	$(PY) -m pytest -m "root and zswap"

test-all: $(STAMP)
	$(PY) -m pytest -m ''

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# The fast mode compiled by mypyc into build/native (needs gcc); used by a
# process started with GHOSTSWAP_NATIVE=1 while the source is unchanged.
native: $(STAMP)
	$(PY) -m ghostswap.native

bench: native
	$(PY) bench/alloc.py
	$(PY) bench/workload.py
	$(PY) bench/replay.py
	$(PY) bench/check.py

check-all: $(STAMP)
	$(VENV)/bin/ghostswap check --all --iterations 10000

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis

# Two entry points matter: `make dev` (the whole local stack) and `make test` (the whole suite).
# Both create .venv and install what they need themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test venv worker api bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m devstack

# Three pytest workers on two cores: the fault tests spend most of their time waiting on real
# time (outages, heartbeat timeouts, short billing periods), so a third worker fills it.
# PYTEST_XDIST=0 runs everything in one process (e.g. to debug with -x or --pdb).
PYTEST_XDIST ?= 3

test: $(STAMP)
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -q -n $(PYTEST_XDIST) $(PYTEST_ARGS)

worker: $(STAMP)
	$(BIN)/python -m workers.main

api: $(STAMP)
	$(BIN)/python -m api

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache

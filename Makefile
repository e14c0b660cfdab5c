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

# Six pytest workers on two cores: most of the suite's time is spent waiting on real time
# (outages, heartbeat timeouts, short billing periods, killed and restarted processes, the
# browser), not on the CPU; worksteal hands a finished worker the tests still queued on a busy
# one. PYTEST_XDIST=0 runs everything in one process (e.g. to debug with -x or --pdb). The
# twelve slowest tests are listed at the end, so a CI log says where the suite's time goes.
# Bytecode is written even where the environment says PYTHONDONTWRITEBYTECODE (these machines
# do): otherwise every pytest worker rewrites the asserts of every test module (about 10 s of
# CPU each) and every worker, API and CLI process the tests start compiles the project again.
PYTEST_XDIST ?= 6

test: $(STAMP)
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -q -n $(PYTEST_XDIST) --dist worksteal --durations=12 $(PYTEST_ARGS)

worker: $(STAMP)
	$(BIN)/python -m workers.main

api: $(STAMP)
	$(BIN)/python -m api

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache

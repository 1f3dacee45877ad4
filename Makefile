# The virtual environment is created on first use and refreshed when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test test-slow check bench clean

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/awardbot console

# The fast suite on every core (at most 4 workers; each PostgreSQL test has its own schema, every
# fake server its own port): 3,092 tests took 11 min 46 s on 2 cores; serially 2,337 took 9 min 47 s.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -n auto --maxprocesses=4 $(PYTEST_ARGS)

# The long reliability runs (tests/reliability, marked slow): kill -9 and database outages.
test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -m slow $(PYTEST_ARGS)

# Every benchmark of issue 13 in one run, one table of ratios, benchmarks/results.json (~20 min;
# not part of `make test`, whose tests/bot/test_bench_all_smoke.py runs it at smoke sizes).
# BENCH_ARGS=--quick for smoke sizes, BENCH_ARGS="--only steps memory" for some rows.
bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run_all.py $(BENCH_ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

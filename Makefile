# Every target bootstraps .venv from the pinned versions in constraints.txt when it is missing or stale.
# Needs only Python 3.11, make and git. Override the interpreter with `make PYTHON=/path/to/python3.11`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PERSONALIZE_RAW_DIR ?= data/raw
export PERSONALIZE_DUCKDB_PATH ?= data/warehouse.duckdb
export DBT_PROFILES_DIR ?= $(CURDIR)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: help install run test ui lint bench dbt-docs constraints clean

help:
	@echo "make run    generate the 20k-customer demo (first time), materialize the whole Dagster graph, print a summary"
	@echo "make test   run the whole test suite (installs what it needs)"
	@echo "make ui     serve the Dagster UI on 127.0.0.1:3000"
	@echo "make lint   ruff + sqlfluff"
	@echo "make bench  run benchmarks and rewrite BENCHMARKS.md"

install: $(STAMP)

# Bytecode is compiled once here: uv does not compile it (pip does), and where PYTHONDONTWRITEBYTECODE is set
# no run ever caches it, so every dbt, Dagster or pytest process compiled dbt's and Dagster's sources again
# (about 3 s of CPU per dbt invocation).
$(STAMP): constraints.txt pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e ".[dev]"
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/personalize run

# Two test files at a time: much of every dbt invocation is single-threaded Python (parsing, compiling,
# Jinja), so one file at a time leaves a core idle. A file stays on one worker, so its module fixtures (one dbt
# build per module) are built once. Files go out in collection order, the longest first (tests/conftest.py
# LONGEST_FILES_FIRST), so both workers finish together. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
# Real programs some tests drive (the UI test and the PostgreSQL portability test), installed when missing.
CHROMIUM := /usr/bin/chromium
POSTGRES_INITDB := /usr/lib/postgresql/*/bin/initdb

# ruff first: it takes a second, so a lint or formatting slip fails CI at once (sqlfluff, minutes, stays in
# `make lint`).
test: $(STAMP)
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .
	@tests/ensure_debian_packages.sh $(CHROMIUM) chromium fonts-dejavu-core
	@tests/ensure_debian_packages.sh '$(POSTGRES_INITDB)' postgresql
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

ui: $(STAMP)
	@# Queued runs, one at a time, and the duckdb pool: DuckDB admits a single writer (dagster_app/instance.py).
	@$(BIN)/python -m dagster_app.instance $(DAGSTER_HOME)
	$(BIN)/dagster dev --host 127.0.0.1 --port $${PORT:-3000} -m dagster_app.definitions

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint dbt_project/models

bench: $(STAMP)
	$(BIN)/python -m bench

dbt-docs: $(STAMP)
	$(BIN)/dbt docs generate

# Re-resolve the environment from pyproject.toml and pin it (run after changing dependencies).
constraints: $(STAMP)
	$(BIN)/uv pip compile --quiet --python $(BIN)/python --extra dev --no-header --no-annotate \
		pyproject.toml -o constraints.txt.new
	@echo "review constraints.txt.new, then move it over constraints.txt"

clean:
	rm -rf target logs .pytest_cache .ruff_cache

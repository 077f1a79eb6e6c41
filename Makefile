# Two commands matter: `make demo` and `make test`. Everything else is a building block.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null)
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)/include:$(CURDIR)/dags
export NO_GCE_CHECK := True
PYTEST := $(PY) -m pytest

.PHONY: venv system-packages lint mutation test test-unit test-integration stack-up stack-down stack-status demo airflow results bench clean

venv: $(STAMP)

# uv installs the Airflow set in well under a minute. With no uv on PATH, pip only bootstraps it
# into a throwaway folder (`--target` works even where the system Python is externally managed,
# and needs no python3-venv); uv then creates the venv itself.
$(STAMP): pyproject.toml requirements.txt requirements-local.txt requirements-dev.txt
	@set -e; uv="$(UV)"; boot=""; \
	  if [ -z "$$uv" ]; then \
	    boot=$$(mktemp -d); echo "venv: bootstrapping uv with pip into $$boot"; \
	    $(PYTHON) -m pip install -q --disable-pip-version-check --target "$$boot" uv; \
	    uv="$$boot/bin/uv"; \
	  fi; \
	  [ -x $(PY) ] || $$uv venv -q --python $(PYTHON) $(VENV); \
	  VIRTUAL_ENV=$(CURDIR)/$(VENV) $$uv pip install -q --compile-bytecode -r requirements-dev.txt; \
	  if [ -n "$$boot" ]; then rm -rf "$$boot"; fi
	@# bqemulator starts offline only with DuckDB's extensions installed from the PyPI wheels.
	@$(PY) -c "import duckdb; from duckdb_extensions import import_extension as i; c = duckdb.connect(); i('spatial', con=c); i('avro', con=c)"
	@touch $(STAMP)

# Debian packages some tests need (docker-compose...): installed when missing.
system-packages:
	@include/dev/system_packages.sh

LINTED := plugins dags include tests bench

# ruff with Airflow's AIR rules, and the formatter's check ([tool.ruff] in pyproject.toml).
lint: venv
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

test: venv system-packages lint
	$(PYTEST) -q

# Mutation testing of the modules where a bug costs money or rows; prints the kill rate and every
# survivor (include/dev/mutation.py). Not part of `make test`: it takes a while.
mutation: venv
	$(PY) include/dev/mutation.py

test-unit: venv
	$(PYTEST) -q -m "not integration"

test-integration: venv
	$(PYTEST) -q -m integration

stack-up: venv
	$(PY) -m local_stack up

stack-down: venv
	$(PY) -m local_stack down

stack-status: venv
	$(PY) -m local_stack status

demo: venv
	$(PY) include/dev/demo.py

airflow: venv
	include/dev/airflow_local.sh

# The latest answers and failed rows in the local results tables (needs a running local stack).
results: venv
	$(PY) include/dev/results.py

bench: venv
	$(PY) bench/emulator.py

clean:
	@# Stop a running stack first: deleting its state dir would orphan its processes.
	-@[ -x $(PY) ] && $(PY) -m local_stack down
	rm -rf $(VENV) .local-stack .airflow

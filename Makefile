# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint typecheck unit schemas bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# `make demo`: install and run the suite on the default providers.yaml (offline: only the
# builtin reference provider runs; relays without a key are skipped with "set VAR").
demo: $(BIN)/python
	$(PIP) install --quiet .
	$(BIN)/conformance run

$(VENV)/.test-deps: $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e ".[test]"
	touch $@

lint: $(VENV)/.test-deps
	$(BIN)/ruff check conformance tests scripts benchmarks

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

unit: $(VENV)/.test-deps
	$(BIN)/python -m pytest tests -n 2 -q

# `make test`: ruff, mypy and the suite's own tests.
test: lint typecheck unit

schemas: $(VENV)/.test-deps
	$(BIN)/python scripts/generate_schemas.py

bench: $(VENV)/.test-deps
	$(BIN)/python benchmarks/concurrency.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

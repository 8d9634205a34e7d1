# Outcome Loop — every target installs what it needs into ./.venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-unit lint typecheck bench efficacy faults schemas infra-up infra-down clean

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed" or 0)'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the project with its dev tools

demo: $(STAMP)  ## run the end-to-end demo on the embedded broker and PostgreSQL
	$(BIN)/outcomeloop demo

test: $(STAMP) lint  ## lint, then unit and integration tests (starts the embedded infra once)
	$(BIN)/python -m pytest -q

test-unit: $(STAMP)  ## run only the tests that need no broker or database
	$(BIN)/python -m pytest -q -m 'not integration'

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)  ## the real worker end to end, `serve`, a 1M-row retrain (~55 min), into BENCHMARKS.md
	$(BIN)/python -m benchmarks.bench --write BENCHMARKS.md
	$(BIN)/python -m benchmarks.serve_bench --write BENCHMARKS.md
	$(BIN)/python -m benchmarks.retrain_scale --write BENCHMARKS.md

efficacy: $(STAMP)  ## drift recovery through the real worker vs baselines (~25 min), into BENCHMARKS.md
	$(BIN)/python -m benchmarks.efficacy --write BENCHMARKS.md

faults: $(STAMP)  ## fault survival through the real worker, into BENCHMARKS.md
	$(BIN)/python -m benchmarks.faults --write BENCHMARKS.md

schemas: $(STAMP)  ## re-export the JSON Schemas and the AsyncAPI document from the pydantic models
	$(BIN)/python -m schemas.export

infra-up: $(STAMP)  ## start the embedded broker and PostgreSQL in the background
	$(BIN)/outcomeloop infra up

infra-down: $(STAMP)  ## stop them
	$(BIN)/outcomeloop infra down

clean:  ## remove the virtual environment and local data
	rm -rf $(VENV) .outcomeloop .pytest_cache .mypy_cache .ruff_cache

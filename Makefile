# Two commands set everything up on a fresh machine: `make run` and `make test`.
# The virtual environment is created on first use from the pinned lock file; nothing is installed globally.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint generate-default lock clean help

help:
	@echo "make run    build the warehouse from the bundled default data (or LOYALTY_RAW_DIR)"
	@echo "make test   run the test suite (pytest: python unit tests, dbt build + tests, end-to-end)"
	@echo "make lint   ruff on the Python package and tests"

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/loyalty run

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests flows
	$(BIN)/ruff format --check src tests flows

# Regenerates the bundled default data (deterministic: the same seed gives the same files).
generate-default: $(STAMP)
	$(BIN)/loyalty generate --customers 5000 --seed 42 --bad-row-rate 0.003 --no-progress --out data/default --force

lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/python -m pip install --quiet "pip==26.3" && .lockvenv/bin/python -m pip install --quiet -r requirements.in
	.lockvenv/bin/python -m pip freeze --exclude-editable > requirements.lock && rm -rf .lockvenv

clean:
	rm -rf target logs warehouse dbt_packages .pytest_cache

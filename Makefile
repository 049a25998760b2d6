# Two commands set everything up on a fresh machine: `make run` and `make test`.
# The virtual environment is created on first use from the pinned lock file; nothing is installed globally.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DuckDB 1.x clients (tests/clients/requirements.txt): the tests open the published file with them, as BI tools do
CLIENTS := .venv-clients
CLIENTS_STAMP := $(CLIENTS)/.installed
# Debian's Chromium: the browser test of the offline Data Docs (tests/python/test_data_docs_offline.py)
CHROMIUM := /usr/bin/chromium

.PHONY: run test test-fast lint bench prefect-server serve generate-default lock clean help

help:
	@echo "make run             the nightly Prefect flow on the bundled default data (or LOYALTY_RAW_DIR)"
	@echo "make test            run the test suite (pytest: python unit tests, dbt build + tests, end-to-end)"
	@echo "make test-fast       the tests that build no warehouse and start no night (about 1.5 minutes)"
	@echo "make lint            ruff on the Python package, flows, benchmarks and tests"
	@echo "make bench           the benchmark (BENCH_CUSTOMERS=1000000; BENCH_ARGS=--quick for a small run)"
	@echo "make prefect-server  a Prefect server for scheduled runs (http://127.0.0.1:4200)"
	@echo "make serve           serve the nightly flow on a cron schedule in UTC (CRON='0 2 * * *'; needs the server)"

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

$(CLIENTS_STAMP): tests/clients/requirements.txt tests/clients/oldest.txt
	rm -rf $(CLIENTS) && $(PYTHON) -m venv $(CLIENTS)
	$(CLIENTS)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
	$(CLIENTS)/bin/python -m pip install --quiet --disable-pip-version-check --target $(CLIENTS)/oldest \
		-r tests/clients/oldest.txt
	touch $(CLIENTS_STAMP)

$(CHROMIUM):
	@echo "installing Debian's chromium (apt-get) for the browser tests"
	if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null

run: $(STAMP)
	$(BIN)/loyalty run

test: $(STAMP) $(CLIENTS_STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=20

# the tests marked full_build (tests/python/conftest.py sorts them from their code) left out
test-fast: $(STAMP) $(CLIENTS_STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -n auto --dist loadfile -m "not full_build" --durations=10

lint: $(STAMP)
	$(BIN)/ruff check src tests flows benchmarks
	$(BIN)/ruff format --check src tests flows benchmarks

BENCH_CUSTOMERS ?= 1000000
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --customers $(BENCH_CUSTOMERS) $(BENCH_ARGS)

prefect-server: $(STAMP)
	PREFECT_HOME=$(CURDIR)/.prefect PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/prefect server start

CRON ?= 0 2 * * *
serve: $(STAMP)
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(BIN)/loyalty serve --cron "$(CRON)"

# Regenerates the bundled default data (deterministic: the same seed gives the same files).
generate-default: $(STAMP)
	$(BIN)/loyalty generate --customers 5000 --seed 42 --bad-row-rate 0.003 --no-progress --out data/default --force

lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/python -m pip install --quiet "pip==26.3" && .lockvenv/bin/python -m pip install --quiet -r requirements.in
	.lockvenv/bin/python -m pip freeze --exclude-editable > requirements.lock && rm -rf .lockvenv

clean:
	rm -rf target logs warehouse dbt_packages .pytest_cache .prefect

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
# The Spark engine (requirements-spark.txt): pyspark and dbt-spark in the same venv, and Java 17 for Spark itself
SPARK_STAMP := $(VENV)/.spark-installed
JAVA := /usr/bin/java

.PHONY: run spark test test-fast lint sql-fix bench prefect-server serve generate-default lock clean help

help:
	@echo "make run             the nightly Prefect flow on the bundled default data (or LOYALTY_RAW_DIR)"
	@echo "make spark           install the Spark engine (pyspark, dbt-spark: about 450 MB; Java 17) for --engine spark"
	@echo "make test            run the test suite (pytest: python unit tests, dbt build + tests, end-to-end)"
	@echo "make test-fast       the tests that build no warehouse and start no night (about 4 minutes)"
	@echo "make lint            ruff check and ruff format --check on the Python package, flows, benchmarks and tests;"
	@echo "                     sqlfluff lint (.sqlfluff: dbt templater, DuckDB dialect) on the dbt models and tests"
	@echo "make sql-fix         sqlfluff fix on the same SQL files (rewrites them: review the diff, then make test)"
	@echo "make bench           the benchmark (BENCH_CUSTOMERS=1000000; BENCH_ARGS=--quick for a small run, --skip to"
	@echo "                     leave steps out: python -m benchmarks.run --help); writes docs/benchmarks.md, keeps its Notes"
	@echo "make prefect-server  a Prefect server for scheduled runs (http://127.0.0.1:4200)"
	@echo "make serve           serve the nightly flow on a cron schedule in UTC (CRON='0 2 * * *'; needs the server)"

$(STAMP): requirements.lock requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

$(CLIENTS_STAMP): tests/clients/requirements.txt tests/clients/oldest.txt
	rm -rf $(CLIENTS) && $(PYTHON) -m venv $(CLIENTS)
	$(CLIENTS)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
	$(CLIENTS)/bin/python -m pip install --quiet --disable-pip-version-check --target $(CLIENTS)/oldest \
		-r tests/clients/oldest.txt
	touch $(CLIENTS_STAMP)

$(SPARK_STAMP): $(STAMP) requirements-spark.txt
	@echo "installing the Spark engine into $(VENV) (pyspark, dbt-spark: about 450 MB, a few minutes, once)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -r requirements-spark.txt
	touch $(SPARK_STAMP)

$(JAVA):
	@echo "installing Debian's openjdk-17-jre-headless (apt-get): Spark runs on Java 17"
	if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq openjdk-17-jre-headless >/dev/null

spark: $(SPARK_STAMP) $(JAVA)

$(CHROMIUM):
	@echo "installing Debian's chromium (apt-get) for the browser tests"
	if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null

run: $(STAMP)
	$(BIN)/loyalty run

test: $(STAMP) $(CLIENTS_STAMP) $(CHROMIUM) $(SPARK_STAMP) $(JAVA)
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=20

# the tests marked full_build (tests/python/conftest.py sorts them from their code) left out
test-fast: $(STAMP) $(CLIENTS_STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -n auto --dist loadfile -m "not full_build" --durations=10

# sqlfluff lints what dbt compiles: the models and the singular tests (and analyses, once there are any). The files
# of macros/ and tests/generic/ are dbt macros, which the dbt templater skips ("because it is a macro"); their SQL is
# linted where a model or test renders it, and fixed by hand in the macro. The templater loads the project with the
# profile `loyalty`, target build, and opens a connection: on a throw-away DuckDB file under target/sqlfluff (ignored,
# with dbt's partial-parse file; the file is created empty), with a lint-only email hash key so that linting never
# creates or reads the real key file (the key's pads are only set on the connection). At most 2 processes: the
# templating runs in the main process, the parsing and rules in the workers.
SQL_PATHS ?= models tests/singular $(wildcard analyses)
SQLFLUFF_DIR := target/sqlfluff
SQLFLUFF_ENV := LOYALTY_DBT_TARGET=build LOYALTY_DBT_DATABASE=$(SQLFLUFF_DIR)/lint.duckdb \
	LOYALTY_HASH_KEY=sqlfluff-lint-only-key-never-hashes-real-data \
	PYTHONWARNINGS=ignore::UserWarning:multiprocessing.resource_tracker
SQLFLUFF_PROCESSES ?= 2
# A sqlfluff finding fails `make lint` (and CI); `make lint SQLFLUFF_NOFAIL=--nofail` only prints the findings.
SQLFLUFF_NOFAIL ?=

lint: $(STAMP)
	$(BIN)/ruff check src tests flows benchmarks
	$(BIN)/ruff format --check src tests flows benchmarks
	mkdir -p $(SQLFLUFF_DIR)
	$(SQLFLUFF_ENV) $(BIN)/sqlfluff lint $(SQLFLUFF_NOFAIL) --processes $(SQLFLUFF_PROCESSES) --disable-progress-bar \
		$(SQL_PATHS)

# sqlfluff fix: rewrites the SQL files in place (narrow it with SQL_PATHS=models/marts); review the diff, lint again
# for what fix leaves to hand edits, and run the tests (DECISIONS.md, issue 13). Rules linted but
# never auto-fixed, because their fix changes what the SQL means (measured on this project):
#   aliasing.unused (AL05) drops a values list's alias with its column names, `as t (membership)`: a binder error
#   structure.using (ST07) turns `using (...)` into `on ...`: `select *` then returns each join column twice
# (--exclude-rules replaces the list of .sqlfluff, so structure.column_order is repeated here)
SQLFLUFF_FIX_EXCLUDE := structure.column_order,aliasing.unused,structure.using
sql-fix: $(STAMP)
	mkdir -p $(SQLFLUFF_DIR)
	$(SQLFLUFF_ENV) $(BIN)/sqlfluff fix --exclude-rules $(SQLFLUFF_FIX_EXCLUDE) --processes $(SQLFLUFF_PROCESSES) \
		--disable-progress-bar $(SQL_PATHS)

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

"""The validation gate: a Great Expectations checkpoint over a built warehouse, before anyone sees it.

``validate()`` runs every suite of ``gx/suites`` (see ``loyalty.suites``) against a DuckDB file with GX Core's own SQL
data source, so each expectation is evaluated by DuckDB over the whole table, never a sample, and nothing is loaded
into pandas (``loyalty.gx_duckdb`` explains the two fixes that make GX's SQL data source work on DuckDB). It writes
GX Data Docs (static HTML) and a JSON result into an output folder, and returns a ``ValidationResult`` for callers
that decide what to do with it: ``loyalty run`` publishes only a passing build, the nightly flow reports it.

The GX context is ephemeral and built from the suite files on every run, so the suites in the repository are the only
source of truth and a run never writes into the repository; only the Data Docs site is on disk.
"""

from __future__ import annotations

import errno
import gc
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from loyalty.config import Thresholds
from loyalty.errors import LoyaltyError
from loyalty.files import write_json_atomically
from loyalty.suites import SUITES_DIR, Suite, TableCheck, check_query, compile_table_checks, load_suites

_PROCESS_STARTED = time.monotonic()  # the checkpoint's time includes importing GX (several seconds)
CHECKPOINT_NAME = "loyalty_nightly"
DATA_DOCS_SITE = "loyalty_validation"
RESULT_FILE = "result.json"
DOCS_FOLDER = "data_docs"
# Marts are compared with the published warehouse: a night must not lose rows of a mart.
ROW_COUNT_SCHEMAS = ("marts",)


def output_dir_for(warehouse: Path) -> Path:
    """Where the Data Docs and the JSON result of a warehouse's validation go: ``validation/`` beside it."""
    return warehouse.parent / "validation"


@dataclass(frozen=True)
class Failure:
    """One failed expectation, as the report and the JSON result show it."""

    suite: str
    expectation: str
    column: str | None
    observed: str
    expected: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ValidationResult:
    """What a validation found. ``passed`` is the gate's verdict; ``failures`` lists every failed expectation."""

    passed: bool
    database: Path
    as_of: date | None
    suites: tuple[str, ...]
    evaluated: int
    failures: tuple[Failure, ...]
    docs_index: Path
    result_file: Path
    previous_warehouse: Path | None
    thresholds: Thresholds
    checked_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    seconds: float = 0.0  # wall time of the checkpoint process
    peak_memory_mb: float = 0.0  # peak resident memory of the checkpoint process

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> ValidationResult:
        """The result as ``to_dict`` wrote it (``result.json``)."""
        return cls(
            passed=payload["passed"],
            database=Path(payload["database"]),
            as_of=date.fromisoformat(payload["as_of"]) if payload["as_of"] else None,
            suites=tuple(payload["suites"]),
            evaluated=payload["evaluated_expectations"],
            failures=tuple(Failure(**failure) for failure in payload["failures"]),
            docs_index=Path(payload["data_docs"]),
            result_file=Path(payload["result_file"]),
            previous_warehouse=Path(payload["previous_warehouse"]) if payload["previous_warehouse"] else None,
            thresholds=Thresholds(**payload["thresholds"]),
            checked_at=payload["checked_at"],
            seconds=payload["seconds"],
            peak_memory_mb=payload["peak_memory_mb"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "database": str(self.database),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "checked_at": self.checked_at,
            "suites": list(self.suites),
            "evaluated_expectations": self.evaluated,
            "failed_expectations": len(self.failures),
            "failures": [failure.to_dict() for failure in self.failures],
            "thresholds": self.thresholds.suite_parameters(),
            "previous_warehouse": str(self.previous_warehouse) if self.previous_warehouse else None,
            "data_docs": str(self.docs_index),
            "result_file": str(self.result_file),
            "seconds": self.seconds,
            "peak_memory_mb": self.peak_memory_mb,
        }

    def headline(self) -> str:
        if self.passed:
            return f"GX checkpoint {CHECKPOINT_NAME} passed: {self.evaluated} expectations in {len(self.suites)} suites"
        return (
            f"GX checkpoint {CHECKPOINT_NAME} FAILED: {len(self.failures)} of {self.evaluated} expectations"
            f" in {len(self.suites)} suites"
        )

    def report(self) -> str:
        """The headline, a table of the failed expectations (suite, column, observed value, expectation and what
        it expected), and where the Data Docs and the JSON result are."""
        lines = [f"{self.headline()} (database {self.database}, as of {self.as_of or 'unknown'})"]
        if self.failures:
            rows = [("suite", "column", "observed", "expectation (expected)")] + [
                (f.suite, f.column or "-", f.observed, f"{f.expectation} ({f.expected})") for f in self.failures
            ]
            widths = [max(len(row[i]) for row in rows) for i in range(3)]
            for row in rows:
                cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
                lines.append("  " + "  ".join([*cells, row[3]]))
        lines.append(f"GX Data Docs: {self.docs_index}")
        lines.append(f"validation result: {self.result_file}")
        return "\n".join(lines)


class ValidationFailed(LoyaltyError):
    """The checkpoint failed: the build is not published. The message is the report."""

    def __init__(self, result: ValidationResult, note: str = "") -> None:
        super().__init__(result.report() + (f"\n{note}" if note else ""))
        self.result = result


# ---------------------------------------------------------------------------------------------------------------------
# Reading the warehouse around GX: which tables exist, the as-of date, the published row counts


def _relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select schema_name || '.' || table_name from duckdb_tables() where database_name = current_database()"
        " union all select schema_name || '.' || view_name from duckdb_views()"
        " where not internal and database_name = current_database()"
    ).fetchall()
    return {name for (name,) in rows}


def _warehouse_as_of(con: duckdb.DuckDBPyConnection, relations: set[str]) -> date | None:
    """The as-of date the warehouse was built for: the last day of ``dim_date`` not after it."""
    if "marts.dim_date" not in relations:
        return None
    (as_of,) = con.execute("select max(date_day) from marts.dim_date where not is_after_as_of").fetchone()
    return as_of


def _row_counts(path: Path, tables: list[str]) -> dict[str, int]:
    """Row counts of those ``tables`` that exist in the warehouse at ``path`` (read-only)."""
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            present = _relations(con)
            return {
                table: con.execute(f"select count(*) from {table}").fetchone()[0]
                for table in tables
                if table in present
            }
    except duckdb.Error as exc:
        raise LoyaltyError(f"cannot read the published warehouse {path} to compare row counts: {exc}") from None


def _row_count_expectation(table: str, published_rows: int, max_drop: float) -> dict[str, Any]:
    minimum = math.ceil(published_rows * (1 - max_drop))
    return {
        "type": "expect_table_row_count_to_be_between",
        "kwargs": {"min_value": minimum},
        "description": (
            f"At most {max_drop:.0%} fewer rows than the published warehouse ({published_rows:,} rows in {table})"
        ),
        "meta": {"published_rows": published_rows, "max_row_drop": max_drop},
    }


# ---------------------------------------------------------------------------------------------------------------------
# Turning GX results into failures


def _exception_message(result: Any) -> str | None:
    info = result.exception_info or {}
    candidates = [info] + [value for value in info.values() if isinstance(value, dict)]
    for candidate in candidates:
        if candidate.get("raised_exception"):
            message = str(candidate.get("exception_message") or "exception").strip()
            return message.splitlines()[0][:300]
    return None


def _short(value: Any) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _observed(result: Any) -> str:
    error = _exception_message(result)
    if error is not None:
        return f"error: {error}"
    details = result.result or {}
    if details.get("unexpected_count") is not None and "observed_value" not in details:
        count, total = details["unexpected_count"], details.get("element_count") or 0
        values = details.get("partial_unexpected_list") or []
        if total == 1 and count == 1 and len(values) == 1:
            return _short(values[0])  # a check of a one-row result (a total, a difference): its value says it all
        percent = details.get("unexpected_percent")
        share = f" ({percent:.3g} %)" if percent is not None else ""
        sample = ", ".join(_short(value) for value in (details.get("partial_unexpected_list") or [])[:3])
        return f"{count:,} unexpected of {total:,} rows{share}" + (f", e.g. {sample}" if sample else "")
    if result.expectation_config.type == "unexpected_rows_expectation":
        return f"{details.get('observed_value', '?'):,} unexpected rows"
    observed = details.get("observed_value")
    if result.expectation_config.type == "expect_table_row_count_to_be_between" and isinstance(observed, int):
        return f"{observed:,} rows"
    return _short(observed)


def _expected(configuration: Any) -> str:
    kwargs = configuration.kwargs
    if configuration.description:
        return configuration.description
    bounds = [f"{name} {kwargs[name]}" for name in ("min_value", "max_value") if kwargs.get(name) is not None]
    if "value_set" in kwargs:
        bounds.append(f"in {kwargs['value_set']}")
    return ", ".join(bounds) or configuration.type.removeprefix("expect_").replace("_", " ")


def _column(configuration: Any) -> str | None:
    kwargs = configuration.kwargs
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_list"):
        return ", ".join(kwargs["column_list"])
    return (configuration.meta or {}).get("column")


@dataclass
class _Compiled:
    """A table suite evaluated as one aggregate row: its row count and its checks by result column."""

    row_count: int
    checks: dict[str, TableCheck]


def _compiled_observed(result: Any, compiled: _Compiled, examples: Any) -> str:
    error = _exception_message(result)
    if error is not None:
        return f"error: {error}"
    check = compiled.checks[result.expectation_config.kwargs["column"]]
    value = (result.result or {}).get("observed_value")
    if check.expectation["meta"]["unit"] == "count" or not isinstance(value, int | float):
        return f"{value:,} rows" if isinstance(value, int) else _short(value)
    count, total = int(value), compiled.row_count
    share = f" ({100 * count / total:.3g} %)" if total else ""
    sample = ", ".join(_short(v) for v in examples(check))
    return f"{count:,} unexpected of {total:,} rows{share}" + (f", e.g. {sample}" if sample else "")


def _failures(checkpoint_result: Any, compiled: dict[str, _Compiled], examples: Any) -> tuple[list[Failure], int]:
    """The failed expectations of a checkpoint run; a compiled check is reported as the expectation of the suite file
    it stands for (its type, column and description), with the violating rows counted against the table's rows and
    a few of their values (``examples(check)``, queried only for a failed check)."""
    failures: list[Failure] = []
    evaluated = 0
    for suite_result in checkpoint_result.run_results.values():
        suite = compiled.get(suite_result.suite_name)
        for result in suite_result.results:
            evaluated += 1
            if result.success:
                continue
            configuration = result.expectation_config
            if suite is not None:
                meta = configuration.meta or {}
                failures.append(
                    Failure(
                        suite=suite_result.suite_name,
                        expectation=meta["expectation"],
                        column=meta.get("column"),
                        observed=_compiled_observed(result, suite, examples),
                        expected=_expected(configuration),
                    )
                )
                continue
            failures.append(
                Failure(
                    suite=suite_result.suite_name,
                    expectation=configuration.type,
                    column=_column(configuration),
                    observed=_observed(result),
                    expected=_expected(configuration),
                )
            )
    return failures, evaluated


# ---------------------------------------------------------------------------------------------------------------------
# The GX project of one run


@contextmanager
def _gx_context(docs_dir: Path) -> Iterator[Any]:
    """An ephemeral GX context whose only on-disk output is a Data Docs site in ``docs_dir``; no usage statistics
    (nothing may leave the machine) and no progress bars (the nightly log is read by people)."""
    import great_expectations as gx
    from great_expectations.data_context.data_context.context_factory import project_manager
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={
            DATA_DOCS_SITE: {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    try:
        yield context
    finally:
        for datasource in list(context.data_sources.all().values()):
            # Close every DuckDB connection now: DuckDB refuses a second connection with another configuration to
            # a file this process still holds, and the caller may open the file next.
            datasource.get_execution_engine().close()
            datasource.get_engine().dispose()
        # gx.get_context() also keeps the context as the process's "current project"; drop it, or its batches and
        # their DuckDB objects live until the interpreter exits (where DuckDB's bindings report them as leaks).
        project_manager.set_project(None)
        del context
        gc.collect()


def _expectation_objects(suite: Suite, configurations: list[dict[str, Any]]) -> list[Any]:
    """GX Expectation objects, each checked here: GX's ExpectationSuite would log and drop an invalid one."""
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    objects = []
    for configuration in configurations:
        try:
            objects.append(ExpectationConfiguration(**configuration).to_domain_obj())
        except Exception as exc:  # GX raises several kinds for an unknown type or bad arguments
            raise LoyaltyError(f"{suite.path}: {configuration['type']} {configuration['kwargs']}: {exc}") from None
    return objects


def checkpoint_request(
    database: Path,
    *,
    output_dir: Path,
    previous: Path | None = None,
    thresholds: Thresholds | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    suites_dir: Path = SUITES_DIR,
) -> dict[str, Any]:
    """The arguments of one checkpoint run, as the child process ``python -m loyalty.validation`` takes them (JSON)."""
    return {
        "database": str(database),
        "output_dir": str(output_dir),
        "previous": str(previous) if previous else None,
        "thresholds": (thresholds or Thresholds()).suite_parameters(),
        "memory_limit": memory_limit,
        "threads": threads,
        "suites_dir": str(suites_dir),
    }


def validate(
    database: Path,
    *,
    output_dir: Path,
    previous: Path | None = None,
    thresholds: Thresholds | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    suites_dir: Path = SUITES_DIR,
) -> ValidationResult:
    """Run the checkpoint over ``database`` (opened read-only) and write Data Docs and ``result.json`` to
    ``output_dir``; the verdict is the returned result's ``passed``, never an exception.

    ``previous`` is the published warehouse the marts' row counts are compared with (none: no comparison, e.g. the
    first night). A suite whose table is missing from ``database`` fails: a suite states what the warehouse must
    contain, and a silently skipped suite would let a dropped or renamed mart through.

    The checkpoint runs in a child process (``python -m loyalty.validation``), for three reasons: the caller's
    process keeps none of GX's memory (a nightly flow runs on); DuckDB refuses a connection with another
    configuration to a file the process already holds, and the caller may hold it (the flow, the tests); and DuckDB
    2.0's bindings print "nanobind: leaked ..." at the exit of a process that used GX's SQL data source, harmless
    but alarming at the end of a nightly log. Raises ``LoyaltyError`` for a problem in the suites or the input.
    """
    thresholds = thresholds or Thresholds()
    if not database.is_file():
        raise LoyaltyError(f"no warehouse to validate at {database}")
    result_file = output_dir / RESULT_FILE
    result_file.unlink(missing_ok=True)
    request = checkpoint_request(
        database,
        output_dir=output_dir,
        previous=previous,
        thresholds=thresholds,
        memory_limit=memory_limit,
        threads=threads,
        suites_dir=suites_dir,
    )
    completed = subprocess.run(
        [sys.executable, "-m", "loyalty.validation", json.dumps(request)], capture_output=True, text=True
    )
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    if completed.returncode == 2 and errors:
        raise LoyaltyError(errors[-1].removeprefix("error: "))
    if completed.returncode not in (0, 1) or not result_file.is_file():
        said = _without_exit_noise(completed.stderr)
        if any(marker in line for line in said for marker in _NO_SPACE_MARKERS):
            # the child ran out of disk writing Data Docs or result.json: the night's one "no space" line
            raise OSError(errno.ENOSPC, "No space left on device", str(output_dir))
        tail = "\n".join(said[-15:])
        raise LoyaltyError(f"the GX checkpoint stopped without a result (exit {completed.returncode}):\n{tail}")
    return ValidationResult.from_dict(json.loads(result_file.read_text()))


_NO_SPACE_MARKERS = ("No space left on device", "[Errno 28]", "[Errno 122]", "Disk quota exceeded")


def _without_exit_noise(stderr: str) -> list[str]:
    """The child's stderr without DuckDB 2.0's nanobind report of leaked objects at exit (harmless, and long enough
    to push the real error out of a short tail)."""
    return [
        line
        for line in stderr.strip().splitlines()
        if not line.startswith(("nanobind:", " - leaked ", " - ... skipped")) and "nanobind.readthedocs.io" not in line
    ]


def _results_table(suite: Suite) -> str:
    """The table of the results database that holds a suite's rows (a suite name has dots)."""
    return suite.name.replace(".", "__")


def _materialise(
    database: Path,
    results: Path,
    suites: list[Suite],
    configurations: dict[str, list[dict[str, Any]]],
    engine_config: dict[str, Any],
    timings: dict[str, float],
) -> tuple[dict[str, _Compiled], set[str]]:
    """Run each suite's query over the warehouse, once, in DuckDB, and store its (small) result in ``results``: a
    table suite's aggregate row (``compile_table_checks``), a query suite's rows. One connection for all of them: the
    results database, with the warehouse attached read-only under its own name (its views name their catalog after
    the file). Returns the compiled table suites and the suites left to GX over the warehouse itself (a kind of
    expectation that is not compiled, or an aggregate DuckDB could not run, e.g. a column the table lacks: GX then
    reports each expectation with DuckDB's error)."""
    compiled: dict[str, _Compiled] = {}
    native: set[str] = set()
    with duckdb.connect(str(results), config=engine_config) as con:
        catalog = database.stem
        con.execute(f"attach '{str(database).replace(chr(39), chr(39) * 2)}' as \"{catalog}\" (read_only)")
        con.execute(f'use "{catalog}"')
        for suite in suites:
            if suite.name not in configurations:
                continue
            started = time.monotonic()
            target = f'"{results.stem}".main."{_results_table(suite)}"'
            if suite.table is None:
                con.execute(f"create table {target} as {suite.query}")
            else:
                checks = compile_table_checks(suite.table_name or "", configurations[suite.name])
                if checks is None:
                    native.add(suite.name)
                    continue
                try:
                    con.execute(f"create table {target} as {check_query(suite.table_name or '', checks)}")
                except duckdb.Error:
                    native.add(suite.name)
                    continue
                (row_count,) = con.execute(f"select row_count from {target}").fetchone()
                compiled[suite.name] = _Compiled(row_count, {check.column: check for check in checks})
            timings[suite.name] = round(time.monotonic() - started, 3)
    return compiled, native


def run_checkpoint(
    database: Path,
    *,
    output_dir: Path,
    previous: Path | None = None,
    thresholds: Thresholds | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    suites_dir: Path = SUITES_DIR,
    timings: dict[str, float] | None = None,
) -> ValidationResult:
    """``validate`` in this process: compute every suite's small result in DuckDB (``_materialise``), build the GX
    context over those results, run the checkpoint, write Data Docs and the result. ``timings`` (if given) receives
    the seconds of each suite's query and of the checkpoint's phases."""
    import great_expectations as gx

    timings = {} if timings is None else timings
    thresholds = thresholds or Thresholds()
    database = database.resolve()
    if not database.is_file():
        raise LoyaltyError(f"no warehouse to validate at {database}")
    suites = load_suites(suites_dir)
    engine_config: dict[str, Any] = {}
    if memory_limit:
        engine_config["memory_limit"] = memory_limit
    if threads:
        engine_config["threads"] = threads

    with duckdb.connect(str(database), read_only=True, config=engine_config) as con:
        relations = _relations(con)
        as_of = _warehouse_as_of(con, relations)

    compared = [s.table_name for s in suites if s.table and s.table[0] in ROW_COUNT_SCHEMAS]
    if previous is not None and previous.resolve() == database:
        previous = None
    published = _row_counts(previous, compared) if previous is not None and previous.is_file() else {}

    docs_dir = output_dir / DOCS_FOLDER
    shutil.rmtree(docs_dir, ignore_errors=True)
    failures: list[Failure] = []
    evaluated = 0
    configurations: dict[str, list[dict[str, Any]]] = {}
    for suite in suites:
        if suite.table and suite.table_name not in relations:
            evaluated += 1
            failures.append(
                Failure(
                    suite.name,
                    "table exists",
                    None,
                    f"{suite.table_name} is not in the warehouse",
                    f"the table {suite.table_name} that {suite.path.name} validates",
                )
            )
            continue
        configurations[suite.name] = list(suite.expectations)
        if suite.table_name in published:
            configurations[suite.name].append(
                _row_count_expectation(suite.table_name, published[suite.table_name], thresholds.max_row_drop)
            )

    from loyalty.data_docs import make_offline
    from loyalty.gx_duckdb import connection_url

    with tempfile.TemporaryDirectory(prefix="loyalty-gx-") as scratch:
        results = Path(scratch) / "gx_results.duckdb"
        started = time.monotonic()
        compiled, native = _materialise(database, results, suites, configurations, engine_config, timings)
        timings["queries"] = round(time.monotonic() - started, 3)
        started = time.monotonic()
        with _gx_context(docs_dir) as context:
            result_source = context.data_sources.add_sql(
                name="results",
                connection_string=connection_url(str(results)),
                kwargs={"connect_args": {"config": engine_config}},
            )
            warehouse_source = None
            definitions = []
            for suite in suites:
                if suite.name not in configurations:
                    continue
                if suite.name in native:
                    if warehouse_source is None:
                        warehouse_source = context.data_sources.add_sql(
                            name="warehouse",
                            connection_string=connection_url(str(database)),
                            kwargs={"connect_args": {"config": engine_config}},
                        )
                    assert suite.table is not None
                    asset = warehouse_source.add_table_asset(
                        suite.name, table_name=suite.table[1], schema_name=suite.table[0]
                    )
                    expectations = configurations[suite.name]
                else:
                    asset = result_source.add_table_asset(
                        suite.name, table_name=_results_table(suite), schema_name="main"
                    )
                    expectations = (
                        [check.expectation for check in compiled[suite.name].checks.values()]
                        if suite.name in compiled
                        else configurations[suite.name]
                    )
                expectation_suite = context.suites.add(
                    gx.ExpectationSuite(
                        name=suite.name,
                        expectations=_expectation_objects(suite, expectations),
                        notes=suite.description or None,
                    )
                )
                definitions.append(
                    context.validation_definitions.add(
                        gx.ValidationDefinition(
                            name=suite.name,
                            data=asset.add_batch_definition_whole_table("whole table"),
                            suite=expectation_suite,
                        )
                    )
                )
            checkpoint_result = None
            if definitions:
                checkpoint = context.checkpoints.add(
                    gx.Checkpoint(
                        name=CHECKPOINT_NAME,
                        validation_definitions=definitions,
                        result_format={"result_format": "SUMMARY"},
                    )
                )
                checkpoint_result = checkpoint.run(expectation_parameters=thresholds.suite_parameters())
                timings["gx_checkpoint"] = round(time.monotonic() - started, 3)
                started = time.monotonic()
                # One build of the site for the whole checkpoint: GX's UpdateDataDocsAction rebuilds the site once
                # per suite, which took 20 of 28 seconds here (22 suites); the result is the same set of pages.
                context.build_data_docs(site_names=[DATA_DOCS_SITE])
                make_offline(docs_dir)  # GX's pages load their scripts and styles from CDNs: from the site instead
                timings["data_docs"] = round(time.monotonic() - started, 3)
        if checkpoint_result is not None:
            with duckdb.connect(str(database), read_only=True, config=engine_config) as con:

                def examples(check: TableCheck) -> list[Any]:
                    if check.examples is None:
                        return []
                    try:
                        rows = con.execute(check.examples).fetchall()
                    except duckdb.Error:
                        return []
                    return [row[0] if len(row) == 1 else row for row in rows]

                found, count = _failures(checkpoint_result, compiled, examples)
            failures += found
            evaluated += count

    result = ValidationResult(
        passed=not failures,
        database=database,
        as_of=as_of,
        suites=tuple(suite.name for suite in suites),
        evaluated=evaluated,
        failures=tuple(failures),
        docs_index=docs_dir / "index.html",
        result_file=output_dir / RESULT_FILE,
        previous_warehouse=previous,
        thresholds=thresholds,
        seconds=round(time.monotonic() - _PROCESS_STARTED, 1),
        peak_memory_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    write_json_atomically(result.result_file, result.to_dict())
    return result


def _main(argv: list[str]) -> int:
    """The child process of ``validate``: one JSON request per argument, run one after the other (several share one
    import of GX, which takes seconds). Exit 0 all passed, 1 one failed, 2 a user error (``error: ...`` on stderr)."""
    passed = True
    for argument in argv:
        request = json.loads(argument)
        try:
            result = run_checkpoint(
                Path(request["database"]),
                output_dir=Path(request["output_dir"]),
                previous=Path(request["previous"]) if request["previous"] else None,
                thresholds=Thresholds(**request["thresholds"]),
                memory_limit=request["memory_limit"],
                threads=request["threads"],
                suites_dir=Path(request["suites_dir"]),
            )
        except LoyaltyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        passed = passed and result.passed
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

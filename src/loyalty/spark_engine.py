"""The Spark engine: the same dbt project built on a local Spark session (dbt-spark, ``method: session``).

``python -m loyalty.spark_engine <dbt arguments>`` is how the loyalty CLI runs dbt on Spark (``dbt_runner``, target
``spark`` of profiles.yml). dbt-spark's session method runs every statement on the process's one SparkSession
(``SparkSession.builder.getOrCreate()``); this module creates that session first, with what the warehouse needs
before any statement runs, then runs dbt in the same process:

- the session's static settings (``session_settings``): the Spark warehouse folder (``LOYALTY_SPARK_WAREHOUSE``,
  each schema a database: ``marts.db/<model>/``, Parquet) and its embedded Derby catalog beside it, UTC, the
  driver's memory;
- the raw files of tonight as temporary views ``raw__<table>`` (``raw_reading_plan`` in the CLI process, where the
  landing check ran; ``register_raw_views`` here), each column as text and ``_batch``, the same contract as the
  DuckDB readers of ``loyalty.landing``; macros/source.sql renders ``source('raw', t)`` as the view;
- the email hash key's HMAC pads as session variables (``declare_email_key``), bound as parameters, so the key
  never appears in SQL text, dbt's logs or its artifacts (the Spark side of ``loyalty.email_key_plugin``).

pyspark and dbt-spark are an optional install (``make spark``, requirements-spark.txt): nothing here is imported
by the DuckDB engine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from loyalty import config
from loyalty.config import DBT_SPARK_VARIABLES, PROJECT_DIR, Settings
from loyalty.email_hashing import INNER_PAD_VARIABLE, OUTER_PAD_VARIABLE, load_key, pads
from loyalty.errors import LoyaltyError
from loyalty.landing import LANDED_SOURCE, MALFORMED_SOURCE, Landing
from loyalty.workspace import work_dir

# the environment the CLI hands to this module's process (besides dbt's own LOYALTY_* profile variables)
RAW_PLAN_VARIABLE, TABLES_VARIABLE = DBT_SPARK_VARIABLES
DEFAULT_DRIVER_MEMORY = "4g"  # the local session's JVM heap (a setting of its own with the CLI's --engine)
RAW_VIEW_PREFIX = "raw__"
SCRATCH_FOLDER = "spark-scratch"  # in the tables' folder: the session's shuffle and spill files

MALFORMED_COLUMNS = (
    ("entity", "string"),
    ("batch", "string"),
    ("line_number", "bigint"),
    ("reason", "string"),
    ("error", "string"),
    ("record_text", "string"),
)
LANDED_COLUMNS = (
    ("entity", "string"),
    ("batch", "string"),
    ("size_bytes", "bigint"),
    ("mtime_ns", "bigint"),
    ("raw_rows", "bigint"),
    ("malformed_records", "bigint"),
    ("is_new", "boolean"),
)


def raw_view(table: str) -> str:
    """The temporary view a raw source table is read from on Spark."""
    return RAW_VIEW_PREFIX + table


def raw_reading_plan(landing: Landing, only_new: bool = False) -> dict[str, Any]:
    """How the Spark process reads each raw source table tonight, as JSON-able data (``LOYALTY_SPARK_RAW``): per
    entity its contract's columns and one reader per batch (the file, or the clean copy the landing check wrote,
    with the file's columns in file order and, for Parquet, the names in the file); the landing check's own tables
    as their Parquet files (or none). With ``only_new``, entities read their new batches only."""
    entities: dict[str, Any] = {}
    for name, landed in landing.files.items():
        batches = landed.new_batches if only_new else landed.batches
        entities[name] = {
            "columns": list(landed.entity.all_columns),
            "optional_columns": list(landed.entity.optional_columns),
            "readers": [
                {
                    "format": "csv" if batch.read_path is not None else batch.path.suffix.lstrip("."),
                    "path": str(batch.read_path or batch.path),
                    "batch": batch.name,
                    "columns": list(batch.columns),
                    "source_columns": list(batch.source_columns),
                }
                for batch in batches
            ],
        }
    return {
        "entities": entities,
        MALFORMED_SOURCE: str(landing.malformed_path) if landing.malformed_path else None,
        LANDED_SOURCE: str(landing.landed_path) if landing.landed_path else None,
    }


def spark_target_dir(settings: Settings) -> Path:
    """dbt's target folder for the Spark engine, in the work folder beside the DuckDB engine's (a parse for
    another target would be discarded each time)."""
    return work_dir(settings.warehouse) / "spark-target"


def spark_dbt_command(
    command: list[str],
    env: dict[str, str],
    settings: Settings,
    landing: Landing,
    *,
    only_new: bool = False,
    tables: Path | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The DuckDB engine's dbt command line and environment (``dbt_runner.dbt_command``) made the Spark engine's:
    dbt run by this module, target ``spark``, its own target folder, tonight's raw reading plan and the folder
    of the Spark tables (``tables``; default the settings' Spark warehouse itself)."""
    args = list(command[1:])
    args[args.index("--target-path") + 1] = str(spark_target_dir(settings))
    env = {
        **env,
        "LOYALTY_DBT_TARGET": "spark",
        TABLES_VARIABLE: str(tables or settings.spark_warehouse_dir),
        RAW_PLAN_VARIABLE: json.dumps(raw_reading_plan(landing, only_new)),
    }
    return [sys.executable, "-m", "loyalty.spark_engine", *args], env


def session_settings(warehouse_dir: Path, driver_memory: str = DEFAULT_DRIVER_MEMORY) -> dict[str, str]:
    """The settings of the local session, fixed before it starts: the warehouse folder, its Derby catalog and
    Spark's scratch space (shuffle and spill files, which hold raw rows: in the night's folder, so that a killed
    night's are deleted with it, never left in /tmp), so that nothing lands in the working directory; UTC (as the
    DuckDB engine: offset-less timestamps are UTC), Parquet timestamps other readers read (microseconds, not
    INT96), no web UI. Paths are quoted in the JVM's options (a folder may have spaces)."""
    metastore = warehouse_dir / "metastore_db"
    return {
        "spark.master": "local[*]",
        "spark.app.name": "loyalty-warehouse",
        "spark.sql.warehouse.dir": str(warehouse_dir),
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore};create=true",
        "spark.driver.extraJavaOptions": f'-Dderby.system.home="{warehouse_dir}" -Dderby.stream.error.file='
        f'"{warehouse_dir / "derby.log"}"',
        "spark.local.dir": str(warehouse_dir / SCRATCH_FOLDER),
        "spark.driver.memory": driver_memory,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


def start_session(warehouse_dir: Path, driver_memory: str = DEFAULT_DRIVER_MEMORY):  # -> SparkSession
    """The process's SparkSession, created with ``session_settings`` (dbt-spark then gets it back)."""
    from pyspark.sql import SparkSession

    warehouse_dir.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in session_settings(warehouse_dir, driver_memory).items():
        builder = builder.config(key, value)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _empty(spark, columns: tuple[tuple[str, str], ...]):
    schema = ", ".join(f"`{name}` {kind}" for name, kind in columns)
    return spark.createDataFrame([], schema)


def _reader_frame(spark, reader: dict[str, Any], optional_columns: list[str]):
    """One batch as a DataFrame: its columns as text (named as the landing check named them, in file order), the
    contract's optional columns it lacks as nulls, and ``_batch``: the columns of the DuckDB reader, in its order
    (loyalty.landing), so that a raw row's struct, and its JSON in the quarantine, are the same."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    columns = reader["columns"]
    if reader["format"] == "parquet":
        frame = spark.read.parquet(reader["path"]).select(
            *(
                F.col(f"`{source.replace('`', '``')}`").cast("string").alias(name)
                for source, name in zip(reader["source_columns"], columns, strict=True)
            )
        )
    else:
        # the landing check's dialect (loyalty.landing.csv_reader): comma, double quotes doubled inside quotes,
        # UTF-8, one record per line, the header's columns by position, every value text; a record that does not
        # split into the header's fields was set aside by the landing check and is dropped here as DuckDB's reader
        # drops it (raw_reconciliation balances the counts, so a difference fails the night, never silently)
        schema = StructType([StructField(name, StringType()) for name in columns])
        frame = spark.read.csv(
            reader["path"],
            schema=schema,
            header=True,
            enforceSchema=True,
            sep=",",
            quote='"',
            escape='"',
            encoding="UTF-8",
            multiLine=False,
            mode="DROPMALFORMED",
            ignoreLeadingWhiteSpace=False,
            ignoreTrailingWhiteSpace=False,
        )
    for column in optional_columns:
        if column not in columns:
            frame = frame.withColumn(column, F.lit(None).cast("string"))
    return frame.withColumn("_batch", F.lit(reader["batch"]))


def _entity_frame(spark, entity: dict[str, Any]):
    """Every batch of one entity, unioned by name as DuckDB's readers are (the first batch's columns in its order,
    a later batch's other columns after them, nulls where a batch lacks a column); an entity with no batch tonight
    is the contract's columns, empty."""
    frames = [_reader_frame(spark, reader, entity["optional_columns"]) for reader in entity["readers"]]
    if not frames:
        return _empty(spark, tuple((c, "string") for c in entity["columns"]) + (("_batch", "string"),))
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other, allowMissingColumns=True)
    return frame


def register_raw_views(spark, plan: dict[str, Any]) -> None:
    """Tonight's raw source tables as temporary views ``raw__<table>`` (``raw_view``)."""
    for name, entity in plan["entities"].items():
        _entity_frame(spark, entity).createOrReplaceTempView(raw_view(name))
    for name, columns in ((MALFORMED_SOURCE, MALFORMED_COLUMNS), (LANDED_SOURCE, LANDED_COLUMNS)):
        path = plan.get(name)
        frame = spark.read.parquet(path) if path else _empty(spark, columns)
        frame.createOrReplaceTempView(raw_view(name))


def declare_email_key(spark) -> None:
    """The email hash key's HMAC pads as session variables of the names the DuckDB plugin uses (macro
    hash_email), bound as parameters: the key is never in SQL text."""
    inner, outer = pads(load_key())
    for variable, pad in ((INNER_PAD_VARIABLE, inner), (OUTER_PAD_VARIABLE, outer)):
        spark.sql(f"declare or replace variable {variable} binary default unhex(:pad)", args={"pad": pad.hex()})


# the dbt Python models of predicted CLV: dbt-spark runs Python models only on Databricks clusters, so on Spark the
# fit and scoring run here, on the driver, between two dbt builds (build_in_phases)
PREDICTIVE_MODELS = ("clv_model_parameters", "clv_customer_predictions", "clv_model_evaluation")
PREDICTIVE_ROOT = "clv_model_parameters"  # the others read it: its descendants are everything after the fit


def _arrow(spark, table: str, columns: tuple[str, ...] | None = None, *, sort: bool = False):
    frame = spark.table(table)
    if columns:
        frame = frame.select(*columns)
    if sort:
        frame = frame.orderBy("customer_id")
    return frame.toArrow()


def _write_table(spark, name: str, table) -> None:
    """An Arrow table as the Parquet table ``name`` (replaced), as dbt's table materialization leaves one."""
    spark.sql(f"drop table if exists {name}")
    spark.createDataFrame(table).write.format("parquet").mode("overwrite").saveAsTable(name)


def fit_predictive(spark, marts_schema: str = "marts", intermediate_schema: str = "intermediate") -> None:
    """The three predicted-CLV marts, computed as their dbt Python models compute them (models/marts/value/
    predicted): the fit and scoring of loyalty.predictive on the collapsed histories dbt built in SQL."""
    from loyalty.predictive.clv import (
        HOLDOUT_COLUMNS,
        INPUT_COLUMNS,
        evaluation_table,
        fit_parameters,
        score,
        settings_from_row,
    )

    settings = settings_from_row(_arrow(spark, f"{intermediate_schema}.int_clv__settings").to_pylist())
    customers = _arrow(spark, f"{intermediate_schema}.int_clv__customer_history", INPUT_COLUMNS, sort=True)
    parameters, _ = fit_parameters(customers, settings)
    _write_table(spark, f"{marts_schema}.clv_model_parameters", parameters)
    _write_table(spark, f"{marts_schema}.clv_customer_predictions", score(customers, parameters, settings))
    holdout = _arrow(
        spark, f"{intermediate_schema}.int_clv__holdout_transactions", INPUT_COLUMNS + HOLDOUT_COLUMNS, sort=True
    )
    _write_table(spark, f"{marts_schema}.clv_model_evaluation", evaluation_table(holdout, parameters, settings))


def build_in_phases(spark, args: list[str], invoke, fit=fit_predictive) -> int:
    """``dbt build`` (``args``: its arguments after ``build``) on Spark: every node that does not depend on the
    predictive models, then the predictive fit (``fit``), then the rest (the predictive marts' tests and every node
    downstream, the Python models themselves left out). ``invoke`` runs one dbt command line and returns its exit
    status; a phase that fails ends the build."""
    exclude: list[str] = []
    rest: list[str] = []
    items = iter(args)
    for item in items:  # the caller's --exclude values join each phase's own
        if item == "--exclude":
            for value in items:
                if value.startswith("--"):
                    rest.append(value)
                    break
                exclude.append(value)
        else:
            rest.append(item)
    before = invoke(["build", *rest, "--exclude", *exclude, f"{PREDICTIVE_ROOT}+"])
    if before != 0:
        return before
    fit(spark)
    return invoke(["build", *rest, "--select", f"{PREDICTIVE_ROOT}+", "--exclude", *exclude, *PREDICTIVE_MODELS])


def _invoke(args: list[str]) -> int:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(args)
    if result.exception is not None:
        return 2
    return 0 if result.success else 1


def main(argv: list[str] | None = None) -> int:
    """Run dbt (``argv``: its arguments) on the local Spark session, the raw views and the key declared first; a
    ``build`` runs in phases around the predictive fit (``build_in_phases``)."""
    args = sys.argv[1:] if argv is None else argv
    warehouse_dir = Path(os.environ.get(TABLES_VARIABLE, "warehouse/spark-warehouse")).resolve()
    spark = start_session(warehouse_dir)
    if not (args and args[0] == "docs"):
        # (dbt docs reads no raw row, and its catalog cannot hold temporary views: they have no database)
        register_raw_views(spark, json.loads(os.environ.get(RAW_PLAN_VARIABLE, '{"entities": {}}')))
    declare_email_key(spark)
    if args and args[0] == "build":
        return build_in_phases(spark, args[1:], _invoke)
    return _invoke(args)


# ------------------------------------------------------------------------------------------------ the Spark night
#
# A night on Spark (loyalty.nightly, engine spark) builds every table again (the incremental models are tables on
# Spark) into a folder of its own, ``<spark warehouse>.nights/<night>/`` (tables and their Derby catalog, which
# records absolute paths: a folder cannot be renamed once built). The DuckDB file BI reads (the build copy, then
# the published warehouse) holds a view over each of that folder's tables (``write_serving_file``), so the
# checkpoint, the report and every BI tool read the Spark night as they read a DuckDB one. Publication renames the
# build copy over the published file as on DuckDB, then points the Spark warehouse link at the night's folder
# (``publish_tables``): both in one ``rename`` each, so BI never sees a half-built night.

NIGHTS_SUFFIX = ".nights"
REQUIREMENTS = PROJECT_DIR / "requirements-spark.txt"
LOCK = PROJECT_DIR / "requirements.lock"
TABLES_RECORD = "audit.spark_tables"  # in the DuckDB file of a Spark night: the folder its views read


def ensure_installed(say=print) -> None:
    """The Spark engine's packages (requirements-spark.txt), installed on first use with one line saying so;
    Java, which pip cannot install, named in one line when missing."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise LoyaltyError(
            "the Spark engine needs Java 17, and there is no java on PATH and no JAVA_HOME"
            " (Debian: apt-get install openjdk-17-jre-headless; or run `make spark`)"
        )
    if importlib.util.find_spec("pyspark") and importlib.util.find_spec("dbt.adapters.spark"):
        return
    say(f"installing the Spark engine, once ({REQUIREMENTS.name}: pyspark and dbt-spark, about 450 MB) ...")
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "-c", str(LOCK), "-r", str(REQUIREMENTS)],
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise LoyaltyError(f"the Spark engine could not be installed (pip exit {completed.returncode}: {last})")
    importlib.invalidate_caches()


def nights_dir(settings: Settings) -> Path:
    """The folder of the Spark nights' table folders, beside the Spark warehouse link."""
    link = settings.spark_warehouse_dir
    return link.with_name(link.name + NIGHTS_SUFFIX)


def night_tables_dir(settings: Settings, started: datetime) -> Path:
    """The folder a Spark night started at ``started`` builds its tables in."""
    return nights_dir(settings) / started.strftime("%Y%m%dT%H%M%SZ")


def check_spark_warehouse(settings: Settings) -> None:
    """The Spark warehouse path, explicit or the default, is free or a link this engine published."""
    config.check_spark_warehouse(settings.spark_warehouse_dir)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def spark_tables(tables: Path) -> list[tuple[str, str, Path]]:
    """The tables of a Spark warehouse folder: (schema, table, folder of its Parquet files), each schema a
    ``<schema>.db`` folder (Spark's layout of managed tables)."""
    found = []
    for schema_dir in sorted(tables.glob("*.db")):
        for table_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
            found.append((schema_dir.name.removesuffix(".db"), table_dir.name, table_dir))
    return found


def write_serving_file(tables: Path, database: Path, storage_compatibility_version: str) -> int:
    """The DuckDB file of a Spark night (``database``, replaced): per table of ``tables`` a view of the same schema
    and name over its Parquet files, timestamps as the DuckDB engine's (UTC, without a zone: Spark's Parquet
    timestamps are instants, which DuckDB reads with a zone and would show in each client's own), and
    ``audit.spark_tables`` naming the folder. Returns the number of views."""
    import duckdb

    found = spark_tables(tables)
    if not found:
        raise LoyaltyError(f"the Spark build wrote no table in {tables}")
    for path in (database, database.with_name(database.name + ".wal")):
        path.unlink(missing_ok=True)
    database.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database), config={"storage_compatibility_version": storage_compatibility_version}) as con:
        for schema in sorted({schema for schema, _, _ in found}):
            con.execute(f"create schema if not exists {_identifier(schema)}")
        for schema, table, folder in found:
            source = f"read_parquet({_literal(str(folder / '*.parquet'))})"
            described = con.execute(f"describe select * from {source}").fetchall()
            columns = ", ".join(
                f"timezone('UTC', {_identifier(name)}) as {_identifier(name)}"
                if kind == "TIMESTAMP WITH TIME ZONE"
                else _identifier(name)
                for name, kind, *_ in described
            )
            con.execute(f"create view {_identifier(schema)}.{_identifier(table)} as select {columns} from {source}")
        con.execute(f"create table {TABLES_RECORD} as select cast(? as varchar) as folder", [str(tables)])
    return len(found)


def published_tables_dir(warehouse: Path) -> Path | None:
    """The folder of Spark tables the published DuckDB file reads (None: a DuckDB night's file, or none)."""
    import duckdb

    if not warehouse.is_file():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            rows = con.execute(f"select folder from {TABLES_RECORD}").fetchall()
    except duckdb.Error:
        return None
    return Path(rows[0][0]) if rows else None


def remove_unpublished_nights(settings: Settings, keep: tuple[Path | None, ...] = ()) -> list[Path]:
    """Delete the Spark nights' folders nothing reads: all but the published file's, the Spark warehouse link's
    and ``keep``. Returns what was deleted."""
    folder = nights_dir(settings)
    if not folder.is_dir():
        return []
    link = settings.spark_warehouse_dir
    kept = {p.resolve() for p in (*keep, published_tables_dir(settings.warehouse)) if p is not None}
    if link.is_symlink():
        kept.add(link.resolve())
    removed = []
    for night in sorted(p for p in folder.iterdir() if p.is_dir()):
        if night.resolve() not in kept:
            shutil.rmtree(night, ignore_errors=True)
            removed.append(night)
    return removed


def publish_tables(settings: Settings, tables: Path) -> list[Path]:
    """Point the Spark warehouse link at ``tables`` in one rename, then delete the nights' folders nothing reads
    any more, keeping the one published before (a BI session opened on yesterday's file still reads it until the
    next night). Returns what was deleted."""
    check_spark_warehouse(settings)
    link = settings.spark_warehouse_dir
    previous = link.resolve() if link.is_symlink() else None
    staged = link.with_name(f".{link.name}.{os.getpid()}.link")
    staged.unlink(missing_ok=True)
    staged.symlink_to(os.path.relpath(tables, link.parent))
    os.replace(staged, link)
    return remove_unpublished_nights(settings, keep=(tables, previous))


if __name__ == "__main__":
    raise SystemExit(main())

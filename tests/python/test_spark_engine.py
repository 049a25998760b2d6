"""The Spark engine (loyalty.spark_engine, docs/scale-out.md): the same dbt project built on a local Spark session
gives the same marts and the same quarantine as the DuckDB build.

The comparison builds the bundled data on Spark (a real local SparkSession, dbt-spark's session method) and reads
each Spark table's Parquet files with DuckDB, beside the bundled DuckDB warehouse of the suite: every mart and audit
table row for row, money to the cent, other numbers to 1e-9 (relative), text and dates exactly."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from loyalty import config
from loyalty.config import DEFAULT_RAW_DIR
from loyalty.landing import LANDED_SOURCE, MALFORMED_SOURCE, check_landing
from loyalty.spark_engine import PREDICTIVE_MODELS, PREDICTIVE_ROOT, build_in_phases, raw_reading_plan, raw_view

# the schemas whose every table is compared (staging and intermediate are the way there, not the product)
COMPARED_SCHEMAS = ("marts", "audit")
# columns that say which engine built the table, when, or how long it took: not the same by design
ENGINE_COLUMNS = {
    ("audit.build_info", "engine"),
    ("audit.build_info", "engine_version"),
    ("audit.build_info", "built_at"),
    ("marts.clv_model_parameters", "fit_seconds"),
}


def test_raw_views_are_named_for_their_source_table() -> None:
    assert raw_view("orders") == "raw__orders"


def test_the_raw_reading_plan_reads_every_batch_of_the_landing_check(tmp_path: Path) -> None:
    landing = check_landing(DEFAULT_RAW_DIR, tmp_path)
    plan = raw_reading_plan(landing)
    assert set(plan["entities"]) == set(landing.files)
    for name, landed in landing.files.items():
        readers = plan["entities"][name]["readers"]
        assert [r["batch"] for r in readers] == [b.name for b in landed.batches], name
        assert [r["columns"] for r in readers] == [list(b.columns) for b in landed.batches], name
        assert plan["entities"][name]["columns"] == list(landed.entity.all_columns)
    assert plan[LANDED_SOURCE] == str(landing.landed_path)
    assert plan[MALFORMED_SOURCE] == (str(landing.malformed_path) if landing.malformed_path else None)
    # an incremental night reads the new batches only: here none is known, so all are new
    assert raw_reading_plan(landing, only_new=True) == plan


def test_a_spark_build_runs_every_node_once_around_the_predictive_fit() -> None:
    calls: list[object] = []

    def invoke(args: list[str]) -> int:
        calls.append(args)
        return 0

    result = build_in_phases(
        None, ["--exclude", "test_type:unit", "--target", "spark"], invoke, fit=lambda spark: calls.append("fit")
    )
    assert result == 0
    assert calls == [
        ["build", "--target", "spark", "--exclude", "test_type:unit", f"{PREDICTIVE_ROOT}+"],
        "fit",
        ["build", "--target", "spark", "--select", f"{PREDICTIVE_ROOT}+", "--exclude", "test_type:unit",
         *PREDICTIVE_MODELS],
    ]  # fmt: skip


def test_a_failed_first_phase_stops_the_build_before_the_fit() -> None:
    calls: list[object] = []
    result = build_in_phases(None, [], lambda args: calls.append(args) or 1, fit=lambda spark: calls.append("fit"))
    assert result == 1 and calls == [["build", "--exclude", f"{PREDICTIVE_ROOT}+"]]


def _rows(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[list[str], list[tuple]]:
    result = con.execute(f"select * from {relation}")
    return [d[0].lower() for d in result.description], result.fetchall()


def _same(left: object, right: object) -> bool:
    """Equal as the comparison means it: money (decimals) to the cent, other numbers to 1e-9, nulls and NaN
    alike, timestamps as UTC instants."""
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        return abs(Decimal(str(left)) - Decimal(str(right))) < Decimal("0.005")
    if isinstance(left, float) or isinstance(right, float):
        if math.isnan(float(left)) or math.isnan(float(right)):
            return math.isnan(float(left)) and math.isnan(float(right))
        return math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(left, datetime) and isinstance(right, datetime):
        return left.replace(tzinfo=None) == right.replace(tzinfo=None)
    return left == right


def _sort_key(row: tuple) -> tuple:
    return tuple((value is None, str(round(value, 6)) if isinstance(value, float) else str(value)) for value in row)


def _differences(table: str, duckdb_rows: tuple[list[str], list[tuple]], spark_rows: tuple[list[str], list[tuple]]):
    columns, left = duckdb_rows
    spark_columns, right = spark_rows
    if sorted(columns) != sorted(spark_columns):
        return [f"{table}: columns {columns} (DuckDB) != {spark_columns} (Spark)"]
    kept = [c for c in columns if (table, c) not in ENGINE_COLUMNS]
    order = [spark_columns.index(c) for c in kept]
    left = sorted((tuple(r[columns.index(c)] for c in kept) for r in left), key=_sort_key)
    right = sorted((tuple(r[i] for i in order) for r in right), key=_sort_key)
    if len(left) != len(right):
        return [f"{table}: {len(left)} rows (DuckDB) != {len(right)} (Spark)"]
    found = []
    for number, (a, b) in enumerate(zip(left, right, strict=True)):
        for column, x, y in zip(kept, a, b, strict=True):
            if not _same(x, y):
                found.append(f"{table} row {number} {column}: {x!r} (DuckDB) != {y!r} (Spark)")
    return found[:20]


@pytest.mark.full_build
def test_the_bundled_data_on_spark_gives_the_marts_and_quarantine_of_duckdb(
    bundled_warehouse: tuple[Path, object], tmp_path: Path
) -> None:
    from loyalty.dbt_runner import run_dbt
    from loyalty.nightly import NIGHTLY_EXCLUDE
    from loyalty.planning import build_fingerprint

    warehouse, _ = bundled_warehouse
    settings = replace(config.resolve(warehouse=str(tmp_path / "loyalty.duckdb")), engine="spark")
    landing = check_landing(settings.raw_dir, tmp_path / "landing")
    run_dbt(
        settings,
        landing,
        "build",
        "--exclude",
        *NIGHTLY_EXCLUDE,
        quiet=True,
        extra_vars={"build_mode": "full", "build_fingerprint": build_fingerprint(settings)},
    )
    spark_dir = settings.spark_warehouse_dir
    assert (spark_dir / "marts.db" / "fct_orders").is_dir()
    differences = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema in"
            f" ({', '.join(repr(s) for s in COMPARED_SCHEMAS)}) and table_type = 'BASE TABLE' order by all"
        ).fetchall()
        assert len(tables) > 20
        for schema, table in tables:
            files = spark_dir / f"{schema}.db" / table
            assert files.is_dir(), f"{schema}.{table} was not built on Spark"
            spark_rows = _rows(con, f"read_parquet('{files}/*.parquet')")
            differences += _differences(f"{schema}.{table}", _rows(con, f"{schema}.{table}"), spark_rows)
    assert not differences, "\n".join(differences)

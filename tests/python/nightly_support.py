"""What the nightly tests share: a small generated shop split into nights, and helpers to run and compare them."""

from __future__ import annotations

import subprocess
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import run_cli

from loyalty.batches import split_by_day
from loyalty.generator import generate

LAST_DAY = date(2026, 10, 31)
NIGHTS = 3  # a history batch and three daily batches: nights 0..3
# Tables are compared row for row on every column but these: clv_model_parameters.fit_seconds is the fit's wall
# time, and _built_as_of is lineage (which night last wrote the row), different by construction between nights
# built one by one and one full refresh.
NOT_COMPARED = {"fit_seconds", "_built_as_of"}


def make_nights(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 1,500-customer shop with a few bad rows, split into a history batch and one batch per day for the last
    three days: nights[k] is the raw folder as it stands on night k."""
    raw = tmp_path_factory.mktemp("shop")
    generate(raw, 1500, seed=11, bad_row_rate=0.002, progress=False, force=True)
    return split_by_day(raw, tmp_path_factory.mktemp("split") / "out", LAST_DAY, NIGHTS)


def as_of(night: int) -> str:
    return (LAST_DAY - timedelta(days=NIGHTS - night)).isoformat()


def flow_env(tmp: Path, **extra: str) -> dict[str, str]:
    """A flow run of its own: its own Prefect home (database, logs), quick retries, no settling wait."""
    return {
        "PREFECT_HOME": str(tmp / "prefect"),
        "LOYALTY_RETRY_DELAY_SECONDS": "3",  # 3, 6, 12 s: time for the test to see the first retry
        "LOYALTY_LANDING_SETTLE_SECONDS": "0",
        "LOYALTY_MIN_NIGHT_VOLUME": "0",  # 1,500 customers: a quiet day is noise, not a broken feed
        **extra,
    }


def run_flow(raw: Path, warehouse: Path, as_of: str, env: dict[str, str], *more: str) -> subprocess.CompletedProcess:
    return run_cli("run", "--raw-dir", str(raw), "--warehouse", str(warehouse), "--as-of", as_of, *more, env=env)


def fingerprint(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def marts_differences(a: Path, b: Path) -> dict[str, tuple[int, int]]:
    """Per mart (and staging, audit and intermediate table): rows only in a, rows only in b."""
    differences = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        tables = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() where database_name = 'a'"
            " and schema_name in ('marts', 'audit', 'staging', 'intermediate')"
            # what a night did, not data: its build, its batches, its lists of customers to rebuild
            " and table_name not in ('build_info', 'landed_batches', 'int_orders__changed_customers',"
            " 'int_engagement__changed_customers')"
        ).fetchall()
        for (table,) in tables:
            schema, name = table.split(".")
            columns = ", ".join(
                f'"{c}"'
                for (c,) in con.execute(
                    "select column_name from duckdb_columns() where database_name = 'a' and schema_name = ?"
                    " and table_name = ? order by column_index",
                    [schema, name],
                ).fetchall()
                if c not in NOT_COMPARED
            )
            only_a = con.execute(
                f"select count(*) from (select {columns} from a.{table} except all select {columns} from b.{table})"
            ).fetchone()[0]
            only_b = con.execute(
                f"select count(*) from (select {columns} from b.{table} except all select {columns} from a.{table})"
            ).fetchone()[0]
            differences[table] = (only_a, only_b)
    assert len(differences) > 30
    return differences

"""The benchmark's SQL-script baseline (benchmarks/sql_script_baseline.py) computes the same three marts as the
warehouse, and its agreement check catches a single changed cent.

The script trusts its input (no quarantine), as the benchmark's generated data allows: it is compared on a small
generated clean shop (bad_row_rate=0), built by the warehouse with the same as-of date, not on data/default, whose
bad rows the warehouse quarantines (held orders, deduplicated copies, refunds beyond their order...): comparing there
would test a quarantine the script does not have. The shop is built in a reporting timezone and currency other than
the defaults, so that the script's dates and conversions are checked too."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import build_warehouse

from benchmarks.sql_script_baseline import NOT_COMPARED, TABLES, Disagreement, check_agreement, compare, run
from loyalty.generator import generate

AS_OF = "2026-10-31"
TIMEZONE = "America/New_York"
CURRENCY = "EUR"


@pytest.fixture(scope="module")
def clean_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(raw folder, built warehouse) of a small generated shop without bad rows."""
    base = tmp_path_factory.mktemp("clean_shop")
    raw = base / "raw"
    generate(raw, 400, 11, bad_row_rate=0.0, progress=False, force=True)
    warehouse = build_warehouse(
        raw, base / "loyalty.duckdb", as_of=AS_OF, dbt_tests=False, timezone=TIMEZONE, currency=CURRENCY
    )
    return raw, warehouse


@pytest.fixture(scope="module")
def script_marts(clean_shop: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datetime import date

    raw, _ = clean_shop
    return run(raw, date.fromisoformat(AS_OF), tmp_path_factory.mktemp("script") / "script.duckdb", TIMEZONE, CURRENCY)


def test_sql_script_agrees_with_the_warehouse_on_every_column(clean_shop: tuple[Path, Path], script_marts: Path):
    _, warehouse = clean_shop
    diffs = compare(script_marts, warehouse)
    check_agreement(diffs)
    for table in TABLES:
        assert diffs[f"{table}.rows"] > 0, table
        assert diffs[f"{table}.missing_columns"] == 0, table
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table, key in TABLES.items():
            columns = {name for (name,) in con.execute(f"select column_name from (describe marts.{table})").fetchall()}
            compared = {name.split(".", 1)[1] for name in diffs if name.startswith(f"{table}.")}
            # every column is compared, the key by the join, the predictions (not SQL) aside
            assert columns - compared - NOT_COMPARED.get(table, set()) == {key}, table
        refunded = con.execute("select sum(refunded_amount) from marts.customer_lifetime_value").fetchone()[0]
        assert refunded > 0  # the shop has refunds, so their conversion and booking are compared


@pytest.mark.parametrize(
    ("table", "column", "change", "key"),
    [
        ("customer_lifetime_value", "net_revenue", "net_revenue + 0.01", "customer_id"),
        ("repurchase_cohorts", "cumulative_net_revenue", "cumulative_net_revenue - 0.01", "cohort_period_id"),
        ("loyalty_kpis_monthly", "refunded_amount", "refunded_amount + 0.01", "month_start"),
        ("repurchase_cohorts", "retention_rate", "retention_rate + 1e-7", "cohort_period_id"),
        ("customer_lifetime_value", "last_order_date", "last_order_date + 1", "customer_id"),
        ("loyalty_kpis_monthly", "orders", "orders + 1", "month_start"),
    ],
)
def test_the_agreement_check_fails_on_one_changed_value(
    clean_shop: tuple[Path, Path], script_marts: Path, tmp_path: Path, table: str, column: str, change: str, key: str
):
    _, warehouse = clean_shop
    changed = tmp_path / "changed.duckdb"
    shutil.copy2(script_marts, changed)
    with duckdb.connect(str(changed)) as con:
        row = con.execute(f"select {key} from marts.{table} where {column} is not null order by {key} limit 1")
        (value,) = row.fetchone()  # type: ignore[misc]
        con.execute(f"update marts.{table} set {column} = {change} where {key} = ?", [value])
    diffs = compare(changed, warehouse)
    assert diffs[f"{table}.{column}"] == 1
    assert [name for name, count in diffs.items() if count and not name.endswith(".rows")] == [f"{table}.{column}"]
    with pytest.raises(Disagreement, match=f"{table}.{column}"):
        check_agreement(diffs)


def test_the_agreement_check_fails_on_a_missing_row(clean_shop: tuple[Path, Path], script_marts: Path, tmp_path: Path):
    _, warehouse = clean_shop
    changed = tmp_path / "changed.duckdb"
    shutil.copy2(script_marts, changed)
    with duckdb.connect(str(changed)) as con:
        con.execute("delete from marts.loyalty_kpis_monthly where month_start = (select max(month_start) from"
                    " marts.loyalty_kpis_monthly)")  # fmt: skip
    with pytest.raises(Disagreement, match="loyalty_kpis_monthly.unmatched_rows"):
        check_agreement(compare(changed, warehouse))

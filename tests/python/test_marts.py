"""The loyalty marts on real builds: the semantic layer agrees with the marts, and the as-of date gives the metrics
as they were then (a build of all the data as of an earlier date equals a build of only the data known then, and
closed months do not change when later data arrives). The metric definitions themselves are pinned by the dbt
unit tests (in each mart's <model>.yml, and models/**/_*__unit_tests.yml), which test_dbt_unit_tests.py runs."""

from __future__ import annotations

import csv
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import build_warehouse, query, run_cli

from loyalty import config

EARLIER = date(2025, 12, 31)  # a month end well inside the bundled data (which ends 2026-10-31)

LOYALTY_MARTS = (
    "customer_lifetime_value",
    "repurchase_cohorts",
    "loyalty_kpis_monthly",
    "acquisition_cac",
    "loyalty_program_lift",
    "customer_segments",
    "nps_monthly",
    "nps_segments",
    "customer_loyalty_index",
    "customer_loyalty_index_monthly",
    "share_of_wallet",
    "customer_engagement_monthly",
)


def _mf_csv(warehouse: Path, out: Path, *mf_args: str) -> list[dict[str, str]]:
    result = run_cli("metrics", "--warehouse", str(warehouse), "query", *mf_args, "--csv", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_semantic_layer_nps_by_month_equals_the_mart(
    bundled_warehouse: tuple[Path, subprocess.CompletedProcess], tmp_path: Path
) -> None:
    warehouse, _ = bundled_warehouse
    rows = _mf_csv(warehouse, tmp_path / "nps.csv", "--metrics", "nps,responses", "--group-by", "metric_time__month")
    from_mf = {row["metric_time__month"][:10]: (float(row["nps"]), int(row["responses"])) for row in rows}
    mart = {
        str(month): (nps, responses)
        for month, nps, responses in query(
            warehouse, "select month_start, nps, responses from marts.nps_monthly where responses > 0"
        )
    }
    assert len(mart) >= 30
    assert from_mf.keys() == mart.keys()
    for month, (nps, responses) in mart.items():
        assert from_mf[month][1] == responses, month
        assert from_mf[month][0] == pytest.approx(nps, abs=1e-9), month


def test_semantic_layer_net_revenue_by_cohort_month_equals_the_cohorts(
    bundled_warehouse: tuple[Path, subprocess.CompletedProcess], tmp_path: Path
) -> None:
    warehouse, _ = bundled_warehouse
    rows = _mf_csv(
        warehouse,
        tmp_path / "cohorts.csv",
        "--metrics",
        "net_revenue,customers",
        "--group-by",
        "customer__cohort_month",
    )
    from_mf = {
        row["customer__cohort_month__month"][:10]: (round(float(row["net_revenue"]), 2), int(row["customers"]))
        for row in rows
    }
    mart = {
        str(cohort): (float(net), size)
        for cohort, net, size in query(
            warehouse,
            "select cohort_month, sum(net_revenue), any_value(cohort_size) from marts.repurchase_cohorts group by 1",
        )
    }
    assert len(mart) == 36
    assert from_mf == mart


def test_semantic_layer_ratios_equal_the_lifetime_row_of_the_monthly_kpis(
    bundled_warehouse: tuple[Path, subprocess.CompletedProcess], tmp_path: Path
) -> None:
    warehouse, _ = bundled_warehouse
    (row,) = _mf_csv(warehouse, tmp_path / "ratios.csv", "--metrics", "repurchase_ratio,upsell_rate,orders")
    (expected,) = query(
        warehouse,
        "select repurchase_ratio, upsell_rate, (select sum(orders) from marts.loyalty_kpis_monthly)"
        " from marts.loyalty_kpis_monthly order by month_start desc limit 1",
    )
    assert float(row["repurchase_ratio"]) == pytest.approx(expected[0], rel=1e-12)
    assert float(row["upsell_rate"]) == pytest.approx(expected[1], rel=1e-12)
    assert int(row["orders"]) == expected[2]


def test_metrics_command_needs_a_built_warehouse(tmp_path: Path) -> None:
    result = run_cli("metrics", "--warehouse", str(tmp_path / "none.duckdb"), "query", "--metrics", "nps")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: no warehouse at {tmp_path / 'none.duckdb'}: build it first (loyalty run)"


def _truncate_raw_data(source: Path, target: Path, last_day: date) -> None:
    """The raw files as they were at the end of ``last_day`` (UTC): rows with a timestamp after it removed (order
    lines with their order), everything else as it was. Rows whose timestamp does not parse are bad rows that are
    quarantined either way; they are dropped here."""
    target.mkdir()
    cutoff = f"timestamptz '{last_day.isoformat()} 00:00:00+00' + interval 1 day"
    kept = {
        "customers": "true",
        "products": "true",
        "orders": f"try_cast(ordered_at as timestamptz) < {cutoff}",
        "refunds": f"try_cast(refunded_at as timestamptz) < {cutoff}",
        "survey_responses": f"try_cast(responded_at as timestamptz) < {cutoff}",
        "loyalty_events": f"try_cast(occurred_at as timestamptz) < {cutoff}",
        "engagement_events": f"try_cast(occurred_at as timestamptz) < {cutoff}",
        "marketing_spend": f"try_cast(spend_month as date) <= date '{last_day.isoformat()}'",
    }
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")

        def read(entity: str) -> str:
            return f"read_csv('{source / entity}.csv', all_varchar = true, header = true)"

        for entity, condition in kept.items():
            con.execute(f"copy (select * from {read(entity)} where {condition}) to '{target / entity}.csv' (header)")
        con.execute(
            f"copy (select * from {read('order_items')} where order_id in "
            f"(select order_id from read_csv('{target / 'orders'}.csv', all_varchar = true, header = true)))"
            f" to '{target / 'order_items'}.csv' (header)"
        )


@pytest.fixture(scope="module")
def earlier_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(all the bundled data built as of EARLIER, only the data known on EARLIER built as of EARLIER)."""
    work = tmp_path_factory.mktemp("as_of")
    full = build_warehouse(
        config.DEFAULT_RAW_DIR, work / "full" / "loyalty.duckdb", as_of=EARLIER.isoformat(), dbt_tests=False
    )
    truncated_raw = work / "raw_then"
    _truncate_raw_data(config.DEFAULT_RAW_DIR, truncated_raw, EARLIER)
    then = build_warehouse(truncated_raw, work / "then" / "loyalty.duckdb", as_of=EARLIER.isoformat(), dbt_tests=False)
    return full, then


def _differences(a: Path, b: Path, table: str, where: str = "true") -> tuple[int, int, int]:
    """(rows of a's table, rows only in a, rows only in b), comparing whole rows."""
    with duckdb.connect() as con:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        rows = con.execute(f"select count(*) from a.marts.{table} where {where}").fetchone()[0]
        only_a = con.execute(
            f"select count(*) from (select * from a.marts.{table} where {where}"
            f" except all select * from b.marts.{table} where {where})"
        ).fetchone()[0]
        only_b = con.execute(
            f"select count(*) from (select * from b.marts.{table} where {where}"
            f" except all select * from a.marts.{table} where {where})"
        ).fetchone()[0]
    return rows, only_a, only_b


@pytest.mark.parametrize("mart", LOYALTY_MARTS)
def test_an_earlier_as_of_date_gives_the_metrics_as_they_were_then(
    earlier_builds: tuple[Path, Path], mart: str
) -> None:
    full, then = earlier_builds
    rows, only_full, only_then = _differences(full, then, mart)
    assert rows > 0
    assert (only_full, only_then) == (0, 0)


@pytest.mark.parametrize(
    ("mart", "closed"),
    [
        ("loyalty_kpis_monthly", "month_start <= date '2025-12-01'"),
        ("repurchase_cohorts", "activity_month <= date '2025-12-01'"),
        ("nps_monthly", "month_start <= date '2025-12-01'"),
        ("customer_loyalty_index_monthly", "month_start <= date '2025-12-01'"),
    ],
)
def test_closed_months_do_not_change_when_later_data_arrives(
    earlier_builds: tuple[Path, Path],
    bundled_warehouse: tuple[Path, subprocess.CompletedProcess],
    mart: str,
    closed: str,
) -> None:
    """The bundled build (as of 2026-10-31) has ten more months of orders, refunds of old orders included; the
    months closed on 2025-12-31 are exactly as the build as of that day reported them."""
    full_then, _ = earlier_builds
    later, _ = bundled_warehouse
    rows, only_then, only_later = _differences(full_then, later, mart, closed)
    assert rows > 0
    assert (only_then, only_later) == (0, 0)


def test_later_refunds_of_old_orders_exist_in_the_bundled_data(
    bundled_warehouse: tuple[Path, subprocess.CompletedProcess],
) -> None:
    """The closed-months test above means something only if refunds after 2025-12-31 of orders placed on or before
    it exist: they change those orders' lifetime net revenue but not the closed months."""
    later, _ = bundled_warehouse
    (late_refunds,) = query(
        later,
        "select count(*) from marts.fct_refunds r join marts.fct_orders o using (order_id)"
        " where o.order_date <= date '2025-12-31' and r.refund_date > date '2025-12-31'",
    )[0]
    assert late_refunds > 0

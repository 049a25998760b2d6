"""Predicted CLV in real builds (landing check, dbt build into a DuckDB file, publication): the bundled data with a
holdout, a clean generated data set in weeks through plain dbt vars, and degenerate data."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import BAD_ROWS_DIR, PROJECT_DIR, build_warehouse, query

from loyalty import config
from loyalty.dbt_runner import dbt_command
from loyalty.generator import generate
from loyalty.landing import check_landing
from loyalty.predictive.raw_history import customer_histories
from loyalty.workspace import build_path

HOLDOUT_AS_OF = "2026-04-30"  # the bundled data run to 2026-10-31: six months of holdout


@pytest.fixture(scope="module")
def holdout_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_warehouse(
        config.DEFAULT_RAW_DIR,
        tmp_path_factory.mktemp("holdout") / "loyalty.duckdb",
        as_of=HOLDOUT_AS_OF,
        dbt_tests=False,
    )


def test_bundled_data_fills_parameters_and_predictions(holdout_warehouse: Path) -> None:
    rows = query(
        holdout_warehouse,
        "select model, parameter, value, status, customers, time_unit, as_of_date from marts.clv_model_parameters",
    )
    assert len(rows) == 7
    assert {r[3] for r in rows} == {"converged"}
    assert all(r[2] > 0 and r[5] == "day" and r[6] == date(2026, 4, 30) for r in rows)
    values = {r[1]: r[2] for r in rows}
    # the bundled data were generated with r = 0.8, alpha = 24 days, a = 0.85, b = 7 and p = q = 4, gamma = 45:
    # 3,600 customers pin them down to within a few standard errors, and the day grid biases r and alpha up
    assert values["r"] == pytest.approx(0.8, rel=0.15) and values["alpha"] == pytest.approx(24, rel=0.25)
    customers = query(holdout_warehouse, "select count(*) from marts.dim_customers where is_customer")[0][0]
    assert {r[4] for r in rows if r[0] == "bgnbd"} == {customers}
    (count, nulls, alive, transactions, clv) = query(
        holdout_warehouse,
        "select count(*), count(*) filter (where predicted_clv is null or probability_alive is null),"
        " avg(probability_alive), sum(expected_transactions), sum(predicted_clv)"
        " from marts.clv_customer_predictions",
    )[0]
    assert count == customers and nulls == 0
    assert 0.3 < alive < 0.9 and transactions > customers and clv > 0


def test_bundled_data_with_a_holdout_fills_the_evaluation(holdout_warehouse: Path) -> None:
    rows = query(
        holdout_warehouse,
        "select frequency_bucket, customers, actual_transactions, predicted_transactions, mean_absolute_error,"
        " correlation, holdout_start_date, holdout_end_date, holdout_length"
        " from marts.clv_model_evaluation order by bucket_order",
    )
    assert [r[0] for r in rows] == ["all", "0", "1", "2", "3", "4", "5", "6", "7+"]
    overall = rows[0]
    assert overall[1] == sum(r[1] for r in rows[1:])
    assert (overall[6], overall[7], overall[8]) == (date(2026, 5, 1), date(2026, 10, 31), 184.0)
    # actual holdout transactions straight from the orders: completed, after the as-of date, one per day
    actual = query(
        holdout_warehouse,
        "select count(distinct (customer_id, order_date)) from marts.fct_orders where status = 'completed'"
        " and is_after_as_of and customer_id in (select customer_id from marts.clv_customer_predictions)",
    )[0][0]
    assert overall[2] == actual
    # the model, fitted on data it was simulated from, predicts the holdout total within 10 % (measured: +2.3 %)
    assert overall[3] == pytest.approx(actual, rel=0.10)
    assert overall[5] > 0.6 and overall[4] < overall[2] / overall[1]


def test_the_holdout_lists_every_calibration_customer(holdout_warehouse: Path) -> None:
    """Customers without a purchase after the as-of date count with 0; customers who first bought after it are
    not calibration customers and do not appear."""
    (rows, customers, zeros, late) = query(
        holdout_warehouse,
        "select count(*), count(distinct customer_id), count(*) filter (where holdout_transactions = 0),"
        " count(*) filter (where customer_id not in (select customer_id from marts.clv_customer_predictions))"
        " from intermediate.int_clv__holdout_transactions",
    )[0]
    assert rows == customers == query(holdout_warehouse, "select count(*) from marts.clv_customer_predictions")[0][0]
    assert 0 < zeros < rows and late == 0
    first_after = query(
        holdout_warehouse,
        "select count(distinct customer_id) from marts.fct_orders where status ="
        " 'completed' and is_after_as_of and customer_id not in (select customer_id from"
        " intermediate.int_clv__holdout_transactions)",
    )[0][0]
    assert first_after > 0  # new customers in the holdout period exist, and are left out


# ------------------------------------------------------------------------------------------------ weeks


@pytest.fixture(scope="module")
def weekly_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A clean generated data set (no bad rows), built by plain dbt with --vars clv_time_unit: week, the override
    the README documents, into its own file."""
    raw = tmp_path_factory.mktemp("raw_clean")
    generate(raw, 2500, seed=5, progress=False, force=True)
    warehouse = tmp_path_factory.mktemp("weekly") / "loyalty.duckdb"
    settings = config.resolve(raw_dir=str(raw), warehouse=str(warehouse), as_of="2026-10-31")
    landing = check_landing(raw, work_dir=warehouse.parent / "landing")  # the counts raw_reconciliation checks
    command, env = dbt_command(settings, landing, "build", "--exclude", "test_type:unit", database=warehouse)
    at = command.index("--vars") + 1
    command[at] = json.dumps({**json.loads(command[at]), "clv_time_unit": "week", "clv_horizon_months": 6})
    result = subprocess.run(command, env=env, cwd=PROJECT_DIR, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert not build_path(warehouse).exists()
    return raw, warehouse


def test_the_warehouse_history_equals_its_raw_file_mirror(weekly_warehouse: tuple[Path, Path]) -> None:
    """loyalty.predictive.raw_history (used by the recovery test and the benchmark) repeats the definition of
    int_clv__customer_history over raw files; on clean data both give the same rows."""
    raw, warehouse = weekly_warehouse
    columns = ["customer_id", "frequency", "recency_days", "tenure_days", "recency", "tenure", "mean_repeat_value"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        built = con.execute(
            f"select {', '.join(columns)} from intermediate.int_clv__customer_history order by customer_id"
        ).df()
    mirror = customer_histories(raw, date(2026, 10, 31), time_unit="week")[columns]
    pd.testing.assert_frame_equal(built, mirror, check_dtype=False, rtol=1e-9)


def test_weekly_vars_reach_the_models(weekly_warehouse: tuple[Path, Path]) -> None:
    _, warehouse = weekly_warehouse
    units = query(warehouse, "select distinct time_unit from marts.clv_model_parameters")
    assert units == [("week",)]
    alpha, status = query(warehouse, "select value, status from marts.clv_model_parameters where parameter = 'alpha'")[
        0
    ]
    assert status == "converged" and alpha == pytest.approx(24 / 7, rel=0.35)  # the truth, in weeks
    months, length = query(
        warehouse, "select distinct horizon_months, horizon_length from marts.clv_customer_predictions"
    )[0]
    assert (months, length) == (6, pytest.approx(365.25 / 2 / 7))
    assert query(warehouse, "select count(*) from marts.clv_model_evaluation") == [(0,)]


# ------------------------------------------------------------------------------------------------ degenerate


def test_degenerate_data_builds_with_reasons(bad_rows_warehouse: Path) -> None:
    """The hand-made bad-rows fixture has a handful of customers and no repeat transaction-day (C1's two orders
    are on one UTC day): nothing to fit, the build still succeeds, and the parameters say why."""
    rows = query(bad_rows_warehouse, "select model, status, value, message from marts.clv_model_parameters")
    assert len(rows) == 7
    assert {(r[0], r[1]) for r in rows} == {("bgnbd", "not_fitted"), ("gamma_gamma", "not_fitted")}
    assert all(r[2] is None for r in rows)
    assert {r[3] for r in rows if r[0] == "bgnbd"} == {
        "no repeat customers: the purchase rate and drop-out cannot be estimated"
    }
    nulls = query(
        bad_rows_warehouse,
        "select count(*), count(*) filter (where probability_alive is null and predicted_clv is null)"
        " from marts.clv_customer_predictions",
    )[0]
    assert nulls[0] > 0 and nulls[0] == nulls[1]


def test_an_as_of_date_before_any_order_builds_empty_predictions_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = build_warehouse(BAD_ROWS_DIR, tmp_path / "loyalty.duckdb", as_of="2020-01-01")
    assert query(warehouse, "select count(*) from marts.clv_customer_predictions") == [(0,)]
    assert query(warehouse, "select count(*) from marts.clv_model_evaluation") == [(0,)]
    statuses = query(warehouse, "select distinct model, status, message from marts.clv_model_parameters order by 1")
    assert statuses == [
        ("bgnbd", "not_fitted", "no customers to fit"),
        ("gamma_gamma", "not_fitted", "no repeat customers with a positive mean repeat transaction value"),
    ]
    err = capsys.readouterr().err
    assert "warning: predicted CLV: bgnbd not fitted: no customers to fit" in err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"clv_time_unit": "month"}, "var clv_time_unit must be 'day' or 'week', not 'month'"),
        ({"clv_horizon_months": 1.5}, "var clv_horizon_months must be a whole number of months >= 1"),
        ({"clv_annual_discount_rate": "ten"}, "var clv_annual_discount_rate must be a number > -1"),
    ],
)
def test_a_bad_clv_var_stops_dbt_with_one_message(tmp_path: Path, override: dict, message: str) -> None:
    settings = config.resolve(raw_dir=str(BAD_ROWS_DIR), warehouse=str(tmp_path / "loyalty.duckdb"))
    command, env = dbt_command(settings, check_landing(BAD_ROWS_DIR), "compile", "--select", "int_clv__settings")
    at = command.index("--vars") + 1
    command[at] = json.dumps({**json.loads(command[at]), **override})
    result = subprocess.run(command, env=env, cwd=PROJECT_DIR, capture_output=True, text=True)
    assert result.returncode != 0
    assert message in result.stdout
    assert "Traceback" not in result.stdout + result.stderr

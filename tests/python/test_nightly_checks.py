"""dbt's data tests on an incremental night read what the night wrote (macros/tonight.sql): row-level checks read
tonight's rows, uniqueness compares tonight's keys with all keys. A bad row that arrives tonight for an old
customer, or a key of tonight's batch that collides with an old one, still fails the night: nothing is published
and dbt names the failing test. The faults are injected after the quarantine (var loyalty_corrupt_rows,
macros/fault_injection.sql), where no raw file could put them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import PROJECT_DIR
from nightly_support import as_of, fingerprint

from loyalty import config
from loyalty.config import Thresholds
from loyalty.errors import LoyaltyError
from loyalty.nightly import run_night
from loyalty.planning import build_fingerprint
from loyalty.workspace import build_path, dbt_target_dir


@pytest.fixture(scope="module")
def published(nights: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Night 2 published (without dbt's tests, which night 3 runs), for night 3 to build on incrementally."""
    warehouse = tmp_path_factory.mktemp("checks") / "loyalty.duckdb"
    settings = config.resolve(
        raw_dir=str(nights[2]), warehouse=str(warehouse), as_of=as_of(2), thresholds=Thresholds(min_night_volume=0)
    )
    run_night(settings, quiet=True, docs=False, validate=False, dbt_tests=False)
    return warehouse


def failing_night(
    published: Path, raw: Path, tmp_path: Path, fault: dict, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, dict], str]:
    """Night 3 with dbt's tests on a copy of the published warehouse, with `fault` injected: the warehouse (to be
    unchanged), dbt's results by test name, and dbt's output."""
    warehouse = tmp_path / "loyalty.duckdb"
    shutil.copy2(published, warehouse)
    monkeypatch.setenv("LOYALTY_DBT_VARS", json.dumps({"loyalty_corrupt_rows": fault}))
    settings = config.resolve(
        raw_dir=str(raw), warehouse=str(warehouse), as_of=as_of(3), thresholds=Thresholds(min_night_volume=0)
    )
    # the var is part of the build fingerprint: the copy says it was built with it, so that night 3 is incremental
    # (the fault changes nothing on night 2's full build: it needs rows of an earlier night)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update audit.build_info set build_fingerprint = ?", [build_fingerprint(settings)])
    before = fingerprint(warehouse)
    with pytest.raises(LoyaltyError, match="^dbt build failed") as excinfo:
        run_night(settings, quiet=True, docs=False, validate=False, dbt_tests=True)
    assert fingerprint(warehouse) == before  # not published
    run_results = json.loads((dbt_target_dir(warehouse) / "run_results.json").read_text())
    # an incremental night (build_mode reaches dbt in its environment, macros/night.sql: not in run_results' vars)
    (changed,) = (r for r in run_results["results"] if r["unique_id"].endswith(".int_engagement__changed_customers"))
    assert "where true" in changed["compiled_code"], changed["compiled_code"]
    results = {r["unique_id"].split(".")[2]: r for r in run_results["results"] if r["unique_id"].startswith("test.")}
    return warehouse, results, str(excinfo.value)


def failed(results: dict[str, dict]) -> list[str]:
    return sorted(name for name, r in results.items() if r["status"] == "fail")


def test_a_bad_row_tonight_for_an_old_customer_fails_the_night(
    published: Path, nights: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    fault = {"model": "base_loyalty__orders", "fault": "null_value", "column": "currency_code"}
    warehouse, results, _ = failing_night(published, nights[3], tmp_path, fault, monkeypatch)
    assert failed(results) == ["stg_loyalty__orders_row_checks"]
    assert "Failure in test stg_loyalty__orders_row_checks" in capfd.readouterr().err
    # the test read tonight's rows only (from the base table), and its failing row names the check
    test = results["stg_loyalty__orders_row_checks"]
    assert "_built_as_of = date '" + as_of(3) + "'" in test["compiled_code"]
    with duckdb.connect(str(build_path(warehouse)), read_only=True) as con:
        rows = con.execute(test["compiled_code"]).fetchall()
        # the corrupted order is one of an old customer, staged tonight
        old_customer = con.execute(
            "select count(distinct _built_as_of) from staging.base_loyalty__orders where customer_id ="
            " (select customer_id from staging.base_loyalty__orders where currency_code is null"
            " and _quarantine_reason is null)"
        ).fetchone()[0]
    assert rows == [("not_null(currency_code)", None)]
    assert old_customer > 1


def test_a_key_of_tonight_that_collides_with_an_old_one_fails_the_night(
    published: Path, nights: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    fault = {"model": "base_loyalty__orders", "fault": "duplicate_key"}
    _, results, _ = failing_night(published, nights[3], tmp_path, fault, monkeypatch)
    assert failed(results) == ["unique_tonight_stg_loyalty__orders_order_id"]
    assert "Failure in test unique_tonight_stg_loyalty__orders_order_id" in capfd.readouterr().err
    test = results["unique_tonight_stg_loyalty__orders_order_id"]
    assert "_built_as_of = date '" + as_of(3) + "'" in test["compiled_code"]
    assert test["failures"] == 1


def test_tonights_staged_rows_are_those_of_staged_rows() -> None:
    """tonight_rows reads a staging view's rows of tonight from its base table: the same filter and the same
    hidden columns as staged_rows (macros/raw_rows/verdicts.sql, one definition of each), plus _built_as_of."""
    verdicts = (PROJECT_DIR / "macros" / "raw_rows" / "verdicts.sql").read_text()
    staged = re.search(r"macro staged_rows\(base_model\) -%\}\s*(.*?)\{%- endmacro", verdicts, re.S)
    assert staged, "staged_rows not found"
    assert staged.group(1).strip().splitlines() == [
        "select {{ star_except(staged_hidden_columns()) }}",
        "from {{ ref(base_model) }}",
        "where {{ staged_filter() }}",
    ]
    hidden = re.search(r"macro staged_hidden_columns\(\) -%\}\s*\{\{ return\((\[.*?\])\) \}\}", verdicts, re.S)
    assert hidden, "staged_hidden_columns not found"
    assert "'_built_as_of'" in hidden.group(1) and "'_raw_row'" in hidden.group(1)
    tonight = (PROJECT_DIR / "macros" / "tonight.sql").read_text()
    flat = " ".join(tonight.split())
    assert "'(select ' ~ star_except(staged_hidden_columns()) ~ ' from ' ~ base_relation ~ ' where '" in flat
    assert "~ staged_filter() ~ ' and _built_as_of = ' ~ built_as_of() ~ ')'" in flat

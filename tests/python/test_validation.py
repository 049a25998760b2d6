"""The Great Expectations gate, for real: real dbt builds into real DuckDB files, the real GX checkpoint over them
(GX's SQL data source, every expectation evaluated by DuckDB), real Data Docs. Each kind of expectation is shown to
fail on data that violates it, and on exactly that expectation.

The bundled data is built once per session; most tests break a copy of it with DuckDB and validate the copy. GX is
never imported into the pytest process: ``validate`` runs the checkpoint in a child process.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import PROJECT_DIR, query, run_cli

from loyalty import config
from loyalty.config import Thresholds
from loyalty.errors import LoyaltyError
from loyalty.nightly import run_night
from loyalty.report import BuildResult
from loyalty.suites import SUITES_DIR, load_suite, load_suites
from loyalty.validation import ValidationFailed, ValidationResult, checkpoint_request, output_dir_for, validate
from loyalty.workspace import build_path

BUNDLED = config.DEFAULT_RAW_DIR
MANIFEST = json.loads((BUNDLED / "manifest.json").read_text())
AS_OF = date.fromisoformat(MANIFEST["data_end_date"])


def _build(raw_dir: Path, warehouse: Path, as_of: str = "", thresholds: Thresholds | None = None) -> BuildResult:
    settings = config.resolve(
        raw_dir=str(raw_dir), warehouse=str(warehouse), as_of=as_of, thresholds=thresholds or Thresholds()
    )
    # dbt's own tests are not what these tests are about
    return run_night(settings, quiet=True, docs=False, dbt_tests=False)[0]


def _failed(result: ValidationResult) -> set[tuple[str, str, str | None]]:
    return {(f.suite, f.expectation, f.column) for f in result.failures}


def _copy(source: Path, folder: Path, *statements: str) -> Path:
    """A copy of a warehouse (same file name: views name the catalog after it), changed by ``statements``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    shutil.copy(source, target)
    with duckdb.connect(str(target)) as con:
        for statement in statements:
            con.execute(statement)
    return target


# --- the bundled data passes ------------------------------------------------------------------------------------------


def test_bundled_data_passes_every_suite(bundled: BuildResult) -> None:
    result = bundled.validation
    assert result is not None and result.passed, result.report() if result else "no validation"
    suites = load_suites()
    assert result.suites == tuple(s.name for s in suites)
    # every expectation of every suite file was evaluated (first night: no row-count comparison added)
    assert result.evaluated == sum(len(s.expectations) for s in suites) > 150
    assert result.as_of == AS_OF
    assert result.docs_index == output_dir_for(bundled.warehouse) / "data_docs" / "index.html"
    saved = json.loads(result.result_file.read_text())
    assert saved["passed"] is True and saved["failures"] == [] and saved["as_of"] == AS_OF.isoformat()
    assert saved["evaluated_expectations"] == result.evaluated
    assert saved["peak_memory_mb"] > 0 and saved["seconds"] > 0


def test_data_docs_are_a_static_site_with_every_suite_and_validation(bundled: BuildResult) -> None:
    assert bundled.validation is not None
    docs = bundled.validation.docs_index.parent
    index = bundled.validation.docs_index.read_text()
    for suite in bundled.validation.suites:
        assert suite in index, suite
        # GX files a suite named a.b under expectations/a/b.html
        assert (docs / "expectations" / f"{suite.replace('.', '/')}.html").is_file(), suite
    validation_pages = list((docs / "validations").rglob("*.html"))
    assert len(validation_pages) == len(bundled.validation.suites)
    page = next(p for p in validation_pages if "marts.fct_orders" in str(p)).read_text()
    assert "net_revenue" in page and "is never null" in page
    # offline: the pages load their styles and scripts from the site itself
    assert (docs / "static").is_dir()


def test_every_mart_audit_table_and_staged_view_has_a_suite(bundled: BuildResult) -> None:
    """Coverage: a model added to marts, audit or staging (stg_*) without a suite in gx/suites fails here."""
    relations = {
        f"{schema}.{name}"
        for schema, name in query(
            bundled.warehouse,
            "select schema_name, table_name from duckdb_tables() where schema_name in ('marts', 'audit')"
            " union all select schema_name, view_name from duckdb_views()"
            " where schema_name = 'staging' and view_name like 'stg_%'",
        )
    }
    covered = {s.table_name for s in load_suites() if s.table}
    assert relations - covered == set()


# --- each kind of expectation fails on data that violates it, and only that one ---------------------------------


def _first(table: str, key: str) -> str:
    return f"(select min({key}) from {table})"


# Each breakage: the statements that break a copy, the failures expected (suite, expectation, column) and how the
# failure's observed value starts (or a test of it). Uniqueness, relationships, accepted values and ranges that dbt
# tests declare are dbt's (DECISIONS.md, "GX gate (issue 14)"); these are the kinds the gate itself holds.
BREAKAGES = {
    "null value": (
        [f"update marts.fct_orders set status = null where order_id = {_first('marts.fct_orders', 'order_id')}"],
        {("marts.fct_orders", "expect_column_values_to_not_be_null", "status")},
        "1 unexpected of ",
    ),
    "orphan fact": (
        [
            "update marts.fct_order_items set customer_id = 'C-none'"
            f" where order_item_id = {_first('marts.fct_order_items', 'order_item_id')}"
        ],
        {("marts.fct_order_items", "unexpected_rows_expectation", "customer_id")},
        "1 unexpected of ",
    ),
    "score out of range": (
        [
            "update marts.fct_survey_responses set repurchase_intent_score = 11"
            f" where response_id = {_first('marts.fct_survey_responses', 'response_id')}"
        ],
        {("marts.fct_survey_responses", "expect_column_values_to_be_between", "repurchase_intent_score")},
        "1 unexpected of ",
    ),
    "negative net revenue": (
        [f"update marts.fct_orders set net_revenue = -5 where order_id = {_first('marts.fct_orders', 'order_id')}"],
        {("marts.fct_orders", "expect_column_values_to_be_between", "net_revenue")},
        "1 unexpected of ",
    ),
    "negative quantity": (
        [
            "update marts.fct_order_items set quantity = -1"
            f" where order_item_id = {_first('marts.fct_order_items', 'order_item_id')}"
        ],
        {("marts.fct_order_items", "expect_column_values_to_be_between", "quantity")},
        "1 unexpected of ",
    ),
    "bad staged value": (
        [
            "update staging.base_loyalty__loyalty_events set tier = 'platinum'"
            " where event_id = (select min(event_id) from staging.stg_loyalty__loyalty_events where tier is not null)"
        ],
        {("staging.stg_loyalty__loyalty_events", "expect_column_values_to_be_in_set", "tier")},
        "1 unexpected of ",
    ),
    "a missing row of a fixed-size mart": (
        ["delete from marts.clv_model_parameters where parameter = 'gamma'"],
        {("marts.clv_model_parameters", "expect_table_row_count_to_equal", None)},
        "6 rows",
    ),
    "quarantine not reconciled": (
        ["update audit.raw_reconciliation set quarantined_rows = quarantined_rows + 1 where entity = 'orders'"],
        {("audit.quarantined_rows", "unexpected_rows_expectation", "entity")},
        "1 unexpected of ",
    ),
    "landed records not reconciled": (
        [
            "update audit.landed_batches set raw_rows = raw_rows + 1"
            " where entity = 'orders' and batch = (select min(batch) from audit.landed_batches where entity = 'orders')"
        ],
        {("audit.landed_batches", "unexpected_rows_expectation", "raw_rows")},
        "1 unexpected of ",
    ),
    "a valid order counted twice in a mart": (
        [
            "update marts.customer_lifetime_value set valid_order_count = valid_order_count + 1"
            f" where customer_id = {_first('marts.customer_lifetime_value', 'customer_id')}"
        ],
        {("checks.bi_reconciliation", "expect_column_values_to_be_between", "clv_minus_fct_orders_valid_orders")},
        "1",
    ),
    "a customer missing from a mart": (
        [f"delete from marts.customer_segments where customer_id = {_first('marts.customer_segments', 'customer_id')}"],
        {("checks.bi_reconciliation", "expect_column_values_to_be_between", "segments_minus_dim_customers")},
        "-1",
    ),
    "the night's order values in cents": (
        [
            "update marts.fct_orders set net_revenue = net_revenue * 100"
            " where order_date = (select max(date_day) from marts.dim_date where not is_after_as_of)"
        ],
        {("checks.distributions", "expect_column_values_to_be_between", "night_to_trailing_mean_order_value")},
        lambda observed: float(observed) > 50,  # about 100: the night's orders are worth 100 times the month's
    ),
}


@pytest.fixture(scope="module")
def broken_results(bundled: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ValidationResult]:
    """Each breakage in its own copy, each copy through its own checkpoint run, in one child process: the same
    checkpoint ``validate`` runs, without paying GX's import (several seconds) nine times. A copy is checked with
    the suites of the tables its breakage should fail (every other suite passed on the same data unbroken, in
    test_bundled_data_passes_every_suite), so "only that expectation fails" holds within those suites."""
    folder = tmp_path_factory.mktemp("broken")
    requests = {}
    for number, (name, (statements, expected, _)) in enumerate(BREAKAGES.items()):
        broken = _copy(bundled.warehouse, folder / str(number), *statements)
        suites = folder / str(number) / "suites"
        suites.mkdir()
        for table in {suite for suite, _, _ in expected}:
            shutil.copy(SUITES_DIR / f"{table}.yml", suites)
        requests[name] = checkpoint_request(broken, output_dir=folder / str(number) / "validation", suites_dir=suites)
    completed = subprocess.run(
        [sys.executable, "-m", "loyalty.validation", *(json.dumps(r) for r in requests.values())],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 1, completed.stderr[-3000:]  # 1: at least one failed, nothing crashed
    return {
        name: ValidationResult.from_dict(json.loads((Path(r["output_dir"]) / "result.json").read_text()))
        for name, r in requests.items()
    }


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_violated_expectation_fails_the_checkpoint(
    broken_results: dict[str, ValidationResult], breakage: str
) -> None:
    result = broken_results[breakage]
    assert not result.passed
    assert _failed(result) == BREAKAGES[breakage][1], result.report()
    (failure,) = result.failures
    observed = BREAKAGES[breakage][2]
    assert observed(failure.observed) if callable(observed) else failure.observed.startswith(observed), failure
    assert json.loads(result.result_file.read_text())["failures"] == [failure.to_dict()]


def test_a_mart_that_lost_rows_against_the_published_warehouse_fails(bundled: BuildResult, tmp_path: Path) -> None:
    published = _copy(
        bundled.warehouse,
        tmp_path / "published",
        "insert into marts.dim_products select product_id || '-old', product_name, category, list_price"
        " from marts.dim_products",
    )
    tonight = _copy(bundled.warehouse, tmp_path / "tonight")
    result = validate(tonight, output_dir=tmp_path / "validation", previous=published)
    assert _failed(result) == {("marts.dim_products", "expect_table_row_count_to_be_between", None)}, result.report()
    (failure,) = result.failures
    assert failure.observed == "200 rows"
    assert "400 rows" in failure.expected
    # the other marts were compared too, and held: one row-count expectation per mart
    (marts,) = query(bundled.warehouse, "select count(*) from duckdb_tables() where schema_name = 'marts'")[0]
    assert marts > 7
    assert result.evaluated == bundled.validation.evaluated + marts  # type: ignore[union-attr]
    # a drop within the threshold passes
    tolerant = validate(
        tonight, output_dir=tmp_path / "validation", previous=published, thresholds=Thresholds(max_row_drop=0.5)
    )
    assert tolerant.passed, tolerant.report()


def test_a_stale_as_of_date_fails_freshness(tmp_path: Path) -> None:
    stale = (AS_OF + timedelta(days=5)).isoformat()
    warehouse = tmp_path / "loyalty.duckdb"
    # the night's volume check would fail as well (no order on the as-of date); switched off to isolate freshness
    with pytest.raises(ValidationFailed) as failed:
        _build(BUNDLED, warehouse, as_of=stale, thresholds=Thresholds(min_night_volume=0))
    result = failed.value.result
    assert _failed(result) == {("checks.order_freshness", "expect_column_max_to_be_between", "days_since_latest_order")}
    assert result.failures[0].observed == "5"
    assert "not published: nothing was published" in str(failed.value)
    assert not warehouse.exists()
    # with the default thresholds the stale night fails both checks of the night
    defaults = validate(build_path(warehouse), output_dir=tmp_path / "defaults")
    assert _failed(defaults) == {
        ("checks.order_freshness", "expect_column_max_to_be_between", "days_since_latest_order"),
        ("checks.order_volume", "expect_column_min_to_be_between", "night_to_trailing_mean"),
    }


def _thin_the_last_day(raw: Path, keep_every: int) -> int:
    """Keep one in ``keep_every`` orders dated the as-of date (UTC) in a copy of the bundled data, with their lines
    and refunds; returns the orders removed."""

    def on_as_of(text: str) -> bool:
        try:
            return datetime.fromisoformat(text).astimezone(UTC).date() == AS_OF
        except ValueError:  # a deliberately bad timestamp of the bundled data: not an order of that day
            return False

    def rewrite(name: str, keep: Callable[[dict[str, str]], bool]) -> None:
        path = raw / f"{name}.csv"
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            fields, rows = reader.fieldnames, [row for row in reader if keep(row)]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, quoting=csv.QUOTE_MINIMAL)
            writer.writeheader()
            writer.writerows(rows)

    removed: set[str] = set()
    seen = 0

    def keep_order(row: dict[str, str]) -> bool:
        nonlocal seen
        if not on_as_of(row["ordered_at"]):
            return True
        seen += 1
        if seen % keep_every == 0:
            return True
        removed.add(row["order_id"])
        return False

    rewrite("orders", keep_order)
    rewrite("order_items", lambda row: row["order_id"] not in removed)
    rewrite("refunds", lambda row: row["order_id"] not in removed)
    return len(removed)


def test_a_night_with_a_tenth_of_the_orders_fails_volume(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(BUNDLED, raw)
    assert _thin_the_last_day(raw, keep_every=10) > 20
    warehouse = tmp_path / "loyalty.duckdb"
    with pytest.raises(ValidationFailed) as failed:
        _build(raw, warehouse)
    result = failed.value.result
    assert _failed(result) == {("checks.order_volume", "expect_column_min_to_be_between", "night_to_trailing_mean")}
    ratio = float(result.failures[0].observed)
    assert 0.03 < ratio < 0.2, ratio
    assert not warehouse.exists()


def test_a_flood_of_bad_rows_fails_the_run_and_leaves_the_published_warehouse_untouched(
    bundled: BuildResult, tmp_path: Path
) -> None:
    """5 % bad rows: the quarantine rate of exactly the entities above 1 % fails; `loyalty run` exits 2 with a report
    naming suite, column and observed value; last night's warehouse stays published."""
    raw = tmp_path / "raw"
    generated = run_cli(
        "generate", "--customers", "5000", "--seed", "42", "--bad-row-rate", "0.05", "--no-progress", "--out", str(raw)
    )
    assert generated.returncode == 0, generated.stderr
    manifest = json.loads((raw / "manifest.json").read_text())
    rates = {entity: sum(manifest["injected"][entity].values()) / rows for entity, rows in manifest["rows"].items()}
    too_many = {entity for entity, rate in rates.items() if rate > 0.01}
    assert len(too_many) >= 5

    published = _copy(bundled.warehouse, tmp_path / "published")
    before = published.read_bytes()
    result = run_cli("build", "--quiet", "--raw-dir", str(raw), "--warehouse", str(published))

    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert published.read_bytes() == before
    assert build_path(published).is_file()  # the build copy was not renamed
    saved = json.loads((output_dir_for(published) / "result.json").read_text())
    assert saved["passed"] is False
    failures = {(f["suite"], f["expectation"], f["column"]) for f in saved["failures"]}
    assert failures == {("checks.quarantine_rate", "expect_column_max_to_be_between", e) for e in too_many}
    report = result.stderr
    assert report.startswith("error: GX checkpoint loyalty_nightly FAILED")
    for failure in saved["failures"]:
        line = next(line for line in report.splitlines() if f" {failure['column']} " in line)
        assert "checks.quarantine_rate" in line and failure["observed"] in line
        assert abs(float(failure["observed"]) - rates[failure["column"]]) < 1e-3
    assert f"not published: {published} is unchanged" in report
    assert "Traceback" not in report
    assert (output_dir_for(published) / "data_docs" / "index.html").is_file()


# --- adding a suite, missing tables, the command ----------------------------------------------------------------------

NPS_SUITE = """\
description: Weekly NPS (an example of a new mart).
table: marts.nps_weekly_example
key: response_month
expectations:
  - expect_column_values_to_be_between: {column: nps, min_value: -100, max_value: 100}
"""


def test_a_suite_for_a_new_mart_is_one_short_file(bundled: BuildResult, tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "marts.nps_weekly_example.yml").write_text(NPS_SUITE)
    create = (
        "create table marts.nps_weekly_example as"
        " select * from (values (date '2026-09-01', {nps})) as t(response_month, nps)"
    )

    good = _copy(bundled.warehouse, tmp_path / "good", create.format(nps=42.5))
    assert validate(good, output_dir=tmp_path / "v1", suites_dir=suites).passed

    bad = _copy(bundled.warehouse, tmp_path / "bad", create.format(nps=150.0))
    result = validate(bad, output_dir=tmp_path / "v2", suites_dir=suites)
    assert _failed(result) == {("marts.nps_weekly_example", "expect_column_values_to_be_between", "nps")}
    assert "150" in result.failures[0].observed


def test_a_suite_whose_table_is_missing_fails(bundled: BuildResult, tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "marts.nps_weekly_example.yml").write_text(NPS_SUITE)
    shutil.copy(PROJECT_DIR / "gx" / "suites" / "marts.dim_products.yml", suites)
    result = validate(bundled.warehouse, output_dir=tmp_path / "validation", suites_dir=suites)
    assert _failed(result) == {("marts.nps_weekly_example", "table exists", None)}
    assert result.failures[0].observed == "marts.nps_weekly_example is not in the warehouse"
    assert result.evaluated == 1 + len(load_suite(suites / "marts.dim_products.yml").expectations)


def test_validate_command_checks_the_published_warehouse_or_a_given_file(bundled: BuildResult, tmp_path: Path) -> None:
    published = _copy(bundled.warehouse, tmp_path / "published")
    ok = run_cli("validate", "--warehouse", str(published))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "GX checkpoint loyalty_nightly passed" in ok.stdout
    assert f"GX Data Docs: {output_dir_for(published) / 'data_docs' / 'index.html'}" in ok.stdout

    broken = _copy(bundled.warehouse, tmp_path / "broken", *BREAKAGES["score out of range"][0])
    failed = run_cli("validate", "--warehouse", str(published), "--database", str(broken))
    assert failed.returncode == 2
    assert "marts.fct_survey_responses" in failed.stderr and "repurchase_intent_score" in failed.stderr
    assert "1 unexpected of" in failed.stderr and "e.g. 11" in failed.stderr


def test_a_bad_threshold_is_one_line_and_exit_2(bundled: BuildResult) -> None:
    result = run_cli("validate", "--warehouse", str(bundled.warehouse), "--max-quarantine-rate", "5%")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: LOYALTY_MAX_QUARANTINE_RATE: '5%' is not a fraction from 0 to 1 (e.g. 0.05 for 5 %)"
    )
    missing = run_cli("validate", "--warehouse", "/nonexistent/loyalty.duckdb")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: no warehouse to validate at /nonexistent/loyalty.duckdb"


# --- why GX's SQL data source needs loyalty.gx_duckdb -------------------------------------------------------------

PROBE = """
import gc, json, sys
import great_expectations as gx
from great_expectations.data_context.data_context.context_factory import set_context
from loyalty.gx_duckdb import connection_url
path = sys.argv[1]
out = {}
for route, url in (("duckdb-engine", "duckdb:///" + path), ("loyalty", connection_url(path))):
    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_sql(route, connection_string=url).add_table_asset(
        "orders", table_name="fct_orders", schema_name="marts")
    batch = asset.add_batch_definition_whole_table("all").get_batch()
    rows = batch.validate(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1))
    unique = batch.validate(gx.expectations.ExpectColumnValuesToBeUnique(column="order_id"))
    out[route] = {
        "rows": [rows.success, rows.result.get("observed_value"), str(rows.exception_info)[:2000]],
        "unique": [unique.success, unique.result.get("unexpected_count"), str(unique.exception_info)[:2000]],
    }
    # DuckDB allows one configuration per file and process: close this route's connections before the next
    datasource = context.data_sources.get(route)
    datasource.get_execution_engine().close()
    datasource.get_engine().dispose()
    del context, asset, batch, datasource
    set_context(None)
    gc.collect()
with open(sys.argv[2], "w") as result:  # a file, not stdout: nothing a library prints at exit can hide it
    json.dump(out, result)
"""


def test_gx_sql_data_source_evaluates_only_through_the_project_dialect(bundled: BuildResult, tmp_path: Path) -> None:
    """The cause of GX issues #10738/#11579, shown: over plain duckdb-engine GX computes nothing; over
    loyalty.gx_duckdb it computes the real values. (If a duckdb-engine release fixes this, this test says so.)"""
    warehouse = _copy(bundled.warehouse, tmp_path / "probe")
    result = tmp_path / "probe.json"
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(warehouse), str(result)], capture_output=True, text=True, cwd=PROJECT_DIR
    )
    assert completed.returncode == 0 and result.exists(), (completed.returncode, completed.stderr[-3000:])
    out = json.loads(result.read_text())
    (orders,) = query(warehouse, "select count(*) from marts.fct_orders")[0]
    plain, ours = out["duckdb-engine"], out["loyalty"]
    assert plain["rows"][:2] == [False, None] and "list index out of range" in plain["rows"][2]
    assert plain["unique"][:2] == [False, None]
    assert ours["rows"][:2] == [True, orders]
    assert ours["unique"][:2] == [True, 0]


# --- suite files and thresholds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("table: marts.x\nkeys: id\n", "unknown key(s) keys"),
        ("table: x\nkey: id\n", "table 'x' is not of the form schema.table"),
        ("query: delete from x\nexpectations: []\n", "query must be a SELECT statement"),
        (
            "table: marts.x\nexpectations:\n"
            "  - expect_column_max_to_be_between: {column: a, max_value: {$PARAMETER: nope}}\n",
            "refers to unknown parameter(s) nope",
        ),
        (
            "table: marts.x\nrelationships: {a: marts.y}\n",
            "relationships.a 'marts.y' is not of the form schema.table.column",
        ),
        ("table: marts.x\n", "the suite has no expectations"),
    ],
)
def test_a_bad_suite_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "marts.x.yml"
    path.write_text(text)
    with pytest.raises(LoyaltyError, match="marts.x.yml: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_suite(path)


def test_shorthands_expand_to_gx_expectations(tmp_path: Path) -> None:
    path = tmp_path / "marts.fct_x.yml"
    path.write_text(
        "table: marts.fct_x\nkey: [a, b]\nnot_null: [c]\nrelationships: {c: marts.dim_c.id}\n"
        "expectations:\n  - expect_column_values_to_be_between: {column: d, min_value: 0, description: never below 0}\n"
    )
    suite = load_suite(path)
    assert suite.table == ("marts", "fct_x") and suite.name == "marts.fct_x"
    types = [(e["type"], e["kwargs"].get("column") or e["kwargs"].get("column_list")) for e in suite.expectations]
    assert types == [
        ("expect_column_values_to_not_be_null", "a"),
        ("expect_column_values_to_not_be_null", "b"),
        ("expect_compound_columns_to_be_unique", ["a", "b"]),
        ("expect_column_values_to_not_be_null", "c"),
        ("unexpected_rows_expectation", None),
        ("expect_column_values_to_be_between", "d"),
    ]
    relationship = suite.expectations[4]
    assert "{batch} as child left join marts.dim_c as parent" in relationship["kwargs"]["unexpected_rows_query"]
    assert suite.expectations[5]["description"] == "never below 0"
    assert "description" not in suite.expectations[5]["kwargs"]


def test_thresholds_come_from_flags_then_environment_then_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAX_QUARANTINE_RATE", "FRESHNESS_DAYS", "MIN_NIGHT_VOLUME", "MAX_ROW_DROP"):
        monkeypatch.delenv(f"LOYALTY_{name}", raising=False)
    assert config.resolve_thresholds() == Thresholds(0.01, 2, 0.5, 0.05)
    monkeypatch.setenv("LOYALTY_FRESHNESS_DAYS", "3")
    monkeypatch.setenv("LOYALTY_MAX_ROW_DROP", "0.2")
    assert config.resolve_thresholds(max_row_drop="0.1") == Thresholds(0.01, 3, 0.5, 0.1)
    with pytest.raises(LoyaltyError, match="LOYALTY_FRESHNESS_DAYS: '2.5' is not a whole number"):
        config.resolve_thresholds(freshness_days="2.5")
    with pytest.raises(LoyaltyError, match="LOYALTY_MIN_NIGHT_VOLUME: '2' is not a fraction"):
        config.resolve_thresholds(min_night_volume="2")
    assert config.resolve().thresholds == Thresholds(0.01, 3, 0.5, 0.2)

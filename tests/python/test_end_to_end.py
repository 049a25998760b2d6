"""End to end on the bundled default data, as a newcomer runs it: the CLI from another working directory, a real
DuckDB file published, every dbt test passing inside the build, then dbt docs generated."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import query, run_cli

from loyalty import config


@pytest.fixture(scope="module")
def published(bundled_warehouse: tuple[Path, subprocess.CompletedProcess]) -> tuple[Path, subprocess.CompletedProcess]:
    return bundled_warehouse


def test_run_publishes_the_warehouse_and_prints_a_summary(
    published: tuple[Path, subprocess.CompletedProcess],
) -> None:
    warehouse, result = published
    assert result.returncode == 0, result.stdout + result.stderr
    assert warehouse.is_file()
    assert not (warehouse.parent / ".build" / warehouse.name).exists()
    assert f"warehouse published: {warehouse}" in result.stdout
    manifest = json.loads((config.DEFAULT_RAW_DIR / "manifest.json").read_text())
    assert f"as of {manifest['data_end_date']}" in result.stdout
    for model in ("marts.fct_orders", "marts.dim_customers", "audit.quarantined_rows"):
        assert model in result.stdout
    # the run ends with the GX checkpoint's verdict, its Data Docs and result, the dbt docs and the run summary
    docs = warehouse.parent / "validation" / "data_docs" / "index.html"
    assert "GX checkpoint loyalty_nightly passed" in result.stdout
    assert result.stdout.rstrip().splitlines()[-4:] == [
        f"GX Data Docs: {docs}",
        f"validation result: {warehouse.parent / 'validation' / 'result.json'}",
        f"dbt docs: {warehouse.parent / 'docs' / 'index.html'}",
        f"run summary: {warehouse.parent / 'run_summary.json'}",
    ]
    assert docs.is_file()
    assert (warehouse.parent / "docs" / "index.html").is_file()
    assert json.loads((warehouse.parent / "validation" / "result.json").read_text())["passed"] is True


def test_bundled_data_reconciles_and_quarantines_little(
    published: tuple[Path, subprocess.CompletedProcess],
) -> None:
    warehouse, _ = published
    rows = query(
        warehouse,
        "select entity, raw_rows, staged_rows, quarantined_rows, collapsed_duplicates from audit.raw_reconciliation",
    )
    assert len(rows) == 9
    for entity, raw, staged, quarantined, collapsed in rows:
        assert raw > 0, entity
        assert raw == staged + quarantined + collapsed, entity
        assert quarantined / raw < 0.01, entity


def test_bundled_data_quarantine_matches_what_the_generator_injected(
    published: tuple[Path, subprocess.CompletedProcess],
) -> None:
    warehouse, _ = published
    manifest = json.loads((config.DEFAULT_RAW_DIR / "manifest.json").read_text())
    got = {
        (entity, reason): count
        for entity, reason, count in query(
            warehouse, "select entity, reason_code, count(*) from audit.quarantined_rows group by all"
        )
    }
    injected = {
        (entity, reason): count
        for entity, reasons in manifest["injected"].items()
        for reason, count in reasons.items()
        if count
    }
    assert got == injected
    collapsed = dict(query(warehouse, "select entity, collapsed_duplicates from audit.raw_reconciliation"))
    assert {e: n for e, n in collapsed.items() if n} == {e: n for e, n in manifest["exact_duplicates"].items() if n}


def test_facts_are_consistent(published: tuple[Path, subprocess.CompletedProcess]) -> None:
    warehouse, _ = published
    (orders, customers, first_orders) = query(
        warehouse,
        "select count(*) filter (where is_valid_order), count(distinct customer_id) filter (where is_valid_order),"
        " count(*) filter (where is_first_order) from marts.fct_orders",
    )[0]
    assert orders > customers > 0
    assert first_orders == customers
    assert query(warehouse, "select count(*) from marts.dim_customers where is_customer") == [(customers,)]
    # gross revenue of the orders equals the sum of their lines (USD lines exactly; others within a cent a line)
    (diff,) = query(
        warehouse,
        "select max(abs(o.gross_revenue - l.gross)) - max(o.line_count) * 0.01 from marts.fct_orders o"
        " join (select order_id, sum(gross_revenue) gross from marts.fct_order_items group by 1) l using (order_id)",
    )[0]
    assert diff <= 0


def test_dbt_docs_are_generated_and_document_every_column(published: tuple[Path, subprocess.CompletedProcess]) -> None:
    """The night ran `dbt docs generate --static` on the build copy and published the page beside the warehouse;
    its catalog (the built tables' real columns) has a description for every column of every model."""
    warehouse, result = published
    page = warehouse.parent / "docs" / "index.html"
    assert page.stat().st_size > 100_000 and "customer_lifetime_value" in page.read_text()
    assert f"dbt docs: {page}" in result.stdout
    target = warehouse.parent / ".build" / "target"
    catalog = json.loads((target / "catalog.json").read_text())
    assert "model.loyalty.fct_orders" in catalog["nodes"]
    manifest = json.loads((target / "manifest.json").read_text())
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert len(models) > 50
    undocumented = [
        f"{node['name']}.{column}"
        for node in models
        for column in catalog["nodes"][node["unique_id"]]["columns"]
        if not node["columns"].get(column, {}).get("description")
    ]
    assert undocumented == []


def test_a_failed_build_leaves_the_published_warehouse_untouched(
    published: tuple[Path, subprocess.CompletedProcess],
) -> None:
    warehouse, _ = published
    before = (warehouse.stat().st_mtime_ns, warehouse.read_bytes())
    # a mart fails (the project's fault injection): dbt fails part-way through, after the facts were built
    # (a memory limit too small to build is refused before anything starts: test_config.py)
    result = run_cli(
        "build",
        "--quiet",
        "--warehouse",
        str(warehouse),
        env={"LOYALTY_DBT_VARS": '{"loyalty_fail_model": "customer_lifetime_value"}'},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: dbt build failed")
    assert (warehouse.stat().st_mtime_ns, warehouse.read_bytes()) == before
    assert query(warehouse, "select count(*) > 0 from marts.fct_orders") == [(True,)]


def test_one_build_per_warehouse_at_a_time(tmp_path: Path) -> None:
    from loyalty.errors import LoyaltyError
    from loyalty.workspace import build_lock

    warehouse = tmp_path / "loyalty.duckdb"
    with build_lock(warehouse):
        with pytest.raises(LoyaltyError, match="another build of .* is running"):
            with build_lock(warehouse):
                pass
    with build_lock(warehouse):  # released
        pass

"""The synthetic-data generator: deterministic, shaped by the contract, clean unless asked, bad rows exactly as
the manifest says, and purchases that follow BG/NBD."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest
from conftest import build_warehouse, query, run_cli

from loyalty.contract import ENTITIES
from loyalty.synthetic import BAD_ROW_KINDS, BgNbdParams, generate

START, END = date(2023, 11, 1), date(2026, 10, 31)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate(out, 1500, seed=3, progress=False, force=True, chunk_size=600)
    return out


def _files(path: Path, fmt: str = "csv") -> dict[str, bytes]:
    return {e.name: (path / f"{e.name}.{fmt}").read_bytes() for e in ENTITIES}


def test_same_seed_same_bytes_other_seed_other_data(clean: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", 1500, seed=3, progress=False, chunk_size=600)
    generate(tmp_path / "other", 1500, seed=4, progress=False, chunk_size=600)
    assert _files(tmp_path / "again") == _files(clean)
    assert (tmp_path / "again" / "manifest.json").read_text() == (clean / "manifest.json").read_text()
    assert _files(tmp_path / "other")["orders"] != _files(clean)["orders"]


def test_files_have_exactly_the_contract_columns(clean: Path) -> None:
    for entity in ENTITIES:
        header = (clean / f"{entity.name}.csv").read_text().splitlines()[0]
        assert header.replace('"', "").split(",") == list(entity.all_columns)


def test_manifest_records_parameters_and_rows(clean: Path) -> None:
    manifest = json.loads((clean / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["customers"] == 1500
    assert manifest["data_end_date"] == END.isoformat() and manifest["time_unit"] == "day"
    assert manifest["bgnbd"] == {"r": 0.9, "alpha": 25.0, "a": 0.8, "b": 8.0}
    assert manifest["injected"] == {} and manifest["exact_duplicates"] == {}
    with duckdb.connect() as con:
        for entity in ENTITIES:
            (rows,) = con.execute(
                f"select count(*) from read_csv('{clean / entity.name}.csv', header = true)"
            ).fetchone()
            assert manifest["rows"][entity.name] == rows > 0, entity.name


def test_clean_data_breaks_no_staging_rule(clean: Path) -> None:
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        for entity in ENTITIES:
            con.execute(
                f"create view {entity.name} as"
                f" select * from read_csv('{clean / entity.name}.csv', all_varchar = true, header = true)"
            )
        checks = {
            "duplicate order keys": "select count(*) - count(distinct order_id) from orders",
            "duplicate line keys": "select count(*) - count(distinct (order_id, line_number)) from order_items",
            "orders of unknown customers": "select count(*) from orders anti join customers using (customer_id)",
            "lines of unknown orders": "select count(*) from order_items anti join orders using (order_id)",
            "lines of unknown products": "select count(*) from order_items anti join products using (product_id)",
            "refunds of unknown orders": "select count(*) from refunds anti join orders using (order_id)",
            "bad timestamps": f"select count(*) from orders where not (try_cast(ordered_at as timestamptz)"
            f" between '{START}' and '{END} 23:59:59+00')",
            "negative or bad amounts": "select count(*) from order_items where try_cast(quantity as int) < 1"
            " or try_cast(unit_price as decimal(18,2)) < 0 or coalesce(try_cast(discount_amount as decimal(18,2)), 0)"
            " > try_cast(quantity as int) * try_cast(unit_price as decimal(18,2))",
            "refunds beyond the order": "select count(*) from (select order_id, sum(amount::decimal(18,2)) r"
            " from refunds group by 1) join (select order_id, sum(quantity::int * unit_price::decimal(18,2)"
            " - coalesce(try_cast(discount_amount as decimal(18,2)), 0)) g from order_items group by 1)"
            " using (order_id) where r > g",
            "scores outside 0-10": "select count(*) from survey_responses where recommend_score::int not between 0"
            " and 10 or coalesce(try_cast(cross_buy_intent_score as int), 0) not between 0 and 10",
            "unknown statuses": "select count(*) from orders where status not in ('completed', 'cancelled')",
        }
        broken = {name: con.execute(sql).fetchone()[0] for name, sql in checks.items()}
    assert broken == {name: 0 for name in checks}


def test_offsets_keep_the_instant(clean: Path) -> None:
    """The same instant written with different offsets: local time and offset must agree with UTC."""
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        offsets = con.execute(
            f"select distinct regexp_extract(ordered_at, '(Z|[+-]\\d\\d:\\d\\d)?$') from read_csv("
            f"'{clean}/orders.csv', all_varchar = true, header = true)"
        ).fetchall()
    assert {o for (o,) in offsets} >= {"", "Z", "+01:00", "-05:00"}


def test_parquet_output_holds_the_same_rows(clean: Path, tmp_path: Path) -> None:
    generate(tmp_path / "pq", 1500, seed=3, fmt="parquet", progress=False, chunk_size=600)
    with duckdb.connect() as con:
        for entity in ENTITIES:
            difference = con.execute(
                f"select count(*) from (select * from read_csv('{clean / entity.name}.csv', all_varchar = true)"
                f" except all select * from read_parquet('{tmp_path / 'pq' / entity.name}.parquet'))"
            ).fetchone()[0]
            assert difference == 0, entity.name


def test_non_empty_output_needs_force(clean: Path) -> None:
    result = run_cli("generate", "--customers", "10", "--out", str(clean), "--no-progress")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {clean} is not empty (use --force to replace its contents)"


def test_bad_rows_are_added_on_top_of_the_clean_rows(clean: Path, tmp_path: Path) -> None:
    manifest = generate(tmp_path / "bad", 1500, seed=3, bad_row_rate=0.05, progress=False, chunk_size=600)
    clean_rows = json.loads((clean / "manifest.json").read_text())["rows"]
    for entity in ENTITIES:
        added = sum(manifest["injected"].get(entity.name, {}).values()) + manifest["exact_duplicates"].get(
            entity.name, 0
        )
        assert manifest["rows"][entity.name] == clean_rows[entity.name] + added, entity.name
    for entity, kinds in BAD_ROW_KINDS.items():
        for kind in kinds:
            bucket = manifest["exact_duplicates"] if kind == "exact_duplicate" else manifest["injected"][entity]
            assert (bucket[entity] if kind == "exact_duplicate" else bucket[kind]) > 0, (entity, kind)


def test_every_injected_bad_row_lands_in_quarantine_with_its_reason(tmp_path: Path) -> None:
    manifest = generate(tmp_path / "raw", 1200, seed=11, bad_row_rate=0.05, progress=False)
    warehouse = build_warehouse(tmp_path / "raw", tmp_path / "wh" / "loyalty.duckdb", as_of=END.isoformat())
    got = {
        (entity, reason): count
        for entity, reason, count in query(
            warehouse, "select entity, reason_code, count(*) from audit.quarantined_rows group by all"
        )
    }
    assert got == {(e, r): c for e, reasons in manifest["injected"].items() for r, c in reasons.items()}
    collapsed = dict(query(warehouse, "select entity, collapsed_duplicates from audit.raw_reconciliation"))
    assert {e: n for e, n in collapsed.items() if n} == manifest["exact_duplicates"]


def _direct_bgnbd_repeats(rng: np.random.Generator, params: BgNbdParams, windows: np.ndarray) -> np.ndarray:
    """Repeat purchases simulated event by event, straight from the model's definition (slow, independent)."""
    counts = np.zeros(len(windows), dtype=int)
    for i, window in enumerate(windows):
        lam, p = rng.gamma(params.r, 1 / params.alpha), rng.beta(params.a, params.b)
        t = rng.exponential(1 / lam)
        while t <= window:
            counts[i] += 1
            if rng.random() < p:
                break
            t += rng.exponential(1 / lam)
    return counts


def test_completed_orders_follow_bgnbd(tmp_path: Path) -> None:
    params = BgNbdParams()
    generate(tmp_path / "raw", 20_000, seed=21, progress=False)
    with duckdb.connect() as con:
        per_customer = con.execute(
            f"select count(*) - 1 from read_csv('{tmp_path}/raw/orders.csv', header = true)"
            " where status = 'completed' group by customer_id"
        ).fetchnumpy()
    generated = next(iter(per_customer.values()))
    # first purchases are spread as in the generator (density growing linearly over the window)
    days = (END - START).days + 1
    rng = np.random.default_rng(99)
    windows = days - days * np.sqrt(rng.random(len(generated)))
    direct = _direct_bgnbd_repeats(rng, params, windows)
    assert generated.mean() == pytest.approx(direct.mean(), rel=0.05)
    assert (generated == 0).mean() == pytest.approx((direct == 0).mean(), rel=0.05)

"""Each bad-input kind ends in audit.quarantined_rows with its reason, and raw_reconciliation balances.

The fixture tests/fixtures/raw_bad_rows has one raw row per kind; expected_quarantine.csv lists, by hand, the
(entity, key, reason) every bad row must get.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from conftest import build_warehouse, expected_quarantine, query


def test_every_bad_row_is_quarantined_with_its_reason(bad_rows_warehouse: Path) -> None:
    got = sorted(query(bad_rows_warehouse, "select entity, record_key, reason_code from audit.quarantined_rows"))
    assert got == expected_quarantine()


def test_every_reason_code_of_the_contract_is_exercised(bad_rows_warehouse: Path) -> None:
    from loyalty.contract import REASON_CODES

    assert {reason for _, _, reason in expected_quarantine()} == set(REASON_CODES)


def test_raw_rows_equal_staged_plus_quarantined_plus_collapsed(bad_rows_warehouse: Path) -> None:
    rows = query(
        bad_rows_warehouse,
        "select entity, raw_rows, staged_rows, quarantined_rows, collapsed_duplicates"
        " from audit.raw_reconciliation order by entity",
    )
    assert {r[0]: r[1:] for r in rows} == {
        # entity: (raw, staged, quarantined, collapsed), counted by hand from the fixture files
        "customers": (12, 3, 8, 1),
        "engagement_events": (9, 2, 6, 1),
        "loyalty_events": (11, 3, 8, 0),
        "marketing_spend": (6, 2, 4, 0),
        "order_items": (17, 7, 9, 1),
        "orders": (17, 6, 10, 1),
        "products": (6, 2, 4, 0),
        "refunds": (10, 2, 8, 0),
        "survey_responses": (13, 2, 11, 0),
    }
    for entity, raw, staged, quarantined, collapsed in rows:
        assert raw == staged + quarantined + collapsed, entity


def test_orders_after_the_as_of_date_are_staged_but_do_not_count(bad_rows_warehouse: Path) -> None:
    assert query(
        bad_rows_warehouse,
        "select is_after_as_of, is_valid_order, customer_order_number from marts.fct_orders where order_id = 'O12'",
    ) == [(True, False, None)]


def test_raw_row_keeps_extra_columns(bad_rows_warehouse: Path) -> None:
    (raw_row,) = query(
        bad_rows_warehouse,
        "select raw_row from audit.quarantined_rows where entity = 'customers' and record_key = 'C6'",
    )[0]
    assert '"favourite_colour"' in raw_row and '"signup_at":"not-a-date"' in raw_row


def test_no_clear_email_anywhere_in_the_warehouse(bad_rows_warehouse: Path) -> None:
    with duckdb.connect(str(bad_rows_warehouse), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns where data_type = 'VARCHAR'"
        ).fetchall()
        hits = [
            (schema, table, column)
            for schema, table, column in columns
            if con.execute(
                f'select count(*) from "{schema}"."{table}" where "{column}" ilike \'%example.com%\''
            ).fetchone()[0]
        ]
    assert hits == []


def test_emails_are_hashed_with_the_secret_key(bad_rows_warehouse: Path) -> None:
    """HMAC-SHA-256 of the trimmed, lower-cased email with this machine's key, computed in SQL by the build and here
    by Python's hmac; a plain SHA-256 (what a list of candidate emails would be hashed with) matches nothing."""
    import hashlib

    from loyalty.email_hashing import hash_email, load_key

    got = dict(query(bad_rows_warehouse, "select customer_id, email_hash from marts.dim_customers"))
    assert got["C1"] == hash_email("alice@example.com", load_key())
    assert got["C1"] != hashlib.sha256(b"alice@example.com").hexdigest()
    assert len(got["C1"]) == 64


def test_parquet_raw_files_give_the_same_warehouse(raw_copy: Path, tmp_path: Path) -> None:
    from loyalty.csv_records import LINE_REASONS
    from loyalty.landing import check_landing, csv_reader

    landing = check_landing(raw_copy, work_dir=tmp_path / "landing")
    with duckdb.connect() as con:
        for landed in landing.files.values():
            (batch,) = landed.batches
            reader = csv_reader(batch.read_path or batch.path, batch.columns, "ignore_errors = true")
            con.execute(f"copy (select * from {reader}) to '{batch.path.with_suffix('.parquet')}' (format parquet)")
            batch.path.unlink()
    warehouse = build_warehouse(raw_copy, tmp_path / "wh" / "loyalty.duckdb", dbt_tests=False)
    got = sorted(query(warehouse, "select entity, record_key, reason_code from audit.quarantined_rows"))
    # a Parquet file has no unreadable records: everything else is quarantined exactly as from CSV
    unreadable = {"malformed_record", *LINE_REASONS}
    assert got == [row for row in expected_quarantine() if row[2] not in unreadable]


def test_raw_rows_are_stored_for_quarantined_rows_only(bad_rows_warehouse: Path) -> None:
    from loyalty.contract import ENTITIES

    for entity in ENTITIES:
        kept = query(
            bad_rows_warehouse,
            f"select count(*) filter (where _quarantine_reason is null and _raw_row is not null),"
            f" count(*) filter (where _quarantine_reason is not null and _raw_row is null)"
            f" from staging.base_loyalty__{entity.name}",
        )
        assert kept == [(0, 0)], entity.name

"""A supplier's broken files, all at once, through the real `loyalty build` (dbt, the GX gate, dbt docs,
publication): issue 11's reproductions, from `loyalty generate --customers 500 --seed 7`, as of 2026-10-31.

- refunds.csv: a quote opened on line 121 and never closed. DuckDB's reader swallowed the 53 lines after it into one
  rejected record and counted the file as 120 rows, so the reconciliation balanced over a silent loss.
- engagement_events.csv: one Latin-1 byte on line 5001 (the reader dropped the row without a word).
- orders.csv: extra columns named ``a"b`` and ``{% do exceptions.raise_compiler_error("pwn") %}`` (they failed the
  build), and one order with an invalid status, so that a raw_row shows them.
- products.csv: CRLF and LF line ends mixed (the reader refused the whole file).
- customers.csv: an email with a quoted local part, an email in the country column, and a record that does not
  split into fields holding an email (its text was masked by a regular expression that left the quoted part).

Every raw record ends staged or quarantined with its reason, counted on the file by this test on its own, and no
email is readable anywhere the night writes.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import pytest
from conftest import query, run_cli
from hostile_support import MALFORMED_EMAIL, QUOTED_EMAIL, WRONG_COLUMN_EMAIL, break_files

AS_OF = "2026-10-31"


def _records(path: Path) -> int:
    """The file's records counted here without any CSV parser: non-empty lines after the header."""
    return sum(1 for line in path.read_bytes().split(b"\n")[1:] if line.strip(b"\r"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """(raw folder, published warehouse, every email of the raw customers) after one night on the broken files."""
    base = tmp_path_factory.mktemp("hostile")
    raw = base / "raw"
    generated = run_cli("generate", "--customers", "500", "--seed", "7", "--no-progress", "--out", str(raw))
    assert generated.returncode == 0, generated.stderr

    break_files(raw)

    shutil.copytree(raw, base / "raw_as_landed")  # the build must not touch the raw files
    built = run_cli(
        "build", "--quiet", "--raw-dir", str(raw), "--warehouse", str(base / "wh" / "loyalty.duckdb"), "--as-of", AS_OF
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    with (base / "raw_as_landed" / "customers.csv").open(newline="") as handle:
        emails = [row[2] for row in list(csv.reader(handle))[1:]]
    return raw, base / "wh" / "loyalty.duckdb", emails


def test_every_record_on_disk_is_staged_or_quarantined(hostile: tuple[Path, Path, list[str]]) -> None:
    raw, warehouse, _ = hostile
    rows = query(warehouse, "select entity, raw_rows, staged_rows, quarantined_rows, collapsed_duplicates"
                            " from audit.raw_reconciliation")  # fmt: skip
    for entity, raw_rows, staged, quarantined, collapsed in rows:
        assert raw_rows == _records(raw / f"{entity}.csv"), entity
        assert raw_rows == staged + quarantined + collapsed, entity
    counts = {entity: (raw_rows, staged, quarantined) for entity, raw_rows, staged, quarantined, _ in rows}
    assert counts["refunds"] == (174, 173, 1)  # the 53 lines after the runaway quote are records of their own
    assert counts["engagement_events"] == (7383, 7382, 1)
    assert counts["products"][0] == counts["products"][1] == 200  # mixed line ends: every product read


def test_each_broken_record_has_its_reason(hostile: tuple[Path, Path, list[str]]) -> None:
    _, warehouse, _ = hostile
    got = query(warehouse, "select entity, record_key, reason_code from audit.quarantined_rows order by all")
    assert got == [
        ("customers", "C9000002", "email_outside_email_column"),
        ("customers", "line 504", "malformed_record"),
        ("engagement_events", "line 5001", "invalid_encoding"),
        ("orders", "O99999999", "invalid_value"),
        ("refunds", "line 121", "unterminated_quote"),
    ]


def test_odd_column_names_are_kept_as_data(hostile: tuple[Path, Path, list[str]]) -> None:
    _, warehouse, _ = hostile
    ((raw_row,),) = query(warehouse, "select raw_row from audit.quarantined_rows where record_key = 'O99999999'")
    assert '"status":"teleported"' in raw_row
    assert '"extra_a_b":"x"' in raw_row and '"extra_do_exceptions_raise_compiler_error_pwn":"y"' in raw_row


def test_no_email_is_readable_anywhere_the_night_writes(hostile: tuple[Path, Path, list[str]]) -> None:
    _, warehouse, emails = hostile
    needles = {e.strip().lower() for e in emails} | {WRONG_COLUMN_EMAIL, "leak, quoted", "also, quoted", "victim.org"}
    assert QUOTED_EMAIL in emails and MALFORMED_EMAIL in emails and len(needles) > 500
    # every text value of every table and view of the published warehouse
    tables = query(warehouse, "select table_schema, table_name, column_name from information_schema.columns"
                              " where data_type = 'VARCHAR'")  # fmt: skip
    values = set()
    for schema, table, column in tables:
        values |= {v.lower() for (v,) in query(warehouse, f'select distinct "{column}" from "{schema}"."{table}"') if v}
    assert not {n for n in needles for v in values if n in v}
    # every other file beside it: run summaries, validation results and Data Docs, dbt docs, dbt's target and logs
    files = [p for p in warehouse.parent.rglob("*") if p.is_file() and not p.name.endswith((".duckdb", ".lock"))]
    assert any(p.name == "index.html" and p.parent.name == "docs" for p in files)
    assert any(p.name == "dbt.log" for p in files) and any(p.name == "run_summary.json" for p in files)
    leaks = [(p, n) for p in files for n in needles if n.encode() in p.read_bytes().lower()]
    assert leaks == []
    assert not any((warehouse.parent / ".build" / "landing").iterdir())  # no copy of raw records left


def test_email_hashes_are_not_plain_sha256(hostile: tuple[Path, Path, list[str]]) -> None:
    """The reproduction: hashing the list of candidate emails reversed every one of them."""
    _, warehouse, emails = hostile
    hashes = {h for (h,) in query(warehouse, "select email_hash from marts.dim_customers")}
    candidates = {hashlib.sha256(e.strip().lower().encode()).hexdigest() for e in emails}
    assert len(hashes) > 490 and not hashes & candidates

"""The landing check: missing files or columns are one clear line naming the file and column; optional files may
be absent (their models are empty, a warning says so); extra columns are fine."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import build_warehouse, query, run_cli

from loyalty.contract import ENTITIES
from loyalty.errors import LoyaltyError
from loyalty.landing import check_landing


def test_fixture_passes_the_landing_check_and_its_malformed_records_are_found(raw_copy: Path) -> None:
    landing = check_landing(raw_copy)
    assert set(landing.files) == {e.name for e in ENTITIES}
    assert {name: f.malformed_records for name, f in landing.files.items() if f.malformed_records} == {
        "customers": 1,
        "orders": 1,
        "engagement_events": 1,
        "loyalty_events": 3,
    }
    assert sorted(landing.warnings) == [
        "customers.csv: 1 record(s) cannot be read and go to quarantine (malformed_record 1)",
        "engagement_events.csv: 1 record(s) cannot be read and go to quarantine (malformed_record 1)",
        "loyalty_events.csv: 3 record(s) cannot be read and go to quarantine (control_character 1,"
        " invalid_encoding 1, stray_quote 1)",
        "orders.csv: 1 record(s) cannot be read and go to quarantine (unterminated_quote 1)",
    ]
    assert landing.malformed_path is None  # written only when a work folder is given
    # the clean copies DuckDB would read were temporary: nothing refers to them
    assert all(b.read_path is None for _, b in landing.batches)


def test_unreadable_records_are_written_for_dbt_without_any_email(raw_copy: Path, tmp_path: Path) -> None:
    landing = check_landing(raw_copy, work_dir=tmp_path)
    rows = duckdb.connect().execute(f"select * from read_parquet('{landing.malformed_path}')").fetchall()
    assert rows == [
        # the line holds an '@' (an email the landing check cannot hash): its text is not kept
        ("customers", "customers.csv", 11, "malformed_record", "MISSING COLUMNS", None),
        (
            "engagement_events",
            "engagement_events.csv",
            8,
            "malformed_record",
            "TOO MANY COLUMNS",
            "E6,C1,2024-02-03T09:00:00Z,site_visit,EXTRA",
        ),
        (
            "loyalty_events",
            "loyalty_events.csv",
            9,
            "stray_quote",
            "STRAY QUOTE",
            'L9,C1,2024-02-05T12:00:00Z,"points_earned"x,5,',
        ),
        (
            "loyalty_events",
            "loyalty_events.csv",
            11,
            "invalid_encoding",
            "INVALID ENCODING",
            "L11,C1,2024-02-05T10:00:00Z,tier_changed,,s\\xe9lver",
        ),
        (
            "loyalty_events",
            "loyalty_events.csv",
            12,
            "control_character",
            "CONTROL CHARACTER",
            "L12,C1,2024-02-05T11:00:00Z,points_earned,1\x002,",
        ),
        (
            "orders",
            "orders.csv",
            18,
            "unterminated_quote",
            "UNTERMINATED QUOTE",
            'O14,"C1,2024-03-09T12:00:00Z,completed,USD',
        ),
    ]
    # DuckDB reads a clean copy of the files with lines set aside: each such line empty, the rest unchanged
    (clean,) = [b for _, b in landing.batches if b.name == "loyalty_events.csv"]
    assert clean.read_path == tmp_path / "clean" / "loyalty_events.csv"
    original = (raw_copy / "loyalty_events.csv").read_bytes().split(b"\n")
    assert clean.read_path.read_bytes().split(b"\n") == original[:8] + [b"", original[9], b"", b""] + original[12:]


def test_a_header_is_required(raw_copy: Path) -> None:
    (raw_copy / "products.csv").write_text("")
    with pytest.raises(LoyaltyError, match=r"products\.csv: the first line must be a header"):
        check_landing(raw_copy)


def test_missing_required_file_names_the_file(raw_copy: Path) -> None:
    (raw_copy / "orders.csv").unlink()
    with pytest.raises(
        LoyaltyError,
        match=r"required file orders\.csv \(or orders\.parquet, or a folder orders/ of such files\) is missing",
    ):
        check_landing(raw_copy)


def test_missing_required_column_names_file_and_column(raw_copy: Path) -> None:
    path = raw_copy / "order_items.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("unit_price")
    path.write_text("\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != drop) for line in lines))
    with pytest.raises(LoyaltyError, match=r"order_items\.csv: required column 'unit_price' is missing"):
        check_landing(raw_copy)


def test_csv_and_parquet_of_one_entity_is_ambiguous(raw_copy: Path) -> None:
    (raw_copy / "products.parquet").write_bytes(b"")
    with pytest.raises(LoyaltyError, match="both products.csv and products.parquet exist"):
        check_landing(raw_copy)


def test_unreadable_file_is_a_clear_error(raw_copy: Path) -> None:
    (raw_copy / "customers.csv").unlink()
    (raw_copy / "customers.parquet").write_text("this is not parquet")
    with pytest.raises(LoyaltyError, match=r"customers\.parquet: cannot be read as PARQUET"):
        check_landing(raw_copy)


def test_cli_error_is_one_line_without_traceback(raw_copy: Path, tmp_path: Path) -> None:
    (raw_copy / "customers.csv").unlink()
    result = run_cli("run", "--raw-dir", str(raw_copy), "--warehouse", str(tmp_path / "w.duckdb"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {raw_copy}: required file customers.csv (or customers.parquet, or a folder customers/ of such"
        " files) is missing"
    ]
    assert not (tmp_path / "w.duckdb").exists()


def test_absent_optional_files_build_empty_models_with_a_warning(raw_copy: Path, tmp_path: Path) -> None:
    optional = [e.name for e in ENTITIES if not e.required]
    for name in optional:
        (raw_copy / f"{name}.csv").unlink()
    landing = check_landing(raw_copy)
    absent = [w for w in landing.warnings if "is absent" in w]
    assert absent == [f"optional file {name}.csv is absent: models built on {name} will be empty" for name in optional]

    warehouse = build_warehouse(raw_copy, tmp_path / "wh" / "loyalty.duckdb", dbt_tests=False)
    assert query(warehouse, "select count(*) from marts.fct_refunds") == [(0,)]
    assert query(warehouse, "select count(*) from marts.fct_survey_responses") == [(0,)]
    assert query(warehouse, "select count(*) from marts.fct_orders") == [(6,)]
    assert query(warehouse, "select sum(refunded_amount) from marts.fct_orders") == [(0,)]
    raw = dict(query(warehouse, "select entity, raw_rows from audit.raw_reconciliation"))
    assert all(raw[name] == 0 for name in optional)


def test_survey_without_the_optional_currency_column_uses_the_reporting_currency(raw_copy: Path) -> None:
    landing = check_landing(raw_copy)
    relation = landing.files["survey_responses"].relation(raw_copy)
    assert "cast(null as varchar) as currency" in relation


def _work_files(work_dir: Path) -> dict[str, object]:
    """What a landing check leaves for dbt: its two Parquet files' rows and the clean copies' bytes."""
    con = duckdb.connect()
    found: dict[str, object] = {
        name: con.execute(f"select * from read_parquet('{work_dir / name}') order by all").fetchall()
        for name in ("landed_files.parquet", "malformed_records.parquet")
    }
    found.update({str(p.relative_to(work_dir)): p.read_bytes() for p in sorted((work_dir / "clean").rglob("*.csv"))})
    return found


def test_a_check_right_after_the_clis_reuses_its_reading_only_of_unchanged_files(
    raw_copy: Path, tmp_path: Path
) -> None:
    """The CLI checks the contract before Prefect or dbt start; the night's own check in the same process then takes
    what that check read of each unchanged file (loyalty.landing._CHECKED) and writes the same files for dbt."""
    from loyalty import landing as landing_module

    fresh_dir, reused_dir = tmp_path / "fresh", tmp_path / "reused"
    landing_module._CHECKED.clear()
    fresh = check_landing(raw_copy, work_dir=fresh_dir)
    landing_module._CHECKED.clear()
    check_landing(raw_copy)  # the CLI's check
    assert len(landing_module._CHECKED) == len([p for p in raw_copy.iterdir() if p.suffix == ".csv"])
    reused = check_landing(raw_copy, work_dir=reused_dir)
    assert [(n, b.rows, b.malformed_records, b.read_path is None) for n, b in reused.batches] == [
        (n, b.rows, b.malformed_records, b.read_path is None) for n, b in fresh.batches
    ]
    assert sorted(reused.warnings) == sorted(fresh.warnings)
    assert _work_files(reused_dir) == _work_files(fresh_dir)
    assert (reused_dir / "clean" / "orders.csv").is_file()  # the broken file's clean copy is written again

    # a file written since (one more good record) is read again, not taken from the earlier check
    with (raw_copy / "engagement_events.csv").open("a") as handle:
        handle.write("E99,C1,2024-02-03T10:00:00Z,site_visit\n")
    again = check_landing(raw_copy)
    assert again.files["engagement_events"].batches[0].rows == fresh.files["engagement_events"].batches[0].rows + 1

"""The line scan that counts a CSV file's records independently of DuckDB's reader (loyalty.csv_records): each
contract-breaking line found with its reason, line numbers as in the file, and every line it lets through read by
DuckDB as exactly one record (a differential test against the reader, both of the ways the project reads)."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest

from loyalty import csv_records
from loyalty.csv_records import scan_csv, write_clean_copy
from loyalty.landing import csv_reader

HEADER = b"a,b,c\n"


@pytest.mark.parametrize(
    ("body", "records", "bad"),
    [
        (b"1,x,3\n2,p,q\n", 2, []),
        (b'1,"x, y",3\n2,"say ""hi""",q\n', 2, []),  # quoted fields, escaped quotes
        (b'1,"x,3\n2,p,q\n3,r,s\n', 3, [(2, "unterminated_quote")]),  # a runaway quote swallows nothing
        (b'1,x"y,3\n2,p,q\n', 2, [(2, "stray_quote")]),  # a quote inside an unquoted field
        (b'1,"x"y,3\n2,p,q\n', 2, [(2, "stray_quote")]),  # text after a closing quote
        (b'1,"x""\n2,p,q\n', 2, [(2, "unterminated_quote")]),  # "" is an escaped quote: still open
        (b'1,"x\ny",3\n2,p,q\n', 3, [(2, "unterminated_quote"), (3, "stray_quote")]),  # no line break in a field
        (b"1,v\xe9,3\n2,p,q\n", 2, [(2, "invalid_encoding")]),
        (b"1,x\ry,3\n2,p,q\n", 2, [(2, "control_character")]),
        (b"1,x\x00y,3\n", 1, [(2, "control_character")]),
        (b"1,x,3\n\n2,p,q\n   \n", 3, []),  # an empty line is no record; a line of spaces is one (malformed)
        (b"1,x,3\r\n2,p,q\r\n", 2, []),
        (b"\n\n\n1,x,3\n\n", 1, []),
        (b"1,x,3\r\n\r\n\r\n2,p,q\r\n\r", 2, []),
        (b"1,x,3\n\r\n2,p,q", 2, []),
        (b"1,x,3\n2,p,\xff", 2, [(3, "invalid_encoding")]),  # the last line without a line end
    ],
)
def test_scan_counts_records_and_finds_broken_lines(tmp_path: Path, body: bytes, records: int, bad: list) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(HEADER + body)
    scan = scan_csv(path)
    assert scan.header == b"a,b,c"
    assert scan.records == records
    assert [(b.line_number, b.reason) for b in scan.bad_lines] == bad


def test_lines_across_chunk_boundaries_keep_their_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [b"%d,x,y" % i for i in range(200)]
    lines[57] = b'57,"open,y'
    lines[123] = b"123,caf\xe9,y"
    lines[199] = b"199,\xe9"  # the last line, invalid, without a line end
    path = tmp_path / "f.csv"
    path.write_bytes(HEADER + b"\n".join(lines))
    monkeypatch.setattr(csv_records, "CHUNK_BYTES", 37)  # a chunk ends inside most lines
    scan = scan_csv(path)
    assert scan.records == 200
    assert [(b.line_number, b.reason) for b in scan.bad_lines] == [
        (59, "unterminated_quote"),
        (125, "invalid_encoding"),
        (201, "invalid_encoding"),
    ]


def test_an_empty_first_line_is_no_header_and_no_record(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"\r\na,b,c\n1,x,3\n")
    scan = scan_csv(path)
    assert (scan.header, scan.records) == (b"", 2)  # the landing check refuses it: the first line must be a header


def test_a_bom_is_not_part_of_the_header_and_mixed_line_ends_are_noticed(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b,c\r\n1,x,3\n2,p,q\r\n")
    scan = scan_csv(path)
    assert (scan.header, scan.records, scan.crlf_lines, scan.lf_lines) == (b"a,b,c", 2, 2, 1)
    assert scan.mixed_line_ends and scan.needs_clean_copy


def test_the_clean_copy_blanks_broken_lines_and_keeps_the_others(tmp_path: Path) -> None:
    path, clean = tmp_path / "f.csv", tmp_path / "clean" / "f.csv"
    path.write_bytes(HEADER + b'1,"x,3\r\n2,p,q\n3,r,s\r\n')
    write_clean_copy(path, scan_csv(path), clean)
    assert clean.read_bytes() == b"a,b,c\n\n2,p,q\n3,r,s\n"


def _read(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[list[tuple], list[tuple], int]:
    """What the project's two reads of a file give: dbt's (ignore_errors) and the landing check's (store_rejects)."""
    skipped = con.execute(f"select * from {csv_reader(path, ('a', 'b', 'c'), 'ignore_errors = true')}").fetchall()
    con.execute("drop table if exists rejected; drop table if exists scans")
    reader = csv_reader(
        path, ("a", "b", "c"), "store_rejects = true", "rejects_table = 'rejected'", "rejects_scan = 'scans'"
    )
    stored = con.execute(f"select * from {reader}").fetchall()
    return skipped, stored, con.execute("select count(distinct line) from rejected").fetchone()[0]


def test_every_line_the_scan_lets_through_is_one_record_to_duckdb(tmp_path: Path) -> None:
    """Random short lines of commas, quotes, spaces and letters; the scan sets broken ones aside (blanked in the
    clean copy). Whatever is left, DuckDB's reader must read as one record per line in both read modes, and the lines
    after it unharmed: rows read + rejected + set aside = records counted by the scan."""
    rng = random.Random(7)
    con = duckdb.connect()
    checked = set_aside = 0
    for _ in range(600):
        line = "".join(rng.choice('ab,"" ;') for _ in range(rng.randint(1, 10))).encode()
        path, clean = tmp_path / "f.csv", tmp_path / "clean.csv"
        path.write_bytes(HEADER + line + b"\n9,9,9\n8,8,8\n")
        scan = scan_csv(path)
        write_clean_copy(path, scan, clean)
        skipped, stored, rejected = _read(con, clean)
        assert skipped == stored, line
        assert stored[-2:] == [("9", "9", "9"), ("8", "8", "8")], line
        assert len(stored) + rejected + len(scan.bad_lines) == scan.records == 3, line
        checked += 1
        set_aside += len(scan.bad_lines)
    assert checked == 600 and 50 < set_aside < 550  # both kinds of line were tried


def test_column_names_from_a_file_become_plain_sql_names() -> None:
    from loyalty.contract import BY_NAME
    from loyalty.landing import sql_column_names

    names = ("Order_ID", "customer_id", "ordered_at", "status", "currency", 'a"b', "{{ x }}", "select", "filename",
             "_batch", "note", "Note2", "a b")  # fmt: skip
    assert sql_column_names(BY_NAME["orders"], names) == (
        "order_id", "customer_id", "ordered_at", "status", "currency", "extra_a_b", "extra_x", "extra_select",
        "extra_filename", "extra_batch", "note", "extra_note2", "extra_a_b_2",
    )  # fmt: skip


@pytest.mark.parametrize("share_with_quotes", [0.01, 0.5])
def test_both_ways_of_finding_badly_quoted_lines_agree_with_the_line_by_line_rules(share_with_quotes: float) -> None:
    """Few lines with quotes are matched one by one, many by one substitution over the chunk: both must find exactly
    the lines the character-by-character rules (quote_reason) reject."""
    import numpy as np

    from loyalty.csv_records import _badly_quoted_lines, _line_starts, quote_reason

    rng = random.Random(11)
    lines = [
        "".join(rng.choice('ab,"" ') for _ in range(rng.randint(1, 10))).encode()
        if rng.random() < share_with_quotes
        else b"1,x,3"
        for _ in range(4000)
    ]
    chunk = b"\n".join(lines) + b"\n"
    arr = np.frombuffer(chunk, np.uint8)
    expected = {i for i, line in enumerate(lines) if b'"' in line and quote_reason(line) is not None}
    assert expected and _badly_quoted_lines(chunk, arr, _line_starts(arr == 0x0A)) == expected

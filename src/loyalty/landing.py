"""The landing check: are the raw files there, readable and shaped as the contract says?

It runs before dbt so that a missing file or column is one clear line naming the file and the column, not a stack
trace from deep inside a model. It also decides how dbt reads each entity (``Landing.raw_sources``): every column as
text, so a malformed value reaches staging and is quarantined with a reason instead of stopping the read.

An entity lands as one file (``orders.csv`` or ``orders.parquet``) or as a folder of files (``orders/*.csv`` or
``orders/*.parquet``), each file a **batch**, taken in the order of its name (name them by date:
``orders/2026-11-01.csv``). Every raw row carries its batch (``_batch``: the file's path inside the raw folder), so
a night that only adds files can be built incrementally: batches already in the warehouse are recognised by their
size and modification time (``known``) and are not read again.

CSV files are read with a fixed dialect (comma, double quotes, UTF-8, one record per line) and the header's own
column names, never sniffed: a sniffer that meets a broken line may guess a different dialect for the whole file.
Records are **counted on the file** by a scan of its bytes (``loyalty.csv_records``), not by the parser that may
lose them: a line that breaks the contract (an unterminated or stray quote, an invalid UTF-8 byte, a carriage
return inside a line) is set aside with its reason before DuckDB reads the file, and a record that does not split
into the header's fields is set aside by DuckDB's reader (``malformed_record``). Both reach
``audit.quarantined_rows`` through the ``malformed_records`` source, and the counts (``landed_files`` source) let
``raw_reconciliation`` compare the models with the records on disk. Nothing is dropped silently; a file whose
records the reader cannot account for is refused with one line.

Column names are data: the contract's columns are matched case-insensitively and renamed to the contract's name;
any other column is kept (in ``raw_row`` of quarantined rows) under a plain SQL name derived from it
(``sql_column_names``), so no header text ever reaches SQL or a template.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import duckdb

from loyalty.contract import ENTITIES, Entity
from loyalty.csv_records import BOM, CsvScan, quote_reason, scan_csv, write_clean_copy
from loyalty.errors import LoyaltyError

FORMATS = ("csv", "parquet")
MALFORMED_SOURCE = "malformed_records"
MALFORMED_FILE = "malformed_records.parquet"
LANDED_SOURCE = "landed_files"
LANDED_FILE = "landed_files.parquet"
CLEAN_FOLDER = "clean"  # clean copies of CSV files with set-aside lines, inside the landing work folder
EMPTY_MALFORMED = (
    "(select cast(null as varchar) as entity, cast(null as varchar) as batch, cast(null as bigint) as line_number,"
    " cast(null as varchar) as reason, cast(null as varchar) as error, cast(null as varchar) as record_text limit 0)"
)
# A record that cannot be parsed cannot have its email hashed: its text is kept (for the operator) only when it
# holds no '@' at all, so no email, quoted local parts included, is stored. Long records are cut.
MAX_RECORD_TEXT = 2000


def _quote(text: str | Path) -> str:
    return str(text).replace("'", "''")


def csv_reader(path: Path | str | list[Path], columns: tuple[str, ...], *options: str) -> str:
    """DuckDB's read_csv over ``path`` (a file, a glob or a list of files) with a fixed dialect, the header's
    columns, all text."""
    spec = ", ".join(f"'{_quote(c)}': 'VARCHAR'" for c in columns)
    extra = "".join(f", {option}" for option in options)
    files = "[" + ", ".join(f"'{_quote(p)}'" for p in path) + "]" if isinstance(path, list) else f"'{_quote(path)}'"
    return (
        f"read_csv({files}, columns = {{{spec}}}, header = true, auto_detect = false,"
        f" delim = ',', quote = '\"', escape = '\"'{extra})"
    )


@dataclass(frozen=True)
class Batch:
    """One landed file of an entity."""

    name: str  # path inside the raw folder: 'orders.csv' or 'orders/2026-11-01.csv'; batches sort by it
    path: Path
    columns: tuple[str, ...]  # the SQL names of the file's columns, in file order (see sql_column_names)
    size: int
    mtime_ns: int
    rows: int  # records read into the warehouse (malformed records excluded)
    malformed_records: int  # records set aside: by the line scan, or by the CSV reader (malformed_record)
    is_new: bool = True  # not yet in the warehouse being built on
    source_columns: tuple[str, ...] = ()  # the names in the file (Parquet: selected by these, renamed)
    read_path: Path | None = None  # a clean copy DuckDB reads instead of the file (csv_records.write_clean_copy)

    @property
    def fingerprint(self) -> tuple[int, int]:
        return self.size, self.mtime_ns


@dataclass(frozen=True)
class KnownBatch:
    """A batch as the warehouse recorded it (audit.landed_batches): recognised again by size and mtime."""

    size: int
    mtime_ns: int
    rows: int
    malformed_records: int


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class LandedEntity:
    entity: Entity
    batches: tuple[Batch, ...] = ()  # empty: an optional entity that is absent
    layout: str = "absent"  # 'file', 'folder' or 'absent'

    @property
    def path(self) -> Path | None:
        """The file, or the folder of files; None when absent."""
        if not self.batches:
            return None
        return self.batches[0].path if self.layout == "file" else self.batches[0].path.parent

    @property
    def malformed_records(self) -> int:
        return sum(b.malformed_records for b in self.batches)

    @property
    def new_batches(self) -> tuple[Batch, ...]:
        return tuple(b for b in self.batches if b.is_new)

    def relation(self, raw_dir: Path, only_new: bool = False) -> str:
        """A DuckDB table expression reading this entity (all its batches, or only the new ones) with the
        contract's columns as text and ``_batch``, the file's name inside the raw folder."""
        batches = self.new_batches if only_new else self.batches
        if not batches:
            cols = ", ".join(f"cast(null as varchar) as {c}" for c in self.entity.all_columns)
            return f"(select {cols}, cast(null as varchar) as _batch limit 0)"
        prefix = len(str(raw_dir)) + 2  # strip '<raw_dir>/' from the reader's filename column
        groups: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[Batch]] = {}
        readers = []
        for batch in batches:
            if batch.read_path is not None:  # a clean copy: read alone, named after the file it stands for
                body = "select * from " + csv_reader(batch.read_path, batch.columns, "ignore_errors = true")
                readers.append(self._select(body, batch.columns, f"'{_quote(batch.name)}'", from_files=False))
                continue
            groups.setdefault((batch.path.suffix, batch.columns, batch.source_columns), []).append(batch)
        for (suffix, columns, source_columns), members in groups.items():
            files: list[Path] | str = [b.path for b in members]
            if (
                self.layout == "folder"
                and len(members) == len(self.batches)
                and len(groups) == 1
                and not any(b.read_path for b in self.batches)
            ):
                files = str(members[0].path.parent / f"*{suffix}")  # every file: a glob keeps the var short
            if suffix == ".parquet":
                listed = (
                    f"'{_quote(files)}'"
                    if isinstance(files, str)
                    else ("[" + ", ".join(f"'{_quote(p)}'" for p in files) + "]")
                )
                reader = f"read_parquet({listed}, filename = true, union_by_name = true)"
                selected = ", ".join(
                    f"cast({_identifier(source)} as varchar) as {_identifier(name)}"
                    for source, name in zip(source_columns, columns, strict=True)
                )
                body = f"select {selected}, filename from {reader}"
            else:
                # the records that do not parse were found by check_landing and are quarantined from its file
                body = "select * from " + csv_reader(files, columns, "ignore_errors = true", "filename = true")
            readers.append(self._select(body, columns, f"substr(filename, {prefix})", from_files=True))
        return "(" + " union all by name ".join(readers) + ")"

    def _select(self, body: str, columns: tuple[str, ...], batch: str, *, from_files: bool) -> str:
        """One reader's rows with the optional columns it lacks (as nulls) and ``_batch`` (from the reader's
        ``filename`` column when ``from_files``, which is then dropped)."""
        present = set(columns)
        extra = "".join(f", cast(null as varchar) as {c}" for c in self.entity.optional_columns if c not in present)
        dropped = " exclude (filename)" if from_files else ""
        return f"select *{dropped}{extra}, {batch} as _batch from ({body})"


@dataclass
class Landing:
    raw_dir: Path
    files: dict[str, LandedEntity] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    malformed_path: Path | None = None
    landed_path: Path | None = None

    def raw_sources(self, only_new: bool = False) -> dict[str, str]:
        """How dbt reads each raw source table tonight (``LOYALTY_RAW_SOURCES``, macros/night.sql): a table
        expression per source table. With ``only_new``, entities read their new batches only."""
        sources = {name: landed.relation(self.raw_dir, only_new) for name, landed in self.files.items()}
        sources[MALFORMED_SOURCE] = (
            f"read_parquet('{_quote(self.malformed_path)}')" if self.malformed_path else EMPTY_MALFORMED
        )
        sources[LANDED_SOURCE] = (
            f"read_parquet('{_quote(self.landed_path)}')"
            if self.landed_path
            else "(select cast(null as varchar) as entity, cast(null as varchar) as batch, cast(null as bigint)"
            " as size_bytes, cast(null as bigint) as mtime_ns, cast(null as bigint) as raw_rows,"
            " cast(null as bigint) as malformed_records, cast(null as boolean) as is_new limit 0)"
        )
        return sources

    @property
    def batches(self) -> list[tuple[str, Batch]]:
        return [(name, batch) for name, landed in self.files.items() for batch in landed.batches]


def _first_line_error(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _header_names(path: Path, scan: CsvScan | None) -> tuple[str, ...]:
    """The column names of a file as written in it: a CSV file's header line (from its scan), a Parquet file's
    schema."""
    try:
        if path.suffix == ".parquet":
            with duckdb.connect() as con:
                return tuple(row[0] for row in con.execute(f"describe select * from read_parquet('{_quote(path)}')")
                             .fetchall())  # fmt: skip
        assert scan is not None
        text = scan.header.decode("utf-8")
    except (duckdb.Error, OSError) as exc:
        raise LoyaltyError(f"{path}: cannot be read as {path.suffix[1:].upper()} ({_first_line_error(exc)})") from None
    except UnicodeDecodeError:
        raise LoyaltyError(f"{path}: the header line is not valid UTF-8") from None
    if (broken := quote_reason(scan.header)) is not None:
        raise LoyaltyError(f"{path}: the header line has a broken quote ({broken})")
    if "\r" in text or "\0" in text:
        raise LoyaltyError(f"{path}: the header line holds a carriage return or NUL byte")
    return tuple(next(csv.reader([text]), []))


def _check_names(path: Path, names: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(name.strip() for name in names)
    if not names or not any(names):
        raise LoyaltyError(f"{path}: the first line must be a header with the column names")
    seen: dict[str, str] = {}
    for name in names:
        if name.lower() in seen:
            raise LoyaltyError(
                f"{path}: column {name!r} appears more than once in the header"
                + (f" (also as {seen[name.lower()]!r})" if seen[name.lower()] != name else "")
            )
        seen[name.lower()] = name
    return names


_PLAIN_NAME = re.compile(r"[a-z][a-z0-9_]*")


def sql_column_names(entity: Entity, names: tuple[str, ...]) -> tuple[str, ...]:
    """SQL names for a file's columns, in file order: a contract column (matched case-insensitively) is named as in
    the contract; any other column keeps its name when that is a plain lower-case SQL name that is not a DuckDB
    keyword (nor ``filename``, the readers' column), and is otherwise ``extra_<letters and digits of the name>``
    (numbered when two would clash). Header text therefore never reaches SQL or a template: ``a"b`` becomes
    ``extra_a_b``."""
    contract = {c.lower(): c for c in entity.all_columns}
    taken = set(contract) | {"filename"}  # the readers' own column of file names
    result = []
    for name in names:
        lowered = name.lower()
        if lowered in contract:
            result.append(contract[lowered])
            continue
        candidate = name if _PLAIN_NAME.fullmatch(name) and lowered not in _keywords() else ""
        if not candidate or candidate in taken:
            slug = re.sub(r"[^a-z0-9]+", "_", lowered).strip("_") or "column"
            candidate = f"extra_{slug}"[:60]
            number = 1
            while candidate in taken:
                number += 1
                candidate = f"extra_{slug}"[:56] + f"_{number}"
        taken.add(candidate)
        result.append(candidate)
    return tuple(result)


@cache
def _keywords() -> frozenset[str]:
    with duckdb.connect() as con:
        return frozenset(row[0] for row in con.execute("select keyword_name from duckdb_keywords()").fetchall())


def _record_text(text: str | None) -> str | None:
    """What of an unparsed record is kept for the operator: nothing when it holds an '@' (it may hold an email
    address, which cannot be hashed in a record that does not parse), else the text, cut at MAX_RECORD_TEXT."""
    if text is None or "@" in text:
        return None
    return text if len(text) <= MAX_RECORD_TEXT else text[:MAX_RECORD_TEXT] + "..."


def _scan_csv(
    con: duckdb.DuckDBPyConnection,
    entity: str,
    batch: str,
    path: Path,
    columns: tuple[str, ...],
    scan: CsvScan,
    clean_dir: Path,
    counted: dict[tuple[str, ...], tuple[int, list[tuple[object, ...]]]] | None = None,
) -> tuple[int, int, Path | None]:
    """Read ``path`` as DuckDB will (its clean copy where the scan found lines to set aside); append the lines set
    aside and the records the reader rejects to the ``malformed`` table. Returns (rows read, records set aside,
    the clean copy or None); refuses the file when the reader does not account for every record of the scan."""
    read_path = None
    if scan.needs_clean_copy:
        read_path = clean_dir / batch
        write_clean_copy(path, scan, read_path)
    if counted is not None and columns in counted:  # read by the last check, unchanged since (_CHECKED)
        rows, set_aside = counted[columns]
    else:
        rows, set_aside = _read_count(con, path, read_path, columns, scan)
        if counted is not None:
            counted[columns] = (rows, set_aside)
    if set_aside:
        con.executemany(
            "insert into malformed values (?, ?, ?, ?, ?, ?)",
            [(entity, batch, line, reason, error, _record_text(text)) for line, reason, error, text in set_aside],
        )
    return rows, len(set_aside), read_path


def _read_count(
    con: duckdb.DuckDBPyConnection, path: Path, read_path: Path | None, columns: tuple[str, ...], scan: CsvScan
) -> tuple[int, list[tuple[object, ...]]]:
    """(rows DuckDB's reader reads, the records set aside with their reasons) of one CSV file."""
    con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
    reader = csv_reader(read_path or path, columns, "store_rejects = true", "rejects_table = 'reject_errors'",
                        "rejects_scan = 'reject_scans'")  # fmt: skip
    try:
        rows = con.execute(f"select count(*) from {reader}").fetchall()[0][0]
    except duckdb.Error as exc:
        raise LoyaltyError(f"{path}: cannot be read as CSV ({_first_line_error(exc)})") from None
    rejected = con.execute(
        "select line, string_agg(distinct error_type, ', ' order by error_type), any_value(csv_line)"
        " from reject_errors group by line order by line"
    ).fetchall()
    set_aside = [(b.line_number, b.reason, b.reason.replace("_", " ").upper(), b.text) for b in scan.bad_lines]
    set_aside += [(line, "malformed_record", error, text) for line, error, text in rejected]
    if rows + len(set_aside) != scan.records:
        raise LoyaltyError(
            f"{path}: {scan.records} records on disk, but the CSV reader accounts for {rows + len(set_aside)}"
            f" ({rows} read, {len(set_aside)} set aside): refusing the file rather than losing records"
        )
    return rows, set_aside


def _parquet_rows(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    try:
        return con.execute(f"select count(*) from read_parquet('{_quote(path)}')").fetchall()[0][0]
    except duckdb.Error as exc:
        raise LoyaltyError(f"{path}: cannot be read as PARQUET ({_first_line_error(exc)})") from None


def missing_file_message(raw_dir: Path, entity: Entity) -> str:
    return (
        f"{raw_dir}: required file {entity.name}.csv (or {entity.name}.parquet, or a folder {entity.name}/ of such"
        " files) is missing"
    )


def _entity_files(raw_dir: Path, entity: Entity) -> tuple[str, list[Path]]:
    """(layout, files) of an entity: one file, a folder of files of one format, or nothing."""
    single = [p for p in (raw_dir / f"{entity.name}.{fmt}" for fmt in FORMATS) if p.is_file()]
    folder = raw_dir / entity.name
    if len(single) > 1:
        raise LoyaltyError(f"{raw_dir}: both {single[0].name} and {single[1].name} exist; keep one")
    if folder.is_dir():
        if single:
            raise LoyaltyError(f"{raw_dir}: both {single[0].name} and the folder {entity.name}/ exist; keep one")
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix[1:] in FORMATS)
        if not files:
            raise LoyaltyError(f"{folder}: the folder holds no .csv or .parquet file")
        suffixes = {p.suffix for p in files}
        if len(suffixes) > 1:
            raise LoyaltyError(f"{folder}: mixes .csv and .parquet files; use one format per entity")
        return "folder", files
    return ("file", single) if single else ("absent", [])


# What the last check_landing found in each CSV file it read (its scan and the reader's count), keyed by the file's
# identity and stat (device, inode, size, modification and change times): the night's plan, in the same process
# minutes after the CLI checked the folder before starting Prefect or dbt (``loyalty run``, ``loyalty build``),
# takes these instead of reading every file again. A file written since has another stat and is read again; a
# served flow's night runs in its own process and checks everything. Only the last call's files are kept.
_CHECKED: dict[tuple[object, ...], tuple[CsvScan, dict[tuple[str, ...], tuple[int, list[tuple[object, ...]]]]]] = {}


def _file_key(path: Path, stat: os.stat_result) -> tuple[object, ...]:
    return (str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _first_line(path: Path) -> CsvScan:
    """A scan holding only the header line (for a file already loaded, which is not read again)."""
    with path.open("rb") as handle:
        header = handle.readline().rstrip(b"\n").rstrip(b"\r")
    return CsvScan(header=header[len(BOM) :] if header.startswith(BOM) else header)


def check_landing(
    raw_dir: Path, work_dir: Path | None = None, known: Mapping[str, KnownBatch] | None = None
) -> Landing:
    """Check every contract entity in ``raw_dir``; raise LoyaltyError naming the first problem found.

    Files in ``known`` (batch name -> what the warehouse recorded) with the same size and modification time are
    taken as already loaded: not read again, not new. Every other file is read and its records counted on disk
    (``loyalty.csv_records``); the lines and records that cannot be read are set aside for the quarantine. With
    ``work_dir``, the counts (``landed_files.parquet``), the set-aside records and the clean copies DuckDB reads
    instead of broken files are written there for dbt (``discard_landing_files`` removes them after the build);
    without, clean copies go to a temporary folder that is gone when this returns (the counts stay right).
    """
    if not raw_dir.is_dir():
        raise LoyaltyError(f"LOYALTY_RAW_DIR: {raw_dir} is not a folder")
    known = known or {}
    landing = Landing(raw_dir)
    checked = dict(_CHECKED)
    _CHECKED.clear()
    with duckdb.connect() as con, ExitStack() as stack:
        clean_dir = (
            work_dir / CLEAN_FOLDER
            if work_dir is not None
            else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        con.execute(
            "create table malformed (entity varchar, batch varchar, line_number bigint, reason varchar,"
            " error varchar, record_text varchar)"
        )
        for entity in ENTITIES:
            layout, files = _entity_files(raw_dir, entity)
            if layout == "absent":
                if entity.required:
                    raise LoyaltyError(missing_file_message(raw_dir, entity))
                landing.warnings.append(
                    f"optional file {entity.name}.csv is absent: models built on {entity.name} will be empty"
                )
                landing.files[entity.name] = LandedEntity(entity)
                continue
            batches = []
            for path in files:
                name = path.relative_to(raw_dir).as_posix()
                stat = path.stat()
                previous = known.get(name)
                is_new = previous is None or (previous.size, previous.mtime_ns) != (stat.st_size, stat.st_mtime_ns)
                scan = counted = None
                if path.suffix == ".csv" and is_new:
                    key = _file_key(path, stat)
                    scan, counted = checked.get(key) or (scan_csv(path), {})
                    _CHECKED[key] = (scan, counted)
                elif path.suffix == ".csv":
                    scan = _first_line(path)
                source_columns = _check_names(path, _header_names(path, scan))
                present = {c.lower() for c in source_columns}
                for column in entity.columns:
                    if column not in present:
                        raise LoyaltyError(
                            f"{path}: required column {column!r} is missing (has: {', '.join(source_columns)})"
                        )
                columns = sql_column_names(entity, source_columns)
                read_path = None
                if not is_new:
                    assert previous is not None
                    rows, malformed = previous.rows, previous.malformed_records
                elif scan is not None:
                    rows, malformed, read_path = _scan_csv(
                        con, entity.name, name, path, columns, scan, clean_dir, counted
                    )
                    if scan.mixed_line_ends:
                        landing.warnings.append(
                            f"{name}: mixes CRLF ({scan.crlf_lines:,}) and LF ({scan.lf_lines:,}) line ends;"
                            " each is read as a line end"
                        )
                else:
                    rows, malformed = _parquet_rows(con, path), 0
                if malformed and is_new:
                    reasons = con.execute(
                        "select reason, count(*) from malformed where batch = ? group by reason order by reason",
                        [name],
                    ).fetchall()
                    landing.warnings.append(
                        f"{name}: {malformed} record(s) cannot be read and go to quarantine ("
                        + ", ".join(f"{reason} {count}" for reason, count in reasons)
                        + ")"
                    )
                batches.append(
                    Batch(
                        name,
                        path,
                        columns,
                        stat.st_size,
                        stat.st_mtime_ns,
                        rows,
                        malformed,
                        is_new,
                        source_columns,
                        read_path,
                    )  # fmt: skip
                )
            landing.files[entity.name] = LandedEntity(entity, tuple(batches), layout)
        if work_dir is None:  # the clean copies are about to go: nothing can read these batches
            landing.files = {
                name: LandedEntity(f.entity, tuple(replace(b, read_path=None) for b in f.batches), f.layout)
                for name, f in landing.files.items()
            }
        else:
            work_dir.mkdir(parents=True, exist_ok=True)
            landing.landed_path = work_dir / LANDED_FILE
            con.execute(
                "create table landed (entity varchar, batch varchar, size_bytes bigint, mtime_ns bigint,"
                " raw_rows bigint, malformed_records bigint, is_new boolean)"
            )
            con.executemany(
                "insert into landed values (?, ?, ?, ?, ?, ?, ?)",
                [
                    (entity, b.name, b.size, b.mtime_ns, b.rows, b.malformed_records, b.is_new)
                    for entity, b in landing.batches
                ],
            )
            con.execute(f"copy landed to '{_quote(landing.landed_path)}' (format parquet)")
            if con.execute("select count(*) from malformed").fetchall()[0][0]:
                landing.malformed_path = work_dir / MALFORMED_FILE
                con.execute(
                    f"copy (select * from malformed order by entity, batch, line_number)"
                    f" to '{_quote(landing.malformed_path)}' (format parquet)"
                )
    return landing


def discard_landing_files(work_dir: Path) -> None:
    """Remove what check_landing wrote for dbt (counts, set-aside records, clean copies): once the build has read
    them they are in the warehouse, and a clean copy of a raw file must not stay on disk beside it."""
    for name in (LANDED_FILE, MALFORMED_FILE):
        (work_dir / name).unlink(missing_ok=True)
    shutil.rmtree(work_dir / CLEAN_FOLDER, ignore_errors=True)

"""The landing check: are the raw files there, readable and shaped as the contract says?

It runs before dbt so that a missing file or column is one clear line naming the file and the column, not a stack
trace from deep inside a model. It also decides how dbt reads each entity (``raw_sources`` var): every column as
text, so a malformed value reaches staging and is quarantined with a reason instead of stopping the read.

An entity lands as one file (``orders.csv`` or ``orders.parquet``) or as a folder of files (``orders/*.csv`` or
``orders/*.parquet``), each file a **batch**, taken in the order of its name (name them by date:
``orders/2026-11-01.csv``). Every raw row carries its batch (``_batch``: the file's path inside the raw folder), so
a night that only adds files can be built incrementally: batches already in the warehouse are recognised by their
size and modification time (``known``) and are not read again.

CSV files are read with a fixed dialect (comma, double quotes) and the header's own column names, never sniffed:
a sniffer that meets a broken line may guess a different dialect for the whole file. A record that does not split
into the header's fields (too many or too few, an unterminated quote) cannot be staged; the check finds every
such record, dbt's read skips exactly those, and they reach ``audit.quarantined_rows`` as ``malformed_record``
through the ``malformed_records`` source, so nothing is dropped silently. The check counts every file's records
(``landed_files`` source), so ``raw_reconciliation`` compares the models with counts taken on the files themselves.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from loyalty.contract import ENTITIES, Entity
from loyalty.errors import LoyaltyError

FORMATS = ("csv", "parquet")
MALFORMED_SOURCE = "malformed_records"
MALFORMED_FILE = "malformed_records.parquet"
LANDED_SOURCE = "landed_files"
LANDED_FILE = "landed_files.parquet"
EMPTY_MALFORMED = (
    "(select cast(null as varchar) as entity, cast(null as varchar) as batch, cast(null as bigint) as line_number,"
    " cast(null as varchar) as error, cast(null as varchar) as record_text limit 0)"
)
# email-like tokens in a malformed record are masked: the record cannot be parsed, so its email cannot be hashed
EMAIL_PATTERN = r"[^\s,;\"']+@[^\s,;\"']+"


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
    columns: tuple[str, ...]
    size: int
    mtime_ns: int
    rows: int  # records read into the warehouse (malformed records excluded)
    malformed_records: int
    is_new: bool = True  # not yet in the warehouse being built on

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
        groups: dict[tuple[str, tuple[str, ...]], list[Batch]] = {}
        for batch in batches:
            groups.setdefault((batch.path.suffix, batch.columns), []).append(batch)
        readers = []
        for (suffix, columns), members in groups.items():
            files: list[Path] | str = [b.path for b in members]
            if (
                self.layout == "folder"
                and len(members) == sum(1 for b in self.batches if b.path.suffix == suffix)
                and len(groups) == 1
            ):
                files = str(members[0].path.parent / f"*{suffix}")  # every file: a glob keeps the var short
            if suffix == ".parquet":
                listed = (
                    f"'{_quote(files)}'"
                    if isinstance(files, str)
                    else ("[" + ", ".join(f"'{_quote(p)}'" for p in files) + "]")
                )
                reader = f"read_parquet({listed}, filename = true, union_by_name = true)"
                body = f"select columns(* exclude (filename))::varchar, filename from {reader}"
                present = {c.lower() for c in columns}
            else:
                # the records that do not parse were found by check_landing and are quarantined from its file
                body = "select * from " + csv_reader(files, columns, "ignore_errors = true", "filename = true")
                present = {c.lower() for c in columns}
            extra = "".join(f", cast(null as varchar) as {c}" for c in self.entity.optional_columns if c not in present)
            readers.append(f"select * exclude (filename){extra}, substr(filename, {prefix}) as _batch from ({body})")
        return "(" + " union all by name ".join(readers) + ")"


@dataclass
class Landing:
    raw_dir: Path
    files: dict[str, LandedEntity] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    malformed_path: Path | None = None
    landed_path: Path | None = None

    def raw_sources(self, only_new: bool = False) -> dict[str, str]:
        """The ``raw_sources`` dbt var: a table expression per source table (dbt-duckdb's template formatter
        reads ``$`` as a placeholder, so it is doubled). With ``only_new``, entities read their new batches only."""
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
        return {name: expression.replace("$", "$$") for name, expression in sources.items()}

    @property
    def batches(self) -> list[tuple[str, Batch]]:
        return [(name, batch) for name, landed in self.files.items() for batch in landed.batches]


def _first_line_error(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_columns(path: Path) -> tuple[str, ...]:
    try:
        if path.suffix == ".parquet":
            with duckdb.connect() as con:
                return tuple(row[0] for row in con.execute(f"describe select * from read_parquet('{_quote(path)}')")
                             .fetchall())  # fmt: skip
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except (duckdb.Error, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LoyaltyError(f"{path}: cannot be read as {path.suffix[1:].upper()} ({_first_line_error(exc)})") from None
    if not header or not any(name.strip() for name in header):
        raise LoyaltyError(f"{path}: the first line must be a header with the column names")
    names = tuple(name.strip() for name in header)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise LoyaltyError(f"{path}: column {duplicated[0]!r} appears more than once in the header")
    return names


def _scan_csv(
    con: duckdb.DuckDBPyConnection, entity: str, batch: str, path: Path, columns: tuple[str, ...]
) -> tuple[int, int]:
    """Count the records of ``path`` that parse, and append those that do not to the ``malformed`` table."""
    con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
    reader = csv_reader(path, columns, "store_rejects = true", "rejects_table = 'reject_errors'",
                        "rejects_scan = 'reject_scans'")  # fmt: skip
    try:
        rows = con.execute(f"select count(*) from {reader}").fetchall()[0][0]
    except duckdb.Error as exc:
        raise LoyaltyError(f"{path}: cannot be read as CSV ({_first_line_error(exc)})") from None
    malformed = con.execute(
        f"""insert into malformed
            select '{entity}', ?, line, string_agg(distinct error_type, ', ' order by error_type),
                   regexp_replace(any_value(csv_line), ?, '<email removed>', 'g')
            from reject_errors
            group by line""",
        [batch, EMAIL_PATTERN],
    ).fetchall()[0][0]
    return rows, malformed


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


def check_landing(
    raw_dir: Path, work_dir: Path | None = None, known: Mapping[str, KnownBatch] | None = None
) -> Landing:
    """Check every contract entity in ``raw_dir``; raise LoyaltyError naming the first problem found.

    Files in ``known`` (batch name -> what the warehouse recorded) with the same size and modification time are
    taken as already loaded: not read again, not new. Every other file is read and counted; its malformed CSV
    records are found. With ``work_dir``, the counts (``landed_files.parquet``) and the malformed records are
    written there for dbt.
    """
    if not raw_dir.is_dir():
        raise LoyaltyError(f"LOYALTY_RAW_DIR: {raw_dir} is not a folder")
    known = known or {}
    landing = Landing(raw_dir)
    with duckdb.connect() as con:
        con.execute(
            "create table malformed (entity varchar, batch varchar, line_number bigint, error varchar,"
            " record_text varchar)"
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
                columns = _read_columns(path)
                present = {c.lower() for c in columns}
                for column in entity.columns:
                    if column not in present:
                        raise LoyaltyError(f"{path}: required column {column!r} is missing (has: {', '.join(columns)})")
                name = path.relative_to(raw_dir).as_posix()
                stat = path.stat()
                previous = known.get(name)
                if previous is not None and (previous.size, previous.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                    rows, malformed, is_new = previous.rows, previous.malformed_records, False
                elif path.suffix == ".csv":
                    rows, malformed = _scan_csv(con, entity.name, name, path, columns)
                    is_new = True
                else:
                    rows, malformed, is_new = _parquet_rows(con, path), 0, True
                if malformed and is_new:
                    landing.warnings.append(
                        f"{name}: {malformed} malformed record(s) go to quarantine as malformed_record"
                    )
                batches.append(Batch(name, path, columns, stat.st_size, stat.st_mtime_ns, rows, malformed, is_new))
            landing.files[entity.name] = LandedEntity(entity, tuple(batches), layout)
        if work_dir is not None:
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

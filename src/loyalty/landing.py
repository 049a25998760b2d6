"""The landing check: are the raw files there, readable and shaped as the contract says?

It runs before dbt so that a missing file or column is one clear line naming the file and the column, not a stack
trace from deep inside a model. It also decides how dbt reads each entity (``raw_sources`` var): every column as
text, so a malformed value reaches staging and is quarantined with a reason instead of stopping the read.

CSV files are read with a fixed dialect (comma, double quotes) and the header's own column names, never sniffed:
a sniffer that meets a broken line may guess a different dialect for the whole file. A record that does not split
into the header's fields (too many or too few, an unterminated quote) cannot be staged; the check finds every
such record, dbt's read skips exactly those, and they reach ``audit.quarantined_rows`` as ``malformed_record``
through the ``malformed_records`` source, so nothing is dropped silently.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from loyalty.contract import ENTITIES, Entity
from loyalty.errors import LoyaltyError

FORMATS = ("csv", "parquet")
MALFORMED_SOURCE = "malformed_records"
MALFORMED_FILE = "malformed_records.parquet"
EMPTY_MALFORMED = (
    "(select cast(null as varchar) as entity, cast(null as bigint) as line_number,"
    " cast(null as varchar) as error, cast(null as varchar) as record_text limit 0)"
)
# email-like tokens in a malformed record are masked: the record cannot be parsed, so its email cannot be hashed
EMAIL_PATTERN = r"[^\s,;\"']+@[^\s,;\"']+"


def _quote(text: str | Path) -> str:
    return str(text).replace("'", "''")


def csv_reader(path: Path, columns: tuple[str, ...], *options: str) -> str:
    """DuckDB's read_csv over ``path`` with a fixed dialect, the header's columns, all text."""
    spec = ", ".join(f"'{_quote(c)}': 'VARCHAR'" for c in columns)
    extra = "".join(f", {option}" for option in options)
    return (
        f"read_csv('{_quote(path)}', columns = {{{spec}}}, header = true, auto_detect = false,"
        f" delim = ',', quote = '\"', escape = '\"'{extra})"
    )


@dataclass(frozen=True)
class LandedFile:
    entity: Entity
    path: Path | None  # None: an optional file that is absent
    columns: tuple[str, ...] = ()
    malformed_records: int = 0

    @property
    def relation(self) -> str:
        """A DuckDB table expression that reads this entity with the contract's columns, all as text."""
        if self.path is None:
            cols = ", ".join(f"cast(null as varchar) as {c}" for c in self.entity.all_columns)
            return f"(select {cols} limit 0)"
        if self.path.suffix == ".parquet":
            reader = f"(select columns(*)::varchar from read_parquet('{_quote(self.path)}'))"
        else:
            # the records that do not parse were found by check_landing and are quarantined from its file
            reader = csv_reader(self.path, self.columns, "ignore_errors = true")
        present = {c.lower() for c in self.columns}
        missing_optional = [c for c in self.entity.optional_columns if c not in present]
        if not missing_optional:
            return reader
        extra = ", ".join(f"cast(null as varchar) as {c}" for c in missing_optional)
        return f"(select *, {extra} from {reader})"


@dataclass
class Landing:
    raw_dir: Path
    files: dict[str, LandedFile] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    malformed_path: Path | None = None

    def raw_sources(self) -> dict[str, str]:
        """The ``raw_sources`` dbt var: a table expression per source table (dbt-duckdb's template formatter
        reads ``$`` as a placeholder, so it is doubled)."""
        sources = {name: landed.relation for name, landed in self.files.items()}
        sources[MALFORMED_SOURCE] = (
            f"read_parquet('{_quote(self.malformed_path)}')" if self.malformed_path else EMPTY_MALFORMED
        )
        return {name: expression.replace("$", "$$") for name, expression in sources.items()}


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


def _find_malformed(con: duckdb.DuckDBPyConnection, entity: str, path: Path, columns: tuple[str, ...]) -> int:
    """Append the records of ``path`` that do not parse to the ``malformed`` table; return how many."""
    reader = csv_reader(path, columns, "store_rejects = true", f"rejects_table = 'rejects_{entity}'",
                        f"rejects_scan = 'scans_{entity}'")  # fmt: skip
    try:
        con.execute(f"select count(*) from {reader}").fetchall()
    except duckdb.Error as exc:
        raise LoyaltyError(f"{path}: cannot be read as CSV ({_first_line_error(exc)})") from None
    return con.execute(
        f"""insert into malformed
            select '{entity}', line, string_agg(distinct error_type, ', ' order by error_type),
                   regexp_replace(any_value(csv_line), ?, '<email removed>', 'g')
            from rejects_{entity}
            group by line""",
        [EMAIL_PATTERN],
    ).fetchall()[0][0]


def check_landing(raw_dir: Path, work_dir: Path | None = None) -> Landing:
    """Check every contract file in ``raw_dir``; raise LoyaltyError naming the first problem found.

    Malformed CSV records are counted; with ``work_dir`` they are also written there for dbt to quarantine.
    """
    if not raw_dir.is_dir():
        raise LoyaltyError(f"LOYALTY_RAW_DIR: {raw_dir} is not a folder")
    landing = Landing(raw_dir)
    with duckdb.connect() as con:
        con.execute("create table malformed (entity varchar, line_number bigint, error varchar, record_text varchar)")
        for entity in ENTITIES:
            found = [p for p in (raw_dir / f"{entity.name}.{fmt}" for fmt in FORMATS) if p.is_file()]
            if len(found) > 1:
                raise LoyaltyError(f"{raw_dir}: both {found[0].name} and {found[1].name} exist; keep one")
            if not found:
                if entity.required:
                    raise LoyaltyError(
                        f"{raw_dir}: required file {entity.name}.csv (or {entity.name}.parquet) is missing"
                    )
                landing.warnings.append(
                    f"optional file {entity.name}.csv is absent: models built on {entity.name} will be empty"
                )
                landing.files[entity.name] = LandedFile(entity, None)
                continue
            path = found[0]
            columns = _read_columns(path)
            present = {c.lower() for c in columns}
            for column in entity.columns:
                if column not in present:
                    raise LoyaltyError(f"{path}: required column {column!r} is missing (has: {', '.join(columns)})")
            malformed = _find_malformed(con, entity.name, path, columns) if path.suffix == ".csv" else 0
            if malformed:
                landing.warnings.append(
                    f"{path.name}: {malformed} malformed record(s) go to quarantine as malformed_record"
                )
            landing.files[entity.name] = LandedFile(entity, path, columns, malformed)
        if work_dir is not None and any(f.malformed_records for f in landing.files.values()):
            work_dir.mkdir(parents=True, exist_ok=True)
            landing.malformed_path = work_dir / MALFORMED_FILE
            con.execute(
                f"copy (select * from malformed order by entity, line_number) to '{_quote(landing.malformed_path)}'"
                " (format parquet)"
            )
    return landing

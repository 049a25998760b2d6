"""The landing check: are the raw files there, readable and shaped as the contract says?

It runs before dbt so that a missing file or column is one clear line naming the file and the column, not a stack
trace from deep inside a model. It also decides how dbt reads each entity (``raw_sources`` var): every column as
text, so a malformed value reaches staging and is quarantined with a reason instead of stopping the read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from loyalty.contract import ENTITIES, Entity
from loyalty.errors import LoyaltyError

FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class LandedFile:
    entity: Entity
    path: Path | None  # None: an optional file that is absent
    columns: tuple[str, ...] = ()

    @property
    def relation(self) -> str:
        """A DuckDB table expression that reads this entity with the contract's columns, all as text."""
        if self.path is None:
            cols = ", ".join(f"cast(null as varchar) as {c}" for c in self.entity.all_columns)
            return f"(select {cols} limit 0)"
        quoted = str(self.path).replace("'", "''")
        if self.path.suffix == ".parquet":
            reader = f"(select columns(*)::varchar from read_parquet('{quoted}'))"
        else:
            reader = f"read_csv('{quoted}', all_varchar = true, header = true)"
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

    def raw_sources(self) -> dict[str, str]:
        return {name: landed.relation for name, landed in self.files.items()}


def _read_columns(path: Path) -> tuple[str, ...]:
    quoted = str(path).replace("'", "''")
    reader = (
        f"read_parquet('{quoted}')"
        if path.suffix == ".parquet"
        else f"read_csv('{quoted}', all_varchar = true, header = true)"
    )
    try:
        with duckdb.connect() as con:
            return tuple(row[0] for row in con.sql(f"describe select * from {reader}").fetchall())
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LoyaltyError(f"{path}: cannot be read as {path.suffix[1:].upper()} ({first_line})") from None


def check_landing(raw_dir: Path) -> Landing:
    """Check every contract file in ``raw_dir``; raise LoyaltyError naming the first problem found."""
    if not raw_dir.is_dir():
        raise LoyaltyError(f"LOYALTY_RAW_DIR: {raw_dir} is not a folder")
    landing = Landing(raw_dir)
    for entity in ENTITIES:
        candidates = [raw_dir / f"{entity.name}.{fmt}" for fmt in FORMATS]
        found = [p for p in candidates if p.is_file()]
        if len(found) > 1:
            raise LoyaltyError(f"{raw_dir}: both {found[0].name} and {found[1].name} exist; keep one")
        if not found:
            if entity.required:
                raise LoyaltyError(f"{raw_dir}: required file {entity.name}.csv (or {entity.name}.parquet) is missing")
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
        landing.files[entity.name] = LandedFile(entity, path, columns)
    return landing

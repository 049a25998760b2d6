"""Planning a night: is the landing data ready, and can tonight be incremental?

A night is **incremental** when the published warehouse was built by the same project and settings
(``audit.build_info.build_fingerprint``, ``build_fingerprint``) and the large entities (``INCREMENTAL_ENTITIES``)
only gained new batches that sort after the ones already loaded; otherwise it is a full rebuild, and the plan says
why. The plan carries the landing check's result (``loyalty.landing.Landing``): what dbt reads tonight.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from loyalty.config import PROJECT_DIR, Settings
from loyalty.contract import ENTITIES, INCREMENTAL_ENTITIES
from loyalty.errors import LoyaltyError
from loyalty.landing import KnownBatch, Landing, check_landing, missing_file_message
from loyalty.workspace import landing_dir

# what a build depends on besides the raw data: a change here makes the next night a full rebuild
FINGERPRINT_PATHS = (
    "models",
    "macros",
    "tests/generic",
    "tests/singular",
    "seeds",
    "dbt_project.yml",
    "src/loyalty/predictive",
)


class LandingNotReady(LoyaltyError):
    """The landing data is not complete yet (a required file is missing, or a file is still being written): a
    retry later may succeed."""


def build_fingerprint(settings: Settings) -> str:
    """A hash of everything a build depends on besides the raw data and the as-of date: the dbt project (models,
    macros, seeds, dbt_project.yml), the predictive package, the reporting timezone and currency, extra dbt vars,
    the email hash key's id, the storage format of the file (a new one needs a freshly created file, as a file keeps
    the format it was created in) and the versions of DuckDB and dbt (row hashes must be computed the same way on
    every night)."""
    from dbt.version import __version__ as dbt_version

    digest = hashlib.sha256()
    for relative in FINGERPRINT_PATHS:
        root = PROJECT_DIR / relative
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(PROJECT_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"{settings.timezone}|{settings.currency}|duckdb {duckdb.__version__}|dbt {dbt_version}".encode())
    digest.update(json.dumps(settings.extra_dbt_vars, sort_keys=True, default=str).encode())
    digest.update(f"email hash key {settings.email_key_id}".encode())
    digest.update(f"storage compatibility version {settings.storage_compatibility_version}".encode())
    digest.update(f"engine {settings.engine}".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class PublishedState:
    """What the published warehouse says about how it was built."""

    fingerprint: str | None
    as_of: str | None
    batches: dict[str, dict[str, KnownBatch]]  # entity -> batch name -> what was loaded


def read_published_state(warehouse: Path) -> PublishedState | None:
    """The published warehouse's build fingerprint and loaded batches; None when there is no usable one."""
    if not warehouse.is_file():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            info = con.execute("select build_fingerprint, cast(as_of_date as varchar) from audit.build_info").fetchall()
            rows = con.execute(
                "select entity, batch, size_bytes, mtime_ns, raw_rows, malformed_records from audit.landed_batches"
            ).fetchall()
    except duckdb.Error:
        return None
    batches: dict[str, dict[str, KnownBatch]] = {}
    for entity, batch, size, mtime, raw_rows, malformed in rows:
        if size is not None and mtime is not None:
            batches.setdefault(entity, {})[batch] = KnownBatch(size, mtime, raw_rows, malformed)
    fingerprint, as_of = info[0] if info else (None, None)
    return PublishedState(fingerprint, as_of, batches)


@dataclass(frozen=True)
class Plan:
    mode: str  # 'incremental' or 'full'
    reasons: tuple[str, ...]  # why the night is a full rebuild (empty for an incremental one)
    fingerprint: str
    landing: Landing
    previous_as_of: str | None = None  # the published warehouse's as-of date an incremental night builds on

    @property
    def incremental(self) -> bool:
        return self.mode == "incremental"

    def describe(self) -> str:
        if self.incremental:
            new = sum(len(f.new_batches) for name, f in self.landing.files.items() if name in INCREMENTAL_ENTITIES)
            return f"incremental: {new} new batch(es) of the large entities; the others rebuilt in full"
        return "full rebuild: " + "; ".join(self.reasons)


def landing_not_ready(settings: Settings, settle_seconds: float) -> None:
    """Raise LandingNotReady while a required file is missing or a raw file was modified in the last
    ``settle_seconds`` (most likely still being written): conditions a later retry may find gone."""
    raw_dir = settings.raw_dir
    if not raw_dir.is_dir():
        raise LandingNotReady(f"LOYALTY_RAW_DIR: {raw_dir} is not a folder")
    for entity in ENTITIES:
        present = (
            any((raw_dir / f"{entity.name}.{fmt}").is_file() for fmt in ("csv", "parquet"))
            or (raw_dir / entity.name).is_dir()
        )
        if entity.required and not present:
            raise LandingNotReady(missing_file_message(raw_dir, entity))
    if settle_seconds <= 0:
        return
    now = time.time()
    for path in raw_dir.rglob("*"):
        if path.is_file() and now - path.stat().st_mtime < settle_seconds:
            raise LandingNotReady(f"{path} was modified {now - path.stat().st_mtime:.0f} s ago: still being written?")


def plan_night(settings: Settings, *, full_refresh: bool = False, settle_seconds: float = 0.0) -> Plan:
    """Check the landing data and decide whether tonight can be incremental."""
    landing_not_ready(settings, settle_seconds)
    fingerprint = build_fingerprint(settings)
    state = None if full_refresh else read_published_state(settings.warehouse)
    reasons: list[str] = []
    if settings.engine == "spark":
        reasons.append("the Spark engine builds every table each night (its incremental models are tables)")
    elif full_refresh:
        reasons.append("requested")
    elif state is None:
        reasons.append(f"no published warehouse to build on at {settings.warehouse}")
    elif state.fingerprint != fingerprint:
        reasons.append("the project (models, macros, seeds), the settings or the engine changed since the last build")
    elif state.as_of is None:
        reasons.append("the published warehouse does not say which as-of date it was built for")
    elif settings.as_of.isoformat() < state.as_of:
        reasons.append(f"the as-of date moved back from {state.as_of} to {settings.as_of.isoformat()}")
    known: dict[str, KnownBatch] = {}
    if not reasons:
        assert state is not None
        known = {
            name: batch for entity in INCREMENTAL_ENTITIES for name, batch in state.batches.get(entity, {}).items()
        }
    landing = check_landing(settings.raw_dir, work_dir=landing_dir(settings.warehouse), known=known)
    if not reasons:
        assert state is not None
        for entity in INCREMENTAL_ENTITIES:
            loaded = state.batches.get(entity, {})
            landed = landing.files[entity]
            names = {b.name for b in landed.batches}
            gone = sorted(set(loaded) - names)
            changed = sorted(b.name for b in landed.batches if b.name in loaded and b.is_new)
            early = sorted(
                b.name for b in landed.new_batches if loaded and b.name not in loaded and b.name < max(loaded)
            )
            if gone:
                reasons.append(f"{gone[0]} was loaded on an earlier night but is gone")
            if changed:
                reasons.append(f"{changed[0]} changed since it was loaded")
            if early:
                reasons.append(f"{early[0]} arrived after {max(loaded)} but sorts before it")
        if reasons:  # every batch must be read again
            landing = check_landing(settings.raw_dir, work_dir=landing_dir(settings.warehouse))
    mode = "full" if reasons else "incremental"
    return Plan(mode, tuple(reasons), fingerprint, landing, None if reasons or state is None else state.as_of)

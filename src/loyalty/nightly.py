"""The night's steps, shared by the Prefect flow (``flows/loyalty_nightly.py``) and ``loyalty build``:

    check the landing data -> plan (incremental or full) -> dbt build on a build copy -> GX checkpoint
    -> dbt docs -> report (from the build copy, staged) -> publish (renames only: the warehouse, docs, report)

BI tools read the published file. The night works on a copy in ``.build/`` beside it (an incremental night starts
from a copy of the published file, a full one from nothing) and replaces the published file in one ``rename`` only
after dbt and the checkpoint passed: a reader holding the old file keeps reading the old night, a new connection
sees the new one, and a failed or killed night leaves the last good warehouse in place. The next night removes
what a dead one left behind (the build copy, its WAL, the landing files); the build lock is an OS lock, released
when its process dies.

Every night that holds the lock keeps ``runs/<start>_running.json`` beside the warehouse up to date with the step it
is in, and replaces it with ``runs/<start>_<published|failed>.json`` before it lets go of the lock. So a running
record that the next lock holder finds belongs to a night that died holding the lock (kill -9, the OOM killer, a
power cut): it becomes ``runs/<start>_killed.json`` with the last step that night reached, and the next night's
report says so.

A night is **incremental** when the published warehouse was built by the same project and settings
(``audit.build_info.build_fingerprint``) and the large entities (``INCREMENTAL_ENTITIES``) only gained new batches
that sort after the ones already loaded; otherwise it is a full rebuild, and the report says why.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from loyalty.build import (
    BuildResult,
    build_lock,
    build_path,
    dbt_target_dir,
    model_warnings,
    run_dbt,
    summarise,
    validate_build,
)
from loyalty.config import PROJECT_DIR, Settings
from loyalty.contract import INCREMENTAL_ENTITIES
from loyalty.errors import LoyaltyError
from loyalty.files import stage_json, write_json_atomically
from loyalty.landing import KnownBatch, Landing, check_landing, discard_landing_files
from loyalty.progress import Progress
from loyalty.semantic import commit_manifest, stage_manifest
from loyalty.validation import ValidationFailed, ValidationResult

# what a build depends on besides the raw data: a change here makes the next night a full rebuild
FINGERPRINT_PATHS = ("models", "macros", "seeds", "dbt_project.yml", "src/loyalty/predictive")
DOCS_FOLDER = "docs"
SUMMARY_FILE = "run_summary.json"
PUBLISHED_SUMMARY_FILE = "published_summary.json"
RUNS_FOLDER = "runs"
RUNNING, KILLED = "running", "killed"  # the statuses of a night in progress and of one found dead


class LandingNotReady(LoyaltyError):
    """The landing data is not complete yet (a required file is missing, or a file is still being written): a
    retry later may succeed."""


class DiskFull(LoyaltyError):
    """The file system of the warehouse (and of the build folder beside it) is full: the night stops and publishes
    nothing (publication renames only, after everything it needs was written)."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
RESERVE_FILE = "record_space.reserve"  # in the work folder: room for the night's last record on a full disk
RESERVE_BYTES = 2**20  # a failure record is a few KB (up to ~100 KB with a failed checkpoint), twice


def _free_space(path: Path) -> str:
    while not path.exists():
        path = path.parent
    return f"{shutil.disk_usage(path).free / 2**20:,.1f} MiB free in {path}"


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
    return digest.hexdigest()[:16]


def storage_format(database: Path) -> str | None:
    """The storage format DuckDB says a database file is in, as the oldest release that reads it (``v1.4.0+``)."""
    with duckdb.connect(str(database), read_only=True) as con:
        row = con.execute(
            "select tags['storage_version'] from duckdb_databases() where database_name = current_database()"
        ).fetchone()
    return row[0] if row else None


@cache
def storage_format_written(storage_compatibility_version: str) -> str | None:
    """The storage format of a file DuckDB creates with this ``storage_compatibility_version`` (a probe file)."""
    with tempfile.TemporaryDirectory(prefix="loyalty-storage-") as folder:
        probe = Path(folder) / "probe.duckdb"
        duckdb.connect(str(probe), config={"storage_compatibility_version": storage_compatibility_version}).close()
        return storage_format(probe)


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


def _work_dir(settings: Settings) -> Path:
    return build_path(settings.warehouse).parent


def _landing_dir(settings: Settings) -> Path:
    return _work_dir(settings) / "landing"


def clean_up_after_a_dead_night(settings: Settings) -> None:
    """Remove what an earlier night left in the work folder if it failed or was killed: the build copy, its WAL,
    the landing files and staged docs. The published warehouse is never touched."""
    free_build_space(settings)
    discard_landing_files(_landing_dir(settings))


def landing_not_ready(settings: Settings, settle_seconds: float) -> None:
    """Raise LandingNotReady while a required file is missing or a raw file was modified in the last
    ``settle_seconds`` (most likely still being written): conditions a later retry may find gone."""
    from loyalty.contract import ENTITIES
    from loyalty.landing import missing_file_message

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
    if full_refresh:
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
    landing = check_landing(settings.raw_dir, work_dir=_landing_dir(settings), known=known)
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
            landing = check_landing(settings.raw_dir, work_dir=_landing_dir(settings))
    mode = "full" if reasons else "incremental"
    return Plan(mode, tuple(reasons), fingerprint, landing, None if reasons or state is None else state.as_of)


def prepare_build_copy(settings: Settings, plan: Plan) -> Path:
    """The file tonight's dbt builds into: a copy of the published warehouse for an incremental night (copied
    under a temporary name, then renamed, so a half-copied file is never taken for a build copy), nothing for a full
    one (dbt creates it)."""
    target = build_path(settings.warehouse)
    target.unlink(missing_ok=True)
    target.with_name(target.name + ".wal").unlink(missing_ok=True)
    if plan.incremental:
        partial = target.with_name(target.name + ".copying")
        shutil.copyfile(settings.warehouse, partial)
        os.replace(partial, target)
    return target


def dbt_build(settings: Settings, plan: Plan, *, quiet: bool = False, dbt_tests: bool = True) -> None:
    """``dbt build``: every model, seed, dbt data test and unit test (``dbt_tests=False`` builds the models only:
    for tests of other things, which would otherwise spend most of their time in dbt's own tests)."""
    selection = () if dbt_tests else ("--exclude", "test_type:unit", "test_type:data")
    try:
        run_dbt(
            settings,
            plan.landing,
            "build",
            *selection,
            quiet=quiet,
            only_new=plan.incremental,
            extra_vars={
                "build_mode": plan.mode,
                "build_fingerprint": plan.fingerprint,
                **({"previous_as_of": plan.previous_as_of} if plan.incremental and plan.previous_as_of else {}),
            },
        )
    finally:
        # read by the build, now in the warehouse (or not needed): no copy of raw records stays beside it
        discard_landing_files(_landing_dir(settings))


def validate_copy(settings: Settings) -> ValidationResult:
    """The GX checkpoint on the build copy; raises ValidationFailed (a failed expectation is not retried)."""
    target = build_path(settings.warehouse)
    validation = validate_build(settings, target)
    if not validation.passed:
        kept = f"{settings.warehouse} is unchanged" if settings.warehouse.is_file() else "nothing was published"
        raise ValidationFailed(validation, note=f"not published: {kept}; the build copy is {target}")
    return validation


def generate_docs(settings: Settings, plan: Plan) -> Path:
    """``dbt docs generate --static`` on the build copy: one self-contained HTML file, staged in the work folder
    and published with the warehouse."""
    # --no-compile: the build just compiled every node into the same target folder
    run_dbt(
        settings, plan.landing, "docs", "generate", "--static", "--no-compile", quiet=True, only_new=plan.incremental
    )
    staged = _work_dir(settings) / "docs_index.html"
    shutil.copyfile(dbt_target_dir(settings.warehouse) / "static_index.html", staged)
    return staged


def docs_path(warehouse: Path) -> Path:
    return warehouse.parent / DOCS_FOLDER / "index.html"


def publish(settings: Settings, staged_docs: Path | None, report: NightReport | None = None) -> None:
    """Swap the build copy in for the published warehouse in one rename (atomic on one file system), then its
    semantic manifest (loyalty.semantic), the docs and the night's report files. A reader with the old file open
    keeps reading it; new connections open the new night. Whatever takes disk space (the docs folder, the manifest
    and report files under temporary names) is written before the swap and only renames follow it: a full disk
    fails the night with the last night still published, never a published night without its report."""
    target = build_path(settings.warehouse)
    if not target.is_file():
        raise LoyaltyError(f"nothing to publish: no build copy at {target}")
    found, wanted = storage_format(target), storage_format_written(settings.storage_compatibility_version)
    if found != wanted:  # BI tools with DuckDB 1.x would refuse it
        raise LoyaltyError(
            f"not published: the build copy {target} is in DuckDB storage format {found}, but"
            f" LOYALTY_STORAGE_COMPATIBILITY_VERSION={settings.storage_compatibility_version} writes {wanted}"
        )
    docs = docs_path(settings.warehouse)
    if staged_docs is not None:
        docs.parent.mkdir(parents=True, exist_ok=True)
    staged = stage_report(settings, report) if report is not None else []
    manifest = None
    try:
        manifest = stage_manifest(settings, report.started_at if report is not None else None)
        os.replace(target, settings.warehouse)  # the moment of publication
    except BaseException:
        for partial in [p for p, _ in staged] + ([manifest] if manifest else []):
            partial.unlink(missing_ok=True)
        raise
    commit_manifest(settings.warehouse, manifest)
    if staged_docs is not None:
        os.replace(staged_docs, docs)
    if report is not None:
        commit_report(settings, report, staged)


# ------------------------------------------------------------------------------------------------ the report

HEADLINE_SQL = {
    "customers": "select count(*) from marts.customer_lifetime_value",
    "repurchase_ratio": "select repurchase_ratio from marts.loyalty_kpis_monthly order by month_start desc limit 1",
    "upsell_rate": "select upsell_rate from marts.loyalty_kpis_monthly order by month_start desc limit 1",
    "nps_last_12_months": (
        "select 100.0 * (sum(promoters) - sum(detractors)) / nullif(sum(responses), 0) from marts.nps_monthly"
        " where month_start > (select max(month_start) from marts.nps_monthly) - interval 12 month"
    ),
    "mean_predicted_clv": "select avg(predicted_clv) from marts.customer_lifetime_value",
    "net_revenue_as_of_month": ("select net_revenue from marts.loyalty_kpis_monthly order by month_start desc limit 1"),
}


def headline_kpis(warehouse: Path) -> dict[str, float | None]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        values = {name: con.execute(sql).fetchone() for name, sql in HEADLINE_SQL.items()}
    return {name: (float(row[0]) if row and row[0] is not None else None) for name, row in values.items()}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _changes(now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    if not before:
        return {}
    changes: dict[str, Any] = {}
    for section in ("kpis", "rows_per_mart"):
        for name, value in now.get(section, {}).items():
            old = before.get(section, {}).get(name)
            if isinstance(value, int | float) and isinstance(old, int | float):
                changes[f"{section}.{name}"] = {"previous": old, "now": value, "change": value - old}
    return changes


@dataclass
class NightReport:
    """What the night did, for people (markdown) and tools (JSON beside the warehouse)."""

    status: str  # 'published' or 'failed'; 'running' while it runs (runs/<start>_running.json)
    warehouse: str
    raw_dir: str
    as_of: str
    started_at: str
    finished_at: str | None  # None while running
    mode: str | None = None
    mode_reasons: list[str] = field(default_factory=list)
    steps_seconds: dict[str, float] = field(default_factory=dict)
    rows_per_mart: dict[str, int] = field(default_factory=dict)
    quarantined_rows: dict[str, int] = field(default_factory=dict)
    validation: dict[str, Any] | None = None
    kpis: dict[str, float | None] = field(default_factory=dict)
    changes_since_previous_night: dict[str, Any] = field(default_factory=dict)
    previous_as_of: str | None = None
    docs: str | None = None
    data_docs: str | None = None
    error: str | None = None
    failed_step: str | None = None
    step: str | None = None  # the step a running night is in
    updated_at: str | None = None  # when a running night last started a step
    pid: int | None = None  # the process of a running night
    # earlier nights this night found killed (their runs/<start>_killed.json records, in short)
    killed_nights: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        lines = [
            f"# Loyalty warehouse, night of {self.as_of}: {self.status.upper()}",
            "",
            f"- warehouse: `{self.warehouse}`",
            f"- raw data: `{self.raw_dir}`",
            f"- mode: {self.mode or 'not planned'}"
            + (f" ({'; '.join(self.mode_reasons)})" if self.mode_reasons else ""),
            f"- started {self.started_at}, finished {self.finished_at}",
        ]
        for killed in self.killed_nights:
            lines += ["", f"**An earlier night was killed**: {killed['message']}"]
        if self.error:
            lines += ["", f"**Failed at `{self.failed_step}`**: {self.error}", "",
                      "The published warehouse was not changed."]  # fmt: skip
        if self.validation:
            v = self.validation
            lines += ["", f"Validation: {'passed' if v.get('passed') else 'FAILED'}, "
                      f"{v.get('evaluated')} expectations; Data Docs `{self.data_docs}`"]  # fmt: skip
        if self.kpis:
            lines += ["", "| KPI | tonight | previous night | change |", "|---|---:|---:|---:|"]
            for name, value in self.kpis.items():
                change = self.changes_since_previous_night.get(f"kpis.{name}", {})
                previous, delta = _fmt(change.get("previous")), _fmt(change.get("change"))
                lines.append(f"| {name} | {_fmt(value)} | {previous} | {delta} |")
        if self.rows_per_mart:
            lines += ["", "| mart | rows | change |", "|---|---:|---:|"]
            for name, rows in self.rows_per_mart.items():
                change = self.changes_since_previous_night.get(f"rows_per_mart.{name}", {}).get("change")
                lines.append(f"| {name} | {rows:,} | {_fmt(change)} |")
        if self.quarantined_rows:
            lines += ["", "Quarantined rows: " + ", ".join(f"{k} {v:,}" for k, v in self.quarantined_rows.items())]
        if self.steps_seconds:
            lines += ["", "Steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.steps_seconds.items())]
        if self.docs:
            lines += ["", f"dbt docs: `{self.docs}`"]
        return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 10 else f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def record_path(settings: Settings, started_at: str, status: str) -> Path:
    """``runs/<start>_<status>.json`` beside the warehouse: one record per night (and status)."""
    stamp = started_at.replace(":", "").replace("-", "")
    return settings.warehouse.parent / RUNS_FOLDER / f"{stamp}_{status}.json"


def stage_report(settings: Settings, report: NightReport, *, latest: bool = True) -> list[tuple[Path, Path]]:
    """Write the night's report files under temporary names: ``runs/<start>_<status>.json``, ``run_summary.json``
    (with ``latest``: the night held the lock, so it is tonight's) and, for a published night,
    ``published_summary.json`` (what the next night compares itself with). Returns (staged, final) pairs for
    ``commit_report``; on an error (a full disk) nothing is left staged."""
    base = settings.warehouse.parent
    targets = [record_path(settings, report.started_at, report.status)]
    if latest:
        targets.append(base / SUMMARY_FILE)
    if report.status == "published":
        targets.append(base / PUBLISHED_SUMMARY_FILE)
    payload = report.to_dict()
    staged: list[tuple[Path, Path]] = []
    try:
        for target in targets:
            staged.append((stage_json(target, payload), target))
    except BaseException:
        for partial, _ in staged:
            partial.unlink(missing_ok=True)
        raise
    return staged


def commit_report(settings: Settings, report: NightReport, staged: list[tuple[Path, Path]]) -> None:
    """Rename the staged report files into place (no disk space needed), then drop the night's running record."""
    for partial, target in staged:
        os.replace(partial, target)
    record_path(settings, report.started_at, RUNNING).unlink(missing_ok=True)


def write_report(settings: Settings, report: NightReport, *, latest: bool = True) -> None:
    """The night's report files (``stage_report``), written atomically, replacing its running record."""
    commit_report(settings, report, stage_report(settings, report, latest=latest))


def _built_at_or_after(warehouse: Path, started_at: str) -> bool | None:
    """Whether the published warehouse was built after ``started_at`` (then by the night that started then, as
    nights build one at a time); None when it cannot be read."""
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            row = con.execute("select built_at from audit.build_info").fetchone()
        started = datetime.fromisoformat(started_at).astimezone(UTC).replace(tzinfo=None)
    except (duckdb.Error, ValueError, TypeError):
        return None
    return bool(row and row[0] is not None and row[0] >= started)


def record_killed_nights(settings: Settings, found_by: str) -> list[dict[str, Any]]:
    """Turn every ``runs/<start>_running.json`` into ``runs/<start>_killed.json`` (status ``killed``, the last
    step reached as ``failed_step``). Only for the night holding the build lock: a night writes its running record
    only while it holds the lock and replaces it before letting go, so a running record found then is a dead
    night's. Returns a short entry per killed night for the report."""
    runs = settings.warehouse.parent / RUNS_FOLDER
    if not runs.is_dir():
        return []
    for partial in runs.glob("*.partial"):  # a record a dead night was writing
        partial.unlink(missing_ok=True)
    killed = []
    for running in sorted(runs.glob(f"*_{RUNNING}.json")):
        record = _read_json(running) or {}
        started_at = str(record.get("started_at") or running.name.removesuffix(f"_{RUNNING}.json"))
        step = record.get("step")
        published = _built_at_or_after(settings.warehouse, started_at) if settings.warehouse.is_file() else False
        target = running.with_name(running.name.replace(f"_{RUNNING}.json", f"_{KILLED}.json"))
        message = (
            f"the night started at {started_at} was killed during step {step or 'unknown'}: its process ended"
            " without a report (kill -9, the out-of-memory killer, a power cut)"
            + ("; it had published the warehouse" if published else "; it published nothing")
            + f" (found by the night started at {found_by}; {target})"
        )
        record.update(
            status=KILLED,
            started_at=started_at,
            failed_step=step,
            step=None,
            error=message,
            published=published,
            found_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        write_json_atomically(target, record)
        running.unlink()
        killed.append({"started_at": started_at, "step": step, "record": str(target), "message": message})
    return killed


def published_report(
    settings: Settings,
    plan: Plan,
    validation: ValidationResult | None,
    started: datetime,
    steps: dict[str, float],
    *,
    database: Path | None = None,
    docs: bool = False,
) -> NightReport:
    """The report of a night about to be published, read from ``database`` (the build copy: the report is staged
    before the swap; default the published warehouse). ``docs``: the night publishes dbt docs."""
    database = database or settings.warehouse
    counts, reconciliation = summarise(database)
    previous = _read_json(settings.warehouse.parent / PUBLISHED_SUMMARY_FILE)
    report = NightReport(
        status="published",
        warehouse=str(settings.warehouse),
        raw_dir=str(settings.raw_dir),
        as_of=settings.as_of.isoformat(),
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        mode=plan.mode,
        mode_reasons=list(plan.reasons),
        steps_seconds={k: round(v, 2) for k, v in steps.items()},
        rows_per_mart={k: v for k, v in counts.items() if k.startswith("marts.")},
        quarantined_rows={str(r["entity"]): int(r["quarantined_rows"]) for r in reconciliation},  # type: ignore[arg-type]
        validation=validation.to_dict() if validation else None,
        kpis=headline_kpis(database),
        docs=str(docs_path(settings.warehouse)) if docs else None,
        data_docs=str(validation.docs_index) if validation else None,
        previous_as_of=(previous or {}).get("as_of"),
    )
    report.changes_since_previous_night = _changes(report.to_dict(), previous)
    return report


def failure_report(settings: Settings, started: datetime, step: str | None, error: BaseException) -> NightReport:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    validation = error.result.to_dict() if isinstance(error, ValidationFailed) else None
    return NightReport(
        status="failed",
        warehouse=str(settings.warehouse),
        raw_dir=str(settings.raw_dir),
        as_of=settings.as_of.isoformat(),
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        validation=validation,
        error=message,
        failed_step=step,
        data_docs=str(error.result.docs_index) if isinstance(error, ValidationFailed) else None,
    )


# ------------------------------------------------------------------------------------------------ one night


@dataclass
class Night:
    """Runs the steps in order, timing each, and keeps its running record (``runs/<start>_running.json``) up to
    date once it holds the build lock (``begin``); the Prefect flow runs the same steps as tasks."""

    settings: Settings
    full_refresh: bool = False
    docs: bool = True
    quiet: bool = False
    settle_seconds: float = 0.0
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    steps: dict[str, float] = field(default_factory=dict)
    current_step: str | None = None
    held_lock: bool = False  # begin() ran: the night holds (or held) the build lock and keeps a running record
    reported: bool = False  # its final record (published or failed) was written, or could not be
    killed_nights: list[dict[str, Any]] = field(default_factory=list)
    mode: str | None = None
    mode_reasons: list[str] = field(default_factory=list)
    report: NightReport | None = None  # the final record, once written
    progress: Progress | None = None  # shows each step as it runs (loyalty.progress); None: nothing shown

    @property
    def started_at(self) -> str:
        return self.started.isoformat(timespec="seconds")

    def begin(self) -> list[dict[str, Any]]:
        """Called holding the build lock, after the clean-up: set disk space aside for the night's last record
        (``RESERVE_BYTES``: a night that fills the disk can still say how it ended), record the nights found
        killed, then write this night's running record. Returns the killed nights (their messages are for the
        log). On a disk too full for the reserve the night stops here (DiskFull), before anything is recorded."""
        reserve_space(self.settings)
        self.killed_nights = record_killed_nights(self.settings, found_by=self.started_at)
        self.held_lock = True
        self.write_running_record()
        return self.killed_nights

    def planned(self, plan: Plan) -> None:
        self.mode, self.mode_reasons = plan.mode, list(plan.reasons)

    def write_running_record(self) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        record = NightReport(
            status=RUNNING,
            warehouse=str(self.settings.warehouse),
            raw_dir=str(self.settings.raw_dir),
            as_of=self.settings.as_of.isoformat(),
            started_at=self.started_at,
            finished_at=None,
            mode=self.mode,
            mode_reasons=self.mode_reasons,
            steps_seconds={k: round(v, 2) for k, v in self.steps.items()},
            step=self.current_step,
            updated_at=now,
            pid=os.getpid(),
            killed_nights=self.killed_nights,
        )
        write_json_atomically(record_path(self.settings, self.started_at, RUNNING), record.to_dict())

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step, with the running record saying the night is in it (and the progress showing it); a full
        disk becomes one DiskFull line."""
        self.current_step = name
        began = time.perf_counter()
        with self.progress.in_step(name) if self.progress else nullcontext():
            try:
                if self.held_lock and not self.reported:
                    self.write_running_record()
                yield
            except OSError as exc:
                if exc.errno not in NO_SPACE:
                    raise
                where = Path(exc.filename) if exc.filename else build_path(self.settings.warehouse)
                raise DiskFull(
                    f"no space left on device during step {name} (writing {where}; {_free_space(where)}):"
                    f" nothing was published, {self.settings.warehouse} is unchanged"
                ) from exc
        self.steps[name] = time.perf_counter() - began
        self.current_step = None
        if self.report is not None:  # published during this step: its report gets the step's time too (in memory)
            self.report.steps_seconds = {k: round(v, 2) for k, v in self.steps.items()}

    def timed(self, name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.step(name):
            return function(*args, **kwargs)

    def final_report(self, plan: Plan, validation: ValidationResult | None, staged_docs: Path | None) -> NightReport:
        """The night's report, read from the build copy: it is published with the warehouse."""
        return published_report(
            self.settings,
            plan,
            validation,
            self.started,
            self.steps,
            database=build_path(self.settings.warehouse),
            docs=staged_docs is not None,
        )

    def publish(self, staged_docs: Path | None, report: NightReport) -> None:
        """Publish the build copy, the docs and the night's report (``publish``), the running record replaced."""
        report.killed_nights = self.killed_nights
        report.steps_seconds = {k: round(v, 2) for k, v in self.steps.items()}
        publish(self.settings, staged_docs, report)
        self.reported, self.report = True, report
        release_space(self.settings)

    def fail(self, error: BaseException) -> NightReport | None:
        """Write the failure record (``run_summary.json`` only if the night held the lock: one locked out is not
        tonight's night) in place of the running record; call it before letting go of the lock. Ctrl-C and
        SystemExit write nothing: the running record stays and the next night records the night as killed."""
        if self.reported or isinstance(error, KeyboardInterrupt | SystemExit):
            return None
        report = failure_report(self.settings, self.started, self.current_step, error)
        report.mode, report.mode_reasons = self.mode, self.mode_reasons
        report.steps_seconds = {k: round(v, 2) for k, v in self.steps.items()}
        report.killed_nights = self.killed_nights
        self.reported, self.report = True, report
        # on a full disk, room for the record: the space set aside at the start, then the failed build copy (only
        # a night that held the lock has anything of its own to delete)
        rooms = (release_space, free_build_space) if self.held_lock else ()
        for attempt, make_room in enumerate((None, *rooms)):
            if make_room is not None:
                make_room(self.settings)
            try:
                write_report(self.settings, report, latest=self.held_lock)
                break
            except OSError as exc:
                if exc.errno not in NO_SPACE or attempt == len(rooms):
                    print(f"warning: the failure record could not be written ({exc})", file=sys.stderr)
                    break
        if self.held_lock:
            release_space(self.settings)
        return report


def reserve_space(settings: Settings) -> None:
    """Allocate ``RESERVE_BYTES`` in the work folder (replacing a dead night's), released for the night's last
    record."""
    reserve = _work_dir(settings) / RESERVE_FILE
    reserve.unlink(missing_ok=True)
    try:
        with reserve.open("wb") as handle:
            os.posix_fallocate(handle.fileno(), 0, RESERVE_BYTES)
    except OSError as exc:
        reserve.unlink(missing_ok=True)
        if exc.errno not in NO_SPACE:
            raise
        raise DiskFull(
            f"no space left on device to start the night ({_free_space(reserve.parent)}): nothing was published,"
            f" {settings.warehouse} is unchanged"
        ) from exc


def release_space(settings: Settings) -> None:
    (_work_dir(settings) / RESERVE_FILE).unlink(missing_ok=True)


def free_build_space(settings: Settings) -> None:
    """Delete a failed night's build copy (with its WAL, a half-done copy and the staged docs) to make room on a
    full disk for its failure record; the next night would delete them anyway. The published warehouse stays."""
    target = build_path(settings.warehouse)
    for path in (
        target,
        target.with_name(target.name + ".wal"),
        target.with_name(target.name + ".copying"),
        _work_dir(settings) / "docs_index.html",
    ):
        path.unlink(missing_ok=True)


def run_night(
    settings: Settings,
    *,
    full_refresh: bool = False,
    docs: bool = True,
    quiet: bool = False,
    settle_seconds: float = 0.0,
    validate: bool = True,
    dbt_tests: bool = True,
) -> tuple[BuildResult, NightReport, Plan]:
    """One night without an orchestrator (``loyalty build``; the Prefect flow runs the same steps as tasks).
    Writes the run summary also when the night fails, then re-raises. ``validate=False`` skips the GX checkpoint
    and ``dbt_tests=False`` dbt's own tests: for tests of other things only (the CLI always runs both)."""
    night = Night(settings, full_refresh, docs, quiet, settle_seconds, progress=Progress(quiet=quiet))
    try:
        with build_lock(settings.warehouse):
            try:
                clean_up_after_a_dead_night(settings)
                for killed in night.begin():
                    print(f"warning: {killed['message']}", file=sys.stderr)
                plan = night.timed(
                    "plan", plan_night, settings, full_refresh=full_refresh, settle_seconds=settle_seconds
                )
                night.planned(plan)
                for warning in plan.landing.warnings:
                    print(f"warning: {warning}", file=sys.stderr)
                night.timed("prepare_build_copy", prepare_build_copy, settings, plan)
                night.timed("dbt_build", dbt_build, settings, plan, quiet=quiet, dbt_tests=dbt_tests)
                validation = night.timed("validate", validate_copy, settings) if validate else None
                staged_docs = night.timed("docs", generate_docs, settings, plan) if docs else None
                report = night.timed("report", night.final_report, plan, validation, staged_docs)
                # the warehouse, the docs, the report (replacing the running record), before the lock goes
                night.timed("publish", night.publish, staged_docs, report)
            except BaseException as exc:
                night.fail(exc)
                raise
    except BaseException as exc:  # the lock itself (BuildLocked): this night never started
        night.fail(exc)
        raise
    counts, reconciliation = summarise(settings.warehouse)
    for warning in model_warnings(settings.warehouse):
        print(f"warning: {warning}", file=sys.stderr)
    return BuildResult(settings.warehouse, plan.landing, counts, reconciliation, validation), report, plan

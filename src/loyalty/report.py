"""The night's report: what it did, for people (a summary on the terminal, markdown for Prefect) and for tools
(JSON beside the warehouse), and the records of each night in ``runs/``.

    <warehouse folder>/run_summary.json          the last night's report, published or failed
    <warehouse folder>/published_summary.json    the last published night's (what the next night compares with)
    <warehouse folder>/runs/<start>_<status>.json  one record per night: running, published, failed or killed

A night keeps ``runs/<start>_running.json`` up to date with the step it is in while it holds the build lock, and
replaces it with its final record before it lets go; so a running record found by the next lock holder belongs to
a night that died (kill -9, the out-of-memory killer, a power cut), and becomes ``runs/<start>_killed.json``.
The report of a published night is read from the build copy before the swap (``published_report``) and staged
(``stage_report``), so publication itself only renames (``loyalty.publication``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from loyalty.config import Settings
from loyalty.files import stage_json, write_json_atomically
from loyalty.landing import Landing
from loyalty.planning import Plan
from loyalty.validation import ValidationFailed, ValidationResult

SUMMARY_SCHEMAS = ("marts", "audit")
SUMMARY_FILE = "run_summary.json"
PUBLISHED_SUMMARY_FILE = "published_summary.json"
RUNS_FOLDER = "runs"
RUNNING, KILLED = "running", "killed"  # the statuses of a night in progress and of one found dead


@dataclass(frozen=True)
class BuildResult:
    warehouse: Path
    landing: Landing
    row_counts: dict[str, int]
    reconciliation: list[dict[str, object]]
    validation: ValidationResult | None = None


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

    @classmethod
    def of_night(cls, settings: Settings, started_at: str, status: str, **fields: Any) -> NightReport:
        """A report of the night started at ``started_at`` on these settings; finished now unless ``fields`` say."""
        fields.setdefault("finished_at", datetime.now(UTC).isoformat(timespec="seconds"))
        return cls(
            status=status,
            warehouse=str(settings.warehouse),
            raw_dir=str(settings.raw_dir),
            as_of=settings.as_of.isoformat(),
            started_at=started_at,
            **fields,
        )

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
    docs: Path | None = None,
) -> NightReport:
    """The report of a night about to be published, read from ``database`` (the build copy: the report is staged
    before the swap; default the published warehouse). ``docs``: where the night publishes its dbt docs."""
    database = database or settings.warehouse
    counts, reconciliation = summarise(database)
    previous = _read_json(settings.warehouse.parent / PUBLISHED_SUMMARY_FILE)
    report = NightReport.of_night(
        settings,
        started.isoformat(timespec="seconds"),
        "published",
        mode=plan.mode,
        mode_reasons=list(plan.reasons),
        steps_seconds={k: round(v, 2) for k, v in steps.items()},
        rows_per_mart={k: v for k, v in counts.items() if k.startswith("marts.")},
        quarantined_rows={str(r["entity"]): int(r["quarantined_rows"]) for r in reconciliation},  # type: ignore[arg-type]
        validation=validation.to_dict() if validation else None,
        kpis=headline_kpis(database),
        docs=str(docs) if docs else None,
        data_docs=str(validation.docs_index) if validation else None,
        previous_as_of=(previous or {}).get("as_of"),
    )
    report.changes_since_previous_night = _changes(report.to_dict(), previous)
    return report


def failure_report(settings: Settings, started: datetime, step: str | None, error: BaseException) -> NightReport:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    validation = error.result.to_dict() if isinstance(error, ValidationFailed) else None
    return NightReport.of_night(
        settings,
        started.isoformat(timespec="seconds"),
        "failed",
        validation=validation,
        error=message,
        failed_step=step,
        data_docs=str(error.result.docs_index) if isinstance(error, ValidationFailed) else None,
    )


def model_warnings(warehouse: Path) -> list[str]:
    """Warnings the models record in the warehouse instead of failing the build: the predictive models' reasons
    for not converging or not fitting, and notes on their fits (marts.clv_model_parameters.message)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        if not con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'marts' and table_name = 'clv_model_parameters'"
        ).fetchone()[0]:
            return []
        rows = con.execute(
            "select distinct model, status, message from marts.clv_model_parameters"
            " where message is not null order by model"
        ).fetchall()
    return [f"predicted CLV: {model} {status.replace('_', ' ')}: {message}" for model, status, message in rows]


def summarise(warehouse: Path) -> tuple[dict[str, int], list[dict[str, object]]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.sql(
            "select schema_name, table_name from duckdb_tables() "
            f"where schema_name in {SUMMARY_SCHEMAS} order by schema_name, table_name"
        ).fetchall()
        counts = {
            f"{schema}.{table}": con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            for schema, table in tables
        }
        recon = con.execute("select * from audit.raw_reconciliation order by entity")
        names = [d[0] for d in recon.description]
        reconciliation = [dict(zip(names, row, strict=True)) for row in recon.fetchall()]
    return counts, reconciliation


def format_summary(settings: Settings, result: BuildResult, report: dict[str, object] | None = None) -> str:
    lines = [
        f"warehouse published: {result.warehouse}",
        f"as of {settings.as_of} ({settings.as_of_source}); timezone {settings.timezone}; currency {settings.currency}",
        f"raw data: {settings.raw_dir}",
    ]
    if settings.engine == "spark":
        lines.append(
            f"engine: spark; its tables: {settings.spark_warehouse_dir} (the warehouse file holds views of them)"
        )
    if report:
        reasons = report.get("mode_reasons") or []
        lines.append(f"build: {report.get('mode')}" + (f" ({'; '.join(reasons)})" if reasons else ""))  # type: ignore[arg-type]
    lines += ["", "rows per model:"]
    lines += [f"  {name:<40} {count:>12,}" for name, count in result.row_counts.items()]
    lines += ["", f"  {'entity':<20} {'raw':>10} {'staged':>10} {'quarantined':>12} {'collapsed':>10}"]
    for row in result.reconciliation:
        lines.append(
            f"  {row['entity']:<20} {row['raw_rows']:>10,} {row['staged_rows']:>10,}"
            f" {row['quarantined_rows']:>12,} {row['collapsed_duplicates']:>10,}"
        )
    lines.append("  quarantined rows and their reasons: select * from audit.quarantined_rows")
    steps: dict[str, float] = (report or {}).get("steps_seconds") or {}  # type: ignore[assignment]
    if steps:
        lines += ["", "steps (seconds):"]
        lines += [f"  {name:<20} {seconds:>9.1f}" for name, seconds in steps.items()]
        lines.append(f"  {'all steps':<20} {sum(steps.values()):>9.1f}")
    if result.validation is not None:
        lines += ["", result.validation.report()]
    if report and report.get("docs"):
        lines.append(f"dbt docs: {report['docs']}")
    if report:
        lines.append(f"run summary: {result.warehouse.parent / 'run_summary.json'}")
    return "\n".join(lines)

"""Running dbt and the validation gate on a build copy, one build at a time; the night's order of steps is in
``loyalty.nightly``.

BI tools read the published file (LOYALTY_WAREHOUSE). The night's build happens in ``.build/`` beside it, under
the same file name (DuckDB names the catalog after the file, and views refer to it), and replaces the published
file only when dbt succeeded and the Great Expectations checkpoint passed (``loyalty.validation``): a reader never
sees a half-built or unvalidated warehouse, and a failed night leaves the last good one in place.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from loyalty.config import PROJECT_DIR, Settings
from loyalty.errors import LoyaltyError
from loyalty.landing import Landing
from loyalty.validation import ValidationResult, output_dir_for, validate

SUMMARY_SCHEMAS = ("marts", "audit")


@dataclass(frozen=True)
class BuildResult:
    warehouse: Path
    landing: Landing
    row_counts: dict[str, int]
    reconciliation: list[dict[str, object]]
    validation: ValidationResult | None = None


def build_path(warehouse: Path) -> Path:
    return warehouse.parent / ".build" / warehouse.name


def dbt_target_dir(warehouse: Path) -> Path:
    """dbt's target folder for the builds of ``warehouse`` (manifest, compiled SQL, docs, semantic manifest)."""
    return build_path(warehouse).parent / "target"


def dbt_command(
    settings: Settings,
    landing: Landing,
    *args: str,
    database: Path | None = None,
    only_new: bool = False,
    extra_vars: dict[str, object] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The dbt command line and environment for this project and these settings.

    dbt works on ``database`` (default: the build copy). Its target (manifest, compiled SQL, docs) and logs go to
    the build folder beside the warehouse, so builds of different warehouses never share dbt's state. With
    ``only_new`` the raw sources read only the batches the landing check marked new (an incremental night).
    """
    dbt = Path(sys.executable).with_name("dbt")
    work = build_path(settings.warehouse).parent
    variables = {**settings.dbt_vars(), "raw_sources": landing.raw_sources(only_new=only_new), **(extra_vars or {})}
    command = [
        str(dbt),
        *args,
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--vars",
        json.dumps(variables),
        "--target-path",
        str(dbt_target_dir(settings.warehouse)),
        "--log-path",
        str(work / "logs"),
    ]
    env = {
        **os.environ,
        "LOYALTY_DBT_DATABASE": str(database or build_path(settings.warehouse)),
        "LOYALTY_DBT_TARGET": "build",  # never the read-only `query` target, whatever the caller's environment says
        "LOYALTY_THREADS": str(settings.threads),
        "LOYALTY_MEMORY_LIMIT": settings.memory_limit,
        "LOYALTY_STORAGE_COMPATIBILITY_VERSION": settings.storage_compatibility_version,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return command, env


def run_dbt(
    settings: Settings,
    landing: Landing,
    *args: str,
    quiet: bool = False,
    only_new: bool = False,
    extra_vars: dict[str, object] | None = None,
) -> None:
    """Run dbt; with ``quiet`` its output is shown only when it fails (the last 40 lines, on stderr). Each line of
    its output also goes to the running step's progress (``loyalty.progress``: dbt's nodes done out of the total)."""
    from loyalty import progress

    command, env = dbt_command(settings, landing, *args, only_new=only_new, extra_vars=extra_vars)
    tracker = progress.active()
    tail: deque[str] = deque(maxlen=40)
    no_space = False
    with subprocess.Popen(
        command,
        env={**env, "PYTHONUNBUFFERED": "1"},  # each line as dbt prints it, not in blocks (a pipe is not a terminal)
        cwd=PROJECT_DIR,
        text=True,
        errors="replace",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            no_space = no_space or "No space left on device" in line
            if not quiet and tracker:
                tracker.passthrough(line)
            elif not quiet:
                print(line, flush=True)
            if tracker:
                tracker.dbt_output(line)
    returncode = process.returncode
    if returncode != 0:
        work = build_path(settings.warehouse).parent
        log = work / "logs" / "dbt.log"
        if quiet and no_space:
            # the one line says it all; dbt's own output is then mostly its logger failing to write dbt.log
            free = shutil.disk_usage(work).free / 2**20
            raise LoyaltyError(
                f"dbt {args[0]} failed (exit {returncode}): no space left on device ({free:,.1f} MiB free"
                f" in {work}): nothing was published, {settings.warehouse} is unchanged"
            )
        if quiet:
            print("\n".join(tail), file=sys.stderr)
        raise LoyaltyError(f"dbt {args[0]} failed (exit {returncode}): see dbt's output above and {log}")


class BuildLocked(LoyaltyError):
    """Another build of the same warehouse holds the lock (a retry later may succeed)."""


@contextmanager
def build_lock(warehouse: Path) -> Iterator[None]:
    """One build per warehouse at a time: a second one stops with a clear error instead of writing into the
    first one's build copy. The lock is the OS's (flock): a killed build releases it."""
    lock_path = build_path(warehouse).parent / "build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLocked(f"another build of {warehouse} is running (lock {lock_path})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(
    settings: Settings,
    *,
    quiet: bool = False,
    full_refresh: bool = False,
    docs: bool = False,
    validate: bool = True,
    dbt_tests: bool = True,
) -> BuildResult:
    """One night without an orchestrator: check the landing data, build (incrementally when possible) on a build
    copy, validate, publish, report (``loyalty.nightly``). Docs are optional here (the nightly flow makes them)."""
    from loyalty.nightly import run_night

    result, _, _ = run_night(
        settings, quiet=quiet, full_refresh=full_refresh, docs=docs, validate=validate, dbt_tests=dbt_tests
    )
    return result


def validate_build(settings: Settings, database: Path) -> ValidationResult:
    """The GX checkpoint over a built ``database`` (the not yet published build copy), compared with the published
    warehouse, with Data Docs and ``result.json`` in ``validation/`` beside the published warehouse."""
    return validate(
        database,
        output_dir=output_dir_for(settings.warehouse),
        previous=settings.warehouse if settings.warehouse.is_file() else None,
        thresholds=settings.thresholds,
        memory_limit=settings.memory_limit,
        threads=settings.threads,
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

"""Running dbt for a night: the command line and environment for this project and these settings, and a run that
streams dbt's output to the night's progress and turns a failure into one error line.

dbt works on a database file (by default the warehouse's build copy, ``loyalty.workspace``); its target folder and
logs go to the work folder beside the warehouse, so builds of different warehouses never share dbt's state. The
raw sources dbt reads come from the landing check (``loyalty.landing.Landing.raw_sources``); they and the other values
that change every night reach dbt in its environment, not as --vars (``NIGHT_VALUES``, macros/night.sql).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path

from loyalty import progress
from loyalty.config import PROJECT_DIR, Settings
from loyalty.errors import LoyaltyError
from loyalty.landing import Landing
from loyalty.workspace import build_path, dbt_log_dir, dbt_target_dir, work_dir

FAILURE_TAIL_LINES = 40  # of dbt's output, shown when a quiet run fails

# dbt vars that change from night to night: passed in the environment (LOYALTY_NIGHT), not as --vars, so that dbt
# keeps its saved parse (partial parsing) from one night to the next; see macros/night.sql
NIGHT_VALUES = ("as_of_date", "build_mode", "build_fingerprint", "previous_as_of")


def dbt_command(
    settings: Settings,
    landing: Landing,
    *args: str,
    database: Path | None = None,
    only_new: bool = False,
    extra_vars: dict[str, object] | None = None,
    spark_tables: Path | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The dbt command line and environment for this project and these settings.

    dbt works on ``database`` (default: the build copy). With ``only_new`` the raw sources read only the batches
    the landing check marked new (an incremental night). On the Spark engine (``Settings.engine``) dbt runs in
    ``loyalty.spark_engine``'s process, its tables in ``spark_tables`` (default: the Spark warehouse folder).
    """
    dbt = Path(sys.executable).with_name("dbt")
    variables = {**settings.dbt_vars(), **(extra_vars or {})}
    night = {name: variables.pop(name) for name in NIGHT_VALUES if name in variables}
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
        str(dbt_log_dir(settings.warehouse)),
    ]
    env = {
        **os.environ,
        "LOYALTY_DBT_DATABASE": str(database or build_path(settings.warehouse)),
        "LOYALTY_DBT_TARGET": "build",  # never the read-only `query` target, whatever the caller's environment says
        "LOYALTY_THREADS": str(settings.threads),
        "LOYALTY_MEMORY_LIMIT": settings.memory_limit,
        "LOYALTY_STORAGE_COMPATIBILITY_VERSION": settings.storage_compatibility_version,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # the values that change every night, read only while dbt executes (macros/night.sql): as --vars they
        # would make dbt parse the whole project again every night
        "LOYALTY_NIGHT": json.dumps(night),
        "LOYALTY_RAW_SOURCES": json.dumps(landing.raw_sources(only_new=only_new)),
    }
    if settings.engine == "spark":
        from loyalty.spark_engine import spark_dbt_command

        return spark_dbt_command(command, env, settings, landing, only_new=only_new, tables=spark_tables)
    return command, env


def run_dbt(
    settings: Settings,
    landing: Landing,
    *args: str,
    quiet: bool = False,
    only_new: bool = False,
    extra_vars: dict[str, object] | None = None,
    spark_tables: Path | None = None,
) -> None:
    """Run dbt; with ``quiet`` its output is shown only when it fails (the last 40 lines, on stderr). Each line of
    its output also goes to the running step's progress (``loyalty.progress``: dbt's nodes done out of the total)."""
    command, env = dbt_command(
        settings, landing, *args, only_new=only_new, extra_vars=extra_vars, spark_tables=spark_tables
    )
    tracker = progress.active()
    tail: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)
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
        work = work_dir(settings.warehouse)
        log = dbt_log_dir(settings.warehouse) / "dbt.log"
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

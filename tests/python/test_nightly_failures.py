"""A night failed at each step (a dbt model failing via a var, a failed expectation, kill -9 while dbt builds or
while GX validates) leaves the last good warehouse published, and the next night recovers without manual clean-up;
a killed night's running record becomes a killed record, a failed night's a failed one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import psutil
import pytest
from conftest import PROJECT_DIR, query
from nightly_support import as_of, fingerprint, flow_env, run_flow

from loyalty import config
from loyalty.config import Thresholds
from loyalty.nightly import run_night
from loyalty.report import PUBLISHED_SUMMARY_FILE, SUMMARY_FILE, NightReport
from loyalty.validation import ValidationFailed
from loyalty.workspace import build_path

# ------------------------------------------------------------------------------------------------ failures


@pytest.fixture(scope="module")
def published(nights: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Night 2 published by the night's steps (no Prefect), for the failure tests to break night 3 on."""
    warehouse = tmp_path_factory.mktemp("failures") / "loyalty.duckdb"
    settings = config.resolve(
        raw_dir=str(nights[2]), warehouse=str(warehouse), as_of=as_of(2), thresholds=Thresholds(min_night_volume=0)
    )
    run_night(settings, quiet=True, docs=False, dbt_tests=False)
    return warehouse


def assert_untouched_then_recovers(warehouse: Path, before: tuple, raw: Path) -> NightReport:
    """The published file is the one from before the failed night, and the next night (the same steps, without
    dbt's own tests and the GX checkpoint, to keep the suite short) cleans up after it and publishes; no night is
    left running."""
    assert fingerprint(warehouse) == before
    assert query(warehouse, "select as_of_date from audit.build_info") == [(date.fromisoformat(as_of(2)),)]
    settings = config.resolve(
        raw_dir=str(raw), warehouse=str(warehouse), as_of=as_of(3), thresholds=Thresholds(min_night_volume=0)
    )
    _, report, _ = run_night(settings, quiet=True, docs=False, validate=False, dbt_tests=False)
    assert report.status == "published"
    assert query(warehouse, "select as_of_date from audit.build_info") == [(date.fromisoformat(as_of(3)),)]
    assert records(warehouse, "running") == []
    return report


def records(warehouse: Path, status: str) -> list[dict]:
    """The nights' records runs/<start>_<status>.json beside the warehouse, oldest first."""
    return [json.loads(p.read_text()) for p in sorted((warehouse.parent / "runs").glob(f"*_{status}.json"))]


def assert_failed_not_killed(warehouse: Path, report: NightReport, step: str) -> None:
    """A night that failed (and said so) is one failed record, and the night after found nothing killed."""
    assert [(r["status"], r["failed_step"]) for r in records(warehouse, "failed")] == [("failed", step)]
    assert records(warehouse, "killed") == [] and report.killed_nights == []


def copy_of_published(published: Path, tmp: Path) -> Path:
    warehouse = tmp / "wh" / "loyalty.duckdb"
    warehouse.parent.mkdir()
    shutil.copy2(published, warehouse)
    shutil.copy2(published.parent / PUBLISHED_SUMMARY_FILE, warehouse.parent / PUBLISHED_SUMMARY_FILE)
    return warehouse


def test_a_failing_dbt_model_fails_the_flow_and_the_failure_hook_writes_the_summary(
    nights: list[Path], published: Path, tmp_path: Path
) -> None:
    warehouse = copy_of_published(published, tmp_path)
    before = fingerprint(warehouse)
    env = flow_env(tmp_path, LOYALTY_DBT_VARS='{"loyalty_fail_model": "customer_lifetime_value"}')
    result = run_flow(nights[3], warehouse, as_of(3), env)
    assert result.returncode == 2
    # (Prefect's temporary server logs its stop after the CLI's last line)
    assert any(line.startswith("error: dbt build failed") for line in result.stderr.splitlines()), result.stderr[-3000:]
    assert "injected failure in model customer_lifetime_value" in result.stdout + result.stderr
    summary = json.loads((warehouse.parent / SUMMARY_FILE).read_text())
    assert (summary["status"], summary["failed_step"]) == ("failed", "dbt_build")
    assert summary["error"].startswith("dbt build failed")
    assert len(list((warehouse.parent / "runs").glob("*_failed.json"))) == 1
    assert records(warehouse, "running") == []  # the failed night replaced its running record
    report = assert_untouched_then_recovers(warehouse, before, nights[3])
    assert_failed_not_killed(warehouse, report, "dbt_build")


def test_a_failed_expectation_stops_publication(nights: list[Path], published: Path, tmp_path: Path) -> None:
    warehouse = copy_of_published(published, tmp_path)
    before = fingerprint(warehouse)
    settings = config.resolve(
        raw_dir=str(nights[3]),
        warehouse=str(warehouse),
        as_of=as_of(3),
        thresholds=Thresholds(min_night_volume=0, max_quarantine_rate=0),
    )
    with pytest.raises(ValidationFailed) as failed:
        run_night(settings, quiet=True, docs=False, dbt_tests=False)
    assert "checks.quarantine_rate" in str(failed.value) and "not published" in str(failed.value)
    summary = json.loads((warehouse.parent / SUMMARY_FILE).read_text())
    assert (summary["status"], summary["failed_step"]) == ("failed", "validate")
    assert summary["validation"]["passed"] is False
    assert records(warehouse, "running") == []
    report = assert_untouched_then_recovers(warehouse, before, nights[3])
    assert_failed_not_killed(warehouse, report, "validate")


@pytest.mark.parametrize("step", ["dbt_build", "validate"])
def test_a_night_killed_with_sigkill_leaves_the_last_good_warehouse(
    nights: list[Path], published: Path, tmp_path: Path, step: str
) -> None:
    """kill -9 of the whole night (process group) while dbt builds, or while GX validates: the published file is
    untouched, the leftovers (build copy, lock) do not stop the next night, which publishes; the killed night's
    running record (which says the step it was in) becomes a killed record, and the next night reports it."""
    warehouse = copy_of_published(published, tmp_path)
    before = fingerprint(warehouse)
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty", "build", "--quiet", "--no-docs", "--raw-dir", str(nights[3]),
         "--warehouse", str(warehouse), "--as-of", as_of(3)],
        cwd=PROJECT_DIR,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}, "LOYALTY_MIN_NIGHT_VOLUME": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip

    def inside(step: str) -> bool:
        """dbt has created the build copy; the GX checkpoint's child process has started."""
        if step == "dbt_build":
            return build_path(warehouse).exists()
        try:
            children = psutil.Process(process.pid).children(recursive=True)
            return any("loyalty.validation" in " ".join(child.cmdline()) for child in children)
        except psutil.Error:
            return False

    deadline = time.time() + 300
    while not inside(step) and process.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # well inside the step (dbt takes many seconds on this data; GX's import alone several)
    assert process.poll() is None, "the night ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert fingerprint(warehouse) == before
    [running] = records(warehouse, "running")
    assert (running["status"], running["step"], running["pid"], running["finished_at"]) == (
        "running", step, process.pid, None
    )  # fmt: skip
    # the steps it finished before (plan, build copy, and dbt for a night killed while validating)
    assert list(running["steps_seconds"]) == ["plan", "prepare_build_copy"] + (
        ["dbt_build"] if step == "validate" else []
    )
    assert records(warehouse, "published") == [] and records(warehouse, "failed") == []

    report = assert_untouched_then_recovers(warehouse, before, nights[3])
    [killed] = records(warehouse, "killed")
    assert (killed["status"], killed["failed_step"], killed["started_at"], killed["published"]) == (
        "killed", step, running["started_at"], False
    )  # fmt: skip
    assert killed["error"].startswith(f"the night started at {running['started_at']} was killed during step {step}")
    assert killed["found_at"] >= report.started_at
    # the night after says so in its report (JSON and markdown) and in its own record
    [entry] = report.killed_nights
    assert (entry["started_at"], entry["step"]) == (running["started_at"], step)
    assert entry["record"].endswith("_killed.json") and Path(entry["record"]).is_file()
    assert f"was killed during step {step}" in report.markdown()
    assert records(warehouse, "published")[0]["killed_nights"] == [entry]

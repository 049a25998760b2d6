"""The nightly run: the real Prefect flow end to end (`loyalty run`, its own ephemeral Prefect server), atomic
publication under a reader holding the file, failures at each step leaving the last good warehouse in place and
the next night recovering, incremental nights equal to one full refresh, and the same night twice giving the same
marts. Data: a small generated shop split into daily batches (loyalty.batches), as nightly extracts land."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import PROJECT_DIR, query, run_cli

from loyalty import config
from loyalty.batches import split_by_day
from loyalty.config import Thresholds
from loyalty.build import build_path
from loyalty.contract import INCREMENTAL_ENTITIES
from loyalty.generator import generate
from loyalty.nightly import PUBLISHED_SUMMARY_FILE, SUMMARY_FILE, LandingNotReady, plan_night, run_night

LAST_DAY = date(2026, 10, 31)
NIGHTS = 3  # a history batch and three daily batches: nights 0..3
# marts compared row for row; clv_model_parameters.fit_seconds is the fit's wall time, the one column that differs
COMPARED = {"marts.clv_model_parameters": "* exclude (fit_seconds)"}


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 1,500-customer shop with a few bad rows, split into a history batch and one batch per day for the last
    three days: nights[k] is the raw folder as it stands on night k."""
    raw = tmp_path_factory.mktemp("shop")
    generate(raw, 1500, seed=11, bad_row_rate=0.002, progress=False, force=True)
    return split_by_day(raw, tmp_path_factory.mktemp("split") / "out", LAST_DAY, NIGHTS)


def _as_of(night: int) -> str:
    return (LAST_DAY - timedelta(days=NIGHTS - night)).isoformat()


def _flow_env(tmp: Path, **extra: str) -> dict[str, str]:
    """A flow run of its own: its own Prefect home (database, logs), quick retries, no settling wait."""
    return {
        "PREFECT_HOME": str(tmp / "prefect"),
        "LOYALTY_RETRY_DELAY_SECONDS": "3",  # 3, 6, 12 s: time for the test to see the first retry
        "LOYALTY_LANDING_SETTLE_SECONDS": "0",
        "LOYALTY_MIN_NIGHT_VOLUME": "0",  # 1,500 customers: a quiet day is noise, not a broken feed
        **extra,
    }


def _run_flow(raw: Path, warehouse: Path, as_of: str, env: dict[str, str], *more: str) -> subprocess.CompletedProcess:
    return run_cli("run", "--raw-dir", str(raw), "--warehouse", str(warehouse), "--as-of", as_of, *more, env=env)


def _fingerprint(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _marts_differences(a: Path, b: Path) -> dict[str, tuple[int, int]]:
    """Per mart (and staging, audit and intermediate table): rows only in a, rows only in b."""
    differences = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        tables = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() where database_name = 'a'"
            " and schema_name in ('marts', 'audit', 'staging', 'intermediate')"
            " and table_name not in ('build_info', 'landed_batches')"
        ).fetchall()
        for (table,) in tables:
            columns = COMPARED.get(table, "*")
            only_a = con.execute(
                f"select count(*) from (select {columns} from a.{table} except all select {columns} from b.{table})"
            ).fetchone()[0]
            only_b = con.execute(
                f"select count(*) from (select {columns} from b.{table} except all select {columns} from a.{table})"
            ).fetchone()[0]
            differences[table] = (only_a, only_b)
    assert len(differences) > 30
    return differences


# ------------------------------------------------------------------------------------------------ the real flow


@pytest.fixture(scope="module")
def two_nights(nights: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Night 2 by the real flow (a full build: nothing published yet), then night 3 by the real flow while a BI
    reader holds the published file open read-only and another build holds the lock for the first seconds."""
    tmp = tmp_path_factory.mktemp("flow")
    warehouse = tmp / "published" / "loyalty.duckdb"
    env = _flow_env(tmp)
    first = _run_flow(nights[2], warehouse, _as_of(2), env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    first_summary = json.loads((warehouse.parent / SUMMARY_FILE).read_text())

    reader = duckdb.connect(str(warehouse), read_only=True)
    before = reader.execute("select as_of_date, built_at from audit.build_info").fetchone()
    lock = build_path(warehouse).parent / "build.lock"
    holder = lock.open("w")
    fcntl.flock(holder, fcntl.LOCK_EX)  # another build is running ...
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty", "run", "--raw-dir", str(nights[3]), "--warehouse", str(warehouse),
         "--as-of", _as_of(3)],
        cwd=PROJECT_DIR,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    lines: list[str] = []
    collector = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    collector.start()
    deadline = time.time() + 300
    while not any(" - Retry 1/" in line for line in lines) and time.time() < deadline:
        time.sleep(0.5)  # ... until this night's lock task has failed once and waits to retry
    fcntl.flock(holder, fcntl.LOCK_UN)
    holder.close()
    process.wait(timeout=900)
    collector.join(timeout=10)
    output = "".join(lines)
    during = reader.execute("select as_of_date, built_at from audit.build_info").fetchone()
    reader.close()
    return {
        "warehouse": warehouse,
        "tmp": tmp,
        "first_summary": first_summary,
        "returncode": process.returncode,
        "output": output,
        "reader_before": before,
        "reader_after": during,
    }


def test_the_flow_publishes_the_warehouse_its_docs_and_a_report(two_nights: dict) -> None:
    warehouse: Path = two_nights["warehouse"]
    assert two_nights["returncode"] == 0, two_nights["output"][-4000:]
    assert "Flow run" in two_nights["output"] and "Finished in state Completed()" in two_nights["output"]
    assert query(warehouse, "select as_of_date, build_mode from audit.build_info") == [
        (date.fromisoformat(_as_of(3)), "incremental")
    ]
    assert query(warehouse, "select count(*) > 1000 from marts.customer_lifetime_value") == [(True,)]
    # dbt docs: one static page; GX Data Docs; the run summary
    docs = (warehouse.parent / "docs" / "index.html").read_text()
    assert len(docs) > 100_000 and "customer_lifetime_value" in docs
    assert (warehouse.parent / "validation" / "data_docs" / "index.html").is_file()
    summary = json.loads((warehouse.parent / SUMMARY_FILE).read_text())
    assert summary["status"] == "published" and summary["mode"] == "incremental" and summary["as_of"] == _as_of(3)
    assert summary["validation"]["passed"] is True
    assert set(summary["kpis"]) == {
        "customers", "repurchase_ratio", "upsell_rate", "nps_last_12_months", "mean_predicted_clv",
        "net_revenue_as_of_month",
    }  # fmt: skip
    assert summary["kpis"]["customers"] == query(warehouse, "select count(*) from marts.customer_lifetime_value")[0][0]
    assert summary["previous_as_of"] == _as_of(2)
    change = summary["changes_since_previous_night"]["kpis.customers"]
    assert change["previous"] == two_nights["first_summary"]["kpis"]["customers"]
    assert change["change"] == change["now"] - change["previous"]
    assert (
        summary["rows_per_mart"]["marts.fct_orders"] == query(warehouse, "select count(*) from marts.fct_orders")[0][0]
    )
    assert json.loads((warehouse.parent / PUBLISHED_SUMMARY_FILE).read_text()) == summary
    assert len(list((warehouse.parent / "runs").glob("*_published.json"))) == 2


def test_the_flow_leaves_a_markdown_artifact_in_prefect(two_nights: dict) -> None:
    database = two_nights["tmp"] / "prefect" / "prefect.db"
    with sqlite3.connect(database) as con:
        artifacts = con.execute("select key, type, data from artifact where key = 'loyalty-nightly-report'").fetchall()
    assert len(artifacts) == 2
    assert {a[1] for a in artifacts} == {"markdown"}
    assert any(f"night of {_as_of(3)}: PUBLISHED" in a[2] for a in artifacts)


def test_a_held_lock_is_waited_for_with_retries(two_nights: dict) -> None:
    output = two_nights["output"]
    assert "another build of" in output and " - Retry 1/" in output  # the lock task failed, then retried
    assert two_nights["returncode"] == 0


def test_a_reader_holding_the_file_neither_blocks_the_night_nor_sees_it(two_nights: dict) -> None:
    """The reader opened the file before the night and kept it open throughout: the night published anyway, and
    the reader still saw the previous night, whole; a new connection sees the new night."""
    before, after = two_nights["reader_before"], two_nights["reader_after"]
    assert before == after and before[0] == date.fromisoformat(_as_of(2))
    assert query(two_nights["warehouse"], "select as_of_date from audit.build_info") == [
        (date.fromisoformat(_as_of(3)),)
    ]


# ------------------------------------------------------------------------------------------------ failures


@pytest.fixture(scope="module")
def published(nights: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Night 2 published by the night's steps (no Prefect), for the failure tests to break night 3 on."""
    warehouse = tmp_path_factory.mktemp("failures") / "loyalty.duckdb"
    settings = config.resolve(
        raw_dir=str(nights[2]), warehouse=str(warehouse), as_of=_as_of(2), thresholds=Thresholds(min_night_volume=0)
    )
    run_night(settings, quiet=True, docs=False, dbt_tests=False)
    return warehouse


def _assert_untouched_then_recovers(warehouse: Path, before: tuple, raw: Path) -> None:
    """The published file is the one from before the failed night, and the next night (the same steps, without
    dbt's own tests to keep the suite short) cleans up after it and publishes."""
    assert _fingerprint(warehouse) == before
    assert query(warehouse, "select as_of_date from audit.build_info") == [(date.fromisoformat(_as_of(2)),)]
    settings = config.resolve(
        raw_dir=str(raw), warehouse=str(warehouse), as_of=_as_of(3), thresholds=Thresholds(min_night_volume=0)
    )
    _, report, _ = run_night(settings, quiet=True, docs=False, dbt_tests=False)
    assert report.status == "published"
    assert query(warehouse, "select as_of_date from audit.build_info") == [(date.fromisoformat(_as_of(3)),)]


def _copy_of(published: Path, tmp: Path) -> Path:
    warehouse = tmp / "wh" / "loyalty.duckdb"
    warehouse.parent.mkdir()
    shutil.copy2(published, warehouse)
    shutil.copy2(published.parent / PUBLISHED_SUMMARY_FILE, warehouse.parent / PUBLISHED_SUMMARY_FILE)
    return warehouse


def test_a_failing_dbt_model_fails_the_flow_and_the_failure_hook_writes_the_summary(
    nights: list[Path], published: Path, tmp_path: Path
) -> None:
    warehouse = _copy_of(published, tmp_path)
    before = _fingerprint(warehouse)
    env = _flow_env(tmp_path, LOYALTY_DBT_VARS='{"loyalty_fail_model": "customer_lifetime_value"}')
    result = _run_flow(nights[3], warehouse, _as_of(3), env)
    assert result.returncode == 2
    # (Prefect's temporary server logs its stop after the CLI's last line)
    assert any(line.startswith("error: dbt build failed") for line in result.stderr.splitlines()), result.stderr[-3000:]
    assert "injected failure in model customer_lifetime_value" in result.stdout + result.stderr
    summary = json.loads((warehouse.parent / SUMMARY_FILE).read_text())
    assert (summary["status"], summary["failed_step"]) == ("failed", "dbt_build")
    assert summary["error"].startswith("dbt build failed")
    assert len(list((warehouse.parent / "runs").glob("*_failed.json"))) == 1
    _assert_untouched_then_recovers(warehouse, before, nights[3])


def test_a_failed_expectation_stops_publication(nights: list[Path], published: Path, tmp_path: Path) -> None:
    warehouse = _copy_of(published, tmp_path)
    before = _fingerprint(warehouse)
    result = run_cli("build", "--quiet", "--raw-dir", str(nights[3]), "--warehouse", str(warehouse), "--as-of",
                     _as_of(3), "--max-quarantine-rate", "0")  # fmt: skip
    assert result.returncode == 2
    assert "checks.quarantine_rate" in result.stderr and "not published" in result.stderr
    summary = json.loads((warehouse.parent / SUMMARY_FILE).read_text())
    assert (summary["status"], summary["failed_step"]) == ("failed", "validate")
    assert summary["validation"]["passed"] is False
    _assert_untouched_then_recovers(warehouse, before, nights[3])


@pytest.mark.parametrize("step", ["dbt_build", "validate"])
def test_a_night_killed_with_sigkill_leaves_the_last_good_warehouse(
    nights: list[Path], published: Path, tmp_path: Path, step: str
) -> None:
    """kill -9 of the whole night (process group) while dbt builds, or while GX validates: the published file is
    untouched, the leftovers (build copy, lock) do not stop the next night, which publishes."""
    warehouse = _copy_of(published, tmp_path)
    before = _fingerprint(warehouse)
    marker = {"dbt_build": build_path(warehouse), "validate": warehouse.parent / "validation"}[step]
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty", "build", "--quiet", "--no-docs", "--raw-dir", str(nights[3]),
         "--warehouse", str(warehouse), "--as-of", _as_of(3)],
        cwd=PROJECT_DIR,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}, "LOYALTY_MIN_NIGHT_VOLUME": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # well inside the step
    assert process.poll() is None, "the night ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert _fingerprint(warehouse) == before
    _assert_untouched_then_recovers(warehouse, before, nights[3])


def test_landing_not_ready_is_retryable_and_says_why(nights: list[Path], tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(nights[1], raw)
    settings = config.resolve(raw_dir=str(raw), warehouse=str(tmp_path / "loyalty.duckdb"), as_of=_as_of(1))
    (raw / "orders" / f"{_as_of(1)}.csv").touch()  # just written
    with pytest.raises(LandingNotReady, match=r"was modified 0 s ago: still being written"):
        plan_night(settings, settle_seconds=60)
    shutil.rmtree(raw / "orders")
    with pytest.raises(LandingNotReady, match=r"required file orders\.csv .* is missing"):
        plan_night(settings)


# ------------------------------------------------------------------------------------------------ incremental


@pytest.fixture(scope="module")
def night_by_night(nights: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """Nights 0..3 built one after the other into one warehouse (the first full, then incremental)."""
    warehouse = tmp_path_factory.mktemp("nightly") / "loyalty.duckdb"
    plans = []
    for k, raw in enumerate(nights):
        settings = config.resolve(raw_dir=str(raw), warehouse=str(warehouse), as_of=_as_of(k))
        _, report, plan = run_night(settings, quiet=True, docs=False, validate=False, dbt_tests=False)
        plans.append((plan.mode, plan.reasons, report.steps_seconds))
    return warehouse, plans


def test_nights_after_the_first_are_incremental(night_by_night: tuple[Path, list], nights: list[Path]) -> None:
    warehouse, plans = night_by_night
    assert [p[0] for p in plans] == ["full", "incremental", "incremental", "incremental"]
    # an incremental night read only its own day's batch of the large entities
    new = query(warehouse, "select entity, batch from audit.landed_batches where is_new_tonight order by 1, 2")
    assert [b for e, b in new if e in INCREMENTAL_ENTITIES] == [
        f"{e}/{_as_of(3)}.csv" for e in sorted(INCREMENTAL_ENTITIES)
    ]


def test_incremental_nights_equal_one_full_refresh(
    night_by_night: tuple[Path, list], nights: list[Path], tmp_path: Path
) -> None:
    incremental, _ = night_by_night
    full = tmp_path / "full" / "loyalty.duckdb"
    settings = config.resolve(raw_dir=str(nights[-1]), warehouse=str(full), as_of=_as_of(NIGHTS))
    _, _, plan = run_night(settings, quiet=True, docs=False, validate=False, dbt_tests=False)
    assert plan.mode == "full"
    differences = _marts_differences(incremental, full)
    assert {t: d for t, d in differences.items() if d != (0, 0)} == {}
    # and the data is not trivially equal: the nights brought orders, lines and refunds
    assert query(full, "select count(*) from marts.fct_orders where order_date > date '2026-10-28'")[0][0] > 10


def test_the_same_night_twice_gives_the_same_marts(night_by_night: tuple[Path, list], nights: list[Path]) -> None:
    warehouse, _ = night_by_night
    again = warehouse.parent / "again" / "loyalty.duckdb"
    again.parent.mkdir()
    shutil.copy2(warehouse, again)
    settings = config.resolve(raw_dir=str(nights[-1]), warehouse=str(again), as_of=_as_of(NIGHTS))
    _, _, plan = run_night(settings, quiet=True, docs=False, validate=False, dbt_tests=False)
    assert plan.mode == "incremental" and not plan.reasons
    assert {t: d for t, d in _marts_differences(warehouse, again).items() if d != (0, 0)} == {}


def test_a_changed_old_batch_or_a_late_one_forces_a_full_rebuild(
    night_by_night: tuple[Path, list], nights: list[Path], tmp_path: Path
) -> None:
    warehouse, _ = night_by_night
    raw = tmp_path / "raw"
    shutil.copytree(nights[-1], raw, copy_function=shutil.copy)  # new modification times: every batch "changed"
    settings = config.resolve(raw_dir=str(raw), warehouse=str(warehouse), as_of=_as_of(NIGHTS))
    plan = plan_night(settings)
    assert plan.mode == "full"
    assert any("changed since it was loaded" in r for r in plan.reasons), plan.reasons
    late = tmp_path / "late"
    shutil.copytree(nights[-1], late, copy_function=os.link)
    (late / "orders" / "2026-10-01.csv").write_text((late / "orders" / f"{_as_of(3)}.csv").read_text().splitlines()[0])
    plan = plan_night(config.resolve(raw_dir=str(late), warehouse=str(warehouse), as_of=_as_of(NIGHTS)))
    assert plan.mode == "full"
    assert plan.reasons == (f"orders/2026-10-01.csv arrived after orders/{_as_of(3)}.csv but sorts before it",)

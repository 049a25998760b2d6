"""The nightly run as the real Prefect flow end to end (`loyalty run`, its own ephemeral Prefect server): the
published warehouse, its dbt docs, the GX Data Docs, the run summary and the Prefect artifact; atomic publication
under a reader holding the file and a lock held by another build; landing data not ready. Data: a small generated
shop split into daily batches (loyalty.batches), as nightly extracts land."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import PROJECT_DIR, query
from nightly_support import as_of, flow_env

from loyalty import config
from loyalty.config import Thresholds
from loyalty.nightly import run_night
from loyalty.planning import LandingNotReady, plan_night
from loyalty.report import PUBLISHED_SUMMARY_FILE, SUMMARY_FILE
from loyalty.workspace import build_path

# ------------------------------------------------------------------------------------------------ the real flow


@pytest.fixture(scope="module")
def two_nights(nights: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Night 2 published by the night's steps without Prefect (`loyalty build`'s path, to keep the suite short), then
    night 3 by the real flow while a BI reader holds the published file open read-only and reads it every 0.2 s
    throughout (before, during and after the publication), and another build holds the lock for the first
    seconds."""
    tmp = tmp_path_factory.mktemp("flow")
    warehouse = tmp / "published" / "loyalty.duckdb"
    env = flow_env(tmp)
    settings = config.resolve(
        raw_dir=str(nights[2]), warehouse=str(warehouse), as_of=as_of(2), thresholds=Thresholds(min_night_volume=0)
    )
    run_night(settings, quiet=True, docs=False, dbt_tests=False)
    first_summary = json.loads((warehouse.parent / SUMMARY_FILE).read_text())

    reader = duckdb.connect(str(warehouse), read_only=True)
    before = reader.execute("select as_of_date, built_at from audit.build_info").fetchone()
    published_inode = warehouse.stat().st_ino
    reads: list[tuple[int, tuple]] = []  # (the inode the published path had just before, what the reader read)
    done = threading.Event()

    def keep_reading() -> None:
        cursor = reader.cursor()
        while not done.is_set():
            inode = warehouse.stat().st_ino
            reads.append((inode, cursor.execute(READER_SQL).fetchone()))
            time.sleep(0.2)

    reading = threading.Thread(target=keep_reading, daemon=True)
    reading.start()
    lock = build_path(warehouse).parent / "build.lock"
    holder = lock.open("w")
    fcntl.flock(holder, fcntl.LOCK_EX)  # another build is running ...
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty", "run", "--raw-dir", str(nights[3]), "--warehouse", str(warehouse),
         "--as-of", as_of(3)],
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
    done.set()
    reading.join(timeout=30)
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
        "reads": reads,
        "published_inode": published_inode,
    }


# what the BI reader reads: the night's date and build time, and a mart's rows and total
READER_SQL = (
    "select (select as_of_date from audit.build_info), (select built_at from audit.build_info),"
    " count(*), sum(net_revenue) from marts.fct_orders"
)


def test_the_flow_publishes_the_warehouse_its_docs_and_a_report(two_nights: dict) -> None:
    warehouse: Path = two_nights["warehouse"]
    assert two_nights["returncode"] == 0, two_nights["output"][-4000:]
    assert "Flow run" in two_nights["output"] and "Finished in state Completed()" in two_nights["output"]
    assert query(warehouse, "select as_of_date, build_mode from audit.build_info") == [
        (date.fromisoformat(as_of(3)), "incremental")
    ]
    assert query(warehouse, "select count(*) > 1000 from marts.customer_lifetime_value") == [(True,)]
    # dbt docs: one static page; GX Data Docs; the run summary
    docs = (warehouse.parent / "docs" / "index.html").read_text()
    assert len(docs) > 100_000 and "customer_lifetime_value" in docs
    assert (warehouse.parent / "validation" / "data_docs" / "index.html").is_file()
    summary = json.loads((warehouse.parent / SUMMARY_FILE).read_text())
    assert summary["status"] == "published" and summary["mode"] == "incremental" and summary["as_of"] == as_of(3)
    assert summary["validation"]["passed"] is True
    assert set(summary["kpis"]) == {
        "customers", "repurchase_ratio", "upsell_rate", "nps_last_12_months", "mean_predicted_clv",
        "net_revenue_as_of_month",
    }  # fmt: skip
    assert summary["kpis"]["customers"] == query(warehouse, "select count(*) from marts.customer_lifetime_value")[0][0]
    assert summary["previous_as_of"] == as_of(2)
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
    assert [(a[0], a[1]) for a in artifacts] == [("loyalty-nightly-report", "markdown")]
    assert f"night of {as_of(3)}: PUBLISHED" in artifacts[0][2]


def test_the_flows_progress_is_on_the_terminal_and_in_prefects_logs(two_nights: dict) -> None:
    """Under Prefect the night's progress lines are log lines of the flow run: on the terminal (Prefect's console)
    and in Prefect's own logs; the summary `loyalty run` prints lists every step with its duration."""
    output = two_nights["output"]
    steps = ("lock", "plan", "prepare_build_copy", "dbt_build", "validate", "docs", "report", "publish")
    for step in steps:
        assert re.search(rf"Flow run '[^']+' - \[\+\d:\d\d:\d\d\] {step}: started", output), step
        assert re.search(rf"\] {step}: done in \d+\.\d s", output), step
    counts = [(int(a), int(b)) for a, b in re.findall(r"\] dbt_build: (\d+) of (\d+) dbt nodes done\n", output)]
    assert len(counts) >= 5 and counts[-1][0] == counts[-1][1] > 100
    with sqlite3.connect(two_nights["tmp"] / "prefect" / "prefect.db") as con:
        logged = [row[0] for row in con.execute("select message from log order by timestamp")]
    assert any(
        re.fullmatch(r"\[\+\d:\d\d:\d\d\] dbt_build: done in \d+\.\d s, (\d+) of \1 dbt nodes done", m) for m in logged
    )
    summary = output[output.index("warehouse published:") :].splitlines()
    block = summary[summary.index("steps (seconds):") + 1 :][: len(steps)]
    assert [line.split()[0] for line in block] == list(steps)
    assert all(float(line.split()[-1]) >= 0 for line in block)


def test_a_held_lock_is_waited_for_with_retries(two_nights: dict) -> None:
    output = two_nights["output"]
    assert "another build of" in output and " - Retry 1/" in output  # the lock task failed, then retried
    assert two_nights["returncode"] == 0


def test_a_reader_holding_the_file_neither_blocks_the_night_nor_sees_it(two_nights: dict) -> None:
    """The reader opened the file before the night and read it every 0.2 s throughout: the night published anyway,
    and every read, also those after the published path had become the new night's file, gave the previous
    night's rows, whole; a new connection sees the new night."""
    warehouse: Path = two_nights["warehouse"]
    before, after = two_nights["reader_before"], two_nights["reader_after"]
    assert before == after and before[0] == date.fromisoformat(as_of(2))
    reads = two_nights["reads"]
    seen = {row for _, row in reads}
    assert len(seen) == 1 and next(iter(seen))[:2] == before  # one answer, night 2's, all night long
    old_orders = next(iter(seen))[2]
    assert len(reads) > 50  # the reads spanned the night (a minute or more of Prefect, dbt, GX and docs)
    after_swap = [row for inode, row in reads if inode != two_nights["published_inode"]]
    assert after_swap, "no read after the publication: the reader was not tested across the swap"
    new = query(warehouse, READER_SQL)[0]
    assert new[0] == date.fromisoformat(as_of(3)) and new[1] > before[1]
    assert new[2] > old_orders  # night 3's orders, seen by a new connection only


def test_landing_not_ready_is_retryable_and_says_why(nights: list[Path], tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(nights[1], raw)
    settings = config.resolve(raw_dir=str(raw), warehouse=str(tmp_path / "loyalty.duckdb"), as_of=as_of(1))
    (raw / "orders" / f"{as_of(1)}.csv").touch()  # just written
    with pytest.raises(LandingNotReady, match=r"was modified 0 s ago: still being written"):
        plan_night(settings, settle_seconds=60)
    shutil.rmtree(raw / "orders")
    with pytest.raises(LandingNotReady, match=r"required file orders\.csv .* is missing"):
        plan_night(settings)

"""Faults beyond kill -9, with real nights (``loyalty build`` and ``run_night``: real DuckDB, dbt and file systems,
nothing mocked): two builds of one warehouse at once, and a full disk while the night builds and while it
publishes, on a small tmpfs mounted as the warehouse folder (skipped where mounting is not permitted). A reader
holding the published file through a whole night is in test_nightly_flow.py (the real flow). Data: a 300-customer
shop in two nights; dbt's own tests and the GX checkpoint are off (they are not the subject)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import query, run_cli
from nightly_support import fingerprint

from loyalty import config
from loyalty.batches import split_by_day
from loyalty.errors import LoyaltyError
from loyalty.generator import generate
from loyalty.nightly import run_night
from loyalty.publication import publish
from loyalty.report import SUMMARY_FILE, NightReport
from loyalty.workspace import DiskFull, build_path

LAST_DAY = date(2026, 10, 31)
DISK = "64M"  # the published warehouse (~10 MB), a build copy (~10 MB), dbt's target and logs (~8 MB), docs


def as_of(night: int) -> str:
    return (LAST_DAY - timedelta(days=1 - night)).isoformat()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 300-customer shop: shop[0] its history up to the day before LAST_DAY, shop[1] with LAST_DAY's batch."""
    raw = tmp_path_factory.mktemp("faults_shop")
    generate(raw, 300, seed=5, progress=False, force=True)
    return split_by_day(raw, tmp_path_factory.mktemp("faults_split") / "out", LAST_DAY, 1)


def settings_for(shop: list[Path], warehouse: Path, night: int) -> config.Settings:
    return config.resolve(raw_dir=str(shop[night]), warehouse=str(warehouse), as_of=as_of(night), threads="2")


def night(shop: list[Path], warehouse: Path, number: int, **options: bool) -> NightReport:
    """One night of the project's own steps; the checkpoint and dbt's tests off, docs off unless asked for."""
    options = {"docs": False, **options}
    _, report, _ = run_night(
        settings_for(shop, warehouse, number), quiet=True, validate=False, dbt_tests=False, **options
    )
    return report


@pytest.fixture(scope="module")
def published(shop: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Night 0 published on an ordinary disk, installed afresh on each test's own (small) file system."""
    warehouse = tmp_path_factory.mktemp("faults_published") / "loyalty.duckdb"
    night(shop, warehouse, 0)
    return warehouse


def install(published: Path, folder: Path) -> Path:
    """The published night 0 and its summaries in ``folder``, as a warehouse folder that has seen one night."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("loyalty.duckdb", "published_summary.json", SUMMARY_FILE):
        shutil.copy2(published.parent / name, folder / name)
    return folder / "loyalty.duckdb"


def readable_state(warehouse: Path) -> tuple:
    """The file (inode, size, mtime) and what a reader gets from it: the night's date and its orders."""
    rows = query(warehouse, "select (select as_of_date from audit.build_info), count(*) from marts.fct_orders")
    return fingerprint(warehouse), rows


def records(warehouse: Path, status: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((warehouse.parent / "runs").glob(f"*_{status}.json"))]


def wait_for(condition, what: str, seconds: float = 300) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Background:
    """A night in a thread of this process (run_night as `loyalty build` runs it), its outcome kept."""

    def __init__(self, target) -> None:  # noqa: ANN001
        self.report: NightReport | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(target,), daemon=True)
        self.thread.start()

    def _run(self, target) -> None:  # noqa: ANN001
        try:
            self.report = target()
        except BaseException as exc:  # noqa: BLE001 - kept for the test to assert on
            self.error = exc

    def join(self) -> None:
        self.thread.join(timeout=600)
        assert not self.thread.is_alive(), "the night did not end"


def running_step(warehouse: Path) -> str | None:
    """The step of the night in progress, from its running record (None while there is none)."""
    for record in records(warehouse, "running"):
        return record["step"] or "begun"
    return None


# ------------------------------------------------------------------------------------------------ two at once


def test_two_builds_at_once_the_second_stops_at_once_with_one_line_and_the_first_publishes(
    shop: list[Path], published: Path, tmp_path: Path
) -> None:
    warehouse = install(published, tmp_path / "wh")
    summary_before = (warehouse.parent / SUMMARY_FILE).read_text()
    first = Background(lambda: night(shop, warehouse, 1))
    wait_for(lambda: running_step(warehouse) in ("prepare_build_copy", "dbt_build"), "the first night's build")

    began = time.monotonic()
    second = run_cli(
        "build", "--quiet", "--no-docs", "--raw-dir", str(shop[1]), "--warehouse", str(warehouse), "--as-of", as_of(1)
    )
    seconds = time.monotonic() - began
    first_still_running = first.thread.is_alive() and running_step(warehouse) is not None
    summary_meanwhile = (warehouse.parent / SUMMARY_FILE).read_text()
    first.join()

    lock = build_path(warehouse).parent / "build.lock"
    assert second.returncode == 2
    assert second.stderr.splitlines() == [f"error: another build of {warehouse} is running (lock {lock})"]
    assert second.stdout == ""
    assert first_still_running, "the first night ended before the second was refused: the lock was not tested"
    assert seconds < 60, seconds  # it did not wait for the first (a Python start and the lock)
    # the refused night records itself in runs/ only: run_summary.json stayed the night before's
    assert summary_meanwhile == summary_before
    [refused] = records(warehouse, "failed")
    assert (refused["failed_step"], refused["error"]) == (
        None,
        f"another build of {warehouse} is running (lock {lock})",
    )

    assert first.error is None, first.error
    assert first.report is not None and (first.report.status, first.report.mode) == ("published", "incremental")
    assert query(warehouse, "select as_of_date from audit.build_info") == [(date.fromisoformat(as_of(1)),)]
    assert json.loads((warehouse.parent / SUMMARY_FILE).read_text())["started_at"] == first.report.started_at
    assert records(warehouse, "running") == [] and records(warehouse, "killed") == []
    assert [r["started_at"] for r in records(warehouse, "published")] == [first.report.started_at]


# ------------------------------------------------------------------------------------------------ a full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK bytes of its own, to fill without filling the machine's disk."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"a full disk needs a small file system: `mount -t tmpfs` is not permitted here ({mounted.stderr})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Allocate all but ``leave`` bytes of the file system (tmpfs allocates the pages at once), also while a night
    is writing to it (then the free space moves between looking and allocating: try again)."""
    filler = folder / "filler"
    with filler.open("ab") as handle:
        for _ in range(50):
            wanted = shutil.disk_usage(folder).free - leave
            if wanted <= 0:
                break
            try:
                os.posix_fallocate(handle.fileno(), os.fstat(handle.fileno()).st_size, wanted)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    assert filler.stat().st_size > 0
    return filler


def assert_failed_on_a_full_disk(warehouse: Path, before: tuple, message: str, step: str) -> None:
    """One line naming the full disk; the published night 0 untouched and readable; the failure recorded (the
    space set aside at the start made room for it), no night left running."""
    assert "\n" not in message and "no space left on device" in message, message
    assert message.endswith(f"nothing was published, {warehouse} is unchanged"), message
    assert readable_state(warehouse) == before
    [failed] = records(warehouse, "failed")
    assert (failed["failed_step"], failed["error"]) == (step, message)
    assert json.loads((warehouse.parent / SUMMARY_FILE).read_text())["status"] == "failed"
    assert records(warehouse, "running") == [] and records(warehouse, "published") == []
    assert list(warehouse.parent.rglob("*.partial")) == []


def assert_the_next_night_publishes(shop: list[Path], warehouse: Path, filler: Path) -> None:
    filler.unlink()  # the disk is freed
    report = night(shop, warehouse, 1)
    assert (report.status, report.mode, report.killed_nights) == ("published", "incremental", [])
    assert query(warehouse, "select as_of_date from audit.build_info") == [(date.fromisoformat(as_of(1)),)]
    assert records(warehouse, "running") == [] and len(records(warehouse, "published")) == 1


@pytest.mark.parametrize(
    ("full_refresh", "leave_mib", "step"),
    [
        # with 12 MiB the fixture's build copy fits (since issue 14's leaner build) and the GX checkpoint runs out
        # writing its Data Docs beside the warehouse: the child's "No space left on device" is the same one line
        (True, 12, "validate"),
        # dbt's own target and logs fill it before there is a build copy to delete: only the space the night set
        # aside at its start leaves room for the failure record
        (True, 2, "dbt_build"),
        (False, 4, "prepare_build_copy"),  # an incremental night's copy of the published file does not fit
    ],
)
def test_a_full_disk_during_the_build_is_one_line_and_the_published_warehouse_stays(
    shop: list[Path], published: Path, small_disk: Path, full_refresh: bool, leave_mib: int, step: str
) -> None:
    warehouse = install(published, small_disk)
    before = readable_state(warehouse)
    filler = fill(small_disk, leave=leave_mib * 2**20)
    assert shutil.disk_usage(small_disk).free <= leave_mib * 2**20
    result = run_cli(
        "build", "--quiet", "--no-docs", "--raw-dir", str(shop[1]), "--warehouse", str(warehouse),
        "--as-of", as_of(1), *(["--full-refresh"] if full_refresh else []),
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.splitlines()  # one line, no traceback, not dbt's 40 lines of its logger failing
    assert len(lines) == 1, result.stderr[-3000:]
    [line] = lines
    assert line.startswith("error: ")
    if step == "dbt_build":
        assert line.startswith("error: dbt build failed (exit ")
    else:
        assert line.startswith(f"error: no space left on device during step {step} (writing ")
    assert_failed_on_a_full_disk(warehouse, before, line.removeprefix("error: "), step)
    assert_the_next_night_publishes(shop, warehouse, filler)


def test_a_disk_that_fills_while_the_night_publishes_fails_the_night_not_the_published_warehouse(
    shop: list[Path], published: Path, small_disk: Path
) -> None:
    """The build passed; the disk fills as the night starts on what it publishes (the docs, then the report
    files, all written before the rename): the night fails with one line and publishes nothing."""
    warehouse = install(published, small_disk)
    before = readable_state(warehouse)
    tonight = Background(lambda: night(shop, warehouse, 1, docs=True))
    wait_for(lambda: running_step(warehouse) == "docs" or not tonight.thread.is_alive(), "the docs step")
    filler = fill(small_disk)
    tonight.join()
    assert isinstance(tonight.error, LoyaltyError), tonight.error
    assert_failed_on_a_full_disk(warehouse, before, str(tonight.error), "docs")
    assert not (warehouse.parent / "docs").exists()
    assert_the_next_night_publishes(shop, warehouse, filler)


def test_publication_itself_on_a_full_disk_renames_nothing(
    shop: list[Path], published: Path, small_disk: Path, tmp_path: Path
) -> None:
    """``publish`` on a disk with no byte left: the report files it must write first do not fit, so the build copy
    is not swapped in; with room again the same call publishes the warehouse and its report."""
    next_night = tmp_path / "next" / "loyalty.duckdb"  # night 1, built on an ordinary disk: tonight's build copy
    next_night.parent.mkdir()
    shutil.copy2(published, next_night)
    night(shop, next_night, 1)
    warehouse = install(published, small_disk)
    before = readable_state(warehouse)
    build_path(warehouse).parent.mkdir()
    shutil.copy2(next_night, build_path(warehouse))
    settings = settings_for(shop, warehouse, 1)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    report = NightReport("published", str(warehouse), str(shop[1]), as_of(1), now, now, mode="incremental")
    filler = fill(small_disk)
    assert shutil.disk_usage(small_disk).free == 0

    with pytest.raises(OSError) as failed:
        publish(settings, None, report)
    assert failed.value.errno == errno.ENOSPC
    assert readable_state(warehouse) == before
    assert build_path(warehouse).is_file() and list(small_disk.rglob("*.partial")) == []
    assert records(warehouse, "published") == []
    assert json.loads((small_disk / SUMMARY_FILE).read_text())["as_of"] == as_of(0)

    filler.unlink()
    publish(settings, None, report)
    assert query(warehouse, "select as_of_date from audit.build_info") == [(date.fromisoformat(as_of(1)),)]
    assert not build_path(warehouse).exists()
    assert json.loads((small_disk / SUMMARY_FILE).read_text()) == report.to_dict()
    assert [r["started_at"] for r in records(warehouse, "published")] == [now]


def test_a_night_refuses_to_start_on_a_disk_with_no_room_for_its_record(
    shop: list[Path], published: Path, small_disk: Path
) -> None:
    warehouse = install(published, small_disk)
    before = readable_state(warehouse)
    (small_disk / ".build").mkdir()
    filler = fill(small_disk, leave=64 * 2**10)  # less than the space a night sets aside for its last record
    with pytest.raises(DiskFull, match=r"^no space left on device to start the night \(0\.\d MiB free in "):
        night(shop, warehouse, 1)
    assert readable_state(warehouse) == before and records(warehouse, "running") == []
    assert_the_next_night_publishes(shop, warehouse, filler)

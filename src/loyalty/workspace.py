"""The night's work folder, ``.build/`` beside the published warehouse, and what happens in it before publication.

BI tools read the published file (LOYALTY_WAREHOUSE). A night builds a copy in ``.build/`` under the same file name
(DuckDB names the catalog after the file, and views refer to it); ``loyalty.publication`` swaps it in. This module
owns the folder's layout (build copy, dbt's target and logs, landing files, staged docs), the build lock (one night
per warehouse at a time), the build copy itself, the clean-up after a dead night, the disk space set aside for the
night's last record, and the storage format a build copy must be in.

    <warehouse folder>/loyalty.duckdb            the published warehouse (loyalty.publication)
    <warehouse folder>/.build/loyalty.duckdb     tonight's build copy
    <warehouse folder>/.build/target/, logs/     dbt's target folder and logs
    <warehouse folder>/.build/landing/           clean copies of raw files the landing check made (loyalty.landing)
    <warehouse folder>/.build/build.lock         the build lock (an OS lock: a killed night releases it)
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb

from loyalty.config import Settings
from loyalty.errors import LoyaltyError
from loyalty.landing import discard_landing_files

DOCS_FOLDER = "docs"
STAGED_DOCS_FILE = "docs_index.html"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
RESERVE_FILE = "record_space.reserve"  # in the work folder: room for the night's last record on a full disk
RESERVE_BYTES = 2**20  # a failure record is a few KB (up to ~100 KB with a failed checkpoint), twice


class BuildLocked(LoyaltyError):
    """Another build of the same warehouse holds the lock (a retry later may succeed)."""


class DiskFull(LoyaltyError):
    """The file system of the warehouse (and of the build folder beside it) is full: the night stops and publishes
    nothing (publication renames only, after everything it needs was written)."""


# ------------------------------------------------------------------------------------------------ the layout


def build_path(warehouse: Path) -> Path:
    """Tonight's build copy of ``warehouse``."""
    return warehouse.parent / ".build" / warehouse.name


def work_dir(warehouse: Path) -> Path:
    """The work folder of ``warehouse``'s nights (``.build/``)."""
    return build_path(warehouse).parent


def dbt_target_dir(warehouse: Path) -> Path:
    """dbt's target folder for the builds of ``warehouse`` (manifest, compiled SQL, docs, semantic manifest)."""
    return work_dir(warehouse) / "target"


def dbt_log_dir(warehouse: Path) -> Path:
    return work_dir(warehouse) / "logs"


def landing_dir(warehouse: Path) -> Path:
    """Where the landing check writes clean copies of raw files for dbt to read (deleted after the build)."""
    return work_dir(warehouse) / "landing"


def staged_docs_path(warehouse: Path) -> Path:
    """Tonight's dbt docs (one HTML file) until publication."""
    return work_dir(warehouse) / STAGED_DOCS_FILE


def docs_path(warehouse: Path) -> Path:
    """The published dbt docs of ``warehouse``."""
    return warehouse.parent / DOCS_FOLDER / "index.html"


def free_space(path: Path) -> str:
    """``N MiB free in <folder>`` for the nearest existing folder of ``path`` (for a full disk's error line)."""
    while not path.exists():
        path = path.parent
    return f"{shutil.disk_usage(path).free / 2**20:,.1f} MiB free in {path}"


# ------------------------------------------------------------------------------------------------ the lock


@contextmanager
def build_lock(warehouse: Path) -> Iterator[None]:
    """One build per warehouse at a time: a second one stops with a clear error instead of writing into the
    first one's build copy. The lock is the OS's (flock): a killed build releases it."""
    lock_path = work_dir(warehouse) / "build.lock"
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


# ------------------------------------------------------------------------------------------------ the build copy


def prepare_build_copy(settings: Settings, incremental: bool) -> Path:
    """The file tonight's dbt builds into: a copy of the published warehouse for an incremental night (copied
    under a temporary name, then renamed, so a half-copied file is never taken for a build copy), nothing for a full
    one (dbt creates it)."""
    target = build_path(settings.warehouse)
    target.unlink(missing_ok=True)
    target.with_name(target.name + ".wal").unlink(missing_ok=True)
    if incremental:
        partial = target.with_name(target.name + ".copying")
        shutil.copyfile(settings.warehouse, partial)
        os.replace(partial, target)
    return target


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


# ------------------------------------------------------------------------------------------------ clean-up


def clean_up_after_a_dead_night(settings: Settings) -> None:
    """Remove what an earlier night left in the work folder if it failed or was killed: the build copy, its WAL,
    the landing files and staged docs. The published warehouse is never touched."""
    free_build_space(settings)
    discard_landing_files(landing_dir(settings.warehouse))


def free_build_space(settings: Settings) -> None:
    """Delete a failed night's build copy (with its WAL, a half-done copy and the staged docs) to make room on a
    full disk for its failure record; the next night would delete them anyway. The published warehouse stays."""
    target = build_path(settings.warehouse)
    for path in (
        target,
        target.with_name(target.name + ".wal"),
        target.with_name(target.name + ".copying"),
        staged_docs_path(settings.warehouse),
    ):
        path.unlink(missing_ok=True)


def reserve_space(settings: Settings) -> None:
    """Allocate ``RESERVE_BYTES`` in the work folder (replacing a dead night's), released for the night's last
    record."""
    reserve = work_dir(settings.warehouse) / RESERVE_FILE
    reserve.unlink(missing_ok=True)
    try:
        with reserve.open("wb") as handle:
            os.posix_fallocate(handle.fileno(), 0, RESERVE_BYTES)
    except OSError as exc:
        reserve.unlink(missing_ok=True)
        if exc.errno not in NO_SPACE:
            raise
        raise DiskFull(
            f"no space left on device to start the night ({free_space(reserve.parent)}): nothing was published,"
            f" {settings.warehouse} is unchanged"
        ) from exc


def release_space(settings: Settings) -> None:
    (work_dir(settings.warehouse) / RESERVE_FILE).unlink(missing_ok=True)

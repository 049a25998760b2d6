"""Shared fixtures. Builds are real: the loyalty CLI's build (landing check, dbt build into a DuckDB file,
publication), never a mock."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from loyalty import config
from loyalty.build import build

PROJECT_DIR = Path(__file__).resolve().parents[2]
FIXTURES = PROJECT_DIR / "tests" / "fixtures"
BAD_ROWS_DIR = FIXTURES / "raw_bad_rows"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m loyalty ...`` as a user would, without LOYALTY_* variables leaking in from the caller."""
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    return subprocess.run(
        [sys.executable, "-m", "loyalty", *args],
        cwd=cwd or PROJECT_DIR,
        env={**clean_env, **(env or {})},
        capture_output=True,
        text=True,
    )


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def build_warehouse(raw_dir: Path, warehouse: Path, as_of: str = "2024-12-31", **settings: str) -> Path:
    resolved = config.resolve(raw_dir=str(raw_dir), warehouse=str(warehouse), as_of=as_of, **settings)
    build(resolved, quiet=True)
    return warehouse


def expected_quarantine() -> list[tuple[str, str, str]]:
    with (BAD_ROWS_DIR / "expected_quarantine.csv").open(newline="") as handle:
        return sorted((r["entity"], r["record_key"], r["reason_code"]) for r in csv.DictReader(handle))


@pytest.fixture(scope="session")
def bundled_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The bundled default data built as a newcomer does (`loyalty run`, from another working directory, with a
    relative LOYALTY_WAREHOUSE), once per session: (published file, the CLI's completed process)."""
    workdir = tmp_path_factory.mktemp("elsewhere")
    result = run_cli("run", "--quiet", cwd=workdir, env={"LOYALTY_WAREHOUSE": "out/loyalty.duckdb"})
    return workdir / "out" / "loyalty.duckdb", result


@pytest.fixture(scope="session")
def bad_rows_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made fixture with one raw row per bad-input kind, built once."""
    return build_warehouse(BAD_ROWS_DIR, tmp_path_factory.mktemp("bad_rows") / "loyalty.duckdb")


@pytest.fixture
def raw_copy(tmp_path: Path) -> Path:
    """A writable copy of the bad-rows fixture to break in a test."""
    target = tmp_path / "raw"
    shutil.copytree(BAD_ROWS_DIR, target)
    (target / "expected_quarantine.csv").unlink()
    return target

"""Shared fixtures. Builds are real: the loyalty CLI's build (landing check, dbt build into a DuckDB file,
publication), never a mock."""

from __future__ import annotations

import csv
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest

from loyalty import config
from loyalty.config import Thresholds
from loyalty.nightly import run_night
from loyalty.report import BuildResult

# The email hash key file of the tests' builds (loyalty.email_hashing): a fresh one per test process, never the
# developer's own. Set before anything resolves settings; inherited by every CLI and dbt process the tests start.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="loyalty-tests-config-")

PROJECT_DIR = Path(__file__).resolve().parents[2]
FIXTURES = PROJECT_DIR / "tests" / "fixtures"
BAD_ROWS_DIR = FIXTURES / "raw_bad_rows"
# The hand-made fixture holds one raw row per bad-input kind and a few days of orders in early 2024: by design far
# beyond the night checks of the validation gate (quarantine rate, freshness, volume). Its builds run the gate with
# those checks opened up; every key, relationship, range and reconciliation expectation still applies.
FIXTURE_THRESHOLDS = Thresholds(max_quarantine_rate=1.0, freshness_days=10**9, min_night_volume=0.0, max_row_drop=1.0)
# Lines the fixture's files cannot hold in the repository (dbt parses every file under tests/ as UTF-8 text): added
# to each copy of the fixture that is built, at the end of loyalty_events.csv (lines 11 and 12).
UNREADABLE_LINES = (
    b"L11,C1,2024-02-05T10:00:00Z,tier_changed,,s\xe9lver\n"  # a Latin-1 byte: invalid_encoding
    b"L12,C1,2024-02-05T11:00:00Z,points_earned,1\x002,\n"  # a NUL byte: control_character
)


def copy_bad_rows(target: Path) -> Path:
    """A copy of the bad-rows fixture as it is built, with UNREADABLE_LINES."""
    shutil.copytree(BAD_ROWS_DIR, target)
    (target / "expected_quarantine.csv").unlink()
    with (target / "loyalty_events.csv").open("ab") as handle:
        handle.write(UNREADABLE_LINES)
    return target


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


def markdown_table_rows(text: str) -> list[dict[str, str]]:
    """The rows of every markdown table in ``text``, as {header: cell} (README's and docs/metrics.md's tables)."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set("".join(cells)) <= set("-: "):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def build_warehouse(
    raw_dir: Path,
    warehouse: Path,
    as_of: str = "2024-12-31",
    thresholds: Thresholds = FIXTURE_THRESHOLDS,
    validate: bool = False,
    dbt_tests: bool = True,
    **settings: str,
) -> Path:
    resolved = config.resolve(
        raw_dir=str(raw_dir), warehouse=str(warehouse), as_of=as_of, thresholds=thresholds, **settings
    )
    run_night(resolved, quiet=True, docs=False, validate=validate, dbt_tests=dbt_tests)
    return warehouse


def expected_quarantine() -> list[tuple[str, str, str]]:
    with (BAD_ROWS_DIR / "expected_quarantine.csv").open(newline="") as handle:
        return sorted((r["entity"], r["record_key"], r["reason_code"]) for r in csv.DictReader(handle))


@pytest.fixture(scope="session")
def bundled_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The bundled default data built with the night's steps (`loyalty build`: the same steps as the Prefect flow
    of `loyalty run`, which tests/python/test_nightly.py runs), from another working directory with a relative
    LOYALTY_WAREHOUSE, once per session: (published file, the CLI's completed process)."""
    workdir = tmp_path_factory.mktemp("elsewhere")
    result = run_cli("build", "--quiet", cwd=workdir, env={"LOYALTY_WAREHOUSE": "out/loyalty.duckdb"})
    return workdir / "out" / "loyalty.duckdb", result


@pytest.fixture(scope="session")
def bundled(bundled_warehouse: tuple[Path, subprocess.CompletedProcess]) -> BuildResult:
    """The bundled build as a BuildResult: its row counts, reconciliation and GX validation result."""
    from loyalty.report import summarise
    from loyalty.validation import ValidationResult, output_dir_for

    warehouse, result = bundled_warehouse
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    validation = ValidationResult.from_dict(json.loads((output_dir_for(warehouse) / "result.json").read_text()))
    return BuildResult(warehouse, None, *summarise(warehouse), validation)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def bad_rows_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made fixture with one raw row per bad-input kind, built once."""
    base = tmp_path_factory.mktemp("bad_rows")
    return build_warehouse(copy_bad_rows(base / "raw"), base / "loyalty.duckdb")


@pytest.fixture
def raw_copy(tmp_path: Path) -> Path:
    """A writable copy of the bad-rows fixture to break in a test."""
    return copy_bad_rows(tmp_path / "raw")


@pytest.fixture(scope="session")
def nights(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The nightly tests' shop (nightly_support.make_nights): nights[k] is the raw folder as it stands on night k."""
    from nightly_support import make_nights

    return make_nights(tmp_path_factory)


# What builds a warehouse or starts a night, a Prefect server or the validation gate, in a test's code or in the code
# of a fixture it uses (directly or through other fixtures): such a test is marked full_build, and `make test-fast`
# runs the others. Read from the code at collection, so a new test is sorted without anyone marking it.
BUILDS = re.compile(
    r"\b(build_warehouse|run_night|run_flow|make_nights|validate|build|copy_and_build)\("
    r"|run_cli\(\s*\"(build|run|serve|validate|metrics)\""
    r"|\"loyalty\", \"(build|run|serve)\"|\"server\", \"start\"|loyalty_nightly\b"
)


def _source(function: object) -> str:
    try:
        return inspect.getsource(function)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        fixtures = definitions.name2fixturedefs if definitions is not None else {}
        functions = [getattr(item, "function", None)]
        functions += [fixture.func for name in getattr(item, "fixturenames", ()) for fixture in fixtures.get(name, ())]
        if any(BUILDS.search(_source(function)) for function in functions if function is not None):
            item.add_marker(pytest.mark.full_build)

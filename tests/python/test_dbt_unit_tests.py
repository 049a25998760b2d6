"""dbt's unit tests (``unit_tests:`` in the models' yml files), run once per test session instead of in every
night's ``dbt build`` (``loyalty.nightly.NIGHTLY_EXCLUDE``): they prove SQL logic, which does not change from night
to night. dbt needs the models' relations to exist (it reads the columns of a unit test's inputs), so they run on a
copy of the bundled build, with dbt's state in the copy's own work folder."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_DIR

from loyalty import config
from loyalty.dbt_runner import dbt_command
from loyalty.landing import check_landing
from loyalty.nightly import NIGHTLY_EXCLUDE
from loyalty.workspace import dbt_target_dir


def project_unit_tests() -> set[str]:
    """The unit tests the project declares, by name (from the yml files, not from dbt)."""
    found: set[str] = set()
    for path in (PROJECT_DIR / "models").rglob("*.yml"):
        found |= {test["name"] for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests") or []}
    return found


def run_unit_tests(warehouse: Path, **vars_: object) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """``dbt test --select test_type:unit`` on ``warehouse`` (more dbt vars in ``vars_``): dbt's completed process
    and each unit test's status (run_results.json), by the unit test's name."""
    settings = config.resolve(warehouse=str(warehouse))
    command, env = dbt_command(
        settings, check_landing(settings.raw_dir), "test", "--select", "test_type:unit", database=warehouse
    )  # on the copy itself, not on a build copy beside it (dbt_command's default), which does not exist
    at = command.index("--vars") + 1
    command[at] = json.dumps({**json.loads(command[at]), **vars_})
    result = subprocess.run(command, env=env, cwd=PROJECT_DIR, capture_output=True, text=True)
    results = json.loads((dbt_target_dir(warehouse) / "run_results.json").read_text())["results"]
    return result, {r["unique_id"].rsplit(".", 1)[-1]: r["status"] for r in results}


@pytest.fixture(scope="module")
def built_copy(bundled_warehouse: tuple[Path, subprocess.CompletedProcess], tmp_path_factory) -> Path:
    """A copy of the bundled build (the tests' dbt writes its own target folder beside it, never the build's)."""
    copy = tmp_path_factory.mktemp("unit_tests") / "loyalty.duckdb"
    shutil.copyfile(bundled_warehouse[0], copy)
    return copy


def test_the_night_leaves_the_unit_tests_to_the_test_suite() -> None:
    assert NIGHTLY_EXCLUDE == ("test_type:unit",)


def test_every_dbt_unit_test_passes(built_copy: Path) -> None:
    result, statuses = run_unit_tests(built_copy)
    declared = project_unit_tests()
    assert len(declared) >= 45
    assert set(statuses) == declared  # every unit test ran, and nothing else
    assert {name: status for name, status in statuses.items() if status != "pass"} == {}
    assert result.returncode == 0, result.stdout[-3000:]


def test_a_failing_unit_test_fails(built_copy: Path) -> None:
    """The check above can fail: under other settings (as-of date, currency, timezone) the unit tests that do not
    pin them get other rows than they expect, and dbt and the statuses say so."""
    result, statuses = run_unit_tests(
        built_copy, as_of_date="2001-01-01", reporting_currency="EUR", reporting_timezone="Asia/Tokyo"
    )
    assert result.returncode != 0
    assert "fail" in statuses.values()

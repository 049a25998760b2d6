"""`make test-fast` leaves out the tests marked full_build, which conftest.py finds in each test's code and its
fixtures': the tests that build a warehouse or start a night, a Prefect server or the validation gate."""

from __future__ import annotations

import subprocess
import sys

from conftest import PROJECT_DIR


def _collected(marker: str) -> set[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist", "-m", marker, "tests/python"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return {line.split("[")[0] for line in completed.stdout.splitlines() if "::" in line}


def test_tests_that_build_are_marked_and_the_others_are_not() -> None:
    building, fast = _collected("full_build"), _collected("not full_build")
    assert not building & fast
    for test in (
        "tests/python/test_scheduled_night.py::test_a_scheduled_night_runs_to_completed_and_publishes",  # its code
        "tests/python/test_marts.py::test_semantic_layer_nps_by_month_equals_the_mart",  # a session fixture's build
        "tests/python/test_nightly_incremental.py::test_nights_after_the_first_are_incremental",  # fixture chain
    ):
        assert test in building
    for test in (
        "tests/python/test_csv_records.py::test_every_line_the_scan_lets_through_is_one_record_to_duckdb",
        "tests/python/test_metrics_doc.py::test_every_definition_named_in_the_metrics_doc_exists",
        "tests/python/test_predictive_formulas.py::test_bgnbd_probability_alive_by_hand",
    ):
        assert test in fast
    assert len(fast) > 100 and len(building) > 50  # test functions (parametrised ones once)

"""Expected failures of the commands that start a night: a bad setting or raw data off the contract is one line on
stderr (``error: ...``), exit 2, before Prefect, dbt or GX start, with no traceback and no library noise (DuckDB
2.0's "nanobind: leaked ..." lines at exit). The processes are real CLI runs; nothing is mocked."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, run_cli

COMMANDS = ("run", "build", "serve", "check")


def _without_column(source: Path, target: Path, file: str, column: str) -> Path:
    shutil.copytree(source, target)
    with (source / file).open(newline="") as handle:
        rows = list(csv.reader(handle))
    index = rows[0].index(column)
    with (target / file).open("w", newline="") as handle:
        csv.writer(handle).writerows([value for i, value in enumerate(row) if i != index] for row in rows)
    return target


@pytest.fixture(scope="module")
def raw_without_currency(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _without_column(
        PROJECT_DIR / "data" / "default", tmp_path_factory.mktemp("raw") / "raw", "orders.csv", "currency"
    )


def _assert_one_error_line(completed, prefect_home: Path, expected: str) -> None:  # noqa: ANN001
    lines = completed.stderr.splitlines()
    assert completed.returncode == 2, completed.stderr
    assert lines == [lines[0]] and lines[0].startswith("error: "), completed.stderr
    assert expected in lines[0]
    for output in (completed.stdout, completed.stderr):
        assert "Traceback" not in output and "nanobind" not in output
    assert completed.stdout == ""
    assert not prefect_home.exists()  # Prefect never started (the project creates its home before the first import)


def _environment(tmp_path: Path) -> dict[str, str]:
    return {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": "http://127.0.0.1:9/api",  # serve needs one; nothing listens there
    }


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_contract_column_is_one_line_before_prefect_starts(
    command: str, raw_without_currency: Path, tmp_path: Path
) -> None:
    completed = run_cli(
        command,
        "--raw-dir",
        str(raw_without_currency),
        "--warehouse",
        str(tmp_path / "warehouse" / "loyalty.duckdb"),
        env=_environment(tmp_path),
    )
    _assert_one_error_line(completed, tmp_path / "prefect", "orders.csv: required column 'currency' is missing")
    assert not (tmp_path / "warehouse").exists()  # no build folder, lock or record either


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (("--threads", "lots"), "LOYALTY_THREADS: 'lots' is not a positive whole number of threads"),
        (("--timezone", "Mars/Olympus_Mons"), "Mars/Olympus_Mons"),
    ],
)
def test_a_bad_setting_is_one_line_before_prefect_starts(
    command: str, setting: tuple[str, str], expected: str, tmp_path: Path
) -> None:
    completed = run_cli(
        command, *setting, "--warehouse", str(tmp_path / "warehouse" / "loyalty.duckdb"), env=_environment(tmp_path)
    )
    _assert_one_error_line(completed, tmp_path / "prefect", expected)


@pytest.mark.parametrize("command", ("run", "serve"))
def test_a_bad_flow_setting_is_one_line_before_prefect_starts(command: str, tmp_path: Path) -> None:
    completed = run_cli(
        command,
        "--warehouse",
        str(tmp_path / "warehouse" / "loyalty.duckdb"),
        env={**_environment(tmp_path), "LOYALTY_RETRIES": "-1"},
    )
    _assert_one_error_line(completed, tmp_path / "prefect", "LOYALTY_RETRIES: '-1' is not a whole number")


def test_a_contract_error_inside_the_flow_is_one_error_line_without_traceback_or_leak_report(
    raw_without_currency: Path, tmp_path: Path
) -> None:
    """When the flow's own check fails (files that changed after the CLI's check, or a served night), Prefect's flow
    run fails and logs the detail; the terminal shows its state lines without a traceback and one ``error:`` line,
    and no "nanobind: leaked" report at exit (the failed step's DuckDB objects were kept alive by the traceback).
    The CLI's own check is skipped here to reach the flow with the broken folder: a real flow run, real Prefect."""
    script = tmp_path / "without_preflight.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from loyalty import cli
            cli._preflight = lambda settings: None  # as if the files broke after the CLI's check
            sys.exit(cli.main(sys.argv[1:]))
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), LOYALTY_RETRIES="0")
    env.pop("PREFECT_API_URL", None)
    completed = subprocess.run(
        [sys.executable, str(script), "run", "--raw-dir", str(raw_without_currency), "--warehouse",
         str(tmp_path / "warehouse" / "loyalty.duckdb")],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert completed.returncode == 2, completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {raw_without_currency / 'orders.csv'}: required column 'currency' is missing"
        " (has: order_id, customer_id, ordered_at, status)"
    ]
    assert "Flow run encountered an exception" in completed.stderr  # the flow really ran, and failed
    for output in (completed.stdout, completed.stderr):
        assert "Traceback" not in output and "nanobind" not in output and "leaked" not in output
    # Prefect's own logs keep the detail the terminal does not show
    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as con:
        logged = "\n".join(row[0] for row in con.execute("select message from log"))
    assert "Traceback" in logged and "required column 'currency' is missing" in logged
    # the failure record beside the warehouse names the step
    summary = json.loads((tmp_path / "warehouse" / "run_summary.json").read_text())
    assert (summary["status"], summary["failed_step"]) == ("failed", "plan")


def test_serve_without_a_server_answering_is_one_line_before_prefect_starts(tmp_path: Path) -> None:
    """PREFECT_API_URL set, nothing listening: one line naming the address and how to start a server, not the HTTP
    client's traceback."""
    completed = run_cli(
        "serve", "--warehouse", str(tmp_path / "warehouse" / "loyalty.duckdb"), env=_environment(tmp_path)
    )
    _assert_one_error_line(
        completed, tmp_path / "prefect", "no Prefect server answers at PREFECT_API_URL=http://127.0.0.1:9/api"
    )
    assert "make prefect-server" in completed.stderr

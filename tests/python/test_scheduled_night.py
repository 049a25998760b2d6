"""A scheduled night on a real Prefect server: `prefect server start` on a free local port (its own PREFECT_HOME),
`loyalty serve --cron '* * * * *'` against it as a user would run it, and the first night the server's scheduler
creates (not one triggered by hand) runs in the served runner's own process to Completed and publishes the
warehouse. Everything started here is stopped, by process group, whatever happens. Data: the bundled default data.

This is the path that had never worked: with SQLAlchemy 2.1 the server's scheduler failed on every loop, so no run
was ever created; and the runner's process could not unpickle the flow (No module named 'loyalty_nightly_flow')."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from conftest import PROJECT_DIR

from loyalty.config import DEFAULT_RAW_DIR

PREFECT = Path(sys.executable).with_name("prefect")
# a loaded machine (the whole suite on every core): the server's start, the wait for the next minute and one night
SERVER_START_TIMEOUT = 180.0
RUN_TIMEOUT = 600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM to the process's group (it and every process it started), SIGKILL to whatever is left after grace."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:  # the group's other members (the runner's flow-run processes, uvicorn's)
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=grace)


@contextmanager
def group(command: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A process in a session (so a group) of its own, stopped with everything it started on the way out."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        stop_group(process)
        with pytest.raises(ProcessLookupError):  # nothing of it left
            os.killpg(process.pid, 0)


def api(url: str, path: str, body: dict | None = None) -> object:
    request = urllib.request.Request(
        f"{url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def tail(log: Path, characters: int = 4000) -> str:
    return f"--- {log.name} ---\n" + log.read_text(errors="replace")[-characters:]


def base_env(prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALTY_", "PREFECT_"))}
    return {**env, "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def test_a_scheduled_night_runs_to_completed_and_publishes(tmp_path: Path) -> None:
    started = time.monotonic()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    warehouse = tmp_path / "warehouse" / "loyalty.duckdb"
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    server_env = base_env(tmp_path / "prefect-server")
    serve_env = {
        **base_env(tmp_path / "prefect-serve"),
        "PREFECT_API_URL": api_url,
        "LOYALTY_LANDING_SETTLE_SECONDS": "0",  # a fresh checkout's files are minutes old: no need to wait
    }
    server_command = [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with group(server_command, server_log, server_env) as server:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            assert server.poll() is None, "the Prefect server exited\n" + tail(server_log)
            try:
                if api(api_url, "/health") is True:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "the Prefect server did not answer\n" + tail(server_log)
            time.sleep(0.5)
        server_up = time.monotonic()

        # a cron that is none is one line against the running server, before anything is served
        bad = subprocess.run(
            [sys.executable, "-m", "loyalty", "serve", "--cron", "61 2 * * *", "--warehouse", str(warehouse)],
            env=serve_env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert (bad.returncode, bad.stderr.splitlines()) == (
            2,
            ["error: --cron: '61 2 * * *' is not a cron schedule (five fields, e.g. '0 2 * * *')"],
        ), bad.stderr

        serve_command = [sys.executable, "-m", "loyalty", "serve", "--cron", "* * * * *", "--warehouse", str(warehouse)]
        serve_started_at = datetime.now(UTC)
        with group(serve_command, serve_log, serve_env) as serve:
            deadline = time.monotonic() + RUN_TIMEOUT
            completed = None
            while completed is None:
                assert serve.poll() is None, "loyalty serve exited\n" + tail(serve_log)
                assert time.monotonic() < deadline, "no scheduled run completed\n" + tail(serve_log) + tail(server_log)
                runs = api(api_url, "/flow_runs/filter", {"sort": "EXPECTED_START_TIME_ASC", "limit": 20})
                assert isinstance(runs, list)
                for run in runs:
                    assert run["state_type"] not in ("FAILED", "CRASHED"), (
                        f"run {run['name']} {run['state_name']}\n" + tail(serve_log)
                    )
                    if run["state_type"] == "COMPLETED":
                        completed = run
                        break
                time.sleep(1)
            run_completed = time.monotonic()
            # read at once: the next minute's night may take the lock and begin its own record once this one is done
            summary = json.loads((warehouse.parent / "run_summary.json").read_text())
            with duckdb.connect(str(warehouse), read_only=True) as con:
                customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
            deployments = api(api_url, "/deployments/filter", {})

        # the server's scheduler made it, for a slot of the cron schedule after `loyalty serve` started
        assert completed["auto_scheduled"] is True
        expected_start = datetime.fromisoformat(completed["expected_start_time"].replace("Z", "+00:00"))
        assert expected_start.second == 0 and expected_start.microsecond == 0
        assert expected_start > serve_started_at
        assert [d["name"] for d in deployments] == ["loyalty-nightly"]  # type: ignore[union-attr]
        assert completed["deployment_id"] == deployments[0]["id"]  # type: ignore[index]
        (schedule,) = deployments[0]["schedules"]  # type: ignore[index]
        assert schedule["schedule"]["cron"] == "* * * * *" and schedule["schedule"]["timezone"] in (None, "UTC")
        assert completed["parameters"] == {"raw_dir": str(DEFAULT_RAW_DIR), "warehouse": str(warehouse)}
        assert "loyalty_nightly_flow" not in serve_log.read_text()

    assert summary["status"] == "published"
    assert summary["warehouse"] == str(warehouse)
    assert summary["raw_dir"] == str(DEFAULT_RAW_DIR)
    assert customers == summary["rows_per_mart"]["marts.dim_customers"] == 5000

    print(
        f"\nscheduled night: server up {server_up - started:.1f} s, first scheduled run Completed"
        f" {run_completed - server_up:.1f} s after `loyalty serve` started (slot {expected_start:%H:%M:%S}),"
        f" test {time.monotonic() - started:.1f} s"
    )


def test_the_served_flow_unpickles_where_its_module_cannot_be_imported(tmp_path: Path) -> None:
    """What the runner sends its spawned process: the flow pickled with cloudpickle. It must load in an interpreter
    that cannot import the flow module by name, with the flow, its failure hooks and its tasks sharing one copy of
    the module's globals (the hook finds the night the flow recorded in _NIGHTS; the flow makes its tasks with the
    module's _tasks, from the steps of loyalty.nightly, which the spawned process imports by name)."""
    import cloudpickle

    from loyalty.orchestration import load_flow_module

    pickled = tmp_path / "flow.pickle"
    pickled.write_bytes(cloudpickle.dumps(load_flow_module().loyalty_nightly))
    code = (
        "import pickle, sys; flow = pickle.loads(open(sys.argv[1], 'rb').read()); g = flow.fn.__globals__; "
        "hooks = flow.on_failure_hooks + flow.on_crashed_hooks; "
        "print('loyalty_nightly_flow' in sys.modules, flow.name, len(hooks), "
        "all(h.__globals__ is g for h in hooks), g['_tasks'].__globals__ is g, "
        "g['_NIGHTS'] is hooks[0].__globals__['_NIGHTS'])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    result = subprocess.run(
        [sys.executable, "-c", code, str(pickled)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["False", "loyalty-nightly", "2", "True", "True", "True"]

"""Prefect settings the project sets itself, so a nightly run works on a small machine without the user setting
anything (see DECISIONS.md, "Nightly flow and publication"): the project's own PREFECT_HOME (its SQLite database
and logs stay in the project, ignored by git), a start-up timeout long enough for the ephemeral API server on 2
cores, and no telemetry. A variable the user has set wins.

Import this module (``prefect_environment()``) before the first ``import prefect``.

``loyalty run`` starts Prefect's temporary API server itself as soon as its own checks passed (``EarlyServer``), so
that the server's start-up (15-30 s of Python on 2 cores) runs beside the import of Prefect and the flow instead of
after it; Prefect then uses it as its own (see DECISIONS.md, "Night overheads").
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from loyalty.config import PROJECT_DIR

FLOW_FILE = PROJECT_DIR / "flows" / "loyalty_nightly.py"

PREFECT_DEFAULTS = {
    "PREFECT_HOME": str(PROJECT_DIR / ".prefect"),
    # the ephemeral API server needs 15-30 s to start on these machines; Prefect's default waits 20 s
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LOG_PRINTS": "true",
    # results are small Python objects of one process; nothing to persist between runs
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}


def prefect_environment() -> None:
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)


def load_flow_module() -> ModuleType:
    """flows/loyalty_nightly.py, the Prefect flow (orchestration only; the steps are in loyalty.nightly).

    Loaded from its file under a name of its own, which no other interpreter can import; so its functions are
    pickled by value (cloudpickle), not by that name. A served flow needs it: Prefect's runner starts each run in
    a new interpreter (multiprocessing "spawn") and sends it the flow pickled with cloudpickle. By reference, the
    run crashes at start (``No module named 'loyalty_nightly_flow'``); and even were the module importable there,
    the flow's function would still go by value (its name in the module is the Flow object, not the function)
    while the failure hook went by reference, each with its own ``_NIGHTS``. By value, all of them share one copy
    of the module's globals, as they do in this interpreter."""
    prefect_environment()
    name = "loyalty_nightly_flow"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FLOW_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    import cloudpickle  # Prefect's own dependency, the pickler of its runner

    cloudpickle.register_pickle_by_value(module)
    return module


# what Prefect's SubprocessASGIServer sets for its server process (no UI, ephemeral services only)
EPHEMERAL_SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}


class EarlyServer:
    """Prefect's temporary (ephemeral) API server, started before Prefect is imported: the command Prefect 3's
    ``SubprocessASGIServer`` runs (uvicorn with ``prefect.server.api.server:create_app``, the UI off), on a free
    port. ``adopt()``, after ``import prefect``, waits for it to answer and hands it to Prefect's
    ``SubprocessASGIServer`` (which stops it when the process exits). When Prefect would not use a temporary server
    (PREFECT_API_URL set, or set in the profile) or it does not answer in time, it is stopped and Prefect does as
    it always does."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @staticmethod
    def wanted() -> bool:
        """Would Prefect start a temporary server? (no PREFECT_API_URL in the environment or the profiles file)"""
        if os.environ.get("PREFECT_API_URL") or os.environ.get("PREFECT_SERVER_EPHEMERAL_ENABLED", "").lower() in (
            "0",
            "false",
        ):
            return False
        home = os.environ.get("PREFECT_HOME") or PREFECT_DEFAULTS["PREFECT_HOME"]
        profiles = Path(os.environ.get("PREFECT_PROFILES_PATH") or Path(home) / "profiles.toml")
        return not (profiles.is_file() and "PREFECT_API_URL" in profiles.read_text(errors="replace"))

    def start(self) -> EarlyServer:
        if not self.wanted():
            return self
        prefect_environment()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        spec = importlib.util.find_spec("prefect")
        assert spec and spec.origin
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent)),
                *("--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port"),
                *(str(self.port), "--log-level", "error", "--lifespan", "on"),
            ],
            env={**os.environ, **EPHEMERAL_SERVER_ENV},
        )
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def _answers(self, timeout: float) -> bool:
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    if client.get(f"http://127.0.0.1:{self.port}/api/health").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        return False

    def adopt(self) -> None:
        """Call after ``import prefect``: make the early server Prefect's temporary server, or stop it."""
        if self.process is None:
            return
        from prefect.server.api.server import SubprocessASGIServer
        from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        server = SubprocessASGIServer()
        if (
            PREFECT_API_URL.value()
            or server.running
            or not self._answers(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        ):
            self.stop()  # Prefect uses its configured server, or starts its own as usual
            return
        server.port, server.server_process, server.running = self.port, self.process, True
        atexit.register(server.stop)
        self.process = None  # Prefect's now: it stops it at exit

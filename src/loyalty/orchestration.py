"""Prefect settings the project sets itself, so a nightly run works on a small machine without the user setting
anything (see DECISIONS.md, "Nightly flow and publication"): the project's own PREFECT_HOME (its SQLite database
and logs stay in the project, ignored by git), a start-up timeout long enough for the ephemeral API server on 2
cores, and no telemetry. A variable the user has set wins.

Import this module (``prefect_environment()``) before the first ``import prefect``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
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

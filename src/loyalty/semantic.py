"""The semantic layer: MetricFlow (``mf``) against the published warehouse, read-only.

``mf`` reads the semantic manifest from ``<project>/target/semantic_manifest.json`` and connects through the dbt
profile. The manifest names relations by catalog, and DuckDB names the catalog after the warehouse file, so the
manifest is parsed for the warehouse being queried; the profile's ``query`` target opens that file read-only, so
a metric query never blocks a build's publication nor a BI tool's connection.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loyalty.config import PROJECT_DIR, Settings
from loyalty.errors import LoyaltyError


def metricflow_env(warehouse: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LOYALTY_DBT_DATABASE": str(warehouse),
        "LOYALTY_DBT_TARGET": "query",
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_PROJECT_DIR": str(PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def run_metricflow(settings: Settings, mf_args: list[str]) -> int:
    """Parse the semantic manifest for ``settings.warehouse`` and run ``mf <mf_args>``; returns mf's exit code."""
    if not settings.warehouse.is_file():
        raise LoyaltyError(f"no warehouse at {settings.warehouse}: build it first (loyalty run)")
    env = metricflow_env(settings.warehouse)
    bin_dir = Path(sys.executable).parent
    parse = subprocess.run(
        [
            str(bin_dir / "dbt"),
            "parse",
            "--quiet",
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
        ],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    if parse.returncode != 0:
        print(parse.stdout[-3000:], parse.stderr[-3000:], file=sys.stderr)
        raise LoyaltyError("dbt parse failed: the semantic manifest could not be built (output above)")
    return subprocess.run([str(bin_dir / "mf"), *mf_args], env=env, cwd=PROJECT_DIR).returncode

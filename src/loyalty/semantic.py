"""The semantic layer: MetricFlow (``mf``) against the published warehouse, read-only.

The semantic manifest names relations by catalog, and DuckDB names the catalog after the warehouse file, so a
manifest is only right for a warehouse of the same file name. dbt writes one (``semantic_manifest.json``) into
its target folder whenever it parses the project; the night's dbt build does so in ``.build/target`` for the build
copy, which has the published file's name. ``publish`` (loyalty.nightly) publishes that manifest beside the
warehouse with the night (``stage_manifest`` before the swap, ``commit_manifest`` after it), so it always describes
the published night, and ``loyalty metrics`` runs ``mf`` on it without parsing the project (a parse is 5-30 s; a
query 0.1 s).

``mf`` 0.15 has no option for where the manifest is: it reads ``<DBT_PROJECT_DIR>/target/semantic_manifest.json``
(``dbtArtifacts.build_semantic_manifest_from_dbt_project_root``). ``run_metricflow`` therefore runs mf's own
command line in this process with that one loader pointed at the published manifest. A warehouse published
without one (by a night before manifests were published, or copied under another file name) still works: the
project is parsed for it on each call, into a temporary folder, with a one-line note.

The profile's ``query`` target opens the warehouse read-only, so a metric query never blocks a night's
publication nor a BI tool's connection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from loyalty.config import PROJECT_DIR, Settings
from loyalty.errors import LoyaltyError
from loyalty.files import stage_bytes
from loyalty.workspace import dbt_target_dir

MANIFEST_FILE = "semantic_manifest.json"
TIME_DIMENSION = "metric_time"


def manifest_path(warehouse: Path) -> Path:
    """The published semantic manifest of ``warehouse``: beside it (like its docs and run summary)."""
    return warehouse.parent / MANIFEST_FILE


def manifest_catalogs(manifest_text: str) -> set[str]:
    """The catalogs (DuckDB: warehouse file stems) that a semantic manifest's relations name."""
    manifest = json.loads(manifest_text)
    relations = [model["node_relation"] for model in manifest.get("semantic_models", [])]
    relations += [spine["node_relation"] for spine in manifest.get("project_configuration", {}).get("time_spines", [])]
    return {relation.get("database") for relation in relations}


# ------------------------------------------------------------------------------------ publication (the night)


def build_manifest(warehouse: Path) -> Path:
    """Where the night's dbt writes the build copy's semantic manifest (``.build/target``)."""
    return dbt_target_dir(warehouse) / MANIFEST_FILE


def stage_manifest(settings: Settings, built_since: str | None = None) -> Path | None:
    """Copy the night's semantic manifest beside the warehouse under a temporary name (this takes disk space: call
    it before the swap) and return that name for ``commit_manifest``. None when the build left none written at or
    after ``built_since`` (ISO time, the night's start), so a stale one is never published."""
    source = build_manifest(settings.warehouse)
    try:
        modified = source.stat().st_mtime
    except FileNotFoundError:
        return None
    if built_since is not None and modified < datetime.fromisoformat(built_since).timestamp():
        return None
    return stage_bytes(manifest_path(settings.warehouse), source.read_bytes())


def commit_manifest(warehouse: Path, staged: Path | None) -> None:
    """After the swap (renames only): tonight's manifest into place, or, without one, last night's removed (it
    would describe another night)."""
    if staged is None:
        manifest_path(warehouse).unlink(missing_ok=True)
    else:
        os.replace(staged, manifest_path(warehouse))


# ------------------------------------------------------------------------------------------ loyalty metrics


def metricflow_env(warehouse: Path) -> dict[str, str]:
    """What mf (and dbt, which it runs) reads from the environment: the project, its profile and the warehouse."""
    return {
        "LOYALTY_DBT_DATABASE": str(warehouse),
        "LOYALTY_DBT_TARGET": "query",
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_PROJECT_DIR": str(PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def with_default_order(mf_args: list[str]) -> list[str]:
    """``mf query`` returns rows in whatever order DuckDB produced them (months in random order). Unless the
    command orders them itself (``--order``, or a saved query's own order), order a grouped query by its group-by
    items, ``metric_time`` ones first: time series come out sorted by time."""
    if mf_args[:1] != ["query"]:
        return mf_args
    group_by: list[str] = []
    for position, arg in enumerate(mf_args):
        name, _, value = arg.partition("=")
        if name in ("--order", "--saved-query"):
            return mf_args
        if name == "--group-by":
            value = value if "=" in arg else (mf_args[position + 1] if position + 1 < len(mf_args) else "")
            group_by = [item.strip() for item in value.split(",") if item.strip()]
    if not group_by:
        return mf_args
    is_time = [item == TIME_DIMENSION or item.startswith(TIME_DIMENSION + "__") for item in group_by]
    order = [item for item, time in zip(group_by, is_time, strict=True) if time]
    order += [item for item, time in zip(group_by, is_time, strict=True) if not time]
    return [*mf_args, "--order", ",".join(order)]


def parse_manifest(warehouse: Path, target: Path) -> Path:
    """``dbt parse`` of the project for ``warehouse`` into ``target``; returns the semantic manifest it wrote."""
    dbt = Path(sys.executable).with_name("dbt")
    parse = subprocess.run(
        [
            *(str(dbt), "parse", "--quiet"),
            *("--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)),
            *("--target-path", str(target), "--log-path", str(target / "logs")),
        ],
        env={**os.environ, **metricflow_env(warehouse)},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    if parse.returncode != 0:
        print(parse.stdout[-3000:], parse.stderr[-3000:], file=sys.stderr)
        raise LoyaltyError("dbt parse failed: the semantic manifest could not be built (output above)")
    return target / MANIFEST_FILE


@contextmanager
def semantic_manifest(warehouse: Path) -> Iterator[Path]:
    """The semantic manifest for ``warehouse``: the published one, or (none published, or one for another file
    name) one parsed for it now, with a one-line note on stderr."""
    published = manifest_path(warehouse)
    if published.is_file():
        catalogs = manifest_catalogs(published.read_text())
        if catalogs == {warehouse.stem}:
            yield published
            return
        names = ", ".join(sorted(map(str, catalogs)))
        why = f"{published} names catalog {names}, not {warehouse.stem} (was the file renamed?)"
    else:
        why = f"no semantic manifest was published with {warehouse} (by a night before they were)"
    print(f"note: {why}: parsing the project for it, slow, on every call until a night publishes one", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="loyalty-semantic-") as target:
        yield parse_manifest(warehouse, Path(target))


def _point_mf_at(manifest: Path) -> None:
    """Make mf load ``manifest`` instead of ``<project>/target/semantic_manifest.json``, its only source."""
    from dbt_metricflow.cli.cli_errors import LoadSemanticManifestException
    from dbt_metricflow.cli.dbt_connectors.dbt_config_accessor import dbtArtifacts
    from metricflow_semantics.model.dbt_manifest_parser import parse_manifest_from_dbt_generated_manifest

    if not hasattr(dbtArtifacts, "build_semantic_manifest_from_dbt_project_root"):
        raise LoyaltyError("this dbt-metricflow cannot be pointed at a semantic manifest: loyalty metrics needs 0.15")

    def load(project_root: Path):  # noqa: ANN202 - mf's SemanticManifest
        try:
            return parse_manifest_from_dbt_generated_manifest(manifest_json_string=manifest.read_text())
        except Exception as exc:
            raise LoadSemanticManifestException(f"cannot load the semantic manifest {manifest}") from exc

    dbtArtifacts.build_semantic_manifest_from_dbt_project_root = staticmethod(load)


def run_metricflow(settings: Settings, mf_args: list[str]) -> int:
    """``mf <mf_args>`` (in this process) on ``settings.warehouse`` and its semantic manifest; returns mf's exit
    code."""
    warehouse = settings.warehouse
    if not mf_args or "--help" in mf_args:  # mf's own help: no warehouse, no manifest needed
        return _run_mf(warehouse, mf_args or ["--help"], None)
    if not warehouse.is_file():
        raise LoyaltyError(f"no warehouse at {warehouse}: build it first (loyalty run)")
    with semantic_manifest(warehouse) as manifest:
        return _run_mf(warehouse, with_default_order(mf_args), manifest)


def _run_mf(warehouse: Path, mf_args: list[str], manifest: Path | None) -> int:
    os.environ.update(metricflow_env(warehouse))
    from dbt_metricflow.cli.main import cli

    if manifest is not None:
        _point_mf_at(manifest)
    try:
        cli.main(args=mf_args, prog_name="mf")
    except SystemExit as exc:
        code = exc.code
    else:  # (click's standalone mode always exits)
        code = 0
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1

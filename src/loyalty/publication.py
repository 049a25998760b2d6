"""Publication: the build copy swapped in for the published warehouse, with its semantic manifest, dbt docs and the
night's report, so that BI tools never see a half-built or unvalidated night.

The swap is one ``rename`` (atomic on one file system): a reader with the old file open keeps reading the old
night, a new connection opens the new one. Whatever takes disk space (the docs folder, the manifest and report
files under temporary names) is written before the swap and only renames follow it: a full disk fails the night
with the last night still published, never a published night without its report.
"""

from __future__ import annotations

import os
from pathlib import Path

from loyalty.config import Settings
from loyalty.errors import LoyaltyError
from loyalty.report import NightReport, commit_report, stage_report
from loyalty.semantic import commit_manifest, stage_manifest
from loyalty.workspace import build_path, docs_path, storage_format, storage_format_written


def publish(settings: Settings, staged_docs: Path | None, report: NightReport | None = None) -> None:
    """Swap the build copy in for the published warehouse, then its semantic manifest (``loyalty.semantic``), the
    docs and the night's report files (``loyalty.report``). Refuses a build copy in another storage format than
    LOYALTY_STORAGE_COMPATIBILITY_VERSION writes (BI tools with an older DuckDB would not open it)."""
    target = build_path(settings.warehouse)
    if not target.is_file():
        raise LoyaltyError(f"nothing to publish: no build copy at {target}")
    found, wanted = storage_format(target), storage_format_written(settings.storage_compatibility_version)
    if found != wanted:  # BI tools with DuckDB 1.x would refuse it
        raise LoyaltyError(
            f"not published: the build copy {target} is in DuckDB storage format {found}, but"
            f" LOYALTY_STORAGE_COMPATIBILITY_VERSION={settings.storage_compatibility_version} writes {wanted}"
        )
    docs = docs_path(settings.warehouse)
    if staged_docs is not None:
        docs.parent.mkdir(parents=True, exist_ok=True)
    staged = stage_report(settings, report) if report is not None else []
    manifest = None
    try:
        manifest = stage_manifest(settings, report.started_at if report is not None else None)
        os.replace(target, settings.warehouse)  # the moment of publication
    except BaseException:
        for partial in [p for p, _ in staged] + ([manifest] if manifest else []):
            partial.unlink(missing_ok=True)
        raise
    commit_manifest(settings.warehouse, manifest)
    if staged_docs is not None:
        os.replace(staged_docs, docs)
    if report is not None:
        commit_report(settings, report, staged)

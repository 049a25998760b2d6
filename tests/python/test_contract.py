"""The raw-data contract is written once in src/loyalty/contract.py; the dbt side must agree with it."""

from __future__ import annotations

import re

import yaml
from conftest import PROJECT_DIR

from loyalty.contract import ENTITIES, REASON_CODES


def test_dbt_entity_list_matches_the_contract() -> None:
    macro = (PROJECT_DIR / "macros" / "raw_rows" / "entities.sql").read_text()
    assert re.findall(r"'(\w+)'", macro) == [e.name for e in ENTITIES]


def test_sources_document_exactly_the_contract_columns() -> None:
    sources = yaml.safe_load((PROJECT_DIR / "models" / "staging" / "_loyalty__sources.yml").read_text())
    tables = {t["name"]: [c["name"] for c in t["columns"]] for t in sources["sources"][0]["tables"]}
    assert tables == {
        **{e.name: list(e.all_columns) for e in ENTITIES},
        "malformed_records": ["entity", "batch", "line_number", "reason", "error", "record_text"],
        "landed_files": ["entity", "batch", "size_bytes", "mtime_ns", "raw_rows", "malformed_records", "is_new"],
    }


def test_quarantine_reason_codes_match_the_contract() -> None:
    audit = yaml.safe_load((PROJECT_DIR / "models" / "audit" / "_audit__models.yml").read_text())
    (quarantine,) = [m for m in audit["models"] if m["name"] == "quarantined_rows"]
    # the model's one scan of row checks (tests/generic/row_checks.sql) holds the accepted values of reason_code
    (checks,) = [t["row_checks"] for t in quarantine["data_tests"] if isinstance(t, dict) and "row_checks" in t]
    assert checks["arguments"]["accepted_values"]["reason_code"] == list(REASON_CODES)


def test_default_dbt_vars_read_every_entity_of_the_bundled_data() -> None:
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    assert list(project["vars"]["raw_sources"]) == [e.name for e in ENTITIES] + ["malformed_records", "landed_files"]

"""The dbt project's layout is a map of its metrics: README's "Metric catalogue" names, for each metric, the marts that
publish it and the file (or folder) that defines it, and this test keeps the map true.

- Every path the catalogue names exists; a mart path is a model under models/marts/, and every mart outside
  models/marts/core/ (the facts and dimensions) is in the catalogue.
- Each metric is findable from a name: every path in its "defined in" cell holds a word of the metric or of its
  family. A word is a run of letters or digits of the "metric" or "family" cell, lower-cased, of three characters
  or more and not a generic word (customer, rate, ratio, share, score, and, its, ...); it is found when it occurs in
  the path's folder or file names, leaving out the generic folders models, marts, macros and metrics (so "upsell
  rate" is findable in macros/metrics/upsell.sql, "purchase frequency" of family repurchase in
  macros/metrics/repurchase.sql, and nothing is findable just because it is under macros/metrics/).
- Every metric macro (a macro named in a "defined in" cell of docs/metrics.md) is defined in a file under
  macros/metrics/, and each file there is in the catalogue, so a macro is found from its metric's file name.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import markdown_table_rows

from loyalty.config import PROJECT_DIR

README = PROJECT_DIR / "README.md"
METRICS_DOC = PROJECT_DIR / "docs" / "metrics.md"
CATALOGUE_HEADING = "### Metric catalogue"
CODE = re.compile(r"`([^`]+)`")
MACRO = re.compile(r"{%-?\s*macro\s+([a-z_][a-z0-9_]*)\s*\(")
GENERIC_WORDS = {"and", "its", "the", "between", "customer", "customers", "rate", "ratio", "share", "score", "scores"}
GENERIC_FOLDERS = {"models", "marts", "macros", "metrics"}
# the metrics the README describes: each must have a row (a case-insensitive part of a "metric" cell)
README_METRICS = [
    "historical CLV",
    "predicted CLV",
    "average order value",
    "purchase frequency",
    "repurchase ratio",
    "retention",
    "new vs returning",
    "upsell rate",
    "multi-type share",
    "NPS",
    "Customer Loyalty Index",
    "share of wallet",
    "customer acquisition cost",
    "CLV:CAC",
    "program lift",
    "RFM",
    "at-risk",
    "lifecycle stage",
    "engagement score",
]


def _catalogue() -> list[dict[str, str]]:
    text = README.read_text()
    start = text.index(CATALOGUE_HEADING)
    end = text.find("\n#", start + len(CATALOGUE_HEADING))
    return markdown_table_rows(text[start : end if end != -1 else len(text)])


def _paths(cell: str) -> list[str]:
    return [code for code in CODE.findall(cell) if "/" in code]


def _words(*texts: str) -> set[str]:
    words = {word for text in texts for word in re.findall(r"[a-z0-9]+", text.lower())}
    return {word for word in words if len(word) >= 3 and word not in GENERIC_WORDS}


def is_findable(metric: str, family: str, path: str) -> bool:
    """Whether a word of the metric or of its family occurs in the path's folder or file names (module docstring)."""
    names = "/".join(part for part in Path(path.lower()).parts if part not in GENERIC_FOLDERS)
    return any(word in names for word in _words(metric, family))


def _defined_macros(folder: Path) -> dict[str, Path]:
    return {name: path for path in folder.rglob("*.sql") for name in MACRO.findall(path.read_text())}


def test_the_findability_rule() -> None:
    assert is_findable("upsell rate", "upsell", "macros/metrics/upsell.sql")
    assert is_findable("purchase frequency", "repurchase", "macros/metrics/repurchase.sql")
    assert is_findable("new vs returning customers", "retention", "models/marts/retention/loyalty_kpis_monthly.sql")
    assert not is_findable("upsell rate", "upsell", "macros/metrics/money.sql")
    # generic folders and generic words find nothing
    assert not is_findable("metrics", "marts", "macros/metrics/money.sql")
    assert not is_findable("customer rate", "share", "models/marts/segments/customer_segments.sql")


def test_the_catalogue_has_a_row_for_every_metric_of_the_readme() -> None:
    rows = _catalogue()
    assert len(rows) >= 15 and {"metric", "family", "mart", "defined in"} <= set(rows[0])
    metrics = " | ".join(row["metric"] for row in rows).lower()
    assert [metric for metric in README_METRICS if metric.lower() not in metrics] == []


def test_every_path_of_the_catalogue_exists() -> None:
    rows = _catalogue()
    paths = [path for row in rows for path in _paths(row["mart"]) + _paths(row["defined in"])]
    assert [path for path in paths if not (PROJECT_DIR / path).exists()] == []
    for row in rows:
        marts = _paths(row["mart"])
        assert marts, row["metric"]
        assert [m for m in marts if not (m.startswith("models/marts/") and Path(m).suffix in {".sql", ".py"})] == []
        assert _paths(row["defined in"]), row["metric"]


def test_every_mart_of_a_metric_family_is_in_the_catalogue() -> None:
    listed = {path for row in _catalogue() for path in _paths(row["mart"])}
    marts = {
        path.relative_to(PROJECT_DIR).as_posix()
        for path in (PROJECT_DIR / "models" / "marts").rglob("*")
        if path.suffix in {".sql", ".py"} and "core" not in path.relative_to(PROJECT_DIR / "models" / "marts").parts
    }
    assert len(marts) >= 15
    assert sorted(marts - listed) == []


def test_every_metric_is_findable_from_a_folder_or_file_name() -> None:
    unfindable = [
        (row["metric"], path)
        for row in _catalogue()
        for path in _paths(row["defined in"])
        if not is_findable(row["metric"], row["family"], path)
    ]
    assert unfindable == []


def test_every_metric_macro_is_in_a_file_under_macros_metrics() -> None:
    defined = _defined_macros(PROJECT_DIR / "macros")
    named = [
        name
        for row in markdown_table_rows(METRICS_DOC.read_text())
        if row.get("defined in", "").startswith("macro")
        for name in CODE.findall(row["defined in"].split(";")[0])
    ]
    assert len(named) > 15
    metrics_folder = PROJECT_DIR / "macros" / "metrics"
    assert [name for name in named if name not in defined or metrics_folder not in defined[name].parents] == []
    # and each metric macro file is in the catalogue, so every metric macro is found from its family's file name
    listed = {path for row in _catalogue() for path in _paths(row["defined in"])}
    files = {path.relative_to(PROJECT_DIR).as_posix() for path in metrics_folder.rglob("*.sql")}
    assert sorted(files - listed) == []


ARCHITECTURE = PROJECT_DIR / "docs" / "architecture.md"
PATH_LIKE = re.compile(r"^(?:src|models|macros|flows|gx|tests|docs)/[\w./<>*-]*$|^[\w/.-]+\.(?:py|sql|yml)$")


def test_every_file_and_folder_the_architecture_page_names_exists() -> None:
    """docs/architecture.md sends a newcomer to the module or model that owns each step: each path it names (in
    backticks or in its diagram; ``<family>`` and ``*`` stand for any) must be there."""
    text = ARCHITECTURE.read_text()
    diagram = "\n".join(re.findall(r"```\n(.*?)```", text, flags=re.S))
    prose = re.sub(r"```\n.*?```", "", text, flags=re.S)
    named = set(CODE.findall(prose)) | set(re.findall(r"(?:src|models|macros|gx)/[\w./<>-]+", diagram))
    paths = sorted(p.rstrip(".,") for p in named if PATH_LIKE.match(p.rstrip(".,")))
    assert len(paths) > 25, paths  # the page names its rooms
    missing = []
    for path in paths:
        pattern = re.sub(r"<[^>]+>", "*", path)
        # a bare file name (framing.sql, after its folder was named) anywhere in the project's own folders
        found = (
            list(PROJECT_DIR.glob(pattern.rstrip("/"))) if "/" in path else list(PROJECT_DIR.glob(f"macros/**/{path}"))
        )
        if not found:
            missing.append(path)
    assert missing == []

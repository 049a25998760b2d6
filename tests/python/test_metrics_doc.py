"""docs/metrics.md, the metric specification, is kept in step with the project: every model, macro and test it
names exists, and every metric macro, mart and semantic-layer metric is named in it. And the product is
self-contained: no file of the repository refers to a path outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from conftest import markdown_table_rows

from loyalty.config import PROJECT_DIR

METRICS_DOC = PROJECT_DIR / "docs" / "metrics.md"
NAME = re.compile(r"`([a-z_][a-z0-9_]*)`")


def _table_cells(text: str, column: str) -> list[str]:
    """The cells of ``column`` in every markdown table of ``text`` that has that column."""
    return [row[column] for row in markdown_table_rows(text) if column in row]


def _models() -> set[str]:
    return {path.stem for path in (PROJECT_DIR / "models").rglob("*") if path.suffix in {".sql", ".py"}}


def _macros() -> set[str]:
    found: set[str] = set()
    for path in (PROJECT_DIR / "macros").rglob("*.sql"):
        found |= set(re.findall(r"{%-?\s*macro\s+([a-z_][a-z0-9_]*)\s*\(", path.read_text()))
    return found


def _unit_tests() -> set[str]:
    found: set[str] = set()
    for path in (PROJECT_DIR / "models").rglob("*.yml"):
        found |= {test["name"] for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests") or []}
    return found


def _singular_tests() -> set[str]:
    return {path.stem for path in (PROJECT_DIR / "tests" / "singular").glob("*.sql")}


def _pytest_tests() -> set[str]:
    found: set[str] = set()
    for path in (PROJECT_DIR / "tests" / "python").glob("test_*.py"):
        found |= set(re.findall(r"^def (test_[a-z0-9_]+)\(", path.read_text(), re.MULTILINE))
    return found


def _semantic_metrics() -> set[str]:
    spec = yaml.safe_load((PROJECT_DIR / "models" / "semantic" / "_metrics.yml").read_text())
    return {metric["name"] for metric in spec["metrics"]}


def test_the_table_parser_reads_the_named_column() -> None:
    text = "| a | defined in |\n|---|---|\n| x | macro `m`; `n` |\n\n| defined in |\n|---|\n| `o` |\n"
    assert _table_cells(text, "defined in") == ["macro `m`; `n`", "`o`"]
    assert _table_cells(text, "pinned by") == []


def test_every_definition_named_in_the_metrics_doc_exists() -> None:
    text = METRICS_DOC.read_text()
    models, macros = _models(), _macros()
    defined = [name for cell in _table_cells(text, "defined in") for name in NAME.findall(cell)]
    assert len(defined) > 40
    assert [name for name in defined if name not in models | macros] == []


def test_every_test_named_in_the_metrics_doc_exists() -> None:
    text = METRICS_DOC.read_text()
    tests = _unit_tests() | _singular_tests() | _pytest_tests()
    pinned = [name for cell in _table_cells(text, "pinned by") for name in NAME.findall(cell)]
    prose = "\n".join(line for line in text.splitlines() if not line.startswith("|"))
    pinned += [
        name
        for sentence in re.findall(r"[Pp]inned by (.*?)\.(?:\s|$)", prose, re.DOTALL)
        for name in NAME.findall(sentence)
    ]
    assert len(pinned) > 40
    assert [name for name in pinned if name not in tests] == []


def test_every_metric_macro_mart_and_semantic_metric_is_in_the_metrics_doc() -> None:
    named = set(NAME.findall(METRICS_DOC.read_text()))
    metric_macros = set()
    for path in (PROJECT_DIR / "macros" / "metrics").glob("*.sql"):
        metric_macros |= set(re.findall(r"{%-?\s*macro\s+([a-z_][a-z0-9_]*)\s*\(", path.read_text()))
    marts = {path.stem for path in (PROJECT_DIR / "models" / "marts").rglob("*") if path.suffix in {".sql", ".py"}}
    marts -= {"dim_date", "dim_products", "fct_order_items"}  # no metric of their own: calendar, catalogue, lines
    assert len(metric_macros) > 20 and len(marts) > 15
    assert sorted(metric_macros - named) == []
    assert sorted(marts - named) == []
    assert sorted(_semantic_metrics() - named) == []


def test_no_file_of_the_repository_refers_to_a_path_outside_it() -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    outside = re.compile(r"\.\./shared|/work/|(?<![\w.])\.\./\.\.")
    this_file = Path(__file__).resolve().relative_to(PROJECT_DIR).as_posix()
    offenders = []
    for name in filter(None, files):
        path = PROJECT_DIR / name
        if name == this_file or not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if outside.search(line)]
    assert offenders == []

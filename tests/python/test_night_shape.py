"""The shape of the Python night: no import cycle in the package, one declared list of steps that both the Prefect
flow and ``loyalty build`` run, and no setting read when the flow's file is imported."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_DIR

from loyalty import nightly

PACKAGE = PROJECT_DIR / "src" / "loyalty"
FLOW_FILE = PROJECT_DIR / "flows" / "loyalty_nightly.py"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere (at the top or inside a function)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: _imports(path, set(files)) - {name, "loyalty"} for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, as the path that closes it (depth-first search)."""
    found: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                found.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_module_of_the_package_imports_one_that_imports_it_back() -> None:
    graph = import_graph()
    assert {"loyalty.nightly", "loyalty.workspace", "loyalty.report", "loyalty.dbt_runner"} <= set(graph)
    assert "loyalty.workspace" in graph["loyalty.nightly"]  # the graph sees imports
    assert cycles(graph) == []


def test_one_declared_list_of_steps_in_the_order_of_a_night() -> None:
    assert [step.name for step in nightly.STEPS] == [
        "lock", "plan", "prepare_build_copy", "dbt_build", "validate", "docs", "report", "publish"
    ]  # fmt: skip
    assert [step.name for step in nightly.STEPS if step.admission] == ["lock"]
    assert {step.name for step in nightly.STEPS if step.retry_on} == {"lock", "plan"}
    assert len({step.task_name for step in nightly.STEPS}) == len(nightly.STEPS)


def test_the_flow_runs_the_declared_steps_and_names_none_of_its_own() -> None:
    """The flow file is orchestration only: it runs ``nightly.STEPS`` through ``nightly.run_steps`` and calls no
    step itself (no step's name or function appears in it)."""
    tree = ast.parse(FLOW_FILE.read_text())
    attributes = {
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
    }
    assert {"nightly.STEPS", "nightly.run_steps"} <= attributes
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {a.split(".")[1] for a in attributes}
    for step in nightly.STEPS:
        assert step.name not in strings and step.task_name not in strings, step.name
        assert step.run.__name__ not in names, step.run.__name__


def test_importing_the_flow_reads_no_setting() -> None:
    """A bad LOYALTY_RETRIES does not break the import of the flow's file (it is read, and refused in one line,
    when a night runs: ``loyalty run`` checks it before Prefect starts)."""
    code = "from loyalty.orchestration import load_flow_module; print(load_flow_module().loyalty_nightly.name)"
    env = {**os.environ, "LOYALTY_RETRIES": "many", "PREFECT_HOME": str(PROJECT_DIR / ".prefect")}
    completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "loyalty-nightly"

"""The expectation suites of the validation gate, one YAML file each in ``gx/suites``.

A suite file says what it checks (a warehouse table, or a query for checks across rows such as freshness) and its
expectations, by their GX Core names and arguments; a few shorthands cover what every mart needs (keys, not-null
columns, relationships to a dimension). Files and not GX's own JSON because adding a suite for a new mart should be a
short, reviewable edit; ``load_suites`` turns them into GX expectation configurations and checks them early, so a typo
is a clear error naming the file rather than a failure deep inside GX. The file format is described in README.md
("How to add an expectation").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loyalty.config import PROJECT_DIR, Thresholds
from loyalty.errors import LoyaltyError

SUITES_DIR = PROJECT_DIR / "gx" / "suites"
SUITE_KEYS = {"description", "table", "query", "key", "not_null", "relationships", "expectations"}
# Arguments of an expectation that GX keeps beside its kwargs, not in them.
CONFIGURATION_FIELDS = ("description", "meta", "notes")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Suite:
    """One expectation suite: its GX name (the file name without ``.yml``), what it validates, its expectations."""

    name: str
    path: Path
    description: str
    table: tuple[str, str] | None  # (schema, table) for a table suite
    query: str | None  # a SELECT for a query suite
    expectations: tuple[dict[str, Any], ...]  # GX expectation configurations: type, kwargs, description, meta

    @property
    def table_name(self) -> str | None:
        return ".".join(self.table) if self.table else None


def _fail(path: Path, message: str) -> LoyaltyError:
    return LoyaltyError(f"{path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path}: {message}")


def _identifier(path: Path, text: object, what: str) -> str:
    if not isinstance(text, str) or not _IDENTIFIER.match(text):
        raise _fail(path, f"{what} {text!r} is not a lower-case SQL name")
    return text


def _qualified(path: Path, text: object, parts: int, what: str) -> tuple[str, ...]:
    pieces = text.split(".") if isinstance(text, str) else []
    if len(pieces) != parts:
        shape = "schema.table" if parts == 2 else "schema.table.column"
        raise _fail(path, f"{what} {text!r} is not of the form {shape}")
    return tuple(_identifier(path, piece, what) for piece in pieces)


def _columns(path: Path, value: object, what: str) -> list[str]:
    columns = [value] if isinstance(value, str) else value
    if not isinstance(columns, list) or not columns:
        raise _fail(path, f"{what} must be a column name or a list of them")
    return [_identifier(path, column, f"{what} column") for column in columns]


def relationship_expectation(column: str, target: tuple[str, ...]) -> dict[str, Any]:
    """Every non-null ``column`` of the batch is a ``target`` (schema, table, column) value: a fact never points at a
    row its dimension lacks. GX Core has no expectation across two tables, so this is GX's own
    UnexpectedRowsExpectation with the anti-join as its query ({batch} is the suite's table)."""
    schema, table, field = target
    query = (
        f"select child.{column} from " + "{batch}" + f" as child left join {schema}.{table} as parent"
        f" on child.{column} = parent.{field} where child.{column} is not null and parent.{field} is null"
    )
    return {
        "type": "unexpected_rows_expectation",
        "kwargs": {"unexpected_rows_query": query},
        "description": f"Every {column} is a {schema}.{table}.{field}",
        "meta": {"column": column, "references": ".".join(target)},
    }


def _expectation(path: Path, entry: object) -> dict[str, Any]:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise _fail(path, f"each entry of expectations is one 'expect_...: {{arguments}}' mapping, not {entry!r}")
    ((name, arguments),) = entry.items()
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise _fail(path, f"the arguments of {name} must be a mapping")
    kwargs = dict(arguments)
    configuration: dict[str, Any] = {"type": name}
    for field in CONFIGURATION_FIELDS:
        if field in kwargs:
            configuration[field] = kwargs.pop(field)
    configuration["kwargs"] = kwargs
    return configuration


def _parameters(value: object) -> set[str]:
    """The suite parameters (``{$PARAMETER: name}``) an expectation's arguments refer to."""
    if isinstance(value, dict):
        if set(value) == {"$PARAMETER"}:
            return {str(value["$PARAMETER"])}
        return set().union(*(_parameters(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_parameters(v) for v in value)) if value else set()
    return set()


def load_suite(path: Path) -> Suite:
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise _fail(path, f"not valid YAML ({exc})") from None
    if not isinstance(spec, dict):
        raise _fail(path, "a suite file is a mapping with 'table' or 'query' and 'expectations'")
    unknown = set(spec) - SUITE_KEYS
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(SUITE_KEYS))})")
    if ("table" in spec) == ("query" in spec):
        raise _fail(path, "give exactly one of 'table' (schema.table) or 'query' (a SELECT)")

    table = _qualified(path, spec["table"], 2, "table") if "table" in spec else None
    query = spec.get("query")
    if query is not None and (not isinstance(query, str) or not query.lstrip().lower().startswith("select")):
        raise _fail(path, "query must be a SELECT statement")
    if query is not None and any(key in spec for key in ("key", "relationships")):
        raise _fail(path, "key and relationships apply to a table suite only")

    expectations: list[dict[str, Any]] = []
    if "key" in spec:
        key = _columns(path, spec["key"], "key")
        expectations += [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}} for column in key
        ]
        expectations.append(
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": key[0]}}
            if len(key) == 1
            else {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": key}}
        )
    for column in _columns(path, spec["not_null"], "not_null") if "not_null" in spec else []:
        expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}})
    relationships = spec.get("relationships") or {}
    if not isinstance(relationships, dict):
        raise _fail(path, "relationships maps a column to schema.table.column")
    for column, target in relationships.items():
        expectations.append(
            relationship_expectation(
                _identifier(path, column, "relationship column"),
                _qualified(path, target, 3, f"relationships.{column}"),
            )
        )
    entries = spec.get("expectations") or []
    if not isinstance(entries, list):
        raise _fail(path, "expectations must be a list")
    expectations += [_expectation(path, entry) for entry in entries]
    if not expectations:
        raise _fail(path, "the suite has no expectations")

    known = set(Thresholds().suite_parameters())
    for expectation in expectations:
        unknown_parameters = _parameters(expectation["kwargs"]) - known
        if unknown_parameters:
            raise _fail(
                path,
                f"{expectation['type']} refers to unknown parameter(s) {', '.join(sorted(unknown_parameters))}"
                f" (known: {', '.join(sorted(known))})",
            )
    seen: list[dict[str, Any]] = []
    for expectation in expectations:
        if expectation in seen:
            raise _fail(path, f"{expectation['type']} {expectation['kwargs']} appears twice")
        seen.append(expectation)

    description = spec.get("description") or ""
    return Suite(path.stem, path, str(description).strip(), table, query, tuple(expectations))  # type: ignore[arg-type]


def load_suites(directory: Path = SUITES_DIR) -> list[Suite]:
    """Every ``*.yml`` suite in ``directory``, by name."""
    paths = sorted(directory.glob("*.yml"))
    if not paths:
        raise LoyaltyError(f"no expectation suites (*.yml) in {directory}")
    return [load_suite(path) for path in paths]

"""The expectation suites of the validation gate, one YAML file each in ``gx/suites``.

A suite file says what it checks (a warehouse table, or a query for checks across rows or tables such as freshness
and reconciliation) and its expectations, by their GX Core names and arguments; a few shorthands cover what every
mart needs (keys, not-null columns, relationships to a dimension). Files and not GX's own JSON because adding a suite
for a new mart should be a short, reviewable edit; ``load_suites`` turns them into GX expectation configurations and
checks them early, so a typo is a clear error naming the file rather than a failure deep inside GX. The file format
is described in README.md ("How to add an expectation").

The gate holds only what dbt's tests do not (see DECISIONS.md, "GX gate (issue 14)"), and it never lets GX scan a
million-row table once per expectation: ``compile_table_checks`` turns the row-level expectations of a table suite
(not null, unique, between, in set, row counts, unexpected rows) into one aggregate query over the table, whose
single result row holds one count per expectation; GX then checks those counts. A table suite with another kind of
expectation is validated by GX over the table itself, as before.
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


@dataclass(frozen=True)
class TableCheck:
    """One row-level expectation of a table suite, evaluated as one column of the suite's aggregate query.

    ``column`` is the column of the result row (``status__null``); ``sql`` the aggregate that fills it (the number of
    rows that violate the expectation, or the table's row count); ``examples`` a query for a few violating values,
    run only when the check fails; ``expectation`` is what GX evaluates on the result row."""

    column: str
    sql: str
    examples: str | None
    expectation: dict[str, Any]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _has_parameter(value: object) -> bool:
    return bool(_parameters(value))


def _compiled(configuration: dict[str, Any], table: str) -> tuple[str, str, str, str | None, str] | None:
    """(result column stem, aggregate SQL, what it says, examples query, unit) for a row-level expectation, or None
    when it is not one of the kinds compiled (GX then evaluates the suite over the table)."""
    kind, kwargs = configuration["type"], dict(configuration["kwargs"])
    if _has_parameter(kwargs) or "mostly" in kwargs or "row_condition" in kwargs:
        return None
    column = kwargs.pop("column", None)
    quoted = _quote(column) if isinstance(column, str) else None
    if kind == "expect_column_values_to_not_be_null" and quoted and not kwargs:
        condition = f"{quoted} is null"
        return (f"{column}__null", f"count(*) filter (where {condition})", f"{column} is never null", None, "rows")
    if (
        kind == "expect_column_values_to_be_between"
        and quoted
        and set(kwargs) <= {"min_value", "max_value", "strict_min", "strict_max"}
    ):
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if low is None and high is None:
            return None
        parts, said = [], []
        if low is not None:
            operator = "<=" if kwargs.get("strict_min") else "<"
            parts.append(f"{quoted} {operator} {_literal(low)}")
            said.append(f"{'>' if kwargs.get('strict_min') else '>='} {low}")
        if high is not None:
            operator = ">=" if kwargs.get("strict_max") else ">"
            parts.append(f"{quoted} {operator} {_literal(high)}")
            said.append(f"{'<' if kwargs.get('strict_max') else '<='} {high}")
        condition = " or ".join(parts)
        examples = f"select {quoted} from {table} where {condition} limit 3"
        return (
            f"{column}__out_of_range",
            f"count(*) filter (where {condition})",
            f"{column} {' and '.join(said)}",
            examples,
            "rows",
        )
    if kind == "expect_column_values_to_be_in_set" and quoted and set(kwargs) == {"value_set"}:
        values = kwargs["value_set"]
        if not isinstance(values, list) or not values:
            return None
        condition = f"{quoted} is not null and {quoted} not in ({', '.join(_literal(v) for v in values)})"
        examples = f"select distinct {quoted} from {table} where {condition} limit 3"
        return (
            f"{column}__not_in_set",
            f"count(*) filter (where {condition})",
            f"{column} in {values}",
            examples,
            "rows",
        )
    if kind == "expect_column_values_to_be_unique" and quoted and not kwargs:
        duplicates = f"select {quoted} from {table} where {quoted} is not null group by {quoted} having count(*) > 1"
        sql = (
            f"(select coalesce(sum(copies), 0) from (select count(*) as copies from {table}"
            f" where {quoted} is not null group by {quoted} having count(*) > 1))"
        )
        return (f"{column}__duplicate", sql, f"{column} is unique", duplicates + " limit 3", "rows")
    if kind == "expect_compound_columns_to_be_unique" and column is None and set(kwargs) == {"column_list"}:
        columns = ", ".join(_quote(c) for c in kwargs["column_list"])
        sql = (
            f"(select coalesce(sum(copies), 0) from (select count(*) as copies from {table}"
            f" group by {columns} having count(*) > 1))"
        )
        examples = f"select {columns} from {table} group by {columns} having count(*) > 1 limit 3"
        return (
            "__".join(kwargs["column_list"]) + "__duplicate",
            sql,
            f"({', '.join(kwargs['column_list'])}) is unique",
            examples,
            "rows",
        )
    if kind == "unexpected_rows_expectation" and column is None and set(kwargs) == {"unexpected_rows_query"}:
        query = str(kwargs["unexpected_rows_query"]).strip().replace("{batch}", table)
        meta = configuration.get("meta") or {}
        stem = f"{meta['column']}__orphan" if meta.get("references") else f"{meta.get('column') or 'rows'}__unexpected"
        return (
            stem,
            f"(select count(*) from ({query}))",
            "no unexpected rows",
            f"select * from ({query}) limit 3",
            "rows",
        )
    if kind in ("expect_table_row_count_to_equal", "expect_table_row_count_to_be_between") and column is None:
        if kind == "expect_table_row_count_to_equal" and set(kwargs) == {"value"}:
            bounds = {"min_value": kwargs["value"], "max_value": kwargs["value"]}
        elif kind == "expect_table_row_count_to_be_between" and set(kwargs) <= {"min_value", "max_value"}:
            bounds = {name: kwargs[name] for name in ("min_value", "max_value") if kwargs.get(name) is not None}
        else:
            return None
        said = ", ".join(f"{name.removesuffix('_value')} {value:,}" for name, value in bounds.items())
        return ("row_count", "count(*)", f"rows: {said}", None, "count")
    return None


def compile_table_checks(table: str, configurations: list[dict[str, Any]]) -> list[TableCheck] | None:
    """The checks of a table suite (``table`` is schema.table), one per expectation and in their order, or None if
    one of them is of a kind evaluated only by GX over the table. Each check's GX expectation is
    ``expect_column_max_to_be_between`` on its column of the one-row result, with the original type, column and
    description kept in ``meta`` (reports and Data Docs name the original expectation)."""
    checks: list[TableCheck] = []
    used: set[str] = set()
    for configuration in configurations:
        compiled = _compiled(configuration, table)
        if compiled is None:
            return None
        stem, sql, said, examples, unit = compiled
        name, number = stem, 1
        while name in used:
            number += 1
            name = f"{stem}_{number}"
        used.add(name)
        kwargs = configuration["kwargs"]
        if unit == "count":
            if configuration["type"] == "expect_table_row_count_to_equal":
                bounds = {"min_value": kwargs["value"], "max_value": kwargs["value"]}
            else:
                bounds = {k: kwargs[k] for k in ("min_value", "max_value") if kwargs.get(k) is not None}
        else:
            bounds = {"max_value": 0}
        meta = {
            **(configuration.get("meta") or {}),
            "expectation": configuration["type"],
            "column": kwargs.get("column")
            or (", ".join(kwargs["column_list"]) if kwargs.get("column_list") else None)
            or (configuration.get("meta") or {}).get("column"),
            "table": table,
            "unit": unit,
        }
        checks.append(
            TableCheck(
                column=name,
                sql=sql,
                examples=examples,
                expectation={
                    "type": "expect_column_max_to_be_between",
                    "kwargs": {"column": name, **bounds},
                    "description": configuration.get("description") or f"{table}: {said}",
                    "meta": meta,
                },
            )
        )
    return checks


def check_query(table: str, checks: list[TableCheck]) -> str:
    """The one aggregate query of a table suite: its row count and one column per check."""
    columns = ["count(*) as row_count"] + [
        f"{check.sql} as {_quote(check.column)}" for check in checks if check.column != "row_count"
    ]
    return f"select {', '.join(columns)} from {table}"


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

"""A read-only DuckDB dialect for Great Expectations' SQL data source.

GX Core 1.x has no DuckDB data source, and its generic SQL data source over duckdb-engine evaluates nothing: every
expectation fails with ``list index out of range`` (GX issues #10738 and #11579). Two incompatibilities cause it,
both in how duckdb-engine 0.17 meets GX and SQLAlchemy 2.1, neither in the data:

1. **Results vanish before GX reads them.** duckdb-engine hands SQLAlchemy "cursors" that all share the one DuckDB
   connection (duckdb_engine issue #1087). GX's ``execute_query`` runs a query inside ``with engine.connect()`` and
   fetches the rows after the block; leaving the block rolls back the connection's transaction, which on a shared
   DuckDB connection discards the pending result, so GX fetches zero rows and indexes ``res[0]``. Here every
   SQLAlchemy cursor is a DuckDB cursor of its own (``DuckDBPyConnection.cursor()``): a result lives until GX has
   fetched it, whatever else runs on the connection.
2. **Column reflection fails.** duckdb-engine reflects columns with PostgreSQL's catalogue queries, which under
   SQLAlchemy 2.1 join ``pg_catalog.pg_collation``, a table DuckDB does not emulate. GX then falls back to
   ``SELECT * FROM <table> LIMIT 1`` *without the schema*, which fails for every table outside ``main``. Here
   ``get_columns`` reads DuckDB's own ``information_schema.columns``.

Connections are always read-only: the gate looks at a build copy and must not be able to change it. The dialect is
registered with SQLAlchemy as ``duckdb+loyalty_readonly``; its ``name`` stays ``duckdb`` so GX treats it as DuckDB.
"""

from __future__ import annotations

from typing import Any

import duckdb
import duckdb_engine
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects import registry
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError

DRIVER = "loyalty_readonly"
# DuckDB type names that neither PostgreSQL's nor duckdb-engine's reflection tables know.
_DUCKDB_TYPES: dict[str, type[sqltypes.TypeEngine]] = {
    "double": sqltypes.DOUBLE,
    "float": sqltypes.FLOAT,
    "real": sqltypes.REAL,
    "decimal": sqltypes.NUMERIC,
}


def connection_url(database: str) -> str:
    """The SQLAlchemy URL of ``database`` (an absolute path) through this dialect."""
    return f"duckdb+{DRIVER}:///{database}"


class _OwnCursor(duckdb_engine.CursorWrapper):
    """A duckdb-engine cursor over a DuckDB cursor of its own, closed (its result freed) when SQLAlchemy closes it."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, connection: duckdb_engine.ConnectionWrapper) -> None:
        super().__init__(cursor, connection)
        self._own_cursor = cursor

    def close(self) -> None:
        self._own_cursor.close()


class _ConnectionWithOwnCursors(duckdb_engine.ConnectionWrapper):
    """duckdb-engine's connection wrapper, except that ``cursor()`` opens an independent DuckDB cursor."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        super().__init__(connection)
        self._duckdb_connection = connection

    def cursor(self) -> _OwnCursor:
        return _OwnCursor(self._duckdb_connection.cursor(), self)


class ReadOnlyDuckDBDialect(duckdb_engine.Dialect):
    """duckdb-engine's dialect with independent cursors, DuckDB-native column reflection and read-only files."""

    driver = DRIVER

    def connect(self, *cargs: Any, **cparams: Any) -> _ConnectionWithOwnCursors:  # type: ignore[override]
        database = cparams.pop("database", None) or (cargs[0] if cargs else ":memory:")
        config = {**cparams.pop("config", {}), **cparams.pop("url_config", {})}
        return _ConnectionWithOwnCursors(duckdb.connect(database, read_only=True, config=config))

    def get_columns(  # type: ignore[override]
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        rows = connection.exec_driver_sql(
            "select column_name, data_type, is_nullable from information_schema.columns"
            " where table_schema = ? and table_name = ? order by ordinal_position",
            (schema or "main", str(table_name)),
        ).fetchall()
        if not rows:
            raise NoSuchTableError(f"{schema}.{table_name}" if schema else str(table_name))
        return [
            {"name": name, "type": self._column_type(data_type), "nullable": nullable == "YES", "default": None}
            for name, data_type, nullable in rows
        ]

    def _column_type(self, data_type: str) -> sqltypes.TypeEngine:
        base = data_type.split("(")[0].strip().lower()
        known = self.ischema_names.get(base) or _DUCKDB_TYPES.get(base)
        return known() if known is not None else sqltypes.NullType()


registry.register(f"duckdb.{DRIVER}", __name__, "ReadOnlyDuckDBDialect")

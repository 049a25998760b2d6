"""The dbt-duckdb plugin (profiles.yml, ``plugins:``) that gives each of dbt's DuckDB connections the email hash
key's HMAC pads as DuckDB variables, for the macro ``hash_email`` (see ``loyalty.email_hashing``). The values are
bound as parameters on the connection itself, so they never appear in SQL text, dbt's logs or its artifacts."""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from loyalty.email_hashing import INNER_PAD_VARIABLE, OUTER_PAD_VARIABLE, load_key, pads


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._pads = pads(load_key())

    def _set(self, connection: DuckDBPyConnection) -> None:
        inner, outer = self._pads
        connection.execute(f"set variable {INNER_PAD_VARIABLE} = ?", [inner])
        connection.execute(f"set variable {OUTER_PAD_VARIABLE} = ?", [outer])

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        self._set(conn)

    def configure_cursor(self, cursor: DuckDBPyConnection) -> None:
        # a cursor is a new DuckDB connection: variables do not carry over from its parent
        self._set(cursor)

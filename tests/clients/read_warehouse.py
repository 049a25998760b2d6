"""Read every table and view of a DuckDB warehouse, every row and column, with whichever DuckDB client runs this
script: ``python read_warehouse.py FILE`` prints one JSON object, {"duckdb": version, "storage_format": ...,
"relations": {"schema.name": [rows, digest of the rows]}}. Run by tests/python/test_duckdb1_clients.py with a
DuckDB 1.x client (.venv-clients) and with the project's own DuckDB: the same rows give the same digests.

Standard library and duckdb only: it runs in the clients' environment, which has nothing else."""

import hashlib
import json
import sys

import duckdb


def main(path: str) -> None:
    con = duckdb.connect(path, read_only=True)
    con.execute("set TimeZone = 'UTC'")  # timestamps with time zone come back in UTC in every client
    database = con.execute("select current_database()").fetchone()[0]
    (storage_format,) = con.execute(
        "select tags['storage_version'] from duckdb_databases() where database_name = ?", [database]
    ).fetchone()
    relations = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ?"
        " union all select schema_name, view_name from duckdb_views() where database_name = ? and not internal"
        " order by 1, 2",
        [database, database],
    ).fetchall()
    read = {}
    for schema, name in relations:
        rows = con.execute(f'select * from "{schema}"."{name}"').fetchall()
        digest = hashlib.sha256("\n".join(sorted(repr(row) for row in rows)).encode()).hexdigest()
        read[f"{schema}.{name}"] = [len(rows), digest]
    print(json.dumps({"duckdb": duckdb.__version__, "storage_format": storage_format, "relations": read}))


if __name__ == "__main__":
    main(sys.argv[1])

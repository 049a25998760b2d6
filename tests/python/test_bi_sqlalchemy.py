"""A BI tool's path into the warehouse: SQLAlchemy with duckdb-engine, read-only, as Superset connects. Superset lists
a table's columns with SQLAlchemy's inspector; with SQLAlchemy 2.1, duckdb-engine 0.17 fails there
(``pg_catalog.pg_collation`` not found), hence the 2.0 pin in requirements.in."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlalchemy
from conftest import PROJECT_DIR, copy_bad_rows, run_cli


def locked_version(package: str) -> str:
    for line in (PROJECT_DIR / "requirements.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package.lower():
            return version.strip()
    raise AssertionError(f"{package} is not in requirements.lock")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bad-rows fixture built by the CLI in a process of its own (this one then opens the file only through
    duckdb-engine, as a BI tool would)."""
    base = tmp_path_factory.mktemp("bi")
    path = base / "loyalty.duckdb"
    result = run_cli(
        "build", "--quiet", "--no-docs", "--raw-dir", str(copy_bad_rows(base / "raw")), "--warehouse", str(path),
        "--as-of", "2024-12-31", "--max-quarantine-rate", "1", "--freshness-days", "1000000000",
        "--min-night-volume", "0", "--max-row-drop", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return path


def test_the_installed_sqlalchemy_is_the_pinned_2_0() -> None:
    assert sqlalchemy.__version__ == locked_version("SQLAlchemy")
    assert sqlalchemy.__version__.startswith("2.0.")


def test_duckdb_engine_lists_the_columns_of_every_mart_read_only(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = {}
        for table, column, data_type in con.execute(
            "select table_name, column_name, data_type from duckdb_columns() where schema_name = 'marts'"
            " order by table_name, column_index"
        ).fetchall():
            expected.setdefault(table, []).append((column, data_type))
        customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
    assert len(expected) >= 10 and "dim_customers" in expected
    # (one process cannot hold the file through duckdb and duckdb-engine at once: the engine comes after)

    engine = sqlalchemy.create_engine(f"duckdb:///{warehouse}?access_mode=read_only")
    assert str(engine.url).startswith("duckdb:////")  # an absolute path
    try:
        inspector = sqlalchemy.inspect(engine)
        # as a BI tool lists them: database.schema (the database is the file's stem)
        schema = "loyalty.marts"
        assert schema in inspector.get_schema_names()
        tables = set(inspector.get_table_names(schema=schema)) | set(inspector.get_view_names(schema=schema))
        assert tables == set(expected)
        for table, columns in expected.items():
            listed = inspector.get_columns(table, schema=schema)
            assert [c["name"] for c in listed] == [name for name, _ in columns], table
            assert all(isinstance(c["type"], sqlalchemy.types.TypeEngine) for c in listed), table
        with engine.connect() as connection:  # and the rows are there to query
            count = connection.execute(sqlalchemy.text("select count(*) from marts.dim_customers")).scalar_one()
        assert count == customers > 0
        with engine.connect() as connection, pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
            connection.execute(sqlalchemy.text("create table marts.scratch (x integer)"))
    finally:
        engine.dispose()

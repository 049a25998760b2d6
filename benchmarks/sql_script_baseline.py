"""The SQL-script baseline of the benchmark: what an analyst who knows DuckDB would write instead of the project, one
hand-written script (benchmarks/sql_script_baseline.sql) that computes marts.customer_lifetime_value (without its
predictive columns, which come from a model fit, not from SQL), marts.repurchase_cohorts and
marts.loyalty_kpis_monthly straight from the raw CSV files, with the warehouse's definitions.

Like the pandas baseline it trusts its input (no quarantine, no checks, no other marts, no docs), so it is only
comparable on clean data: benchmarks/run.py generates data without bad rows, and ``compare`` checks every column of
the three tables against the warehouse's (money to the cent, ratios to 1e-9, counts, dates and text exactly);
``check_agreement`` raises when they disagree.

    python -m benchmarks.sql_script_baseline --raw-dir /tmp/raw --as-of 2026-10-31 --out /tmp/script.duckdb
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "sql_script_baseline.sql"
SEED_RATES = HERE.parent / "seeds" / "exchange_rates.csv"

# (table, key) compared; every column of the warehouse's table is compared except these (the BG/NBD and
# Gamma-Gamma predictions of clv_customer_predictions: a Python model fit, which a SQL script does not reproduce)
TABLES = {
    "customer_lifetime_value": "customer_id",
    "repurchase_cohorts": "cohort_period_id",
    "loyalty_kpis_monthly": "month_start",
}
NOT_COMPARED = {
    "customer_lifetime_value": {
        "clv_time_unit",
        "clv_frequency",
        "clv_recency",
        "clv_tenure",
        "probability_alive",
        "clv_horizon_months",
        "expected_transactions",
        "expected_mean_transaction_value",
        "predicted_clv",
    }
}
MONEY_TOLERANCE = 0.005  # below half a cent: two amounts in cents agree only when they are equal
RATIO_TOLERANCE = 1e-9


class Disagreement(AssertionError):
    """The SQL script's marts differ from the warehouse's."""


def script_text(raw_dir: Path, as_of: date, timezone: str = "UTC", currency: str = "USD") -> str:
    def quoted(value: object) -> str:
        return str(value).replace("'", "''")

    return SCRIPT.read_text().format(
        raw=quoted(raw_dir), rates=quoted(SEED_RATES), as_of=as_of.isoformat(), timezone=quoted(timezone),
        currency=quoted(currency),
    )  # fmt: skip


def run(raw_dir: Path, as_of: date, out: Path, timezone: str = "UTC", currency: str = "USD") -> Path:
    """Runs the script on ``raw_dir`` into a new DuckDB file ``out`` (schema marts, the three tables)."""
    if out.stem == "marts":  # the file's catalog would be called like the schema: every marts.x is ambiguous
        raise ValueError(f"{out}: name the file something else than marts.duckdb")
    out.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (out, out.with_name(out.name + ".wal")):
        leftover.unlink(missing_ok=True)
    with duckdb.connect(str(out)) as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(script_text(raw_dir, as_of, timezone, currency))
    return out


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_catalog = ? and table_schema = 'marts' and table_name = ? order by ordinal_position",
        [catalog, table],
    ).fetchall()
    return dict(rows)


def _mismatch(column: str, data_type: str) -> str:
    """A SQL condition true when the script's value (s) and the warehouse's (w) of ``column`` disagree."""
    s, w = f's."{column}"', f'w."{column}"'
    either_null = f"(({s} is null) <> ({w} is null))"
    if data_type.startswith("DECIMAL"):
        return f"({either_null} or abs({s} - {w}) >= {MONEY_TOLERANCE})"
    if data_type in ("DOUBLE", "FLOAT", "REAL"):
        return f"({either_null} or abs({s} - {w}) > {RATIO_TOLERANCE})"
    return f"({s} is distinct from {w})"  # counts, dates, text, booleans: exactly


def compare(script_db: Path, warehouse: Path) -> dict[str, float]:
    """For each compared table: rows in one but not the other (``<table>.unmatched_rows``), columns the script lacks
    (``<table>.missing_columns``) and, per column, the rows whose values disagree (``<table>.<column>``). All 0 is
    agreement."""
    diffs: dict[str, float] = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{str(script_db).replace(chr(39), chr(39) * 2)}' as s (read_only)")
        con.execute(f"attach '{str(warehouse).replace(chr(39), chr(39) * 2)}' as w (read_only)")
        for table, key in TABLES.items():
            theirs = _columns(con, "w", table)
            ours = _columns(con, "s", table)
            compared = [c for c in theirs if c not in NOT_COMPARED.get(table, set())]
            missing = [c for c in compared if c not in ours]
            diffs[f"{table}.missing_columns"] = float(len(missing))
            present = [c for c in compared if c in ours and c != key]
            joined = f"s.marts.{table} as s full outer join w.marts.{table} as w on s.{key} = w.{key}"
            counts = ", ".join(
                [f"count(*) filter (where s.{key} is null or w.{key} is null)"]
                + [f"count(*) filter (where s.{key} = w.{key} and {_mismatch(c, theirs[c])})" for c in present]
            )
            values = con.execute(f"select {counts} from {joined}").fetchone()
            assert values is not None
            diffs[f"{table}.unmatched_rows"] = float(values[0])
            for column, value in zip(present, values[1:], strict=True):
                diffs[f"{table}.{column}"] = float(value)
            diffs[f"{table}.rows"] = float(con.execute(f"select count(*) from w.marts.{table}").fetchone()[0])  # type: ignore[index]
    return diffs


def disagreements(diffs: dict[str, float]) -> dict[str, float]:
    """The compared figures that are not 0 (row counts aside)."""
    return {name: value for name, value in diffs.items() if value and not name.endswith(".rows")}


def check_agreement(diffs: dict[str, float]) -> None:
    """Raises Disagreement unless every compared figure is 0 and every table has rows."""
    wrong = disagreements(diffs)
    empty = [name for name, value in diffs.items() if name.endswith(".rows") and not value]
    if wrong or empty:
        raise Disagreement(f"the SQL script disagrees with the warehouse: {wrong or ''} {empty or ''}".strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, required=True, help="a new DuckDB file for the three tables")
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument("--currency", default="USD")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    run(args.raw_dir, args.as_of, args.out, args.timezone, args.currency)
    print(f"SQL script baseline: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

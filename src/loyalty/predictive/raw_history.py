"""Customer histories for the CLV models straight from clean generated raw files, without building the warehouse.

**A mirror for tests and benchmarks only.** The warehouse's definition is the dbt model
``int_clv__customer_history`` (valid orders = completed and dated on or before the as-of date; orders on the
same calendar day are one transaction; the first transaction-day is not counted; net value = gross - refunds
made by the as-of date, in the reporting currency). This query repeats that definition over the raw files
for data that needs no quarantine (the generator's output with ``bad_row_rate=0``), in UTC and USD, so that a
parameter-recovery test or a benchmark at 100,000 - 1,000,000 customers takes seconds instead of a full build.
A test checks it against the warehouse model built from a clean generated data set.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from loyalty.generator import UNITS_PER_USD

UNIT_DAYS = {"day": 1, "week": 7}


def _reader(raw_dir: Path, entity: str) -> str:
    csv = raw_dir / f"{entity}.csv"
    if csv.exists():
        return f"read_csv('{csv}', all_varchar = true, header = true, delim = ',', quote = '\"')"
    return f"(select columns(*)::varchar from read_parquet('{raw_dir / f'{entity}.parquet'}'))"


def customer_histories(raw_dir: Path, as_of: date, time_unit: str = "day", with_values: bool = True) -> pd.DataFrame:
    """One row per customer with a valid order: customer_id, frequency (x), recency (t_x), tenure (T) in
    ``time_unit``, recency_days, tenure_days and (``with_values``) mean_repeat_value (null when x = 0)."""
    raw_dir = Path(raw_dir)
    unit = UNIT_DAYS[time_unit]
    rates = " union all ".join(
        f"select '{c}' as currency, cast({u} as double) as units_per_usd" for c, u in UNITS_PER_USD.items()
    )
    values = ""
    if with_values:
        values = f"""
        , items as (
            select order_id,
                   sum(cast(quantity as bigint) * cast(unit_price as decimal(18, 2))
                       - coalesce(cast(nullif(discount_amount, '') as decimal(18, 2)), 0)) as gross
            from {_reader(raw_dir, "order_items")} group by order_id
        ), refunds as (
            select order_id, sum(cast(amount as decimal(18, 2))) as refunded
            from {_reader(raw_dir, "refunds")}
            where cast(timezone('UTC', cast(refunded_at as timestamptz)) as date) <= date '{as_of}'
            group by order_id
        ), rates as (select currency, cast(1 as double) / units_per_usd as exchange_rate from ({rates}))"""
    net = (
        "cast(round(coalesce(items.gross, 0) * rates.exchange_rate, 2) as decimal(18, 2))"
        " - cast(round(coalesce(refunds.refunded, 0) * rates.exchange_rate, 2) as decimal(18, 2))"
        if with_values
        else "0"
    )
    joins = (
        "left join items using (order_id) left join refunds using (order_id) join rates using (currency)"
        if with_values
        else ""
    )
    sql = f"""
        with orders as (
            select order_id, customer_id, status, currency,
                   cast(timezone('UTC', cast(ordered_at as timestamptz)) as date) as order_date
            from {_reader(raw_dir, "orders")}
        ) {values},
        days as (
            select orders.customer_id, orders.order_date, sum({net}) as net_value
            from orders {joins}
            where orders.status = 'completed' and orders.order_date <= date '{as_of}'
            group by all
        ),
        numbered as (
            select *, min(order_date) over (partition by customer_id) as first_date from days
        )
        select
            customer_id,
            count(*) - 1 as frequency,
            date_diff('day', min(order_date), max(order_date)) as recency_days,
            date_diff('day', min(order_date), date '{as_of}') as tenure_days,
            recency_days / {unit} as recency,
            tenure_days / {unit} as tenure,
            cast(sum(net_value) filter (where order_date > first_date) as double) / nullif(count(*) - 1, 0)
                as mean_repeat_value
        from numbered
        group by customer_id
        order by customer_id
    """
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set enable_progress_bar = false")
        frame = con.sql(sql).df()
    frame["mean_repeat_value"] = frame["mean_repeat_value"].astype("float64")
    if not with_values:
        frame = frame.drop(columns="mean_repeat_value")
    return frame

"""Split one raw folder (one file per entity) into daily batches, as a shop's nightly extracts would land:
``<entity>/<day>.csv`` for each of the last days and one file with everything before them. Used to simulate
nights (tests, the benchmark's incremental night) and to try incremental runs by hand:

    loyalty split-nights --raw-dir data/default --out /tmp/nights --days 3
    # night 1: /tmp/nights/history, night 2: history + day 1, ...

Each row goes to the day of its own timestamp (UTC); order lines go with their order, products stay one file.
"""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb

from loyalty.contract import ENTITIES
from loyalty.errors import LoyaltyError
from loyalty.landing import check_landing, csv_reader

# the column that dates each entity's rows (order_items: its order's; products: none, never split)
DAY_COLUMN = {
    "customers": "signup_at",
    "orders": "ordered_at",
    "refunds": "refunded_at",
    "survey_responses": "responded_at",
    "marketing_spend": "spend_month",
    "loyalty_events": "occurred_at",
    "engagement_events": "occurred_at",
}


def split_by_day(raw_dir: Path, out_dir: Path, last_day: date, days: int) -> list[Path]:
    """Write ``out_dir/nights/<n>/`` raw folders: night 0 holds every row up to ``last_day - days``, night k adds
    the rows of day ``last_day - days + k``, each night keeping the earlier nights' files as they were (hard links:
    same bytes, same modification time, as files that landed earlier). Rows whose day cannot be read (bad rows) go with
    the history. Returns the nights' folders, oldest first."""
    landing = check_landing(raw_dir)
    first_day = last_day - timedelta(days=days)
    cut_points = [first_day + timedelta(days=k) for k in range(days + 1)]  # the last day of each batch
    staging = out_dir / "batches"
    if out_dir.exists():
        raise LoyaltyError(f"{out_dir} exists: choose a new folder")
    staging.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        for entity in ENTITIES:
            landed = landing.files[entity.name]
            if not landed.batches:
                continue
            batch = landed.batches[0]
            reader = csv_reader(batch.path, batch.columns, "ignore_errors = true")
            if entity.name == "products":
                shutil.copyfile(batch.path, staging / batch.path.name)
                continue
            if entity.name == "order_items":
                orders = landing.files["orders"].batches[0]
                # one day per order id (an id that occurs twice, a bad row, must not copy its lines)
                order_day = (
                    f"(select order_id, min({_day('ordered_at')}) as day"
                    f" from {csv_reader(orders.path, orders.columns, 'ignore_errors = true')} group by order_id)"
                )
                source = f"(select i.*, o.day from {reader} i left join {order_day} o using (order_id))"
            else:
                source = f"(select *, {_day(DAY_COLUMN[entity.name])} as day from {reader})"
            folder = staging / entity.name
            folder.mkdir()
            con.execute(f"create or replace table rows as select * from {source}")
            for k, cut in enumerate(cut_points):
                if k == 0:
                    condition = f"day is null or day <= date '{cut}'"
                else:
                    condition = f"day = date '{cut}'"
                con.execute(
                    f"copy (select * exclude (day) from rows where {condition}) to '{folder / cut.isoformat()}.csv'"
                    " (header)"
                )
    nights = []
    for k in range(days + 1):
        night = out_dir / "nights" / str(k)
        night.mkdir(parents=True)
        _link(staging / "products.csv", night / "products.csv")
        for folder in sorted(p for p in staging.iterdir() if p.is_dir()):
            (night / folder.name).mkdir()
            for cut in cut_points[: k + 1]:
                source = folder / f"{cut.isoformat()}.csv"
                _link(source, night / folder.name / source.name)
        nights.append(night)
    return nights


def _link(source: Path, target: Path) -> None:
    """The same file in another night's folder: a hard link (no copy; same size and modification time, as a file
    that landed on an earlier night), or a copy keeping the modification time where links are not possible."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _day(column: str) -> str:
    return f"cast(try_cast(nullif(trim({column}), '') as timestamptz) as date)"

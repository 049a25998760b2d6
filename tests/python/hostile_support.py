"""The hostile inputs of issue 11, shared by the tests that build them (test_hostile_values, test_hostile_files on
DuckDB, test_spark_engine on Spark): rows whose values must each be quarantined with a reason, and files a supplier
breaks (a runaway quote, a Latin-1 byte, odd column names, mixed line ends, emails where they do not belong), both
written into a shop generated with `loyalty generate --customers 500 --seed 7`."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

QUOTED_EMAIL = '"leak, quoted"@victim.org'
WRONG_COLUMN_EMAIL = "misplaced.person@victim.org"
MALFORMED_EMAIL = '"also, quoted"@victim.org'


@dataclass(frozen=True)
class Hostile:
    entity: str
    record_key: str
    reason: str  # the reason code it must be quarantined with
    row: str  # the CSV line appended to the entity's file


def file_rows(raw: Path, entity: str) -> list[dict[str, str]]:
    with (raw / f"{entity}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def hostile_rows(raw: Path) -> list[Hostile]:
    """The issue's hostile rows, written against keys of the generated shop (`raw`)."""
    orders = file_rows(raw, "orders")
    completed = next(o for o in orders if o["status"] == "completed")
    cancelled = next(o for o in orders if o["status"] == "cancelled")
    customer = file_rows(raw, "customers")[0]["customer_id"]
    product = file_rows(raw, "products")[0]["product_id"]
    order = completed["order_id"]
    assert completed["ordered_at"] > "2001"  # the refund dated 2001 below is before it
    return [
        # 1. amounts that cannot be stored or would overflow DECIMAL(18, 2) downstream
        Hostile("order_items", f"{order}|901", "amount_out_of_range",
                f"{order},901,{product},9000000000000000000,9999999999999999.99,"),
        Hostile("order_items", f"{order}|902", "amount_out_of_range", f"{order},902,{product},1000001,0.01,"),
        Hostile("order_items", f"{order}|903", "amount_out_of_range", f"{order},903,{product},2,600000000.00,"),
        Hostile("refunds", "RH0000001", "amount_out_of_range", f"RH0000001,{order},2026-10-30T10:00:00Z,1e400"),
        Hostile("products", "PH01", "amount_out_of_range", "PH01,Hostile price,apparel,99999999999999999999"),
        Hostile("marketing_spend", "organic|2026-10-15", "amount_out_of_range", "organic,2026-10-15,1000000000.01,USD"),
        Hostile("survey_responses", "SH0000001", "amount_out_of_range",
                f"SH0000001,{customer},2026-10-01T10:00:00Z,9,8,7,1e400,USD"),
        Hostile("loyalty_events", "LH0000001", "amount_out_of_range",
                f"LH0000001,{customer},2026-10-01T10:00:00Z,points_earned,9223372036854775808,"),
        # 2. timestamps outside 1900..2199 (UTC), offsets outside -14:00..+14:00
        Hostile("orders", "OH0000001", "timestamp_out_of_range", f"OH0000001,{customer},0001-01-01,completed,USD"),
        Hostile("orders", "OH0000002", "timestamp_out_of_range",
                f"OH0000002,{customer},9999-12-31T23:59:59-12:00,completed,USD"),
        Hostile("orders", "OH0000003", "unparseable_timestamp",
                f"OH0000003,{customer},2026-10-01T10:00:00+25:00,completed,USD"),
        Hostile("engagement_events", "EH0000001", "timestamp_out_of_range",
                f"EH0000001,{customer},9999-12-31T23:59:59-12:00,site_visit"),
        Hostile("refunds", "RH0000002", "timestamp_out_of_range", f"RH0000002,{order},0001-01-01,1.00"),
        Hostile("survey_responses", "SH0000002", "unparseable_timestamp",
                f"SH0000002,{customer},2026-10-01T10:00:00-14:30,9,8,7,,"),
        Hostile("marketing_spend", "email|1899-12-01", "timestamp_out_of_range", "email,1899-12-01,10.00,USD"),
        Hostile("loyalty_events", "LH0000002", "timestamp_out_of_range",
                f"LH0000002,{customer},1899-12-31T23:59:59Z,enrolled,,bronze"),
        # 3. amounts in another currency than the reporting one, dated before its first rate (2000-01-01)
        Hostile("orders", "OH0000004", "no_exchange_rate_on_date",
                f"OH0000004,{customer},1999-06-01T10:00:00Z,completed,EUR"),
        Hostile("order_items", "OH0000004|1", "unknown_order", f"OH0000004,1,{product},1,10.00,"),  # its order is held
        Hostile("marketing_spend", "paid_search|1999-12-01", "no_exchange_rate_on_date",
                "paid_search,1999-12-01,10.00,EUR"),
        Hostile("survey_responses", "SH0000003", "no_exchange_rate_on_date",
                f"SH0000003,{customer},1995-03-01T10:00:00Z,8,,,100,EUR"),
        # 3b. text one engine reads as a number, date or timestamp and the other does not (Spark: a type suffix,
        # other scripts' digits, a year or month alone, an hour without minutes, a leading '+'; DuckDB: '_' between
        # digits, infinity, hour 24): no engine reads them (macros/raw_rows/value_parsing.sql)
        Hostile("order_items", f"{order}|904", "unparseable_number", f"{order},904,{product},1_000,1.00,"),
        Hostile("order_items", f"{order}|905", "unparseable_number", f"{order},905,{product},1,1.5d,"),
        Hostile("order_items", f"{order}|906", "unparseable_number", f"{order},906,{product},\u0663,1.00,"),
        Hostile("order_items", f"{order}|907", "unparseable_number", f"{order},907,{product},1,\uff11\uff12,"),
        Hostile("order_items", f"{order}|908", "unparseable_number", f"{order},908,{product},1,1e3.,"),
        Hostile("orders", "OH0000007", "unparseable_timestamp", f"OH0000007,{customer},2024,completed,USD"),
        Hostile("orders", "OH0000008", "unparseable_timestamp", f"OH0000008,{customer},2024-10-05T10,completed,USD"),
        Hostile("orders", "OH0000009", "unparseable_timestamp", f"OH0000009,{customer},+2024-10-05,completed,USD"),
        Hostile("orders", "OH0000010", "unparseable_timestamp", f"OH0000010,{customer},infinity,completed,USD"),
        Hostile("orders", "OH0000011", "unparseable_timestamp",
                f"OH0000011,{customer},2024-10-05T24:00:00Z,completed,USD"),
        Hostile("marketing_spend", "organic|2024-10", "unparseable_timestamp", "organic,2024-10,10.00,USD"),
        Hostile("marketing_spend", "email|-infinity", "unparseable_timestamp", "email,-infinity,10.00,USD"),
        # 4. refunds dated before their order, refunds of a cancelled order
        Hostile("refunds", "RH0000003", "refund_before_order", f"RH0000003,{order},2001-01-01T00:00:00Z,1.00"),
        Hostile("refunds", "RH0000004", "refund_of_cancelled_order",
                f"RH0000004,{cancelled['order_id']},2026-10-30T10:00:00Z,1.00"),
    ]  # fmt: skip


def history_from_1995(raw: Path) -> dict[str, list[str]]:
    """Good rows: the first customer's history starts in 1995 in the reporting currency (USD), before the first
    exchange rate, with a survey response and marketing spend of that time."""
    customer = file_rows(raw, "customers")[0]["customer_id"]
    product = file_rows(raw, "products")[0]["product_id"]
    return {
        "orders": [
            f"OH0000005,{customer},1995-06-01T10:00:00Z,completed,USD",
            f"OH0000006,{customer},1996-02-01T10:00:00-05:00,completed,USD",
        ],
        "order_items": [f"OH0000005,1,{product},2,10.00,1.00", f"OH0000006,1,{product},1,5.00,"],
        "survey_responses": [f"SH0000004,{customer},1995-03-01T10:00:00Z,9,,,100,"],
        "marketing_spend": ["organic,1995-01-01,50.00,USD"],
    }


def append_hostile_rows(raw: Path) -> list[Hostile]:
    """``hostile_rows`` and the good ``history_from_1995`` appended to the shop's files; the hostile rows."""
    bad = hostile_rows(raw)
    appended: dict[str, list[str]] = {}
    for row in bad:
        appended.setdefault(row.entity, []).append(row.row)
    for entity, rows in history_from_1995(raw).items():
        appended.setdefault(entity, []).extend(rows)
    for entity, rows in appended.items():
        with (raw / f"{entity}.csv").open("a", newline="", encoding="utf-8") as handle:
            handle.write("".join(f"{row}\n" for row in rows))
    return bad


def break_files(raw: Path) -> None:
    """The broken files of test_hostile_files' docstring, made from the generated shop's (seed 7) files."""
    refunds = (raw / "refunds.csv").read_bytes().split(b"\n")
    assert refunds[120].startswith(b"R00000120,O00002606,")
    refunds[120] = refunds[120].replace(b",O00002606,", b',"O00002606,')
    (raw / "refunds.csv").write_bytes(b"\n".join(refunds))

    events = (raw / "engagement_events.csv").read_bytes().split(b"\n")
    events[5000] = events[5000].replace(b",site_visit", b",site_v\xe9sit")
    assert b"\xe9" in events[5000]
    (raw / "engagement_events.csv").write_bytes(b"\n".join(events))

    orders = (raw / "orders.csv").read_text().splitlines()
    orders[0] += ',"a""b","{% do exceptions.raise_compiler_error(""pwn"") %}"'
    orders[1:] = [line + ",x,y" for line in orders[1:]]
    orders.append("O99999999,C0000001,2026-10-01T10:00:00Z,teleported,USD,x,y")
    (raw / "orders.csv").write_text("\n".join(orders) + "\n")

    products = (raw / "products.csv").read_text().splitlines()
    (raw / "products.csv").write_bytes(
        "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(products)).encode()
    )

    customers = (raw / "customers.csv").read_text().splitlines()
    customers += [
        'C9000001,2025-01-01T00:00:00Z,"""leak, quoted""@victim.org",US,organic',
        f"C9000002,2025-01-01T00:00:00Z,x@example.org,{WRONG_COLUMN_EMAIL},organic",
        'C9000003,2025-01-01T00:00:00Z,"""also, quoted""@victim.org",US',
    ]
    (raw / "customers.csv").write_text("\n".join(customers) + "\n")

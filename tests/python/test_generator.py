"""The synthetic-data generator (loyalty.generator): deterministic, shaped by the contract, clean unless
asked, bad rows exactly as the manifest says, and purchases that follow BG/NBD."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from loyalty.contract import (
    BY_NAME,
    ENGAGEMENT_EVENT_TYPES,
    ENTITIES,
    LOYALTY_EVENT_TYPES,
    LOYALTY_TIERS,
    ORDER_STATUSES,
)
from loyalty.errors import LoyaltyError
from loyalty.generator import (
    BAD_ROW_KINDS,
    COUNTRIES,
    COUNTRY_UTC_OFFSET_MINUTES,
    EXACT_DUPLICATE,
    UNITS_PER_USD,
    BgNbdParams,
    GammaGammaParams,
    _Calendar,
    add_generate_arguments,
    expected_orders,
    generate,
    run_generate,
)

SMALL = 1500  # customers in the shared data sets
SEED = 3
CHUNK = 400  # several chunks, so ids and bad rows cross chunk boundaries


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate(out, SMALL, SEED, chunk_size=CHUNK, progress=False, force=True)
    return out


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bad")
    generate(out, SMALL, SEED, chunk_size=CHUNK, bad_row_rate=0.05, progress=False, force=True)
    return out


def connect(raw: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per entity, every value as text (as the warehouse reads them)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    for entity in ENTITIES:
        path = raw / f"{entity.name}.csv"
        if path.exists():
            reader = f"read_csv('{path}', header = true, delim = ',', quote = '\"', all_varchar = true)"
        else:
            reader = f"(select columns(*)::varchar from read_parquet('{raw / f'{entity.name}.parquet'}'))"
        con.execute(f"create view {entity.name} as select * from {reader}")
    return con


def scalar(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()[0]


def manifest(raw: Path) -> dict:
    return json.loads((raw / "manifest.json").read_text())


# ------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_bytes_and_another_seed_different_data(tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        generate(tmp_path / name, 400, seed, chunk_size=150, bad_row_rate=0.05, progress=False)
        runs[name] = {p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())}
    assert len(runs["a"]) == len(ENTITIES) + 1
    assert runs["a"] == runs["b"]
    assert runs["a"]["orders.csv"] != runs["c"]["orders.csv"]
    assert runs["a"]["products.csv"] != runs["c"]["products.csv"]


def test_bad_rows_are_added_on_top_of_the_same_clean_rows(clean: Path, bad: Path) -> None:
    con = connect(clean)
    for entity in ENTITIES:
        con.execute(
            f"create view bad_{entity.name} as select * from read_csv('{bad / entity.name}.csv', "
            "header = true, all_varchar = true)"
        )
        missing = scalar(con, f"select count(*) from (from {entity.name} except all from bad_{entity.name})")
        assert missing == 0, entity.name
        added = scalar(con, f"select count(*) from bad_{entity.name}") - scalar(
            con, f"select count(*) from {entity.name}"
        )
        counts = manifest(bad)
        assert added == sum(counts["injected"][entity.name].values()) + counts["exact_duplicates"][entity.name]


# ------------------------------------------------------------------------------------------- shape


def test_files_have_exactly_the_contract_columns(clean: Path) -> None:
    for entity in ENTITIES:
        header = (clean / f"{entity.name}.csv").read_text().splitlines()[0]
        assert header.replace('"', "").split(",") == list(entity.all_columns), entity.name
    assert BY_NAME["survey_responses"].all_columns[-1] == "currency"


def test_manifest_round_trips_the_parameters_and_counts_the_rows(tmp_path: Path) -> None:
    bg, gg = BgNbdParams(r=0.5, alpha=12.0, a=1.5, b=4.0), GammaGammaParams(p=3.0, q=5.0, gamma=20.0)
    out = tmp_path / "raw"
    returned = generate(
        out,
        300,
        5,
        start=date(2024, 1, 15),
        end=date(2024, 12, 31),
        bgnbd=bg,
        gamma_gamma=gg,
        bad_row_rate=0.02,
        progress=False,
    )
    written = manifest(out)
    assert written == returned
    assert (out / "manifest.json").read_text() == json.dumps(written, indent=2, sort_keys=True) + "\n"
    assert written["seed"] == 5 and written["customers"] == 300 and written["format"] == "csv"
    assert (written["start"], written["end"], written["data_end_date"]) == (
        "2024-01-15",
        "2024-12-31",
        "2024-12-31",
    )
    assert written["time_unit"] == "day"
    assert written["bgnbd"] == {"r": 0.5, "alpha": 12.0, "a": 1.5, "b": 4.0}
    assert written["gamma_gamma"] == {"p": 3.0, "q": 5.0, "gamma": 20.0}
    assert written["bad_row_rate"] == 0.02
    assert set(written["rows"]) == {e.name for e in ENTITIES}
    for name, rows in written["rows"].items():
        assert rows == len((out / f"{name}.csv").read_text().splitlines()) - 1, name
    assert written["rows"]["customers"] >= 300
    assert written["rows"]["marketing_spend"] >= 12 * 6  # every channel, every month
    assert written["generator_version"]


# ------------------------------------------------------------------------------------------- clean data


def test_clean_data_breaks_no_rule(clean: Path) -> None:
    con = connect(clean)
    assert manifest(clean)["injected"] == {name: {} for name in BAD_ROW_KINDS}
    assert not any(manifest(clean)["exact_duplicates"].values())
    # keys: present and unique
    for entity in ENTITIES:
        key = ", ".join(entity.key)
        nulls = " or ".join(f"{k} is null" for k in entity.key)
        assert scalar(con, f"select count(*) from {entity.name} where {nulls}") == 0, entity.name
        assert scalar(con, f"select count(*) - count(distinct ({key})) from {entity.name}") == 0, entity.name
        assert scalar(con, f"select count(*) from {entity.name}") > 0, entity.name
    # references
    for child, column, parent, parent_key in [
        ("orders", "customer_id", "customers", "customer_id"),
        ("order_items", "order_id", "orders", "order_id"),
        ("order_items", "product_id", "products", "product_id"),
        ("refunds", "order_id", "orders", "order_id"),
        ("survey_responses", "customer_id", "customers", "customer_id"),
        ("loyalty_events", "customer_id", "customers", "customer_id"),
        ("engagement_events", "customer_id", "customers", "customer_id"),
    ]:
        orphans = scalar(
            con,
            f"select count(*) from {child} where {column} is not null "
            f"and {column} not in (select {parent_key} from {parent})",
        )
        assert orphans == 0, (child, column)
    for table, column in [
        ("orders", "customer_id"),
        ("loyalty_events", "customer_id"),
        ("engagement_events", "customer_id"),
        ("order_items", "product_id"),
    ]:
        assert scalar(con, f"select count(*) from {table} where {column} is null") == 0
    # categorical values
    for table, column, allowed in [
        ("orders", "status", ORDER_STATUSES),
        ("orders", "currency", tuple(UNITS_PER_USD)),
        ("survey_responses", "currency", tuple(UNITS_PER_USD)),
        ("marketing_spend", "currency", ("USD",)),
        ("loyalty_events", "event_type", LOYALTY_EVENT_TYPES),
        ("engagement_events", "event_type", ENGAGEMENT_EVENT_TYPES),
        ("customers", "country", COUNTRIES),
    ]:
        values = {row[0] for row in con.execute(f"select distinct {column} from {table}").fetchall()}
        assert values == set(allowed), (table, column, values)
    assert {r[0] for r in con.execute("select distinct tier from loyalty_events").fetchall()} == {
        None,
        *LOYALTY_TIERS,
    }
    # loyalty points and tiers only where they apply
    assert (
        scalar(
            con,
            """select count(*) from loyalty_events where
        (points is not null) <> (event_type in ('points_earned', 'points_redeemed'))
        or (tier is not null) <> (event_type in ('enrolled', 'tier_changed'))
        or (points is not null and not regexp_full_match(points, '[0-9]+'))""",
        )
        == 0
    )
    # amounts: two decimals, never negative; quantities and line numbers whole; discounts within the line
    money = r"[0-9]+\.[0-9]{2}"
    for table, column in [
        ("products", "list_price"),
        ("order_items", "unit_price"),
        ("order_items", "discount_amount"),
        ("refunds", "amount"),
        ("marketing_spend", "amount"),
        ("survey_responses", "category_monthly_spend"),
    ]:
        bad = scalar(
            con,
            f"select count(*) from {table} where {column} is not null and not regexp_full_match({column}, '{money}')",
        )
        assert bad == 0, (table, column)
    assert scalar(con, "select count(*) from order_items where unit_price::decimal(18, 2) <= 0") == 0
    assert (
        scalar(
            con,
            """select count(*) from order_items where quantity not in ('1', '2', '3')
        or discount_amount::decimal(18, 2) > quantity::int * unit_price::decimal(18, 2)""",
        )
        == 0
    )
    assert (
        scalar(
            con,
            """select count(*) from (select order_id, count(*) n, max(line_number::int) m,
        min(line_number::int) l from order_items group by 1) where n <> m or l <> 1 or n > 4""",
        )
        == 0
    )
    assert scalar(con, "select count(*) from orders where order_id not in (select order_id from order_items)") == 0
    # scores: whole numbers 0-10; recommend always there
    assert scalar(con, "select count(*) from survey_responses where recommend_score is null") == 0
    for column in ("recommend_score", "repurchase_intent_score", "cross_buy_intent_score"):
        bad = scalar(
            con,
            f"select count(*) from survey_responses where {column} is not null "
            f"and not regexp_full_match({column}, '[0-9]|10')",
        )
        assert bad == 0, column
    # timestamps: ISO-8601 and inside [start, end]
    for table, column in [
        ("customers", "signup_at"),
        ("orders", "ordered_at"),
        ("refunds", "refunded_at"),
        ("survey_responses", "responded_at"),
        ("loyalty_events", "occurred_at"),
        ("engagement_events", "occurred_at"),
    ]:
        bad = scalar(
            con,
            f"""select count(*) from {table} where try_cast({column} as timestamptz) is null
            or {column}::timestamptz < timestamptz '2023-11-01 00:00:00+00'
            or {column}::timestamptz >= timestamptz '2026-11-01 00:00:00+00'""",
        )
        assert bad == 0, (table, column)


def test_refunds_stay_within_their_order(clean: Path) -> None:
    con = connect(clean)
    con.execute("""create view gross as select order_id,
        sum(quantity::int * unit_price::decimal(18, 2) - discount_amount::decimal(18, 2)) gross
        from order_items group by 1""")
    assert (
        scalar(
            con,
            """select count(*) from (select order_id, sum(amount::decimal(18, 2)) refunded
        from refunds group by 1) join gross using (order_id) where refunded > gross""",
        )
        == 0
    )
    assert scalar(con, "select count(*) from refunds join orders using (order_id) where status <> 'completed'") == 0
    days = con.execute("""select min(lag) / 86400, max(lag) / 86400 from (
        select epoch(refunded_at::timestamptz) - epoch(ordered_at::timestamptz) lag
        from refunds join orders using (order_id))""").fetchone()
    assert 1 <= days[0] and days[1] <= 41  # 1-30 days, a second partial refund up to 10 days later
    full = scalar(con, "select avg((amount::decimal(18, 2) = gross)::int) from refunds join gross using (order_id)")
    assert 0.3 < full < 0.8  # full and partial refunds
    share = scalar(
        con,
        "select count(distinct order_id) / (select count(*) from orders where status = 'completed') from refunds",
    )
    assert 0.025 < share < 0.055


def test_customers_orders_and_times_are_consistent(clean: Path) -> None:
    con = connect(clean)
    # signup up to 30 days before the first order; nothing of a customer's before the signup
    assert (
        scalar(
            con,
            """select count(*) from customers c join (select customer_id,
        min(ordered_at::timestamptz) first_order from orders group by 1) using (customer_id)
        where first_order < signup_at::timestamptz
            or first_order > signup_at::timestamptz + interval 30 day""",
        )
        == 0
    )
    for table, column in [("loyalty_events", "occurred_at"), ("engagement_events", "occurred_at")]:
        early = scalar(
            con,
            f"select count(*) from {table} t join customers using (customer_id) "
            f"where t.{column}::timestamptz < signup_at::timestamptz",
        )
        assert early == 0, table
    # about 5 % never order, about 1 % only ever cancel
    never = scalar(con, "select avg((customer_id not in (select customer_id from orders))::int) from customers")
    assert 0.03 < never < 0.075
    only_cancelled = (
        scalar(
            con,
            """select count(*) from (select customer_id from orders group by 1
        having bool_and(status = 'cancelled'))""",
        )
        / SMALL
    )
    assert 0.002 < only_cancelled < 0.025
    # emails: messy spelling, one per customer once trimmed and lower-cased
    assert scalar(con, "select count(distinct trim(lower(email))) from customers") == SMALL
    assert scalar(con, "select count(*) from customers where email <> trim(email)") > 0
    assert scalar(con, "select count(*) from customers where email <> lower(email)") > 0
    # each order's timestamp carries its customer's offset, or none at all (about 10 %)
    suffix = {
        c: ("Z" if m == 0 else f"{'+' if m > 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}")
        for c, m in zip(COUNTRIES, COUNTRY_UTC_OFFSET_MINUTES, strict=True)
    }
    rows = con.execute("""select country, case when regexp_matches(ordered_at, '(Z|[+-][0-9]{2}:[0-9]{2})$')
        then regexp_extract(ordered_at, '(Z|[+-][0-9]{2}:[0-9]{2})$') else '' end, count(*)
        from orders join customers using (customer_id) group by all""").fetchall()
    assert all(sfx in ("", suffix[country]) for country, sfx, _ in rows)
    no_offset = sum(n for _, sfx, n in rows if sfx == "") / sum(n for *_, n in rows)
    assert 0.07 < no_offset < 0.13
    # marketing spend: one row per channel and month, on the first of the month
    assert scalar(con, "select count(*) from marketing_spend") == 6 * 36
    assert (
        scalar(
            con,
            "select count(*) from marketing_spend where not regexp_full_match(spend_month, '20[0-9]{2}-[0-9]{2}-01')",
        )
        == 0
    )


def test_timestamps_are_the_simulated_instants() -> None:
    cal = _Calendar(date(2023, 11, 1), date(2026, 10, 31))
    rng = np.random.default_rng(0)
    seconds = np.concatenate(([0, cal.seconds - 1], rng.integers(0, cal.seconds, 2000)))
    zones = rng.integers(0, len(COUNTRIES) + 1, len(seconds))
    start = datetime(2023, 11, 1, tzinfo=UTC)
    for text, s, zone in zip(cal.timestamps(seconds, zones).to_pylist(), seconds, zones, strict=True):
        parsed = datetime.fromisoformat(text)
        if zone == len(COUNTRIES):
            assert parsed.tzinfo is None
            parsed = parsed.replace(tzinfo=UTC)
        else:
            assert parsed.utcoffset() == timedelta(minutes=COUNTRY_UTC_OFFSET_MINUTES[zone])
            assert text.endswith("Z") == (COUNTRY_UTC_OFFSET_MINUTES[zone] == 0)
        assert parsed == start + timedelta(seconds=int(s))


# ------------------------------------------------------------------------------------------- bad rows

# how to recognise each kind of added row in the files: (entity, kind) -> SQL count
RECOGNISE = {
    ("customers", "missing_key"): "select count(*) from customers where customer_id is null",
    ("customers", "conflicting_duplicate_key"): """select count(*) from customers where customer_id in
        (select customer_id from customers group by 1 having count(distinct email) > 1)""",
    ("customers", "unparseable_timestamp"): "select count(*) from customers where signup_at = 'not-a-date'",
    ("products", "missing_key"): "select count(*) from products where product_id is null",
    ("products", "unparseable_number"): "select count(*) from products where list_price = 'abc'",
    ("products", "negative_amount"): "select count(*) from products where list_price like '-%'",
    ("orders", "missing_key"): "select count(*) from orders where order_id is null",
    ("orders", "conflicting_duplicate_key"): """select count(*) from orders where order_id in
        (select order_id from orders group by 1 having count(distinct status) > 1)""",
    ("orders", "unparseable_timestamp"): "select count(*) from orders where ordered_at = 'not-a-date'",
    ("orders", "unknown_customer"): "select count(*) from orders where customer_id like 'CX%'",
    ("orders", "unknown_currency"): "select count(*) from orders where currency = 'XYZ'",
    ("orders", "invalid_value"): "select count(*) from orders where status = 'shipped'",
    ("order_items", "unknown_order"): "select count(*) from order_items where order_id like 'OX%'",
    ("order_items", "unknown_product"): "select count(*) from order_items where product_id = 'P9999'",
    ("order_items", "negative_quantity"): "select count(*) from order_items where quantity = '-1'",
    ("order_items", "negative_amount"): "select count(*) from order_items where unit_price like '-%'",
    ("order_items", "unparseable_number"): "select count(*) from order_items where quantity = 'two'",
    ("refunds", "unknown_order"): "select count(*) from refunds where order_id like 'OX%'",
    ("refunds", "refund_exceeds_order"): """select count(*) from refunds r join (select order_id,
        sum(quantity::int * unit_price::decimal(18, 2) - discount_amount::decimal(18, 2)) gross
        from (select distinct * from order_items) where line_number::int < 900 group by 1) using (order_id)
        where try_cast(amount as decimal(18, 2)) > gross""",
    ("refunds", "negative_amount"): "select count(*) from refunds where amount like '-%'",
    ("refunds", "unparseable_timestamp"): "select count(*) from refunds where refunded_at = 'not-a-date'",
    ("survey_responses", "missing_key"): "select count(*) from survey_responses where response_id is null",
    ("survey_responses", "score_out_of_range"): """select count(*) from survey_responses
        where recommend_score in ('11', '-1', '7.5')""",
    (
        "survey_responses",
        "unparseable_number",
    ): "select count(*) from survey_responses where recommend_score = 'seven'",
    ("survey_responses", "unparseable_timestamp"): """select count(*) from survey_responses
        where responded_at = 'not-a-date'""",
    (
        "loyalty_events",
        "unknown_customer",
    ): "select count(*) from loyalty_events where customer_id like 'CX%'",
    ("loyalty_events", "invalid_value"): "select count(*) from loyalty_events where event_type = 'bogus'",
    (
        "engagement_events",
        "unknown_customer",
    ): "select count(*) from engagement_events where customer_id like 'CX%'",
    ("engagement_events", "unparseable_timestamp"): """select count(*) from engagement_events
        where occurred_at = 'not-a-date'""",
    ("marketing_spend", "unknown_currency"): "select count(*) from marketing_spend where currency = 'XYZ'",
    ("marketing_spend", "negative_amount"): "select count(*) from marketing_spend where amount like '-%'",
}


def test_every_kind_of_bad_row_is_in_the_files_as_the_manifest_counts_it(bad: Path) -> None:
    con = connect(bad)
    counts = manifest(bad)
    kinds = {(e, k) for e, ks in BAD_ROW_KINDS.items() for k in ks if k != EXACT_DUPLICATE}
    assert set(RECOGNISE) == kinds
    for (entity, kind), sql in RECOGNISE.items():
        injected = counts["injected"][entity].get(kind, 0)
        assert injected > 0, (entity, kind)
        assert scalar(con, sql) == injected, (entity, kind)
    for entity in ENTITIES:
        copies = scalar(con, f"select count(*) - count(distinct {entity.name}) from {entity.name}")
        assert copies == counts["exact_duplicates"][entity.name], entity.name
        expected = 1 if EXACT_DUPLICATE in BAD_ROW_KINDS[entity.name] else 0
        assert (copies > 0) == expected, entity.name
    # about the rate asked for
    for entity in ENTITIES:
        added = sum(counts["injected"][entity.name].values()) + counts["exact_duplicates"][entity.name]
        clean_rows = counts["rows"][entity.name] - added
        assert 0.01 * clean_rows <= added <= 0.1 * clean_rows + 3, entity.name


def test_bad_rows_are_self_contained(bad: Path) -> None:
    con = connect(bad)
    # new bad orders have no lines or refunds; bad lines on real orders use new line numbers
    assert (
        scalar(
            con,
            """select count(*) from order_items where order_id in (select order_id from orders
        where ordered_at = 'not-a-date' or customer_id like 'CX%' or currency = 'XYZ' or status = 'shipped'
        or order_id like 'OB%')""",
        )
        == 0
    )
    assert scalar(con, "select count(*) from refunds where order_id like 'OB%'") == 0
    assert (
        scalar(
            con,
            """select count(*) from order_items where line_number::int >= 900
        and order_id not like 'OX%' and order_id not in (select order_id from orders)""",
        )
        == 0
    )
    # an over-refund is its order's only refund
    assert (
        scalar(
            con,
            """select count(*) from (select order_id from refunds where order_id in (select order_id
        from refunds where refund_id like 'RB%' and amount not like '-%' and order_id not like 'OX%'
        and refunded_at <> 'not-a-date') group by order_id having count(*) > 1)""",
        )
        == 0
    )
    # no new bad customer has any order or event
    for table in ("orders", "loyalty_events", "engagement_events", "survey_responses"):
        assert scalar(con, f"select count(*) from {table} where customer_id like 'CB%'") == 0, table


# ------------------------------------------------------------------------------------------- parquet


def test_parquet_holds_the_same_rows_as_csv(tmp_path: Path, bad: Path) -> None:
    out = tmp_path / "parquet"
    written = generate(out, SMALL, SEED, chunk_size=CHUNK, bad_row_rate=0.05, fmt="parquet", progress=False)
    assert written["format"] == "parquet"
    csv_manifest = manifest(bad)
    for key in ("rows", "injected", "exact_duplicates"):
        assert written[key] == csv_manifest[key]
    con = connect(out)
    for entity in ENTITIES:
        table = pq.read_table(out / f"{entity.name}.parquet")
        assert table.column_names == list(entity.all_columns)
        assert all(str(t) == "string" for t in table.schema.types)
        assert table.num_rows == written["rows"][entity.name]
        con.execute(
            f"create view csv_{entity.name} as select * from read_csv('{bad / entity.name}.csv', "
            "header = true, all_varchar = true)"
        )
        diff = scalar(
            con,
            f"select count(*) from ((from {entity.name} except all from csv_{entity.name}) "
            f"union all (from csv_{entity.name} except all from {entity.name}))",
        )
        assert diff == 0, entity.name


# ------------------------------------------------------------------------------------------- behaviour


def test_purchases_follow_bgnbd(tmp_path: Path) -> None:
    customers = 20_000
    generate(tmp_path, customers, 1, progress=False)
    con = connect(tmp_path)
    expected = expected_orders(1096)
    completed_per_buyer = scalar(
        con, "select count(*) / count(distinct customer_id) from orders where status = 'completed'"
    )
    assert completed_per_buyer == pytest.approx(expected["completed_per_bgnbd_customer"], rel=0.04)
    per_customer = scalar(con, "select count(*) from orders") / customers
    assert per_customer == pytest.approx(expected["orders_per_customer"], rel=0.05)
    assert 7.5 < expected["orders_per_customer"] < 8.5
    cancelled = scalar(
        con,
        """select count(*) filter (where status = 'cancelled')
        / count(*) filter (where status = 'completed') from orders""",
    )
    assert 0.04 < cancelled < 0.075  # 5 % extra, plus the only-cancelled customers
    # about a quarter are members, and members buy more (they are selected on lambda)
    members = scalar(con, "select count(distinct customer_id) from loyalty_events where event_type = 'enrolled'")
    assert members / customers == pytest.approx(0.25, abs=0.02)
    by_membership = dict(
        con.execute("""select customer_id in (select customer_id from loyalty_events), count(*)
        / count(distinct customer_id) from orders where status = 'completed' group by 1""").fetchall()
    )
    assert by_membership[True] > 1.5 * by_membership[False]
    # engagement about 2 events per order; surveys from about 30 % of customers
    per_order = scalar(con, "select count(*) from engagement_events") / scalar(con, "select count(*) from orders")
    assert 1.6 < per_order < 2.4
    respondents = scalar(con, "select count(distinct customer_id) from survey_responses") / customers
    assert 0.25 < respondents < 0.35
    # higher-frequency customers recommend more
    assert (
        scalar(
            con,
            """select corr(recommend_score::int, n) from survey_responses
        join (select customer_id, count(*) n from orders group by 1) using (customer_id)""",
        )
        > 0.1
    )


def test_stated_category_spend_is_mostly_above_the_real_spend(clean: Path) -> None:
    con = connect(clean)
    below = scalar(
        con,
        """with spend as (
            select s.response_id, any_value(s.category_monthly_spend::decimal(18, 2)) * 12 stated,
                coalesce(sum(i.quantity::int * i.unit_price::decimal(18, 2)
                    - i.discount_amount::decimal(18, 2)), 0) real
            from survey_responses s
            left join orders o on o.customer_id = s.customer_id and o.status = 'completed'
                and o.ordered_at::timestamptz <= s.responded_at::timestamptz
                and o.ordered_at::timestamptz > s.responded_at::timestamptz - interval 365 day
            left join order_items i on i.order_id = o.order_id
            where s.customer_id is not null and s.category_monthly_spend is not null
            group by 1)
        select avg((stated < real)::int) from spend""",
    )
    assert 0.02 < below < 0.25


# ------------------------------------------------------------------------------------------- usage


def test_a_non_empty_folder_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    generate(out, 50, progress=False)
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        generate(out, 50, progress=False)
    generate(out, 60, fmt="parquet", progress=False, force=True)
    assert (out / "notes.txt").read_text() == "keep me"
    assert not list(out.glob("*.csv"))  # the other format's files are replaced, not left behind
    assert manifest(out)["customers"] == 60


@pytest.mark.parametrize(
    "kwargs",
    [
        {"customers": 0},
        {"fmt": "json"},
        {"bad_row_rate": 0.9},
        {"end": date(2020, 1, 1)},
        {"chunk_size": 0},
        {"bgnbd": BgNbdParams(r=-1)},
    ],
)
def test_invalid_arguments_are_refused(tmp_path: Path, kwargs: dict) -> None:
    arguments = {"customers": 10, **kwargs}
    with pytest.raises(ValueError):
        generate(tmp_path / "raw", progress=False, **arguments)


def test_cli_flags_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    out = tmp_path / "raw"
    args = parser.parse_args(
        [
            "--customers",
            "200",
            "--out",
            str(out),
            "--seed",
            "4",
            "--start",
            "2024-01-01",
            "--end",
            "2024-06-30",
            "--format",
            "parquet",
            "--bad-row-rate",
            "0.01",
            "--bgnbd-r",
            "0.7",
            "--bgnbd-alpha",
            "20",
            "--bgnbd-a",
            "1.2",
            "--bgnbd-b",
            "5",
            "--gg-p",
            "5",
            "--gg-q",
            "3",
            "--gg-gamma",
            "30",
            "--chunk-size",
            "64",
            "--no-progress",
        ]
    )
    assert run_generate(args) == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed and "orders.parquet" in printed and " s " in printed
    written = manifest(out)
    assert written["bgnbd"] == {"r": 0.7, "alpha": 20.0, "a": 1.2, "b": 5.0}
    assert written["gamma_gamma"] == {"p": 5.0, "q": 3.0, "gamma": 30.0}
    assert (written["seed"], written["chunk_size"], written["end"]) == (4, 64, "2024-06-30")
    with pytest.raises(LoyaltyError, match="not empty"):
        run_generate(args)
    args.force = True
    assert run_generate(args) == 0

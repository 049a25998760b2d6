"""Synthetic raw data for the warehouse: realistic enough to exercise every loyalty metric, with known truth.

Repeat purchases follow BG/NBD (Fader, Hardie and Lee 2005) exactly: per customer a purchase rate
lambda ~ Gamma(r, 1/alpha) per day and a drop-out probability p ~ Beta(a, b); after the first purchase the
customer buys as a Poisson process and drops out with probability p after each repeat purchase. Order values
follow Gamma-Gamma: nu ~ Gamma(q, 1/gamma) per customer, each order value ~ Gamma(p, 1/nu) (USD). The parameters
are written to manifest.json so the predictive model can be checked against them. Cancelled orders are extra
orders on top, so the completed ones stay exactly BG/NBD.

Customers are generated in chunks with their own random stream (``default_rng([seed, chunk])``) and every
chunk's rows are appended to the files at once: memory stays bounded by the chunk, and the same seed gives the
same bytes. Bad rows (``bad_row_rate``) are added as extra, self-contained rows, so each ends in quarantine
alone with a known reason; the manifest counts them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from loyalty import __version__
from loyalty.contract import BY_NAME, ENTITIES
from loyalty.errors import LoyaltyError

COUNTRIES = ("US", "GB", "DE", "FR", "CA", "AU")
COUNTRY_WEIGHTS = (0.45, 0.15, 0.15, 0.1, 0.1, 0.05)
COUNTRY_CURRENCY = ("USD", "GBP", "EUR", "EUR", "CAD", "AUD")
COUNTRY_OFFSET_MINUTES = (-300, 0, 60, 60, -300, 600)
UNITS_PER_USD = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "CAD": 1.36, "AUD": 1.52}  # as seeds/exchange_rates.csv
CHANNELS = ("organic", "paid_search", "social", "email", "referral", "affiliate")
CHANNEL_WEIGHTS = (0.35, 0.25, 0.15, 0.1, 0.1, 0.05)
CHANNEL_COST_PER_CUSTOMER = (3.0, 45.0, 30.0, 8.0, 15.0, 25.0)  # USD
CATEGORIES = ("apparel", "beauty", "books", "electronics", "garden", "home", "sports", "toys")
PRODUCTS_PER_CATEGORY = 25
TIERS = ((0, "bronze"), (500, "silver"), (1500, "gold"))
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters; alpha is in days."""

    r: float = 0.9
    alpha: float = 25.0
    a: float = 0.8
    b: float = 8.0


@dataclass(frozen=True)
class GammaGammaParams:
    p: float = 6.0
    q: float = 4.0
    gamma: float = 30.0


# ----------------------------------------------------------------------------------------------- text helpers


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0"), "")


def _money(values: np.ndarray) -> pa.Array:
    return pa.array(np.round(values, 2)).cast(pa.decimal128(18, 2)).cast(pa.string())


def _timestamps(days: np.ndarray, start: date, offset_minutes: np.ndarray, no_offset: np.ndarray) -> pa.Array:
    """ISO-8601 text of instants ``days`` after ``start`` (UTC): local wall time plus its offset, or UTC without
    any offset where ``no_offset``."""
    base = np.datetime64(start.isoformat(), "s")
    utc = base + np.round(days * SECONDS_PER_DAY).astype("timedelta64[s]")
    offsets = np.where(no_offset, 0, offset_minutes).astype(np.int64)
    local = utc + (offsets * 60).astype("timedelta64[s]")
    text = pc.strftime(pa.array(local, pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S")
    sign = np.where(offsets < 0, "-", "+")
    hours, minutes = np.abs(offsets) // 60, np.abs(offsets) % 60
    suffix = np.char.add(np.char.add(sign, np.char.zfill(hours.astype(str), 2)), ":")
    suffix = np.char.add(suffix, np.char.zfill(minutes.astype(str), 2))
    suffix = np.where(offsets == 0, "Z", suffix)
    suffix = np.where(no_offset, "", suffix)
    return pc.binary_join_element_wise(text, pa.array(suffix), "")


def _text(values) -> pa.Array:
    return pa.array(np.asarray(values).astype(str))


def _empty_where(array: pa.Array, mask: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(mask), pa.scalar("", pa.string()), array.cast(pa.string()))


def _null_if_empty(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


def _within_customer_rank(owner: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted ``owner`` array."""
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    lengths = np.diff(np.r_[starts, len(owner)])
    return np.arange(len(owner)) - np.repeat(starts, lengths)


# ----------------------------------------------------------------------------------------------- writers


class _Writers:
    """One streaming writer per raw file; every column is written as text in the contract's order."""

    def __init__(self, out_dir: Path, fmt: str) -> None:
        self.out_dir, self.fmt = out_dir, fmt
        self.writers: dict[str, object] = {}
        self.rows: dict[str, int] = {e.name: 0 for e in ENTITIES}

    def columns(self, entity: str) -> tuple[str, ...]:
        return BY_NAME[entity].all_columns

    def write(self, entity: str, table: pa.Table) -> None:
        table = table.select(list(self.columns(entity)))
        # an empty value is a null: an empty CSV field, a null in Parquet
        table = pa.table({c: _null_if_empty(table[c].cast(pa.string())) for c in table.column_names})
        if entity not in self.writers:
            path = self.out_dir / f"{entity}.{self.fmt}"
            self.writers[entity] = (
                pq.ParquetWriter(path, table.schema)
                if self.fmt == "parquet"
                else pacsv.CSVWriter(path, table.schema, write_options=pacsv.WriteOptions(quoting_style="needed"))
            )
        if table.num_rows:
            self.writers[entity].write_table(table)
        self.rows[entity] += table.num_rows

    def close(self) -> None:
        for entity in self.rows:  # every file exists, even when empty
            if entity not in self.writers:
                self.write(entity, pa.table({c: pa.array([], pa.string()) for c in self.columns(entity)}))
        for writer in self.writers.values():
            writer.close()


# ----------------------------------------------------------------------------------------------- generation


@dataclass
class _Chunk:
    tables: dict[str, pa.Table]
    acquisitions: np.ndarray  # channel x month counts of first orders
    order_facts: tuple[np.ndarray, np.ndarray, np.ndarray]  # per order: gross (local), completed, refunded


def _products(rng: np.random.Generator) -> pa.Table:
    n = len(CATEGORIES) * PRODUCTS_PER_CATEGORY
    category = np.repeat(np.arange(len(CATEGORIES)), PRODUCTS_PER_CATEGORY)
    price = np.round(rng.lognormal(np.log(25), 0.6, n), 2)
    numbers = np.arange(1, n + 1)
    return pa.table(
        {
            "product_id": _ids("P", numbers, 4),
            "product_name": pc.binary_join_element_wise(
                pa.array(np.array(CATEGORIES)[category]), _ids("item ", numbers, 4), " "
            ),
            "category": pa.array(np.array(CATEGORIES)[category]),
            "list_price": _money(price),
        }
    )


def _simulate_chunk(
    rng: np.random.Generator,
    first_number: int,
    n: int,
    days: int,
    start: date,
    bgnbd: BgNbdParams,
    gg: GammaGammaParams,
    order_offset: int,
    months: int,
) -> _Chunk:
    numbers = np.arange(first_number, first_number + n)
    country = rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS)
    channel = rng.choice(len(CHANNELS), n, p=CHANNEL_WEIGHTS)
    rate_local = np.array([UNITS_PER_USD[COUNTRY_CURRENCY[c]] for c in range(len(COUNTRIES))])[country]
    offset = np.array(COUNTRY_OFFSET_MINUTES)[country]

    orders_ever = rng.random(n) >= 0.05  # 5 % sign up and never order
    only_cancelled = orders_ever & (rng.random(n) < 0.01)
    lam = rng.gamma(bgnbd.r, 1.0 / bgnbd.alpha, n)
    drop = rng.beta(bgnbd.a, bgnbd.b, n)
    nu = rng.gamma(gg.q, 1.0 / gg.gamma, n)
    home = rng.integers(0, len(CATEGORIES), n)
    brancher = rng.random(n) < 0.4
    # mild growth: first purchases are denser later in the window
    t0 = days * np.sqrt(rng.random(n))

    # ---- completed orders: first purchase + BG/NBD repeats
    window = np.maximum(days - t0, 0.0)
    in_window = rng.poisson(lam * window)
    repeats_before_dropout = rng.geometric(np.clip(drop, 1e-9, 1.0))
    repeats = np.where(orders_ever, np.minimum(in_window, repeats_before_dropout), 0)
    owner_all = np.repeat(np.arange(n), np.where(orders_ever, in_window, 0))
    times_all = t0[owner_all] + rng.random(len(owner_all)) * window[owner_all]
    order = np.lexsort((times_all, owner_all))
    owner_all, times_all = owner_all[order], times_all[order]
    keep = _within_customer_rank(owner_all) < repeats[owner_all]
    buyers = np.flatnonzero(orders_ever)
    owner = np.r_[buyers, owner_all[keep]]
    when = np.r_[t0[buyers], times_all[keep]]
    completed = ~only_cancelled[owner]
    # extra cancelled orders (about 5 % as many as completed ones), between the first purchase and the end
    n_cancel = rng.binomial(len(owner), 0.05)
    cancel_owner = rng.choice(buyers, n_cancel) if len(buyers) else np.array([], dtype=int)
    cancel_when = t0[cancel_owner] + rng.random(n_cancel) * window[cancel_owner]
    owner = np.r_[owner, cancel_owner]
    when = np.r_[when, cancel_when]
    completed = np.r_[completed, np.zeros(n_cancel, bool)]
    order = np.lexsort((when, owner))
    owner, when, completed = owner[order], when[order], completed[order]
    n_orders = len(owner)
    order_numbers = np.arange(order_offset + 1, order_offset + n_orders + 1)
    order_ids = _ids("O", order_numbers, 9)
    rank = _within_customer_rank(owner)
    value_usd = rng.gamma(gg.p, 1.0 / nu[owner])
    no_offset = rng.random(n_orders) < 0.1

    orders = pa.table(
        {
            "order_id": order_ids,
            "customer_id": _ids("C", numbers[owner], 7),
            "ordered_at": _timestamps(when, start, offset[owner], no_offset),
            "status": pa.array(np.where(completed, "completed", "cancelled")),
            "currency": pa.array(np.array(COUNTRY_CURRENCY)[country[owner]]),
        }
    )

    # ---- order lines: the order value split over 1-4 lines, in the order's currency
    lines_per_order = 1 + rng.binomial(3, 0.3, n_orders)
    line_order = np.repeat(np.arange(n_orders), lines_per_order)
    line_number = _within_customer_rank(line_order) + 1
    n_lines = len(line_order)
    branch_p = np.where(brancher[owner[line_order]], np.minimum(0.6, 0.1 * (rank[line_order] + 1)), 0.0)
    category = np.where(
        rng.random(n_lines) < branch_p, rng.integers(0, len(CATEGORIES), n_lines), home[owner[line_order]]
    )
    product = category * PRODUCTS_PER_CATEGORY + rng.integers(0, PRODUCTS_PER_CATEGORY, n_lines) + 1
    quantity = 1 + rng.binomial(2, 0.25, n_lines)
    weights = rng.gamma(2.0, 1.0, n_lines)
    weight_sum = np.bincount(line_order, weights, n_orders)
    line_value = value_usd[line_order] * weights / weight_sum[line_order] * rate_local[owner[line_order]]
    unit_price = np.maximum(np.round(line_value / quantity, 2), 0.5)
    discounted = rng.random(n_lines) < 0.15
    discount = np.where(discounted, np.round(unit_price * quantity * rng.uniform(0.05, 0.2, n_lines), 2), 0.0)
    line_gross = unit_price * quantity - discount
    gross_local = np.bincount(line_order, line_gross, n_orders)
    items = pa.table(
        {
            "order_id": order_ids.take(pa.array(line_order)),
            "line_number": pa.array(line_number).cast(pa.string()),
            "product_id": _ids("P", product, 4),
            "quantity": pa.array(quantity).cast(pa.string()),
            "unit_price": _money(unit_price),
            "discount_amount": _empty_where(_money(discount), ~discounted),
        }
    )

    # ---- refunds: about 4 % of completed orders, 1-30 days later, never after the last day
    refund_when = when + rng.uniform(1, 30, n_orders)
    refunded = completed & (rng.random(n_orders) < 0.04) & (refund_when < days)
    full = rng.random(n_orders) < 0.5
    refund_amount = np.where(full, gross_local, np.floor(gross_local * rng.uniform(0.1, 0.9, n_orders) * 100) / 100)
    r_idx = np.flatnonzero(refunded)
    refunds = pa.table(
        {
            "refund_id": pa.array(np.arange(len(r_idx))),  # numbered by the caller
            "order_id": order_ids.take(pa.array(r_idx)),
            "refunded_at": _timestamps(refund_when[r_idx], start, offset[owner[r_idx]], no_offset[r_idx]),
            "amount": _money(refund_amount[r_idx]),
        }
    )

    # ---- customers
    first_when = np.where(orders_ever, t0, rng.random(n) * days)
    signup_when = np.maximum(first_when - rng.uniform(0, 30, n), 0.0)
    email_local = pc.binary_join_element_wise("user", pa.array(numbers).cast(pa.string()), "")
    shout = rng.random(n) < 0.1
    email = pc.binary_join_element_wise(email_local, "@example.com", "")
    email = pc.if_else(pa.array(shout), pc.utf8_upper(email), email)
    email = pc.if_else(pa.array(rng.random(n) < 0.05), pc.binary_join_element_wise("  ", email, " ", ""), email)
    customers = pa.table(
        {
            "customer_id": _ids("C", numbers, 7),
            "signup_at": _timestamps(signup_when, start, offset, rng.random(n) < 0.1),
            "email": email,
            "country": pa.array(np.array(COUNTRIES)[country]),
            "acquisition_channel": pa.array(np.array(CHANNELS)[channel]),
        }
    )
    acquisitions = np.zeros((len(CHANNELS), months), dtype=np.int64)
    first_month = _month_index(start, t0[buyers])
    np.add.at(acquisitions, (channel[buyers], np.minimum(first_month, months - 1)), 1)

    # ---- loyalty programme: members are more likely among frequent buyers (selection, so lambda stays Gamma)
    lam_rank = np.argsort(np.argsort(lam)) / max(n - 1, 1)
    member = orders_ever & (rng.random(n) < 0.05 + 0.4 * lam_rank)
    loyalty = _loyalty_events(rng, member, owner, when, completed, value_usd, start, offset, no_offset, numbers, days)

    # ---- engagement: visits before orders, reviews/shares/referrals after some
    engagement = _engagement_events(rng, owner, when, member, start, offset, numbers, days)

    # ---- surveys: scores follow purchase rate, membership and whether the customer has dropped out
    surveys = _survey_responses(
        rng, owner, when, completed, lam_rank, member, repeats, repeats_before_dropout, value_usd, lam,
        rate_local, country, start, offset, numbers, days,
    )  # fmt: skip

    tables = {
        "customers": customers,
        "orders": orders,
        "order_items": items,
        "refunds": refunds,
        "loyalty_events": loyalty,
        "engagement_events": engagement,
        "survey_responses": surveys,
    }
    return _Chunk(tables, acquisitions, (gross_local, completed, refunded))


def _month_index(start: date, days_after: np.ndarray) -> np.ndarray:
    instants = np.datetime64(start.isoformat(), "D") + np.floor(days_after).astype("timedelta64[D]")
    months = instants.astype("datetime64[M]") - np.datetime64(start.isoformat(), "M")
    return months.astype(np.int64)


def _loyalty_events(rng, member, owner, when, completed, value_usd, start, offset, no_offset, numbers, days):
    enrol_customers = np.flatnonzero(member)
    # members enrol at their first order
    first_idx = np.r_[0, np.flatnonzero(np.diff(owner)) + 1] if len(owner) else np.array([], int)
    enrol_when = np.full(len(member), np.nan)
    enrol_when[owner[first_idx]] = when[first_idx]
    member_orders = np.flatnonzero(member[owner] & completed)
    points = np.round(value_usd[member_orders]).astype(np.int64)
    cumulative = np.cumsum(points)
    starts = np.r_[0, np.flatnonzero(np.diff(owner[member_orders])) + 1]
    base = np.repeat(np.r_[0, cumulative][starts], np.diff(np.r_[starts, len(member_orders)]))
    lifetime_points = cumulative - base
    before = lifetime_points - points
    tier_events = []
    for threshold, tier in TIERS[1:]:
        crossed = (before < threshold) & (lifetime_points >= threshold)
        tier_events.append((member_orders[crossed], tier))
    redeem = rng.random(len(member_orders)) < 0.1
    parts = [
        (enrol_customers, enrol_when[enrol_customers], "enrolled", np.full(len(enrol_customers), ""), "bronze"),
        (owner[member_orders], when[member_orders] + 1e-4, "points_earned", points.astype(str), ""),
        (owner[member_orders[redeem]], when[member_orders[redeem]] + 2e-4, "points_redeemed",
         (points[redeem] // 2).astype(str), ""),
    ]  # fmt: skip
    for idx, tier in tier_events:
        parts.append((owner[idx], when[idx] + 3e-4, "tier_changed", np.full(len(idx), ""), tier))
    who = np.concatenate([p[0] for p in parts]).astype(np.int64)
    at = np.concatenate([p[1] for p in parts])
    kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    pts = np.concatenate([p[3] for p in parts])
    tier = np.concatenate([np.full(len(p[0]), p[4]) for p in parts])
    order = np.lexsort((at, who))
    who, at, kind, pts, tier = who[order], at[order], kind[order], pts[order], tier[order]
    keep = at <= days
    who, at, kind, pts, tier = who[keep], at[keep], kind[keep], pts[keep], tier[keep]
    return pa.table(
        {
            "event_id": pa.array(np.arange(len(who))),  # renumbered by the caller
            "customer_id": _ids("C", numbers[who], 7),
            "occurred_at": _timestamps(at, start, offset[who], np.zeros(len(who), bool)),
            "event_type": pa.array(kind.astype(str)),
            "points": pa.array(pts.astype(str)),
            "tier": pa.array(tier.astype(str)),
        }
    )


def _engagement_events(rng, owner, when, member, start, offset, numbers, days):
    n_orders = len(owner)
    visits = rng.poisson(1.3, n_orders)
    visit_owner = np.repeat(owner, visits)
    visit_when = np.repeat(when, visits) - rng.uniform(0, 3, visits.sum())
    kinds = [(visit_owner, visit_when, "site_visit")]
    for kind, p_member, p_other, lag in (("review", 0.2, 0.12, 10), ("social_share", 0.08, 0.03, 5),
                                         ("referral", 0.05, 0.01, 20)):  # fmt: skip
        chosen = rng.random(n_orders) < np.where(member[owner], p_member, p_other)
        kinds.append((owner[chosen], when[chosen] + rng.uniform(0.1, lag, chosen.sum()), kind))
    who = np.concatenate([k[0] for k in kinds]).astype(np.int64)
    at = np.concatenate([k[1] for k in kinds])
    kind = np.concatenate([np.full(len(k[0]), k[2]) for k in kinds])
    keep = (at >= 0) & (at <= days)
    who, at, kind = who[keep], at[keep], kind[keep]
    order = np.lexsort((at, who))
    who, at, kind = who[order], at[order], kind[order]
    return pa.table(
        {
            "event_id": pa.array(np.arange(len(who))),
            "customer_id": _ids("C", numbers[who], 7),
            "occurred_at": _timestamps(at, start, offset[who], np.zeros(len(who), bool)),
            "event_type": pa.array(kind.astype(str)),
        }
    )


def _survey_responses(rng, owner, when, completed, lam_rank, member, repeats, repeats_before_dropout, value_usd,
                      lam, rate_local, country, start, offset, numbers, days):  # fmt: skip
    completed_idx = np.flatnonzero(completed)
    asked = completed_idx[rng.random(len(completed_idx)) < 0.12]
    at = when[asked] + rng.uniform(1, 14, len(asked))
    asked, at = asked[at <= days], at[at <= days]
    who = owner[asked]
    # customers who will drop out (their repeat count hit the drop-out draw) are less happy
    leaving = repeats[who] >= repeats_before_dropout[who]
    mood = 4.0 + 4.5 * lam_rank[who] + 1.0 * member[who] - 1.5 * leaving
    recommend = np.clip(np.round(rng.normal(mood, 1.6)), 0, 10).astype(int)
    repurchase = np.clip(np.round(recommend + rng.normal(0, 1.5, len(who))), 0, 10).astype(int)
    cross_buy = np.clip(np.round(recommend - 1 + rng.normal(0, 2.0, len(who))), 0, 10).astype(int)
    monthly_spend = np.maximum(lam[who] * 30.0 * value_usd[asked], 5.0) * rng.lognormal(0.4, 0.6, len(who))
    spend_local = monthly_spend * rate_local[who]
    n = len(who)
    # anonymous responses: about 5 % more, with no customer
    n_anon = rng.binomial(n, 0.05)
    anon_at = rng.uniform(0, days, n_anon)
    anon_score = np.clip(np.round(rng.normal(6.5, 2.5, n_anon)), 0, 10).astype(int)
    customer_id = pa.concat_arrays([_ids("C", numbers[who], 7), pa.array([""] * n_anon)])
    return pa.table(
        {
            "response_id": pa.array(np.arange(n + n_anon)),
            "customer_id": customer_id,
            "responded_at": pa.concat_arrays(
                [
                    _timestamps(at, start, offset[who], np.zeros(n, bool)),
                    _timestamps(anon_at, start, np.zeros(n_anon, int), np.zeros(n_anon, bool)),
                ]
            ),
            "recommend_score": pa.array(np.r_[recommend, anon_score].astype(str)),
            "repurchase_intent_score": _empty_where(
                pa.array(np.r_[repurchase, anon_score].astype(str)), rng.random(n + n_anon) < 0.05
            ),
            "cross_buy_intent_score": _empty_where(
                pa.array(np.r_[cross_buy, anon_score].astype(str)), rng.random(n + n_anon) < 0.05
            ),
            "category_monthly_spend": _empty_where(
                _money(np.r_[spend_local, np.full(n_anon, 50.0)]), rng.random(n + n_anon) < 0.1
            ),
            "currency": pa.array(np.r_[np.array(COUNTRY_CURRENCY)[country[who]], np.full(n_anon, "USD")]),
        }
    )


# ----------------------------------------------------------------------------------------------- bad rows

# entity -> reasons injected as new, self-contained rows (each ends in quarantine alone); "exact_duplicate"
# copies an existing row verbatim (collapsed, not quarantined)
BAD_ROW_KINDS: dict[str, tuple[str, ...]] = {
    "customers": ("missing_key", "conflicting_duplicate_key", "unparseable_timestamp", "exact_duplicate"),
    "orders": ("missing_key", "conflicting_duplicate_key", "unparseable_timestamp", "unknown_customer",
               "unknown_currency", "invalid_value", "exact_duplicate"),
    "order_items": ("unknown_order", "unknown_product", "negative_quantity", "negative_amount",
                    "unparseable_number", "exact_duplicate"),
    "refunds": ("unknown_order", "refund_exceeds_order", "negative_amount", "unparseable_timestamp"),
    "survey_responses": ("missing_key", "score_out_of_range", "unparseable_number", "unparseable_timestamp"),
    "loyalty_events": ("unknown_customer", "invalid_value"),
    "engagement_events": ("unknown_customer", "unparseable_timestamp", "exact_duplicate"),
}  # fmt: skip


def _inject_bad_rows(rng, tables, rate, first_number, gross_local, completed, refunded, injected, duplicates):
    tag = f"{first_number:07d}"
    for entity, kinds in BAD_ROW_KINDS.items():
        table = tables[entity]
        if table.num_rows == 0:
            continue
        total = rng.binomial(table.num_rows, rate)
        if total == 0:
            continue
        per_kind = np.bincount(rng.integers(0, len(kinds), total), minlength=len(kinds))
        added = []
        for kind, count in zip(kinds, per_kind, strict=True):
            if count == 0:
                continue
            if kind == "refund_exceeds_order":
                candidates = np.flatnonzero(completed & ~refunded)
                count = min(count, len(candidates))
                chosen = rng.choice(candidates, count, replace=False)
                rows = tables["orders"].take(pa.array(chosen))
                rows = pa.table(
                    {
                        "refund_id": [f"RB{tag}{i:05d}" for i in range(count)],
                        "order_id": rows["order_id"],
                        "refunded_at": rows["ordered_at"],
                        "amount": _money(2 * gross_local[chosen] + 1),
                    }
                )
            else:
                count = min(count, table.num_rows)
                source = table.take(pa.array(rng.choice(table.num_rows, count, replace=False)))
                rows = _bad_rows(entity, kind, source, f"{tag}{kinds.index(kind):02d}", count)
            if kind == "exact_duplicate":
                duplicates[entity] = duplicates.get(entity, 0) + rows.num_rows
            else:
                quarantined = rows.num_rows
                injected.setdefault(entity, {})
                injected[entity][kind] = injected[entity].get(kind, 0) + quarantined
            added.append(rows.select(table.column_names).cast(table.schema))
        tables[entity] = pa.concat_tables([table, *added])


def _bad_rows(entity: str, kind: str, source: pa.Table, tag: str, count: int) -> pa.Table:
    """``count`` bad rows of ``kind`` made from existing rows ``source``, under new keys so nothing else changes."""
    if kind == "exact_duplicate":
        return source

    def put(rows: pa.Table, column: str, values) -> pa.Table:
        values = values if isinstance(values, list) else [values] * rows.num_rows
        return rows.set_column(rows.column_names.index(column), column, pa.array(values, pa.string()))

    if entity == "order_items":
        # bad lines on existing orders get line numbers >= 900 unique to the kind: a new key, the order's other
        # lines untouched
        rows = put(source, "line_number", [f"9{tag[-2:]}{i:05d}" for i in range(count)])
        column, value = {
            "unknown_order": ("order_id", [f"OX{tag}{i:05d}" for i in range(count)]),
            "unknown_product": ("product_id", "P9999"),
            "negative_quantity": ("quantity", "-1"),
            "negative_amount": ("unit_price", "-5.00"),
            "unparseable_number": ("quantity", "two"),
        }[kind]
        return put(rows, column, value)

    key = BY_NAME[entity].key[0]
    rows = put(source, key, [f"{key[0].upper()}B{tag}{i:05d}" for i in range(count)])
    if kind == "missing_key":
        return put(rows, key, "")
    if kind == "conflicting_duplicate_key":
        column, first, second = {"customers": ("email", "one@example.com", "two@example.com"),
                                 "orders": ("status", "completed", "cancelled")}[entity]  # fmt: skip
        return pa.concat_tables([put(rows, column, first), put(rows, column, second)])
    column, value = {
        ("customers", "unparseable_timestamp"): ("signup_at", "not-a-date"),
        ("orders", "unparseable_timestamp"): ("ordered_at", "not-a-date"),
        ("orders", "unknown_customer"): ("customer_id", "CX0000000"),
        ("orders", "unknown_currency"): ("currency", "XYZ"),
        ("orders", "invalid_value"): ("status", "shipped"),
        ("refunds", "unknown_order"): ("order_id", "OX000000000"),
        ("refunds", "negative_amount"): ("amount", "-5.00"),
        ("refunds", "unparseable_timestamp"): ("refunded_at", "soon"),
        ("survey_responses", "score_out_of_range"): ("recommend_score", "11"),
        ("survey_responses", "unparseable_number"): ("recommend_score", "seven"),
        ("survey_responses", "unparseable_timestamp"): ("responded_at", "not-a-date"),
        ("loyalty_events", "unknown_customer"): ("customer_id", "CX0000000"),
        ("loyalty_events", "invalid_value"): ("event_type", "bogus"),
        ("engagement_events", "unknown_customer"): ("customer_id", "CX0000000"),
        ("engagement_events", "unparseable_timestamp"): ("occurred_at", "whenever"),
    }[(entity, kind)]
    return put(rows, column, value)


# ----------------------------------------------------------------------------------------------- driver

ID_PREFIXES = {"refunds": ("refund_id", "R", 9), "loyalty_events": ("event_id", "L", 9),
               "engagement_events": ("event_id", "E", 10), "survey_responses": ("response_id", "S", 9)}  # fmt: skip


def _marketing_spend(rng: np.random.Generator, acquisitions: np.ndarray, start: date) -> pa.Table:
    channels, months = acquisitions.shape
    month_starts = np.datetime64(start.isoformat(), "M") + np.arange(months)
    cost = np.array(CHANNEL_COST_PER_CUSTOMER)[:, None] * rng.uniform(0.8, 1.2, (channels, months))
    amount = np.maximum(acquisitions * cost, 50.0)
    return pa.table(
        {
            "channel": pa.array(np.repeat(np.array(CHANNELS), months)),
            "spend_month": pa.array(np.tile(month_starts.astype("datetime64[D]").astype(str), channels)),
            "amount": _money(amount.ravel()),
            "currency": pa.array(["USD"] * channels * months),
        }
    )


def generate(
    out_dir: Path,
    customers: int,
    seed: int = 42,
    *,
    start: date = date(2023, 11, 1),
    end: date = date(2026, 10, 31),
    fmt: str = "csv",
    bad_row_rate: float = 0.0,
    bgnbd: BgNbdParams = BgNbdParams(),
    gamma_gamma: GammaGammaParams = GammaGammaParams(),
    chunk_size: int = 50_000,
    progress: bool = True,
    force: bool = False,
) -> dict:
    """Write the raw files for ``customers`` customers into ``out_dir`` and return the manifest."""
    if customers < 1:
        raise LoyaltyError("--customers must be at least 1")
    if not start < end:
        raise LoyaltyError(f"--start {start} must be before --end {end}")
    if fmt not in ("csv", "parquet"):
        raise LoyaltyError(f"--format must be csv or parquet, not {fmt!r}")
    if not 0 <= bad_row_rate < 0.5:
        raise LoyaltyError("--bad-row-rate must be in [0, 0.5)")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise FileExistsError(f"{out_dir} is not empty (use --force to replace its contents)")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    days = (end - start).days + 1 - 1e-6  # instants up to the end of the last day
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    writers = _Writers(out_dir, fmt)
    writers.write("products", _products(np.random.default_rng([seed, 2**31])))
    acquisitions = np.zeros((len(CHANNELS), months), dtype=np.int64)
    injected: dict[str, dict[str, int]] = {}
    duplicates: dict[str, int] = {}
    id_offsets = {entity: 0 for entity in ID_PREFIXES}
    order_offset = 0
    bar = tqdm(total=customers, unit="customer", disable=not progress, file=sys.stderr, desc="generating")
    for chunk_index, first in enumerate(range(0, customers, chunk_size)):
        n = min(chunk_size, customers - first)
        rng = np.random.default_rng([seed, chunk_index])
        chunk = _simulate_chunk(rng, first + 1, n, days, start, bgnbd, gamma_gamma, order_offset, months)
        tables = chunk.tables
        order_offset += tables["orders"].num_rows
        for entity, (column, prefix, width) in ID_PREFIXES.items():
            count = tables[entity].num_rows
            ids = _ids(prefix, np.arange(id_offsets[entity] + 1, id_offsets[entity] + count + 1), width)
            tables[entity] = tables[entity].set_column(tables[entity].column_names.index(column), column, ids)
            id_offsets[entity] += count
        if bad_row_rate > 0:
            gross, completed, refunded = chunk.order_facts
            _inject_bad_rows(rng, tables, bad_row_rate, first + 1, gross, completed, refunded, injected, duplicates)
        for entity, table in tables.items():
            writers.write(entity, table)
        acquisitions += chunk.acquisitions
        bar.update(n)
    bar.close()
    spend = _marketing_spend(np.random.default_rng([seed, 2**31 + 1]), acquisitions, start)
    if bad_row_rate > 0:
        bad = max(1, round(spend.num_rows * bad_row_rate))
        tags = [f"{i:03d}" for i in range(bad)]
        bad_spend = pa.table(
            {
                "channel": pa.array([f"podcast{t}" for t in tags] + [f"print{t}" for t in tags]),
                "spend_month": pa.array([start.isoformat()] * 2 * bad),
                "amount": pa.array(["100.00"] * bad + ["-100.00"] * bad),
                "currency": pa.array(["XYZ"] * bad + ["USD"] * bad),
            }
        )
        spend = pa.concat_tables([spend, bad_spend])
        injected["marketing_spend"] = {"unknown_currency": bad, "negative_amount": bad}
    writers.write("marketing_spend", spend)
    writers.close()

    manifest = {
        "generator": f"loyalty {__version__}",
        "seed": seed,
        "customers": customers,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "data_end_date": end.isoformat(),
        "format": fmt,
        "time_unit": "day",
        "bgnbd": asdict(bgnbd),
        "gamma_gamma": asdict(gamma_gamma),
        "gamma_gamma_currency": "USD",
        "bad_row_rate": bad_row_rate,
        "rows": writers.rows,
        "injected": {e: dict(sorted(r.items())) for e, r in sorted(injected.items())},
        "exact_duplicates": dict(sorted(duplicates.items())),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    defaults_bg, defaults_gg = BgNbdParams(), GammaGammaParams()
    parser.add_argument("--customers", type=int, required=True, help="number of customers")
    parser.add_argument("--seed", type=int, default=42, help="random seed (same seed, same files)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2023, 11, 1), help="first day (YYYY-MM-DD)")
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 10, 31), help="last day (YYYY-MM-DD)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--bad-row-rate", type=float, default=0.0, help="share of extra bad rows per file")
    parser.add_argument("--bgnbd-r", type=float, default=defaults_bg.r)
    parser.add_argument("--bgnbd-alpha", type=float, default=defaults_bg.alpha, help="in days")
    parser.add_argument("--bgnbd-a", type=float, default=defaults_bg.a)
    parser.add_argument("--bgnbd-b", type=float, default=defaults_bg.b)
    parser.add_argument("--gg-p", type=float, default=defaults_gg.p)
    parser.add_argument("--gg-q", type=float, default=defaults_gg.q)
    parser.add_argument("--gg-gamma", type=float, default=defaults_gg.gamma)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true", help="replace the contents of a non-empty --out")


def run_generate(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        manifest = generate(
            args.out, args.customers, args.seed, start=args.start, end=args.end, fmt=args.format,
            bad_row_rate=args.bad_row_rate,
            bgnbd=BgNbdParams(args.bgnbd_r, args.bgnbd_alpha, args.bgnbd_a, args.bgnbd_b),
            gamma_gamma=GammaGammaParams(args.gg_p, args.gg_q, args.gg_gamma),
            chunk_size=args.chunk_size, progress=not args.no_progress, force=args.force,
        )  # fmt: skip
    except FileExistsError as exc:
        raise LoyaltyError(str(exc)) from None
    seconds = time.perf_counter() - started
    print(f"wrote {args.out.resolve()} in {seconds:.1f} s (seed {args.seed}):")
    for entity, rows in manifest["rows"].items():
        print(f"  {entity + '.' + args.format:<28} {rows:>12,} rows")
    return 0

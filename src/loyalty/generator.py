"""Synthetic raw data for the loyalty warehouse, streamed to disk, with known truth.

Completed orders follow BG/NBD exactly (Fader, Hardie and Lee 2005), in days: per customer a purchase rate
lambda ~ Gamma(r, scale 1/alpha) and a drop-out probability p ~ Beta(a, b). From the first purchase on, the
customer buys as a Poisson process with rate lambda and, after each repeat purchase (never right after the
first), drops out with probability p; nothing happens after the last day. Order values follow Gamma-Gamma in
USD: per customer nu ~ Gamma(q, scale 1/gamma), each order's value ~ Gamma(p, scale 1/nu). Cancelled orders
are extra orders on top, and loyalty membership is drawn with a probability that rises with lambda, so neither
disturbs the BG/NBD population. The parameters go into ``manifest.json`` to check models against them.

Customers are simulated in chunks, each with its own random stream (``SeedSequence(seed, spawn_key=(0, i))``),
and each chunk's rows are appended to every file at once (CSV or Parquet, every value as text): memory is
bounded by the chunk and the same arguments give the same bytes. Bad rows (``bad_row_rate``) are extra,
self-contained rows drawn from a separate stream (so the clean rows do not depend on the rate); each ends in
quarantine alone with a known reason. The manifest counts them per entity and reason, and exact copies apart.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from loyalty import __version__
from loyalty.contract import (
    ENGAGEMENT_EVENT_TYPES,
    ENTITIES,
    LOYALTY_EVENT_TYPES,
    LOYALTY_TIERS,
    ORDER_STATUSES,
    REASON_CODES,
)
from loyalty.errors import LoyaltyError

GENERATOR_VERSION = "1"  # bump whenever the same arguments start giving different files
FORMATS = ("csv", "parquet")
MANIFEST_NAME = "manifest.json"

# ------------------------------------------------------------------------------------------------ world

COUNTRIES = ("US", "GB", "DE", "FR", "CA", "NL")
COUNTRY_WEIGHTS = (0.42, 0.16, 0.14, 0.10, 0.10, 0.08)
COUNTRY_CURRENCY = ("USD", "GBP", "EUR", "EUR", "CAD", "EUR")
COUNTRY_UTC_OFFSET_MINUTES = (-300, 0, 60, 60, -300, 60)  # fixed offsets, no daylight saving
UNITS_PER_USD = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79, "CAD": 1.36}  # as the exchange-rate seed
CURRENCIES = tuple(UNITS_PER_USD)
CHANNELS = ("organic", "paid_search", "social", "email", "referral", "affiliate")
CHANNEL_WEIGHTS = (0.34, 0.24, 0.16, 0.10, 0.10, 0.06)
CHANNEL_COST_USD = (2.0, 42.0, 28.0, 9.0, 18.0, 24.0)  # marketing spend per acquired customer
CATEGORIES = ("apparel", "beauty", "books", "electronics", "garden", "home", "sports", "toys")
PRODUCTS_PER_CATEGORY = (30, 26, 28, 22, 20, 27, 25, 22)  # 200 products
CATEGORY_PRICE_USD = (35.0, 22.0, 15.0, 120.0, 30.0, 45.0, 40.0, 25.0)  # median list price
TIER_THRESHOLDS = (500, 1500)  # lifetime points for silver, gold (members start bronze)
FIRST_NAMES = tuple(
    "jane john maria liam olivia noah emma lucas sofia mateo mia leon anna paul chloe louis emily "
    "jack hannah felix grace oscar zoe max".split()
)
LAST_NAMES = tuple(
    "doe smith garcia muller martin brown wilson schmidt dubois taylor jones bernard fischer white "
    "lee walker weber moreau clark young".split()
)
EMAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")

NEVER_ORDER_SHARE = 0.05  # customers who sign up and never order
ONLY_CANCELLED_SHARE = 0.01  # customers whose orders are all cancelled (outside the BG/NBD population)
ONLY_CANCELLED_EXTRA_ORDERS = 0.4  # mean number of cancelled orders after their first one
CANCELLED_PER_COMPLETED = 0.05
GROWTH = 1.0  # first purchases: density rising linearly to (1 + GROWTH) times its level at the start
SIGNUP_LEAD_DAYS = 30.0
LINES_PER_ORDER_WEIGHTS = (0.35, 0.30, 0.20, 0.15)  # 1-4 lines
QUANTITY_WEIGHTS = (0.72, 0.20, 0.08)  # 1-3
BRANCHER_SHARE = 0.4
DISCOUNTED_LINE_SHARE = 0.15
REFUND_SHARE = 0.04
FULL_REFUND_SHARE = 0.55
SECOND_REFUND_SHARE = 0.15  # of partial refunds: a second partial refund of at most what is left
MEMBER_SHARE = 0.25
MEMBER_MAX_PROBABILITY = 0.6  # P(member | lambda) = max * (1 - exp(-c lambda)), c set so the mean is MEMBER_SHARE
SURVEY_SHARE = 0.30
SECOND_SURVEY_SHARE = 0.35
ANONYMOUS_SURVEY_SHARE = 0.05
SCORE_MISSING_SHARE = 0.05
SPEND_MISSING_SHARE = 0.10
NO_OFFSET_SHARE = 0.10  # timestamps written without any offset (meaning UTC)
SITE_VISITS_PER_ORDER = 1.6
SECONDS_PER_DAY = 86_400

# random streams: SeedSequence(seed, spawn_key=(stream, index))
_CHUNK_STREAM, _BAD_STREAM, _PRODUCT_STREAM, _MARKETING_STREAM, _BAD_GLOBAL_STREAM = range(5)

# id prefixes and digit widths (zero-padded; longer if the numbers outgrow them)
CUSTOMER_ID, ORDER_ID, REFUND_ID, PRODUCT_ID = ("C", 7), ("O", 8), ("R", 8), ("P", 4)
LOYALTY_EVENT_ID, ENGAGEMENT_EVENT_ID, SURVEY_RESPONSE_ID = ("L", 8), ("E", 9), ("S", 8)

EXACT_DUPLICATE = "exact_duplicate"  # not a reason code: an exact copy is collapsed, not quarantined
# entity -> kinds of bad rows added at --bad-row-rate; each kind but exact_duplicate is the reason code with
# which the row must be quarantined
BAD_ROW_KINDS: dict[str, tuple[str, ...]] = {
    "customers": ("missing_key", "conflicting_duplicate_key", "unparseable_timestamp", EXACT_DUPLICATE),
    "products": ("missing_key", "unparseable_number", "negative_amount"),
    "orders": ("missing_key", "conflicting_duplicate_key", "unparseable_timestamp", "unknown_customer",
               "unknown_currency", "invalid_value", EXACT_DUPLICATE),
    "order_items": ("unknown_order", "unknown_product", "negative_quantity", "negative_amount",
                    "unparseable_number", EXACT_DUPLICATE),
    "refunds": ("unknown_order", "refund_exceeds_order", "negative_amount", "unparseable_timestamp"),
    "survey_responses": ("missing_key", "score_out_of_range", "unparseable_number", "unparseable_timestamp"),
    "loyalty_events": ("unknown_customer", "invalid_value"),
    "engagement_events": ("unknown_customer", "unparseable_timestamp", EXACT_DUPLICATE),
    "marketing_spend": ("unknown_currency", "negative_amount"),
}  # fmt: skip
# new keys of bad rows start with these two letters (valid ids are one letter and digits)
BAD_KEY_PREFIX = {"customers": "CB", "products": "PB", "orders": "OB", "refunds": "RB",
                  "survey_responses": "SB", "loyalty_events": "LB", "engagement_events": "EB"}  # fmt: skip
UNKNOWN_CUSTOMER_PREFIX, UNKNOWN_ORDER_PREFIX, UNKNOWN_PRODUCT_ID = "CX", "OX", "P9999"
# bad lines on existing orders get these line numbers (a new key; the order's own lines are 1-4)
BAD_LINE_NUMBER = {
    "unknown_product": 901,
    "negative_quantity": 902,
    "negative_amount": 903,
    "unparseable_number": 904,
}
BAD_TIMESTAMP = "not-a-date"
BAD_SCORES = ("11", "-1", "7.5")
BAD_SPEND_CHANNEL = {"unknown_currency": "podcast", "negative_amount": "print"}

assert all(kind in REASON_CODES for kinds in BAD_ROW_KINDS.values() for kind in kinds if kind != EXACT_DUPLICATE)
assert set(BAD_ROW_KINDS) == {e.name for e in ENTITIES}


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters, time unit days: lambda ~ Gamma(r, scale 1/alpha) per day, p ~ Beta(a, b)."""

    r: float = 0.8
    alpha: float = 24.0
    a: float = 0.85
    b: float = 7.0


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma order values in USD: nu ~ Gamma(q, scale 1/gamma), value ~ Gamma(p, scale 1/nu)."""

    p: float = 4.0
    q: float = 4.0
    gamma: float = 45.0


# ------------------------------------------------------------------------------------------------ theory


def _hyp2f1(a: float, b: float, c: float, z: float) -> float:
    """Gauss hypergeometric 2F1(a, b; c; z) for 0 <= z < 1, by its power series."""
    if z <= 0:
        return 1.0
    terms = int(min(5_000_000, math.ceil(45 / -math.log(z)) + 200))
    n = np.arange(terms, dtype=np.float64)
    return float(1.0 + np.cumprod((a + n) * (b + n) / ((c + n) * (1 + n)) * z).sum())


def expected_repeat_purchases(t: float, bgnbd: BgNbdParams = BgNbdParams()) -> float:
    """BG/NBD E[X(t)]: expected repeat purchases within ``t`` days of the first purchase."""
    r, alpha, a, b = bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b
    if abs(a - 1) < 1e-6:  # the closed form is 0/0 at a = 1; it is continuous there
        a = 1 + 1e-6
    hyp = _hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)


def expected_orders(days: int, bgnbd: BgNbdParams = BgNbdParams(), points: int = 400) -> dict[str, float]:
    """Expected completed orders per BG/NBD customer (first purchases spread over ``days`` as generated), and
    expected orders (completed and cancelled) per registered customer."""
    x = (np.arange(points) + 0.5) / points
    density = (1 + GROWTH * x) / (1 + GROWTH / 2)
    repeats = np.array([expected_repeat_purchases(days * (1 - xi), bgnbd) for xi in x])
    completed = 1 + float((density * repeats).mean())
    buyers = 1 - NEVER_ORDER_SHARE - ONLY_CANCELLED_SHARE
    total = buyers * completed * (1 + CANCELLED_PER_COMPLETED) + ONLY_CANCELLED_SHARE * (
        1 + ONLY_CANCELLED_EXTRA_ORDERS
    )
    return {"completed_per_bgnbd_customer": completed, "orders_per_customer": total}


# ------------------------------------------------------------------------------------------------ text

_CENTS = pa.array([f".{c:02d}" for c in range(100)])
_TIME_OF_DAY: list[pa.Array] = []


def _time_of_day() -> pa.Array:
    if not _TIME_OF_DAY:
        s = np.arange(SECONDS_PER_DAY)
        _TIME_OF_DAY.append(
            pa.array([f"T{h:02d}:{m:02d}:{x:02d}" for h, m, x in zip(s // 3600, s // 60 % 60, s % 60, strict=True)])
        )
    return _TIME_OF_DAY[0]


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` and the zero-padded number (wider than ``width`` only for numbers that need it)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) and numbers.max() >= 10**width:
        return pc.binary_join_element_wise(prefix, pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0"), "")
    return pc.utf8_replace_slice(pa.array(numbers + 10**width).cast(pa.string()), 0, 1, prefix)


def _serial_ids(spec: tuple[str, int], first: int, count: int) -> pa.Array:
    return _ids(spec[0], np.arange(first + 1, first + count + 1), spec[1])


def _money(cents: np.ndarray) -> pa.Array:
    """Non-negative whole cents as text with two decimals: 1234 -> '12.34'."""
    cents = np.asarray(cents, dtype=np.int64)
    return pc.binary_join_element_wise(pa.array(cents // 100).cast(pa.string()), _CENTS.take(pa.array(cents % 100)), "")


def _int_text(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def _null_where(array: pa.Array, mask: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), pa.scalar(None, pa.string()), array)


def _pick(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(np.asarray(codes, dtype=np.int64)))


def _offset_suffix(minutes: int) -> str:
    if minutes == 0:
        return "Z"
    return f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass
class _Calendar:
    """The simulated window: whole UTC days from ``start`` to ``end``; instants are seconds after start."""

    start: date
    end: date
    days: int = field(init=False)
    months: int = field(init=False)
    _margin: int = 2

    def __post_init__(self) -> None:
        self.days = (self.end - self.start).days + 1
        self.months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1
        first = np.datetime64(self.start.isoformat(), "D") - np.timedelta64(self._margin, "D")
        dates = first + np.arange(self.days + 2 * self._margin).astype("timedelta64[D]")
        self._dates = pa.array(dates.astype(str).tolist(), pa.string())
        self._offset_seconds = np.array([*COUNTRY_UTC_OFFSET_MINUTES, 0], dtype=np.int64) * 60
        self._suffixes = pa.array([*map(_offset_suffix, COUNTRY_UTC_OFFSET_MINUTES), ""])

    @property
    def seconds(self) -> int:
        return self.days * SECONDS_PER_DAY

    def timestamps(self, seconds: np.ndarray, zone: np.ndarray) -> pa.Array:
        """ISO-8601 text of the instants: wall time in the zone (a country index) followed by its offset, or
        UTC without any offset where zone == len(COUNTRIES). Local text plus offset is the same instant."""
        zone = np.asarray(zone, dtype=np.int64)
        local = np.asarray(seconds, dtype=np.int64) + self._offset_seconds[zone]
        day, time_of_day = np.divmod(local, SECONDS_PER_DAY)
        return pc.binary_join_element_wise(
            self._dates.take(pa.array(day + self._margin)),
            _time_of_day().take(pa.array(time_of_day)),
            self._suffixes.take(pa.array(zone)),
            "",
        )

    def month_index(self, seconds: np.ndarray) -> np.ndarray:
        days = np.asarray(seconds, dtype=np.int64) // SECONDS_PER_DAY
        instants = np.datetime64(self.start.isoformat(), "D") + days.astype("timedelta64[D]")
        return (instants.astype("datetime64[M]") - np.datetime64(self.start.isoformat(), "M")).astype(np.int64)

    def month_starts(self) -> list[str]:
        first = np.datetime64(self.start.isoformat(), "M")
        return [str((first + i).astype("datetime64[D]")) for i in range(self.months)]


# ------------------------------------------------------------------------------------------------ helpers


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, index)))


def _starts(owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For a sorted ``owner`` with values in [0, n): each owner's first position and number of rows."""
    counts = np.bincount(owner, minlength=n)
    return np.cumsum(counts) - counts, counts


def _growth_quantile(u: np.ndarray) -> np.ndarray:
    """Inverse CDF on [0, 1) of a density rising linearly from 1 to 1 + GROWTH."""
    return (np.sqrt(1 + GROWTH * (2 + GROWTH) * u) - 1) / GROWTH


def _seconds(days: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(days) * SECONDS_PER_DAY).astype(np.int64)


def _member_rate(bgnbd: BgNbdParams) -> float:
    """c in P(member | lambda) = max * (1 - exp(-c lambda)), whose mean over Gamma(r, 1/alpha) is
    MEMBER_SHARE."""
    return bgnbd.alpha * ((1 - MEMBER_SHARE / MEMBER_MAX_PROBABILITY) ** (-1 / bgnbd.r) - 1)


def _products(rng: np.random.Generator) -> pa.Table:
    adjectives = ("Classic", "Essential", "Premium", "Everyday", "Compact", "Deluxe", "Eco", "Smart")
    nouns = {
        "apparel": ("T-Shirt", "Jacket", "Jeans", "Sweater", "Scarf"),
        "beauty": ("Serum", "Lipstick", "Moisturiser", "Shampoo", "Perfume"),
        "books": ("Novel", "Cookbook", "Atlas", "Biography", "Notebook"),
        "electronics": ("Headphones", "Speaker", "Charger", "Tablet", "Camera"),
        "garden": ("Planter", "Hose", "Shears", "Seed Kit", "Lantern"),
        "home": ("Lamp", "Cushion", "Blanket", "Vase", "Mug Set"),
        "sports": ("Yoga Mat", "Dumbbell", "Water Bottle", "Racket", "Backpack"),
        "toys": ("Puzzle", "Robot", "Board Game", "Plush Bear", "Kite"),
    }
    names: list[str] = []
    categories: list[str] = []
    prices = []
    for category, count, median in zip(CATEGORIES, PRODUCTS_PER_CATEGORY, CATEGORY_PRICE_USD, strict=True):
        names += [f"{adjective} {noun}" for noun in nouns[category] for adjective in adjectives][:count]
        categories += [category] * count
        prices.append(np.round(median * rng.lognormal(0.0, 0.5, count) * 100))
    return pa.table(
        {
            "product_id": _serial_ids(PRODUCT_ID, 0, len(names)),
            "product_name": pa.array(names),
            "category": pa.array(categories),
            "list_price": _money(np.maximum(np.concatenate(prices), 99)),
        }
    )


# ------------------------------------------------------------------------------------------------ a chunk


@dataclass
class _Offsets:
    """How many rows (ids) earlier chunks used: each chunk's ids continue from there."""

    customers: int = 0
    orders: int = 0
    refunds: int = 0
    loyalty_events: int = 0
    engagement_events: int = 0
    survey_responses: int = 0


class _Chunk:
    """One chunk of customers simulated as numbers (arrays); ``tables`` writes them as text.

    Arrays are prefixed by what they describe: ``o_`` orders (sorted by customer, then time), ``i_`` order
    lines, ``f_`` refunds, ``l_`` loyalty events, ``g_`` engagement events, ``s_`` survey responses. Times are
    whole seconds after the start of the window; ``owner`` is the customer's index in the chunk.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        n: int,
        cal: _Calendar,
        bgnbd: BgNbdParams,
        gamma_gamma: GammaGammaParams,
    ) -> None:
        self.rng, self.n, self.cal, self.bgnbd, self.gg = rng, n, cal, bgnbd, gamma_gamma
        self._customers()
        self._orders()
        self._items()
        self._refunds()
        self._loyalty()
        self._engagement()
        self._surveys()

    def _zones(self, country: np.ndarray) -> np.ndarray:
        """Per row: its country (written with the country's offset) or, for NO_OFFSET_SHARE, none (UTC)."""
        return np.where(self.rng.random(len(country)) < NO_OFFSET_SHARE, len(COUNTRIES), country)

    # ---- customers and their latent behaviour
    def _customers(self) -> None:
        rng, n, days = self.rng, self.n, float(self.cal.days)
        self.country = rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS)
        self.channel = rng.choice(len(CHANNELS), n, p=CHANNEL_WEIGHTS)
        kind = rng.random(n)
        self.never = kind < NEVER_ORDER_SHARE
        self.only_cancelled = (kind >= NEVER_ORDER_SHARE) & (kind < NEVER_ORDER_SHARE + ONLY_CANCELLED_SHARE)
        self.in_bgnbd = ~self.never & ~self.only_cancelled
        self.lam = rng.gamma(self.bgnbd.r, 1.0 / self.bgnbd.alpha, n)
        self.drop_p = np.clip(rng.beta(self.bgnbd.a, self.bgnbd.b, n), 1e-12, 1.0)
        self.nu = rng.gamma(self.gg.q, 1.0 / self.gg.gamma, n)
        self.home = rng.integers(0, len(CATEGORIES), n)
        self.brancher = rng.random(n) < BRANCHER_SHARE
        # first order (the signup day of those who never order), denser later in the window
        self.first_day = days * _growth_quantile(rng.random(n))
        lead = rng.random(n) * np.minimum(SIGNUP_LEAD_DAYS, self.first_day)
        self.signup_sec = _seconds(np.where(self.never, self.first_day, self.first_day - lead))
        self.signup_zone = self._zones(self.country)
        member_p = MEMBER_MAX_PROBABILITY * (1 - np.exp(-_member_rate(self.bgnbd) * self.lam))
        self.member = rng.random(n) < member_p
        self.style = rng.choice(3, n, p=(0.7, 0.25, 0.05))  # email: lower, Capitalised, UPPER
        self.padded = rng.random(n) < 0.05  # email with surrounding spaces
        self.names = rng.integers(0, (len(FIRST_NAMES), len(LAST_NAMES), len(EMAIL_DOMAINS)), (n, 3))

    # ---- orders: first orders, BG/NBD repeats (completed) and extra cancelled orders
    def _orders(self) -> None:
        rng, n, days, idx = self.rng, self.n, float(self.cal.days), np.arange(self.n)
        window = days - self.first_day
        # Poisson purchases in the window, and the repeat purchase after which the customer would drop out
        arrivals = np.where(self.in_bgnbd, rng.poisson(self.lam * window), 0)
        lifetime = rng.geometric(self.drop_p)
        repeats = np.minimum(arrivals, lifetime)
        # times: the first `repeats` of `arrivals` sorted uniforms on the window, as S_k / S_(arrivals+1) with
        # S_k sums of standard exponentials; the spacings after the kept ones sum to Gamma(arrivals-repeats+1)
        rest = rng.gamma(arrivals - repeats + 1.0)
        r_owner = np.repeat(idx, repeats)
        prefix = np.concatenate(([0.0], np.cumsum(rng.standard_exponential(len(r_owner)))))
        r_start = np.cumsum(repeats) - repeats
        total = prefix[r_start + repeats] - prefix[r_start] + rest
        fraction = (prefix[1:] - prefix[r_start][r_owner]) / total[r_owner]
        r_day = self.first_day[r_owner] + window[r_owner] * fraction
        self.repeats = repeats
        dropped = lifetime <= arrivals  # the last repeat purchase was the last one: the customer dropped out
        self.dropped_sec = np.full(n, np.iinfo(np.int64).max)
        self.dropped_sec[dropped] = _seconds(r_day[r_start[dropped] + repeats[dropped] - 1])

        # extra cancelled orders, shortly after one of the customer's completed orders
        buyers = np.flatnonzero(self.in_bgnbd)
        c_owner = np.repeat(buyers, rng.poisson(CANCELLED_PER_COMPLETED * (1 + repeats[buyers])))
        pick = np.floor(rng.random(len(c_owner)) * (1 + repeats[c_owner])).astype(np.int64)  # 0: first order
        base_day = self.first_day[c_owner].copy()
        after_repeat = pick > 0
        base_day[after_repeat] = r_day[r_start[c_owner[after_repeat]] + pick[after_repeat] - 1]
        c_day = base_day + rng.random(len(c_owner)) * np.minimum(2.0, days - base_day)
        # customers with cancelled orders only: the first one and a few more within 90 days
        only = np.flatnonzero(self.only_cancelled)
        x_owner = np.repeat(only, rng.poisson(ONLY_CANCELLED_EXTRA_ORDERS, len(only)))
        x_day = self.first_day[x_owner] + rng.random(len(x_owner)) * np.minimum(90.0, window[x_owner])

        f_owner = np.flatnonzero(~self.never)
        owner = np.concatenate((f_owner, r_owner, c_owner, x_owner))
        sec = np.minimum(_seconds(np.concatenate((self.first_day[f_owner], r_day, c_day, x_day))), self.cal.seconds - 1)
        completed = np.concatenate(
            (self.in_bgnbd[f_owner], np.ones(len(r_owner), bool), np.zeros(len(c_owner) + len(x_owner), bool))
        )
        order = np.lexsort((sec, owner))
        position = np.empty(len(order), np.int64)
        position[order] = np.arange(len(order))
        self.o_owner, self.o_sec, self.o_completed = owner[order], sec[order], completed[order]
        self.o_first = np.zeros(len(order), bool)
        self.o_first[position[: len(f_owner)]] = True
        self.o_start, self.o_count = _starts(self.o_owner, n)
        self.o_rank = np.arange(len(order)) - self.o_start[self.o_owner]
        self.o_value_usd = rng.gamma(self.gg.p, 1.0 / self.nu[self.o_owner])
        self.o_zone = self._zones(self.country[self.o_owner])
        self.acquisitions = np.zeros((len(CHANNELS), self.cal.months), dtype=np.int64)
        month = np.minimum(self.cal.month_index(_seconds(self.first_day[buyers])), self.cal.months - 1)
        np.add.at(self.acquisitions, (self.channel[buyers], month), 1)

    # ---- order lines: the order's value split over 1-4 lines, in the order's currency, in whole cents
    def _items(self) -> None:
        rng, n_orders = self.rng, len(self.o_owner)
        lines = 1 + rng.choice(len(LINES_PER_ORDER_WEIGHTS), n_orders, p=LINES_PER_ORDER_WEIGHTS)
        self.i_order = np.repeat(np.arange(n_orders), lines)
        self.i_start = np.cumsum(lines) - lines
        self.i_line = np.arange(len(self.i_order)) - self.i_start[self.i_order] + 1
        n_lines, owner = len(self.i_order), self.o_owner[self.i_order]
        # branchers buy outside their home category more often as their order count grows
        branch_p = np.where(self.brancher[owner], np.minimum(0.6, 0.08 * self.o_rank[self.i_order]), 0.0)
        other = (self.home[owner] + 1 + rng.integers(0, len(CATEGORIES) - 1, n_lines)) % len(CATEGORIES)
        category = np.where(rng.random(n_lines) < branch_p, other, self.home[owner])
        first_product = np.cumsum((1, *PRODUCTS_PER_CATEGORY))[:-1]
        popularity = np.floor(np.array(PRODUCTS_PER_CATEGORY)[category] * rng.random(n_lines) ** 1.6)
        self.i_product = first_product[category] + popularity.astype(np.int64)
        self.i_quantity = 1 + rng.choice(len(QUANTITY_WEIGHTS), n_lines, p=QUANTITY_WEIGHTS)
        weights = rng.gamma(2.0, 1.0, n_lines)
        share = weights / np.bincount(self.i_order, weights, n_orders)[self.i_order]
        rate = np.array([UNITS_PER_USD[c] for c in COUNTRY_CURRENCY])[self.country[owner]]
        line_cents = self.o_value_usd[self.i_order] * share * rate * 100
        self.i_unit_cents = np.maximum(np.round(line_cents / self.i_quantity), 1).astype(np.int64)
        line_total = self.i_unit_cents * self.i_quantity
        discount = np.floor(line_total * rng.uniform(0.05, 0.20, n_lines)).astype(np.int64)
        self.i_discount_cents = np.where(rng.random(n_lines) < DISCOUNTED_LINE_SHARE, discount, 0)
        self.o_gross = np.bincount(self.i_order, line_total - self.i_discount_cents, n_orders).astype(np.int64)

    # ---- refunds: about 4 % of completed orders, 1-30 days later, never after the last day
    def _refunds(self) -> None:
        rng, n_orders, end = self.rng, len(self.o_owner), self.cal.seconds
        remaining = end - self.o_sec
        idx = np.flatnonzero(self.o_completed & (rng.random(n_orders) < REFUND_SHARE) & (remaining > SECONDS_PER_DAY))
        room = np.minimum(30 * SECONDS_PER_DAY, remaining[idx] - 1) - SECONDS_PER_DAY
        when = self.o_sec[idx] + SECONDS_PER_DAY + np.floor(rng.random(len(idx)) * room).astype(np.int64)
        gross = self.o_gross[idx]
        full = rng.random(len(idx)) < FULL_REFUND_SHARE
        partial = np.maximum(np.floor(gross * rng.uniform(0.1, 0.9, len(idx))), 1).astype(np.int64)
        amount = np.where(full, gross, partial)
        left = gross - amount
        again = ~full & (rng.random(len(idx)) < SECOND_REFUND_SHARE) & (left >= 1) & (when < end - 2)
        gap = np.floor(rng.random(again.sum()) * np.minimum(10 * SECONDS_PER_DAY, end - 2 - when[again]))
        amount2 = np.maximum(np.floor(left[again] * rng.uniform(0.2, 1.0, again.sum())), 1).astype(np.int64)
        order_idx = np.concatenate((idx, idx[again]))
        sec = np.concatenate((when, when[again] + 1 + gap.astype(np.int64)))
        sort = np.lexsort((sec, order_idx))
        self.f_order, self.f_sec = order_idx[sort], sec[sort]
        self.f_amount = np.concatenate((amount, amount2))[sort]
        self.f_zone = self._zones(self.country[self.o_owner[self.f_order]])
        self.o_refunded = np.zeros(n_orders, bool)
        self.o_refunded[idx] = True

    # ---- loyalty programme: enrolment, points per completed order, some redemptions, tier changes
    def _loyalty(self) -> None:
        rng, n, last = self.rng, self.n, self.cal.seconds - 1
        comp = np.flatnonzero(self.o_completed)
        comp_start, comp_count = _starts(self.o_owner[comp], n)
        # enrolment: at signup (45 %), at the first completed order (35 %) or at a random completed order
        mode = rng.random(n)
        pick = np.where(mode < 0.8, 0, np.floor(rng.random(n) * comp_count)).astype(np.int64)
        at_order = (mode >= 0.45) & (comp_count > 0)
        enrol_sec = self.signup_sec.copy()
        enrol_sec[at_order] = self.o_sec[comp[comp_start[at_order] + pick[at_order]]]
        members = np.flatnonzero(self.member)

        earn = comp[self.member[self.o_owner[comp]] & (self.o_sec[comp] >= enrol_sec[self.o_owner[comp]])]
        e_owner = self.o_owner[earn]
        e_sec = np.minimum(self.o_sec[earn] + rng.integers(0, 120, len(earn)), last)
        points = np.round(self.o_value_usd[earn]).astype(np.int64)  # a point per USD of order value
        cumulative = np.cumsum(points)
        e_first = _starts(e_owner, n)[0][e_owner]
        lifetime = cumulative - cumulative[e_first] + points[e_first]
        before = lifetime - points
        tier = np.zeros(len(earn), np.int64)
        for level, threshold in enumerate(TIER_THRESHOLDS, start=1):
            tier[(before < threshold) & (lifetime >= threshold)] = level
        changed = tier > 0
        redeem = (points >= 10) & (rng.random(len(earn)) < 0.08)
        d_sec = e_sec[redeem] + _seconds(rng.uniform(1, 20, redeem.sum()))
        d_points = np.maximum(np.floor(points[redeem] * rng.uniform(0.5, 1.0, redeem.sum())), 1).astype(np.int64)
        keep = d_sec <= last

        none = np.full(len(members), -1)
        owner = np.concatenate((members, e_owner, e_owner[redeem][keep], e_owner[changed]))
        sec = np.concatenate((enrol_sec[members], e_sec, d_sec[keep], np.minimum(e_sec[changed] + 1, last)))
        kind = np.repeat(np.arange(4), (len(members), len(earn), keep.sum(), changed.sum()))
        pts = np.concatenate((none, points, d_points[keep], np.full(changed.sum(), -1)))
        tiers = np.concatenate((np.zeros(len(members), np.int64), np.full(len(earn) + keep.sum(), -1), tier[changed]))
        sort = np.lexsort((kind, sec, owner))
        self.l_owner, self.l_sec, self.l_kind, self.l_points, self.l_tier = (
            owner[sort],
            sec[sort],
            kind[sort],
            pts[sort],
            tiers[sort],
        )
        self.l_zone = self._zones(self.country[self.l_owner])

    # ---- engagement: visits before orders and while active, reviews / shares / referrals after some orders
    def _engagement(self) -> None:
        rng, n, end = self.rng, self.n, self.cal.seconds
        v_order = np.repeat(np.arange(len(self.o_owner)), rng.poisson(SITE_VISITS_PER_ORDER, len(self.o_owner)))
        v_sec = self.o_sec[v_order] - _seconds(rng.random(len(v_order)) * 3)
        active_end = np.where(self.dropped_sec < end, self.dropped_sec + 60 * SECONDS_PER_DAY, end)
        active_end = np.minimum(np.where(self.never, self.signup_sec + 30 * SECONDS_PER_DAY, active_end), end)
        b_owner = np.repeat(np.arange(n), rng.poisson(np.where(self.never, 1.0, 0.5 + 30 * self.lam)))
        span = (active_end - self.signup_sec)[b_owner]
        b_sec = self.signup_sec[b_owner] + np.floor(rng.random(len(b_owner)) * span).astype(np.int64)
        owners, secs = [self.o_owner[v_order], b_owner], [v_sec, b_sec]
        kinds = [np.zeros(len(v_order), np.int64), np.zeros(len(b_owner), np.int64)]
        completed = np.flatnonzero(self.o_completed)
        member = self.member[self.o_owner[completed]]
        # review, social_share, referral: P(member), P(other), days after the order
        for code, (p_member, p_other, lo, hi) in enumerate(
            ((0.20, 0.12, 3, 20), (0.06, 0.03, 0, 5), (0.03, 0.012, 1, 30)), start=1
        ):
            chosen = completed[rng.random(len(completed)) < np.where(member, p_member, p_other)]
            owners.append(self.o_owner[chosen])
            secs.append(self.o_sec[chosen] + _seconds(rng.uniform(lo, hi, len(chosen))))
            kinds.append(np.full(len(chosen), code))
        owner, sec, kind = np.concatenate(owners), np.concatenate(secs), np.concatenate(kinds)
        keep = (sec >= self.signup_sec[owner]) & (sec < end)
        owner, sec, kind = owner[keep], sec[keep], kind[keep]
        sort = np.lexsort((kind, sec, owner))
        self.g_owner, self.g_sec, self.g_kind = owner[sort], sec[sort], kind[sort]
        self.g_zone = self._zones(self.country[self.g_owner])

    # ---- surveys: 1-2 after completed orders; scores follow lambda, membership and having dropped out
    def _surveys(self) -> None:
        rng, n, end = self.rng, self.n, self.cal.seconds
        comp = np.flatnonzero(self.o_completed)
        comp_start, comp_count = _starts(self.o_owner[comp], n)
        share = SURVEY_SHARE / (1 - NEVER_ORDER_SHARE - ONLY_CANCELLED_SHARE)
        answers = (self.in_bgnbd & (rng.random(n) < share)).astype(np.int64)
        answers += (answers > 0) & (comp_count >= 2) & (rng.random(n) < SECOND_SURVEY_SHARE)
        owner = np.repeat(np.arange(n), answers)
        second = np.arange(len(owner)) - _starts(owner, n)[0][owner] == 1
        j1 = np.floor(rng.random(n) * comp_count).astype(np.int64)
        j2 = (j1 + 1 + np.floor(rng.random(n) * np.maximum(comp_count - 1, 0)).astype(np.int64)) % np.maximum(
            comp_count, 1
        )
        order = comp[comp_start[owner] + np.where(second, j2[owner], j1[owner])]
        sec = self.o_sec[order] + _seconds(rng.uniform(1, 14, len(order)))
        keep = sec < end
        owner, sec = owner[keep], sec[keep]
        sort = np.lexsort((sec, owner))
        owner, sec = owner[sort], sec[sort]
        m = len(owner)
        lam_score = np.tanh(np.log(self.lam[owner] * self.bgnbd.alpha / self.bgnbd.r + 1e-300) / 1.5)
        dropped = sec > self.dropped_sec[owner]
        mood = 8.4 + 1.4 * lam_score + 0.5 * self.member[owner] - 2.5 * dropped
        recommend = np.clip(np.round(rng.normal(mood, 1.6)), 0, 10)
        repurchase = np.clip(np.round(0.7 * recommend + 2.5 - 2.0 * dropped + rng.normal(0, 1.3, m)), 0, 10)
        cross_buy = np.clip(np.round(0.5 * recommend + 1.5 + 2.0 * self.brancher[owner] + rng.normal(0, 1.5, m)), 0, 10)
        # stated monthly category spend: the real trailing-12-month spend (gross of completed orders, in the
        # customer's currency) over a share of wallet, usually below 1
        key = self.o_owner.astype(np.int64) * (1 << 40) + self.o_sec
        spent = np.concatenate(([0], np.cumsum(np.where(self.o_completed, self.o_gross, 0))))
        probe = owner.astype(np.int64) * (1 << 40) + sec
        trailing = (
            spent[np.searchsorted(key, probe, "right")]
            - spent[np.searchsorted(key, probe - 365 * SECONDS_PER_DAY, "right")]
        )
        monthly = np.round(trailing / rng.uniform(0.15, 1.1, m) / 12)
        # anonymous responses, about 5 % more: no customer, any time, spend in USD
        n_anon = int(rng.binomial(m, ANONYMOUS_SURVEY_SHARE)) if m else 0
        anon_scores = np.clip(np.round(rng.normal(6.8, 2.2, (3, n_anon))), 0, 10)
        anon_monthly = np.round(rng.lognormal(np.log(80), 0.7, n_anon) * 100)
        total = m + n_anon
        self.s_owner, self.s_anonymous = owner, n_anon
        self.s_sec = np.concatenate((sec, np.floor(rng.random(n_anon) * end).astype(np.int64)))
        self.s_zone = np.concatenate((self._zones(self.country[owner]), np.full(n_anon, len(COUNTRIES))))
        scores = np.concatenate((np.stack((recommend, repurchase, cross_buy)), anon_scores), axis=1)
        self.s_scores = scores.astype(np.int64)
        self.s_score_missing = rng.random((3, total)) < np.array([[0.0], [SCORE_MISSING_SHARE], [SCORE_MISSING_SHARE]])
        self.s_monthly = np.concatenate((monthly, anon_monthly)).astype(np.int64)
        self.s_monthly_missing = rng.random(total) < SPEND_MISSING_SHARE
        currency = np.array([CURRENCIES.index(c) for c in COUNTRY_CURRENCY])
        self.s_currency = np.concatenate((currency[self.country[owner]], np.zeros(n_anon, np.int64)))

    # ---- as text
    def tables(self, at: _Offsets) -> dict[str, pa.Table]:
        cal, n = self.cal, self.n
        customer_ids = _serial_ids(CUSTOMER_ID, at.customers, n)
        order_ids = _serial_ids(ORDER_ID, at.orders, len(self.o_owner))
        self.customer_ids, self.order_ids = customer_ids, order_ids  # for bad rows

        def of_customers(owner: np.ndarray) -> pa.Array:
            return customer_ids.take(pa.array(owner))

        scores = [_null_where(_int_text(self.s_scores[i]), self.s_score_missing[i]) for i in range(3)]
        return {
            "customers": pa.table(
                {
                    "customer_id": customer_ids,
                    "signup_at": cal.timestamps(self.signup_sec, self.signup_zone),
                    "email": self._emails(at.customers),
                    "country": _pick(COUNTRIES, self.country),
                    "acquisition_channel": _pick(CHANNELS, self.channel),
                }
            ),
            "orders": pa.table(
                {
                    "order_id": order_ids,
                    "customer_id": of_customers(self.o_owner),
                    "ordered_at": cal.timestamps(self.o_sec, self.o_zone),
                    "status": _pick(ORDER_STATUSES, ~self.o_completed),
                    "currency": _pick(COUNTRY_CURRENCY, self.country[self.o_owner]),
                }
            ),
            "order_items": pa.table(
                {
                    "order_id": order_ids.take(pa.array(self.i_order)),
                    "line_number": _int_text(self.i_line),
                    "product_id": _ids(PRODUCT_ID[0], self.i_product, PRODUCT_ID[1]),
                    "quantity": _int_text(self.i_quantity),
                    "unit_price": _money(self.i_unit_cents),
                    "discount_amount": _money(self.i_discount_cents),
                }
            ),
            "refunds": pa.table(
                {
                    "refund_id": _serial_ids(REFUND_ID, at.refunds, len(self.f_order)),
                    "order_id": order_ids.take(pa.array(self.f_order)),
                    "refunded_at": cal.timestamps(self.f_sec, self.f_zone),
                    "amount": _money(self.f_amount),
                }
            ),
            "survey_responses": pa.table(
                {
                    "response_id": _serial_ids(SURVEY_RESPONSE_ID, at.survey_responses, len(self.s_sec)),
                    "customer_id": pa.concat_arrays(
                        [of_customers(self.s_owner), pa.nulls(self.s_anonymous, pa.string())]
                    ),
                    "responded_at": cal.timestamps(self.s_sec, self.s_zone),
                    "recommend_score": scores[0],
                    "repurchase_intent_score": scores[1],
                    "cross_buy_intent_score": scores[2],
                    "category_monthly_spend": _null_where(_money(self.s_monthly), self.s_monthly_missing),
                    "currency": _pick(CURRENCIES, self.s_currency),
                }
            ),
            "loyalty_events": pa.table(
                {
                    "event_id": _serial_ids(LOYALTY_EVENT_ID, at.loyalty_events, len(self.l_owner)),
                    "customer_id": of_customers(self.l_owner),
                    "occurred_at": cal.timestamps(self.l_sec, self.l_zone),
                    "event_type": _pick(LOYALTY_EVENT_TYPES, self.l_kind),
                    "points": _null_where(_int_text(self.l_points), self.l_points < 0),
                    "tier": _null_where(_pick(LOYALTY_TIERS, np.maximum(self.l_tier, 0)), self.l_tier < 0),
                }
            ),
            "engagement_events": pa.table(
                {
                    "event_id": _serial_ids(ENGAGEMENT_EVENT_ID, at.engagement_events, len(self.g_owner)),
                    "customer_id": of_customers(self.g_owner),
                    "occurred_at": cal.timestamps(self.g_sec, self.g_zone),
                    "event_type": _pick(ENGAGEMENT_EVENT_TYPES, self.g_kind),
                }
            ),
        }

    def _emails(self, first_number: int) -> pa.Array:
        """``first.last<customer number>@domain`` (unique): some Capitalised or UPPER, some padded."""
        styled = [
            (*values, *(v.capitalize() for v in values), *(v.upper() for v in values))
            for values in (FIRST_NAMES, LAST_NAMES, EMAIL_DOMAINS)
        ]
        sizes = np.array([len(FIRST_NAMES), len(LAST_NAMES), len(EMAIL_DOMAINS)])
        codes = self.names + self.style[:, None] * sizes
        domain = _pick(styled[2], codes[:, 2])
        number = pa.array(np.arange(first_number + 1, first_number + self.n + 1)).cast(pa.string())
        email = pc.binary_join_element_wise(
            _pick(styled[0], codes[:, 0]), ".", _pick(styled[1], codes[:, 1]), number, "@", domain, ""
        )
        return pc.if_else(pa.array(self.padded), pc.binary_join_element_wise("  ", email, " ", ""), email)


# ------------------------------------------------------------------------------------------------ bad rows


def _set(rows: pa.Table, **columns: str | pa.Array | list[str | None] | None) -> pa.Table:
    """``rows`` with some columns replaced by a value for every row (None: null) or one value per row."""
    for name, value in columns.items():
        if isinstance(value, pa.Array):
            array = value
        elif isinstance(value, list):
            array = pa.array(value, pa.string())
        elif value is None:
            array = pa.nulls(rows.num_rows, pa.string())
        else:
            array = pa.array([value] * rows.num_rows, pa.string())
        rows = rows.set_column(rows.schema.get_field_index(name), name, array)
    return rows


class _BadRows:
    """Adds self-contained bad rows (new keys, bad lines with line numbers from 900 on existing orders, an
    over-refund only on an order without other refunds) and counts them for the manifest."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.injected: dict[str, dict[str, int]] = {name: {} for name in BAD_ROW_KINDS}
        self.duplicates: dict[str, int] = {e.name: 0 for e in ENTITIES}
        self.serial: dict[str, int] = dict.fromkeys(BAD_KEY_PREFIX, 0)
        self.unknown = 0  # references to customers / orders that do not exist

    def _plan(self, rng: np.random.Generator, entity: str, rows: int) -> dict[str, int]:
        kinds = BAD_ROW_KINDS[entity]
        total = int(rng.binomial(rows, self.rate)) if rows else 0
        return dict(zip(kinds, (int(c) for c in rng.multinomial(total, [1 / len(kinds)] * len(kinds))), strict=True))

    def _keys(self, entity: str, count: int) -> pa.Array:
        ids = _ids(BAD_KEY_PREFIX[entity], np.arange(self.serial[entity] + 1, self.serial[entity] + count + 1), 7)
        self.serial[entity] += count
        return ids

    def _unknown(self, prefix: str, count: int) -> pa.Array:
        ids = _ids(prefix, np.arange(self.unknown + 1, self.unknown + count + 1), 7)
        self.unknown += count
        return ids

    def _count(self, entity: str, kind: str, rows: int) -> None:
        if kind == EXACT_DUPLICATE:
            self.duplicates[entity] += rows
        elif rows:
            self.injected[entity][kind] = self.injected[entity].get(kind, 0) + rows

    def _add(
        self,
        rng: np.random.Generator,
        entity: str,
        table: pa.Table,
        sources: dict[str, np.ndarray],
        build: dict[str, object],
    ) -> pa.Table:
        """Plan the bad rows of ``entity``; each kind's rows are ``build[kind](templates, count)`` made from
        rows of ``table`` (distinct ones, from ``sources[kind]`` if given, else from all rows)."""
        plan = self._plan(rng, entity, table.num_rows)
        added = []
        for kind, count in plan.items():
            pool = sources.get(kind, np.arange(table.num_rows))
            count = min(count, len(pool))
            if count == 0:
                continue
            templates = table.take(pa.array(np.sort(rng.choice(pool, count, replace=False))))
            rows = templates if kind == EXACT_DUPLICATE else build[kind](templates, count)
            self._count(entity, kind, rows.num_rows)
            added.append(rows)
        return pa.concat_tables([table, *added]) if added else table

    def chunk(self, rng: np.random.Generator, c: _Chunk, tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
        keys, unknown = self._keys, self._unknown
        out = dict(tables)

        def pair(entity: str, column: str, first: object, second: object):
            def build(rows: pa.Table, count: int) -> pa.Table:
                pairs = rows.slice(0, (count + 1) // 2)
                key = keys(entity, pairs.num_rows)
                key_column = pairs.column_names[0]
                a = first(key) if callable(first) else first
                b = second(key) if callable(second) else second
                return pa.concat_tables(
                    [_set(pairs, **{key_column: key, column: a}), _set(pairs, **{key_column: key, column: b})]
                )

            return build

        def new_key(entity: str, **changes: object):
            def build(rows: pa.Table, count: int) -> pa.Table:
                values = {k: (v(count) if callable(v) else v) for k, v in changes.items()}
                return _set(rows, **{rows.column_names[0]: keys(entity, count)}, **values)

            return build

        def cycle(values: tuple[str, ...]):
            return lambda count: [values[i % len(values)] for i in range(count)]

        out["customers"] = self._add(
            rng,
            "customers",
            tables["customers"],
            {},
            {
                "missing_key": lambda rows, _: _set(rows, customer_id=None),
                "conflicting_duplicate_key": pair(
                    "customers",
                    "email",
                    lambda key: pc.binary_join_element_wise(pc.utf8_lower(key), "@example.com", ""),
                    lambda key: pc.binary_join_element_wise(pc.utf8_lower(key), "@example.net", ""),
                ),
                "unparseable_timestamp": new_key("customers", signup_at=BAD_TIMESTAMP),
            },
        )
        out["orders"] = self._add(
            rng,
            "orders",
            tables["orders"],
            {"missing_key": np.flatnonzero(c.o_first)},
            {
                "missing_key": lambda rows, _: _set(rows, order_id=None),
                "conflicting_duplicate_key": pair("orders", "status", "completed", "cancelled"),
                "unparseable_timestamp": new_key("orders", ordered_at=BAD_TIMESTAMP),
                "unknown_customer": new_key("orders", customer_id=lambda n: unknown(UNKNOWN_CUSTOMER_PREFIX, n)),
                "unknown_currency": new_key("orders", currency="XYZ"),
                "invalid_value": new_key("orders", status="shipped"),
            },
        )
        out["order_items"] = self._items(rng, c, tables["order_items"])
        out["refunds"] = self._refunds(rng, c, tables["refunds"])
        out["survey_responses"] = self._add(
            rng,
            "survey_responses",
            tables["survey_responses"],
            {},
            {
                "missing_key": lambda rows, _: _set(rows, response_id=None),
                "score_out_of_range": new_key("survey_responses", recommend_score=cycle(BAD_SCORES)),
                "unparseable_number": new_key("survey_responses", recommend_score="seven"),
                "unparseable_timestamp": new_key("survey_responses", responded_at=BAD_TIMESTAMP),
            },
        )
        out["loyalty_events"] = self._add(
            rng,
            "loyalty_events",
            tables["loyalty_events"],
            {},
            {
                "unknown_customer": new_key(
                    "loyalty_events", customer_id=lambda n: unknown(UNKNOWN_CUSTOMER_PREFIX, n)
                ),
                "invalid_value": new_key("loyalty_events", event_type="bogus"),
            },
        )
        out["engagement_events"] = self._add(
            rng,
            "engagement_events",
            tables["engagement_events"],
            {},
            {
                "unknown_customer": new_key(
                    "engagement_events", customer_id=lambda n: unknown(UNKNOWN_CUSTOMER_PREFIX, n)
                ),
                "unparseable_timestamp": new_key("engagement_events", occurred_at=BAD_TIMESTAMP),
            },
        )
        return out

    def _items(self, rng: np.random.Generator, c: _Chunk, items: pa.Table) -> pa.Table:
        """Bad lines: on an order that does not exist, or on an existing order under a new line number >= 900
        (every bad line on its own order, so the order's own lines are untouched)."""
        plan = self._plan(rng, "order_items", items.num_rows)
        on_orders = [k for k in BAD_LINE_NUMBER if plan[k]]
        wanted = sum(plan[k] for k in on_orders)
        orders = rng.choice(len(c.o_owner), min(wanted, len(c.o_owner)), replace=False) if wanted else []
        added, used = [], 0
        for kind, count in plan.items():
            if kind in BAD_LINE_NUMBER:
                chosen = np.asarray(orders[used : used + count], dtype=np.int64)
                used += len(chosen)
                if not len(chosen):
                    continue
                rows = _set(items.take(pa.array(c.i_start[chosen])), line_number=str(BAD_LINE_NUMBER[kind]))
                column, value = {
                    "unknown_product": ("product_id", UNKNOWN_PRODUCT_ID),
                    "negative_quantity": ("quantity", "-1"),
                    "negative_amount": ("unit_price", "-5.00"),
                    "unparseable_number": ("quantity", "two"),
                }[kind]
                rows = _set(rows, **{column: value})
            elif count:
                source = items.take(pa.array(np.sort(rng.choice(items.num_rows, count, replace=False))))
                if kind == "unknown_order":
                    rows = _set(source, order_id=self._unknown(UNKNOWN_ORDER_PREFIX, count), line_number="1")
                else:
                    rows = source  # exact duplicates
            else:
                continue
            self._count("order_items", kind, rows.num_rows)
            added.append(rows)
        return pa.concat_tables([items, *added]) if added else items

    def _refunds(self, rng: np.random.Generator, c: _Chunk, refunds: pa.Table) -> pa.Table:
        """Bad refunds under new refund ids; an over-refund (twice the order's gross plus 1) only on a
        completed order without any other refund, 1-30 days after the order like a real refund."""
        plan = self._plan(rng, "refunds", refunds.num_rows)
        added = []
        for kind, count in plan.items():
            if count == 0:
                continue
            if kind == "refund_exceeds_order":
                room = c.cal.seconds - c.o_sec
                pool = np.flatnonzero(c.o_completed & ~c.o_refunded & (room > 2 * SECONDS_PER_DAY))
                chosen = np.sort(rng.choice(pool, min(count, len(pool)), replace=False))
                span = np.minimum(29 * SECONDS_PER_DAY, room[chosen] - SECONDS_PER_DAY - 1)
                sec = c.o_sec[chosen] + SECONDS_PER_DAY + np.floor(rng.random(len(chosen)) * span).astype(np.int64)
                rows = pa.table(
                    {
                        "refund_id": self._keys("refunds", len(chosen)),
                        "order_id": c.order_ids.take(pa.array(chosen)),
                        "refunded_at": c.cal.timestamps(sec, c.o_zone[chosen]),
                        "amount": _money(2 * c.o_gross[chosen] + 100),
                    }
                )
            else:
                source = refunds.take(pa.array(np.sort(rng.choice(refunds.num_rows, count, replace=False))))
                if kind == "unknown_order":
                    change = {"order_id": self._unknown(UNKNOWN_ORDER_PREFIX, count)}
                elif kind == "negative_amount":
                    change = {"amount": "-5.00"}
                else:
                    change = {"refunded_at": BAD_TIMESTAMP}
                rows = _set(source, refund_id=self._keys("refunds", count), **change)
            self._count("refunds", kind, rows.num_rows)
            added.append(rows)
        return pa.concat_tables([refunds, *added]) if added else refunds

    def products(self, rng: np.random.Generator, products: pa.Table) -> pa.Table:
        def renamed(rows: pa.Table, _: int) -> pa.Table:
            names = pc.binary_join_element_wise(rows["product_name"], " (unlisted)", "")
            return _set(rows, product_id=None, product_name=names.combine_chunks())

        return self._add(
            rng,
            "products",
            products,
            {},
            {
                "missing_key": renamed,
                "unparseable_number": lambda rows, n: _set(
                    rows, product_id=self._keys("products", n), list_price="abc"
                ),
                "negative_amount": lambda rows, n: _set(rows, product_id=self._keys("products", n), list_price="-5.00"),
            },
        )

    def marketing(self, rng: np.random.Generator, spend: pa.Table, months: list[str]) -> pa.Table:
        """Bad spend rows under new keys: channels no one else uses."""
        plan = self._plan(rng, "marketing_spend", spend.num_rows)
        added = []
        for kind, count in plan.items():
            if count == 0:
                continue
            base = BAD_SPEND_CHANNEL[kind]
            channels = [base if i < len(months) else f"{base}{i // len(months) + 1}" for i in range(count)]
            rows = pa.table(
                {
                    "channel": pa.array(channels),
                    "spend_month": pa.array([months[i % len(months)] for i in range(count)]),
                    "amount": pa.array(["100.00" if kind == "unknown_currency" else "-100.00"] * count),
                    "currency": pa.array(["XYZ" if kind == "unknown_currency" else "USD"] * count),
                }
            )
            self._count("marketing_spend", kind, count)
            added.append(rows)
        return pa.concat_tables([spend, *added]) if added else spend


# ------------------------------------------------------------------------------------------------ output


class _Writers:
    """One streaming writer per raw file, every column text, in the contract's column order."""

    def __init__(self, out_dir: Path, fmt: str) -> None:
        self.rows = {e.name: 0 for e in ENTITIES}
        self.schemas = {e.name: pa.schema([(c, pa.string()) for c in e.all_columns]) for e in ENTITIES}
        self.writers: dict[str, pacsv.CSVWriter | pq.ParquetWriter] = {}
        for name, schema in self.schemas.items():
            path = out_dir / f"{name}.{fmt}"
            if fmt == "parquet":
                self.writers[name] = pq.ParquetWriter(path, schema)
            else:
                # no value written here needs quoting; "none" fails loudly if one ever did
                options = pacsv.WriteOptions(quoting_style="none")
                self.writers[name] = pacsv.CSVWriter(path, schema, write_options=options)

    def write(self, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            table = table.select(self.schemas[name].names).cast(self.schemas[name])
            if table.num_rows:
                self.writers[name].write_table(table)
            self.rows[name] += table.num_rows

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _marketing_spend(rng: np.random.Generator, acquisitions: np.ndarray, cal: _Calendar) -> pa.Table:
    """One row per channel and month: customers acquired that month times the channel's cost, with noise."""
    months = cal.month_starts()
    cost = np.array(CHANNEL_COST_USD)[None, :] * rng.uniform(0.85, 1.15, (cal.months, len(CHANNELS)))
    cents = np.round(acquisitions.T * cost * 100).astype(np.int64)  # month x channel
    return pa.table(
        {
            "channel": pa.array(list(CHANNELS) * cal.months),
            "spend_month": pa.array([m for m in months for _ in CHANNELS]),
            "amount": _money(cents.ravel()),
            "currency": pa.array(["USD"] * (cal.months * len(CHANNELS))),
        }
    )


def _prepare(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not force:
            raise FileExistsError(f"{out_dir} is not empty (use --force to overwrite the generated files)")
        # only what this generator writes: never a whole folder someone pointed --out at by mistake
        for name in [f"{e.name}.{fmt}" for e in ENTITIES for fmt in FORMATS] + [MANIFEST_NAME]:
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def _check_arguments(
    customers: int,
    seed: int,
    start: date,
    end: date,
    fmt: str,
    bad_row_rate: float,
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    chunk_size: int,
) -> None:
    if customers < 1:
        raise ValueError(f"customers must be at least 1, not {customers}")
    if seed < 0:
        raise ValueError(f"seed must be 0 or more, not {seed}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be csv or parquet, not {fmt!r}")
    if not 0 <= bad_row_rate <= 0.5:
        raise ValueError(f"bad row rate must be from 0 to 0.5, not {bad_row_rate}")
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, not {chunk_size}")
    for name, value in [*asdict(bgnbd).items(), *asdict(gamma_gamma).items()]:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"parameter {name} must be a positive number, not {value}")


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
    """Write one file per raw entity for ``customers`` customers, and ``manifest.json``, into ``out_dir``;
    return the manifest. Raises FileExistsError if ``out_dir`` is not empty (unless ``force``)."""
    _check_arguments(customers, seed, start, end, fmt, bad_row_rate, bgnbd, gamma_gamma, chunk_size)
    out_dir = Path(out_dir)
    _prepare(out_dir, force)
    cal = _Calendar(start, end)
    bad = _BadRows(bad_row_rate)
    writers = _Writers(out_dir, fmt)
    try:
        products = _products(_rng(seed, _PRODUCT_STREAM))
        if bad_row_rate:
            products = bad.products(_rng(seed, _BAD_GLOBAL_STREAM, 0), products)
        writers.write({"products": products})
        at = _Offsets()
        acquisitions = np.zeros((len(CHANNELS), cal.months), dtype=np.int64)
        bar = tqdm(
            total=customers,
            unit="customer",
            unit_scale=True,
            desc="generating",
            file=sys.stderr,
            disable=not progress,
        )
        # simulate the next chunk while the previous one is written (pyarrow writes without holding the GIL)
        with ThreadPoolExecutor(max_workers=1) as pool, bar:
            pending: Future | None = None
            for index, first in enumerate(range(0, customers, chunk_size)):
                n = min(chunk_size, customers - first)
                chunk = _Chunk(_rng(seed, _CHUNK_STREAM, index), n, cal, bgnbd, gamma_gamma)
                tables = chunk.tables(at)
                at = _Offsets(
                    at.customers + n,
                    at.orders + len(chunk.o_owner),
                    at.refunds + len(chunk.f_order),
                    at.loyalty_events + len(chunk.l_owner),
                    at.engagement_events + len(chunk.g_owner),
                    at.survey_responses + len(chunk.s_sec),
                )
                acquisitions += chunk.acquisitions
                if bad_row_rate:
                    tables = bad.chunk(_rng(seed, _BAD_STREAM, index), chunk, tables)
                del chunk  # its arrays are not needed any more: keep one chunk in memory, not two
                if pending is not None:
                    pending.result()
                pending = pool.submit(writers.write, tables)
                bar.update(n)
            if pending is not None:
                pending.result()
        spend = _marketing_spend(_rng(seed, _MARKETING_STREAM), acquisitions, cal)
        if bad_row_rate:
            spend = bad.marketing(_rng(seed, _BAD_GLOBAL_STREAM, 1), spend, cal.month_starts())
        writers.write({"marketing_spend": spend})
    finally:
        writers.close()

    manifest = {
        "generator": "loyalty.generator",
        "generator_version": GENERATOR_VERSION,
        "package_version": __version__,
        "seed": seed,
        "customers": customers,
        "chunk_size": chunk_size,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "data_end_date": end.isoformat(),
        "format": fmt,
        "time_unit": "day",
        "bgnbd": asdict(bgnbd),
        "gamma_gamma": asdict(gamma_gamma),
        "gamma_gamma_currency": "USD",
        "units_per_usd": UNITS_PER_USD,
        "bad_row_rate": bad_row_rate,
        "rows": writers.rows,
        "injected": bad.injected,
        "exact_duplicates": bad.duplicates,
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


# ------------------------------------------------------------------------------------------------ CLI


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``generate`` command's flags."""
    bg, gg = BgNbdParams(), GammaGammaParams()
    parser.add_argument("--customers", type=int, required=True, help="number of customers to simulate")
    parser.add_argument("--seed", type=int, default=42, help="random seed: same arguments, same files (default 42)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (must be empty unless --force)")
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2023, 11, 1),
        help="first day, YYYY-MM-DD (default 2023-11-01)",
    )
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=date(2026, 10, 31),
        help="last day, YYYY-MM-DD (default 2026-10-31)",
    )
    parser.add_argument("--format", choices=FORMATS, default="csv", help="file format (default csv)")
    parser.add_argument(
        "--bad-row-rate",
        type=float,
        default=0.0,
        help="extra bad rows per file, as a share of its rows (default 0)",
    )
    parser.add_argument("--bgnbd-r", type=float, default=bg.r, help=f"BG/NBD r (default {bg.r})")
    parser.add_argument(
        "--bgnbd-alpha", type=float, default=bg.alpha, help=f"BG/NBD alpha, in days (default {bg.alpha})"
    )
    parser.add_argument("--bgnbd-a", type=float, default=bg.a, help=f"BG/NBD a (default {bg.a})")
    parser.add_argument("--bgnbd-b", type=float, default=bg.b, help=f"BG/NBD b (default {bg.b})")
    parser.add_argument("--gg-p", type=float, default=gg.p, help=f"Gamma-Gamma p (default {gg.p})")
    parser.add_argument("--gg-q", type=float, default=gg.q, help=f"Gamma-Gamma q (default {gg.q})")
    parser.add_argument("--gg-gamma", type=float, default=gg.gamma, help=f"Gamma-Gamma gamma (default {gg.gamma})")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=50_000,
        help="customers simulated at a time (default 50000; part of what the seed reproduces)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true", help="overwrite the generated files in a non-empty --out")


def run_generate(args: argparse.Namespace) -> int:
    """``loyalty generate``: write the files and print what was written, where, and how long it took."""
    started = time.perf_counter()
    try:
        manifest = generate(
            args.out,
            args.customers,
            args.seed,
            start=args.start,
            end=args.end,
            fmt=args.format,
            bad_row_rate=args.bad_row_rate,
            bgnbd=BgNbdParams(args.bgnbd_r, args.bgnbd_alpha, args.bgnbd_a, args.bgnbd_b),
            gamma_gamma=GammaGammaParams(args.gg_p, args.gg_q, args.gg_gamma),
            chunk_size=args.chunk_size,
            progress=not args.no_progress,
            force=args.force,
        )
    except (FileExistsError, ValueError) as exc:
        raise LoyaltyError(str(exc)) from None
    seconds = time.perf_counter() - started
    print(f"wrote {Path(args.out).resolve()} in {seconds:.1f} s ({args.customers:,} customers, seed {args.seed}):")
    for name, rows in manifest["rows"].items():
        bad = sum(manifest["injected"].get(name, {}).values()) + manifest["exact_duplicates"].get(name, 0)
        extra = f"  ({bad:,} bad or duplicated)" if bad else ""
        print(f"  {name + '.' + args.format:<26}{rows:>13,} rows{extra}")
    return 0

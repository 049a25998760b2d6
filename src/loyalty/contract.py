"""The raw-data contract: which files land in ``LOYALTY_RAW_DIR`` and which columns each must have.

This module is the single source of truth for the contract. The landing check (``loyalty.landing``), the data
generator and the dbt sources all follow it; ``README.md`` documents it for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entity:
    """One raw entity: a file ``<name>.csv`` or ``<name>.parquet`` in the raw folder."""

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    required: bool
    # Columns that may be missing from the file altogether; the staging model then sees them as null.
    optional_columns: tuple[str, ...] = field(default_factory=tuple)

    @property
    def all_columns(self) -> tuple[str, ...]:
        return self.columns + self.optional_columns


ENTITIES: tuple[Entity, ...] = (
    Entity(
        "customers",
        ("customer_id",),
        ("customer_id", "signup_at", "email", "country", "acquisition_channel"),
        True,
    ),
    Entity("products", ("product_id",), ("product_id", "product_name", "category", "list_price"), True),
    Entity("orders", ("order_id",), ("order_id", "customer_id", "ordered_at", "status", "currency"), True),
    Entity(
        "order_items",
        ("order_id", "line_number"),
        ("order_id", "line_number", "product_id", "quantity", "unit_price", "discount_amount"),
        True,
    ),
    Entity("refunds", ("refund_id",), ("refund_id", "order_id", "refunded_at", "amount"), False),
    Entity(
        "survey_responses",
        ("response_id",),
        (
            "response_id",
            "customer_id",
            "responded_at",
            "recommend_score",
            "repurchase_intent_score",
            "cross_buy_intent_score",
            "category_monthly_spend",
        ),
        False,
        optional_columns=("currency",),
    ),
    Entity("marketing_spend", ("channel", "spend_month"), ("channel", "spend_month", "amount", "currency"), False),
    Entity(
        "loyalty_events",
        ("event_id",),
        ("event_id", "customer_id", "occurred_at", "event_type", "points", "tier"),
        False,
    ),
    Entity("engagement_events", ("event_id",), ("event_id", "customer_id", "occurred_at", "event_type"), False),
)

BY_NAME: dict[str, Entity] = {e.name: e for e in ENTITIES}

# The large, append-mostly entities whose base models are incremental (a night reads only their new batches); the
# others are rebuilt from all their batches every night. The base models' materialization must agree (tested).
INCREMENTAL_ENTITIES: tuple[str, ...] = ("orders", "order_items", "loyalty_events", "engagement_events")

ORDER_STATUSES = ("completed", "cancelled")
LOYALTY_EVENT_TYPES = ("enrolled", "points_earned", "points_redeemed", "tier_changed")
LOYALTY_TIERS = ("bronze", "silver", "gold")
ENGAGEMENT_EVENT_TYPES = ("site_visit", "review", "social_share", "referral")

# Reason codes a raw row can be quarantined with (models/audit/quarantined_rows.sql). One reason per row: the
# first that applies, in this order (each base model checks the codes that concern its entity in this order).
REASON_CODES: dict[str, str] = {
    "invalid_encoding": "a CSV line that is not valid UTF-8 (e.g. a Latin-1 byte)",
    "control_character": "a CSV line holding a carriage return (other than its CRLF end) or a NUL byte",
    "unterminated_quote": "a CSV line whose quoted field is still open at its end (a runaway quote: the contract allows"
    " no line break inside a field, so the lines after it are read as records of their own)",
    "stray_quote": "a CSV line with a quote that neither opens nor closes a field (inside an unquoted field, or text"
    " right after a closing quote)",
    "malformed_record": "a CSV record that does not split into the header's fields (too many, too few)",
    "email_outside_email_column": "a row of an entity with an email column holds something that looks like an email"
    " address in another column, which nothing would hash: its values are masked, its key included",
    "missing_key": "a key column is empty",
    "conflicting_duplicate_key": "the key appears on rows whose content differs: all versions in the batch that first"
    " brought the key are held back, and so is a later batch's version that is not a copy of an earlier one",
    "missing_value": "a required non-key column is empty",
    "unparseable_timestamp": "a timestamp is not ISO-8601, or its UTC offset is not one from -14:00 to +14:00",
    "timestamp_out_of_range": "a timestamp (or spend month) outside the plausible window, 1900-01-01 up to but"
    " excluding 2200-01-01 UTC (macro timestamp_window)",
    "unparseable_number": "a number (or an integer column) does not parse",
    "amount_out_of_range": "a quantity, money value, line subtotal or points value beyond its bound (macro"
    " raw_value_bound: 10^6 units, 10^9 in the amount's currency, 10^9 points), or too large to store",
    "invalid_value": "a categorical column holds a value outside its allowed set",
    "score_out_of_range": "a survey score is not an integer from 0 to 10",
    "negative_quantity": "a quantity is below zero",
    "negative_amount": "a price, discount, refund, spend or points amount is below zero",
    "discount_exceeds_line": "a line's discount is larger than quantity * unit price",
    "unknown_currency": "the currency has no rate in the exchange-rate seed",
    "no_exchange_rate_on_date": "an amount in another currency than the reporting one is dated before the first rate"
    " of its currency or of the reporting currency (orders, marketing spend, a survey's reported spend)",
    "unknown_customer": "the customer_id is not among the staged customers",
    "unknown_order": "the order_id is not among the staged orders",
    "unknown_product": "the product_id is not among the staged products",
    "refund_of_cancelled_order": "the refunded order was cancelled: nothing was paid that could be refunded",
    "refund_before_order": "the refund is dated before its order",
    "refund_exceeds_order": "the order's refunds up to and including this one exceed the order's gross revenue",
}

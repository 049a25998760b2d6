"""The pandas baseline of the benchmark: what a competent analyst's notebook does to get the customer CLV table, the
repurchase cohorts and the monthly NPS straight from the raw files, with the warehouse's definitions (valid orders,
refunds as of the date, currency conversion, refunds booked in their own month in time series).

It is leaner than the warehouse on purpose: no quarantine, no checks, no other marts; it trusts the input. On
clean generated data its results equal the warehouse's (checked by ``compare``), so the timings compare the same
metrics.

    python -m benchmarks.pandas_baseline --raw-dir /tmp/raw --as-of 2026-10-31 --out /tmp/pandas_out
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

SEED_RATES = Path(__file__).resolve().parents[1] / "seeds" / "exchange_rates.csv"


def _utc(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text, utc=True, format="ISO8601")


def _rates(currency: str) -> pd.Series:
    """Units of the reporting currency per unit of each currency (the seed's single rate per currency)."""
    rates = pd.read_csv(SEED_RATES).sort_values("valid_from").groupby("currency_code")["units_per_usd"].last()
    return rates[currency] / rates


def compute(raw_dir: Path, as_of: date, timezone: str = "UTC", currency: str = "USD") -> dict[str, pd.DataFrame]:
    """The three result tables: ``clv`` (per customer), ``cohorts`` (cohort month x months since first order) and
    ``nps`` (per month)."""
    as_of_ts = pd.Timestamp(as_of)
    rate = _rates(currency)

    orders = pd.read_csv(
        raw_dir / "orders.csv", usecols=["order_id", "customer_id", "ordered_at", "status", "currency"]
    )
    orders["order_date"] = _utc(orders["ordered_at"]).dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()
    orders = orders[(orders["status"] == "completed") & (orders["order_date"] <= as_of_ts)]
    orders["rate"] = orders["currency"].map(rate)

    items = pd.read_csv(raw_dir / "order_items.csv", usecols=["order_id", "quantity", "unit_price", "discount_amount"])
    items["gross"] = items["quantity"] * items["unit_price"] - items["discount_amount"].fillna(0)
    gross = items.groupby("order_id")["gross"].sum()
    orders["gross"] = (orders["order_id"].map(gross).fillna(0) * orders["rate"]).round(2)

    refunds = pd.read_csv(raw_dir / "refunds.csv", usecols=["order_id", "refunded_at", "amount"])
    refunds["refund_date"] = _utc(refunds["refunded_at"]).dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()
    refunds = refunds[refunds["refund_date"] <= as_of_ts].merge(
        orders[["order_id", "customer_id", "order_date", "rate"]], on="order_id"
    )
    refunded = refunds.groupby("order_id")["amount"].sum()
    orders["refunded"] = (orders["order_id"].map(refunded).fillna(0) * orders["rate"]).round(2)
    orders["net"] = orders["gross"] - orders["refunded"]

    # customer CLV table
    ordered = orders.sort_values(["customer_id", "ordered_at", "order_id"])
    by_customer = ordered.groupby("customer_id")
    clv = by_customer.agg(
        first_order_date=("order_date", "min"),
        last_order_date=("order_date", "max"),
        valid_order_count=("order_id", "count"),
        gross_revenue=("gross", "sum"),
        refunded_amount=("refunded", "sum"),
        net_revenue=("net", "sum"),
    )
    # (GroupBy.nth keeps the rows' own index, not the customer: select the second row of each customer instead)
    second = ordered[by_customer.cumcount() == 1].set_index("customer_id")["order_date"]
    clv["second_order_date"] = second.reindex(clv.index)
    clv["average_order_value"] = (clv["gross_revenue"] / clv["valid_order_count"]).round(2)
    gaps = (clv["last_order_date"] - clv["first_order_date"]).dt.days
    clv["mean_days_between_orders"] = (gaps / (clv["valid_order_count"] - 1)).where(clv["valid_order_count"] > 1)
    clv["days_since_last_order"] = (as_of_ts - clv["last_order_date"]).dt.days
    clv["cohort_month"] = clv["first_order_date"].dt.to_period("M").dt.to_timestamp()

    # repurchase cohorts: refunds booked in the month they were made
    as_of_month = as_of_ts.to_period("M")
    orders["month"] = orders["order_date"].dt.to_period("M")
    refunds["month"] = np.maximum(refunds["refund_date"], refunds["order_date"]).dt.to_period("M")
    refunds["converted"] = (refunds["amount"] * refunds["rate"]).round(2)
    cohort_of = clv["cohort_month"].dt.to_period("M")
    orders["cohort"] = orders["customer_id"].map(cohort_of)
    refunds["cohort"] = refunds["customer_id"].map(cohort_of)
    active = orders.groupby(["cohort", "month"])["customer_id"].nunique().rename("active_customers")
    booked = pd.concat(
        [
            orders[["cohort", "month", "gross"]].rename(columns={"gross": "net"}),
            refunds[["cohort", "month"]].assign(net=-refunds["converted"]),
        ]
    )
    revenue = booked.groupby(["cohort", "month"])["net"].sum().rename("net_revenue")
    repeats = (
        clv.dropna(subset=["second_order_date"])
        .assign(cohort=lambda d: d["cohort_month"].dt.to_period("M"))
        .assign(month=lambda d: d["second_order_date"].dt.to_period("M"))
        .groupby(["cohort", "month"])
        .size()
        .rename("new_repeat_customers")
    )
    sizes = clv.groupby(cohort_of).size()
    grid = pd.DataFrame(
        [(cohort, cohort + k, k, size) for cohort, size in sizes.items() for k in range((as_of_month - cohort).n + 1)],
        columns=["cohort", "month", "months_since_first_order", "cohort_size"],
    ).set_index(["cohort", "month"])
    cohorts = grid.join(active).join(revenue).join(repeats).fillna(0).reset_index()
    cohorts = cohorts.sort_values(["cohort", "month"])
    cohorts["cumulative_repeat_customers"] = cohorts.groupby("cohort")["new_repeat_customers"].cumsum()
    cohorts["retention_rate"] = cohorts["active_customers"] / cohorts["cohort_size"]
    cohorts["cumulative_repurchase_rate"] = cohorts["cumulative_repeat_customers"] / cohorts["cohort_size"]
    cohorts["cumulative_net_revenue_per_customer"] = (
        cohorts.groupby("cohort")["net_revenue"].cumsum() / cohorts["cohort_size"]
    )
    cohorts["cohort_month"] = cohorts["cohort"].dt.to_timestamp()
    cohorts = cohorts.drop(columns=["cohort", "month", "new_repeat_customers"])

    # monthly NPS
    surveys = pd.read_csv(raw_dir / "survey_responses.csv", usecols=["responded_at", "recommend_score"])
    surveys["date"] = _utc(surveys["responded_at"]).dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()
    surveys = surveys[surveys["date"] <= as_of_ts]
    surveys["month"] = surveys["date"].dt.to_period("M").dt.to_timestamp()
    score = surveys["recommend_score"]
    nps = (
        surveys.assign(promoter=score >= 9, detractor=score <= 6)
        .groupby("month")
        .agg(responses=("promoter", "size"), promoters=("promoter", "sum"), detractors=("detractor", "sum"))
    )
    p, d, n = nps["promoters"] / nps["responses"], nps["detractors"] / nps["responses"], nps["responses"]
    nps["nps"] = 100 * (p - d)
    nps["nps_margin_of_error"] = 100 * 1.96 * np.sqrt((p + d - (p - d) ** 2) / n)
    return {"clv": clv.reset_index(), "cohorts": cohorts, "nps": nps.reset_index()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, help="write the three tables as Parquet here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    tables = compute(args.raw_dir, args.as_of)
    seconds = time.perf_counter() - started
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, frame in tables.items():
            frame.to_parquet(args.out / f"{name}.parquet", index=False)
    print(f"pandas baseline: {seconds:.1f} s, " + ", ".join(f"{k} {len(v):,} rows" for k, v in tables.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def compare(tables: dict[str, pd.DataFrame], warehouse: Path) -> dict[str, float]:
    """Largest absolute difference between the baseline and the warehouse marts, per compared figure (0 or a cent
    is agreement: the baseline converts refunds one by one in the cohorts, the warehouse telescopes them)."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        clv = con.sql(
            "select customer_id, valid_order_count, gross_revenue::double gross_revenue,"
            " net_revenue::double net_revenue, average_order_value::double average_order_value,"
            " mean_days_between_orders, days_since_last_order from marts.customer_lifetime_value"
        ).df()
        cohorts = con.sql(
            "select cohort_month, months_since_first_order, cohort_size, active_customers, retention_rate,"
            " cumulative_repurchase_rate, net_revenue::double net_revenue, cumulative_net_revenue_per_customer"
            " from marts.repurchase_cohorts"
        ).df()
        nps = con.sql("select month_start as month, responses, nps from marts.nps_monthly where responses > 0").df()
    diffs: dict[str, float] = {}
    left = tables["clv"].merge(clv, on="customer_id", suffixes=("", "_wh"), how="outer", indicator=True)
    diffs["clv_unmatched_customers"] = float((left["_merge"] != "both").sum())
    for column in ("valid_order_count", "gross_revenue", "net_revenue", "average_order_value", "days_since_last_order"):
        diffs[f"clv.{column}"] = float((left[column] - left[f"{column}_wh"]).abs().max())
    gap = (left["mean_days_between_orders"] - left["mean_days_between_orders_wh"]).abs()
    diffs["clv.mean_days_between_orders"] = float(gap.max())
    cohort_keys = ["cohort_month", "months_since_first_order"]
    ours = tables["cohorts"].assign(cohort_month=lambda d: d["cohort_month"].dt.date.astype(str))
    theirs = cohorts.assign(cohort_month=lambda d: d["cohort_month"].astype(str))
    joined = ours.merge(theirs, on=cohort_keys, suffixes=("", "_wh"), how="outer", indicator=True)
    diffs["cohorts_unmatched_rows"] = float((joined["_merge"] != "both").sum())
    for column in ("cohort_size", "active_customers", "retention_rate", "cumulative_repurchase_rate", "net_revenue"):
        diffs[f"cohorts.{column}"] = float((joined[column] - joined[f"{column}_wh"]).abs().max())
    ours_nps = tables["nps"].assign(month=lambda d: d["month"].dt.date.astype(str))
    joined = ours_nps.merge(nps.assign(month=lambda d: d["month"].astype(str)), on="month", suffixes=("", "_wh"))
    diffs["nps_unmatched_months"] = float(len(ours_nps) - len(joined))
    diffs["nps.nps"] = float((joined["nps"] - joined["nps_wh"]).abs().max())
    return diffs

"""Predicted customer lifetime value: fit BG/NBD and Gamma-Gamma on the customers' histories, score every customer,
and compare predictions with a holdout period. This is what the dbt Python models call.

Input: one row per customer with ``customer_id``, ``frequency`` (x, repeat transaction-days), ``recency`` (t_x) and
``tenure`` (T) in the settings' time unit, and ``mean_repeat_value`` (mean net value per repeat transaction-day; null
when x = 0). Output tables have fixed Arrow schemas, so an empty or degenerate input still gives typed tables.

Predicted CLV over H months (``horizon_months``), in monthly steps like lifetimes' ``customer_lifetime_value``:

    CLV = E[M] * sum over m = 1..H of (E[Y(m L)] - E[Y((m - 1) L)]) / (1 + annual_rate)^(m / 12)

with L = one month in the time unit (365.25 / 12 days, so 12 months are one year), E[Y(t)] the BG/NBD conditional
expected transactions in the next t and E[M] the Gamma-Gamma conditional expected mean transaction value. Each
month's expected transactions are discounted at the end of that month with the monthly rate equivalent to the
annual one, (1 + annual_rate)^(1/12) - 1. ``expected_transactions`` is E[Y(H L)], undiscounted.

Speed: E[Y(t)] is P(alive | x, t_x, T) times a term that depends on (x, T) only
(bgnbd.alive_expected_transactions), so the hypergeometric functions are evaluated once per distinct (x, T) pair
and month, not per customer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loyalty.predictive import bgnbd, gamma_gamma
from loyalty.predictive.estimation import CONVERGED, NOT_FITTED, FitResult
from loyalty.predictive.grouping import row_groups, value_codes

TIME_UNIT_DAYS = {"day": 1.0, "week": 7.0}
DAYS_PER_MONTH = 365.25 / 12
INPUT_COLUMNS = ("customer_id", "frequency", "recency", "tenure", "mean_repeat_value")
# the holdout columns evaluation_table reads besides INPUT_COLUMNS
HOLDOUT_COLUMNS = ("holdout_transactions", "holdout_start_date", "holdout_end_date", "holdout_length")
FREQUENCY_BUCKETS = 7  # calibration frequency 0, 1, ..., 6 and "7+"
Table = pd.DataFrame | pa.Table  # the input tables: pandas or Arrow (what dbt-duckdb's relations give)

PARAMETERS_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("parameter", pa.string()),
        ("value", pa.float64()),
        ("standard_error", pa.float64()),
        ("status", pa.string()),
        ("converged", pa.bool_()),
        ("message", pa.string()),
        ("log_likelihood", pa.float64()),
        ("customers", pa.int64()),
        ("iterations", pa.int64()),
        ("fit_seconds", pa.float64()),
        ("time_unit", pa.string()),
        ("as_of_date", pa.date32()),
    ]
)
PREDICTIONS_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("frequency", pa.int64()),
        ("recency", pa.float64()),
        ("tenure", pa.float64()),
        ("probability_alive", pa.float64()),
        ("expected_transactions", pa.float64()),
        ("expected_mean_transaction_value", pa.float64()),
        ("predicted_clv", pa.float64()),
        ("horizon_months", pa.int64()),
        ("horizon_length", pa.float64()),
        ("annual_discount_rate", pa.float64()),
        ("time_unit", pa.string()),
        ("as_of_date", pa.date32()),
    ]
)
EVALUATION_SCHEMA = pa.schema(
    [
        ("breakdown", pa.string()),
        ("frequency_bucket", pa.string()),
        ("bucket_order", pa.int64()),
        ("customers", pa.int64()),
        ("actual_transactions", pa.float64()),
        ("predicted_transactions", pa.float64()),
        ("mean_actual_transactions", pa.float64()),
        ("mean_predicted_transactions", pa.float64()),
        ("mean_absolute_error", pa.float64()),
        ("correlation", pa.float64()),
        ("holdout_start_date", pa.date32()),
        ("holdout_end_date", pa.date32()),
        ("holdout_length", pa.float64()),
        ("time_unit", pa.string()),
        ("as_of_date", pa.date32()),
    ]
)


@dataclass(frozen=True)
class ClvSettings:
    """How the models are fitted and scored (dbt vars clv_time_unit, clv_horizon_months, clv_annual_discount_rate,
    and the as-of date). ``days_per_month`` is 365.25 / 12; 30 reproduces lifetimes' monthly steps."""

    time_unit: str = "day"
    horizon_months: int = 12
    annual_discount_rate: float = 0.10
    as_of_date: date | None = None
    days_per_month: float = DAYS_PER_MONTH

    def __post_init__(self) -> None:
        if self.time_unit not in TIME_UNIT_DAYS:
            raise ValueError(f"time unit must be one of {', '.join(TIME_UNIT_DAYS)}, not {self.time_unit!r}")
        if int(self.horizon_months) != self.horizon_months or self.horizon_months < 1:
            raise ValueError(f"horizon must be a whole number of months >= 1, not {self.horizon_months!r}")
        if not (math.isfinite(self.annual_discount_rate) and self.annual_discount_rate > -1):
            raise ValueError(f"annual discount rate must be a number > -1, not {self.annual_discount_rate!r}")
        if not self.days_per_month > 0:
            raise ValueError(f"days per month must be positive, not {self.days_per_month!r}")

    @property
    def month_length(self) -> float:
        """One month in the time unit."""
        return self.days_per_month / TIME_UNIT_DAYS[self.time_unit]

    @property
    def horizon_length(self) -> float:
        """The horizon in the time unit (12 months = 365.25 days = 52.18 weeks)."""
        return int(self.horizon_months) * self.month_length

    def discount_factors(self) -> np.ndarray:
        """1 / (1 + annual_rate)^(m / 12) for months m = 1..horizon_months (each month discounted at its end)."""
        months = np.arange(1, int(self.horizon_months) + 1, dtype=np.float64)
        return (1.0 + self.annual_discount_rate) ** (-months / 12.0)


def settings_from_row(rows: list[dict[str, object]]) -> ClvSettings:
    """Settings from the one-row model int_clv__settings (the dbt vars, checked by the macros in
    macros/metrics/clv.sql)."""
    if len(rows) != 1:
        raise ValueError(f"int_clv__settings must have exactly one row, not {len(rows)}")
    row = rows[0]
    return ClvSettings(
        time_unit=str(row["time_unit"]),
        horizon_months=int(row["horizon_months"]),
        annual_discount_rate=float(row["annual_discount_rate"]),
        as_of_date=row["as_of_date"],
    )


@dataclass(frozen=True)
class Histories:
    """The input's columns as arrays, with the rows the models can use marked in ``valid``."""

    customer_id: pa.Array | pa.ChunkedArray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray
    valid: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def _arrow_column(table: Table, name: str) -> pa.ChunkedArray | pa.Array:
    if isinstance(table, pa.Table):
        return table.column(name)
    return pa.array(table[name], from_pandas=True)


def _float_column(table: Table, name: str) -> np.ndarray:
    """A column as float64 with NaN for nulls (and for text that is not a number)."""
    column = _arrow_column(table, name)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_decimal(column.type)):
        column = pa.array(pd.to_numeric(pd.Series(column.to_pylist(), dtype=object), errors="coerce"))
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def _first_value(table: Table, name: str) -> object:
    return _arrow_column(table, name)[0].as_py()


def in_customer_order(customers: pd.DataFrame | pa.Table) -> pd.DataFrame | pa.Table:
    """The rows sorted by customer_id. Floating-point sums depend on the order of their terms, and DuckDB hands
    rows over in whatever order its threads produced them: the same histories must give the same fit, to the last
    bit, on every build (a full refresh and a night's incremental build are compared row for row)."""
    if isinstance(customers, pd.DataFrame):
        return customers.sort_values("customer_id", kind="stable")
    if is_in_customer_order(customers):  # the dbt models let DuckDB sort (in parallel): a check instead of a sort
        return customers
    return customers.take(pc.sort_indices(customers, sort_keys=[("customer_id", "ascending")]))


def is_in_customer_order(customers: pa.Table) -> bool:
    """True when the rows are already sorted by customer_id (strictly ascending, no nulls): sorting them again
    would give the same table, so in_customer_order returns it as it is."""
    ids = customers.column("customer_id")
    if len(ids) < 2:
        return True
    if ids.null_count:
        return False
    ascending = pc.less(ids.slice(0, len(ids) - 1), ids.slice(1))
    return bool(pc.all(ascending).as_py())


def histories_query(relation, extra: tuple[str, ...] = ()):
    """The input columns (and ``extra`` ones) of a customer-history relation, as a dbt Python model's ref gives it
    (DuckDB), sorted by customer_id in DuckDB: the dbt models read only what the models use, already in the order
    in_customer_order needs (issue 14)."""
    return relation.project(", ".join((*INPUT_COLUMNS, *extra))).order("customer_id")


def read_histories(customers: pd.DataFrame | pa.Table) -> tuple[Histories, list[str]]:
    """Arrays from the input table, and a warning for rows that cannot be a customer history (missing or
    negative values, a fractional frequency, recency after tenure, a recency without repeat purchases)."""
    names = customers.column_names if isinstance(customers, pa.Table) else list(customers.columns)
    missing = [c for c in INPUT_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"customer histories lack column(s) {', '.join(missing)} (need {', '.join(INPUT_COLUMNS)})")
    x = _float_column(customers, "frequency")
    t_x = _float_column(customers, "recency")
    T = _float_column(customers, "tenure")
    m = _float_column(customers, "mean_repeat_value")
    with np.errstate(invalid="ignore"):
        valid = (
            np.isfinite(x)
            & np.isfinite(t_x)
            & np.isfinite(T)
            & (x >= 0)
            & (x == np.floor(x))
            & (t_x >= 0)
            & (t_x <= T)
            & ((x > 0) | (t_x == 0))
        )
    warnings = []
    invalid = int((~valid).sum())
    if invalid:
        warnings.append(
            f"{invalid} customer(s) with an impossible history (missing or negative values, fractional frequency,"
            " recency after tenure, or recency without a repeat purchase) left out; their predictions are null"
        )
    ids = pc.cast(_arrow_column(customers, "customer_id"), pa.string())
    return Histories(
        ids, np.where(valid, x, 0.0), np.where(valid, t_x, 0.0), np.where(valid, T, 0.0), m, valid
    ), warnings


def fit_models(histories: Histories) -> tuple[FitResult, FitResult]:
    """BG/NBD on every valid history; Gamma-Gamma on the valid repeat customers' mean values."""
    v = histories.valid
    bg = bgnbd.fit(histories.x[v], histories.t_x[v], histories.T[v])
    gg = gamma_gamma.fit(histories.x[v], histories.m[v])
    return bg, gg


def fit_warnings(*fits: FitResult) -> list[str]:
    """One line per model that did not converge (with its reason) and per note of a converged model."""
    warnings = []
    for fit in fits:
        if fit.status != CONVERGED:
            state = "not fitted" if fit.status == NOT_FITTED else "did not converge"
            warnings.append(f"{fit.model} {state}: {fit.message}; its predictions are null")
        warnings += [f"{fit.model}: {note}" for note in fit.notes]
    return warnings


def parameters_table(fits: list[FitResult], settings: ClvSettings) -> pa.Table:
    """One row per model parameter: the value (null unless converged), status, message and fit statistics."""
    rows: dict[str, list] = {name: [] for name in PARAMETERS_SCHEMA.names}
    for fit in fits:
        message = "; ".join(filter(None, [fit.message, *fit.notes])) or None
        for name in fit.parameter_names:
            rows["model"].append(fit.model)
            rows["parameter"].append(name)
            rows["value"].append(fit.parameters[name] if fit.parameters else None)
            rows["standard_error"].append(fit.standard_errors[name] if fit.standard_errors else None)
            rows["status"].append(fit.status)
            rows["converged"].append(fit.converged)
            rows["message"].append(message)
            rows["log_likelihood"].append(fit.log_likelihood)
            rows["customers"].append(fit.customers)
            rows["iterations"].append(fit.iterations)
            rows["fit_seconds"].append(fit.seconds)
            rows["time_unit"].append(settings.time_unit)
            rows["as_of_date"].append(settings.as_of_date)
    return pa.table(rows, schema=PARAMETERS_SCHEMA)


def read_parameters(
    parameters: pd.DataFrame | pa.Table,
) -> tuple[bgnbd.BgNbdParameters | None, gamma_gamma.GammaGammaParameters | None]:
    """The converged models' parameters from a parameters table (None for a model that did not converge)."""
    frame = parameters.to_pandas() if isinstance(parameters, pa.Table) else parameters
    fitted: dict[str, dict[str, float]] = {}
    for row in frame.itertuples(index=False):
        if bool(row.converged) and row.value is not None and math.isfinite(row.value):
            fitted.setdefault(row.model, {})[row.parameter] = float(row.value)
    bg = fitted.get(bgnbd.MODEL)
    gg = fitted.get(gamma_gamma.MODEL)
    return (
        bgnbd.BgNbdParameters.from_dict(bg) if bg and set(bg) == set(bgnbd.NAMES) else None,
        gamma_gamma.GammaGammaParameters.from_dict(gg) if gg and set(gg) == set(gamma_gamma.NAMES) else None,
    )


def _pair_codes(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (x, T) pairs: (pair per customer, x per pair, T per pair)."""
    (x_code, x_values), (T_code, T_values) = value_codes(x), value_codes(T)
    group, first = row_groups([(x_code, len(x_values)), (T_code, len(T_values))])
    return group, x[first], T[first]


def customer_scores(
    bg: bgnbd.BgNbdParameters | None,
    gg: gamma_gamma.GammaGammaParameters | None,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    m: np.ndarray,
    settings: ClvSettings,
) -> dict[str, np.ndarray]:
    """probability_alive, expected_transactions (over the horizon), expected_mean_transaction_value and
    predicted_clv per customer; NaN where a needed model is missing."""
    n = len(x)
    nan = np.full(n, np.nan)
    value = gamma_gamma.expected_mean_value(gg, x, m) if gg is not None else nan
    if bg is None or n == 0:
        return {
            "probability_alive": nan,
            "expected_transactions": nan,
            "expected_mean_transaction_value": value,
            "predicted_clv": nan,
        }
    alive = bgnbd.probability_alive(bg, x, t_x, T)
    code, pair_x, pair_T = _pair_codes(x, T)
    previous = np.zeros(len(pair_x))
    discounted = np.zeros(len(pair_x))
    for month, factor in enumerate(settings.discount_factors(), start=1):  # cumulative at each month's end
        cumulative = bgnbd.alive_expected_transactions(bg, month * settings.month_length, pair_x, pair_T)
        discounted += (cumulative - previous) * factor
        previous = cumulative
    return {
        "probability_alive": alive,
        "expected_transactions": alive * previous[code],
        "expected_mean_transaction_value": value,
        "predicted_clv": value * alive * discounted[code],
    }


def predictions_table(
    histories: Histories,
    bg: bgnbd.BgNbdParameters | None,
    gg: gamma_gamma.GammaGammaParameters | None,
    settings: ClvSettings,
) -> pa.Table:
    """One row per input customer; scores are null for invalid histories and where a model is missing."""
    v = histories.valid
    scores = customer_scores(bg, gg, histories.x[v], histories.t_x[v], histories.T[v], histories.m[v], settings)
    n = len(histories)

    def full(values: np.ndarray) -> pa.Array:
        out = np.full(n, np.nan)
        out[v] = values
        return pa.array(out, pa.float64(), from_pandas=True)  # NaN -> null

    columns = {
        "customer_id": histories.customer_id,
        "frequency": pa.array(np.where(v, histories.x, 0).astype(np.int64), pa.int64(), mask=~v),
        "recency": pa.array(histories.t_x, pa.float64(), mask=~v),
        "tenure": pa.array(histories.T, pa.float64(), mask=~v),
        **{name: full(values) for name, values in scores.items()},
        "horizon_months": pa.array(np.full(n, int(settings.horizon_months), dtype=np.int64)),
        "horizon_length": pa.array(np.full(n, settings.horizon_length)),
        "annual_discount_rate": pa.array(np.full(n, float(settings.annual_discount_rate))),
        "time_unit": pa.array([settings.time_unit] * n, pa.string()),
        "as_of_date": pa.array([settings.as_of_date] * n, pa.date32()),
    }
    return pa.table(columns, schema=PREDICTIONS_SCHEMA)


@dataclass(frozen=True)
class ClvResult:
    """Everything one run produces: the parameters table, the per-customer predictions and the warnings."""

    parameters: pa.Table
    predictions: pa.Table
    warnings: list[str]
    fits: tuple[FitResult, FitResult]


def fit_parameters(customers: pd.DataFrame | pa.Table, settings: ClvSettings) -> tuple[pa.Table, list[str]]:
    """The parameters table and warnings (the dbt model ``clv_model_parameters``)."""
    customers = in_customer_order(customers)
    histories, warnings = read_histories(customers)
    fits = fit_models(histories)
    return parameters_table(list(fits), settings), warnings + fit_warnings(*fits)


def score(customers: pd.DataFrame | pa.Table, parameters: pd.DataFrame | pa.Table, settings: ClvSettings) -> pa.Table:
    """Per-customer predictions from an already fitted parameters table (the dbt model
    ``clv_customer_predictions``)."""
    customers = in_customer_order(customers)
    histories, _ = read_histories(customers)
    bg, gg = read_parameters(parameters)
    return predictions_table(histories, bg, gg, settings)


def predict(customers: pd.DataFrame | pa.Table, settings: ClvSettings = ClvSettings()) -> ClvResult:
    """Fit both models and score every customer in one call; never raises on degenerate data."""
    customers = in_customer_order(customers)
    histories, warnings = read_histories(customers)
    fits = fit_models(histories)
    bg = bgnbd.BgNbdParameters.from_dict(fits[0].parameters) if fits[0].converged else None
    gg = gamma_gamma.GammaGammaParameters.from_dict(fits[1].parameters) if fits[1].converged else None
    return ClvResult(
        parameters_table(list(fits), settings),
        predictions_table(histories, bg, gg, settings),
        warnings + fit_warnings(*fits),
        fits,
    )


# ------------------------------------------------------------------------------------------------ holdout


def _correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def evaluation_table(
    customers: pd.DataFrame | pa.Table, parameters: pd.DataFrame | pa.Table, settings: ClvSettings
) -> pa.Table:
    """Predicted vs actual repeat transactions over the holdout period, overall and by calibration frequency.

    ``customers`` has the input columns plus ``holdout_transactions`` (repeat transaction-days after the as-of
    date), ``holdout_start_date``, ``holdout_end_date`` and ``holdout_length`` (time unit, the same on every row),
    one row per calibration customer, and no rows when there is no holdout (no completed orders after the as-of
    date): the result is then empty. Predictions are null when BG/NBD did not converge; customers with an
    impossible history are left out.
    """
    if len(customers) == 0:
        return EVALUATION_SCHEMA.empty_table()
    customers = in_customer_order(customers)
    histories, _ = read_histories(customers)
    v = histories.valid
    x, t_x, T = histories.x[v], histories.t_x[v], histories.T[v]
    actual = _float_column(customers, "holdout_transactions")[v]
    length = float(_first_value(customers, "holdout_length"))
    start, end = (_first_value(customers, c) for c in ("holdout_start_date", "holdout_end_date"))
    bg, _ = read_parameters(parameters)
    predicted = bgnbd.expected_transactions(bg, length, x, t_x, T) if bg is not None else np.full(len(x), np.nan)
    buckets = [("overall", "all", 0, np.ones(len(x), dtype=bool))]
    buckets += [("calibration_frequency", str(k), k + 1, x == k) for k in range(FREQUENCY_BUCKETS)]
    buckets.append(("calibration_frequency", f"{FREQUENCY_BUCKETS}+", FREQUENCY_BUCKETS + 1, x >= FREQUENCY_BUCKETS))
    rows: dict[str, list] = {name: [] for name in EVALUATION_SCHEMA.names}
    for breakdown, label, order, mask in buckets:
        count = int(mask.sum())
        a, p = actual[mask], predicted[mask]
        scored = bg is not None and count > 0
        rows["breakdown"].append(breakdown)
        rows["frequency_bucket"].append(label)
        rows["bucket_order"].append(order)
        rows["customers"].append(count)
        rows["actual_transactions"].append(float(a.sum()))
        rows["predicted_transactions"].append(float(p.sum()) if bg is not None else None)
        rows["mean_actual_transactions"].append(float(a.mean()) if count else None)
        rows["mean_predicted_transactions"].append(float(p.mean()) if scored else None)
        rows["mean_absolute_error"].append(float(np.abs(p - a).mean()) if scored else None)
        rows["correlation"].append(_correlation(a, p) if bg is not None else None)
        rows["holdout_start_date"].append(start)
        rows["holdout_end_date"].append(end)
        rows["holdout_length"].append(length)
        rows["time_unit"].append(settings.time_unit)
        rows["as_of_date"].append(settings.as_of_date)
    return pa.table(rows, schema=EVALUATION_SCHEMA)

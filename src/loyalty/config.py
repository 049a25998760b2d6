"""Run configuration: LOYALTY_* environment variables, each overridable by a CLI flag.

Relative paths resolve against the caller's working directory, so the project works from anywhere.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty import email_hashing
from loyalty.errors import LoyaltyError

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_RAW_DIR = PROJECT_DIR / "data" / "default"
DEFAULT_WAREHOUSE = PROJECT_DIR / "warehouse" / "loyalty.duckdb"
EXCHANGE_RATES_SEED = PROJECT_DIR / "seeds" / "exchange_rates.csv"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Thresholds:
    """Limits of the validation gate (``loyalty.validation``): a night beyond any of them is not published.

    The names are the suite parameters the expectation suites in ``gx/suites`` refer to (``$PARAMETER``), except
    ``max_row_drop``, which the gate applies to every mart itself.
    """

    max_quarantine_rate: float = 0.01  # quarantined / raw rows, per raw entity
    freshness_days: int = 2  # the latest order is at most this many days before the as-of date
    min_night_volume: float = 0.5  # orders on the as-of date / trailing 28-day daily mean, at least
    max_row_drop: float = 0.05  # a mart may have at most this fraction fewer rows than the published one

    def suite_parameters(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class Settings:
    raw_dir: Path
    warehouse: Path
    as_of: date
    as_of_source: str  # where the as-of date came from, for the run summary
    timezone: str
    currency: str
    threads: int
    memory_limit: str
    thresholds: Thresholds = field(default_factory=Thresholds)
    # more dbt vars (LOYALTY_DBT_VARS, a JSON object), e.g. the predictive models' {"clv_time_unit": "week"}
    extra_dbt_vars: dict[str, object] = field(default_factory=dict)
    # the public id of the email hash key (loyalty.email_hashing): a new key means new hashes, so a full rebuild
    email_key_id: str = ""

    def dbt_vars(self) -> dict[str, object]:
        return {
            **self.extra_dbt_vars,
            "as_of_date": self.as_of.isoformat(),
            "reporting_timezone": self.timezone,
            "reporting_currency": self.currency,
        }


def _pick(flag: str | None, env_name: str) -> str | None:
    if flag not in (None, ""):
        return flag
    value = os.environ.get(env_name, "").strip()
    return value or None


def _data_end_date(raw_dir: Path) -> date | None:
    """The last day of generated data, from the generator's manifest next to the files (if any)."""
    manifest = raw_dir / MANIFEST_NAME
    if not manifest.is_file():
        return None
    try:
        return date.fromisoformat(json.loads(manifest.read_text())["data_end_date"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LoyaltyError(f"{manifest}: cannot read data_end_date ({exc})") from None


DEFAULT_MEMORY_CAP_GIB = 4


def _default_memory_limit() -> str:
    """DuckDB's memory_limit: three quarters of the machine's memory, at most 4 GiB. DuckDB spills to disk beyond it,
    and the night's Python (dbt, the predictive fit, GX) needs room on top: with 4 GiB the whole nightly flow at
    1,000,000 customers peaks under 6 GiB and leaves the rest of a shared machine to the BI tools."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return f"{DEFAULT_MEMORY_CAP_GIB}GiB"
    return f"{max(1, min(DEFAULT_MEMORY_CAP_GIB, int(total * 0.75 / 2**30)))}GiB"


def _fraction(text: str | None, env_name: str, default: float) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise LoyaltyError(f"{env_name}: {text!r} is not a fraction from 0 to 1 (e.g. 0.05 for 5 %)")
    return value


def resolve_thresholds(
    max_quarantine_rate: str | None = None,
    freshness_days: str | None = None,
    min_night_volume: str | None = None,
    max_row_drop: str | None = None,
) -> Thresholds:
    """Validation thresholds from flags, then LOYALTY_* variables, then the defaults of ``Thresholds``."""
    defaults = Thresholds()
    days_text = _pick(freshness_days, "LOYALTY_FRESHNESS_DAYS")
    if days_text is not None and not days_text.isdigit():
        raise LoyaltyError(f"LOYALTY_FRESHNESS_DAYS: {days_text!r} is not a whole number of days (0 or more)")
    return Thresholds(
        max_quarantine_rate=_fraction(
            _pick(max_quarantine_rate, "LOYALTY_MAX_QUARANTINE_RATE"),
            "LOYALTY_MAX_QUARANTINE_RATE",
            defaults.max_quarantine_rate,
        ),
        freshness_days=int(days_text) if days_text is not None else defaults.freshness_days,
        min_night_volume=_fraction(
            _pick(min_night_volume, "LOYALTY_MIN_NIGHT_VOLUME"), "LOYALTY_MIN_NIGHT_VOLUME", defaults.min_night_volume
        ),
        max_row_drop=_fraction(
            _pick(max_row_drop, "LOYALTY_MAX_ROW_DROP"), "LOYALTY_MAX_ROW_DROP", defaults.max_row_drop
        ),
    )


def _extra_dbt_vars() -> dict[str, object]:
    text = os.environ.get("LOYALTY_DBT_VARS", "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise LoyaltyError(f"LOYALTY_DBT_VARS: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise LoyaltyError('LOYALTY_DBT_VARS: must be a JSON object, e.g. {"clv_time_unit": "week"}')
    reserved = {"as_of_date", "reporting_timezone", "reporting_currency", "raw_sources"} & set(value)
    if reserved:
        raise LoyaltyError(f"LOYALTY_DBT_VARS: {sorted(reserved)[0]} is set by its own LOYALTY_* setting")
    return value


def known_currencies() -> set[str]:
    with EXCHANGE_RATES_SEED.open(newline="") as handle:
        return {row["currency_code"].strip().upper() for row in csv.DictReader(handle)}


def resolve(
    raw_dir: str | None = None,
    warehouse: str | None = None,
    as_of: str | None = None,
    timezone: str | None = None,
    currency: str | None = None,
    threads: str | None = None,
    memory_limit: str | None = None,
    thresholds: Thresholds | None = None,
) -> Settings:
    """Settings from flags, then LOYALTY_* variables, then defaults; every value is checked here.

    ``thresholds`` (from ``resolve_thresholds``) default to the LOYALTY_* threshold variables or their defaults.
    """
    raw = Path(_pick(raw_dir, "LOYALTY_RAW_DIR") or DEFAULT_RAW_DIR).expanduser().resolve()
    wh = Path(_pick(warehouse, "LOYALTY_WAREHOUSE") or DEFAULT_WAREHOUSE).expanduser().resolve()

    tz = _pick(timezone, "LOYALTY_TIMEZONE") or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise LoyaltyError(
            f"LOYALTY_TIMEZONE: unknown timezone {tz!r} (use an IANA name such as Europe/Berlin)"
        ) from None

    cur = (_pick(currency, "LOYALTY_CURRENCY") or "USD").upper()
    if cur not in known_currencies():
        raise LoyaltyError(
            f"LOYALTY_CURRENCY: {cur!r} has no rate in {EXCHANGE_RATES_SEED.relative_to(PROJECT_DIR)}"
            f" (known: {', '.join(sorted(known_currencies()))})"
        )

    as_of_text = _pick(as_of, "LOYALTY_AS_OF")
    if as_of_text:
        try:
            as_of_date = date.fromisoformat(as_of_text)
        except ValueError:
            raise LoyaltyError(f"LOYALTY_AS_OF: {as_of_text!r} is not a date in YYYY-MM-DD form") from None
        source = "LOYALTY_AS_OF"
    elif (end := _data_end_date(raw)) is not None:
        as_of_date, source = end, f"last day of the data ({MANIFEST_NAME})"
    else:
        as_of_date, source = datetime.now(ZoneInfo(tz)).date(), f"today in {tz}"

    threads_text = _pick(threads, "LOYALTY_THREADS") or str(os.cpu_count() or 1)
    if not threads_text.isdigit() or int(threads_text) < 1:
        raise LoyaltyError(f"LOYALTY_THREADS: {threads_text!r} is not a positive whole number")

    return Settings(
        raw_dir=raw,
        warehouse=wh,
        as_of=as_of_date,
        as_of_source=source,
        timezone=tz,
        currency=cur,
        threads=int(threads_text),
        memory_limit=_pick(memory_limit, "LOYALTY_MEMORY_LIMIT") or _default_memory_limit(),
        thresholds=thresholds if thresholds is not None else resolve_thresholds(),
        extra_dbt_vars=_extra_dbt_vars(),
        email_key_id=email_hashing.key_id(email_hashing.load_key()),
    )

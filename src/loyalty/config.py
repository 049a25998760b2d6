"""Run configuration: LOYALTY_* environment variables, each overridable by a CLI flag.

Relative paths resolve against the caller's working directory, so the project works from anywhere.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty.errors import LoyaltyError

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_RAW_DIR = PROJECT_DIR / "data" / "default"
DEFAULT_WAREHOUSE = PROJECT_DIR / "warehouse" / "loyalty.duckdb"
EXCHANGE_RATES_SEED = PROJECT_DIR / "seeds" / "exchange_rates.csv"
MANIFEST_NAME = "manifest.json"


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

    def dbt_vars(self) -> dict[str, object]:
        return {
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


def _default_memory_limit() -> str:
    """Three quarters of the machine's memory, as DuckDB's memory_limit setting."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return "4GB"
    return f"{max(1, int(total * 0.75 / 2**30))}GB"


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
) -> Settings:
    """Settings from flags, then LOYALTY_* variables, then defaults; every value is checked here."""
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
    )

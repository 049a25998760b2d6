"""Run configuration: LOYALTY_* environment variables, each overridable by a CLI flag.

Relative paths resolve against the caller's working directory, so the project works from anywhere.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loyalty import email_hashing
from loyalty.errors import LoyaltyError

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_RAW_DIR = PROJECT_DIR / "data" / "default"
DEFAULT_WAREHOUSE = PROJECT_DIR / "warehouse" / "loyalty.duckdb"
EXCHANGE_RATES_SEED = PROJECT_DIR / "seeds" / "exchange_rates.csv"
MANIFEST_NAME = "manifest.json"
# The oldest DuckDB release that must read the published file: DuckDB 2.0's own format (storage version 69) is
# refused by every DuckDB 1.x, and BI drivers bundle 1.x releases, some as old as 1.0. v1.0.0 (storage version 64,
# the oldest DuckDB 2.0 writes) holds everything the warehouse stores, DuckDB 1.0 to 1.5 read every table and view
# of it as 2.0 does (tests/python/test_duckdb1_clients.py), and it costs nothing measurable.
DEFAULT_STORAGE_COMPATIBILITY_VERSION = "v1.0.0"
ENGINES = ("duckdb", "spark")


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
    # the DuckDB storage format the warehouse file is written in (LOYALTY_STORAGE_COMPATIBILITY_VERSION)
    storage_compatibility_version: str = DEFAULT_STORAGE_COMPATIBILITY_VERSION
    # the engine dbt builds on (ENGINES, LOYALTY_ENGINE): DuckDB, or a local Spark session (loyalty.spark_engine)
    # whose published tables are under spark_warehouse (LOYALTY_SPARK_WAREHOUSE; None: <warehouse folder>/
    # spark-warehouse)
    engine: str = "duckdb"
    spark_warehouse: Path | None = None

    @property
    def spark_warehouse_dir(self) -> Path:
        return self.spark_warehouse or self.warehouse.parent / "spark-warehouse"

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


DEFAULT_MEMORY_CAP_GIB = 3


def _default_memory_limit() -> str:
    """DuckDB's memory_limit: three quarters of the machine's memory, at most 3 GiB. DuckDB spills to disk beyond it,
    and the night's Python (dbt, the predictive fit, GX, Prefect's server) needs room on top: with 3 GiB the whole
    nightly flow at 1,000,000 customers peaks under 4 GiB (4.7 GiB with 4) and leaves the rest of a shared machine to
    the BI tools (DECISIONS.md, "What is left of a 1M build")."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return f"{DEFAULT_MEMORY_CAP_GIB}GiB"
    return f"{max(1, min(DEFAULT_MEMORY_CAP_GIB, int(total * 0.75 / 2**30)))}GiB"


# DuckDB's memory_limit below this cannot build even a 300-customer shop (measured: 8 MiB fails, 32 MiB builds it)
MIN_MEMORY_LIMIT = "64MiB"
MIN_MEMORY_LIMIT_BYTES = 64 * 2**20
MEMORY_LIMIT_ACCEPTED = (
    "a size DuckDB accepts, e.g. 4GB, 512MiB, 1.5GiB, or a share of the machine's memory such as 80%;"
    f" at least {MIN_MEMORY_LIMIT}"
)
# DuckDB shows its memory_limit as e.g. "3.7 GiB" or "512 bytes"
_SHOWN_SIZE = re.compile(r"^([0-9.]+) (bytes?|KiB|MiB|GiB|TiB|PiB|EiB)$")
_SHOWN_UNITS = {
    "byte": 1,
    "bytes": 1,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
    "PiB": 2**50,
    "EiB": 2**60,
}
MAX_THREADS = 256  # dbt and DuckDB start this many threads each: more is a typo, not a machine


def _memory_limit(text: str) -> str:
    """``text`` if DuckDB takes it as its memory_limit (the syntax of DuckDB itself: the value goes to dbt-duckdb's
    ``SET memory_limit`` and to the checkpoint's connection) and it is at least MIN_MEMORY_LIMIT."""
    import duckdb

    value = text.strip()
    bad = f"LOYALTY_MEMORY_LIMIT: {text!r} is not a memory limit (use {MEMORY_LIMIT_ACCEPTED})"
    # DuckDB's SET reads none and negative sizes as "no limit", its connection config as "the default": neither is
    # what the user meant, and the two would differ between dbt and the checkpoint
    if not value or value.startswith(("-", "+")) or value.lower() == "none":
        raise LoyaltyError(bad)
    try:
        with duckdb.connect() as con:
            con.execute("set memory_limit = '{}'".format(value.replace("'", "''")))
            shown = con.execute("select current_setting('memory_limit')").fetchone()[0]
    except duckdb.OutOfMemoryException:  # too small for DuckDB to run even that query
        shown = "0 bytes"
    except duckdb.Error:
        raise LoyaltyError(bad) from None
    match = _SHOWN_SIZE.match(shown)
    if match is None:  # not a size DuckDB shows: refuse rather than guess
        raise LoyaltyError(bad)
    if float(match.group(1)) * _SHOWN_UNITS[match.group(2)] < MIN_MEMORY_LIMIT_BYTES:
        raise LoyaltyError(
            f"LOYALTY_MEMORY_LIMIT: {text!r} is {shown}, too little for DuckDB to build the warehouse"
            f" (use {MEMORY_LIMIT_ACCEPTED})"
        )
    return value


def _whole_number(text: str, env_name: str, what: str, low: int, high: int | None = None) -> int:
    """``text`` as a whole number from ``low`` to ``high`` (ASCII digits only: ``str.isdigit`` also takes ``²``)."""
    if re.fullmatch(r"[0-9]+", text.strip()) is None:
        raise LoyaltyError(f"{env_name}: {text!r} is not {what}")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise LoyaltyError(f"{env_name}: {text!r} is not {what}")
    return value


def _real_number(
    text: str | None, env_name: str, default: float, accepted: Callable[[float], bool], what: str
) -> float:
    """``text`` as a number ``accepted`` takes (``default`` when unset); else one line saying ``what`` it must be."""
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not accepted(value):
        raise LoyaltyError(f"{env_name}: {text!r} is not {what}")
    return value


def _seconds(text: str | None, env_name: str, default: float) -> float:
    accepted = lambda v: math.isfinite(v) and v >= 0  # noqa: E731
    return _real_number(text, env_name, default, accepted, "a number of seconds (0 or more, e.g. 30 or 2.5)")


def _storage_compatibility_version(text: str | None) -> str:
    """``text`` if DuckDB takes it as its ``storage_compatibility_version`` and it is v1.0.0 or later (DuckDB writes
    no older format: an older release would still give a file that only DuckDB 1.0 and later read)."""
    import duckdb

    if text is None:
        return DEFAULT_STORAGE_COMPATIBILITY_VERSION
    bad = (
        f"LOYALTY_STORAGE_COMPATIBILITY_VERSION: {text!r} is not a DuckDB storage version (use a DuckDB release"
        f" from v1.0.0 to v{duckdb.__version__}, e.g. v1.0.0 (read by DuckDB 1.0 and later), v1.4.0 (1.4 and later)"
        " or latest)"
    )
    if text != "latest" and re.fullmatch(r"v[1-9][0-9]*\.[0-9]+\.[0-9]+", text) is None:
        raise LoyaltyError(bad)
    try:
        with duckdb.connect(config={"storage_compatibility_version": text}):
            pass
    except duckdb.Error:  # a release this DuckDB does not know (a typo, or newer than itself)
        raise LoyaltyError(bad) from None
    return text


@cache
def duckdb_timezones() -> frozenset[str]:
    """The time zones DuckDB knows (its ICU list): the models convert with DuckDB, "today" uses Python's zoneinfo,
    so a reporting timezone must be known to both (``localtime`` and ``posixrules`` are known only to Python)."""
    import duckdb

    with duckdb.connect() as con:
        return frozenset(name for (name,) in con.execute("select name from pg_timezone_names()").fetchall())


def _fraction(text: str | None, env_name: str, default: float) -> float:
    return _real_number(text, env_name, default, lambda v: 0 <= v <= 1, "a fraction from 0 to 1 (e.g. 0.05 for 5 %)")


def resolve_thresholds(
    max_quarantine_rate: str | None = None,
    freshness_days: str | None = None,
    min_night_volume: str | None = None,
    max_row_drop: str | None = None,
) -> Thresholds:
    """Validation thresholds from flags, then LOYALTY_* variables, then the defaults of ``Thresholds``."""
    defaults = Thresholds()
    days_text = _pick(freshness_days, "LOYALTY_FRESHNESS_DAYS")
    if days_text is not None:
        _whole_number(days_text, "LOYALTY_FRESHNESS_DAYS", "a whole number of days (0 or more)", 0)
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


# dbt vars with a LOYALTY_* setting of their own, and those the night sets itself
VARS_OF_SETTINGS = ("as_of_date", "reporting_timezone", "reporting_currency", "raw_sources")
VARS_OF_THE_NIGHT = ("build_mode", "build_fingerprint", "previous_as_of")
_VAR_CALL = re.compile(r"""\bvar\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")


def project_dbt_vars() -> set[str]:
    """The dbt vars the project reads (``var('...')`` in models, macros and dbt tests), found in the files, so a var
    added to a model is accepted without a list to keep up to date here."""
    names: set[str] = set()
    for folder in ("models", "macros", "tests"):
        for path in (PROJECT_DIR / folder).rglob("*"):
            if path.suffix in (".sql", ".yml", ".yaml") and "python" not in path.relative_to(PROJECT_DIR).parts:
                names.update(_VAR_CALL.findall(path.read_text(errors="replace")))
    return names


def _extra_dbt_vars() -> dict[str, object]:
    text = os.environ.get("LOYALTY_DBT_VARS", "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise LoyaltyError(f"LOYALTY_DBT_VARS: {text!r} is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise LoyaltyError(f'LOYALTY_DBT_VARS: {text!r} is not a JSON object such as {{"clv_time_unit": "week"}}')
    for name in sorted(value):
        if name in VARS_OF_SETTINGS:
            raise LoyaltyError(f"LOYALTY_DBT_VARS: {name} is set by its own LOYALTY_* setting")
        if name in VARS_OF_THE_NIGHT:
            raise LoyaltyError(f"LOYALTY_DBT_VARS: {name} is set by the night itself")
    settable = sorted(project_dbt_vars() - set(VARS_OF_SETTINGS) - set(VARS_OF_THE_NIGHT))
    for name in sorted(value):
        if name not in settable:
            raise LoyaltyError(
                f"LOYALTY_DBT_VARS: {name!r} is not a var of the project (it has: {', '.join(settable)})"
            )
    return value


@dataclass(frozen=True)
class FlowSettings:
    """The Prefect flow's own settings (``flows/loyalty_nightly.py`` reads them when a night starts)."""

    retries: int = 3  # retries of the landing check and of the build lock
    retry_delay_seconds: float = 30.0  # the first retry's delay, doubling each time
    landing_settle_seconds: float = 10.0  # a raw file modified more recently is taken as still being written


def resolve_flow_settings() -> FlowSettings:
    """LOYALTY_RETRIES, LOYALTY_RETRY_DELAY_SECONDS and LOYALTY_LANDING_SETTLE_SECONDS, checked like every setting."""
    defaults = FlowSettings()
    retries = _pick(None, "LOYALTY_RETRIES")
    return FlowSettings(
        retries=defaults.retries
        if retries is None
        else _whole_number(retries, "LOYALTY_RETRIES", "a whole number of retries (0 or more)", 0),
        retry_delay_seconds=_seconds(
            _pick(None, "LOYALTY_RETRY_DELAY_SECONDS"), "LOYALTY_RETRY_DELAY_SECONDS", defaults.retry_delay_seconds
        ),
        landing_settle_seconds=_seconds(
            _pick(None, "LOYALTY_LANDING_SETTLE_SECONDS"),
            "LOYALTY_LANDING_SETTLE_SECONDS",
            defaults.landing_settle_seconds,
        ),
    )


# every LOYALTY_* variable the project reads; the last two are the dbt profile's, which the CLI sets for dbt
SETTING_VARIABLES = (
    "LOYALTY_RAW_DIR",
    "LOYALTY_WAREHOUSE",
    "LOYALTY_AS_OF",
    "LOYALTY_TIMEZONE",
    "LOYALTY_CURRENCY",
    "LOYALTY_THREADS",
    "LOYALTY_MEMORY_LIMIT",
    "LOYALTY_DBT_VARS",
    "LOYALTY_MAX_QUARANTINE_RATE",
    "LOYALTY_FRESHNESS_DAYS",
    "LOYALTY_MIN_NIGHT_VOLUME",
    "LOYALTY_MAX_ROW_DROP",
    "LOYALTY_RETRIES",
    "LOYALTY_RETRY_DELAY_SECONDS",
    "LOYALTY_LANDING_SETTLE_SECONDS",
    "LOYALTY_STORAGE_COMPATIBILITY_VERSION",
    "LOYALTY_ENGINE",
    "LOYALTY_SPARK_WAREHOUSE",
    email_hashing.KEY_ENV,
    email_hashing.KEY_FILE_ENV,
)
DBT_PROFILE_VARIABLES = ("LOYALTY_DBT_DATABASE", "LOYALTY_DBT_TARGET")
# what the CLI passes to dbt for one night (dbt_runner.dbt_command, macros/night.sql): no settings, set by the CLI
DBT_NIGHT_VARIABLES = ("LOYALTY_NIGHT", "LOYALTY_RAW_SOURCES")
# what the CLI passes to the Spark engine's dbt process besides those (loyalty.spark_engine): tonight's raw reading
# plan and the folder of tonight's Spark tables; no settings, set by the CLI
DBT_SPARK_VARIABLES = ("LOYALTY_SPARK_RAW", "LOYALTY_SPARK_TABLES")


def unknown_variables() -> list[str]:
    """A warning for each LOYALTY_* variable in the environment that is no setting (a typo is otherwise ignored)."""
    warnings = []
    for name in sorted(os.environ):
        if name.startswith("LOYALTY_") and name not in (
            SETTING_VARIABLES + DBT_PROFILE_VARIABLES + DBT_NIGHT_VARIABLES + DBT_SPARK_VARIABLES
        ):
            close = difflib.get_close_matches(name, SETTING_VARIABLES, n=1)
            hint = f"did you mean {close[0]}?" if close else "see README, Configuration"
            warnings.append(f"{name} is not a setting of this project and is ignored ({hint})")
    return warnings


def _warehouse(path: Path, *, writing: bool) -> Path:
    """The published file's path: not a folder, under folders (existing or to be created), and for a command that
    builds, in a place it can write."""
    if path.is_dir():
        raise LoyaltyError(
            f"LOYALTY_WAREHOUSE: {str(path)!r} is a folder, not a DuckDB file (e.g. {path / 'loyalty.duckdb'})"
        )
    if path.exists() and not path.is_file():
        raise LoyaltyError(f"LOYALTY_WAREHOUSE: {str(path)!r} is not a regular file")
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise LoyaltyError(f"LOYALTY_WAREHOUSE: {str(path)!r} cannot be created: {existing} is a file, not a folder")
    if writing and not os.access(existing, os.W_OK | os.X_OK):
        raise LoyaltyError(f"LOYALTY_WAREHOUSE: {str(path)!r} cannot be written: no write permission in {existing}")
    return path


def check_spark_warehouse(path: Path) -> Path:
    """LOYALTY_SPARK_WAREHOUSE (or its default): the published Spark warehouse, a link the Spark engine's night
    points at its own folder of tables (loyalty.spark_engine.publish_tables); a real folder or file there is not
    the project's."""
    if (path.exists() or path.is_symlink()) and not path.is_symlink():
        raise LoyaltyError(
            f"LOYALTY_SPARK_WAREHOUSE: {str(path)!r} exists and is not a link the Spark engine published"
            " (move it away, or choose a new path)"
        )
    return path


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
    engine: str | None = None,
    *,
    writing: bool = False,
) -> Settings:
    """Settings from flags, then LOYALTY_* variables, then defaults; every value is checked here, each bad one a
    LoyaltyError of one line naming the variable, the value and what is accepted.

    ``thresholds`` (from ``resolve_thresholds``) default to the LOYALTY_* threshold variables or their defaults.
    ``writing``: the command builds the warehouse, so the raw folder must exist and the warehouse's be writable.
    """
    raw = Path(_pick(raw_dir, "LOYALTY_RAW_DIR") or DEFAULT_RAW_DIR).expanduser().resolve()
    if writing and not raw.is_dir():  # (the landing check says the same; a build should not start without it)
        raise LoyaltyError(f"LOYALTY_RAW_DIR: {raw} is not a folder")
    wh = _warehouse(
        Path(_pick(warehouse, "LOYALTY_WAREHOUSE") or DEFAULT_WAREHOUSE).expanduser().resolve(), writing=writing
    )

    tz = _pick(timezone, "LOYALTY_TIMEZONE") or "UTC"
    try:
        ZoneInfo(tz)
        known = tz in duckdb_timezones()
    except (ZoneInfoNotFoundError, ValueError):
        known = False
    if not known:
        raise LoyaltyError(f"LOYALTY_TIMEZONE: unknown timezone {tz!r} (use an IANA name such as Europe/Berlin)")

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

    threads_text = _pick(threads, "LOYALTY_THREADS") or str(min(os.cpu_count() or 1, MAX_THREADS))
    thread_count = _whole_number(
        threads_text, "LOYALTY_THREADS", f"a positive whole number of threads (1 to {MAX_THREADS})", 1, MAX_THREADS
    )
    memory_text = _pick(memory_limit, "LOYALTY_MEMORY_LIMIT")

    engine_name = (_pick(engine, "LOYALTY_ENGINE") or ENGINES[0]).lower()
    if engine_name not in ENGINES:
        raise LoyaltyError(
            f"LOYALTY_ENGINE: {engine_name!r} is not an engine of this project (use {' or '.join(ENGINES)})"
        )
    spark_text = _pick(None, "LOYALTY_SPARK_WAREHOUSE")
    spark_warehouse = check_spark_warehouse(Path(spark_text).expanduser().resolve()) if spark_text else None

    return Settings(
        raw_dir=raw,
        warehouse=wh,
        as_of=as_of_date,
        as_of_source=source,
        timezone=tz,
        currency=cur,
        threads=thread_count,
        memory_limit=_memory_limit(memory_text) if memory_text else _default_memory_limit(),
        thresholds=thresholds if thresholds is not None else resolve_thresholds(),
        extra_dbt_vars=_extra_dbt_vars(),
        email_key_id=email_hashing.key_id(email_hashing.load_key()),
        storage_compatibility_version=_storage_compatibility_version(
            _pick(None, "LOYALTY_STORAGE_COMPATIBILITY_VERSION")
        ),
        engine=engine_name,
        spark_warehouse=spark_warehouse,
    )

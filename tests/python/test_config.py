"""Configuration: flags over LOYALTY_* variables over defaults, each value checked with a clear error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import PROJECT_DIR, run_cli

from loyalty import cli, config
from loyalty.errors import LoyaltyError


@pytest.fixture(autouse=True)
def _no_loyalty_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LOYALTY_"):
            monkeypatch.delenv(name)


def test_defaults_point_at_the_bundled_data_and_project_warehouse() -> None:
    settings = config.resolve()
    assert settings.raw_dir == config.PROJECT_DIR / "data" / "default"
    assert settings.warehouse == config.PROJECT_DIR / "warehouse" / "loyalty.duckdb"
    assert (settings.timezone, settings.currency) == ("UTC", "USD")


def test_bundled_data_defaults_to_its_own_last_day() -> None:
    manifest = json.loads((config.DEFAULT_RAW_DIR / "manifest.json").read_text())
    settings = config.resolve()
    assert settings.as_of == date.fromisoformat(manifest["data_end_date"])
    assert "manifest.json" in settings.as_of_source


def test_without_manifest_the_as_of_date_is_today_in_the_reporting_timezone(tmp_path: Path) -> None:
    settings = config.resolve(raw_dir=str(tmp_path), timezone="Pacific/Kiritimati")
    assert settings.as_of_source == "today in Pacific/Kiritimati"


def test_environment_is_read_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_AS_OF", "2024-05-01")
    monkeypatch.setenv("LOYALTY_CURRENCY", "eur")
    monkeypatch.setenv("LOYALTY_TIMEZONE", "Europe/Berlin")
    settings = config.resolve()
    assert (settings.as_of, settings.currency, settings.timezone) == (
        date(2024, 5, 1),
        "EUR",
        "Europe/Berlin",
    )
    assert config.resolve(as_of="2024-06-30").as_of == date(2024, 6, 30)


def test_relative_paths_resolve_against_the_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = config.resolve(raw_dir="raw", warehouse="out/w.duckdb")
    assert settings.raw_dir == tmp_path / "raw"
    assert settings.warehouse == tmp_path / "out" / "w.duckdb"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"as_of": "31/12/2024"}, "LOYALTY_AS_OF: '31/12/2024' is not a date in YYYY-MM-DD form"),
        ({"timezone": "Mars/Olympus"}, "LOYALTY_TIMEZONE: unknown timezone 'Mars/Olympus'"),
        ({"currency": "XYZ"}, "LOYALTY_CURRENCY: 'XYZ' has no rate in seeds/exchange_rates.csv"),
        ({"threads": "0"}, "LOYALTY_THREADS: '0' is not a positive whole number"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(LoyaltyError) as excinfo:
        config.resolve(**kwargs)
    assert str(excinfo.value).startswith(message)


@pytest.mark.parametrize(
    ("memory_gib", "expected"),
    [(2, "1GiB"), (3, "2GiB"), (4, "3GiB"), (8, "3GiB"), (24, "3GiB"), (256, "3GiB")],
)
def test_the_default_memory_limit_is_three_quarters_of_memory_at_most_3_gib(
    monkeypatch: pytest.MonkeyPatch, memory_gib: int, expected: str
) -> None:
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": memory_gib * 2**30 // 4096}
    monkeypatch.setattr(config.os, "sysconf", lambda name: pages[name])
    assert config.resolve().memory_limit == expected
    assert config.resolve(memory_limit="12GB").memory_limit == "12GB"


# ------------------------------------------------------------------------------------------------ every setting


MEMORY = "use a size DuckDB accepts, e.g. 4GB, 512MiB, 1.5GiB, or a share of the machine's memory such as 80%;"
# one bad value per LOYALTY_* setting (the test below checks that every setting is here) and the one line it gives
BAD_VALUES = {
    "LOYALTY_RAW_DIR": ("/nonexistent/raw", "LOYALTY_RAW_DIR: /nonexistent/raw is not a folder"),
    "LOYALTY_WAREHOUSE": ("/", "LOYALTY_WAREHOUSE: '/' is a folder, not a DuckDB file (e.g. /loyalty.duckdb)"),
    "LOYALTY_AS_OF": ("2024-13-01", "LOYALTY_AS_OF: '2024-13-01' is not a date in YYYY-MM-DD form"),
    "LOYALTY_TIMEZONE": ("localtime", "LOYALTY_TIMEZONE: unknown timezone 'localtime' (use an IANA name such as"),
    "LOYALTY_CURRENCY": ("EURO", "LOYALTY_CURRENCY: 'EURO' has no rate in seeds/exchange_rates.csv (known: "),
    "LOYALTY_THREADS": ("two", "LOYALTY_THREADS: 'two' is not a positive whole number of threads (1 to 256)"),
    "LOYALTY_MEMORY_LIMIT": ("lots", f"LOYALTY_MEMORY_LIMIT: 'lots' is not a memory limit ({MEMORY} at least 64MiB)"),
    "LOYALTY_DBT_VARS": ("clv_time_unit=week", "LOYALTY_DBT_VARS: 'clv_time_unit=week' is not JSON ("),
    "LOYALTY_MAX_QUARANTINE_RATE": ("1%", "LOYALTY_MAX_QUARANTINE_RATE: '1%' is not a fraction from 0 to 1"),
    "LOYALTY_FRESHNESS_DAYS": ("two", "LOYALTY_FRESHNESS_DAYS: 'two' is not a whole number of days (0 or more)"),
    "LOYALTY_MIN_NIGHT_VOLUME": ("-0.5", "LOYALTY_MIN_NIGHT_VOLUME: '-0.5' is not a fraction from 0 to 1"),
    "LOYALTY_MAX_ROW_DROP": ("nan", "LOYALTY_MAX_ROW_DROP: 'nan' is not a fraction from 0 to 1"),
    "LOYALTY_RETRIES": ("3.5", "LOYALTY_RETRIES: '3.5' is not a whole number of retries (0 or more)"),
    "LOYALTY_RETRY_DELAY_SECONDS": ("30s", "LOYALTY_RETRY_DELAY_SECONDS: '30s' is not a number of seconds (0 or"),
    "LOYALTY_LANDING_SETTLE_SECONDS": ("inf", "LOYALTY_LANDING_SETTLE_SECONDS: 'inf' is not a number of seconds"),
    "LOYALTY_STORAGE_COMPATIBILITY_VERSION": ("1.4", "LOYALTY_STORAGE_COMPATIBILITY_VERSION: '1.4' is not a DuckDB"),
    "LOYALTY_ENGINE": ("postgres", "LOYALTY_ENGINE: 'postgres' is not an engine of this project (use duckdb or spark)"),
    "LOYALTY_SPARK_WAREHOUSE": (
        "/",
        "LOYALTY_SPARK_WAREHOUSE: '/' exists and is not a link the Spark engine published",
    ),
    "LOYALTY_HASH_KEY": ("too short", "LOYALTY_HASH_KEY: the email hash key must have at least 32 characters"),
    "LOYALTY_HASH_KEY_FILE": (
        "/dev/null/email-hash.key",
        "LOYALTY_HASH_KEY_FILE: cannot create the email hash key file /dev/null/email-hash.key (",
    ),
}


def test_every_loyalty_variable_the_code_reads_is_a_checked_setting() -> None:
    """Every LOYALTY_* name quoted in src/, flows/ or the dbt profile is a setting (with a bad-value case above) or
    one of the variables the CLI sets for dbt (the profile's and the night's)."""
    quoted = re.compile(r"""["']\b(LOYALTY_[A-Z_]+)["']""")
    files = [*(PROJECT_DIR / "src").rglob("*.py"), *(PROJECT_DIR / "flows").rglob("*.py"), PROJECT_DIR / "profiles.yml"]
    read = {name for path in files for name in quoted.findall(path.read_text())}
    assert {"LOYALTY_RETRIES", "LOYALTY_MEMORY_LIMIT", "LOYALTY_DBT_TARGET"} <= read  # the scan finds them
    assert set(config.DBT_NIGHT_VARIABLES) <= read
    assert set(config.DBT_SPARK_VARIABLES) <= read
    assert read - {*config.DBT_PROFILE_VARIABLES, *config.DBT_NIGHT_VARIABLES, *config.DBT_SPARK_VARIABLES} <= set(
        config.SETTING_VARIABLES
    )
    assert set(BAD_VALUES) == set(config.SETTING_VARIABLES)


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_setting_stops_loyalty_build_before_anything_starts_with_one_line(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``loyalty build`` (``loyalty run`` for the flow's own settings) with one bad setting: exit code 2, one line on
    stderr naming the variable, the value and what is accepted; no warehouse folder, no lock, no dbt."""
    value, message = BAD_VALUES[name]
    monkeypatch.setenv(name, value)
    warehouse = tmp_path / "out" / "loyalty.duckdb"
    if name != "LOYALTY_WAREHOUSE":
        monkeypatch.setenv("LOYALTY_WAREHOUSE", str(warehouse))
    flow_setting = name in ("LOYALTY_RETRIES", "LOYALTY_RETRY_DELAY_SECONDS", "LOYALTY_LANDING_SETTLE_SECONDS")
    assert cli.main(["run"] if flow_setting else ["build", "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {message}"), err
    assert not (tmp_path / "out").exists()


def test_a_bad_memory_limit_is_one_line_from_the_real_command(tmp_path: Path) -> None:
    """The case of the issue, as a user runs it: no dbt traceback, one line, exit code 2, within seconds."""
    result = run_cli("build", env={"LOYALTY_MEMORY_LIMIT": "lots", "LOYALTY_WAREHOUSE": str(tmp_path / "w.duckdb")})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {BAD_VALUES['LOYALTY_MEMORY_LIMIT'][1]}"]
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("limit", ["4GB", "512MiB", "1.5GiB", "80%", " 2 gb ", "100000000000B", "1e3MB"])
def test_memory_limits_duckdb_accepts_are_accepted_as_given(limit: str) -> None:
    assert config.resolve(memory_limit=limit).memory_limit == limit.strip()
    with duckdb.connect() as con:  # and they are what dbt-duckdb will SET
        con.execute(f"set memory_limit = '{limit.strip()}'")


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("4,5GB", "'4,5GB' is not a memory limit"),
        ("4 gigs", "'4 gigs' is not a memory limit"),
        ("150%", "'150%' is not a memory limit"),
        ("4096", "'4096' is not a memory limit"),  # DuckDB wants a unit
        ("none", "'none' is not a memory limit"),  # DuckDB: no limit for SET, the default for a connection
        ("-1GB", "'-1GB' is not a memory limit"),
        ("1KB", "'1KB' is 0 bytes, too little for DuckDB to build the warehouse"),
        ("8MiB", "'8MiB' is 8.0 MiB, too little for DuckDB to build the warehouse"),
    ],
)
def test_bad_memory_limits_say_what_is_accepted(limit: str, message: str) -> None:
    with pytest.raises(LoyaltyError) as excinfo:
        config.resolve(memory_limit=limit)
    assert str(excinfo.value).startswith(f"LOYALTY_MEMORY_LIMIT: {message}")
    assert str(excinfo.value).endswith(f"({MEMORY} at least 64MiB)")


@pytest.mark.parametrize(
    ("threads", "ok"), [("1", True), ("256", True), ("0", False), ("257", False), ("²", False), ("1.5", False)]
)
def test_threads_are_a_whole_number_from_1_to_256(threads: str, ok: bool) -> None:
    if ok:
        assert config.resolve(threads=threads).threads == int(threads)
        return
    with pytest.raises(LoyaltyError, match=rf"^LOYALTY_THREADS: '{re.escape(threads)}' is not a positive whole"):
        config.resolve(threads=threads)


def test_a_timezone_must_be_known_to_duckdb_as_well_as_python() -> None:
    assert config.resolve(timezone="America/Argentina/Buenos_Aires").timezone == "America/Argentina/Buenos_Aires"
    for name in ("posixrules", "localtime", "europe/berlin", "Europe/Berlin'"):
        with pytest.raises(LoyaltyError, match=rf"^LOYALTY_TIMEZONE: unknown timezone {re.escape(repr(name))}"):
            config.resolve(timezone=name)


def test_the_warehouse_path_must_be_a_file_in_a_folder_that_can_be_made(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    assert config.resolve(warehouse=str(tmp_path / "new" / "deeper" / "w.duckdb"), writing=True).warehouse == (
        tmp_path / "new" / "deeper" / "w.duckdb"
    )
    with pytest.raises(LoyaltyError, match=r"is a folder, not a DuckDB file"):
        config.resolve(warehouse=str(tmp_path))
    with pytest.raises(LoyaltyError, match=rf"cannot be created: {re.escape(str(tmp_path / 'a_file'))} is a file"):
        config.resolve(warehouse=str(tmp_path / "a_file" / "w.duckdb"))


def test_a_warehouse_in_a_read_only_place_is_refused_for_building_only(tmp_path: Path) -> None:
    """On a read-only file system (a tmpfs mounted read-only; root ignores permission bits) a build is refused up
    front, while reading commands (metrics, validate) may still point there."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1M", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        warehouse = folder / "loyalty.duckdb"
        assert config.resolve(warehouse=str(warehouse)).warehouse == warehouse
        with pytest.raises(LoyaltyError, match=rf"^LOYALTY_WAREHOUSE: '{warehouse}' cannot be written: no write"):
            config.resolve(warehouse=str(warehouse), writing=True)
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('["clv_time_unit"]', """LOYALTY_DBT_VARS: '["clv_time_unit"]' is not a JSON object such as"""),
        ('{"as_of_date": "2024-01-01"}', "LOYALTY_DBT_VARS: as_of_date is set by its own LOYALTY_* setting"),
        ('{"build_mode": "full"}', "LOYALTY_DBT_VARS: build_mode is set by the night itself"),
        (
            '{"clv_time_units": "week"}',
            "LOYALTY_DBT_VARS: 'clv_time_units' is not a var of the project (it has: clv_annual_discount_rate,"
            " clv_horizon_months, clv_time_unit, loyalty_corrupt_rows, loyalty_fail_model)",
        ),
    ],
)
def test_dbt_vars_are_a_json_object_of_the_projects_own_vars(
    text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOYALTY_DBT_VARS", text)
    with pytest.raises(LoyaltyError) as excinfo:
        config.resolve()
    assert str(excinfo.value).startswith(message)
    monkeypatch.setenv("LOYALTY_DBT_VARS", '{"clv_time_unit": "week", "clv_horizon_months": 6}')
    assert config.resolve().extra_dbt_vars == {"clv_time_unit": "week", "clv_horizon_months": 6}


def test_the_flows_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.resolve_flow_settings() == config.FlowSettings(3, 30.0, 10.0)
    monkeypatch.setenv("LOYALTY_RETRIES", "0")
    monkeypatch.setenv("LOYALTY_RETRY_DELAY_SECONDS", "2.5")
    monkeypatch.setenv("LOYALTY_LANDING_SETTLE_SECONDS", "0")
    assert config.resolve_flow_settings() == config.FlowSettings(0, 2.5, 0.0)
    monkeypatch.setenv("LOYALTY_RETRIES", "-1")
    with pytest.raises(LoyaltyError, match=r"^LOYALTY_RETRIES: '-1' is not a whole number of retries"):
        config.resolve_flow_settings()


def test_the_flow_takes_its_settings_from_config_when_a_night_starts() -> None:
    """The flow's tasks, made when a night starts from the settings config reads then (a fresh interpreter with the
    variables set): the lock and the landing check retry LOYALTY_RETRIES times with delays doubling from
    LOYALTY_RETRY_DELAY_SECONDS; the other steps never retry."""
    code = (
        "from loyalty import config; from loyalty.orchestration import load_flow_module; m = load_flow_module(); "
        "s = config.resolve_flow_settings(); t = m._tasks(s); "
        "print(s.landing_settle_seconds, *[f'{n}:{t[n].retries}:{t[n].retry_delay_seconds}' for n in t], sep='|')"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")},
        "LOYALTY_RETRIES": "3",
        "LOYALTY_RETRY_DELAY_SECONDS": "1.5",
        "LOYALTY_LANDING_SETTLE_SECONDS": "0",
    }
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    settle, *tasks = result.stdout.strip().split("|")
    assert settle == "0.0"
    assert tasks == [
        "lock:3:[1.5, 3.0, 6.0]",
        "plan:3:[1.5, 3.0, 6.0]",
        *(f"{step}:0:0" for step in ("prepare_build_copy", "dbt_build", "validate", "docs", "report", "publish")),
    ]


def test_an_unknown_loyalty_variable_is_a_warning_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOYALTY_MEMORY_LIMT", "4GB")
    monkeypatch.setenv("LOYALTY_DBT_TARGET", "build")  # the dbt profile's own: no warning
    assert config.unknown_variables() == [
        "LOYALTY_MEMORY_LIMT is not a setting of this project and is ignored (did you mean LOYALTY_MEMORY_LIMIT?)"
    ]
    monkeypatch.setenv("LOYALTY_THREADS", "two")
    assert cli.main(["check"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "warning: LOYALTY_MEMORY_LIMT is not a setting of this project and is ignored (did you mean"
        " LOYALTY_MEMORY_LIMIT?)",
        f"error: {BAD_VALUES['LOYALTY_THREADS'][1]}",
    ]


def test_dbt_always_gets_the_build_target_whatever_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """LOYALTY_DBT_TARGET=query (the profile's read-only target) left in a shell must not reach a build's dbt."""
    from conftest import BAD_ROWS_DIR

    from loyalty.dbt_runner import dbt_command
    from loyalty.landing import check_landing

    monkeypatch.setenv("LOYALTY_DBT_TARGET", "query")
    settings = config.resolve(raw_dir=str(BAD_ROWS_DIR), warehouse=str(tmp_path / "w.duckdb"))
    _, env = dbt_command(settings, check_landing(BAD_ROWS_DIR), "build")
    assert (env["LOYALTY_DBT_TARGET"], env["LOYALTY_DBT_DATABASE"]) == ("build", str(tmp_path / ".build" / "w.duckdb"))


def test_the_email_hash_key_file_is_created_once_readable_by_its_owner_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import hashlib
    import hmac

    from loyalty import email_hashing

    monkeypatch.delenv("LOYALTY_HASH_KEY", raising=False)
    monkeypatch.setenv("LOYALTY_HASH_KEY_FILE", str(tmp_path / "secrets" / "email.key"))
    key = email_hashing.load_key()
    path = tmp_path / "secrets" / "email.key"
    assert path.stat().st_mode & 0o777 == 0o600 and len(key) == 64
    assert email_hashing.load_key() == key  # kept, not made anew
    assert list(path.parent.iterdir()) == [path]  # no partial file left
    # the SQL macro's construction from the pads is HMAC-SHA-256 (RFC 2104)
    inner, outer = email_hashing.pads(key)
    message = b"alice@example.com"
    by_pads = hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).hexdigest()
    assert (
        by_pads
        == hmac.new(key, message, hashlib.sha256).hexdigest()
        == email_hashing.hash_email(" Alice@Example.com", key)
    )
    # a key from the environment wins; another key has another id (so the next night rebuilds in full)
    monkeypatch.setenv("LOYALTY_HASH_KEY", "k" * 40)
    assert email_hashing.load_key() == b"k" * 40
    assert email_hashing.key_id(b"k" * 40) != email_hashing.key_id(key)

"""Configuration: flags over LOYALTY_* variables over defaults, each value checked with a clear error."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from loyalty import config
from loyalty.errors import LoyaltyError


@pytest.fixture(autouse=True)
def _no_loyalty_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LOYALTY_RAW_DIR",
        "LOYALTY_WAREHOUSE",
        "LOYALTY_AS_OF",
        "LOYALTY_TIMEZONE",
        "LOYALTY_CURRENCY",
        "LOYALTY_THREADS",
        "LOYALTY_MEMORY_LIMIT",
    ):
        monkeypatch.delenv(name, raising=False)


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
    [(2, "1GiB"), (4, "3GiB"), (24, "4GiB"), (256, "4GiB")],
)
def test_the_default_memory_limit_is_three_quarters_of_memory_at_most_4_gib(
    monkeypatch: pytest.MonkeyPatch, memory_gib: int, expected: str
) -> None:
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": memory_gib * 2**30 // 4096}
    monkeypatch.setattr(config.os, "sysconf", lambda name: pages[name])
    assert config.resolve().memory_limit == expected
    assert config.resolve(memory_limit="12GB").memory_limit == "12GB"

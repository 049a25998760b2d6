"""The published warehouse opens in DuckDB 1.x clients, as BI tools bundle them (DBeaver's JDBC driver, Metabase's
driver, Evidence's @duckdb/node-api, notebooks): the project builds with DuckDB 2.0, whose own storage format 1.x
refuses, so the night writes the format LOYALTY_STORAGE_COMPATIBILITY_VERSION names (default v1.0.0).

The clients are real: DuckDB 1.0.0 and 1.4.5 (Python) and the DuckDB 1.5.6 CLI in the tool environment
``.venv-clients`` (tests/clients/requirements.txt and oldest.txt), which ``make test`` creates. Without it these
tests fail: they never skip."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from nightly_support import as_of

from loyalty import config
from loyalty.config import PROJECT_DIR
from loyalty.errors import LoyaltyError
from loyalty.nightly import run_night
from loyalty.planning import build_fingerprint, plan_night
from loyalty.publication import publish
from loyalty.workspace import build_path, storage_format

CLIENTS = PROJECT_DIR / ".venv-clients" / "bin"
OLDEST = PROJECT_DIR / ".venv-clients" / "oldest"  # DuckDB 1.0.0, on PYTHONPATH before the environment's 1.4.5
READER = PROJECT_DIR / "tests" / "clients" / "read_warehouse.py"
MIN_VOLUME = config.Thresholds(min_night_volume=0.0)  # 1,500 customers: a quiet day is noise, not a broken feed


def client(name: str) -> Path:
    path = CLIENTS / name
    if not path.is_file() or not (OLDEST / "duckdb").is_dir():
        pytest.fail(
            f"no DuckDB 1.x client at {path}: `make test` creates it (`make .venv-clients/.installed` alone),"
            " from tests/clients/requirements.txt"
        )
    return path


def run_reader(python: Path | str, database: Path, *, oldest: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if oldest:
        env["PYTHONPATH"] = str(OLDEST)
    return subprocess.run([str(python), str(READER), str(database)], capture_output=True, text=True, env=env)


def read_with(python: Path | str, warehouse: Path, *, oldest: bool = False) -> dict:
    """Every table and view of ``warehouse``, every row, read by the DuckDB of ``python`` (READER's JSON); with
    ``oldest``, by DuckDB 1.0.0."""
    result = run_reader(python, warehouse, oldest=oldest)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def header_version(database: Path) -> int:
    """The storage version number in the file's main header (after an 8-byte checksum and the magic ``DUCK``)."""
    header = database.read_bytes()[:20]
    assert header[8:12] == b"DUCK", header
    return int.from_bytes(header[12:20], "little")


@pytest.fixture(scope="module")
def two_nights(nights: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    """Night 0 (a full build: dbt creates the file) and night 1 (incremental: dbt works on a copy of the published
    file), published with the default setting, the GX checkpoint on each build copy. Returns the published file,
    the nights' modes and the storage format published after each night."""
    warehouse = tmp_path_factory.mktemp("clients") / "loyalty.duckdb"
    modes, formats = [], []
    for night in (0, 1):
        settings = config.resolve(
            raw_dir=str(nights[night]), warehouse=str(warehouse), as_of=as_of(night), thresholds=MIN_VOLUME
        )
        assert settings.storage_compatibility_version == "v1.0.0"  # the default
        _, _, plan = run_night(settings, quiet=True, docs=False, dbt_tests=False)
        modes.append(plan.mode)
        formats.append(storage_format(warehouse))
    return warehouse, modes, formats


def test_every_night_publishes_the_v1_0_storage_format(two_nights: tuple[Path, list[str], list[str]]) -> None:
    warehouse, modes, formats = two_nights
    assert modes == ["full", "incremental"]
    assert formats == ["v1.0.0+", "v1.0.0+"]
    assert header_version(warehouse) == 64  # DuckDB 1.0's storage version; DuckDB 2.0's own format writes 999


def test_duckdb_1_0_1_4_and_1_5_read_every_table_and_view_as_duckdb_2_does(
    two_nights: tuple[Path, list[str], list[str]],
) -> None:
    """Every mart, audit table and the rest, row for row: the same row counts and the same rows (a digest of them)
    as the project's DuckDB 2.0 reads."""
    warehouse, _, _ = two_nights
    own = read_with(sys.executable, warehouse)
    lts = read_with(client("python"), warehouse)
    oldest = read_with(client("python"), warehouse, oldest=True)
    assert own["duckdb"].startswith("2.") and lts["duckdb"] == "1.4.5" and oldest["duckdb"] == "1.0.0"
    assert lts["storage_format"] == "v1.0.0+"
    marts = {name for name in own["relations"] if name.startswith("marts.")}
    audit = {name for name in own["relations"] if name.startswith("audit.")}
    assert len(marts) >= 20 and {"audit.build_info", "audit.quarantined_rows", "audit.raw_reconciliation"} <= audit
    assert lts["relations"] == own["relations"]
    assert oldest["relations"] == own["relations"]
    assert own["relations"]["marts.customer_lifetime_value"][0] > 1000  # the shop's customers, not an empty table

    # the DuckDB 1.5.6 CLI, as the README tells a person to run it
    cli = client("duckdb")
    version = subprocess.run([str(cli), "-csv", "-noheader", "-c", "select version()"], capture_output=True, text=True)
    assert version.stdout.strip() == "v1.5.6", version.stderr
    result = subprocess.run(
        [str(cli), "-readonly", "-json", str(warehouse), "-c", "select count(*) as n from marts.fct_orders"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": own["relations"]["marts.fct_orders"][0]}]


def test_duckdb_1_clients_refuse_newer_formats(tmp_path: Path) -> None:
    """What the setting prevents (and that the clients above really check the format): DuckDB 1.4 refuses a file in
    DuckDB 2.0's own format, DuckDB 1.0 one in 1.4's (why the default is v1.0.0)."""
    refused = {}
    for version, oldest in (("latest", False), ("v1.4.0", True)):
        database = tmp_path / f"{version}.duckdb"
        with duckdb.connect(str(database), config={"storage_compatibility_version": version}) as con:
            con.execute("create table t as select 1 as a")
        result = run_reader(client("python"), database, oldest=oldest)
        assert result.returncode != 0
        refused[storage_format(database)] = re.findall(r"IO Error: .*", result.stderr)
    assert refused == {
        "v2.0.0+": [
            "IO Error: Trying to read a database file with version number 999, but we can only read versions between"
            " 64 and 67."
        ],
        "v1.4.0+": [
            "IO Error: Trying to read a database file with version number 67, but we can only read version 64."
        ],
    }


def test_another_storage_version_makes_the_next_night_a_full_rebuild(
    two_nights: tuple[Path, list[str], list[str]], nights: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A published file keeps the format it was created in: a new setting must not build on a copy of it."""
    warehouse, _, _ = two_nights
    settings = config.resolve(raw_dir=str(nights[2]), warehouse=str(warehouse), as_of=as_of(2), thresholds=MIN_VOLUME)
    assert plan_night(settings).mode == "incremental"
    monkeypatch.setenv("LOYALTY_STORAGE_COMPATIBILITY_VERSION", "v1.5.0")
    newer = config.resolve(raw_dir=str(nights[2]), warehouse=str(warehouse), as_of=as_of(2), thresholds=MIN_VOLUME)
    assert newer.storage_compatibility_version == "v1.5.0"
    assert build_fingerprint(newer) != build_fingerprint(settings)
    plan = plan_night(newer)
    assert plan.mode == "full" and "the settings" in plan.reasons[0]


def test_a_build_copy_in_another_format_is_not_published(
    two_nights: tuple[Path, list[str], list[str]], tmp_path: Path
) -> None:
    """Publication checks the build copy's format against the setting: a copy in DuckDB 2.0's own format (here made
    by hand) stays unpublished and the published file is untouched."""
    published, _, _ = two_nights
    warehouse = tmp_path / "loyalty.duckdb"
    shutil.copyfile(published, warehouse)
    before = warehouse.read_bytes()
    copy = build_path(warehouse)
    copy.parent.mkdir(parents=True)
    with duckdb.connect(str(copy)) as con:
        con.execute("create table t as select 1 as a")
    settings = config.resolve(warehouse=str(warehouse))
    with pytest.raises(LoyaltyError) as excinfo:
        publish(settings, None)
    assert str(excinfo.value) == (
        f"not published: the build copy {copy} is in DuckDB storage format v2.0.0+, but"
        " LOYALTY_STORAGE_COMPATIBILITY_VERSION=v1.0.0 writes v1.0.0+"
    )
    assert warehouse.read_bytes() == before and copy.is_file()


def test_the_dbt_profile_and_the_settings_have_the_same_default() -> None:
    """A plain `dbt build` (no loyalty CLI to set the variable) writes the same format as the CLI's default."""
    profile = (PROJECT_DIR / "profiles.yml").read_text()
    defaults = re.findall(r"env_var\('LOYALTY_STORAGE_COMPATIBILITY_VERSION', '([^']+)'\)", profile)
    assert defaults == [config.DEFAULT_STORAGE_COMPATIBILITY_VERSION]


@pytest.mark.parametrize("value", ["latest", "v1.0.0", "v1.5.0"])
def test_good_storage_versions_are_taken(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_STORAGE_COMPATIBILITY_VERSION", value)
    assert config.resolve().storage_compatibility_version == value


@pytest.mark.parametrize("value", ["1.4.0", "v1.4", "v0.10.0", "v1.4.9", "v9.0.0", "V1.4.0"])
def test_bad_storage_versions_are_one_line(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_STORAGE_COMPATIBILITY_VERSION", value)
    with pytest.raises(LoyaltyError) as excinfo:
        config.resolve()
    assert str(excinfo.value) == (
        f"LOYALTY_STORAGE_COMPATIBILITY_VERSION: {value!r} is not a DuckDB storage version (use a DuckDB release"
        f" from v1.0.0 to v{duckdb.__version__}, e.g. v1.0.0 (read by DuckDB 1.0 and later), v1.4.0 (1.4 and later)"
        " or latest)"
    )

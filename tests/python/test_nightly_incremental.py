"""Incremental nights: nights built one after the other equal one full refresh, the same night twice gives the same
marts, and what forces a full rebuild (a changed or late batch, an as-of date moved back)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import query
from nightly_support import NIGHTS, as_of, marts_differences

from loyalty import config
from loyalty.contract import INCREMENTAL_ENTITIES
from loyalty.nightly import run_night
from loyalty.planning import plan_night

# ------------------------------------------------------------------------------------------------ incremental


@pytest.fixture(scope="module")
def night_by_night(nights: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """Nights 0..3 built one after the other into one warehouse (the first full, then incremental)."""
    warehouse = tmp_path_factory.mktemp("nightly") / "loyalty.duckdb"
    plans = []
    for k, raw in enumerate(nights):
        settings = config.resolve(raw_dir=str(raw), warehouse=str(warehouse), as_of=as_of(k))
        _, report, plan = run_night(settings, quiet=True, docs=False, validate=False, dbt_tests=False)
        plans.append((plan.mode, plan.reasons, report.steps_seconds))
    return warehouse, plans


def test_nights_after_the_first_are_incremental(night_by_night: tuple[Path, list], nights: list[Path]) -> None:
    warehouse, plans = night_by_night
    assert [p[0] for p in plans] == ["full", "incremental", "incremental", "incremental"]
    # an incremental night read only its own day's batch of the large entities
    new = query(warehouse, "select entity, batch from audit.landed_batches where is_new_tonight order by 1, 2")
    assert [b for e, b in new if e in INCREMENTAL_ENTITIES] == [
        f"{e}/{as_of(3)}.csv" for e in sorted(INCREMENTAL_ENTITIES)
    ]
    # and the incremental facts rewrote only the customers that changed tonight: the others keep earlier nights' rows
    for fact in ("marts.fct_orders", "marts.fct_order_items"):
        tonight, before = query(
            warehouse,
            f"select count(*) filter (where _built_as_of = date '{as_of(3)}'),"
            f" count(*) filter (where _built_as_of < date '{as_of(3)}') from {fact}",
        )[0]
        assert 0 < tonight < before / 5, (fact, tonight, before)


def test_incremental_nights_equal_one_full_refresh(
    night_by_night: tuple[Path, list], nights: list[Path], tmp_path: Path
) -> None:
    incremental, _ = night_by_night
    full = tmp_path / "full" / "loyalty.duckdb"
    settings = config.resolve(raw_dir=str(nights[-1]), warehouse=str(full), as_of=as_of(NIGHTS))
    _, _, plan = run_night(settings, quiet=True, docs=False, validate=False, dbt_tests=False)
    assert plan.mode == "full"
    differences = marts_differences(incremental, full)
    assert {t: d for t, d in differences.items() if d != (0, 0)} == {}
    # and the data is not trivially equal: the nights brought orders, lines and refunds
    assert query(full, "select count(*) from marts.fct_orders where order_date > date '2026-10-28'")[0][0] > 10


def test_the_same_night_twice_gives_the_same_marts(night_by_night: tuple[Path, list], nights: list[Path]) -> None:
    warehouse, _ = night_by_night
    again = warehouse.parent / "again" / "loyalty.duckdb"
    again.parent.mkdir()
    shutil.copy2(warehouse, again)
    settings = config.resolve(raw_dir=str(nights[-1]), warehouse=str(again), as_of=as_of(NIGHTS))
    _, _, plan = run_night(settings, quiet=True, docs=False, validate=False, dbt_tests=False)
    assert plan.mode == "incremental" and not plan.reasons
    assert {t: d for t, d in marts_differences(warehouse, again).items() if d != (0, 0)} == {}


def test_a_changed_old_batch_or_a_late_one_forces_a_full_rebuild(
    night_by_night: tuple[Path, list], nights: list[Path], tmp_path: Path
) -> None:
    warehouse, _ = night_by_night
    raw = tmp_path / "raw"
    shutil.copytree(nights[-1], raw, copy_function=shutil.copy)  # new modification times: every batch "changed"
    settings = config.resolve(raw_dir=str(raw), warehouse=str(warehouse), as_of=as_of(NIGHTS))
    plan = plan_night(settings)
    assert plan.mode == "full"
    assert any("changed since it was loaded" in r for r in plan.reasons), plan.reasons
    late = tmp_path / "late"
    shutil.copytree(nights[-1], late, copy_function=os.link)
    (late / "orders" / "2026-10-01.csv").write_text((late / "orders" / f"{as_of(3)}.csv").read_text().splitlines()[0])
    plan = plan_night(config.resolve(raw_dir=str(late), warehouse=str(warehouse), as_of=as_of(NIGHTS)))
    assert plan.mode == "full"
    assert plan.reasons == (f"orders/2026-10-01.csv arrived after orders/{as_of(3)}.csv but sorts before it",)
    # an as-of date earlier than the published one's: a full rebuild
    plan = plan_night(config.resolve(raw_dir=str(nights[-1]), warehouse=str(warehouse), as_of=as_of(1)))
    assert plan.mode == "full"
    assert plan.reasons == (f"the as-of date moved back from {as_of(3)} to {as_of(1)}",)
    # the planner hands the published as-of date to an incremental night
    plan = plan_night(config.resolve(raw_dir=str(nights[-1]), warehouse=str(warehouse), as_of=as_of(NIGHTS)))
    assert (plan.mode, plan.previous_as_of) == ("incremental", as_of(3))

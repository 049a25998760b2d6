"""The build profile (benchmarks/profile_build.py) from a hand-made run_results.json and manifest.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import profile_build


def _result(uid: str, start: float, end: float) -> dict:
    def at(seconds: float) -> str:
        return f"2026-12-03T01:00:{seconds:06.3f}Z"

    return {
        "unique_id": uid,
        "execution_time": end - start,
        "timing": [
            {"name": "compile", "started_at": at(start), "completed_at": at(start)},
            {"name": "execute", "started_at": at(start), "completed_at": at(end)},
        ],
    }


BASE_A, BASE_B = "model.loyalty.base_loyalty__orders", "model.loyalty.base_loyalty__customers"
FACT, TEST = "model.loyalty.fct_orders", "test.loyalty.not_null_fct_orders_order_id.abc"
UNIT = "unit_test.loyalty.fct_orders.fct_orders_counts"
RUN_RESULTS = {
    "elapsed_time": 33.0,
    "results": [
        _result(BASE_B, 0.0, 4.0),
        _result(BASE_A, 0.0, 10.0),
        _result(UNIT, 4.0, 6.0),
        _result(FACT, 10.0, 30.0),
        _result(TEST, 30.0, 31.5),
    ],
}
MANIFEST = {
    "nodes": {
        BASE_A: {"depends_on": {"nodes": ["source.loyalty.raw.orders"]}},
        BASE_B: {"depends_on": {"nodes": []}},
        FACT: {"depends_on": {"nodes": [BASE_B, BASE_A]}},
        TEST: {"depends_on": {"nodes": [FACT]}},
    }
}


@pytest.mark.parametrize(
    ("uid", "expected"),
    [
        (BASE_A, "base"),
        ("model.loyalty.stg_loyalty__orders", "stg"),
        ("model.loyalty.int_revenue__bookings", "int"),
        (FACT, "marts"),
        ("model.loyalty.build_info", "marts"),
        (TEST, "data tests"),
        (UNIT, "unit tests"),
        ("seed.loyalty.exchange_rates", "seed"),
    ],
)
def test_each_node_counts_in_its_layer(uid: str, expected: str) -> None:
    assert profile_build.layer(uid) == expected


def test_the_profile_adds_node_seconds_by_layer_and_follows_the_latest_parent_back() -> None:
    found = profile_build.profile(RUN_RESULTS, MANIFEST, top=2)
    assert found["elapsed_seconds"] == 33.0
    assert found["node_seconds"] == pytest.approx(4 + 10 + 2 + 20 + 1.5)
    assert found["by_layer"] == pytest.approx({"marts": 20.0, "base": 14.0, "unit tests": 2.0, "data tests": 1.5})
    assert list(found["by_layer"]) == ["marts", "base", "unit tests", "data tests"]  # largest first
    assert [uid for uid, _ in found["slowest"]] == [FACT, BASE_A]
    # the test ends last; its parent fct_orders; of its parents base orders ends later (10 s) than customers (4 s)
    assert found["critical_path"] == [
        {"node": BASE_A, "start": 0.0, "end": 10.0},
        {"node": FACT, "start": 10.0, "end": 30.0},
        {"node": TEST, "start": 30.0, "end": 31.5},
    ]


def test_the_command_prints_the_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run_results.json").write_text(json.dumps(RUN_RESULTS))
    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST))
    assert profile_build.main([str(tmp_path), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dbt elapsed 33.0 s, 37.5 node-seconds\n")
    assert "| marts | 20.0 |" in out and f"| {FACT} | 20.0 |" in out and f"| {BASE_A} | 10.0 |" not in out
    assert out.rstrip().endswith(f"| {TEST} | 30.0 | 31.5 |")

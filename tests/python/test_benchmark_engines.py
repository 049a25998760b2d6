"""The engine curve of the benchmark (benchmarks/engine_curve.py), from made-up timings: no data, no build."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks import engine_curve


def _night(seconds: float, dbt: float, gib: float) -> dict:
    return {"median_seconds": seconds, "peak_memory_gib": gib, "steps_seconds": {"dbt_build": dbt}}


CURVE = [
    {"customers": 10_000, "duckdb": _night(20.0, 8.0, 0.5), "spark": _night(200.0, 150.0, 2.0)},
    {"customers": 100_000, "duckdb": _night(40.0, 25.0, 1.0), "spark": _night(400.0, 330.0, 2.5)},
]


def test_the_growth_exponent_is_the_slope_of_log_time_over_log_customers() -> None:
    # 20 s -> 40 s for 10x the customers: k = log(2) / log(10)
    assert engine_curve.growth_exponent(CURVE, "duckdb") == pytest.approx(math.log10(2))
    assert engine_curve.growth_exponent(CURVE, "spark") == pytest.approx(math.log10(2))
    assert engine_curve.growth_exponent(CURVE[:1], "spark") is None


def test_the_table_shows_both_engines_side_by_side() -> None:
    results = {
        "date": "2026-12-03",
        "machine": {"cpus": 2},
        "repeats": 1,
        "curve": CURVE,
        "growth_exponent": {"duckdb": 0.3, "spark": 0.31},
    }
    lines = engine_curve.table(results).splitlines()
    assert lines[0] == engine_curve.BEGIN and lines[-1] == engine_curve.END
    assert "| 10,000 | 20.0 | 8.0 | 200.0 | 150.0 | 10.0x | 0.50 / 2.00 |" in lines
    assert "| 100,000 | 40.0 | 25.0 | 400.0 | 330.0 | 10.0x | 1.00 / 2.50 |" in lines
    assert lines[-2].endswith("DuckDB k = 0.30, Spark k = 0.31.")


def test_the_docs_table_is_replaced_between_its_markers_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "scale-out.md"
    monkeypatch.setattr(engine_curve, "DOCS", doc)
    doc.write_text("# Scale-out\n\nhand-written text\n")
    engine_curve.write_docs(f"{engine_curve.BEGIN}\nfirst\n{engine_curve.END}")
    assert doc.read_text() == (
        f"# Scale-out\n\nhand-written text\n\n## Measured: the cost curve\n\n{engine_curve.BEGIN}\nfirst\n"
        f"{engine_curve.END}\n"
    )
    doc.write_text(doc.read_text() + "\n## Later\n\nmore\n")
    engine_curve.write_docs(f"{engine_curve.BEGIN}\nsecond\n{engine_curve.END}")
    assert doc.read_text() == (
        f"# Scale-out\n\nhand-written text\n\n## Measured: the cost curve\n\n{engine_curve.BEGIN}\nsecond\n"
        f"{engine_curve.END}\n\n## Later\n\nmore\n"
    )

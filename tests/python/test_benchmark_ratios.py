"""The benchmark's ratios, targets and report (benchmarks/run.py), from made-up timings: no data, no build."""

from __future__ import annotations

import math

import pytest

from benchmarks import run as bench


def _timing(seconds: float, **extra: object) -> dict:
    return {"median_seconds": seconds, "min_seconds": seconds, "max_seconds": seconds, **extra}


TIMINGS = {
    "full_build": _timing(100.0, peak_memory_gib=3.0),
    "engine_floor": _timing(10.0),
    "pandas_baseline": _timing(50.0),
    "predictive": {"speedup": 20.0},
    "full_flow": _timing(120.0, peak_memory_gib=3.5, steps_seconds={"dbt_build": 90.0, "validate": 12.0}),
    "incremental_flow": _timing(12.0, steps_seconds={"dbt_build": 9.0, "validate": 2.0}),
    "project_build": _timing(150.0),
    "sql_script": _timing(30.0),
    "project_build_100k": _timing(40.0),
    "sql_script_100k": _timing(4.0),
    "make_run": _timing(60.0, command="loyalty run"),
    "metrics_query": _timing(5.0, command="loyalty metrics query"),
}
CURVE = [{"customers": 100_000, "median_seconds": 20.0}, {"customers": 1_000_000, "median_seconds": 100.0}]


def test_ratios_divide_the_steps_measured_in_the_run():
    ratios = bench.ratios_of(TIMINGS, CURVE)
    assert ratios["full_build_vs_floor"] == 10.0
    assert ratios["flow_vs_build"] == 1.2
    assert ratios["gx_seconds"] == 12.0
    assert ratios["incremental_vs_full"] == 0.1
    assert ratios["incremental_vs_full_dbt_step"] == 0.1
    assert ratios["project_vs_sql_script"] == 5.0
    assert ratios["project_vs_sql_script_100k"] == 10.0
    assert ratios["pandas_vs_project"] == 0.5
    assert ratios["lifetimes_vs_project_fit"] == 20.0
    assert ratios["flow_peak_memory_gib"] == 3.5
    assert ratios["cost_growth_exponent"] == pytest.approx(math.log(5) / math.log(10))


def test_skipped_steps_give_no_ratio_and_no_verdict():
    timings = {"full_build": _timing(100.0), "engine_floor": _timing(10.0)}
    ratios = bench.ratios_of(timings, [])
    assert ratios["full_build_vs_floor"] == 10.0
    for name in ("flow_vs_build", "gx_seconds", "incremental_vs_full", "project_vs_sql_script", "pandas_vs_project",
                 "lifetimes_vs_project_fit", "flow_peak_memory_gib"):  # fmt: skip
        assert ratios[name] is None, name
    # the 100k pair exists only when measured (main scale above 100k); the exponent only with a curve
    assert "project_vs_sql_script_100k" not in ratios
    assert "cost_growth_exponent" not in ratios
    assert bench.targets_met(ratios, 1_000_000) == {"full_build_vs_floor": False}


def test_targets_of_the_issue():
    assert bench.TARGETS["full_build_vs_floor"] == ("at most", 8.0)
    assert bench.TARGETS["flow_vs_build"] == ("at most", 1.3)
    assert bench.TARGETS["gx_seconds"] == ("at most", 15.0)
    assert bench.TARGETS["incremental_vs_full"] == ("at most", 0.15)
    assert bench.TARGETS["project_vs_sql_script"] == ("at most", 6.0)
    assert bench.TARGETS["project_vs_sql_script_100k"] == ("at most", 6.0)
    assert bench.TARGETS["pandas_vs_project"] == ("at least", 5.0)
    assert bench.TARGETS["flow_peak_memory_gib"] == ("below", 4.0)
    assert bench.JUDGED_FROM == {"gx_seconds": 1_000_000}


def test_targets_met_compare_each_figure_with_its_kind_of_target():
    ratios = bench.ratios_of(TIMINGS, CURVE)
    assert bench.targets_met(ratios, 1_000_000) == {
        "full_build_vs_floor": False,  # 10 > 8
        "flow_vs_build": True,  # 1.2 <= 1.3
        "gx_seconds": True,  # 12 <= 15
        "incremental_vs_full": True,  # 0.1 <= 0.15
        "project_vs_sql_script": True,  # 5 <= 6
        "project_vs_sql_script_100k": False,  # 10 > 6
        "pandas_vs_project": False,  # 0.5 < 5
        "lifetimes_vs_project_fit": True,  # 20 >= 10
        "flow_peak_memory_gib": True,  # 3.5 < 4
        "cost_growth_exponent": True,  # 0.7 <= 1
    }


@pytest.mark.parametrize(
    ("name", "value", "met"),
    [
        ("full_build_vs_floor", 8.0, True),  # at most: the bound itself meets it
        ("full_build_vs_floor", 8.0001, False),
        ("pandas_vs_project", 5.0, True),  # at least: the bound itself meets it
        ("pandas_vs_project", 4.999, False),
        ("flow_peak_memory_gib", 4.0, False),  # below: the bound itself does not
        ("flow_peak_memory_gib", 3.999, True),
    ],
)
def test_bounds(name: str, value: float, met: bool):
    assert bench.targets_met({name: value}, 1_000_000) == {name: met}


def test_gx_seconds_is_judged_only_at_a_million_customers():
    assert bench.targets_met({"gx_seconds": 30.0}, 999_999) == {}
    assert bench.targets_met({"gx_seconds": 30.0}, 1_000_000) == {"gx_seconds": False}
    assert bench.targets_met({"gx_seconds": 10.0}, 2_000_000) == {"gx_seconds": True}


def _results(customers: int = 1_000_000) -> dict:
    ratios = bench.ratios_of(TIMINGS, CURVE)
    return {
        "date": "2026-12-02",
        "machine": {
            "platform": "Linux",
            "cpus": 2,
            "memory_gib": 8,
            "python": "3.11",
            "versions": {"duckdb": "x", "dbt-core": "y"},
        },
        "customers": customers,
        "repeats": 2,
        "flow_repeats": 1,
        "rows": {"orders": 10, "order_items": 20},
        "timings": TIMINGS,
        "cost_curve": CURVE,
        "ratios": ratios,
        "targets_met": bench.targets_met(ratios, customers),
    }


def test_markdown_keeps_the_hand_written_notes_unchanged():
    notes = "## Notes\n\n- `make test`: 11 min 3 s on 2026-12-01.\n\n### More\n\nfree text | with a pipe\n"
    previous = "# Benchmarks\n\nold generated text\n\n| old | table |\n\n" + notes
    text = bench.markdown(_results(), previous)
    assert text.endswith(notes)
    assert text.splitlines().count("## Notes") == 1
    assert "old generated text" not in text
    # a second run keeps them again
    assert bench.markdown(_results(), text).endswith(notes)


def test_markdown_keeps_a_notes_heading_with_more_words():
    notes = "## Notes on this run\n\n- measured twice\n"
    assert bench.markdown(_results(), "# Benchmarks\n\n" + notes).endswith(notes)
    assert bench.carried_notes("# B\n\n## Notesy\n") == bench.NOTES_PLACEHOLDER


def test_markdown_without_notes_adds_the_place_for_make_test():
    text = bench.markdown(_results(), None)
    assert text.endswith(bench.NOTES_PLACEHOLDER)
    assert "`make test`" in bench.NOTES_PLACEHOLDER


def test_markdown_reports_make_run_and_the_metrics_query_apart_from_the_timings():
    text = bench.markdown(_results(), None)
    generated = text.split("\n## Notes")[0]
    assert "| make_run | `loyalty run` | 60.0 |" in generated
    assert "| metrics_query | `loyalty metrics query` | 5.0 |" in generated
    assert "| make_run | 60.0" not in generated  # not in the timings table
    assert "| project_vs_sql_script_100k | 10.000 | at most 6.0 | **no** |" in generated
    assert "| gx_seconds | 12.000 | at most 15.0 | yes |" in generated
    small = bench.markdown(_results(customers=20_000), None)
    assert "| gx_seconds | 12.000 | at most 15.0 | not judged below 1,000,000 customers |" in small


def test_unknown_skip_names_are_refused(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        bench.main(["--skip", "pandaz"])
    assert "unknown steps pandaz" in capsys.readouterr().err

"""The night's progress (loyalty.progress): dbt's node lines parsed from hand-made output, the plain lines of a
night that is not on a terminal, and the bar on one (a fake terminal stream, the real tqdm)."""

# ruff: noqa: E501 (dbt output as dbt prints it)
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from conftest import FIXTURE_THRESHOLDS, copy_bad_rows, run_cli

from loyalty.progress import NodeCount, Progress, clock, parse_dbt_line, parse_dbt_total

# dbt 1.11's text output, as it prints it into a pipe (colours included); node 3's total is its inflated one
DBT_OUTPUT = """\
\x1b[0m11:29:51  Running with dbt=1.11.16
\x1b[0m11:29:56  Found 2 models, 2 data tests, 1 seed, 11 sources, 578 macros, 1 unit tests
\x1b[0m11:29:56  Concurrency: 2 threads (target='build')
\x1b[0m11:29:56  1 of 7 START seed file reference.exchange_rates .............................. [RUN]
\x1b[0m11:29:56  2 of 7 START unit_test base_loyalty__customers::base_customers_reasons ....... [RUN]
\x1b[0m11:29:57  1 of 7 OK loaded seed file reference.exchange_rates .......................... [\x1b[32mINSERT 8\x1b[0m in 0.11s]
\x1b[0m11:29:57  2 of 7 PASS base_loyalty__customers::base_customers_reasons .................. [\x1b[32mPASS\x1b[0m in 0.53s]
\x1b[0m11:29:57  3 of 7 START sql table model staging.base_loyalty__products ................. [RUN]
\x1b[0m11:29:57  3 of 7 ERROR creating sql table model staging.base_loyalty__products ........ [\x1b[31mERROR\x1b[0m in 0.1s]
\x1b[0m11:29:57  4 of 7 SKIP relation marts.customer_lifetime_value ........................... [\x1b[33mSKIP\x1b[0m]
\x1b[0m11:29:58  5 of 7 START test accepted_values_nps_segments_segment_type__acquisition_channel__country__loyalty_membership  [RUN]
\x1b[0m11:29:58  5 of 7 FAIL 3 not_null_customers_customer_id ................................. [\x1b[31mFAIL 3\x1b[0m in 0.02s]
\x1b[0m11:29:58  Finished running 1 seed, 2 table models, 2 data tests, 1 unit test in 0 hours 0 minutes and 2.00 seconds (2.00s).
\x1b[0m11:29:58  Completed with 2 errors, 0 partial successes, and 0 warnings:
\x1b[0m11:29:58  Done. PASS=1 WARN=0 ERROR=2 SKIP=1 NO-OP=0 TOTAL=5
"""


def test_dbt_node_lines_are_parsed_and_other_lines_are_not() -> None:
    lines = DBT_OUTPUT.splitlines()
    parsed = [parse_dbt_line(line) for line in lines]
    nodes = [(p.index, p.total, p.status, p.node) for p in parsed if p]
    assert nodes == [
        (1, 7, "START", "reference.exchange_rates"),
        (2, 7, "START", "base_loyalty__customers::base_customers_reasons"),
        (1, 7, "OK", "reference.exchange_rates"),
        (2, 7, "PASS", "base_loyalty__customers::base_customers_reasons"),
        (3, 7, "START", "staging.base_loyalty__products"),
        (3, 7, "ERROR", "staging.base_loyalty__products"),
        (4, 7, "SKIP", "marts.customer_lifetime_value"),
        (5, 7, "START", "accepted_values_nps_segments_segment_type__acquisition_channel__country__loyalty_membership"),
        (5, 7, "FAIL", "not_null_customers_customer_id"),
    ]
    assert parse_dbt_line("12:00:00  a model named 1 of 2 START is not a node line") is None
    assert [parse_dbt_total(line) for line in lines if parse_dbt_total(line) is not None] == [5]
    count = NodeCount()
    for node in filter(None, parsed):
        count.add(node)
    assert (count.done, count.total, count.failed) == (5, 7, 2)
    assert count.describe() == "5 of 7 dbt nodes done (2 failed)"
    # the run's Done line corrects its total; a second dbt run of the same step (the Spark engine's build, two
    # phases) counts on from there, its node numbers starting at 1 again
    count.finish(5)
    assert count.describe() == "5 of 5 dbt nodes done (2 failed)"
    for node in filter(
        None,
        map(
            parse_dbt_line,
            [
                "12:00:01  1 of 2 OK created sql table model marts.a ... [OK in 1s]",
                "12:00:02  1 of 2 OK created sql table model marts.a ... [OK in 1s]",
            ],
        ),
    ):
        count.add(node)
    assert count.describe() == "6 of 7 dbt nodes done (2 failed)"
    assert clock(3725.9) == "1:02:05"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _night(progress: Progress, clock_: FakeClock, *, fail: bool = False) -> None:
    with progress.in_step("plan"):
        clock_.now += 2.5
    with pytest.raises(RuntimeError) if fail else progress.in_step("dbt_build"):
        if fail:
            with progress.in_step("dbt_build"):
                raise RuntimeError("dbt failed")
        for line in DBT_OUTPUT.splitlines():
            clock_.now += 1
            progress.dbt_output(line)


def test_plain_lines_show_each_step_with_its_duration_and_dbt_counts_by_tenths_then_the_real_total() -> None:
    clock_, stream = FakeClock(), io.StringIO()
    _night(Progress(stream=stream, clock_=clock_), clock_)
    assert stream.getvalue().splitlines() == [
        "[+0:00:00] plan: started",
        "[+0:00:02] plan: done in 2.5 s",
        "[+0:00:02] dbt_build: started",
        "[+0:00:08] dbt_build: 1 of 7 dbt nodes done",
        "[+0:00:09] dbt_build: 2 of 7 dbt nodes done",
        "[+0:00:11] dbt_build: 3 of 7 dbt nodes done (1 failed)",
        "[+0:00:12] dbt_build: 4 of 7 dbt nodes done (1 failed)",
        "[+0:00:14] dbt_build: 5 of 7 dbt nodes done (2 failed)",
        # dbt's last line says how many nodes ran: the "of 7" counted its unit test twice (dbt-core#11185)
        "[+0:00:17] dbt_build: 5 of 5 dbt nodes done (2 failed)",
        "[+0:00:17] dbt_build: done in 15.0 s, 5 of 5 dbt nodes done (2 failed)",
    ]


def test_quiet_keeps_the_step_lines_and_a_failed_step_says_so() -> None:
    clock_, stream = FakeClock(), io.StringIO()
    progress = Progress(stream=stream, quiet=True, clock_=clock_)
    _night(progress, clock_)
    _night(progress, clock_, fail=True)
    assert stream.getvalue().splitlines() == [
        "[+0:00:00] plan: started",
        "[+0:00:02] plan: done in 2.5 s",
        "[+0:00:02] dbt_build: started",
        "[+0:00:17] dbt_build: done in 15.0 s, 5 of 5 dbt nodes done (2 failed)",
        "[+0:00:17] plan: started",
        "[+0:00:20] plan: done in 2.5 s",
        "[+0:00:20] dbt_build: started",
        "[+0:00:20] dbt_build: failed after 0.0 s",
    ]


def test_prefect_gets_the_plain_lines_through_its_logger() -> None:
    clock_, logged = FakeClock(), []
    progress = Progress(log=logged.append, clock_=clock_)
    assert not progress.bar
    _night(progress, clock_)
    assert logged[0] == "[+0:00:00] plan: started" and logged[-1].endswith(
        "dbt_build: done in 15.0 s, 5 of 5 dbt nodes done (2 failed)"
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_bar_of_dbt_nodes_and_a_line_per_finished_step() -> None:
    clock_, stream = FakeClock(), Terminal()
    progress = Progress(stream=stream, clock_=clock_)
    assert progress.bar
    _night(progress, clock_)
    screen = stream.getvalue()
    assert "dbt_build: 5/7 dbt nodes |" in screen  # the bar, while dbt ran (the total then dbt's own)
    assert "accepted_values_nps_segments_segment_ty…" in screen  # the node dbt was running (a long name, cut)
    assert "[RUN]" not in screen
    finished = [line.split("\r")[-1].strip() for line in screen.splitlines() if "done in" in line]
    assert finished == [
        "[+0:00:02] plan: done in 2.5 s",
        "[+0:00:17] dbt_build: done in 15.0 s, 5 of 5 dbt nodes done (2 failed)",
    ]
    assert "started" not in screen  # the bar says it


STEPS = ("plan", "prepare_build_copy", "dbt_build", "validate", "docs", "report", "publish")


def test_a_real_build_not_on_a_terminal_prints_step_lines_dbt_counts_and_step_durations(tmp_path: Path) -> None:
    """``loyalty build`` into a pipe (not a terminal): plain progress lines on stdout with dbt's own output and the
    summary (stderr keeps the warnings); the last count is dbt's number of nodes, as its run_results.json lists them."""
    raw = copy_bad_rows(tmp_path / "raw")
    warehouse = tmp_path / "published" / "loyalty.duckdb"
    t = FIXTURE_THRESHOLDS
    completed = run_cli(
        "build", "--raw-dir", str(raw), "--warehouse", str(warehouse), "--as-of", "2024-12-31",
        "--max-quarantine-rate", str(t.max_quarantine_rate), "--freshness-days", str(t.freshness_days),
        "--min-night-volume", str(t.min_night_volume), "--max-row-drop", str(t.max_row_drop),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    progress = [line for line in completed.stdout.splitlines() if line.startswith("[+")]
    assert all(re.match(r"\[\+\d+:\d\d:\d\d\] ", line) for line in progress)
    said = [line.split("] ", 1)[1] for line in progress]
    for step in STEPS:
        assert f"{step}: started" in said
        assert any(re.fullmatch(rf"{step}: done in \d+\.\d s(, .*)?", line) for line in said), step
    # steps in order: each one's end before the next one's start
    starts = [said.index(f"{step}: started") for step in STEPS]
    assert starts == sorted(starts)
    nodes = len(json.loads((warehouse.parent / ".build" / "target" / "run_results.json").read_text())["results"])
    assert nodes > 150  # the whole night's build: every model, seed and data test (178 nodes when written)
    counts = [re.fullmatch(r"dbt_build: (\d+) of (\d+) dbt nodes done", line) for line in said]
    counts = [(int(m[1]), int(m[2])) for m in counts if m]
    assert len(counts) >= 5 and counts[-1] == (nodes, nodes)
    assert [done for done, _ in counts] == sorted(done for done, _ in counts)
    # the step ends right after its last count (which may be repeated while dbt writes its artifacts)
    last = len(said) - 1 - said[::-1].index(f"dbt_build: {nodes} of {nodes} dbt nodes done")
    assert "dbt_build: done in " in said[last + 1]
    # dbt's own output (not --quiet) is on stdout as before, and the summary lists every step with its duration
    assert re.search(r"\b1 of \d+ START ", completed.stdout) and "[+0:" not in completed.stderr
    summary = completed.stdout[completed.stdout.index("warehouse published:") :].splitlines()
    block = summary[summary.index("steps (seconds):") + 1 :][: len(STEPS) + 1]
    assert [line.split()[0] for line in block] == [*STEPS, "all"]
    recorded = json.loads((warehouse.parent / "run_summary.json").read_text())["steps_seconds"]
    for line, step in zip(block, STEPS, strict=False):
        assert float(line.split()[-1]) == pytest.approx(recorded.get(step, float(line.split()[-1])), abs=0.06)
    assert float(block[-1].split()[-1]) >= float(block[STEPS.index("dbt_build")].split()[-1]) > 0

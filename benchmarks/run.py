"""``make bench``: speed, memory and scale of the warehouse against what users would do instead, in one run.

Generates the data once per scale (cached in benchmarks/.data), then measures each step ``--repeats`` times and
reports median, min and max wall time and the peak memory (resident set of the step's whole process tree, sampled):

- ``full_build``: the nightly flow's ``dbt build`` on a fresh file (every model and dbt test), at the main scale;
- ``full_flow``: the whole nightly flow with a full refresh (``loyalty run --full-refresh``: Prefect, landing check,
  dbt build, GX checkpoint, dbt docs, publication, report);
- ``incremental_flow``: the whole flow for one more day of data on top of the published warehouse of the day before;
- ``engine_floor``: one DuckDB query that reads the raw orders and lines once and aggregates per customer;
- ``pandas_baseline``: a pandas notebook computing the customer CLV table, the repurchase cohorts and the monthly
  NPS from the raw files (benchmarks/pandas_baseline.py; its results are checked against the warehouse's);
- ``predictive``: fitting and scoring BG/NBD + Gamma-Gamma, the project's step vs lifetimes on the same inputs
  (benchmarks/predictive_vs_lifetimes.py);
- ``project_build``: the project's whole nightly build without Prefect (``loyalty build --full-refresh`` on a fresh
  warehouse: landing check, quarantine, every model and dbt test, GX checkpoint, docs, publication), on the raw files;
- ``sql_script``: the analyst's hand-written DuckDB script computing the CLV, repurchase-cohort and monthly-KPI marts
  from the raw files (benchmarks/sql_script_baseline.py; checked against ``project_build``'s warehouse, every column,
  to the cent: the bench fails when they disagree); both also at 100,000 customers when the main scale is larger;
- ``cost_curve``: ``full_build`` at 100,000, 300,000 and the main scale;
- reported, without a target: ``make_run`` (``loyalty run`` on the bundled data/default into a fresh warehouse) and
  ``metrics_query`` (one ``loyalty metrics query`` on it).

Steps that ``--skip`` leaves out (comma-separated): pandas, predictive, flow, sql (project_build and sql_script),
sql_100k (their 100,000-customer pair), curve, make_run (and metrics_query), metrics.

Writes benchmarks/results/latest.json and docs/benchmarks.md.

    make bench                                    # 1,000,000 customers (about an hour on 2 cores)
    make bench BENCH_ARGS=--quick                 # 20,000 customers, a few minutes
    make bench BENCH_ARGS="--engine spark --repeats 1"   # the night on Spark beside DuckDB: 10k, 100k, 300k
    .venv/bin/python -m benchmarks.run --customers 300000 --repeats 3 --curve 30000,100000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from loyalty import config  # noqa: E402
from loyalty.batches import split_by_day  # noqa: E402
from loyalty.dbt_runner import dbt_command  # noqa: E402
from loyalty.generator import generate  # noqa: E402
from loyalty.landing import check_landing  # noqa: E402
from loyalty.nightly import NIGHTLY_EXCLUDE  # noqa: E402
from loyalty.planning import build_fingerprint, read_published_state  # noqa: E402

DATA_DIR = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
DOCS = ROOT / "docs" / "benchmarks.md"
SEED = 7
LAST_DAY = date(2026, 10, 31)
SMALL_SCALE = 100_000  # project_vs_sql_script is measured here too when the main scale is larger
BUNDLED = ROOT / "data" / "default"
# a representative semantic-layer query (README, "Metrics"): net revenue and customers per cohort month
METRICS_QUERY = ("query", "--metrics", "net_revenue,customers", "--group-by", "customer__cohort_month")
TARGETS = {
    "full_build_vs_floor": ("at most", 8.0),
    "flow_vs_build": ("at most", 1.3),
    "gx_seconds": ("at most", 15.0),
    "incremental_vs_full": ("at most", 0.15),
    "project_vs_sql_script": ("at most", 6.0),
    "project_vs_sql_script_100k": ("at most", 6.0),
    "pandas_vs_project": ("at least", 5.0),
    "lifetimes_vs_project_fit": ("at least", 10.0),
    "flow_peak_memory_gib": ("below", 4.0),
    "cost_growth_exponent": ("at most", 1.0),
}
# targets judged only from this many customers (smaller runs report the figure)
JUDGED_FROM = {"gx_seconds": 1_000_000}


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


class TreeMemory:
    """Peak resident memory of a process and all its descendants, sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)] if p.is_running())
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._stop.wait(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def measure(command: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> tuple[float, int]:
    """Wall seconds and peak memory (bytes) of one run of ``command``; raises if it fails."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    memory = TreeMemory(process.pid)
    output, _ = process.communicate()
    peak = memory.stop()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed (exit {process.returncode}):\n{output[-4000:]}")
    return seconds, peak


def repeated(
    name: str, repeats: int, run: Callable[[], tuple[float, int]], before: Callable[[], None] = lambda: None
) -> dict:
    seconds, peaks = [], []
    for repetition in range(1, repeats + 1):
        before()
        wall, peak = run()
        seconds.append(wall)
        peaks.append(peak)
        log(f"{name} {repetition}/{repeats}: {wall:.1f} s, peak {peak / 2**30:.2f} GiB")
    return {
        "median_seconds": statistics.median(seconds),
        "min_seconds": min(seconds),
        "max_seconds": max(seconds),
        "runs_seconds": seconds,
        "peak_memory_bytes": max(peaks),
        "peak_memory_gib": round(max(peaks) / 2**30, 3),
    }


# ------------------------------------------------------------------------------------------------ data


def dataset(customers: int) -> tuple[Path, list[Path]]:
    """The generated raw folder for ``customers`` (no bad rows, so the pandas baseline can be compared with the
    warehouse) and its split into the day before the last (night 0) and the last day (night 1)."""
    folder = DATA_DIR / f"{customers}-seed{SEED}"
    raw, split = folder / "raw", folder / "split"
    manifest = raw / "manifest.json"
    if not manifest.is_file() or json.loads(manifest.read_text()).get("customers") != customers:
        shutil.rmtree(folder, ignore_errors=True)
        log(f"generating {customers:,} customers")
        generate(raw, customers, SEED, progress=False, force=True)
    if not (split / "nights" / "1").is_dir():
        shutil.rmtree(split, ignore_errors=True)
        log("splitting off the last day")
        split_by_day(raw, split, LAST_DAY, 1)
    return raw, [split / "nights" / "0", split / "nights" / "1"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "loyalty", *args]


def _quiet_env(work: Path) -> dict[str, str]:
    return {
        "PREFECT_HOME": str(work / "prefect"),
        "LOYALTY_LANDING_SETTLE_SECONDS": "0",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


# ------------------------------------------------------------------------------------------------ steps


def full_build(raw: Path, as_of: date, work: Path, repeats: int) -> dict:
    """The flow's dbt build alone, on a fresh file (the landing check runs once, before the timing): the night's
    selection (``nightly.NIGHTLY_EXCLUDE``: every model and data test, no unit tests) and its build-mode var."""
    warehouse = work / "dbt_only" / "loyalty.duckdb"
    settings = config.resolve(raw_dir=str(raw), warehouse=str(warehouse), as_of=as_of.isoformat())
    landing = check_landing(raw, work_dir=work / "dbt_only" / "landing")
    command, env = dbt_command(
        settings, landing, "build", "--quiet", "--exclude", *NIGHTLY_EXCLUDE, database=warehouse,
        extra_vars={"build_mode": "full"},
    )  # fmt: skip

    def fresh() -> None:
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
            leftover.unlink(missing_ok=True)

    return repeated("full_build (dbt build)", repeats, lambda: measure(command, env), before=fresh)


def _built_by_this_project(warehouse: Path, raw: Path) -> bool:
    """Whether the published ``warehouse`` has this project's build fingerprint (the settings the flows use): a night
    0 kept from an older version of the project would make the incremental night a full rebuild."""
    state = read_published_state(warehouse)
    settings = config.resolve(raw_dir=str(raw), warehouse=str(warehouse))
    return state is not None and state.fingerprint == build_fingerprint(settings)


def flows(nights: list[Path], work: Path, repeats: int) -> tuple[dict, dict]:
    """The whole flow: full refresh of night 1, and the incremental night 1 on night 0's published warehouse."""
    env = _quiet_env(work)
    base = work / "flow"
    night0 = base / "night0" / "loyalty.duckdb"
    if night0.is_file() and not _built_by_this_project(night0, nights[0]):
        log("night 0 was built by another version of the project (build fingerprint): publishing it again")
        shutil.rmtree(night0.parent)
    if not night0.is_file():
        log("publishing night 0 (the day before) for the incremental night")
        measure(_cli("run", "--raw-dir", str(nights[0]), "--warehouse", str(night0), "--as-of",
                     (LAST_DAY - timedelta(days=1)).isoformat()), env)  # fmt: skip
    target = base / "night1" / "loyalty.duckdb"
    as_of = LAST_DAY.isoformat()

    def from_night0() -> None:
        shutil.rmtree(target.parent, ignore_errors=True)
        target.parent.mkdir(parents=True)
        shutil.copy2(night0, target)
        shutil.copy2(night0.parent / "published_summary.json", target.parent / "published_summary.json")

    full = repeated(
        "full_flow (loyalty run --full-refresh)",
        repeats,
        lambda: measure(
            _cli("run", "--full-refresh", "--raw-dir", str(nights[1]), "--warehouse", str(target), "--as-of", as_of),
            env,
        ),  # fmt: skip
        before=from_night0,
    )
    full["steps_seconds"] = json.loads((target.parent / "run_summary.json").read_text())["steps_seconds"]
    incremental = repeated(
        "incremental_flow (loyalty run, one more day)",
        repeats,
        lambda: measure(_cli("run", "--raw-dir", str(nights[1]), "--warehouse", str(target), "--as-of", as_of), env),
        before=from_night0,
    )
    summary = json.loads((target.parent / "run_summary.json").read_text())
    if summary.get("mode") != "incremental":
        raise RuntimeError(f"the incremental night was not incremental: {summary.get('mode_reasons')}")
    incremental["steps_seconds"] = summary["steps_seconds"]
    return full, incremental


FLOOR_SQL = """
with lines as (
    select order_id, sum(quantity::double * unit_price::double - coalesce(discount_amount::double, 0)) as gross
    from read_csv('{raw}/order_items.csv', header = true, all_varchar = true) group by order_id
)
select o.customer_id, count(*) as orders, sum(l.gross) as gross
from read_csv('{raw}/orders.csv', header = true, all_varchar = true) o
join lines l using (order_id)
where o.status = 'completed'
group by o.customer_id
"""


def engine_floor(raw: Path, repeats: int) -> dict:
    code = (
        "import duckdb, sys; con = duckdb.connect(); "
        f"print(con.execute({FLOOR_SQL.format(raw=raw)!r}).to_arrow_table().num_rows)"
    )
    return repeated("engine_floor (one DuckDB query)", repeats, lambda: measure([sys.executable, "-c", code]))


def pandas_baseline(raw: Path, work: Path, repeats: int, warehouse: Path) -> dict:
    out = work / "pandas"
    command = [sys.executable, "-m", "benchmarks.pandas_baseline", "--raw-dir", str(raw), "--as-of",
               LAST_DAY.isoformat(), "--out", str(out)]  # fmt: skip
    result = repeated("pandas_baseline", repeats, lambda: measure(command))
    import pandas as pd

    from benchmarks.pandas_baseline import compare

    tables = {name: pd.read_parquet(out / f"{name}.parquet") for name in ("clv", "cohorts", "nps")}
    result["agreement_with_warehouse"] = compare(tables, warehouse)
    return result


def project_build(raw: Path, work: Path, repeats: int) -> tuple[dict, Path]:
    """The whole nightly build without Prefect (``loyalty build --full-refresh``) on a fresh warehouse each time;
    returns the timing and the published file of the last run."""
    warehouse = work / "project" / "loyalty.duckdb"
    command = _cli("build", "--full-refresh", "--quiet", "--raw-dir", str(raw), "--warehouse", str(warehouse),
                   "--as-of", LAST_DAY.isoformat())  # fmt: skip

    def fresh() -> None:
        shutil.rmtree(warehouse.parent, ignore_errors=True)
        warehouse.parent.mkdir(parents=True)

    result = repeated(
        "project_build (loyalty build --full-refresh)",
        repeats,
        lambda: measure(command, _quiet_env(work)),
        before=fresh,
    )
    summary = warehouse.parent / "run_summary.json"
    if summary.is_file():
        result["steps_seconds"] = json.loads(summary.read_text()).get("steps_seconds")
    return result, warehouse


def sql_script(raw: Path, work: Path, repeats: int, warehouse: Path) -> dict:
    """The hand-written DuckDB script (benchmarks/sql_script_baseline.py) on the raw files, then its three tables
    compared with the warehouse's, every column: raises when they disagree."""
    from benchmarks.sql_script_baseline import check_agreement, compare

    out = work / "sql_script" / "script.duckdb"
    command = [sys.executable, "-m", "benchmarks.sql_script_baseline", "--raw-dir", str(raw), "--as-of",
               LAST_DAY.isoformat(), "--out", str(out)]  # fmt: skip
    result = repeated("sql_script (hand-written DuckDB SQL)", repeats, lambda: measure(command))
    result["agreement_with_warehouse"] = compare(out, warehouse)
    check_agreement(result["agreement_with_warehouse"])
    log("sql_script agrees with the warehouse on every compared column")
    return result


def make_run(work: Path) -> tuple[dict, Path]:
    """``make run`` after set-up: ``loyalty run`` (the Prefect flow) on the bundled data/default into a fresh
    warehouse, once."""
    warehouse = work / "make_run" / "loyalty.duckdb"
    shutil.rmtree(warehouse.parent, ignore_errors=True)
    warehouse.parent.mkdir(parents=True)
    command = _cli("run", "--raw-dir", str(BUNDLED), "--warehouse", str(warehouse))
    return repeated("make_run (loyalty run on data/default)", 1, lambda: measure(command, _quiet_env(work))), warehouse


def metrics_query(warehouse: Path, work: Path, repeats: int) -> dict:
    """One ``loyalty metrics query`` (METRICS_QUERY) on a published warehouse, as a user types it."""
    command = _cli("metrics", "--warehouse", str(warehouse), *METRICS_QUERY)
    result = repeated("metrics_query (loyalty metrics query)", repeats, lambda: measure(command, _quiet_env(work)))
    result["command"] = "loyalty metrics " + " ".join(METRICS_QUERY)
    return result


def predictive(raw: Path, customers: int, repeats: int) -> dict:
    from benchmarks.predictive_vs_lifetimes import run

    return run(customers, repeats, raw_dir=raw, log=log)


# ------------------------------------------------------------------------------------------------ report


def machine() -> dict[str, Any]:
    import dbt.version
    import duckdb
    import pandas

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "versions": {"duckdb": duckdb.__version__, "dbt-core": dbt.version.__version__, "pandas": pandas.__version__},
    }


NOTES_HEADING = "## Notes"
NOTES_PLACEHOLDER = f"""{NOTES_HEADING}

Hand-written: everything from the `{NOTES_HEADING}` heading on is kept as it is when `make bench` rewrites this file.

- `make test` (the whole suite, on this machine): not measured in this run; write the time and the date here.
"""


def carried_notes(previous: str | None) -> str:
    """The hand-written part of the existing docs/benchmarks.md: everything from the first line that is the
    ``## Notes`` heading (or starts with it, e.g. ``## Notes on this run``) to the end; a placeholder without one."""
    lines = (previous or "").splitlines(keepends=True)
    for number, line in enumerate(lines):
        if line.rstrip() == NOTES_HEADING or line.startswith(NOTES_HEADING + " "):
            notes = "".join(lines[number:])
            return notes if notes.endswith("\n") else notes + "\n"
    return NOTES_PLACEHOLDER


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def markdown(results: dict[str, Any], previous: str | None = None) -> str:
    """docs/benchmarks.md: the generated part from ``results``, then the hand-written notes of ``previous`` (the file
    as it stands) carried over unchanged."""
    m, r, t = results["machine"], results["ratios"], results["timings"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['date']} on {m['platform']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']},"
        f" DuckDB {m['versions']['duckdb']}, dbt-core {m['versions']['dbt-core']}; {results['customers']:,} customers"
        f" ({results['rows']['orders']:,} orders, {results['rows']['order_items']:,} order lines). Medians of"
        f" {results['repeats']} runs ({results['flow_repeats']} for the whole-flow and whole-build steps); the"
        " machine is shared, so read ratios rather than seconds. Rerun with"
        " `make bench` (results in `benchmarks/results/latest.json`). Generated by `benchmarks/run.py`: edit only the"
        f" `{NOTES_HEADING}` section at the end, which a new run keeps.",
        "",
        "| step | median s | min s | max s | peak memory GiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, timing in t.items():
        if "median_seconds" in timing and name not in REPORTED:
            lines.append(
                f"| {name} | {timing['median_seconds']:.1f} | {timing['min_seconds']:.1f} | {timing['max_seconds']:.1f}"
                f" | {timing.get('peak_memory_gib', '')} |"
            )
    full_steps = t.get("full_flow", {}).get("steps_seconds") or {}
    incremental_steps = t.get("incremental_flow", {}).get("steps_seconds") or {}
    if full_steps and incremental_steps:
        lines += ["", "Steps of the last full and incremental flow runs (seconds, from `run_summary.json`):", "",
                  "| step | full | incremental |", "|---|---:|---:|"]  # fmt: skip
        for step in full_steps:
            lines.append(f"| {step} | {full_steps[step]:.1f} | {incremental_steps.get(step, 0):.1f} |")
    lines += ["", "| ratio | value | target | met |", "|---|---:|---|---|"]
    for name, value in r.items():
        target = TARGETS.get(name)
        judged = name in results["targets_met"]
        met = "" if not judged else ("yes" if results["targets_met"][name] else "**no**")
        if target is not None and value is not None and not judged:
            met = f"not judged below {JUDGED_FROM[name]:,} customers" if name in JUDGED_FROM else ""
        shown = "" if value is None else f"{value:.3f}"
        lines.append(f"| {name} | {shown} | {'' if target is None else f'{target[0]} {target[1]}'} | {met} |")
    reported = [(name, t[name]) for name in REPORTED if name in t]
    if reported:
        lines += ["", "Reported, without a target (the bundled data, data/default):", "",
                  "| what | command | median s | peak memory GiB |", "|---|---|---:|---:|"]  # fmt: skip
        for name, timing in reported:
            lines.append(
                f"| {name} | `{timing.get('command', '')}` | {_seconds(timing.get('median_seconds'))}"
                f" | {timing.get('peak_memory_gib', '')} |"
            )
    if results.get("cost_curve"):
        lines += ["", "Cost curve (full dbt build):", "", "| customers | median s | s per 100k customers |",
                  "|---:|---:|---:|"]  # fmt: skip
        for point in results["cost_curve"]:
            lines.append(
                f"| {point['customers']:,} | {point['median_seconds']:.1f}"
                f" | {100_000 * point['median_seconds'] / point['customers']:.1f} |"
            )
    return "\n".join(lines) + "\n\n" + carried_notes(previous)


# steps shown in the table of reported figures, not in the timings table
REPORTED = ("make_run", "metrics_query")


def _step_ratio(timings: dict[str, Any], step: str) -> float | None:
    full = timings.get("full_flow", {}).get("steps_seconds", {}).get(step)
    incremental = timings.get("incremental_flow", {}).get("steps_seconds", {}).get(step)
    return incremental / full if full and incremental is not None else None


def ratios_of(timings: dict[str, Any], curve: list[dict[str, Any]]) -> dict[str, float | None]:
    """The ratios (and figures with a target) of one run's measurements; None where a step was skipped."""

    def median(name: str) -> float | None:
        return timings.get(name, {}).get("median_seconds")

    def ratio(numerator: str, denominator: str) -> float | None:
        top, bottom = median(numerator), median(denominator)
        return top / bottom if top is not None and bottom else None

    ratios: dict[str, float | None] = {
        "full_build_vs_floor": ratio("full_build", "engine_floor"),
        "flow_vs_build": ratio("full_flow", "full_build"),
        "gx_seconds": timings.get("full_flow", {}).get("steps_seconds", {}).get("validate"),
        "incremental_vs_full": ratio("incremental_flow", "full_flow"),
        # the same, dbt build step only (last runs' step timings): what incremental models save, without the GX
        # checkpoint and the docs, which cover the whole warehouse every night
        "incremental_vs_full_dbt_step": _step_ratio(timings, "dbt_build"),
        "project_vs_sql_script": ratio("project_build", "sql_script"),
        "pandas_vs_project": ratio("pandas_baseline", "full_build"),
        "lifetimes_vs_project_fit": timings.get("predictive", {}).get("speedup"),
        "flow_peak_memory_gib": timings.get("full_flow", {}).get("peak_memory_gib"),
    }
    if "project_build_100k" in timings or "sql_script_100k" in timings:
        ratios["project_vs_sql_script_100k"] = ratio("project_build_100k", "sql_script_100k")
    if len(curve) >= 2:
        first, last = curve[0], curve[-1]
        ratios["cost_growth_exponent"] = math.log(last["median_seconds"] / first["median_seconds"]) / math.log(
            last["customers"] / first["customers"]
        )
    return ratios


def targets_met(ratios: dict[str, float | None], customers: int) -> dict[str, bool]:
    """Whether each measured figure with a target meets it; figures judged only from a scale (JUDGED_FROM) are left
    out below it."""
    met = {}
    for name, (kind, target) in TARGETS.items():
        value = ratios.get(name)
        if value is None or customers < JUDGED_FROM.get(name, 0):
            continue
        met[name] = {"at least": value >= target, "at most": value <= target, "below": value < target}[kind]
    return met


SKIPPABLE = ("pandas", "predictive", "flow", "sql", "sql_100k", "curve", "make_run", "metrics")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--flow-repeats", type=int, help="repetitions of the whole-flow and whole-build steps (default: --repeats)"
    )
    parser.add_argument(
        "--curve",
        help="smaller scales of the cost curve (comma-separated; default 100000,300000, and with --engine spark the"
        " scales of the engine curve, default 10000,100000,300000)",
    )
    parser.add_argument(
        "--engine",
        choices=config.ENGINES,
        default="duckdb",
        help="spark: instead of the DuckDB benchmark, the whole night on Spark beside DuckDB at each scale of --curve"
        " (benchmarks/engine_curve.py; docs/scale-out.md)",
    )
    parser.add_argument("--quick", action="store_true", help="20,000 customers, 2 repeats, curve 5,000 and 10,000")
    parser.add_argument(
        "--skip",
        default="",
        help="steps to leave out, comma-separated, of: pandas (pandas_baseline), predictive, flow (full_flow and"
        " incremental_flow), sql (project_build and sql_script), sql_100k (the same pair at 100,000 customers, run"
        " when --customers is larger), curve (cost_curve), make_run (make_run and metrics_query), metrics"
        " (metrics_query)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.repeats, args.curve = 20_000, 2, "5000,10000"
    if args.engine == "spark":
        from benchmarks.engine_curve import main as engine_curve

        return engine_curve([int(c) for c in (args.curve or "").split(",") if c], args.repeats)
    args.curve = args.curve or "100000,300000"
    skip = set(filter(None, args.skip.split(",")))
    if unknown := skip - set(SKIPPABLE):
        parser.error(f"--skip: unknown steps {', '.join(sorted(unknown))} (known: {', '.join(SKIPPABLE)})")
    flow_repeats = args.flow_repeats or args.repeats
    work = DATA_DIR / f"work-{args.customers}"
    night0 = work / "flow" / "night0"
    kept = DATA_DIR / f"night0-{args.customers}"  # the published day before depends only on the data: kept
    if night0.is_dir() and not kept.exists():
        shutil.move(night0, kept)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if kept.is_dir():
        night0.parent.mkdir(parents=True)
        shutil.move(kept, night0)

    raw, nights = dataset(args.customers)
    manifest = json.loads((raw / "manifest.json").read_text())
    timings: dict[str, Any] = {}
    curve: list[dict[str, Any]] = []
    partial = RESULTS.with_name("partial.json")  # what is measured so far, should a later step fail

    def save_partial() -> None:
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps({"customers": args.customers, "timings": timings, "curve": curve}, indent=2))

    timings["full_build"] = full_build(nights[1], LAST_DAY, work, args.repeats)
    save_partial()
    timings["engine_floor"] = engine_floor(raw, args.repeats)
    save_partial()
    if "pandas" not in skip:
        timings["pandas_baseline"] = pandas_baseline(raw, work, args.repeats, work / "dbt_only" / "loyalty.duckdb")
        save_partial()
    if "predictive" not in skip:
        timings["predictive"] = predictive(raw, args.customers, args.repeats)
        save_partial()
    if "flow" not in skip:
        timings["full_flow"], timings["incremental_flow"] = flows(nights, work, flow_repeats)
        save_partial()
    if "sql" not in skip:
        timings["project_build"], published = project_build(raw, work, flow_repeats)
        save_partial()
        timings["sql_script"] = sql_script(raw, work, args.repeats, published)
        save_partial()
        if args.customers > SMALL_SCALE and "sql_100k" not in skip:
            small_raw, _ = dataset(SMALL_SCALE)
            small_work = DATA_DIR / f"work-{SMALL_SCALE}"
            timings["project_build_100k"], published = project_build(small_raw, small_work, flow_repeats)
            save_partial()
            timings["sql_script_100k"] = sql_script(small_raw, small_work, args.repeats, published)
            save_partial()
    if "curve" not in skip:
        for customers in sorted(int(c) for c in args.curve.split(",") if c):
            small_raw, small_nights = dataset(customers)
            point = full_build(small_nights[1], LAST_DAY, DATA_DIR / f"work-{customers}", args.repeats)
            curve.append({"customers": customers, **point})
            save_partial()
        curve.append({"customers": args.customers, **timings["full_build"]})
    if "make_run" not in skip:
        timings["make_run"], bundled_warehouse = make_run(work)
        timings["make_run"]["command"] = "loyalty run (make run) on data/default, fresh warehouse"
        save_partial()
        if "metrics" not in skip:
            timings["metrics_query"] = metrics_query(bundled_warehouse, work, args.repeats)
            save_partial()

    ratios = ratios_of(timings, curve)
    results = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "customers": args.customers,
        "repeats": args.repeats,
        "flow_repeats": flow_repeats,
        "seed": SEED,
        "rows": manifest["rows"],
        "timings": timings,
        "cost_curve": curve,
        "ratios": ratios,
        "targets": {k: {"kind": v[0], "value": v[1]} for k, v in TARGETS.items()},
        "judged_from_customers": JUDGED_FROM,
        "targets_met": targets_met(ratios, args.customers),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(results, DOCS.read_text() if DOCS.is_file() else None)
    DOCS.write_text(text)
    log(f"wrote {RESULTS} and {DOCS}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

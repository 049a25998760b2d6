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
- ``cost_curve``: ``full_build`` at 100,000, 300,000 and the main scale.

Writes benchmarks/results/latest.json and docs/benchmarks.md.

    make bench                                    # 1,000,000 customers (about an hour on 2 cores)
    make bench BENCH_ARGS=--quick                 # 20,000 customers, a few minutes
    .venv/bin/python -m benchmarks.run --customers 300000 --repeats 3 --curve 30000,100000
"""

from __future__ import annotations

import argparse
import json
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

DATA_DIR = ROOT / "benchmarks" / ".data"
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
DOCS = ROOT / "docs" / "benchmarks.md"
SEED = 7
LAST_DAY = date(2026, 10, 31)
TARGETS = {
    "pandas_vs_project": ("at least", 5.0),
    "lifetimes_vs_project_fit": ("at least", 10.0),
    "incremental_vs_full": ("at most", 0.15),
    "flow_peak_memory_gib": ("below", 6.0),
    "cost_growth_exponent": ("at most", 1.0),
}


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
    """The flow's dbt build alone, on a fresh file (the landing check runs once, before the timing)."""
    warehouse = work / "dbt_only" / "loyalty.duckdb"
    settings = config.resolve(raw_dir=str(raw), warehouse=str(warehouse), as_of=as_of.isoformat())
    landing = check_landing(raw, work_dir=work / "dbt_only" / "landing")
    command, env = dbt_command(settings, landing, "build", "--quiet", database=warehouse)

    def fresh() -> None:
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
            leftover.unlink(missing_ok=True)

    return repeated("full_build (dbt build)", repeats, lambda: measure(command, env), before=fresh)


def flows(nights: list[Path], work: Path, repeats: int) -> tuple[dict, dict]:
    """The whole flow: full refresh of night 1, and the incremental night 1 on night 0's published warehouse."""
    env = _quiet_env(work)
    base = work / "flow"
    night0 = base / "night0" / "loyalty.duckdb"
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


def markdown(results: dict[str, Any]) -> str:
    m, r, t = results["machine"], results["ratios"], results["timings"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['date']} on {m['platform']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']},"
        f" DuckDB {m['versions']['duckdb']}, dbt-core {m['versions']['dbt-core']}; {results['customers']:,} customers"
        f" ({results['rows']['orders']:,} orders, {results['rows']['order_items']:,} order lines). Medians of"
        f" {results['repeats']} runs ({results['flow_repeats']} for the whole-flow steps); the machine is shared, so"
        " read ratios rather than seconds. Rerun with"
        " `make bench` (results in `benchmarks/results/latest.json`).",
        "",
        "| step | median s | min s | max s | peak memory GiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, timing in t.items():
        if "median_seconds" in timing:
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
        met = "" if target is None or value is None else ("yes" if results["targets_met"].get(name) else "**no**")
        shown = "" if value is None else f"{value:.3f}"
        lines.append(f"| {name} | {shown} | {'' if target is None else f'{target[0]} {target[1]}'} | {met} |")
    if results.get("cost_curve"):
        lines += ["", "Cost curve (full dbt build):", "", "| customers | median s | s per 100k customers |",
                  "|---:|---:|---:|"]  # fmt: skip
        for point in results["cost_curve"]:
            lines.append(
                f"| {point['customers']:,} | {point['median_seconds']:.1f}"
                f" | {100_000 * point['median_seconds'] / point['customers']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def _step_ratio(timings: dict[str, Any], step: str) -> float | None:
    full = timings.get("full_flow", {}).get("steps_seconds", {}).get(step)
    incremental = timings.get("incremental_flow", {}).get("steps_seconds", {}).get(step)
    return incremental / full if full and incremental is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flow-repeats", type=int, help="repetitions of the two whole-flow steps (default: --repeats)")
    parser.add_argument("--curve", default="100000,300000", help="smaller scales of the cost curve (comma-separated)")
    parser.add_argument("--quick", action="store_true", help="20,000 customers, 2 repeats, curve 5,000 and 10,000")
    parser.add_argument("--skip", default="", help="steps to leave out, e.g. pandas,curve")
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.repeats, args.curve = 20_000, 2, "5000,10000"
    skip = set(filter(None, args.skip.split(",")))
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
        timings["full_flow"], timings["incremental_flow"] = flows(nights, work, args.flow_repeats or args.repeats)
        save_partial()
    if "curve" not in skip:
        for customers in sorted(int(c) for c in args.curve.split(",") if c):
            small_raw, small_nights = dataset(customers)
            point = full_build(small_nights[1], LAST_DAY, DATA_DIR / f"work-{customers}", args.repeats)
            curve.append({"customers": customers, **point})
            save_partial()
        curve.append({"customers": args.customers, **timings["full_build"]})

    def median(name: str) -> float | None:
        return timings.get(name, {}).get("median_seconds")

    ratios: dict[str, float | None] = {
        "full_build_vs_floor": median("full_build") / median("engine_floor"),
        "incremental_vs_full": (median("incremental_flow") / median("full_flow")) if median("full_flow") else None,
        # the same, dbt build step only (last runs' step timings): what incremental models save, without the GX
        # checkpoint and the docs, which cover the whole warehouse every night
        "incremental_vs_full_dbt_step": _step_ratio(timings, "dbt_build"),
        "pandas_vs_project": (median("pandas_baseline") / median("full_build")) if median("pandas_baseline") else None,
        "lifetimes_vs_project_fit": timings.get("predictive", {}).get("speedup"),
        "flow_peak_memory_gib": timings.get("full_flow", {}).get("peak_memory_gib"),
    }
    if len(curve) >= 2:
        import math

        first, last = curve[0], curve[-1]
        ratios["cost_growth_exponent"] = math.log(last["median_seconds"] / first["median_seconds"]) / math.log(
            last["customers"] / first["customers"]
        )
    met = {}
    for name, (kind, target) in TARGETS.items():
        value = ratios.get(name)
        if value is not None:
            met[name] = {"at least": value >= target, "at most": value <= target, "below": value < target}[kind]
    results = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "customers": args.customers,
        "repeats": args.repeats,
        "flow_repeats": args.flow_repeats or args.repeats,
        "seed": SEED,
        "rows": manifest["rows"],
        "timings": timings,
        "cost_curve": curve,
        "ratios": ratios,
        "targets": {k: {"kind": v[0], "value": v[1]} for k, v in TARGETS.items()},
        "targets_met": met,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(markdown(results))
    log(f"wrote {RESULTS} and {DOCS}")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

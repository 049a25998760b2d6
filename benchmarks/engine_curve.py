"""``make bench BENCH_ARGS="--engine spark"``: the cost curve of the whole night on local Spark beside DuckDB's.

At each scale (``--curve``, default 10,000, 100,000 and 300,000 customers; the generated data of the main bench,
cached in benchmarks/.data) it runs the whole night without Prefect, ``loyalty build --full-refresh`` on a fresh
warehouse (landing check, every model and dbt test, the predictive fit, the GX gate, docs, publication), once per
engine and repetition, and keeps the wall time, the peak memory of the process tree (Spark's JVM included) and the
night's own step times. Writes benchmarks/results/engines.json and the table between the markers of
docs/scale-out.md ("Measured: the cost curve").
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.run import DATA_DIR, LAST_DAY, ROOT, _cli, _quiet_env, dataset, log, machine, measure, repeated
from loyalty.config import ENGINES

RESULTS = ROOT / "benchmarks" / "results" / "engines.json"
DOCS = ROOT / "docs" / "scale-out.md"
BEGIN, END = "<!-- engine curve: begin (benchmarks/engine_curve.py) -->", "<!-- engine curve: end -->"
DEFAULT_CURVE = (10_000, 100_000, 300_000)


def night(raw: Path, work: Path, engine: str, repeats: int) -> dict[str, Any]:
    """``loyalty build --full-refresh --engine <engine>`` on a fresh warehouse, ``repeats`` times."""
    warehouse = work / engine / "loyalty.duckdb"
    command = _cli("build", "--full-refresh", "--quiet", "--engine", engine, "--raw-dir", str(raw),
                   "--warehouse", str(warehouse), "--as-of", LAST_DAY.isoformat())  # fmt: skip

    def fresh() -> None:
        shutil.rmtree(warehouse.parent, ignore_errors=True)
        warehouse.parent.mkdir(parents=True)

    result = repeated(f"night on {engine}", repeats, lambda: measure(command, _quiet_env(work)), before=fresh)
    summary = json.loads((warehouse.parent / "run_summary.json").read_text())
    result["steps_seconds"] = summary.get("steps_seconds")
    return result


def growth_exponent(points: list[dict[str, Any]], engine: str) -> float | None:
    """How the night's time grows with the customers, from the smallest to the largest scale: time ~ customers^k."""
    if len(points) < 2:
        return None
    first, last = points[0], points[-1]
    seconds = (first[engine]["median_seconds"], last[engine]["median_seconds"])
    return math.log(seconds[1] / seconds[0]) / math.log(last["customers"] / first["customers"])


def table(results: dict[str, Any]) -> str:
    """The curve as the markdown docs/scale-out.md shows between its markers."""
    lines = [
        BEGIN,
        f'Measured {results["date"]} by `make bench BENCH_ARGS="--engine spark"` ({results["repeats"]} run(s) per'
        f" point, median; {results['machine']['cpus']} CPUs). Whole night: `loyalty build --full-refresh`.",
        "",
        "| customers | DuckDB night (s) | its dbt build (s) | Spark night (s) | its dbt build (s) | Spark / DuckDB"
        " | peak memory DuckDB / Spark (GiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for point in results["curve"]:
        duck, spark = point["duckdb"], point["spark"]
        lines.append(
            f"| {point['customers']:,} | {duck['median_seconds']:.1f} | {duck['steps_seconds']['dbt_build']:.1f}"
            f" | {spark['median_seconds']:.1f} | {spark['steps_seconds']['dbt_build']:.1f}"
            f" | {spark['median_seconds'] / duck['median_seconds']:.1f}x"
            f" | {duck['peak_memory_gib']:.2f} / {spark['peak_memory_gib']:.2f} |"
        )
    growth = results["growth_exponent"]
    if growth["duckdb"] is not None:
        lines += [
            "",
            f"Growth of the night's time with the customers (time ~ customers^k, smallest to largest scale):"
            f" DuckDB k = {growth['duckdb']:.2f}, Spark k = {growth['spark']:.2f}.",
        ]
    return "\n".join([*lines, END])


def write_docs(text: str) -> None:
    """Replace the table between the markers of docs/scale-out.md (appended with its heading if absent)."""
    doc = DOCS.read_text()
    if BEGIN in doc and END in doc:
        doc = doc[: doc.index(BEGIN)] + text + doc[doc.index(END) + len(END) :]
    else:
        doc = doc.rstrip("\n") + "\n\n## Measured: the cost curve\n\n" + text + "\n"
    DOCS.write_text(doc)


def main(curve: list[int], repeats: int) -> int:
    points: list[dict[str, Any]] = []
    for customers in sorted(curve or DEFAULT_CURVE):
        raw, _ = dataset(customers)
        work = DATA_DIR / f"engines-{customers}"
        points.append({"customers": customers, **{e: night(raw, work, e, repeats) for e in ENGINES}})
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.with_name("engines-partial.json").write_text(json.dumps(points, indent=2))
    results = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "repeats": repeats,
        "curve": points,
        "growth_exponent": {e: growth_exponent(points, e) for e in ENGINES},
    }
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = table(results)
    write_docs(text)
    log(f"wrote {RESULTS} and {DOCS}")
    print(text)
    return 0

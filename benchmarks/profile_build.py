"""Where one dbt build's time went, from its own records: node-seconds by layer, the slowest nodes, the critical path.

    python -m benchmarks.profile_build <dbt target folder>

The target folder is the build's (``<warehouse folder>/.build/target`` of a night or a ``loyalty build``; the
benchmark's under ``benchmarks/.data/work-<customers>/``). It reads ``run_results.json`` (each node's execution
time, start and end) and ``manifest.json`` (each node's parents). The critical path is the chain that ends with the
node finishing last, each step back to the parent that finished last: the build cannot end sooner than that chain
runs, however many threads it has. Nothing is timed here; the figures are dbt's.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

LAYERS = ("base", "stg", "int")  # model name prefixes; any other model is a mart (marts/, audit/)


def layer(unique_id: str) -> str:
    """The group a node's time is counted in: the model's layer, or the kind of test."""
    kind, name = unique_id.split(".")[0], unique_id.rsplit(".", 1)[-1]
    if kind == "model":
        prefix = name.split("_", 1)[0]
        return prefix if prefix in LAYERS else "marts"
    if kind == "unit_test":
        return "unit tests"
    if kind == "test":
        return "data tests"
    return kind


def _execute_span(result: dict) -> tuple[datetime, datetime] | None:
    for timing in result.get("timing", []):
        if timing.get("name") == "execute" and timing.get("started_at") and timing.get("completed_at"):
            return datetime.fromisoformat(timing["started_at"]), datetime.fromisoformat(timing["completed_at"])
    return None


def profile(run_results: dict, manifest: dict, top: int = 10) -> dict:
    """The profile of one build: elapsed, node-seconds in all and by layer, the ``top`` slowest nodes, and the
    critical path (unique id, start and end in seconds after the first node started), first node first."""
    results = run_results["results"]
    by_layer: dict[str, float] = defaultdict(float)
    for result in results:
        by_layer[layer(result["unique_id"])] += result["execution_time"]
    spans = {r["unique_id"]: span for r in results if (span := _execute_span(r))}
    path: list[dict] = []
    if spans:
        origin = min(start for start, _ in spans.values())
        parents = {uid: node.get("depends_on", {}).get("nodes", []) for uid, node in manifest.get("nodes", {}).items()}
        node = max(spans, key=lambda uid: spans[uid][1])
        while node is not None:
            start, end = spans[node]
            seconds = (start - origin).total_seconds(), (end - origin).total_seconds()
            path.append({"node": node, "start": seconds[0], "end": seconds[1]})
            timed = [p for p in parents.get(node, []) if p in spans]
            node = max(timed, key=lambda uid: spans[uid][1]) if timed else None
        path.reverse()
    slowest = sorted(results, key=lambda r: -r["execution_time"])[:top]
    return {
        "elapsed_seconds": run_results.get("elapsed_time"),
        "node_seconds": sum(by_layer.values()),
        "by_layer": dict(sorted(by_layer.items(), key=lambda item: -item[1])),
        "slowest": [(r["unique_id"], r["execution_time"]) for r in slowest],
        "critical_path": path,
    }


def report(found: dict) -> str:
    """The profile as text tables."""
    lines = [f"dbt elapsed {found['elapsed_seconds'] or 0:.1f} s, {found['node_seconds']:.1f} node-seconds", ""]
    lines += ["| layer | node-seconds |", "|---|---:|"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in found["by_layer"].items()]
    lines += ["", "| slowest node | seconds |", "|---|---:|"]
    lines += [f"| {uid} | {seconds:.1f} |" for uid, seconds in found["slowest"]]
    lines += ["", "| critical path | start s | end s |", "|---|---:|---:|"]
    lines += [f"| {step['node']} | {step['start']:.1f} | {step['end']:.1f} |" for step in found["critical_path"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="dbt's target folder of the build (run_results.json, manifest.json)")
    parser.add_argument("--top", type=int, default=10, help="how many of the slowest nodes to list")
    args = parser.parse_args(argv)
    found = profile(
        json.loads((args.target / "run_results.json").read_text()),
        json.loads((args.target / "manifest.json").read_text()),
        args.top,
    )
    print(report(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

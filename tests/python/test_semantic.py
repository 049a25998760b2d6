"""The semantic layer's plumbing (loyalty.semantic): the night publishes its semantic manifest beside the
warehouse, ``loyalty metrics`` uses that one without parsing the project (and parses only for a warehouse
published without one, saying so), and a query's rows come sorted. On the real bundled build and real ``mf``."""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import PROJECT_DIR, query

from loyalty import config
from loyalty.publication import publish
from loyalty.report import NightReport
from loyalty.semantic import MANIFEST_FILE, manifest_catalogs, with_default_order
from loyalty.workspace import build_path

# `python -m loyalty` with an audit hook that reports every process it starts (``POPEN <argv as JSON>`` on stderr):
# what the command really ran, observed, not mocked
CHILD = """
import json, sys
def hook(event, args):
    if event == "subprocess.Popen":
        print("POPEN " + json.dumps([str(a) for a in args[1]]), file=sys.stderr, flush=True)
sys.addaudithook(hook)
from loyalty.cli import main
sys.exit(main(sys.argv[1:]))
"""


def metrics(warehouse: Path, *args: str, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess, list[list]]:
    """``loyalty metrics --warehouse <warehouse> <args>``: (the completed process, the argv of each process it
    started)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, "metrics", "--warehouse", str(warehouse), *args],
        cwd=cwd or PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    started = [json.loads(line[6:]) for line in result.stderr.splitlines() if line.startswith("POPEN ")]
    return result, started


def messages(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("POPEN ")]


def dbt_parses(started: list[list]) -> list[list]:
    return [argv for argv in started if Path(argv[0]).name == "dbt" and "parse" in argv]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def nps_by_month(warehouse: Path) -> dict[str, float]:
    rows = query(warehouse, "select month_start, nps from marts.nps_monthly where responses > 0 order by 1")
    return {str(month): nps for month, nps in rows}


def assert_nps_by_month(rows: list[dict[str, str]], warehouse: Path) -> None:
    expected = nps_by_month(warehouse)
    assert len(expected) >= 30
    assert [row["metric_time__month"][:10] for row in rows] == list(expected)  # every month, in order
    for row in rows:
        assert float(row["nps"]) == pytest.approx(expected[row["metric_time__month"][:10]], abs=1e-9)


def test_the_night_publishes_its_semantic_manifest_beside_the_warehouse(bundled_warehouse) -> None:  # noqa: ANN001
    warehouse, result = bundled_warehouse
    assert result.returncode == 0, result.stderr[-3000:]
    published = warehouse.parent / MANIFEST_FILE
    text = published.read_text()
    # the build's own manifest (dbt's target of the build copy), for this file's catalog
    assert text == (build_path(warehouse).parent / "target" / MANIFEST_FILE).read_text()
    assert manifest_catalogs(text) == {warehouse.stem} == {"loyalty"}
    defined = yaml.safe_load((PROJECT_DIR / "models" / "semantic" / "_metrics.yml").read_text())["metrics"]
    assert {m["name"] for m in json.loads(text)["metrics"]} == {m["name"] for m in defined}
    assert not list(warehouse.parent.glob("*.partial"))


def test_a_query_uses_the_published_manifest_without_parsing_the_project(bundled_warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    warehouse, _ = bundled_warehouse
    out = tmp_path / "nps.csv"
    for _ in range(2):
        result, started = metrics(
            warehouse, "query", "--metrics", "nps", "--group-by", "metric_time__month", "--csv", str(out)
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert dbt_parses(started) == [] and messages(result) == []
        assert_nps_by_month(read_csv(out), warehouse)


def test_mf_reads_the_manifest_beside_the_warehouse_not_the_projects_target(bundled_warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    """A metric that exists only in the published manifest (a copy of ``orders`` added to it) is listed and
    queried: mf reads that file."""
    warehouse, _ = bundled_warehouse
    copied = tmp_path / "loyalty.duckdb"
    shutil.copyfile(warehouse, copied)
    manifest = json.loads((warehouse.parent / MANIFEST_FILE).read_text())
    extra = copy.deepcopy(next(m for m in manifest["metrics"] if m["name"] == "orders"))
    extra["name"] = "orders_in_the_published_manifest_only"
    manifest["metrics"].append(extra)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))

    listed, started = metrics(copied, "list", "metrics")
    assert listed.returncode == 0, listed.stdout[-3000:]
    assert "orders_in_the_published_manifest_only" in listed.stdout and dbt_parses(started) == []
    out = tmp_path / "orders.csv"
    result, _ = metrics(copied, "query", "--metrics", f"orders,{extra['name']}", "--csv", str(out))
    assert result.returncode == 0, result.stdout[-3000:]
    [row] = read_csv(out)
    (orders,) = query(copied, "select sum(orders) from marts.loyalty_kpis_monthly")[0]
    assert int(row["orders"]) == int(row[extra["name"]]) == orders > 0


def test_a_warehouse_published_without_a_manifest_is_parsed_for_with_a_note(bundled_warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    warehouse, _ = bundled_warehouse
    older = tmp_path / "older" / "loyalty.duckdb"  # as an older night published it: no manifest beside it
    older.parent.mkdir()
    shutil.copyfile(warehouse, older)
    out = tmp_path / "nps.csv"
    result, started = metrics(older, "query", "--metrics", "nps", "--group-by", "metric_time__month", "--csv", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert messages(result) == [
        f"note: no semantic manifest was published with {older} (by a night before they were): parsing the project"
        " for it, slow, on every call until a night publishes one"
    ]
    [parse] = dbt_parses(started)
    assert str(PROJECT_DIR / "target") not in parse  # a temporary target, never the project's shared one
    assert_nps_by_month(read_csv(out), older)
    assert not (older.parent / MANIFEST_FILE).exists()  # a query writes nothing beside the warehouse


def test_a_renamed_warehouse_is_not_queried_with_a_manifest_for_another_catalog(
    bundled_warehouse, tmp_path: Path
) -> None:  # noqa: ANN001
    warehouse, _ = bundled_warehouse
    renamed = tmp_path / "shop.duckdb"  # its catalog is `shop`; the manifest beside it names `loyalty`
    shutil.copyfile(warehouse, renamed)
    shutil.copyfile(warehouse.parent / MANIFEST_FILE, tmp_path / MANIFEST_FILE)
    out = tmp_path / "nps.csv"
    result, started = metrics(
        renamed, "query", "--metrics", "nps", "--group-by", "metric_time__month", "--csv", str(out)
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [note] = messages(result)
    assert note.startswith(f"note: {tmp_path / MANIFEST_FILE} names catalog loyalty, not shop (was the file renamed?)")
    assert len(dbt_parses(started)) == 1
    assert_nps_by_month(read_csv(out), renamed)


def test_query_rows_are_sorted_by_time_unless_the_command_orders_them(bundled_warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    warehouse, _ = bundled_warehouse
    months = list(nps_by_month(warehouse))
    out = tmp_path / "out.csv"

    def rows(*args: str) -> list[dict[str, str]]:
        result, _ = metrics(warehouse, "query", *args, "--csv", str(out))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return read_csv(out)

    descending = rows("--metrics", "nps", "--group-by", "metric_time__month", "--order", "-metric_time__month")
    assert [r["metric_time__month"][:10] for r in descending] == months[::-1]
    # two group-by items: time first whatever order they were given in, then the other
    both = rows("--metrics", "responses", "--group-by=response__nps_category,metric_time__quarter")
    keys = [(r["metric_time__quarter"], r["response__nps_category"]) for r in both]
    assert keys == sorted(keys) and len({k[1] for k in keys}) == 3 and len(keys) > 3 * 10
    totals: dict[str, int] = {}
    for r in both:
        totals[r["metric_time__quarter"][:10]] = totals.get(r["metric_time__quarter"][:10], 0) + int(r["responses"])
    expected = query(
        warehouse,
        "select date_trunc('quarter', month_start), sum(responses) from marts.nps_monthly group by 1"
        " having sum(responses) > 0",
    )
    assert totals == {str(quarter)[:10]: int(n) for quarter, n in expected}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["query", "--metrics", "nps"], ["query", "--metrics", "nps"]),
        (
            ["query", "--metrics", "nps", "--group-by", "metric_time__month"],
            ["query", "--metrics", "nps", "--group-by", "metric_time__month", "--order", "metric_time__month"],
        ),
        (
            ["query", "--group-by=customer__segment, metric_time__week", "--metrics", "orders"],
            ["query", "--group-by=customer__segment, metric_time__week", "--metrics", "orders"]
            + ["--order", "metric_time__week,customer__segment"],
        ),
        (
            ["query", "--metrics", "nps", "--group-by", "metric_time__month", "--order", "-nps"],
            ["query", "--metrics", "nps", "--group-by", "metric_time__month", "--order", "-nps"],
        ),
        (
            ["query", "--group-by", "metric_time", "--order=-metric_time", "--metrics", "nps"],
            ["query", "--group-by", "metric_time", "--order=-metric_time", "--metrics", "nps"],
        ),
        (["query", "--saved-query", "monthly"], ["query", "--saved-query", "monthly"]),
        (["list", "dimensions", "--metrics", "nps"], ["list", "dimensions", "--metrics", "nps"]),
    ],
)
def test_default_order(given: list[str], expected: list[str]) -> None:
    assert with_default_order(given) == expected


def test_publish_never_publishes_a_stale_manifest(tmp_path: Path) -> None:
    """A manifest in the build's target older than the night (the night's dbt wrote none) is not published, and
    the last night's is removed with the swap; tonight's is renamed into place."""
    warehouse = tmp_path / "loyalty.duckdb"
    settings = config.resolve(warehouse=str(warehouse))
    target = build_path(warehouse).parent / "target"
    target.mkdir(parents=True)
    (warehouse.parent / MANIFEST_FILE).write_text('{"last": "night"}')
    (target / MANIFEST_FILE).write_text('{"from": "an earlier night"}')
    for fresh in (False, True):
        config_ = {"storage_compatibility_version": settings.storage_compatibility_version}  # as dbt creates it
        duckdb.connect(str(build_path(warehouse)), config=config_).close()
        started = datetime.now(UTC).isoformat(timespec="seconds")
        if fresh:  # written by tonight's dbt
            (target / MANIFEST_FILE).write_text('{"tonight": true}')
        else:
            os.utime(target / MANIFEST_FILE, (0, 0))
        report = NightReport("published", str(warehouse), str(settings.raw_dir), "2026-10-31", started, started)
        publish(settings, None, report)
        assert warehouse.is_file() and not build_path(warehouse).exists()
        assert not list(tmp_path.glob("*.partial"))
        if fresh:
            assert (warehouse.parent / MANIFEST_FILE).read_text() == '{"tonight": true}'
        else:
            assert not (warehouse.parent / MANIFEST_FILE).exists()

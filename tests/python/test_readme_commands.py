"""README's command lines, read from README.md when the tests run, so they keep up with its edits: every
``loyalty metrics ...`` command in its code blocks runs against a real published warehouse (the bundled build,
with the semantic manifest its night published) and its output is checked (exit 0, the rows in the order asked
for or the default one, values equal to a direct SQL query of the marts where one is known); every other
``loyalty <subcommand>`` command line is at least accepted by the CLI's parser."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, query, run_cli

from loyalty.cli import build_parser
from loyalty.semantic import MANIFEST_FILE, TIME_DIMENSION, with_default_order

README = PROJECT_DIR / "README.md"
FENCE = re.compile(r"^\s*(```|~~~)")
# the program: a path ending in bin/loyalty (.venv/bin/loyalty, /opt/loyalty/.venv/bin/loyalty), or a bare
# `loyalty` before one of the CLI's subcommands
PROGRAM = re.compile(r"(?:(?<=[\s=$])|^)(?P<path>[\w./-]*bin/)?loyalty\s+(?P<word>[\w-]+)")
SHELL_OPERATOR = re.compile(r"^[();<>|&]+$")


def _subcommands() -> set[str]:
    (commands,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return set(commands.choices)


@dataclass(frozen=True)
class Command:
    line_number: int
    line: str
    args: tuple[str, ...]  # after the program

    def __str__(self) -> str:
        return f"README.md:{self.line_number}: loyalty {shlex.join(self.args)}"


def _arguments(rest: str) -> list[str]:
    """The program's arguments on the rest of a line: up to a run of two or more spaces (an aligned comment, or the
    next column of a side-by-side block), a comment, or a shell operator (``>>``, ``&&``, ``|``, ``2>&1``)."""
    rest = re.split(r"\s{2,}", rest.strip())[0]
    lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    args: list[str] = []
    for token in lexer:
        if SHELL_OPERATOR.match(token):
            if args and args[-1].isdigit() and re.search(rf"\s{args[-1]}[<>]", rest):  # `2>&1`: 2 is the fd
                args.pop()
            break
        args.append(token)
    return args


def readme_commands() -> list[Command]:
    """Every ``loyalty`` command line in README's fenced code blocks."""
    subcommands = _subcommands()
    commands: list[Command] = []
    in_block = False
    for number, line in enumerate(README.read_text().splitlines(), start=1):
        if FENCE.match(line):
            in_block = not in_block
            continue
        if not in_block:
            continue
        for match in PROGRAM.finditer(line):
            if match["path"] is None and match["word"] not in subcommands:
                continue  # the word `loyalty` in some text
            commands.append(Command(number, line.strip(), tuple(_arguments(line[match.start("word") :]))))
    return commands


COMMANDS = readme_commands()
METRICS_COMMANDS = [c for c in COMMANDS if c.args[:1] == ("metrics",)]


def test_readme_shows_the_metrics_commands_this_test_runs() -> None:
    """The extraction finds README's commands (a test of the parsing above, so the tests below cannot pass on
    nothing): queries grouped by time, the list of metrics, and the other subcommands' command lines."""
    assert any("query" in c.args and f"{TIME_DIMENSION}__month" in " ".join(c.args) for c in METRICS_COMMANDS)
    assert any(c.args[1:3] == ("list", "metrics") for c in METRICS_COMMANDS)
    assert {c.args[0] for c in COMMANDS} >= {"metrics", "build", "validate", "generate"}
    cron = next(c for c in COMMANDS if c.line.startswith("0 2 * * *"))
    assert cron.args == ("build", "--quiet")  # the redirection `>> logs/nightly.log 2>&1` is the shell's


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_every_readme_command_line_is_accepted_by_the_cli_parser(command: Command) -> None:
    try:
        args = build_parser().parse_args(list(command.args))
    except SystemExit as exc:
        if exc.code not in (0, None):  # --help exits 0
            pytest.fail(f"{command} is refused by the CLI's parser (exit {exc.code}): {command.line}")
        return
    assert args.command == command.args[0]


# ------------------------------------------------------------------------- running the metrics commands


def _table(stdout: str) -> tuple[list[str], list[list[str]]]:
    """mf's text table (a header, a line of dashes per column, the rows): (column names, rows of cells)."""
    lines = stdout.splitlines()
    dashes = next(i for i, line in enumerate(lines) if re.fullmatch(r"-+( +-+)*\s*", line))
    spans = [m.span() for m in re.finditer(r"-+", lines[dashes])]
    spans = [(start, spans[i + 1][0] if i + 1 < len(spans) else None) for i, (start, _) in enumerate(spans)]
    header = [lines[dashes - 1][a:b].strip() for a, b in spans]
    rows = []
    for line in lines[dashes + 1 :]:
        if not line.strip():
            break
        rows.append([line[a:b].strip() for a, b in spans])
    return header, rows


def _option(args: list[str], name: str) -> str | None:
    value = None
    for position, arg in enumerate(args):
        if arg == name and position + 1 < len(args):
            value = args[position + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def _items(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _column(header: list[str], name: str) -> int:
    """The column of a group-by or order item (``customer__cohort_month`` comes out as ``..._month__month``)."""
    return next(i for i, column in enumerate(header) if column == name or column.startswith(name + "__"))


def _key(cell: str) -> tuple[int, float | str]:
    try:
        return (0, float(cell))
    except ValueError:
        return (1, cell)


def _reference(warehouse: Path, metric: str, group_by: str) -> dict[str, float] | None:
    """A metric by one group-by item, straight from the marts (None where this test knows no such query)."""
    grain = group_by.removeprefix(f"{TIME_DIMENSION}__")
    nps_counts = {"responses", "promoters", "detractors"}
    if grain in ("month", "quarter", "year") and metric in nps_counts | {"nps"}:
        value = "100.0 * (sum(promoters) - sum(detractors)) / sum(responses)" if metric == "nps" else f"sum({metric})"
        sql = (
            f"select date_trunc('{grain}', month_start), {value} from marts.nps_monthly group by 1"
            " having sum(responses) > 0"
        )
    elif group_by == "customer__cohort_month" and metric in ("net_revenue", "customers"):
        value = "sum(net_revenue)" if metric == "net_revenue" else "any_value(cohort_size)"
        sql = f"select cohort_month, {value} from marts.repurchase_cohorts group by 1"
    else:
        return None
    return {str(key)[:10]: float(number) for key, number in query(warehouse, sql)}


def _check_query(command: Command, warehouse: Path, stdout: str) -> None:
    mf_args = list(command.args[1:])
    header, rows = _table(stdout)
    metrics, group_by = _items(_option(mf_args, "--metrics")), _items(_option(mf_args, "--group-by"))
    assert rows, f"{command}: no rows"
    assert len(header) == len(group_by) + len(metrics), header
    for metric in metrics:
        assert all(_key(row[header.index(metric)])[0] == 0 for row in rows), f"{command}: {metric} not numbers"
    limit = _option(mf_args, "--limit")
    if limit is not None:
        assert len(rows) == int(limit)
    # the rows in the order asked for, or in the default one (loyalty.semantic.with_default_order)
    order = [
        (item.lstrip("-"), item.startswith("-")) for item in _items(_option(with_default_order(mf_args), "--order"))
    ]
    columns = [(header.index(name) if name in metrics else _column(header, name), desc) for name, desc in order]
    for before, after in zip(rows, rows[1:], strict=False):
        for column, descending in columns:
            if before[column] != after[column]:
                assert (_key(before[column]) > _key(after[column])) == descending, f"{command}: {before} {after}"
                break
    times = [item for item in group_by if item == TIME_DIMENSION or item.startswith(f"{TIME_DIMENSION}__")]
    if times and _option(mf_args, "--order") is None:  # sorted by time first
        assert columns[0][0] == _column(header, times[0])
    # the values, where the marts answer the same question directly
    filtered = any(_option(mf_args, o) is not None for o in ("--where", "--start-time", "--end-time", "--saved-query"))
    if len(group_by) == 1 and not filtered:
        for metric in metrics:
            expected = _reference(warehouse, metric, group_by[0])
            if expected is None:
                continue
            got = {row[_column(header, group_by[0])][:10]: float(row[header.index(metric)]) for row in rows}
            if limit is None:
                assert got.keys() == expected.keys(), command
            for key, value in got.items():  # mf prints 6 significant digits
                assert value == pytest.approx(expected[key], rel=1e-5, abs=1e-9), f"{command}: {metric} {key}"


def _check_list(command: Command, warehouse: Path, stdout: str) -> None:
    manifest = json.loads((warehouse.parent / MANIFEST_FILE).read_text())
    listed = [m.group(1) for m in re.finditer(r"^• ([\w]+)", stdout, re.MULTILINE)]
    assert listed, f"{command}: nothing listed"
    what = command.args[2] if len(command.args) > 2 else ""
    entities = {e["name"] for model in manifest["semantic_models"] for e in model["entities"]}
    dimensions = {d["name"] for model in manifest["semantic_models"] for d in model["dimensions"]}
    if what == "metrics":
        search = _option(list(command.args), "--search")
        names = {m["name"] for m in manifest["metrics"] if search is None or search.lower() in m["name"].lower()}
        assert sorted(listed) == sorted(names), command
    elif what == "dimensions":
        for name in listed:
            *path, dimension = name.split("__")
            assert name == TIME_DIMENSION or (dimension in dimensions and set(path) <= entities), f"{command}: {name}"
    elif what == "entities":
        assert set(listed) <= entities, command


@pytest.mark.parametrize("command", METRICS_COMMANDS, ids=str)
def test_every_readme_metrics_command_runs_on_a_published_warehouse(
    command: Command,
    bundled_warehouse: tuple[Path, subprocess.CompletedProcess],
    tmp_path: Path,
) -> None:
    warehouse, built = bundled_warehouse
    assert built.returncode == 0, built.stderr[-3000:]
    assert (warehouse.parent / MANIFEST_FILE).is_file()  # published by the night
    result = run_cli(*command.args, cwd=tmp_path, env={"LOYALTY_WAREHOUSE": str(warehouse)})
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "note:" not in result.stderr  # the published manifest, no parse
    if "query" in command.args[1:2]:
        _check_query(command, warehouse, result.stdout)
    elif command.args[1:2] == ("list",):
        _check_list(command, warehouse, result.stdout)
    else:
        assert result.stdout.strip(), command

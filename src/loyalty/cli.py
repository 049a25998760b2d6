"""``loyalty`` command line: ``run`` runs the nightly Prefect flow (build, validate, document, publish, report),
``build`` does the same without Prefect, ``serve`` schedules the flow on a Prefect server, ``validate`` runs the
validation gate on a warehouse on demand, ``check`` checks the landing data, ``generate`` writes synthetic raw
data, ``metrics`` queries the semantic layer (MetricFlow)."""

from __future__ import annotations

import argparse
import logging
import sys

from loyalty import config
from loyalty.errors import LoyaltyError


def _add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw-dir", help="folder with the raw files (LOYALTY_RAW_DIR; default: bundled data)")
    parser.add_argument(
        "--warehouse", help="published DuckDB file (LOYALTY_WAREHOUSE; default: warehouse/loyalty.duckdb)"
    )
    parser.add_argument("--as-of", help="as-of date YYYY-MM-DD (LOYALTY_AS_OF; default: today, or the data's last day)")
    parser.add_argument("--timezone", help="reporting timezone (LOYALTY_TIMEZONE; default: UTC)")
    parser.add_argument("--currency", help="reporting currency (LOYALTY_CURRENCY; default: USD)")
    parser.add_argument("--threads", help="dbt/DuckDB threads (LOYALTY_THREADS; default: CPU count)")
    parser.add_argument("--memory-limit", help="DuckDB memory limit, e.g. 4GB (LOYALTY_MEMORY_LIMIT)")


def _add_engine_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=config.ENGINES,
        help="the engine dbt builds on (LOYALTY_ENGINE; default duckdb): spark builds on a local Spark session,"
        " its tables in LOYALTY_SPARK_WAREHOUSE (default: spark-warehouse beside the warehouse; docs/scale-out.md)",
    )


def _add_threshold_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("validation thresholds (the GX checkpoint)")
    group.add_argument(
        "--max-quarantine-rate",
        help="highest share of quarantined raw rows per entity (LOYALTY_MAX_QUARANTINE_RATE; default 0.01)",
    )
    group.add_argument(
        "--freshness-days",
        help="most days between the latest order and the as-of date (LOYALTY_FRESHNESS_DAYS; default 2)",
    )
    group.add_argument(
        "--min-night-volume",
        help="least orders on the as-of date / trailing 28-day daily mean (LOYALTY_MIN_NIGHT_VOLUME; default 0.5)",
    )
    group.add_argument(
        "--max-row-drop",
        help="largest drop of a mart's rows against the published warehouse (LOYALTY_MAX_ROW_DROP; default 0.05)",
    )


def _thresholds(args: argparse.Namespace) -> config.Thresholds | None:
    if not hasattr(args, "max_quarantine_rate"):
        return None
    return config.resolve_thresholds(
        max_quarantine_rate=args.max_quarantine_rate,
        freshness_days=args.freshness_days,
        min_night_volume=args.min_night_volume,
        max_row_drop=args.max_row_drop,
    )


def _settings(args: argparse.Namespace, *, writing: bool = False) -> config.Settings:
    """Every setting of the command, checked before anything starts (``writing``: it builds the warehouse)."""
    return config.resolve(
        raw_dir=getattr(args, "raw_dir", None),
        warehouse=args.warehouse,
        as_of=getattr(args, "as_of", None),
        timezone=getattr(args, "timezone", None),
        currency=getattr(args, "currency", None),
        threads=args.threads,
        memory_limit=args.memory_limit,
        thresholds=_thresholds(args),
        engine=getattr(args, "engine", None),
        writing=writing,
    )


def _export_settings(settings: config.Settings, *, as_of: bool = True) -> None:
    """Hand the checked settings to the flow, which resolves its settings from LOYALTY_* like everything else
    (a served flow takes each night's own as-of date, so ``as_of=False`` leaves it out)."""
    import os

    t = settings.thresholds
    if as_of:
        os.environ["LOYALTY_AS_OF"] = settings.as_of.isoformat()
    if settings.spark_warehouse is not None:
        os.environ["LOYALTY_SPARK_WAREHOUSE"] = str(settings.spark_warehouse)
    os.environ.update(
        {
            "LOYALTY_RAW_DIR": str(settings.raw_dir),
            "LOYALTY_WAREHOUSE": str(settings.warehouse),
            "LOYALTY_TIMEZONE": settings.timezone,
            "LOYALTY_CURRENCY": settings.currency,
            "LOYALTY_THREADS": str(settings.threads),
            "LOYALTY_MEMORY_LIMIT": settings.memory_limit,
            "LOYALTY_STORAGE_COMPATIBILITY_VERSION": settings.storage_compatibility_version,
            "LOYALTY_ENGINE": settings.engine,
            "LOYALTY_MAX_QUARANTINE_RATE": str(t.max_quarantine_rate),
            "LOYALTY_FRESHNESS_DAYS": str(t.freshness_days),
            "LOYALTY_MIN_NIGHT_VOLUME": str(t.min_night_volume),
            "LOYALTY_MAX_ROW_DROP": str(t.max_row_drop),
        }
    )


def _preflight(settings: config.Settings) -> None:
    """The raw-data contract, checked before Prefect, dbt or GX start: a missing file or column is one line in a
    second or two, not a flow run. The night's own check (its plan) reuses what this one read, file by file, as
    long as the file is unchanged (``loyalty.landing``); a served flow checks on its own each night."""
    from loyalty.landing import check_landing

    check_landing(settings.raw_dir)
    if settings.engine == "spark":
        from loyalty.spark_engine import check_spark_warehouse, ensure_installed

        check_spark_warehouse(settings)
        ensure_installed()


class _ExpectedErrorLine(logging.Filter):
    """On Prefect's terminal handler: a record of an expected error (LoyaltyError, OSError) keeps its one line and
    loses its traceback; the CLI then prints the ``error:`` line. Prefect's API handler, which sees the record
    first (it is on the flow and task run loggers, the terminal handler on the root logger), keeps the detail."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], LoyaltyError | OSError):
            record.exc_info = record.exc_text = None
        return True


def _no_tracebacks_on_the_terminal() -> None:
    """Install ``_ExpectedErrorLine`` on the terminal handlers Prefect configured (call after importing Prefect)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, _ExpectedErrorLine) for f in handler.filters
        ):
            handler.addFilter(_ExpectedErrorLine())


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args, writing=True)
    config.resolve_flow_settings()  # the flow reads them when the night starts: checked here first, with the others
    # an interactive run says at once what is wrong; the flow itself retries (files may still be arriving)
    _preflight(settings)
    from loyalty.orchestration import EarlyServer, load_flow_module

    # Prefect's temporary API server starts now (after the checks: a bad setting or file starts nothing), beside
    # the import of Prefect and the flow
    server = EarlyServer().start()
    from loyalty.report import BuildResult, format_summary, summarise
    from loyalty.validation import ValidationResult

    _export_settings(settings)
    flow = load_flow_module().loyalty_nightly
    _no_tracebacks_on_the_terminal()
    server.adopt()
    summary = flow(
        raw_dir=str(settings.raw_dir),
        warehouse=str(settings.warehouse),
        as_of=settings.as_of.isoformat(),
        full_refresh=args.full_refresh,
    )
    counts, reconciliation = summarise(settings.warehouse)
    validation = ValidationResult.from_dict(summary["validation"]) if summary.get("validation") else None
    result = BuildResult(settings.warehouse, None, counts, reconciliation, validation)  # type: ignore[arg-type]
    print(format_summary(settings, result, summary))
    return 0


def _build(args: argparse.Namespace) -> int:
    settings = _settings(args, writing=True)
    _preflight(settings)
    from loyalty.nightly import run_night
    from loyalty.report import format_summary

    result, report, _ = run_night(settings, quiet=args.quiet, full_refresh=args.full_refresh, docs=not args.no_docs)
    print(format_summary(settings, result, report.to_dict()))
    return 0


def _prefect_server_answers(api_url: str, start_one: str) -> None:
    """One line, not an HTTP client's traceback, when no Prefect server answers at ``api_url``."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=10) as response:
            if response.status == 200:
                return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LoyaltyError(f"no Prefect server answers at PREFECT_API_URL={api_url} ({reason}): {start_one}") from None
    raise LoyaltyError(f"PREFECT_API_URL={api_url} is not a Prefect API (its /health did not answer 200): {start_one}")


def _check_cron(cron: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron, timezone="UTC")
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise LoyaltyError(f"--cron: {cron!r} is not a cron schedule (five fields, e.g. '0 2 * * *')") from exc


def _serve(args: argparse.Namespace) -> int:
    import os

    from loyalty.orchestration import load_flow_module

    settings = _settings(args, writing=True)
    config.resolve_flow_settings()  # each served night reads them again when it starts
    _preflight(settings)  # tonight's files, before the server is asked anything; each night checks its own
    _export_settings(settings, as_of=False)
    start_one = (
        "start one with `make prefect-server` (or `.venv/bin/prefect server start`) and set"
        " PREFECT_API_URL=http://127.0.0.1:4200/api (README, Nightly runs)"
    )
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        raise LoyaltyError(f"loyalty serve needs a Prefect server: {start_one}")
    _prefect_server_answers(api_url, start_one)
    module = load_flow_module()  # (sets Prefect's environment before Prefect is imported)
    _check_cron(args.cron)
    print(f"serving loyalty-nightly on the cron schedule {args.cron!r} (UTC); Ctrl-C stops")
    module.loyalty_nightly.serve(
        name="loyalty-nightly",
        cron=args.cron,
        parameters={"raw_dir": str(settings.raw_dir), "warehouse": str(settings.warehouse)},
    )
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from loyalty.validation import ValidationFailed, output_dir_for, validate

    settings = _settings(args)
    database = Path(args.database).expanduser().resolve() if args.database else settings.warehouse
    # Another file (a build copy) is compared with the published warehouse; the published one with nothing.
    previous = settings.warehouse if database != settings.warehouse and settings.warehouse.is_file() else None
    result = validate(
        database,
        output_dir=Path(args.output).expanduser().resolve() if args.output else output_dir_for(settings.warehouse),
        previous=previous,
        thresholds=settings.thresholds,
        memory_limit=settings.memory_limit,
        threads=settings.threads,
    )
    if not result.passed:
        raise ValidationFailed(result)
    print(result.report())
    return 0


def _check(args: argparse.Namespace) -> int:
    from loyalty.landing import check_landing

    settings = _settings(args)
    landing = check_landing(settings.raw_dir)
    for warning in landing.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for name, landed in landing.files.items():
        print(f"{name:<20} {landed.path or '(absent)'}")
    print(f"ok: {settings.raw_dir} follows the raw-data contract")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from loyalty.generator import run_generate

    return run_generate(args)


def _split_nights(args: argparse.Namespace) -> int:
    from datetime import date
    from pathlib import Path

    from loyalty.batches import split_by_day

    settings = _settings(args)
    last_day = date.fromisoformat(args.last_day) if args.last_day else settings.as_of
    nights = split_by_day(settings.raw_dir, Path(args.out).expanduser().resolve(), last_day, args.days)
    for number, night in enumerate(nights):
        print(f"night {number}: {night}")
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from loyalty.semantic import run_metricflow

    mf_args = args.mf_args[1:] if args.mf_args[:1] == ["--"] else args.mf_args
    return run_metricflow(config.resolve(warehouse=args.warehouse), mf_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the nightly Prefect flow: build, validate, document, publish, report")
    _add_settings_arguments(run)
    _add_engine_argument(run)
    _add_threshold_arguments(run)
    run.add_argument("--full-refresh", action="store_true", help="rebuild everything instead of adding new batches")
    run.set_defaults(handler=_run)

    build = commands.add_parser(
        "build", help="the same night without Prefect (scripts, cron): build, validate, document, publish, report"
    )
    _add_settings_arguments(build)
    _add_engine_argument(build)
    _add_threshold_arguments(build)
    build.add_argument("--full-refresh", action="store_true", help="rebuild everything instead of adding new batches")
    build.add_argument("--no-docs", action="store_true", help="skip dbt docs generate")
    build.add_argument("--quiet", action="store_true", help="hide dbt's own output unless it fails")
    build.set_defaults(handler=_build)

    serve = commands.add_parser(
        "serve", help="serve the nightly flow on a cron schedule (needs a running Prefect server, see README)"
    )
    _add_settings_arguments(serve)
    _add_engine_argument(serve)
    _add_threshold_arguments(serve)
    serve.add_argument("--cron", default="0 2 * * *", help="cron schedule (default: 02:00 every night)")
    serve.set_defaults(handler=_serve)

    validate = commands.add_parser(
        "validate",
        help="run the GX checkpoint on the published warehouse (or --database); exit 2 if it fails",
    )
    validate.add_argument(
        "--warehouse", help="published DuckDB file (LOYALTY_WAREHOUSE; default: warehouse/loyalty.duckdb)"
    )
    validate.add_argument(
        "--database",
        help="validate this DuckDB file instead (e.g. a build copy); its marts are compared with the published one",
    )
    validate.add_argument("--output", help="folder for Data Docs and result.json (default: validation/ beside it)")
    validate.add_argument("--threads", help="DuckDB threads (LOYALTY_THREADS; default: CPU count)")
    validate.add_argument("--memory-limit", help="DuckDB memory limit, e.g. 4GB (LOYALTY_MEMORY_LIMIT)")
    _add_threshold_arguments(validate)
    validate.set_defaults(handler=_validate)

    check = commands.add_parser("check", help="check that the raw files follow the contract")
    _add_settings_arguments(check)
    check.set_defaults(handler=_check)

    split = commands.add_parser(
        "split-nights",
        help="split a raw folder into daily batches, as nightly extracts would land (to try incremental nights)",
    )
    _add_settings_arguments(split)
    split.add_argument("--out", required=True, help="a new folder for the batches and the nights' raw folders")
    split.add_argument("--days", type=int, default=3, help="daily batches before the last day (default 3)")
    split.add_argument("--last-day", help="the last day, YYYY-MM-DD (default: the as-of date)")
    split.set_defaults(handler=_split_nights)

    metrics = commands.add_parser(
        "metrics",
        help="query the semantic layer of the published warehouse (MetricFlow's mf, read-only)",
        description="Runs MetricFlow's `mf` with the given arguments against the published warehouse, read-only, "
        "with the semantic manifest published beside it. A query's rows are ordered by its group-by items (time "
        "first) unless it gives --order. Examples: loyalty metrics list metrics; "
        "loyalty metrics query --metrics nps --group-by metric_time__month",
    )
    metrics.add_argument(
        "--warehouse", help="published DuckDB file (LOYALTY_WAREHOUSE; default: warehouse/loyalty.duckdb)"
    )
    metrics.add_argument("mf_args", nargs=argparse.REMAINDER, help="arguments for mf (e.g. query --metrics nps ...)")
    metrics.set_defaults(handler=_metrics)

    generate = commands.add_parser("generate", help="write synthetic raw data (see README)")
    from loyalty.generator import add_generate_arguments

    add_generate_arguments(generate)
    generate.set_defaults(handler=_generate)
    return parser


def _release(error: BaseException) -> None:
    """Let go of the frames an expected error's traceback holds, and of what they hold. A flow run keeps its
    exception (in its state, in Prefect's objects) until the interpreter exits; the traceback's frames keep DuckDB
    connections of the step that raised alive (``with duckdb.connect() as con`` closes the connection, the frame
    still refers to it), and DuckDB 2.0's bindings then print dozens of "nanobind: leaked ..." lines at exit."""
    import gc

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    gc.collect()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for warning in config.unknown_variables():
        print(f"warning: {warning}", file=sys.stderr)
    try:
        return args.handler(args)
    except LoyaltyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        _release(exc)
        return 2
    except OSError as exc:  # the file system refused (a full disk, a permission): one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        _release(exc)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""One night: its steps, declared once in ``STEPS``, and the runner that takes them in order.

    lock -> plan (landing check; incremental or full) -> build copy -> dbt build -> GX checkpoint -> dbt docs
    -> report (read from the build copy, staged) -> publish (renames only: the warehouse, docs, report)

``loyalty build`` runs them with ``run_night``; the Prefect flow (``flows/loyalty_nightly.py``) runs the same list,
each step as a task (``Step.retry_on`` says which errors a retry may get past). Each step is a small function of
the ``Night``, which holds the settings, what earlier steps produced (the plan, the checkpoint's result, the staged
docs, the report) and the night's record keeping. The work is in the modules the steps call:

- ``loyalty.planning``: landing data ready? incremental or full (the build fingerprint, the loaded batches);
- ``loyalty.workspace``: the work folder beside the warehouse: build lock, build copy, clean-up, disk reserve;
- ``loyalty.dbt_runner``: dbt's command line and its run, streamed to the progress (``loyalty.progress``);
- ``loyalty.validation``: the Great Expectations checkpoint;
- ``loyalty.report``: the report (summary, headline KPIs, markdown, JSON) and the records of nights in ``runs/``;
- ``loyalty.publication``: the swap of the build copy for the published warehouse, with docs and report.

BI tools read the published file. The night works on a copy in ``.build/`` beside it (an incremental night starts
from a copy of the published file, a full one from nothing) and replaces the published file in one ``rename`` only
after dbt and the checkpoint passed: a failed or killed night leaves the last good warehouse in place. The next
night removes what a dead one left behind; the build lock is an OS lock, released when its process dies. Every
night that holds the lock keeps ``runs/<start>_running.json`` up to date with the step it is in (see
``loyalty.report``), so a night killed holding the lock is found and reported by the next one.

On the Spark engine (``Settings.engine``) the steps are the same: dbt builds tonight's Spark tables in a folder of
their own, the build copy is a DuckDB file of views over them, and publication also points the Spark warehouse
link at that folder (``loyalty.spark_engine``, docs/scale-out.md).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loyalty.config import Settings
from loyalty.dbt_runner import run_dbt
from loyalty.files import write_json_atomically
from loyalty.landing import discard_landing_files
from loyalty.planning import LandingNotReady, Plan, plan_night
from loyalty.progress import Progress
from loyalty.publication import publish
from loyalty.report import (
    RUNNING,
    BuildResult,
    NightReport,
    failure_report,
    model_warnings,
    published_report,
    record_killed_nights,
    record_path,
    summarise,
    write_report,
)
from loyalty.validation import ValidationFailed, ValidationResult, output_dir_for, validate
from loyalty.workspace import (
    NO_SPACE,
    BuildLocked,
    DiskFull,
    build_lock,
    build_path,
    clean_up_after_a_dead_night,
    dbt_target_dir,
    docs_path,
    free_build_space,
    free_space,
    landing_dir,
    prepare_build_copy,
    release_space,
    reserve_space,
    staged_docs_path,
)


def _print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _say_nothing(message: str) -> None:
    pass


@dataclass
class Night:
    """One night: its options, what its steps produced so far, and its record keeping (the steps' times, the
    running record ``runs/<start>_running.json`` once it holds the build lock, the final report)."""

    settings: Settings
    full_refresh: bool = False
    docs: bool = True
    quiet: bool = False
    settle_seconds: float = 0.0
    validate: bool = True  # False: no GX checkpoint (tests of other things only; the CLI and the flow always run it)
    dbt_tests: bool = True  # False: dbt builds the models only (the same)
    progress: Progress | None = None  # shows each step as it runs (loyalty.progress); None: nothing shown
    warn: Callable[[str], None] = _print_warning  # the night's warnings (Prefect: its run logger)
    info: Callable[[str], None] = _say_nothing  # what the plan and the checkpoint say (Prefect: its run logger)
    # what the steps produced
    plan: Plan | None = None
    validation: ValidationResult | None = None
    staged_docs: Path | None = None
    spark_tables: Path | None = None  # the Spark engine: the folder of tonight's Spark tables (loyalty.spark_engine)
    staged_report: NightReport | None = None  # the report of the night about to be published (step report)
    report: NightReport | None = None  # the final record, once written (published or failed)
    resources: ExitStack = field(default_factory=ExitStack)  # the build lock, held until the night ends
    # the record keeping
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    steps: dict[str, float] = field(default_factory=dict)
    current_step: str | None = None
    held_lock: bool = False  # begin() ran: the night holds (or held) the build lock and keeps a running record
    reported: bool = False  # its final record (published or failed) was written, or could not be
    killed_nights: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tonight(self) -> Plan:
        """Tonight's plan (step plan made it)."""
        assert self.plan is not None, "the night has no plan yet"
        return self.plan

    @property
    def started_at(self) -> str:
        return self.started.isoformat(timespec="seconds")

    def begin(self) -> list[dict[str, Any]]:
        """Called holding the build lock, after the clean-up: set disk space aside for the night's last record
        (``workspace.RESERVE_BYTES``: a night that fills the disk can still say how it ended), record the nights
        found killed, then write this night's running record. Returns the killed nights (their messages are
        warnings of this night). On a disk too full for the reserve the night stops here (DiskFull), before
        anything is recorded."""
        reserve_space(self.settings)
        self.killed_nights = record_killed_nights(self.settings, found_by=self.started_at)
        self.held_lock = True
        self.write_running_record()
        return self.killed_nights

    @property
    def mode(self) -> str | None:
        """Incremental or full (None before the plan)."""
        return self.plan.mode if self.plan else None

    @property
    def mode_reasons(self) -> list[str]:
        return list(self.plan.reasons) if self.plan else []

    def write_running_record(self) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        record = NightReport.of_night(
            self.settings,
            self.started_at,
            RUNNING,
            finished_at=None,
            mode=self.mode,
            mode_reasons=self.mode_reasons,
            steps_seconds=self.rounded_steps(),
            step=self.current_step,
            updated_at=now,
            pid=os.getpid(),
            killed_nights=self.killed_nights,
        )
        write_json_atomically(record_path(self.settings, self.started_at, RUNNING), record.to_dict())

    def rounded_steps(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.steps.items()}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step, with the running record saying the night is in it (and the progress showing it); a full
        disk becomes one DiskFull line."""
        self.current_step = name
        began = time.perf_counter()
        with self.progress.in_step(name) if self.progress else nullcontext():
            try:
                if self.held_lock and not self.reported:
                    self.write_running_record()
                yield
            except OSError as exc:
                if exc.errno not in NO_SPACE:
                    raise
                where = Path(exc.filename) if exc.filename else build_path(self.settings.warehouse)
                raise DiskFull(
                    f"no space left on device during step {name} (writing {where}; {free_space(where)}):"
                    f" nothing was published, {self.settings.warehouse} is unchanged"
                ) from exc
        self.steps[name] = time.perf_counter() - began
        self.current_step = None
        if self.report is not None:  # published during this step: its report gets the step's time too (in memory)
            self.report.steps_seconds = self.rounded_steps()

    def fail(self, error: BaseException) -> NightReport | None:
        """Write the failure record (``run_summary.json`` only if the night held the lock: one locked out is not
        tonight's night) in place of the running record; call it before letting go of the lock. Ctrl-C and
        SystemExit write nothing: the running record stays and the next night records the night as killed."""
        if self.reported or isinstance(error, KeyboardInterrupt | SystemExit):
            return None
        report = failure_report(self.settings, self.started, self.current_step, error)
        report.mode, report.mode_reasons = self.mode, self.mode_reasons
        report.steps_seconds = self.rounded_steps()
        report.killed_nights = self.killed_nights
        self.reported, self.report = True, report
        # on a full disk, room for the record: the space set aside at the start, then the failed build copy (only
        # a night that held the lock has anything of its own to delete)
        rooms = (release_space, free_build_space) if self.held_lock else ()
        for attempt, make_room in enumerate((None, *rooms)):
            if make_room is not None:
                make_room(self.settings)
            try:
                write_report(self.settings, report, latest=self.held_lock)
                break
            except OSError as exc:
                if exc.errno not in NO_SPACE or attempt == len(rooms):
                    print(f"warning: the failure record could not be written ({exc})", file=sys.stderr)
                    break
        if self.held_lock:
            release_space(self.settings)
        return report


# ------------------------------------------------------------------------------------------------ the steps


def take_lock(night: Night) -> None:
    """The build lock (held until the night ends), the clean-up after a dead night, then the night's running
    record; the nights found killed are warnings."""
    night.resources.enter_context(build_lock(night.settings.warehouse))
    clean_up_after_a_dead_night(night.settings)
    if night.settings.engine == "spark":
        from loyalty.spark_engine import check_spark_warehouse, remove_unpublished_nights

        check_spark_warehouse(night.settings)
        remove_unpublished_nights(night.settings)  # a failed or killed Spark night's tables
    for killed in night.begin():
        night.warn(killed["message"])


def plan(night: Night) -> Plan:
    """Check the landing data and decide whether tonight can be incremental (``loyalty.planning``)."""
    planned = plan_night(night.settings, full_refresh=night.full_refresh, settle_seconds=night.settle_seconds)
    night.plan = planned
    for warning in planned.landing.warnings:
        night.warn(warning)
    night.info(planned.describe())
    return planned


def copy_published_warehouse(night: Night) -> None:
    """The build copy: the published warehouse for an incremental night, nothing for a full one."""
    prepare_build_copy(night.settings, night.tonight.incremental)


def night_dbt_vars(planned: Plan) -> dict[str, object]:
    """The night's own dbt values (on top of the settings' and the raw sources), the same for the build and the docs.
    They change every night, so ``dbt_runner`` passes them in dbt's environment (``NIGHT_VALUES``), not as --vars,
    which would make dbt parse the whole project again: a night keeps dbt's saved parse of the night before, and the
    docs step that of the build."""
    previous = {"previous_as_of": planned.previous_as_of} if planned.incremental and planned.previous_as_of else {}
    return {"build_mode": planned.mode, "build_fingerprint": planned.fingerprint, **previous}


# dbt's unit tests prove SQL logic that does not change from night to night: `make test` runs them once
# (tests/python/test_dbt_unit_tests.py), the night does not
NIGHTLY_EXCLUDE = ("test_type:unit",)


def dbt_build(night: Night) -> None:
    """``dbt build``: every model, seed and dbt data test; dbt's unit tests run in the test suite instead
    (``NIGHTLY_EXCLUDE``). ``Night.dbt_tests=False`` builds the models only: for tests of other things, which would
    otherwise spend most of their time in dbt's own tests."""
    settings, planned = night.settings, night.tonight
    excluded = NIGHTLY_EXCLUDE if night.dbt_tests else (*NIGHTLY_EXCLUDE, "test_type:data")
    if settings.engine == "spark":
        from loyalty.spark_engine import night_tables_dir

        night.spark_tables = night_tables_dir(settings, night.started)
    try:
        run_dbt(
            settings,
            planned.landing,
            "build",
            "--exclude",
            *excluded,
            quiet=night.quiet,
            only_new=planned.incremental,
            extra_vars=night_dbt_vars(planned),
            spark_tables=night.spark_tables,
        )
    finally:
        # read by the build, now in the warehouse (or not needed): no copy of raw records stays beside it
        discard_landing_files(landing_dir(settings.warehouse))
    if night.spark_tables is not None:
        from loyalty.spark_engine import write_serving_file

        # the build copy of a Spark night: views over its tables, read by the checkpoint, the report and BI
        write_serving_file(night.spark_tables, build_path(settings.warehouse), settings.storage_compatibility_version)


def check_build_copy(night: Night) -> ValidationResult:
    """The GX checkpoint on the build copy, compared with the published warehouse, its Data Docs and
    ``result.json`` in ``validation/`` beside the published warehouse; raises ValidationFailed (a failed
    expectation is not retried)."""
    settings = night.settings
    target = build_path(settings.warehouse)
    validation = validate(
        target,
        output_dir=output_dir_for(settings.warehouse),
        previous=settings.warehouse if settings.warehouse.is_file() else None,
        thresholds=settings.thresholds,
        memory_limit=settings.memory_limit,
        threads=settings.threads,
    )
    if not validation.passed:
        kept = f"{settings.warehouse} is unchanged" if settings.warehouse.is_file() else "nothing was published"
        raise ValidationFailed(validation, note=f"not published: {kept}; the build copy is {target}")
    night.validation = validation
    night.info(validation.headline())
    return validation


def generate_docs(night: Night) -> Path:
    """``dbt docs generate --static`` on the build copy: one self-contained HTML file, staged in the work folder
    and published with the warehouse."""
    settings, planned = night.settings, night.tonight
    # --no-compile: the build just compiled every node into the same target folder; the build's own vars: dbt
    # reuses the build's parse (partial parsing) instead of parsing the project again
    run_dbt(
        settings,
        planned.landing,
        "docs",
        "generate",
        "--static",
        "--no-compile",
        quiet=True,
        only_new=planned.incremental,
        extra_vars=night_dbt_vars(planned),
        spark_tables=night.spark_tables,
    )
    target = dbt_target_dir(settings.warehouse)
    if night.spark_tables is not None:
        from loyalty.spark_engine import spark_target_dir

        target = spark_target_dir(settings)
    staged = staged_docs_path(settings.warehouse)
    shutil.copyfile(target / "static_index.html", staged)
    night.staged_docs = staged
    return staged


def write_night_report(night: Night) -> NightReport:
    """The night's report, read from the build copy: it is published with the warehouse."""
    settings = night.settings
    report = published_report(
        settings,
        night.tonight,
        night.validation,
        night.started,
        night.steps,
        database=build_path(settings.warehouse),
        docs=docs_path(settings.warehouse) if night.staged_docs is not None else None,
    )
    report.killed_nights = night.killed_nights
    night.staged_report = report
    return report


def publish_night(night: Night) -> None:
    """Publish the build copy, the docs and the night's report (``loyalty.publication``; its report replaces the
    running record, before the lock goes); then the predictive models' warnings, from the published warehouse."""
    report = night.staged_report
    assert report is not None, "no report to publish"
    report.steps_seconds = night.rounded_steps()
    publish(night.settings, night.staged_docs, report)
    night.reported, night.report = True, report
    if night.spark_tables is not None:
        from loyalty.spark_engine import publish_tables

        publish_tables(night.settings, night.spark_tables)  # the Spark warehouse link, after the DuckDB file
    release_space(night.settings)
    for warning in model_warnings(night.settings.warehouse):
        night.warn(warning)


@dataclass(frozen=True)
class Step:
    """One step of the night: its name (in the progress, the report's ``steps_seconds`` and the running record),
    its Prefect task's name, what it does, the errors a later attempt may get past (the flow retries those, with
    LOYALTY_RETRIES and LOYALTY_RETRY_DELAY_SECONDS; ``loyalty build`` stops at once), and whether tonight runs it.

    ``admission``: the build lock. A night is not tonight's night until it holds it, so a night refused there has
    no failed step. The flow waits for the lock (retries) and times and shows the wait as step ``lock``;
    ``loyalty build`` refuses at once, and says nothing but its one error line."""

    name: str
    task_name: str
    run: Callable[[Night], Any]
    retry_on: tuple[type[BaseException], ...] = ()
    runs_tonight: Callable[[Night], bool] = lambda night: True
    admission: bool = False


STEPS: tuple[Step, ...] = (
    Step("lock", "acquire-build-lock", take_lock, retry_on=(BuildLocked,), admission=True),
    Step("plan", "check-landing-and-plan", plan, retry_on=(LandingNotReady,)),
    Step("prepare_build_copy", "prepare-build-copy", copy_published_warehouse),
    Step("dbt_build", "dbt-build", dbt_build),
    Step("validate", "gx-checkpoint", check_build_copy, runs_tonight=lambda night: night.validate),
    Step("docs", "dbt-docs", generate_docs, runs_tonight=lambda night: night.docs),
    Step("report", "report", write_night_report),
    Step("publish", "publish", publish_night),
)


def run_steps(
    night: Night,
    run: Callable[[Step, Night], Any] = lambda step, night: step.run(night),
    *,
    time_admission: bool = False,
) -> Night:
    """Take the night's steps in order, each timed and shown (``Night.step``), with ``run`` (the Prefect flow runs
    each as a task). ``time_admission``: the admission step (the lock) is timed and shown too (the flow, which waits
    for it). On any error the failure record is written while the lock is still held, then the error goes on."""
    with night.resources:
        try:
            for step in STEPS:
                if not step.runs_tonight(night):
                    continue
                with night.step(step.name) if time_admission or not step.admission else nullcontext():
                    run(step, night)
        except BaseException as exc:
            night.fail(exc)
            raise
    return night


def run_night(
    settings: Settings,
    *,
    full_refresh: bool = False,
    docs: bool = True,
    quiet: bool = False,
    settle_seconds: float = 0.0,
    validate: bool = True,
    dbt_tests: bool = True,
) -> tuple[BuildResult, NightReport, Plan]:
    """One night without an orchestrator (``loyalty build``): the steps, the failure record if one fails (then
    the error goes on), and what the summary shows. ``validate=False`` skips the GX checkpoint and
    ``dbt_tests=False`` dbt's own tests: for tests of other things only (the CLI always runs both)."""
    night = Night(
        settings,
        full_refresh=full_refresh,
        docs=docs,
        quiet=quiet,
        settle_seconds=settle_seconds,
        validate=validate,
        dbt_tests=dbt_tests,
        progress=Progress(quiet=quiet),
    )
    run_steps(night)
    assert night.report is not None and night.plan is not None
    counts, reconciliation = summarise(settings.warehouse)
    result = BuildResult(settings.warehouse, night.plan.landing, counts, reconciliation, night.validation)
    return result, night.report, night.plan

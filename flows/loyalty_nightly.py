"""The nightly Prefect 3 flow ``loyalty-nightly``: orchestration only, one small task per step of
``loyalty.nightly`` (where the work is):

    plan (landing check, incremental or full) -> build copy -> dbt build -> GX checkpoint -> dbt docs
    -> report (read from the build copy) -> publish (the warehouse, its docs, run_summary.json and runs/ beside
    it, and a Prefect markdown artifact)

Retries with backoff where waiting can help: landing files still arriving or being written, and the build lock
held by another run. None where it cannot: dbt, a failed expectation, publication. A failed or crashed night runs
the failure hook, which writes the failure summary the same way. Run it with ``loyalty run`` (``make run``); see
README, "Nightly runs", for scheduling.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from loyalty import config, nightly
from loyalty.build import BuildLocked, build_lock, model_warnings
from loyalty.nightly import LandingNotReady, Plan
from loyalty.progress import Progress

# LOYALTY_RETRIES, LOYALTY_RETRY_DELAY_SECONDS, LOYALTY_LANDING_SETTLE_SECONDS (checked: `loyalty run` and
# `loyalty serve` check them before importing this module, so a bad value is one line there)
FLOW_SETTINGS = config.resolve_flow_settings()
RETRIES = FLOW_SETTINGS.retries
RETRY_DELAY_SECONDS = FLOW_SETTINGS.retry_delay_seconds
SETTLE_SECONDS = FLOW_SETTINGS.landing_settle_seconds

# the night of each running flow run, for the failure hook (which only gets the flow run)
_NIGHTS: dict[str, nightly.Night] = {}


def _retry_on(*errors: type[BaseException]):
    def condition(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's hook signature
        try:
            state.result()
        except errors:
            return True
        except BaseException:
            return False
        return False

    return condition


def _step(night: nightly.Night, name: str):
    """Marks the night's current step for the failure report and times it."""
    return night.step(name)


@task(
    name="acquire-build-lock",
    cache_policy=NO_CACHE,
    retries=RETRIES,
    retry_delay_seconds=exponential_backoff(RETRY_DELAY_SECONDS),
    retry_condition_fn=_retry_on(BuildLocked),
)
def acquire_build_lock(settings: config.Settings, stack: ExitStack) -> None:
    stack.enter_context(build_lock(settings.warehouse))
    nightly.clean_up_after_a_dead_night(settings)


@task(
    name="check-landing-and-plan",
    cache_policy=NO_CACHE,
    retries=RETRIES,
    retry_delay_seconds=exponential_backoff(RETRY_DELAY_SECONDS),
    retry_condition_fn=_retry_on(LandingNotReady),
)
def plan_night(settings: config.Settings, full_refresh: bool) -> Plan:
    plan = nightly.plan_night(settings, full_refresh=full_refresh, settle_seconds=SETTLE_SECONDS)
    logger = get_run_logger()
    for warning in plan.landing.warnings:
        logger.warning(warning)
    logger.info(plan.describe())
    return plan


@task(name="prepare-build-copy", cache_policy=NO_CACHE)
def prepare_build_copy(settings: config.Settings, plan: Plan) -> None:
    nightly.prepare_build_copy(settings, plan)


@task(name="dbt-build", cache_policy=NO_CACHE)
def dbt_build(settings: config.Settings, plan: Plan) -> None:
    nightly.dbt_build(settings, plan, quiet=True)


@task(name="gx-checkpoint", cache_policy=NO_CACHE)
def validate(settings: config.Settings):  # noqa: ANN201
    result = nightly.validate_copy(settings)
    get_run_logger().info(result.headline())
    return result


@task(name="dbt-docs", cache_policy=NO_CACHE)
def generate_docs(settings: config.Settings, plan: Plan):  # noqa: ANN201
    return nightly.generate_docs(settings, plan)


@task(name="report", cache_policy=NO_CACHE)
def report(settings: config.Settings, plan: Plan, validation, staged_docs, night: nightly.Night):  # noqa: ANN001, ANN201
    """The night's report, read from the build copy: it is published with the warehouse."""
    return night.final_report(plan, validation, staged_docs)


@task(name="publish", cache_policy=NO_CACHE)
def publish(settings: config.Settings, staged_docs, summary, night: nightly.Night) -> dict[str, Any]:  # noqa: ANN001
    night.publish(staged_docs, summary)  # the warehouse, the docs, the report (replacing the running record)
    get_run_logger().info(f"published {settings.warehouse}")
    create_markdown_artifact(
        markdown=summary.markdown(), key="loyalty-nightly-report", description="The night's report"
    )
    logger = get_run_logger()
    for warning in model_warnings(settings.warehouse):
        logger.warning(warning)
    return summary.to_dict()


def _write_failure(flow, flow_run, state) -> None:  # noqa: ANN001 - Prefect's hook signature
    """Failure hook: the failure summary beside the warehouse (run_summary.json, runs/) unless the flow wrote it
    while it held the build lock, and a markdown artifact."""
    night = _NIGHTS.pop(str(flow_run.id), None)
    params = flow_run.parameters or {}
    try:
        settings = night.settings if night else _settings(**params)
    except Exception:  # the settings themselves were the problem: nothing to write beside
        return
    try:
        state.result()
        return
    except BaseException as exc:  # the flow's exception
        error: BaseException = exc
    night = night or nightly.Night(settings)  # (a flow run that failed before it made its night)
    night.fail(error)
    failure = night.report
    if failure is None:  # Ctrl-C: nothing written, the next night records this one as killed
        return
    try:
        create_markdown_artifact(markdown=failure.markdown(), key="loyalty-nightly-report", description="Failed night")
    except Exception:  # no run context left to attach it to: the JSON summary is written
        pass


def _settings(
    raw_dir: str | None = None, warehouse: str | None = None, as_of: str | None = None, **_: Any
) -> config.Settings:
    return config.resolve(raw_dir=raw_dir, warehouse=warehouse, as_of=as_of)


@flow(name="loyalty-nightly", on_failure=[_write_failure], on_crashed=[_write_failure], log_prints=True)
def loyalty_nightly(
    raw_dir: str | None = None,
    warehouse: str | None = None,
    as_of: str | None = None,
    full_refresh: bool = False,
) -> dict[str, Any]:
    """Build, validate, document and publish the warehouse for one night; returns the run summary.

    Parameters default to the LOYALTY_* settings (README, "Configuration"); ``full_refresh`` rebuilds everything
    instead of adding the night's new batches to the published warehouse.
    """
    from prefect.runtime import flow_run

    settings = _settings(raw_dir, warehouse, as_of)
    # the steps' progress as plain lines of the flow run's log: on the terminal and in Prefect's logs
    night = nightly.Night(settings, full_refresh=full_refresh, progress=Progress(log=get_run_logger().info))
    _NIGHTS[str(flow_run.id)] = night
    with ExitStack() as stack:
        try:
            with _step(night, "lock"):
                acquire_build_lock(settings, stack)
                for killed in night.begin():  # earlier nights that died holding the lock; then its running record
                    get_run_logger().warning(killed["message"])
            with _step(night, "plan"):
                plan = plan_night(settings, full_refresh)
            night.planned(plan)
            with _step(night, "prepare_build_copy"):
                prepare_build_copy(settings, plan)
            with _step(night, "dbt_build"):
                dbt_build(settings, plan)
            with _step(night, "validate"):
                validation = validate(settings)
            with _step(night, "docs"):
                staged_docs = generate_docs(settings, plan)
            with _step(night, "report"):
                summary = report(settings, plan, validation, staged_docs, night)
            with _step(night, "publish"):
                published = publish(settings, staged_docs, summary, night)
        except BaseException as exc:
            night.fail(exc)  # the failure record, written while the lock is held (the hook runs after it is gone)
            raise
    _NIGHTS.pop(str(flow_run.id), None)
    return {**published, "steps_seconds": night.report.steps_seconds if night.report else published["steps_seconds"]}

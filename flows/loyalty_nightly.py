"""The nightly Prefect 3 flow ``loyalty-nightly``: orchestration only. It runs the night's one list of steps
(``loyalty.nightly.STEPS``, the same ``loyalty build`` runs), each step as a task:

    lock -> plan (landing check, incremental or full) -> build copy -> dbt build -> GX checkpoint -> dbt docs
    -> report (read from the build copy) -> publish (the warehouse, its docs, run_summary.json and runs/ beside it)

and adds what an orchestrator adds: retries with backoff where waiting can help (the steps' ``retry_on``: landing
files still arriving or being written, the build lock held by another run; LOYALTY_RETRIES and
LOYALTY_RETRY_DELAY_SECONDS, read through ``loyalty.config`` when the flow runs), none where it cannot (dbt, a
failed expectation, publication); the night's log lines in the flow run's log; the report as a markdown artifact;
and a failure hook for a crashed run. Run it with ``loyalty run`` (``make run``); see README, "Nightly runs".
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from loyalty import config, nightly
from loyalty.progress import Progress

REPORT_ARTIFACT = "loyalty-nightly-report"

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


def _tasks(flow_settings: config.FlowSettings) -> dict[str, Any]:
    """One Prefect task per step of the night, with retries for the errors the step says a wait may get past."""
    tasks = {}
    for step in nightly.STEPS:
        retries = (
            {
                "retries": flow_settings.retries,
                "retry_delay_seconds": exponential_backoff(flow_settings.retry_delay_seconds),
                "retry_condition_fn": _retry_on(*step.retry_on),
            }
            if step.retry_on
            else {}
        )
        tasks[step.name] = task(step.run, name=step.task_name, cache_policy=NO_CACHE, **retries)
    return tasks


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
        create_markdown_artifact(markdown=failure.markdown(), key=REPORT_ARTIFACT, description="Failed night")
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
    flow_settings = config.resolve_flow_settings()
    logger = get_run_logger()
    night = nightly.Night(
        settings,
        full_refresh=full_refresh,
        settle_seconds=flow_settings.landing_settle_seconds,
        quiet=True,  # dbt's output only when it fails; the progress lines say how far it is
        progress=Progress(log=logger.info),  # the steps' progress as lines of the flow run's log
        warn=logger.warning,
        info=logger.info,
    )
    _NIGHTS[str(flow_run.id)] = night
    tasks = _tasks(flow_settings)
    nightly.run_steps(night, lambda step, night: tasks[step.name](night), time_admission=True)
    _NIGHTS.pop(str(flow_run.id), None)
    assert night.report is not None
    logger.info(f"published {settings.warehouse}")
    create_markdown_artifact(markdown=night.report.markdown(), key=REPORT_ARTIFACT, description="The night's report")
    return night.report.to_dict()

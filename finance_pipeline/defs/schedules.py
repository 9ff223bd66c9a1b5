"""Jobs and schedules: hourly incremental sync, daily finance close.

Both jobs carry `finance/warehouse`, so the instance queues them one at a time (deploy/dagster.yaml:
DuckDB has one writer); on top of that a schedule skips its tick while a run of its own job is
still queued or running, so a slow run never piles up a backlog of itself."""
from __future__ import annotations

from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from finance_pipeline.defs.common import WAREHOUSE_TAG

INGEST = AssetSelection.groups("ingest")
TRANSFORM = AssetSelection.groups("reference", "staging", "intermediate", "marts")
PUBLISH = AssetSelection.groups("publish")
ALERTS = AssetSelection.groups("alerts")
REPORT = AssetSelection.groups("report")

IN_FLIGHT = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
             DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]

hourly_sync = define_asset_job(
    "hourly_sync",
    selection=INGEST | TRANSFORM | ALERTS,
    description="Incremental ingest of every source, then the dbt models (tests as checks) and alerts.",
    tags={WAREHOUSE_TAG: "writer", "finance/cadence": "hourly"},
)

daily_close = define_asset_job(
    "daily_close",
    selection=INGEST | TRANSFORM | ALERTS | PUBLISH | REPORT,
    description="The daily finance close: everything hourly does, then publishing to ledgers and BI tools "
                "and the finance report.",
    tags={WAREHOUSE_TAG: "writer", "finance/cadence": "daily"},
)


def in_flight(instance, job_name: str) -> list:  # noqa: ANN001
    return list(instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=IN_FLIGHT), limit=5))


def _tick(context: ScheduleEvaluationContext, job_name: str, cadence: str):
    running = in_flight(context.instance, job_name)
    if running:
        return SkipReason(f"{job_name} run {running[0].run_id} is still {running[0].status.value.lower()}; "
                          f"this tick is skipped so runs of it never overlap or pile up")
    tick = context.scheduled_execution_time
    return RunRequest(run_key=f"{job_name}:{tick.isoformat() if tick else 'manual'}",
                      tags={"finance/trigger": "schedule", "finance/cadence": cadence,
                            "finance/scheduled_for": tick.isoformat() if tick else ""})


@schedule(name="hourly_sync_schedule", job=hourly_sync, cron_schedule="5 * * * *",
          execution_timezone="Europe/London", default_status=DefaultScheduleStatus.RUNNING,
          description="Every hour at :05 (skipped while the previous hourly run is still going).")
def hourly_schedule(context: ScheduleEvaluationContext):
    return _tick(context, "hourly_sync", "hourly")


@schedule(name="daily_close_schedule", job=daily_close, cron_schedule="30 6 * * *",
          execution_timezone="Europe/London", default_status=DefaultScheduleStatus.RUNNING,
          description="Every day at 06:30 London time, before the bookkeeper starts (skipped while one is running).")
def daily_schedule(context: ScheduleEvaluationContext):
    return _tick(context, "daily_close", "daily")


jobs = [hourly_sync, daily_close]
schedules = [hourly_schedule, daily_schedule]

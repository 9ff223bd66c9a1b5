"""Jobs and schedules: hourly incremental sync, daily finance close."""
from __future__ import annotations

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from finance_pipeline.defs.common import WAREHOUSE_TAG

INGEST = AssetSelection.groups("ingest")
TRANSFORM = AssetSelection.groups("reference", "staging", "intermediate", "marts")
PUBLISH = AssetSelection.groups("publish")
ALERTS = AssetSelection.groups("alerts")

hourly_sync = define_asset_job(
    "hourly_sync",
    selection=INGEST | TRANSFORM | ALERTS,
    description="Incremental ingest of every source, then the dbt models (tests as checks) and alerts.",
    tags={WAREHOUSE_TAG: "writer", "finance/cadence": "hourly"},
)

daily_close = define_asset_job(
    "daily_close",
    selection=INGEST | TRANSFORM | ALERTS | PUBLISH,
    description="The daily finance close: everything hourly does, then publishing to ledgers and BI tools.",
    tags={WAREHOUSE_TAG: "writer", "finance/cadence": "daily"},
)

hourly_schedule = ScheduleDefinition(
    name="hourly_sync_schedule", job=hourly_sync, cron_schedule="5 * * * *",
    execution_timezone="Europe/London", description="Every hour at :05.",
    default_status=DefaultScheduleStatus.RUNNING,
)

daily_schedule = ScheduleDefinition(
    name="daily_close_schedule", job=daily_close, cron_schedule="30 6 * * *",
    execution_timezone="Europe/London", description="Every day at 06:30 London time, before the bookkeeper starts.",
    default_status=DefaultScheduleStatus.RUNNING,
)

jobs = [hourly_sync, daily_close]
schedules = [hourly_schedule, daily_schedule]

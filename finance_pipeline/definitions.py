"""The one Definitions object (loaded by `dagster dev -w workspace.yaml`)."""
from __future__ import annotations

from dagster import Definitions, in_process_executor
from dagster_dlt import DagsterDltResource

from finance_pipeline.defs.alerts import alerts, alerts_after_marts_sensor, alerts_job
from finance_pipeline.defs.ingest import ingest_assets
from finance_pipeline.defs.publish import publish_assets
from finance_pipeline.defs.report import report_assets
from finance_pipeline.defs.schedules import jobs, schedules
from finance_pipeline.defs.sensors import jobs as sensor_jobs, sensors as inbox_sensors
from finance_pipeline.defs.transform import dbt_models, dbt_resource
from finance_pipeline.http.redaction import install_log_redaction

install_log_redaction()

defs = Definitions(
    assets=[*ingest_assets, dbt_models, *publish_assets, alerts, *report_assets],
    jobs=[*jobs, *sensor_jobs, alerts_job],
    schedules=schedules,
    sensors=[alerts_after_marts_sensor, *inbox_sensors],
    resources={"dlt": DagsterDltResource(), "dbt": dbt_resource()},
    # DuckDB has one writer per file: steps of a run execute one after another in one process.
    executor=in_process_executor,
)

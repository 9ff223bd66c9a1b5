"""The one Definitions object (loaded by `dagster dev -w workspace.yaml`)."""
from __future__ import annotations

from dagster import Definitions, in_process_executor
from dagster_dlt import DagsterDltResource

from finance_pipeline.defs.alerts import alerts, alerts_job, payment_failure_alert_sensor
from finance_pipeline.defs.ingest import ingest_assets
from finance_pipeline.defs.publish import publish_assets
from finance_pipeline.defs.schedules import jobs, schedules
from finance_pipeline.defs.transform import dbt_models, dbt_resource
from finance_pipeline.http.redaction import install_log_redaction

install_log_redaction()

defs = Definitions(
    assets=[*ingest_assets, dbt_models, *publish_assets, alerts],
    jobs=[*jobs, alerts_job],
    schedules=schedules,
    sensors=[payment_failure_alert_sensor],
    resources={"dlt": DagsterDltResource(), "dbt": dbt_resource()},
    # DuckDB has one writer per file: steps of a run execute one after another in one process.
    executor=in_process_executor,
)

"""Dagster wiring: ingest (dlt), transform (dbt), publish, alerts, schedules."""

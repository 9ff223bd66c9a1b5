"""dlt pipelines: one per platform, loading `raw_<platform>` in the warehouse with parquet files."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.settings import Settings

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DLT_TELEMETRY", "false")

LOADER_FILE_FORMAT = "parquet"  # the insert-values loader is far slower on big pages
# dlt's postgres destination loads parquet through the ADBC driver (adbc-driver-postgresql), binary
# COPY; its CSV path would load every empty string as NULL (COPY ... NULL '' FORCE_NULL)
POSTGRES_FILE_FORMAT = "parquet"


# DuckDB would otherwise take most of the machine's memory while merging big loads; with a
# limit it spills to disk instead (a 200k-order load peaked at 6.3 GB without one).
DUCKDB_LOAD_CONFIG = {"memory_limit": "1GB", "preserve_insertion_order": False}


def warehouse_destination(settings: Settings) -> Any:
    if settings.warehouse == "postgres":
        assert settings.postgres is not None
        return dlt.destinations.postgres(credentials=settings.postgres.dsn())
    return dlt.destinations.duckdb(
        credentials={"database": str(settings.warehouse_path), "global_config": DUCKDB_LOAD_CONFIG})


def loader_file_format(settings: Settings) -> str:
    return POSTGRES_FILE_FORMAT if settings.warehouse == "postgres" else LOADER_FILE_FORMAT


def make_pipeline(settings: Settings, name: str, dataset: str | None = None) -> dlt.Pipeline:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=f"finance_{name}",
        destination=warehouse_destination(settings),
        dataset_name=dataset or f"raw_{name}",
        pipelines_dir=str(settings.dlt_dir),
    )


@dataclass
class IngestResult:
    platform: str
    load_info: Any
    rows: dict[str, int]
    quarantined: int


def row_counts(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows extracted per table in the last run (from dlt's normalize trace)."""
    trace = pipeline.last_trace
    counts: dict[str, int] = {}
    if trace and trace.last_normalize_info:
        for table, n in trace.last_normalize_info.row_counts.items():
            if not table.startswith("_dlt"):
                counts[table] = counts.get(table, 0) + n
    return counts


def save_quarantine(settings: Settings, quarantine: Quarantine) -> int:
    """Write quarantined records to `ops.quarantine` (merged, so re-runs do not double them)."""
    if not quarantine.rows:
        return 0
    pipeline = make_pipeline(settings, "ops", dataset="ops")

    @dlt.resource(name="quarantine", write_disposition="merge",
                  primary_key=("platform", "entity", "record_id", "reason"))
    def rows():
        yield quarantine.rows

    pipeline.run(rows())
    return len(quarantine.rows)


def loaded_keys(table: str, column: str) -> set[str]:
    """What the warehouse holds in `column` of `table`, in the dataset of the dlt pipeline running
    now (a resource asks this during extract: e.g. the ids to check against a platform's own list),
    as text; empty before the table's first load."""
    pipeline = dlt.current.pipeline()
    if pipeline.destination is None:
        raise RuntimeError(f"reading {table}.{column} from the warehouse needs a pipeline with a destination")
    with pipeline.sql_client() as sql:
        try:
            rows = sql.execute_sql(f"SELECT {sql.escape_column_name(column)} FROM "
                                   f"{sql.make_qualified_table_name(table)}")
        except DatabaseUndefinedRelation:
            return set()
    return {str(row[0]) for row in rows or [] if row[0] is not None}


def run_platform(settings: Settings, platform: str, source: Any, quarantine: Quarantine) -> IngestResult:
    """Load a platform's dlt source outside Dagster (CLI, tests); Dagster uses dagster-dlt."""
    pipeline = make_pipeline(settings, platform)
    info = pipeline.run(source, loader_file_format=loader_file_format(settings))
    counts = row_counts(pipeline)
    return IngestResult(platform, info, counts, save_quarantine(settings, quarantine))

"""dlt pipelines: one per platform, loading `raw_<platform>` in the warehouse with parquet files."""
from __future__ import annotations

import importlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import dlt
import pyarrow as pa
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.settings import Settings

log = logging.getLogger(__name__)

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DLT_TELEMETRY", "false")

LOADER_FILE_FORMAT = "parquet"  # the insert-values loader is far slower on big pages
# dlt's postgres destination loads parquet through the ADBC driver (adbc-driver-postgresql), binary
# COPY; its CSV path would load every empty string as NULL (COPY ... NULL '' FORCE_NULL)
POSTGRES_FILE_FORMAT = "parquet"


# DuckDB would otherwise take most of the machine's memory while merging big loads; with a
# limit it spills to disk instead (a 200k-order load peaked at 6.3 GB without one).
DUCKDB_LOAD_CONFIG = {"memory_limit": "1GB", "preserve_insertion_order": False}


def warehouse_destination(settings: Settings, connection: Any = None) -> Any:
    """dlt's destination for the warehouse; on DuckDB, with `connection` (`warehouse_connection`) dlt
    borrows that open connection instead of opening and closing the file for each of its stages."""
    if settings.warehouse == "postgres":
        assert settings.postgres is not None
        return dlt.destinations.postgres(credentials=settings.postgres.dsn())
    if connection is not None:
        return _capabilities_once(dlt.destinations.duckdb(credentials=connection))
    return _capabilities_once(dlt.destinations.duckdb(
        credentials={"database": str(settings.warehouse_path), "global_config": DUCKDB_LOAD_CONFIG}))


def _capabilities_once(destination: Any) -> Any:
    """dlt asks a destination for its capabilities a few dozen times per run, and each time resolves
    the destination's whole configuration again from the config providers (~30 ms apiece: about a
    second of every platform's step, whatever its size).  For DuckDB that configuration plays no
    part in the answer (dlt's `adjust_capabilities` reads only the naming convention; DuckDB's
    factory does not override it), so the answer is computed once per naming convention and a copy
    handed out (callers set fields on what they get).  Asked with a resolved configuration, dlt's
    own method answers as before."""
    plain = destination.capabilities
    known: dict[Any, Any] = {}

    def capabilities(config: Any = None, naming: Any = None) -> Any:
        if config is not None:
            return plain(config, naming)
        key = None if naming is None else (type(naming), naming.max_length)
        if key not in known:
            known[key] = plain(None, naming)
        return known[key].copy()

    destination.capabilities = capabilities
    return destination


@contextmanager
def warehouse_connection(settings: Settings) -> Iterator[Any]:
    """One DuckDB connection to the warehouse for the length of a load (None on PostgreSQL).

    dlt otherwise opens the file for each stage of a run (state sync, schema restore, load,
    quarantine), and every open reads the catalogue and every close checkpoints: a fixed cost of a
    few hundred milliseconds per platform, paid on a load of ten rows as on one of a million.  The
    connection is closed when the load ends, so the file is free for dbt and the next writer.
    """
    if settings.warehouse == "postgres":
        yield None
        return
    import duckdb

    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path), config=dict(DUCKDB_LOAD_CONFIG))
    try:
        yield con
    finally:
        con.close()


def loader_file_format(settings: Settings) -> str:
    return POSTGRES_FILE_FORMAT if settings.warehouse == "postgres" else LOADER_FILE_FORMAT


def make_pipeline(settings: Settings, name: str, dataset: str | None = None, connection: Any = None) -> dlt.Pipeline:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=f"finance_{name}",
        destination=warehouse_destination(settings, connection),
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


def save_quarantine(settings: Settings, quarantine: Quarantine, connection: Any = None) -> int:
    """Write quarantined records to `ops.quarantine` (merged, so re-runs do not double them)."""
    if not quarantine.rows:
        return 0
    pipeline = make_pipeline(settings, "ops", dataset="ops", connection=connection)

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


def raw_tables(platform: str) -> Mapping[str, Mapping[str, Any]]:
    """The Arrow columns of each table a platform's source loads: `RAW_TABLES` of its source module."""
    from finance_pipeline.platforms import registry

    ref = registry.get(platform).source
    if ref is None:
        return {}
    return getattr(importlib.import_module(ref.split(":")[0]), "RAW_TABLES", {})


def create_missing_tables(settings: Settings, pipeline: dlt.Pipeline, platform: str, source: Any,
                          resources: Iterable[str]) -> list[str]:
    """Create, empty, each table of `resources` that the warehouse does not hold yet.

    dlt creates a table with its first row, so a resource that has found nothing so far (a new
    Stripe account without disputes, a store without refunds) leaves no table behind, and the dbt
    staging model reading it would fail the whole build.  Such a table is created from the
    resource's declared columns (`RAW_TABLES`) through dlt itself, with the resource's write
    disposition and primary key, so dlt's schema knows it and the resource's first real rows merge
    into it as usual.  Costs one catalogue query when nothing is missing."""
    declared = raw_tables(platform)
    wanted = [name for name in resources if name in declared]
    if not wanted:
        return []
    with pipeline.sql_client() as sql:
        found = {row[0] for row in sql.execute_sql(
            "select table_name from information_schema.tables "
            f"where table_schema = '{pipeline.dataset_name}'") or []}
    missing = [name for name in wanted if name not in found]
    if not missing:
        return []
    empties = [_empty_table(source.resources[name], declared[name]) for name in missing]
    # PostgreSQL loads parquet through ADBC, which refuses a file without a record batch: an
    # empty table goes as INSERT statements there (none, after the CREATE TABLE)
    pipeline.run(empties, loader_file_format="insert_values" if settings.warehouse == "postgres" else "parquet")
    log.info("%s: created empty table(s) %s (no rows yet)", platform, ", ".join(missing))
    return missing


def _empty_table(resource: Any, types: Mapping[str, pa.DataType]) -> Any:
    """A resource that makes `resource`'s table and writes no row: an empty Arrow table of its
    declared columns (primary-key columns not null, as its pages mark them), so dlt derives the
    table exactly as from a first page."""
    hinted = resource.compute_table_schema().get("columns") or {}
    keys = [c for c, hints in hinted.items() if hints.get("primary_key")]
    fields = [pa.field(c, t, nullable=c not in keys) for c, t in types.items()]
    empty = pa.Table.from_arrays([pa.array([], type=t) for t in types.values()], schema=pa.schema(fields))
    return dlt.resource(empty, name=resource.name, primary_key=keys or None,
                        write_disposition=resource.write_disposition)


def run_platform(settings: Settings, platform: str, source: Any, quarantine: Quarantine) -> IngestResult:
    """Load a platform's dlt source outside Dagster (CLI, tests); Dagster uses dagster-dlt."""
    with warehouse_connection(settings) as con:
        pipeline = make_pipeline(settings, platform, connection=con)
        info = pipeline.run(source, loader_file_format=loader_file_format(settings))
        counts = row_counts(pipeline)
        create_missing_tables(settings, pipeline, platform, source, source.selected_resources)
        return IngestResult(platform, info, counts, save_quarantine(settings, quarantine, con))

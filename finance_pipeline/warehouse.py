"""Access to the warehouse for the pipeline's own tables (ops.*) and for reading marts.

DuckDB allows one writing process per file: every Dagster asset that writes here runs in the
`warehouse` concurrency pool, jobs use the in-process executor, and runs are queued with a
concurrency limit of 1 on the `finance/warehouse` tag (see finance_pipeline/defs).
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator

import duckdb

from finance_pipeline.settings import Settings


@contextlib.contextmanager
def connect(settings: Settings, read_only: bool = False, wait_s: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, waiting a little if another process holds the write lock."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(str(settings.warehouse_path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table]).fetchone()[0])

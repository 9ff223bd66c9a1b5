"""The warehouse on a real PostgreSQL server: run the pipeline's ingest + dbt on it and compare every
mart with the DuckDB run's, row for row.

A server is started once per test session on a loopback port (finance_pipeline/devtools/postgres.py);
each test gets a database of its own on it."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import pytest

from finance_pipeline.devtools.postgres import LocalPostgres, PostgresUnavailable, local_postgres
from pipeline_helpers import run_job

WAREHOUSE_SCHEMAS = ("staging", "intermediate", "marts", "reference")
POSTGRES_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "deploy" / "postgres" / "dagster.yaml"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory) -> Iterator[LocalPostgres]:
    try:
        with local_postgres(tmp_path_factory.mktemp("pg"), install=True) as pg:
            yield pg
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server on this machine: {exc}")


def pg_env(pg: LocalPostgres, database: str) -> dict[str, str]:
    return {"FINANCE_WAREHOUSE": "postgres", **pg.env(database=database), "FINANCE_PG_SSLMODE": "disable"}


def dagster_pg_env(pg: LocalPostgres, database: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables deploy/postgres/dagster.yaml reads, for `database` on `pg`."""
    return {"DAGSTER_PG_HOST": pg.host, "DAGSTER_PG_PORT": str(pg.port), "DAGSTER_PG_USER": pg.user,
            "DAGSTER_PG_PASSWORD": pg.password, "DAGSTER_PG_DB": database}


def postgres_dagster_home(home: Path) -> Path:
    """A DAGSTER_HOME holding deploy/postgres/dagster.yaml as shipped (connection from DAGSTER_PG_*)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(POSTGRES_DAGSTER_YAML, home / "dagster.yaml")
    return home


def warehouse_only(key_path: tuple[str, ...]) -> bool:
    """Ingest and dbt assets: what runs on the warehouse (publishers, alerts and the report read it)."""
    return key_path[0].startswith("raw_") or key_path[0] in WAREHOUSE_SCHEMAS


def run_on(data_dir: Path, sources: set[str], pg: LocalPostgres | None = None, database: str | None = None,
           job: str = "daily_close", keep: Callable[[tuple[str, ...]], bool] | None = warehouse_only,
           **settings: Any):
    """The daily job's ingest + dbt for `sources` (or the assets of `job` that `keep` selects), on
    DuckDB (pg None) or on `database` of `pg`."""
    extra = pg_env(pg, database) if pg is not None else {}
    return run_job(data_dir, job, sources=sources, keep=keep, **extra, **settings)


def pg_query(pg: LocalPostgres, database: str, sql: str, params: tuple = ()) -> list[tuple]:
    """One statement on `database` of the server (autocommit); its rows, if it returns any."""
    import psycopg2

    con = psycopg2.connect(pg.dsn_for(database))
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        con.close()


def _pg_rows(pg: LocalPostgres, database: str, schema: str, table: str) -> tuple[list[str], list[tuple]]:
    import psycopg2

    con = psycopg2.connect(pg.dsn_for(database))
    try:
        with con.cursor() as cur:
            cur.execute(f'select * from "{schema}"."{table}"')
            return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def _duck_rows(warehouse: Path, schema: str, table: str) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute(f'select * from "{schema}"."{table}"')
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def duck_tables(warehouse: Path, schema: str = "marts") -> list[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return sorted(r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [schema]).fetchall())
    finally:
        con.close()


def pg_tables(pg: LocalPostgres, database: str, schema: str = "marts") -> list[str]:
    import psycopg2

    con = psycopg2.connect(pg.dsn_for(database))
    try:
        with con.cursor() as cur:
            cur.execute("select table_name from information_schema.tables where table_schema = %s", (schema,))
            return sorted(r[0] for r in cur.fetchall())
    finally:
        con.close()


def _canon(value: Any) -> Any:
    """One spelling per value, so equal data compares equal across the two engines: decimals by
    value (12.5 == 12.50), aware timestamps in UTC, JSON text without whitespace. Floats are refused:
    no mart carries money or counts as float."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return re.sub(r"\s+", "", value) if isinstance(value, str) and value[:1] in "[{" else value
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc) if value.tzinfo else value
    if isinstance(value, (dt.date, dt.time, dt.timedelta)):
        return value
    if isinstance(value, float):
        raise AssertionError(f"float value in a mart: {value!r}")
    if isinstance(value, (list, tuple)):
        return tuple(_canon(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _canon(v)) for k, v in value.items()))
    return value


def compare_schema(warehouse: Path, pg: LocalPostgres, database: str, schema: str = "marts",
                   tables: list[str] | None = None, ignore_columns: frozenset[str] = frozenset()
                   ) -> dict[str, list[str]]:
    """Every table of `schema` in both warehouses: same columns, same rows (as multisets), same types of
    Python value per column (`ignore_columns` left out of the rows). Returns {table: problems}; empty
    means equal."""
    problems: dict[str, list[str]] = {}
    duck = tables if tables is not None else duck_tables(warehouse, schema)
    on_pg = set(pg_tables(pg, database, schema))
    for table in duck:
        issues: list[str] = []
        if table not in on_pg:
            problems[table] = ["missing on Postgres"]
            continue
        dcols, drows = _duck_rows(warehouse, schema, table)
        pcols, prows = _pg_rows(pg, database, schema, table)
        if dcols != pcols:
            problems[table] = [f"columns differ: duckdb {dcols} vs postgres {pcols}"]
            continue
        keep = [i for i, col in enumerate(dcols) if col not in ignore_columns]
        drows = [tuple(r[i] for i in keep) for r in drows]
        prows = [tuple(r[i] for i in keep) for r in prows]
        dcols = [dcols[i] for i in keep]
        for i, col in enumerate(dcols):
            dtypes = {type(r[i]).__name__ for r in drows if r[i] is not None}
            ptypes = {type(r[i]).__name__ for r in prows if r[i] is not None}
            if dtypes and ptypes and dtypes != ptypes:
                issues.append(f"{col}: duckdb gives {sorted(dtypes)}, postgres {sorted(ptypes)}")
        dset = sorted((tuple(_canon(v) for v in r) for r in drows), key=repr)
        pset = sorted((tuple(_canon(v) for v in r) for r in prows), key=repr)
        if dset != pset:
            only_d = [r for r in dset if r not in set(pset)]
            only_p = [r for r in pset if r not in set(dset)]
            issues.append(f"{len(drows)} rows on duckdb, {len(prows)} on postgres; "
                          f"{len(only_d)} only on duckdb e.g. {only_d[:2]}; {len(only_p)} only on postgres e.g. {only_p[:2]}")
        if issues:
            problems[table] = issues
    return problems

"""Access to the warehouse for the pipeline's own tables (ops.*) and for reading marts.

DuckDB allows one writing process per file: every Dagster asset that writes here runs in the
`warehouse` concurrency pool, jobs use the in-process executor, and runs are queued with a
concurrency limit of 1 on the `finance/warehouse` tag (see finance_pipeline/defs).
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence, Union

import duckdb

from finance_pipeline.settings import Settings

if TYPE_CHECKING:
    from finance_pipeline.settings import PostgresSettings


@contextlib.contextmanager
def connect(settings: Settings, read_only: bool = False, wait_s: float = 30.0) -> Iterator[Any]:
    """Open the warehouse the settings name; for DuckDB, wait a little if another process holds the
    write lock."""
    if settings.warehouse == "postgres":
        con = open_warehouse(settings.warehouse_target, read_only=read_only)
    else:
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


# -- PostgreSQL ---------------------------------------------------------------------------------------
WarehouseTarget = Union[Path, str, "PostgresSettings"]


def open_warehouse(target: WarehouseTarget, read_only: bool = False) -> Any:
    """A connection to the warehouse that `target` names: a DuckDB file (a path; the connection is
    DuckDB's own, so the embedded path is exactly what it always was) or a PostgreSQL server
    (`PostgresSettings`; a `PgConnection`, which speaks the part of DuckDB's connection API the
    pipeline's own code uses).  SQL written for both sticks to what the two engines share; see
    `PgConnection` for what is translated."""
    from finance_pipeline.settings import PostgresSettings

    if isinstance(target, PostgresSettings):
        return PgConnection(target, read_only=read_only)
    return duckdb.connect(str(target), read_only=read_only)


def is_postgres(con: Any) -> bool:
    return isinstance(con, PgConnection)


def missing_table_errors() -> tuple[type[BaseException], ...]:
    """What either engine raises when a query names a table (or its schema) that does not exist:
    DuckDB's CatalogException, PostgreSQL's undefined_table / invalid_schema_name."""
    try:
        from psycopg2 import errors
    except ImportError:  # a DuckDB-only install
        return (duckdb.CatalogException,)
    return (duckdb.CatalogException, errors.UndefinedTable, errors.InvalidSchemaName)


def _placeholders(sql: str) -> str:
    """DuckDB's `?` parameters as psycopg2's `%s`, outside quoted text; a literal `%` doubled."""
    out, quote = [], None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
            out.append("%%" if ch == "%" else ch)
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


_ARROW_TO_PG = (("string", "text"), ("large_string", "text"), ("int64", "bigint"), ("int32", "integer"),
                ("bool", "boolean"), ("double", "double precision"), ("date32", "date"))


def _pg_type(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_date32(arrow_type):  # spelled "date32[day]", so not found by name below
        return "date"
    for name, pg in _ARROW_TO_PG:
        if str(arrow_type) == name:
            return pg
    raise TypeError(f"no PostgreSQL type for the arrow type {arrow_type}")


class PgConnection:
    """DuckDB's connection API, as far as the pipeline uses it, on PostgreSQL (psycopg2):
    `execute(sql, params)` with `?` parameters (returns itself, as DuckDB does), `fetchone`,
    `fetchall`, `description`, `rowcount`, `begin` / `commit` / `rollback` (autocommit otherwise, like DuckDB),
    `register(name, arrow_table)` / `unregister(name)` (a temporary table), `cursor()` and `close()`.
    JSON comes back as text and timestamps in UTC, as DuckDB returns them."""

    def __init__(self, pg: "PostgresSettings", read_only: bool = False, _con: Any = None) -> None:
        import psycopg2
        import psycopg2.extras

        self._owner = _con is None
        if _con is None:
            options = "-c TimeZone=UTC" + (" -c default_transaction_read_only=on" if read_only else "")
            _con = psycopg2.connect(pg.dsn(), options=options, application_name="finance_pipeline")
            _con.autocommit = True
            psycopg2.extras.register_default_json(_con, loads=lambda text: text)
            psycopg2.extras.register_default_jsonb(_con, loads=lambda text: text)
        self._pg, self._con = pg, _con
        self._cur = _con.cursor()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> "PgConnection":
        # always with a parameter list, so the `%%` that `_placeholders` wrote reaches the server as `%`
        self._cur.execute(_placeholders(sql), list(params) if params is not None else [])
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> "PgConnection":
        self._cur.executemany(_placeholders(sql), [list(r) for r in rows])
        return self

    def fetchone(self) -> tuple | None:
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cur.fetchall()

    @property
    def description(self) -> Any:
        return self._cur.description

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed (or returned), as DB-API cursors count them."""
        return self._cur.rowcount

    def begin(self) -> None:
        self._cur.execute("BEGIN")

    def commit(self) -> None:
        self._cur.execute("COMMIT")

    def rollback(self) -> None:
        self._cur.execute("ROLLBACK")

    def register(self, name: str, table: Any) -> None:
        """An arrow table as the temporary table `name` (DuckDB scans the arrow table in place)."""
        from psycopg2.extras import execute_values

        columns = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in table.schema)
        self._cur.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')
        self._cur.execute(f'CREATE TEMPORARY TABLE "{name}" ({columns})')
        rows = list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns))))
        if rows:
            execute_values(self._cur, f'INSERT INTO "{name}" VALUES %s', rows, page_size=1000)

    def unregister(self, name: str) -> None:
        self._cur.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')

    def cursor(self) -> "PgConnection":
        return PgConnection(self._pg, _con=self._con)

    def close(self) -> None:
        self._cur.close()
        if self._owner:
            self._con.close()

    def __enter__(self) -> "PgConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

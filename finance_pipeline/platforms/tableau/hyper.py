"""`.hyper` extracts of the marts with Tableau's Hyper API (`tableauhyperapi`, which runs its own
`hyperd` process), and reading them back.

One file per mart, one table `"Extract"."Extract"` (the single-table convention Tableau uses when
it publishes an extract as a data source).  Money columns are `NUMERIC(p, s)` filled from Python
`Decimal`s; dates `DATE`; UTC timestamps `TIMESTAMP WITH TIME ZONE`.

Hyper refuses some values (an integer past 64 bits, a number too wide for its NUMERIC …) and a
refusal closes the inserter, dropping the rows added to it.  Rows therefore go in batches; a
refused batch is split in halves until the refused row stands alone — it is reported with
Hyper's own message (and quarantined by the publisher), and every other row is written.
"""
from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Sequence

from finance_pipeline.publish.bi import Column, MartTable, row_key

SCHEMA, TABLE = "Extract", "Extract"
INSERT_BATCH = 5000
MAX_PRECISION = 18  # DuckDB sums are DECIMAL(38, s); money fits 18 digits, a value that does not is refused
_lock = threading.Lock()


@dataclass
class HyperFile:
    table: str
    path: Path
    rows: int
    refused: list[tuple[str, tuple, str]] = field(default_factory=list)  # (row key, row, Hyper's message)

    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@contextmanager
def hyper_process(log_dir: Path) -> Iterator[Any]:
    from tableauhyperapi import HyperProcess, Telemetry

    log_dir.mkdir(parents=True, exist_ok=True)
    with _lock:  # one hyperd start at a time in this process
        process = HyperProcess(telemetry=Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU,
                               parameters={"log_dir": str(log_dir)})
    try:
        yield process
    finally:
        process.close()


def sql_type(column: Column, tz_aware: bool) -> Any:
    from tableauhyperapi import SqlType

    kind = column.kind
    if kind == "int":
        return SqlType.big_int()
    if kind == "decimal":  # 128-bit numerics need a newer file format than many Tableau versions read
        return SqlType.numeric(min(column.precision, MAX_PRECISION), min(column.scale, MAX_PRECISION))
    if kind == "double":
        return SqlType.double()
    if kind == "bool":
        return SqlType.bool()
    if kind == "date":
        return SqlType.date()
    if kind == "timestamp":
        return SqlType.timestamp_tz() if tz_aware else SqlType.timestamp()
    return SqlType.text()


def _tz_aware(table: MartTable, index: int) -> bool:
    return "TIME ZONE" in table.columns[index].sql_type.upper()


def table_definition(table: MartTable) -> Any:
    from tableauhyperapi import Nullability, TableDefinition, TableName

    return TableDefinition(TableName(SCHEMA, TABLE), [
        TableDefinition.Column(c.name, sql_type(c, _tz_aware(table, i)), Nullability.NULLABLE)
        for i, c in enumerate(table.columns)])


def _bulk_select(table: MartTable) -> str | None:
    """The mart as a DuckDB SELECT whose columns carry exactly the Hyper column types (and the rows the
    order `bi` reads them in), or None when a column's values would not come out as the row path
    makes them (text that is not VARCHAR: the row path writes Python's `str()` of it) or the mart is
    not in DuckDB."""
    from finance_pipeline.warehouse import is_postgres

    con = table.warehouse
    if con is None or is_postgres(con):
        return None
    cols = []
    for i, c in enumerate(table.columns):
        name = '"' + c.name.replace('"', '""') + '"'
        if c.kind == "text":
            if c.sql_type.upper() != "VARCHAR":
                return None
            cols.append(name)
            continue
        target = {"int": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN", "date": "DATE",
                  "timestamp": "TIMESTAMPTZ" if _tz_aware(table, i) else "TIMESTAMP",
                  "decimal": f"DECIMAL({min(c.precision, MAX_PRECISION)}, {min(c.scale, MAX_PRECISION)})"}[c.kind]
        cols.append(f"CAST({name} AS {target}) AS {name}")
    order = ", ".join(str(i + 1) for i in range(len(table.columns)))
    return f'SELECT {", ".join(cols)} FROM marts."{table.name}" ORDER BY {order}'


def _bulk_load(con: Any, table: MartTable, definition: Any, path: Path) -> int | None:
    """Load the mart through a Parquet file (DuckDB writes it, Hyper's COPY reads it): no row passes
    through Python.  None when this path does not apply or a value does not fit (a cast overflows,
    Hyper refuses the file): the caller then inserts row by row, which finds and reports such rows."""
    import duckdb
    from tableauhyperapi import HyperException

    select = _bulk_select(table)
    if select is None:
        return None
    parquet = path.with_name(f".{path.name}.parquet")
    try:
        try:
            table.warehouse.execute(f"COPY ({select}) TO '{str(parquet).replace(chr(39), chr(39) * 2)}' "
                                    "(FORMAT parquet)")
        except duckdb.Error:
            return None
        try:
            return int(con.execute_command(f"COPY {definition.table_name} FROM "
                                           f"'{str(parquet).replace(chr(39), chr(39) * 2)}' WITH (FORMAT => 'parquet')"))
        except HyperException:
            con.execute_command(f"TRUNCATE TABLE {definition.table_name}")
            return None
    finally:
        parquet.unlink(missing_ok=True)


def build(process: Any, table: MartTable, path: Path, batch: int = INSERT_BATCH) -> HyperFile:
    """Write `table` to a new `.hyper` at `path` (replaced if present): in bulk through Parquet when
    every value fits (`_bulk_load`), else row by row in batches, refused rows set aside."""
    from tableauhyperapi import Connection, CreateMode, HyperException, Inserter

    path.parent.mkdir(parents=True, exist_ok=True)
    definition = table_definition(table)
    refused: list[tuple[str, tuple, str]] = []
    written = 0
    with Connection(endpoint=process.endpoint, database=str(path), create_mode=CreateMode.CREATE_AND_REPLACE) as con:
        con.catalog.create_schema(SCHEMA)
        con.catalog.create_table(definition)
        loaded = _bulk_load(con, table, definition, path)
        if loaded is not None:
            return HyperFile(table.name, path, loaded, [])

        def insert(rows: Sequence[tuple]) -> None:
            nonlocal written
            try:
                with Inserter(con, definition) as inserter:
                    inserter.add_rows(rows)
                    inserter.execute()
                written += len(rows)
            except (HyperException, OverflowError, ValueError, TypeError) as exc:
                if len(rows) == 1:
                    refused.append((row_key(table.name, rows[0]), rows[0], f"{type(exc).__name__}: {exc}"))
                    return
                mid = len(rows) // 2
                insert(rows[:mid])
                insert(rows[mid:])

        for start in range(0, len(table.rows), batch):
            insert(table.rows[start:start + batch])
    return HyperFile(table.name, path, written, refused)


def summarise(process: Any, path: Path, money: Sequence[str]) -> dict[str, Any]:
    """Row count and the SUM of each money column of a `.hyper` (the read-back)."""
    from tableauhyperapi import Connection, TableName, escape_name

    with Connection(endpoint=process.endpoint, database=str(path)) as con:
        tables = [t for s in con.catalog.get_schema_names() for t in con.catalog.get_table_names(s)]
        if TableName(SCHEMA, TABLE) not in tables and len(tables) != 1:
            raise ValueError(f"{path.name}: expected one table \"Extract\".\"Extract\", found {tables}")
        name = TableName(SCHEMA, TABLE) if TableName(SCHEMA, TABLE) in tables else tables[0]
        columns = [str(c.name.unescaped) for c in con.catalog.get_table_definition(name).columns]
        sums = [f"SUM({escape_name(m)})" for m in money if m in columns]
        row = con.execute_list_query(f"SELECT COUNT(*){''.join(', ' + s for s in sums)} FROM {name}")[0]
    out: dict[str, Any] = {"rows": int(row[0]), "columns": columns}
    present = [m for m in money if m in columns]
    for m, value in zip(present, row[1:]):
        out[m] = Decimal(0) if value is None else Decimal(str(value))
    return out

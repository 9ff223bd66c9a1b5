"""The Looker Studio snapshot: the BI marts as files a connector endpoint can serve without DuckDB.

Layout of `<data dir>/looker_studio/`:
    manifest.json               {"format", "version", "published_at", "tables": {mart: {file, hash, rows,
                                 columns: [{name, sql_type, kind, scale}], date_column}}}
    <mart>-<hash16>.parquet     one file per mart version (DuckDB `COPY … (FORMAT parquet)`, or the same
                                types through pyarrow on a Postgres warehouse: DECIMALs stay exact
                                decimals, TIMESTAMPTZ UTC timestamps)

A publish writes the parquet files of changed marts (write to a temporary name, fsync, rename), then
switches `manifest.json` atomically: a reader sees the old snapshot or the new one, never a mix.
A file's name carries its content hash, so a mart that did not change is not rewritten, and files of
the previous manifest are kept (a reader may have just loaded it); older ones are removed.

The endpoint reads only these files: DuckDB lets one process write the warehouse, and the endpoint
must never hold (or wait for) that lock while the pipeline runs.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from finance_pipeline.sandbox.store import atomic_write
from finance_pipeline.warehouse import is_postgres

FORMAT = "looker-snapshot/1"
MANIFEST = "manifest.json"
# the column a date range filters on: the first of these a mart has, else its first date/timestamp
DATE_COLUMNS = ("issued_on", "ordered_at", "attempted_at", "refunded_at", "payout_date", "arrival_date",
                "posted_on", "month", "period_start", "day", "due_on", "created_at")


def snapshot_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "looker_studio"


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.exists():
        return {"format": FORMAT, "version": 0, "tables": {}}
    return orjson.loads(path.read_bytes())


def write_manifest(directory: Path, manifest: dict) -> None:
    atomic_write(Path(directory) / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))


def date_column(columns: list[dict]) -> str | None:
    kinds = {c["name"]: c["kind"] for c in columns}
    for name in DATE_COLUMNS:
        if kinds.get(name) in ("date", "timestamp"):
            return name
    return next((c["name"] for c in columns if c["kind"] in ("date", "timestamp")), None)


def write_table_file(con: Any, directory: Path, table: str, columns: list[str], digest: str) -> str:
    """The mart as parquet under its content-addressed name (atomic); returns the file name."""
    name = f"{table}-{digest[:16]}.parquet"
    final = Path(directory) / name
    if final.exists():
        return name
    tmp = final.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    select = ", ".join(f'"{c}"' for c in columns)
    order = ", ".join(str(i + 1) for i in range(len(columns)))
    if is_postgres(con):  # the same file, built from the rows: PostgreSQL cannot write parquet itself
        import pyarrow.parquet as pq

        from finance_pipeline.publish.bi import load_table

        mart = load_table(con, table)
        mart.columns = [c for name in columns for c in mart.columns if c.name == name]
        pq.write_table(mart.to_arrow(), str(tmp))
    else:
        path_sql = str(tmp).replace("'", "''")
        con.execute(f'COPY (SELECT {select} FROM marts."{table}" ORDER BY {order}) TO \'{path_sql}\' '
                    '(FORMAT parquet)')
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    return name


def collect_garbage(directory: Path, keep: set[str]) -> int:
    removed = 0
    for path in Path(directory).glob("*.parquet"):
        if path.name not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    for path in Path(directory).glob(".*.tmp"):  # left by a killed publisher
        path.unlink(missing_ok=True)
    return removed


# -- reading (the endpoint) --------------------------------------------------------------------------

@dataclass
class LoadedTable:
    name: str
    meta: dict
    data: Any  # pyarrow.Table


class SnapshotReader:
    """The current manifest and its tables, reloaded when `manifest.json` changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._manifest: dict = {"format": FORMAT, "version": 0, "tables": {}}
        self._tables: dict[str, LoadedTable] = {}  # by file name

    def manifest(self) -> dict:
        path = self.directory / MANIFEST
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._manifest = read_manifest(self.directory) if stamp else {"format": FORMAT, "version": 0,
                                                                              "tables": {}}
                self._stamp = stamp
                live = {t["file"] for t in self._manifest["tables"].values()}
                self._tables = {k: v for k, v in self._tables.items() if k in live}
            return self._manifest

    def table(self, name: str) -> LoadedTable | None:
        meta = self.manifest()["tables"].get(name)
        if meta is None:
            return None
        with self._lock:
            hit = self._tables.get(meta["file"])
        if hit is None:
            import pyarrow.parquet as pq

            hit = LoadedTable(name, meta, pq.read_table(self.directory / meta["file"]))
            with self._lock:
                self._tables[meta["file"]] = hit
        return hit


def wire_value(kind: str, value: Any) -> Any:
    """A value as the connector's rows carry it: money as an exact Decimal (a JSON number with its
    digits), dates `YYYYMMDD`, timestamps `YYYYMMDDHHMMSS` (UTC)."""
    if value is None:
        return None
    if kind == "timestamp":
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(timezone.utc)
            return value.strftime("%Y%m%d%H%M%S")
        return str(value)
    if kind == "date":
        return value.strftime("%Y%m%d") if isinstance(value, date) else str(value)
    if kind == "decimal":
        return value if isinstance(value, Decimal) else Decimal(str(value))
    if kind == "id":
        return str(value)
    if kind == "text" and not isinstance(value, str):
        return value.hex() if isinstance(value, bytes) else str(value)  # UUIDs, lists, JSON …: their text
    return value


def wire_column(kind: str, values: Any) -> list:
    """A whole pyarrow column as `wire_value` would give each of its values, converted by Arrow's
    compute kernels rather than value by value: dates and timestamps formatted by `strftime` (a
    zoned timestamp in UTC, seconds truncated as `wire_value` does), money as its exact decimal text
    (an `orjson.Fragment`, so it is written as a JSON number with those digits), ids as text.  Types
    without a kernel path go through `wire_value`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = values.type
    if kind == "timestamp" and pa.types.is_timestamp(t):
        if t.tz is not None:
            values = values.cast(pa.timestamp(t.unit, "UTC"))
        values = pc.floor_temporal(values, unit="second").cast(pa.timestamp("s", "UTC" if t.tz is not None else None))
        return pc.strftime(values, format="%Y%m%d%H%M%S").to_pylist()
    if kind == "date" and pa.types.is_date(t):
        return pc.strftime(values, format="%Y%m%d").to_pylist()
    if kind == "decimal" and pa.types.is_decimal(t):
        fragment = orjson.Fragment
        return [None if v is None else fragment(v.encode()) for v in values.cast(pa.string()).to_pylist()]
    if kind == "id" and (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
        return values.cast(pa.string()).to_pylist()
    if kind == "text" and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return values.to_pylist()
    return [wire_value(kind, v) for v in values.to_pylist()]

"""The marts as BI destinations receive them: whole tables with their column types.

BI tools (Power BI push datasets, Tableau extracts) take tables, not business records: every run
compares a table's content hash with the ledger (object type `table`, key = the mart's name) and
sends the table again only when it changed.  This module reads the marts generically from the
warehouse's catalogue, so a column added to a mart reaches the dashboards without code changes.

Column kinds (what a destination maps to its own types):
`int` (integers), `decimal` (DECIMAL(p, s): money, sent with exact digits, never via float),
`double`, `bool`, `date`, `timestamp` (naive or UTC), `text` (everything else, as text).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Sequence

import duckdb

from finance_pipeline.publish.ledger import content_hash
from finance_pipeline.warehouse import is_postgres, table_exists

# The marts dashboards read, in publishing order; those that do not exist (yet) are skipped.
BI_MARTS: tuple[str, ...] = (
    "fct_orders", "fct_order_lines", "fct_payments", "fct_refunds", "fct_payouts", "fct_invoices",
    "fct_invoice_lines", "fct_gl_entries", "rpt_payout_reconciliation", "rpt_outstanding_balances",
    "rpt_profit_and_loss", "rpt_tax_obligations", "rpt_payment_status", "rpt_sales_trends",
    "rpt_ar_invoice_detail", "fct_fx_rates", "rpt_fx_exposure", "rpt_pipeline_to_cash",
    "rpt_pipeline_to_cash_monthly",
)
# marts of BI_MARTS that dbt builds only when their source is on (the ECB rates, a CRM).  The BI
# publish assets do not depend on them: Dagster skips a step whose upstream output a run did not
# yield, so a run without those sources would otherwise publish nothing.  Every BI mart is built in
# the one dbt step, so depending on the others orders the publishers after all of them.
OPTIONAL_MARTS: frozenset[str] = frozenset({
    "fct_fx_rates", "rpt_fx_exposure", "rpt_pipeline_to_cash", "rpt_pipeline_to_cash_monthly",
})

# marts the BI tools do not get, and why (a test keeps every other mart in BI_MARTS)
NOT_FOR_BI: dict[str, str] = {
    "rpt_fx_rate_check": "a data-quality list (platform rates against the ECB's), read in the finance report",
}
MAPPING_VERSION = "bi-table/1"  # part of every table hash: a new version re-sends every table

_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)", re.I)


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # DuckDB's type name
    kind: str  # int | decimal | double | bool | date | timestamp | text
    precision: int = 0
    scale: int = 0


class MartTable:
    """One mart: its columns now, its rows when first asked for (a table whose hash matches the
    ledger is never read row by row).  Needs its warehouse connection open while rows, hash or
    totals are read."""

    def __init__(self, name: str, columns: list[Column], rows: list[tuple] | None = None,
                 con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.name = name
        self.columns = columns
        self._rows = rows
        self._con = con
        self._hash: str | None = None

    @property
    def rows(self) -> list[tuple]:
        if self._rows is None:
            assert self._con is not None
            self._rows = _fetch_rows(self._con, self.name, self.columns)
        return self._rows

    @property
    def warehouse(self) -> duckdb.DuckDBPyConnection | None:
        """The connection the rows are read from (None for a table built from given rows)."""
        return self._con

    @property
    def schema_signature(self) -> list[tuple[str, str]]:
        return [(c.name, c.sql_type) for c in self.columns]

    def content_hash(self) -> str:
        """Schema + content; in SQL (md5 of the sorted md5s of the rows' text) when the table is
        read from the warehouse: 200 000 rows hash in about a second instead of reading them all."""
        if self._hash is None:
            if self._con is not None:
                # a row as text: DuckDB's struct and PostgreSQL's record spelling differ, so a table's hash
                # is the same run after run on one engine, not across the two (each has its own ledger)
                row_text = "t::text" if is_postgres(self._con) else "t::VARCHAR"
                (digest,) = self._con.execute(
                    f'SELECT md5(COALESCE(string_agg(h, \'\' ORDER BY h), \'\')) FROM '
                    f'(SELECT md5({row_text}) AS h FROM marts."{self.name}" t) AS r').fetchone()
                self._hash = content_hash({"v": MAPPING_VERSION, "columns": self.schema_signature, "rows": digest})
            else:
                self._hash = content_hash({"v": MAPPING_VERSION, "columns": self.schema_signature,
                                           "rows": self.rows})
        return self._hash

    def expected(self, refused: set[str] = frozenset()) -> dict[str, Any]:
        """Row count and money totals a destination should hold, rows it refused left out."""
        prefix = f"{self.name}:"
        if self._con is None or any(k.startswith(prefix) for k in refused):
            keep = [r for r in self.rows if row_key(self.name, r) not in refused]
            return {"rows": len(keep), **self.totals(keep)}
        money = self.money_columns()
        sums = "".join(f', COALESCE(SUM("{c.name}"), 0)' for c in money)
        row = self._con.execute(f'SELECT COUNT(*){sums} FROM marts."{self.name}"').fetchone()
        return {"rows": int(row[0]), **{c.name: Decimal(row[i + 1]) for i, c in enumerate(money)}}

    def to_arrow(self) -> Any:
        """The rows as a pyarrow table typed as DuckDB's parquet export types the mart: DECIMAL(p, s) exact,
        timestamps with or without their zone, integers at their width, everything else text."""
        import pyarrow as pa

        fields = [pa.field(c.name, _arrow_type(c)) for c in self.columns]
        columns = list(zip(*self.rows)) if self.rows else [() for _ in self.columns]
        return pa.table([pa.array(list(values), type=f.type) for values, f in zip(columns, fields)],
                        schema=pa.schema(fields))

    def money_columns(self) -> list[Column]:
        return [c for c in self.columns if c.kind == "decimal"]

    def totals(self, rows: Sequence[tuple] | None = None) -> dict[str, Decimal]:
        """Sum of every DECIMAL column (the read-back compares these with the destination's)."""
        out: dict[str, Decimal] = {}
        source = self.rows if rows is None else rows
        for i, col in enumerate(self.columns):
            if col.kind == "decimal":
                out[col.name] = sum((r[i] for r in source if r[i] is not None), Decimal(0))
        return out


# PostgreSQL's information_schema type names as DuckDB spells them (numeric(p, s) → DECIMAL(p,s)); any
# other PostgreSQL type (text, varchar, json, uuid, arrays …) is text to a BI destination
_PG_TYPES = {"bigint": "BIGINT", "integer": "INTEGER", "smallint": "SMALLINT", "boolean": "BOOLEAN", "date": "DATE",
             "double precision": "DOUBLE", "real": "REAL", "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
             "timestamp without time zone": "TIMESTAMP"}


def pg_sql_type(data_type: str, precision: int | None, scale: int | None) -> str:
    """A PostgreSQL column type (information_schema.columns) in DuckDB's spelling, so the BI destinations
    map a mart's columns the same whichever engine holds it."""
    if data_type == "numeric":
        return f"DECIMAL({precision or 38},{scale or 0})"
    return _PG_TYPES.get(data_type, "VARCHAR")


def column_kind(sql_type: str) -> tuple[str, int, int]:
    t = sql_type.upper()
    m = _DECIMAL.match(t)
    if m:
        return "decimal", int(m.group(1)), int(m.group(2))
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT"):
        return "int", 0, 0
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return "double", 0, 0
    if t == "BOOLEAN":
        return "bool", 0, 0
    if t == "DATE":
        return "date", 0, 0
    if t.startswith("TIMESTAMP"):
        return "timestamp", 0, 0
    return "text", 0, 0


def _arrow_type(col: Column) -> Any:
    import pyarrow as pa

    t = col.sql_type.upper()
    if col.kind == "decimal":
        return pa.decimal128(col.precision, col.scale)
    if col.kind == "int":
        return {"TINYINT": pa.int8(), "SMALLINT": pa.int16(), "INTEGER": pa.int32()}.get(t, pa.int64())
    if col.kind == "double":
        return pa.float32() if t in ("FLOAT", "REAL") else pa.float64()
    if col.kind == "bool":
        return pa.bool_()
    if col.kind == "date":
        return pa.date32()
    if col.kind == "timestamp":
        return pa.timestamp("us", tz="UTC" if "TIME ZONE" in t or t == "TIMESTAMPTZ" else None)
    return pa.string()


def _as_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def available_marts(con: duckdb.DuckDBPyConnection, wanted: Sequence[str] = BI_MARTS) -> list[str]:
    have = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'").fetchall()}
    return [m for m in wanted if m in have]


def _fetch_rows(con: duckdb.DuckDBPyConnection, name: str, cols: list[Column]) -> list[tuple]:
    select = ", ".join(f'"{c.name}"' for c in cols)
    order = ", ".join(str(i + 1) for i in range(len(cols)))
    rows = con.execute(f'SELECT {select} FROM marts."{name}" ORDER BY {order}').fetchall()
    text_idx = [i for i, c in enumerate(cols) if c.kind == "text"]
    if text_idx:  # UUIDs, lists, JSON … become their text form
        rows = [tuple(_as_text(v) if i in text_idx else v for i, v in enumerate(r)) for r in rows]
    return rows


def sized_numerics(fetchone: Callable[[str], tuple], schema: str, table: str, found: list[tuple]) -> list[tuple]:
    """PostgreSQL drops a numeric's declared (precision, scale) through CASE and some functions where DuckDB
    keeps DECIMAL(18, 2). In `found` (information_schema rows: name, data_type, precision, scale) such a
    column gets the largest scale its values carry (a numeric value keeps its own), so money is never
    rounded nor sent as a float. `fetchone(sql)` runs a query on the server and returns its one row."""
    unsized = [c[0] for c in found if c[1] == "numeric" and c[2] is None]
    if not unsized:
        return found
    scales = fetchone("SELECT " + ", ".join('max(scale("' + c.replace('"', '""') + '"))' for c in unsized)
                      + f' FROM "{schema}"."{table}"')
    scale_of = dict(zip(unsized, scales))
    return [(c[0], c[1], c[2], scale_of[c[0]]) if c[0] in scale_of else c for c in found]


def load_table(con: duckdb.DuckDBPyConnection, name: str) -> MartTable:
    cols = []
    found = con.execute(
        "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
        "WHERE table_schema = 'marts' AND table_name = ? ORDER BY ordinal_position", [name]).fetchall()
    postgres = is_postgres(con)
    if postgres:
        found = sized_numerics(lambda sql: con.execute(sql).fetchone(), "marts", name, found)
    for col_name, data_type, numeric_precision, numeric_scale in found:
        if postgres:
            data_type = pg_sql_type(data_type, numeric_precision, numeric_scale)
        kind, precision, scale = column_kind(data_type)
        cols.append(Column(col_name, data_type, kind, precision, scale))
    return MartTable(name, cols, con=con)


def load_marts(con: duckdb.DuckDBPyConnection, wanted: Sequence[str] = BI_MARTS) -> list[MartTable]:
    return [load_table(con, name) for name in available_marts(con, wanted)]


def row_key(table: str, row: tuple) -> str:
    """The business key of one row for quarantine and the ledger: its table and content."""
    return f"{table}:{content_hash(list(row))[:24]}"


def record_row_rejections(ledger: Any, result: Any, destination: str, table: str,
                          bad: Sequence[tuple[str, Any, str]]) -> list[tuple[str, str, Any, str]]:
    """Rows a BI destination refused while loading `table`: (row key, row, destination's message).

    Each is recorded failed in the ledger (object type `row`), rows refused on an earlier load of
    the same table but not now are cleared, and the quarantine entries (entity, key, row, reason)
    are returned for `publish.destinations.quarantine_rejections`."""
    from finance_pipeline.publish.mechanics import ItemError

    prefix = f"{table}:"
    now_bad = {k for k, _, _ in bad}
    earlier = [e.business_key for e in ledger.entries("row").values()
               if e.business_key.startswith(prefix) and e.status == "failed" and e.business_key not in now_bad]
    ledger.mark_done_many("row", [(k, None, None) for k in earlier],
                          detail="no longer refused (reloaded or gone from the mart)")
    reason = f"{destination} refused the row: "
    ledger.mark_failed_many("row", [(k, None, reason + m, None) for k, _, m in bad])
    out = []
    for key, row, message in bad:
        result.errors.append(ItemError("row", key, message))
        out.append((f"{destination}.{table}", key, row, reason + message))
    result.of("row").failed += len(bad)
    return out


def refused_keys(ledger: Any) -> set[str]:
    """Row keys whose last load was refused (the read-back expects them absent)."""
    if not table_exists(ledger.con, "ops", "publish_ledger"):  # no ledger yet
        return set()
    return {k for k, e in ledger.entries("row").items() if e.status == "failed"}

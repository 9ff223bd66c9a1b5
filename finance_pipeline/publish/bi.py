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
from typing import Any, Sequence

import duckdb

from finance_pipeline.publish.ledger import content_hash

# The marts dashboards read, in publishing order; those that do not exist (yet) are skipped.
BI_MARTS: tuple[str, ...] = (
    "fct_orders", "fct_order_lines", "fct_payments", "fct_refunds", "fct_payouts", "fct_invoices",
    "fct_invoice_lines", "fct_gl_entries", "rpt_payout_reconciliation", "rpt_outstanding_balances",
    "rpt_profit_and_loss", "rpt_tax_obligations", "rpt_payment_status", "rpt_sales_trends",
)
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
    def schema_signature(self) -> list[tuple[str, str]]:
        return [(c.name, c.sql_type) for c in self.columns]

    def content_hash(self) -> str:
        """Schema + content; in SQL (md5 of the sorted md5s of the rows' text) when the table is
        read from the warehouse: 200 000 rows hash in about a second instead of reading them all."""
        if self._hash is None:
            if self._con is not None:
                (digest,) = self._con.execute(
                    f'SELECT md5(COALESCE(string_agg(h, \'\' ORDER BY h), \'\')) FROM '
                    f'(SELECT md5(t::VARCHAR) AS h FROM marts."{self.name}" t)').fetchone()
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


def load_table(con: duckdb.DuckDBPyConnection, name: str) -> MartTable:
    cols = []
    for col_name, data_type in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'marts' "
            "AND table_name = ? ORDER BY ordinal_position", [name]).fetchall():
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
    try:
        return {k for k, e in ledger.entries("row").items() if e.status == "failed"}
    except duckdb.CatalogException:  # no ledger yet
        return set()

"""What the publisher wrote to the sandbox Zoho Books organisation: `<sandbox root>/zoho_books.sqlite`
(the shared `SqliteState`: WAL, one writer at a time across processes, named counters).

Documents are kept as the JSON Zoho answers with (money as exact JSON numbers, read back as
`Decimal`), one row per contact, invoice and customer payment; invoice balances and statuses are
derived when rendered.  Counters (`invoice_created`, `payment_deleted` …) let tests count writes.
"""
from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

from finance_pipeline.http.client import dumps
from finance_pipeline.sandbox.sqlite_state import SqliteState

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, id INTEGER NOT NULL, number TEXT, body TEXT NOT NULL,
    PRIMARY KEY (kind, id));
CREATE INDEX IF NOT EXISTS docs_number ON docs (kind, number);
"""
FIRST_ID = 460_000_000_900_000


def _load(text: str) -> dict:
    return json.loads(text, parse_float=Decimal)


class ZohoStore(SqliteState):
    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA)

    def next_id(self, con: sqlite3.Connection) -> int:
        self.bump(con, "next_id")
        n = con.execute("SELECT value FROM counters WHERE name = 'next_id'").fetchone()[0]
        return FIRST_ID + n * 3

    def counters(self) -> dict[str, int]:
        return {k: v for k, v in super().counters().items() if k != "next_id"}

    def put(self, con: sqlite3.Connection, kind: str, doc_id: int, number: str | None, body: dict) -> None:
        con.execute("INSERT INTO docs VALUES (?, ?, ?, ?) ON CONFLICT(kind, id) DO UPDATE SET "
                    "number = excluded.number, body = excluded.body", (kind, doc_id, number, dumps(body).decode()))

    def delete(self, con: sqlite3.Connection, kind: str, doc_id: int) -> None:
        con.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, doc_id))

    def get(self, kind: str, doc_id: int, con: sqlite3.Connection | None = None) -> dict | None:
        row = (con or self.read()).execute("SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
        return _load(row[0]) if row else None

    def docs(self, kind: str) -> list[dict]:
        return [_load(r[0]) for r in self.read().execute("SELECT body FROM docs WHERE kind = ? ORDER BY id", (kind,))]

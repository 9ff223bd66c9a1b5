"""What the publisher wrote to the sandbox Zoho Books organisation: `<sandbox root>/zoho_books.sqlite`
(the shared `SqliteState`: WAL, one writer at a time across processes, named counters).

Documents are kept as the JSON Zoho answers with (money as exact JSON numbers, read back as
`Decimal`), one row per contact, invoice and customer payment; invoice balances and statuses are
derived when rendered.  Counters (`invoice_created`, `payment_deleted` …) let tests count writes.
`applications` indexes what each stored payment applies to which invoice (kept by `put` and
`delete`), so a write that needs an invoice's payments reads those, not every payment.
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
CREATE TABLE IF NOT EXISTS applications (
    payment_id INTEGER NOT NULL, invoice_id TEXT NOT NULL, PRIMARY KEY (invoice_id, payment_id));
"""
FIRST_ID = 460_000_000_900_000


def _load(text: str) -> dict:
    return json.loads(text, parse_float=Decimal)


class ZohoStore(SqliteState):
    def __init__(self, path: Path) -> None:
        super().__init__(path, SCHEMA)
        with self.tx() as con:  # a store written before the index existed
            if not con.execute("SELECT 1 FROM applications LIMIT 1").fetchone():
                for doc_id, body in con.execute("SELECT id, body FROM docs WHERE kind = 'payment'").fetchall():
                    self._index_payment(con, doc_id, _load(body))

    def next_id(self, con: sqlite3.Connection) -> int:
        self.bump(con, "next_id")
        n = con.execute("SELECT value FROM counters WHERE name = 'next_id'").fetchone()[0]
        return FIRST_ID + n * 3

    def counters(self) -> dict[str, int]:
        return {k: v for k, v in super().counters().items() if k != "next_id"}

    def put(self, con: sqlite3.Connection, kind: str, doc_id: int, number: str | None, body: dict) -> None:
        con.execute("INSERT INTO docs VALUES (?, ?, ?, ?) ON CONFLICT(kind, id) DO UPDATE SET "
                    "number = excluded.number, body = excluded.body", (kind, doc_id, number, dumps(body).decode()))
        if kind == "payment":
            self._index_payment(con, doc_id, body)

    def delete(self, con: sqlite3.Connection, kind: str, doc_id: int) -> None:
        con.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, doc_id))
        if kind == "payment":
            con.execute("DELETE FROM applications WHERE payment_id = ?", (doc_id,))

    @staticmethod
    def _index_payment(con: sqlite3.Connection, doc_id: int, body: dict) -> None:
        con.execute("DELETE FROM applications WHERE payment_id = ?", (doc_id,))
        con.executemany("INSERT OR IGNORE INTO applications VALUES (?, ?)",
                        [(doc_id, str(a["invoice_id"])) for a in body.get("invoices") or []])

    def payments_applied_to(self, invoice_id: str, con: sqlite3.Connection | None = None) -> list[dict]:
        """The stored payments applied to one invoice (indexed)."""
        rows = (con or self.read()).execute(
            "SELECT d.body FROM applications a JOIN docs d ON d.kind = 'payment' AND d.id = a.payment_id "
            "WHERE a.invoice_id = ? ORDER BY d.id", (str(invoice_id),)).fetchall()
        return [_load(r[0]) for r in rows]

    def contact_named(self, name: str, con: sqlite3.Connection | None = None) -> bool:
        return (con or self.read()).execute(
            "SELECT 1 FROM docs WHERE kind = 'contact' AND json_extract(body, '$.contact_name') = ? LIMIT 1",
            (name,)).fetchone() is not None

    def get(self, kind: str, doc_id: int, con: sqlite3.Connection | None = None) -> dict | None:
        row = (con or self.read()).execute("SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
        return _load(row[0]) if row else None

    def docs(self, kind: str) -> list[dict]:
        return [_load(r[0]) for r in self.read().execute("SELECT body FROM docs WHERE kind = ? ORDER BY id", (kind,))]

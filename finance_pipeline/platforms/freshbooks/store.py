"""What is written to the FreshBooks emulator (clients, invoices, payments, callbacks) and its OAuth
state, in `<sandbox root>/freshbooks.sqlite`, shared by every emulator instance in any process (the
shared `SqliteState`: WAL, a connection per thread kept open, one writer at a time across processes).

Documents are kept as their wire JSON (the emulator validates before storing); ids come from one
sequence above the world's ids, so written and world documents never collide.  The fields the API
searches on exactly (`invoice_number`, `invoiceid`, `customerid`, `note`) are indexed (expression
indexes on the JSON), so a look-up costs the same whatever the account holds.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

from finance_pipeline.sandbox.sqlite_state import SqliteState

FIRST_ID = 5_000_000
ACCESS_TTL_S = 43_200  # 12 h, FreshBooks' `expires_in`
SEARCHABLE = ("invoice_number", "invoiceid", "customerid", "note")

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (kind TEXT, id INTEGER, updated REAL, body TEXT, PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS seq (n INTEGER);
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, kind TEXT, expires REAL, used INTEGER);
""" + "".join(f"CREATE INDEX IF NOT EXISTS docs_{f} ON docs (kind, json_extract(body, '$.{f}'));\n"
              for f in SEARCHABLE)


def _migrate(path: Path) -> None:
    """A store made before the shared `SqliteState` named its counters' column `n`."""
    con = sqlite3.connect(path, timeout=30)
    try:
        columns = {row[1] for row in con.execute("PRAGMA table_info(counters)")}
        if "n" in columns and "value" not in columns:
            con.execute("ALTER TABLE counters RENAME COLUMN n TO value")
            con.commit()
    finally:
        con.close()


class FbStore(SqliteState):
    def __init__(self, path: Path, seed: int = 42) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _migrate(Path(path))
        super().__init__(path, SCHEMA)
        digest = hashlib.sha256(f"freshbooks:{seed}".encode()).hexdigest()
        self.account_id = "zDmNq" + digest[:2].upper()
        self.client_id = "fb-" + digest[2:18]
        self.client_secret = digest[18:50]
        self.initial_refresh_token = digest[50:64] + "r0"
        self.verifier = "vrf-" + digest[:24]
        with self.tx() as con:
            if con.execute("SELECT count(*) FROM seq").fetchone()[0] == 0:
                con.execute("INSERT INTO seq VALUES (?)", (FIRST_ID,))
            con.execute("INSERT OR IGNORE INTO tokens VALUES (?, 'refresh', NULL, 0)", (self.initial_refresh_token,))

    # -- OAuth -------------------------------------------------------------------------------------
    def exchange_refresh(self, refresh_token: str) -> dict | None:
        """Single-use refresh tokens: the old one dies, a new pair is issued."""
        with self.tx() as con:
            row = con.execute("SELECT used FROM tokens WHERE token = ? AND kind = 'refresh'",
                              (refresh_token,)).fetchone()
            if row is None or row[0]:
                return None
            con.execute("UPDATE tokens SET used = 1 WHERE token = ?", (refresh_token,))
            return self._issue(con)

    def _issue(self, con: sqlite3.Connection) -> dict:
        access, refresh = secrets.token_hex(32), secrets.token_hex(32)
        con.execute("INSERT INTO tokens VALUES (?, 'access', ?, 0)", (access, time.time() + ACCESS_TTL_S))
        con.execute("INSERT INTO tokens VALUES (?, 'refresh', NULL, 0)", (refresh,))
        self.bump(con, "token_refreshes")
        return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL_S, "refresh_token": refresh,
                "scope": "user:profile:read user:invoices:read user:invoices:write user:clients:read "
                         "user:clients:write user:payments:read user:payments:write", "created_at": int(time.time())}

    def access_ok(self, token: str) -> bool:
        row = self.read().execute("SELECT expires FROM tokens WHERE token = ? AND kind = 'access'",
                                  (token,)).fetchone()
        return bool(row) and row[0] > time.time()

    # -- documents --------------------------------------------------------------------------------
    def next_id(self) -> int:
        with self.tx() as con:
            return self._next(con)

    @staticmethod
    def _next(con: sqlite3.Connection) -> int:
        n = con.execute("SELECT n FROM seq").fetchone()[0] + 1
        con.execute("UPDATE seq SET n = ?", (n,))
        return n

    def put(self, kind: str, body: dict, updated: float, id_fields: tuple[str, ...] = ("id",)) -> int:
        """Store `body` under its id (`body[id_fields[0]]`); a new document (id None) takes the next id
        of the sequence in the same transaction, written to every field of `id_fields`.  -> the id."""
        with self.tx() as con:
            doc_id = body.get(id_fields[0])
            if doc_id is None:
                doc_id = self._next(con)
                body.update({f: doc_id for f in id_fields})
            con.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)", (kind, doc_id, updated, json.dumps(body)))
            self.bump(con, f"{kind}_writes")
        return doc_id

    def get(self, kind: str, doc_id: int) -> dict | None:
        row = self.read().execute("SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
        return json.loads(row[0]) if row else None

    def all(self, kind: str) -> list[dict]:
        rows = self.read().execute("SELECT body FROM docs WHERE kind = ? ORDER BY id", (kind,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def find(self, kind: str, field: str, value: str) -> list[dict]:
        """The documents whose `field` reads as `value` (the API's exact search: `str(doc[field]) == value`),
        through the field's index; ids are numbers in the JSON, so a numeric value is looked up as both."""
        if field not in SEARCHABLE:
            raise ValueError(f"{field} is not indexed")
        wanted: list[Any] = [value]
        if value.isdigit() and str(int(value)) == value:
            wanted.append(int(value))
        rows = self.read().execute(
            f"SELECT body FROM docs WHERE kind = ? AND json_extract(body, '$.{field}') IN ({', '.join('?' * len(wanted))})"
            " ORDER BY id", (kind, *wanted)).fetchall()
        return [d for d in (json.loads(r[0]) for r in rows) if str(d.get(field)) == value]

    def version(self) -> int:
        """Grows with every document written (by any process): what a cached listing is keyed on."""
        row = self.read().execute("SELECT coalesce(sum(value), 0) FROM counters WHERE name LIKE '%\\_writes' "
                                  "ESCAPE '\\'").fetchone()
        return int(row[0])

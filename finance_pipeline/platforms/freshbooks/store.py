"""What is written to the FreshBooks emulator (clients, invoices, payments, callbacks) and its OAuth
state, in `<sandbox root>/freshbooks.sqlite`, shared by every emulator instance in any process.

Documents are kept as their wire JSON (the emulator validates before storing); ids come from one
sequence above the world's ids, so written and world documents never collide.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

FIRST_ID = 5_000_000
ACCESS_TTL_S = 43_200  # 12 h, FreshBooks' `expires_in`


class FbStore:
    def __init__(self, path: Path, seed: int = 42) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        digest = hashlib.sha256(f"freshbooks:{seed}".encode()).hexdigest()
        self.account_id = "zDmNq" + digest[:2].upper()
        self.client_id = "fb-" + digest[2:18]
        self.client_secret = digest[18:50]
        self.initial_refresh_token = digest[50:64] + "r0"
        self.verifier = "vrf-" + digest[:24]
        con = sqlite3.connect(self.path, timeout=30)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript("""
                CREATE TABLE IF NOT EXISTS docs (kind TEXT, id INTEGER, updated REAL, body TEXT,
                                                 PRIMARY KEY (kind, id));
                CREATE TABLE IF NOT EXISTS seq (n INTEGER);
                CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, kind TEXT, expires REAL, used INTEGER);
                CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER);
            """)
        finally:
            con.close()
        with self._tx() as con:
            if con.execute("SELECT count(*) FROM seq").fetchone()[0] == 0:
                con.execute("INSERT INTO seq VALUES (?)", (FIRST_ID,))
            con.execute("INSERT OR IGNORE INTO tokens VALUES (?, 'refresh', NULL, 0)", (self.initial_refresh_token,))

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            finally:
                con.close()

    # -- OAuth -------------------------------------------------------------------------------------
    def exchange_refresh(self, refresh_token: str) -> dict | None:
        """Single-use refresh tokens: the old one dies, a new pair is issued."""
        with self._tx() as con:
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
        self._count(con, "token_refreshes")
        return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL_S, "refresh_token": refresh,
                "scope": "user:profile:read user:invoices:read user:invoices:write user:clients:read "
                         "user:clients:write user:payments:read user:payments:write", "created_at": int(time.time())}

    def access_ok(self, token: str) -> bool:
        with self._tx() as con:
            row = con.execute("SELECT expires FROM tokens WHERE token = ? AND kind = 'access'", (token,)).fetchone()
        return bool(row) and row[0] > time.time()

    # -- documents --------------------------------------------------------------------------------
    def next_id(self) -> int:
        with self._tx() as con:
            n = con.execute("SELECT n FROM seq").fetchone()[0] + 1
            con.execute("UPDATE seq SET n = ?", (n,))
            return n

    def put(self, kind: str, doc_id: int, body: dict, updated: float) -> None:
        with self._tx() as con:
            con.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)", (kind, doc_id, updated, json.dumps(body)))
            self._count(con, f"{kind}_writes")

    def get(self, kind: str, doc_id: int) -> dict | None:
        with self._tx() as con:
            row = con.execute("SELECT body FROM docs WHERE kind = ? AND id = ?", (kind, doc_id)).fetchone()
        return json.loads(row[0]) if row else None

    def all(self, kind: str) -> list[dict]:
        with self._tx() as con:
            rows = con.execute("SELECT body FROM docs WHERE kind = ? ORDER BY id", (kind,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def _count(self, con: sqlite3.Connection, name: str) -> None:
        con.execute("INSERT INTO counters VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET n = n + 1", (name,))

    def counters(self) -> dict[str, Any]:
        with self._tx() as con:
            return dict(con.execute("SELECT name, n FROM counters").fetchall())

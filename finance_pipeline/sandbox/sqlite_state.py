"""Durable emulator state in SQLite (WAL), shared by every emulator instance in any process.

Destination emulators keep what was written in `<sandbox root>/<name>.sqlite`, so a killed
client, a restarted emulator or an emulator started by another process all see the same
records.  `tx()` is a `BEGIN IMMEDIATE` transaction (one writer at a time across processes);
`read()` a connection for queries.  `bump()` keeps named counters (writes, creates …) that tests
and `/__sandbox/stats` read.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_COUNTERS = "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"


class SqliteState:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._con().executescript(_COUNTERS + schema)  # CREATE … IF NOT EXISTS: safe in any process

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def read(self) -> sqlite3.Connection:
        return self._con()

    @staticmethod
    def bump(con: sqlite3.Connection, name: str, by: int = 1) -> None:
        con.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + ?",
                    [name, by, by])

    def counters(self) -> dict[str, int]:
        return dict(self.read().execute("SELECT name, value FROM counters").fetchall())

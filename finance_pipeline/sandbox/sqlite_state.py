"""Durable emulator state in SQLite (WAL), shared by every emulator instance in any process.

Destination emulators keep what was written in `<sandbox root>/<name>.sqlite`, so a killed
client, a restarted emulator or an emulator started by another process all see the same
records.  `tx()` is a `BEGIN IMMEDIATE` transaction (one writer at a time across processes; one opened
inside another on the same thread is a savepoint of it);
`read()` a connection for queries.  `bump()` keeps named counters (writes, creates …) that tests
and `/__sandbox/stats` read.

Every transaction that changed something also advances a generation number (committed with it),
so `cached(key, build)` can keep a value derived from the whole store (a rendered, sorted list)
until any process writes again: listing N records page by page costs one build, not one per page.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

_COUNTERS = "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
_GENERATION = "_generation"  # a counter row, left out of counters()


class SqliteState:
    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._cache: dict[Any, tuple[int, Any]] = {}
        self._cache_lock = threading.Lock()
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
        if con.in_transaction:  # inside another tx() of this thread (an emulator's atomic change set)
            depth = getattr(self._local, "depth", 0) + 1
            self._local.depth = depth
            con.execute(f"SAVEPOINT sp{depth}")
            try:
                yield con
            except BaseException:
                con.execute(f"ROLLBACK TO sp{depth}")
                con.execute(f"RELEASE sp{depth}")
                raise
            finally:
                self._local.depth = depth - 1
            con.execute(f"RELEASE sp{depth}")
            return
        con.execute("BEGIN IMMEDIATE")
        self._local.changes_at_begin = con.total_changes
        try:
            yield con
            if con.total_changes != self._local.changes_at_begin:
                self.bump(con, _GENERATION)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def generation(self) -> int:
        row = self.read().execute("SELECT value FROM counters WHERE name = ?", [_GENERATION]).fetchone()
        return row[0] if row else 0

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """`build()`, kept until the store changes (in this process or any other).  Inside a
        transaction that has already written, the value is built fresh and not kept.  Callers treat
        the value as read-only."""
        con = self._con()
        if con.in_transaction and con.total_changes != getattr(self._local, "changes_at_begin", None):
            return build()
        generation = self.generation()
        hit = self._cache.get(key)
        if hit is not None and hit[0] == generation:
            return hit[1]
        value = build()
        with self._cache_lock:
            self._cache.pop(key, None)
            self._cache[key] = (generation, value)
            while len(self._cache) > 32:  # a few listings and their sort orders; the oldest goes first
                self._cache.pop(next(iter(self._cache)))
        return value

    def read(self) -> sqlite3.Connection:
        return self._con()

    @staticmethod
    def bump(con: sqlite3.Connection, name: str, by: int = 1) -> None:
        con.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + ?",
                    [name, by, by])

    def counters(self) -> dict[str, int]:
        return dict(self.read().execute("SELECT name, value FROM counters WHERE name <> ?", [_GENERATION]).fetchall())

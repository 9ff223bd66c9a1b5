"""The webhook inbox: `data/webhooks/inbox.sqlite`, SQLite in WAL mode.

The warehouse is DuckDB (one writing process), so the receiver never touches it: accepted events
land here, and the sensor reads them from here.

- One row per (platform, event id): a replayed delivery only bumps `deliveries`.
- `synchronous=FULL`: a commit is on disk before the receiver answers 2xx, so neither `kill -9`
  nor a power cut loses an acknowledged event.  Commits are grouped (`InboxWriter`): concurrent
  deliveries share one fsync instead of paying one each.
- Life of an event: pending (`batch` null) → claimed by a run (`batch` set, `claimed_at`) →
  consumed (`consumed_at`, only after that run succeeded) — or released back to pending when the
  run failed, so nothing is lost and nothing is processed twice by a successful run.
"""
from __future__ import annotations

import queue
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

import orjson

SCHEMA = """
create table if not exists events (
    seq          integer primary key autoincrement,
    platform     text not null,
    event_id     text not null,
    topic        text,
    received_at  text not null,           -- ISO-8601 UTC, when first accepted
    headers      text not null,           -- JSON object of the delivery's headers (signature included)
    body         blob not null,           -- the event's raw bytes as delivered
    deliveries   integer not null default 1,
    batch        text,                    -- the run batch that claimed it (null = pending)
    claimed_at   text,
    consumed_at  text,
    unique (platform, event_id)
);
create index if not exists events_pending on events (platform, consumed_at, batch);
"""


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class InboxEvent:
    platform: str
    event_id: str
    topic: str | None
    headers: dict[str, str]
    body: bytes


def inbox_path(data_dir: Path) -> Path:
    return Path(data_dir) / "webhooks" / "inbox.sqlite"


def connect(path: Path, timeout_s: float = 30.0) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
    con.execute("pragma journal_mode=wal")
    con.execute("pragma synchronous=full")
    con.execute("pragma busy_timeout=30000")
    con.executescript(SCHEMA)
    return con


class Inbox:
    """Reading and state changes (used by the sensor, the CLI and tests)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.con = connect(self.path)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Inbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing (the receiver goes through InboxWriter) -------------------------------------
    def add(self, events: Sequence[InboxEvent]) -> list[bool]:
        """Store events in one transaction; per event, True when new, False for a replay."""
        return write_events(self.con, events)

    # -- reading ---------------------------------------------------------------------------
    def count(self, where: str = "1=1", params: Iterable = ()) -> int:
        return self.con.execute(f"select count(*) from events where {where}", tuple(params)).fetchone()[0]

    def ids(self, platform: str | None = None) -> set[tuple[str, str]]:
        sql, params = "select platform, event_id from events", ()
        if platform:
            sql, params = sql + " where platform = ?", (platform,)
        return {(p, e) for p, e in self.con.execute(sql, params)}

    def pending_by_platform(self) -> dict[str, tuple[int, int]]:
        """platform -> (events waiting, newest seq) for events neither consumed nor claimed."""
        rows = self.con.execute(
            "select platform, count(*), max(seq) from events where consumed_at is null and batch is null "
            "group by platform").fetchall()
        return {p: (n, s) for p, n, s in rows}

    def open_batches(self) -> dict[str, tuple[str, str, int]]:
        """batch -> (platform, claimed_at, events) for claimed, not yet consumed events."""
        rows = self.con.execute(
            "select batch, min(platform), min(claimed_at), count(*) from events "
            "where batch is not null and consumed_at is null group by batch").fetchall()
        return {b: (p, c, n) for b, p, c, n in rows}

    def row(self, platform: str, event_id: str) -> dict | None:
        cur = self.con.execute("select * from events where platform = ? and event_id = ?", (platform, event_id))
        found = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], found)) if found else None

    # -- state changes ---------------------------------------------------------------------
    def claim(self, platform: str, batch: str, up_to_seq: int) -> int:
        cur = self.con.execute(
            "update events set batch = ?, claimed_at = ? where platform = ? and seq <= ? "
            "and batch is null and consumed_at is null", (batch, utcnow(), platform, up_to_seq))
        return cur.rowcount

    def consume(self, batch: str) -> int:
        return self.con.execute("update events set consumed_at = ? where batch = ? and consumed_at is null",
                                (utcnow(), batch)).rowcount

    def release(self, batch: str) -> int:
        return self.con.execute("update events set batch = null, claimed_at = null "
                                "where batch = ? and consumed_at is null", (batch,)).rowcount

    def consume_platform(self, platform: str) -> int:
        """Mark every pending event of a platform consumed (platforms with nothing to run)."""
        return self.con.execute("update events set consumed_at = ?, batch = 'recorded' where platform = ? "
                                "and consumed_at is null and batch is null", (utcnow(), platform)).rowcount


def write_events(con: sqlite3.Connection, events: Sequence[InboxEvent]) -> list[bool]:
    out = []
    now = utcnow()
    con.execute("begin immediate")
    try:
        for e in events:
            cur = con.execute(
                "insert or ignore into events (platform, event_id, topic, received_at, headers, body) "
                "values (?, ?, ?, ?, ?, ?)",
                (e.platform, e.event_id, e.topic, now, orjson.dumps(e.headers).decode(), e.body))
            if cur.rowcount == 0:
                con.execute("update events set deliveries = deliveries + 1 where platform = ? and event_id = ?",
                            (e.platform, e.event_id))
            out.append(cur.rowcount == 1)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return out


class InboxWriter:
    """Group commit: one thread owns the write connection; every delivery waiting when it starts
    a transaction is written in that transaction and acknowledged after its (fsynced) commit."""

    def __init__(self, path: Path, max_batch: int = 512) -> None:
        self.path = Path(path)
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue()
        self._con = connect(self.path)
        self.commits = 0
        self.written = 0
        self._thread = threading.Thread(target=self._loop, name="webhook-inbox-writer", daemon=True)
        self._thread.start()

    def submit(self, events: Sequence[InboxEvent], done: Callable[[list[bool] | None, BaseException | None], None]) -> None:
        self._queue.put((events, done))

    def write(self, events: Sequence[InboxEvent], timeout_s: float = 30.0) -> list[bool]:
        """Blocking variant (tests, scripts)."""
        box: dict = {}
        ready = threading.Event()

        def done(result, error):  # noqa: ANN001
            box["result"], box["error"] = result, error
            ready.set()

        self.submit(events, done)
        if not ready.wait(timeout_s):
            raise TimeoutError("inbox write timed out")
        if box["error"] is not None:
            raise box["error"]
        return box["result"]

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._con.close()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            items = [item]
            stop = False
            while len(items) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                items.append(nxt)
            flat = [e for events, _ in items for e in events]
            try:
                results = write_events(self._con, flat)
                error = None
            except BaseException as exc:  # noqa: BLE001 - every waiter hears about it
                results, error = None, exc
            self.commits += 1
            self.written += len(flat)
            pos = 0
            for events, done in items:
                part = None if results is None else results[pos:pos + len(events)]
                pos += len(events)
                try:
                    done(part, error)
                except Exception:  # noqa: BLE001 - a waiter that went away must not stop the writer
                    pass
            if stop:
                return

"""The webhook inbox: where accepted deliveries wait for the sensor.

It follows the warehouse: with the embedded DuckDB warehouse (one writing process) the receiver never
touches the warehouse, and the inbox is `data/webhooks/inbox.sqlite`, SQLite in WAL mode; with
FINANCE_WAREHOUSE=postgres it is the table `ops.webhook_inbox` on the warehouse server, so the
receiver, the sensor and the CLI on any host see the same events.  `open_inbox(settings)` and
`open_inbox_writer(settings)` pick the one the settings name; `Inbox(target)` / `InboxWriter(target)`
take a path (SQLite) or `PostgresSettings` (the server).

- One row per (platform, event id): a replayed delivery only bumps `deliveries`.
- Durable before the receiver answers 2xx: SQLite commits with `synchronous=FULL`, Postgres with
  `synchronous_commit` at least `on` (raised on the inbox's connections when the server's default is
  `off`), so neither
  `kill -9` nor a power cut loses an acknowledged event.  Commits are grouped (`InboxWriter`):
  concurrent deliveries share one fsync instead of paying one each.
- Life of an event: pending (`batch` null) → claimed by a run (`batch` set, `claimed_at`) →
  consumed (`consumed_at`, only after that run succeeded) — or released back to pending when the
  run failed, so nothing is lost and nothing is processed twice by a successful run.

Both engines run the same statements (`?` parameters; `PgConnection` translates them); only the
table's name, its DDL and the insert-or-count-a-replay statement differ.  Timestamps are ISO-8601 UTC
text on SQLite and `timestamptz` on Postgres; the API hands out the ISO text for both.
"""
from __future__ import annotations

import queue
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, Union

import orjson

if TYPE_CHECKING:
    from finance_pipeline.settings import PostgresSettings, Settings

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

PG_TABLE = "ops.webhook_inbox"
PG_SCHEMA = f"""
create schema if not exists ops;
create table if not exists {PG_TABLE} (
    seq          bigserial primary key,
    platform     text not null,
    event_id     text not null,
    topic        text,
    received_at  timestamptz not null,    -- when first accepted
    headers      json not null,           -- the delivery's headers (signature included), as written
    body         bytea not null,          -- the raw bytes of the event as delivered
    deliveries   integer not null default 1,
    batch        text,                    -- the run batch that claimed it (null = pending)
    claimed_at   timestamptz,
    consumed_at  timestamptz,
    unique (platform, event_id)
);
create index if not exists webhook_inbox_pending on {PG_TABLE} (platform, consumed_at, batch);
"""
# one number for pg_advisory_xact_lock, so two processes creating the table at once do not collide
_PG_DDL_LOCK = 0x6E626F78  # "nbox"
_PG_INSERT = (f"insert into {PG_TABLE} (platform, event_id, topic, received_at, headers, body) "
              "values (?, ?, ?, ?, ?, ?) on conflict (platform, event_id) "
              "do update set deliveries = webhook_inbox.deliveries + 1 returning (xmax = 0)")

InboxTarget = Union[Path, str, "PostgresSettings"]


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


def inbox_target(settings: "Settings") -> "Path | PostgresSettings":
    """The SQLite file under the data directory, or the warehouse server when FINANCE_WAREHOUSE=postgres."""
    if settings.warehouse == "postgres":
        return settings.warehouse_target
    return inbox_path(settings.data_dir)


def describe(target: InboxTarget) -> str:
    """Where the inbox is, for people (no password)."""
    if _is_postgres(target):
        return f"{PG_TABLE} on {target!r}"
    return str(target)


def inbox_location(settings: "Settings") -> str:
    return describe(inbox_target(settings))


def open_inbox(settings: "Settings") -> "Inbox":
    return Inbox(inbox_target(settings))


def open_inbox_writer(settings: "Settings", **kwargs: Any) -> "InboxWriter":
    return InboxWriter(inbox_target(settings), **kwargs)


def _is_postgres(target: object) -> bool:
    return not isinstance(target, (str, Path))


def connect(path: Path, timeout_s: float = 30.0) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
    con.execute("pragma journal_mode=wal")
    con.execute("pragma synchronous=full")
    con.execute("pragma busy_timeout=30000")
    con.executescript(SCHEMA)
    return con


def connect_pg(pg: "PostgresSettings") -> Any:
    """A `PgConnection` to the server with the inbox table in place; its commits wait for the WAL flush."""
    from finance_pipeline.warehouse import open_warehouse

    con = open_warehouse(pg)
    try:
        # every setting but `off` flushes the commit to the local WAL before COMMIT returns; a
        # stricter one the operator chose (remote_write, remote_apply for standbys) is kept
        if con.execute("show synchronous_commit").fetchone()[0] == "off":
            con.execute("set synchronous_commit = on")
        con.begin()
        con.execute("select pg_advisory_xact_lock(?)", [_PG_DDL_LOCK])
        con.execute(PG_SCHEMA)
        con.commit()
    except BaseException:
        con.close()
        raise
    return con


def _connect(target: InboxTarget) -> Any:
    return connect_pg(target) if _is_postgres(target) else connect(Path(target))


def _plain(value: Any) -> Any:
    """Postgres values as the SQLite inbox gives them: ISO text for timestamps, bytes for bytea."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, memoryview):
        return value.tobytes()
    return value


class Inbox:
    """Reading and state changes (used by the sensor, the CLI and tests)."""

    def __init__(self, target: InboxTarget) -> None:
        self.target = target
        self.postgres = _is_postgres(target)
        self.path = None if self.postgres else Path(target)  # the SQLite file (None on Postgres)
        self.table = PG_TABLE if self.postgres else "events"
        self.where = describe(target)
        self.con = _connect(target)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Inbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, sql: str, params: Iterable = ()) -> Any:
        return self.con.execute(sql.format(t=self.table), tuple(params))

    # -- writing (the receiver goes through InboxWriter) -------------------------------------
    def add(self, events: Sequence[InboxEvent]) -> list[bool]:
        """Store events in one transaction; per event, True when new, False for a replay."""
        return (write_events_pg if self.postgres else write_events)(self.con, events)

    # -- reading ---------------------------------------------------------------------------
    def count(self, where: str = "1=1", params: Iterable = ()) -> int:
        return self.con.execute(f"select count(*) from {self.table} where {where}", tuple(params)).fetchone()[0]

    def ids(self, platform: str | None = None) -> set[tuple[str, str]]:
        sql, params = "select platform, event_id from {t}", ()
        if platform:
            sql, params = sql + " where platform = ?", (platform,)
        return {(p, e) for p, e in self._run(sql, params).fetchall()}

    def pending_by_platform(self) -> dict[str, tuple[int, int]]:
        """platform -> (events waiting, newest seq) for events neither consumed nor claimed."""
        rows = self._run(
            "select platform, count(*), max(seq) from {t} where consumed_at is null and batch is null "
            "group by platform").fetchall()
        return {p: (n, s) for p, n, s in rows}

    def open_batches(self) -> dict[str, tuple[str, str, int]]:
        """batch -> (platform, claimed_at, events) for claimed, not yet consumed events."""
        rows = self._run(
            "select batch, min(platform), min(claimed_at), count(*) from {t} "
            "where batch is not null and consumed_at is null group by batch").fetchall()
        return {b: (p, _plain(c), n) for b, p, c, n in rows}

    def row(self, platform: str, event_id: str) -> dict | None:
        cur = self._run("select * from {t} where platform = ? and event_id = ?", (platform, event_id))
        found = cur.fetchone()
        return {d[0]: _plain(v) for d, v in zip(cur.description, found)} if found else None

    # -- state changes ---------------------------------------------------------------------
    def claim(self, platform: str, batch: str, up_to_seq: int) -> int:
        return self._run(
            "update {t} set batch = ?, claimed_at = ? where platform = ? and seq <= ? "
            "and batch is null and consumed_at is null", (batch, utcnow(), platform, up_to_seq)).rowcount

    def consume(self, batch: str) -> int:
        return self._run("update {t} set consumed_at = ? where batch = ? and consumed_at is null",
                         (utcnow(), batch)).rowcount

    def release(self, batch: str) -> int:
        return self._run("update {t} set batch = null, claimed_at = null "
                         "where batch = ? and consumed_at is null", (batch,)).rowcount

    def consume_platform(self, platform: str) -> int:
        """Mark every pending event of a platform consumed (platforms with nothing to run)."""
        return self._run("update {t} set consumed_at = ?, batch = 'recorded' where platform = ? "
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


def write_events_pg(con: Any, events: Sequence[InboxEvent]) -> list[bool]:
    """The Postgres twin of `write_events`: one transaction; a replay bumps `deliveries` in the same
    statement, and `xmax = 0` tells a fresh row from an updated one.

    Unlike SQLite's `begin immediate`, Postgres lets two writers (two receiver processes) run at
    once, each locking the rows it inserts: rows are written in (platform, event id) order, so two
    groups sharing events lock them in the same order and cannot deadlock."""
    out = [False] * len(events)
    now = utcnow()
    order = sorted(range(len(events)), key=lambda i: (events[i].platform, events[i].event_id))  # stable
    con.begin()
    try:
        for i in order:
            e = events[i]
            (new,) = con.execute(_PG_INSERT, (e.platform, e.event_id, e.topic, now,
                                              orjson.dumps(e.headers).decode(), e.body)).fetchone()
            out[i] = bool(new)
        con.commit()
    except BaseException:
        try:
            con.rollback()
        except Exception:  # noqa: BLE001 - a dead connection rolled back on its own; report the first error
            pass
        raise
    return out


class InboxWriter:
    """Group commit: one thread owns the write connection; every delivery waiting when it starts
    a transaction is written in that transaction and acknowledged after its (fsynced) commit."""

    def __init__(self, target: InboxTarget, max_batch: int = 512) -> None:
        self.target = target
        self.postgres = _is_postgres(target)
        self.path = None if self.postgres else Path(target)
        self.where = describe(target)
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue()
        self._con = _connect(target)
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
        if self._con is not None:
            self._con.close()

    def _write(self, events: Sequence[InboxEvent]) -> list[bool]:
        if not self.postgres:
            return write_events(self._con, events)
        # a server restart or a dropped connection fails this group (answered 503, so the platforms
        # retry); the next group opens a new connection
        try:
            if self._con is None:
                self._con = connect_pg(self.target)
            return write_events_pg(self._con, events)
        except BaseException:
            if self._con is not None:
                try:
                    self._con.close()
                except Exception:  # noqa: BLE001 - already broken
                    pass
                self._con = None
            raise

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
                results = self._write(flat)
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

"""The publish ledger: what every destination publisher has written, so re-runs and crashes are safe.

One row per (destination, object_type, business_key) in `ops.publish_ledger` of the warehouse:

    content_hash  hash of the payload last attempted (status 'pending'/'failed') or confirmed ('done';
                  NULL when the record was found at the destination with content we did not write)
    remote_id     the destination's id (Xero InvoiceID, QBO Id, NetSuite internalId …) once known
    status        'pending'  a write was sent (or is about to be) and its outcome is not known yet
                  'done'     the destination holds this content_hash under remote_id
                  'failed'   the destination answered no (last_error says why); retried next run
    attempts      writes sent for this key

and every transition appended to `ops.publish_log` (audit: when, which run, what, why).

The protocol a publisher follows (see `finance_pipeline.publish.mechanics`):
1. `mark_pending` BEFORE sending a write; each mark commits on its own, so a crash at any point
   leaves the key pending rather than forgotten;
2. `mark_done(remote_id)` / `mark_failed(error)` when the answer arrives;
3. on the next start, `pending()` lists the keys whose fate is unknown; the publisher looks each
   up at the destination by its business reference before anything is posted again.

Nothing here knows about any destination; secrets never reach it (errors are redacted upstream).
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Sequence

import duckdb
import orjson
import pyarrow as pa

from finance_pipeline.http.redaction import redact

STATUSES = ("pending", "done", "failed")

DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.publish_ledger (
    destination   VARCHAR NOT NULL,
    object_type   VARCHAR NOT NULL,
    business_key  VARCHAR NOT NULL,
    content_hash  VARCHAR,
    remote_id     VARCHAR,
    status        VARCHAR NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    last_error    VARCHAR,
    attempts      INTEGER NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (destination, object_type, business_key)
);
CREATE TABLE IF NOT EXISTS ops.publish_log (
    logged_at     TIMESTAMPTZ NOT NULL,
    run_id        VARCHAR NOT NULL,
    destination   VARCHAR NOT NULL,
    object_type   VARCHAR NOT NULL,
    business_key  VARCHAR NOT NULL,
    event         VARCHAR NOT NULL,   -- pending | done | failed | found
    content_hash  VARCHAR,
    remote_id     VARCHAR,
    detail        VARCHAR
);
"""

_ROWS = pa.schema([
    ("business_key", pa.string()), ("content_hash", pa.string()), ("remote_id", pa.string()),
    ("detail", pa.string()), ("ts", pa.timestamp("us", tz="UTC")),
])

# For each mark: (status, content_hash rule, last_error rule, attempts increment)
_UPSERT = """
INSERT INTO ops.publish_ledger
SELECT ?, ?, business_key, content_hash, remote_id, '{status}', {error_value}, {attempts_insert}, ts
FROM _ledger_rows
ON CONFLICT (destination, object_type, business_key) DO UPDATE SET
    content_hash = excluded.content_hash,
    remote_id = COALESCE(excluded.remote_id, publish_ledger.remote_id),
    status = excluded.status,
    last_error = {error_update},
    attempts = publish_ledger.attempts + {attempts_update},
    updated_at = excluded.updated_at
"""


def _canonical(value: Any) -> Any:
    """Money-safe canonical form: Decimals keep their digits (normalised), dates are ISO."""
    if isinstance(value, Decimal):
        normal = value.normalize()
        return format(normal if normal != 0 else Decimal(0), "f")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def content_hash(payload: Any) -> str:
    """A stable hash of what would be sent: key order, Decimal scale (10.0 vs 10.00) and date types
    do not matter; any change of a value does."""
    raw = orjson.dumps(_canonical(payload), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    destination: str
    object_type: str
    business_key: str
    content_hash: str | None
    remote_id: str | None
    status: str
    last_error: str | None
    attempts: int
    updated_at: datetime


@dataclass
class Plan:
    """What to do with each desired record, from the ledger alone."""

    new: list[str] = field(default_factory=list)  # never confirmed at the destination: create
    changed: list[LedgerEntry] = field(default_factory=list)  # exists remotely (remote_id), content differs
    unchanged: list[str] = field(default_factory=list)  # done with this exact content: nothing to send
    unresolved: list[LedgerEntry] = field(default_factory=list)  # still pending: never re-post blindly


class PublishLedger:
    """The ledger rows of one destination, on an open (read-write) warehouse connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, destination: str, *, run_id: str | None = None) -> None:
        self.con = con
        self.destination = destination
        self.run_id = run_id or uuid.uuid4().hex

    def ensure_schema(self) -> "PublishLedger":
        self.con.execute(DDL)
        return self

    # -- reading ---------------------------------------------------------------------------------
    def entries(self, object_type: str) -> dict[str, LedgerEntry]:
        rows = self.con.execute(
            "SELECT destination, object_type, business_key, content_hash, remote_id, status, last_error, "
            "attempts, updated_at FROM ops.publish_ledger WHERE destination = ? AND object_type = ?",
            [self.destination, object_type]).fetchall()
        return {r[2]: LedgerEntry(*r) for r in rows}

    def entry(self, object_type: str, business_key: str) -> LedgerEntry | None:
        return self.entries_for(object_type, [business_key]).get(business_key)

    def entries_for(self, object_type: str, keys: Sequence[str]) -> dict[str, LedgerEntry]:
        if not keys:
            return {}
        rows = self.con.execute(
            "SELECT destination, object_type, business_key, content_hash, remote_id, status, last_error, "
            "attempts, updated_at FROM ops.publish_ledger WHERE destination = ? AND object_type = ? "
            "AND business_key IN (SELECT UNNEST(?))", [self.destination, object_type, list(keys)]).fetchall()
        return {r[2]: LedgerEntry(*r) for r in rows}

    def pending(self, object_type: str | None = None) -> list[LedgerEntry]:
        """Keys whose last write has no known outcome (the process died, or no answer came)."""
        sql = ("SELECT destination, object_type, business_key, content_hash, remote_id, status, last_error, "
               "attempts, updated_at FROM ops.publish_ledger WHERE destination = ? AND status = 'pending'")
        args: list[Any] = [self.destination]
        if object_type is not None:
            sql += " AND object_type = ?"
            args.append(object_type)
        return [LedgerEntry(*r) for r in self.con.execute(sql + " ORDER BY business_key", args).fetchall()]

    def plan(self, object_type: str, desired: Iterable[tuple[str, str]]) -> Plan:
        """Split (business_key, content_hash) pairs into new / changed / unchanged / unresolved."""
        entries = self.entries(object_type)
        plan = Plan()
        for key, digest in desired:
            entry = entries.get(key)
            if entry is None:
                plan.new.append(key)
            elif entry.status == "pending":
                plan.unresolved.append(entry)
            elif entry.status == "done" and entry.content_hash == digest:
                plan.unchanged.append(key)
            elif entry.remote_id:
                plan.changed.append(entry)
            else:
                plan.new.append(key)
        return plan

    # -- marking (each call is one committed transaction) ------------------------------------------
    def mark_pending(self, object_type: str, business_key: str, content_hash: str, *,
                     remote_id: str | None = None) -> None:
        self.mark_pending_many(object_type, [(business_key, content_hash, remote_id)])

    def mark_done(self, object_type: str, business_key: str, content_hash: str | None, remote_id: str | None,
                  *, detail: str | None = None) -> None:
        self.mark_done_many(object_type, [(business_key, content_hash, remote_id)], detail=detail)

    def mark_failed(self, object_type: str, business_key: str, content_hash: str | None, error: str, *,
                    remote_id: str | None = None) -> None:
        self.mark_failed_many(object_type, [(business_key, content_hash, error, remote_id)])

    def mark_pending_many(self, object_type: str, rows: Iterable[tuple[str, str, str | None]]) -> None:
        """Before sending: (business_key, content_hash, remote_id or None) for every record of the request."""
        self._apply(object_type, "pending", [(k, h, r, None) for k, h, r in rows])

    def mark_done_many(self, object_type: str, rows: Iterable[tuple[str, str | None, str | None]], *,
                       detail: str | None = None, event: str = "done") -> None:
        self._apply(object_type, "done", [(k, h, r, detail) for k, h, r in rows], event=event)

    def mark_failed_many(self, object_type: str, rows: Iterable[tuple[str, str | None, str, str | None]]) -> None:
        """(business_key, content_hash, error, remote_id or None)."""
        self._apply(object_type, "failed", [(k, h, r, redact(e)[:2000]) for k, h, e, r in rows])

    def _apply(self, object_type: str, status: str, rows: list[tuple[str, str | None, str | None, str | None]],
               event: str | None = None) -> None:
        if not rows:
            return
        now = datetime.now(timezone.utc)
        table = pa.table({
            "business_key": [r[0] for r in rows], "content_hash": [r[1] for r in rows],
            "remote_id": [r[2] for r in rows], "detail": [r[3] for r in rows], "ts": [now] * len(rows),
        }, schema=_ROWS)
        sql = _UPSERT.format(
            status=status,
            error_value="detail" if status == "failed" else "NULL",
            error_update={"failed": "excluded.last_error", "done": "NULL",
                          "pending": "publish_ledger.last_error"}[status],
            attempts_insert="1" if status == "pending" else "0",
            attempts_update="1" if status == "pending" else "0",
        )
        con = self.con
        con.register("_ledger_rows", table)
        try:
            con.begin()
            try:
                con.execute(sql, [self.destination, object_type])
                con.execute("INSERT INTO ops.publish_log SELECT ts, ?, ?, ?, business_key, ?, content_hash, "
                            "remote_id, detail FROM _ledger_rows",
                            [self.run_id, self.destination, object_type, event or status])
                con.commit()
            except BaseException:
                con.rollback()
                raise
        finally:
            con.unregister("_ledger_rows")

    # -- audit -----------------------------------------------------------------------------------
    def log(self, object_type: str | None = None, business_key: str | None = None) -> list[dict]:
        sql = "SELECT * FROM ops.publish_log WHERE destination = ?"
        args: list[Any] = [self.destination]
        if object_type:
            sql += " AND object_type = ?"
            args.append(object_type)
        if business_key:
            sql += " AND business_key = ?"
            args.append(business_key)
        cur = self.con.execute(sql + " ORDER BY logged_at", args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

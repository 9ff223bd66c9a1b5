"""Alert lifecycle in the warehouse: `ops.alerts` (every notification-worthy event),
`ops.alert_state` (conditions currently open) and `ops.alert_deliveries` (one row per event and
sink: the outbox the notifiers work from).

Rules report the conditions that hold *now* (an `Alert` each, with a dedupe key naming the
condition and a `value` that grows as it worsens).  `evaluate` compares them with the open state:

- new condition                              → event `raised`
- open, severity up or value ≥ factor × last  → event `worsened`
- open, unchanged, cooldown elapsed           → event `reminder`
- open, unchanged, within cooldown            → nothing (the same condition alerts once)
- open, no longer reported by its rule        → event `resolved`, state closed

Time is the data clock (`as_of`: the sandbox clock, or now in live mode), so replaying the same
data never re-alerts.  A rule that could not run (its mart is missing) resolves nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable

import duckdb
import orjson
import pyarrow as pa

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

DDL = """
create schema if not exists ops;
create table if not exists ops.alerts (
    alert_id varchar primary key,      -- rule + dedupe key + event + data time
    rule varchar not null,
    severity varchar not null,         -- info | warning | critical
    dedupe_key varchar not null,
    title varchar not null,
    details json,
    raised_at timestamptz not null,    -- wall-clock time the pipeline raised it
    as_of timestamptz not null         -- the data time it describes (sandbox clock in sandbox mode)
);
alter table ops.alerts add column if not exists event varchar default 'raised';
alter table ops.alerts add column if not exists value decimal(18, 4);
create table if not exists ops.alert_state (
    rule varchar not null,
    dedupe_key varchar not null,
    severity varchar not null,
    value decimal(18, 4),
    title varchar not null,
    opened_at timestamptz not null,
    notified_at timestamptz not null,   -- data time of the last event sent for it
    notified_value decimal(18, 4),
    notified_severity varchar not null,
    primary key (rule, dedupe_key)
);
create table if not exists ops.alert_deliveries (
    alert_id varchar not null,
    sink varchar not null,
    status varchar not null,            -- pending | sent | failed (gave up)
    attempts integer not null default 0,
    last_error varchar,
    sent_at timestamptz,
    remote_id varchar,                  -- Slack ts, SMTP Message-ID, webhook status
    primary key (alert_id, sink)
);
"""


@dataclass
class Alert:
    rule: str
    severity: str
    dedupe_key: str
    title: str
    details: dict[str, Any] = field(default_factory=dict)
    cooldown: timedelta = timedelta(hours=24)
    value: Decimal | float | int | None = None  # larger = worse (a rate, a count, a robust z, days late)


@dataclass
class AlertEvent:
    alert_id: str
    event: str  # raised | worsened | reminder | resolved
    rule: str
    severity: str
    dedupe_key: str
    title: str
    details: dict[str, Any]
    as_of: datetime
    value: Decimal | None = None

    def payload(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "event": self.event, "rule": self.rule, "severity": self.severity,
                "dedupe_key": self.dedupe_key, "title": self.title, "details": self.details,
                "as_of": self.as_of.isoformat(), "value": None if self.value is None else str(self.value)}


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def _dec(v: Any) -> Decimal | None:
    if v is None:
        return None
    return Decimal(str(v)).quantize(Decimal("0.0001"))


_DEC = pa.decimal128(18, 4)
_TS = pa.timestamp("us", tz="UTC")
_KEY = {"rule": pa.string(), "dedupe_key": pa.string()}
_STATE = {**_KEY, "severity": pa.string(), "value": _DEC, "title": pa.string()}
_NOTIFIED = {**_STATE, "notified_at": _TS}
_EVENT = {"alert_id": pa.string(), "rule": pa.string(), "severity": pa.string(), "dedupe_key": pa.string(),
          "title": pa.string(), "details": pa.string(), "raised_at": _TS, "as_of": _TS, "event": pa.string(),
          "value": _DEC}
_DELIVERY = {"alert_id": pa.string(), "sink": pa.string()}


def _apply(con: Any, schema: dict[str, pa.DataType], rows: list[tuple], sql: str, params: list | None = None) -> None:
    """One set-based statement over `rows` (tuples in `schema`'s column order), visible to `sql` as
    the table `alert_batch`: an arrow table DuckDB scans in place, a temporary table on PostgreSQL.  One
    statement per kind of change instead of one per alert: a row-at-a-time UPDATE on the composite
    key scans the table, so thousands of alerts cost thousands of scans."""
    if not rows:
        return
    columns = list(zip(*rows))
    table = pa.Table.from_arrays([pa.array(list(col), type=typ) for col, typ in zip(columns, schema.values())],
                                 names=list(schema))
    con.register("alert_batch", table)
    try:
        con.execute(sql, params or [])
    finally:
        con.unregister("alert_batch")


def evaluate(con: duckdb.DuckDBPyConnection, results: dict[str, list[Alert] | None], as_of: datetime,
             worsen_factor: Decimal = Decimal("1.5"), sinks: Iterable[str] = ()) -> list[AlertEvent]:
    """Apply one evaluation: `results` maps each rule name to the conditions it reports now, or
    None when the rule could not run.  Returns the events, already recorded with an outbox row
    per sink.  The decisions are made here, alert by alert; the writes go to the warehouse as one
    statement per kind (`_apply`), in one transaction."""
    ensure(con)
    sinks = list(sinks)
    events: list[AlertEvent] = []
    quiet: list[tuple] = []      # still open, nothing to send: refresh severity / value / title
    notified: list[tuple] = []   # open, and an event was sent now
    opened: list[tuple] = []     # new conditions
    closed: list[tuple] = []     # resolved
    con.execute("begin")
    try:
        running = [rule for rule, alerts in results.items() if alerts is not None]
        state_by_rule: dict[str, dict[str, tuple]] = {rule: {} for rule in running}
        if running:
            for row in con.execute(
                    "select rule, dedupe_key, severity, value, notified_at, notified_value, notified_severity, title "
                    f"from ops.alert_state where rule in ({', '.join('?' * len(running))})", running).fetchall():
                state_by_rule[row[0]][row[1]] = row[1:]
        for rule in running:
            state = state_by_rule[rule]
            seen = set()
            for a in results[rule] or ():
                if a.dedupe_key in seen:
                    continue
                seen.add(a.dedupe_key)
                value = _dec(a.value)
                prev = state.get(a.dedupe_key)
                kind = None
                if prev is None:
                    kind = "raised"
                else:
                    _, _, _, notified_at, notified_value, notified_sev, _ = prev
                    worse_sev = SEVERITY_RANK.get(a.severity, 0) > SEVERITY_RANK.get(notified_sev, 0)
                    worse_val = (value is not None and notified_value is not None and notified_value > 0
                                 and value >= notified_value * worsen_factor)
                    if worse_sev or worse_val:
                        kind = "worsened"
                    elif as_of - notified_at >= a.cooldown:
                        kind = "reminder"
                if kind is None:
                    quiet.append((rule, a.dedupe_key, a.severity, value, a.title))
                    continue
                events.append(AlertEvent(f"{rule}:{a.dedupe_key}:{kind}:{as_of.isoformat()}", kind, rule, a.severity,
                                         a.dedupe_key, a.title, a.details, as_of, value))
                (opened if prev is None else notified).append((rule, a.dedupe_key, a.severity, value, a.title, as_of))
            for key, (_, severity, value, _, _, _, title) in state.items():
                if key in seen:
                    continue
                events.append(AlertEvent(f"{rule}:{key}:resolved:{as_of.isoformat()}", "resolved", rule, "info", key,
                                         f"Resolved: {title}", {"previous_severity": severity}, as_of, value))
                closed.append((rule, key))
        raised_at = datetime.now(timezone.utc)
        event_rows = [(ev.alert_id, ev.rule, ev.severity, ev.dedupe_key, ev.title,
                       orjson.dumps(ev.details, default=str).decode(), raised_at, ev.as_of, ev.event, _dec(ev.value))
                      for ev in events]
        _apply(con, _STATE, quiet,
               "update ops.alert_state set severity = b.severity, value = b.value, title = b.title "
               "from alert_batch b where alert_state.rule = b.rule and alert_state.dedupe_key = b.dedupe_key")
        _apply(con, _NOTIFIED, notified,
               "update ops.alert_state set severity = b.severity, value = b.value, title = b.title, "
               "notified_at = b.notified_at, notified_value = b.value, notified_severity = b.severity "
               "from alert_batch b where alert_state.rule = b.rule and alert_state.dedupe_key = b.dedupe_key")
        _apply(con, _NOTIFIED, opened,
               "insert into ops.alert_state (rule, dedupe_key, severity, value, title, opened_at, notified_at, "
               "notified_value, notified_severity) "
               "select rule, dedupe_key, severity, value, title, notified_at, notified_at, value, severity from alert_batch")
        _apply(con, _KEY, closed,
               "delete from ops.alert_state using alert_batch b "
               "where alert_state.rule = b.rule and alert_state.dedupe_key = b.dedupe_key")
        _apply(con, _EVENT, event_rows,
               "insert into ops.alerts (alert_id, rule, severity, dedupe_key, title, details, raised_at, as_of, "
               "event, value) select alert_id, rule, severity, dedupe_key, title, cast(details as json), raised_at, "
               "as_of, event, value from alert_batch on conflict do nothing")
        _apply(con, _DELIVERY, [(ev.alert_id, sink) for ev in events for sink in sinks],
               "insert into ops.alert_deliveries (alert_id, sink, status) "
               "select alert_id, sink, 'pending' from alert_batch on conflict do nothing")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return events


def pending_deliveries(con: duckdb.DuckDBPyConnection, sinks: Iterable[str], max_attempts: int) -> list[tuple[str, AlertEvent]]:
    """(sink, event) pairs still to send, oldest first (failed sends are retried next time)."""
    sinks = list(sinks)
    if not sinks:
        return []
    rows = con.execute(
        f"""select d.sink, a.alert_id, a.event, a.rule, a.severity, a.dedupe_key, a.title, a.details, a.as_of, a.value
            from ops.alert_deliveries d join ops.alerts a using (alert_id)
            where d.status = 'pending' and d.attempts < ? and d.sink in ({', '.join('?' * len(sinks))})
            order by a.as_of, a.alert_id, d.sink""", [max_attempts, *sinks]).fetchall()
    return [(sink, AlertEvent(aid, ev, rule, sev, key, title, orjson.loads(details) if details else {}, as_of,
                              value)) for sink, aid, ev, rule, sev, key, title, details, as_of, value in rows]


def mark_delivery(con: duckdb.DuckDBPyConnection, alert_id: str, sink: str, ok: bool, detail: str | None,
                  max_attempts: int) -> None:
    if ok:
        con.execute("update ops.alert_deliveries set status = 'sent', attempts = attempts + 1, sent_at = ?, "
                    "remote_id = ?, last_error = null where alert_id = ? and sink = ?",
                    [datetime.now(timezone.utc), detail, alert_id, sink])
    else:
        con.execute("update ops.alert_deliveries set attempts = attempts + 1, last_error = ?, "
                    "status = case when attempts + 1 >= ? then 'failed' else 'pending' end "
                    "where alert_id = ? and sink = ?", [(detail or "")[:500], max_attempts, alert_id, sink])


def mark_deliveries(con: duckdb.DuckDBPyConnection, alert_ids: list[str], sink: str, ok: bool, detail: str | None,
                    max_attempts: int) -> None:
    """`mark_delivery` for many events of one sink with one outcome (a digest: all sent or none),
    as one statement."""
    if ok:
        _apply(con, {"alert_id": pa.string()}, [(a,) for a in alert_ids],
               "update ops.alert_deliveries set status = 'sent', attempts = attempts + 1, "
               "sent_at = ?, remote_id = ?, last_error = null from alert_batch b "
               "where alert_deliveries.alert_id = b.alert_id and alert_deliveries.sink = ?",
               [datetime.now(timezone.utc), detail, sink])
    else:
        _apply(con, {"alert_id": pa.string()}, [(a,) for a in alert_ids],
               "update ops.alert_deliveries set attempts = attempts + 1, last_error = ?, "
               "status = case when attempts + 1 >= ? then 'failed' else 'pending' end from alert_batch b "
               "where alert_deliveries.alert_id = b.alert_id and alert_deliveries.sink = ?",
               [(detail or "")[:500], max_attempts, sink])


def record(con: duckdb.DuckDBPyConnection, alerts: list[Alert], as_of: datetime) -> list[Alert]:
    """One rule's conditions through the lifecycle (kept for callers evaluating a single rule):
    returns the alerts that produced a raised/worsened/reminder event."""
    by_rule: dict[str, list[Alert]] = {}
    for a in alerts:
        by_rule.setdefault(a.rule, []).append(a)
    events = evaluate(con, by_rule, as_of)
    fired = {(e.rule, e.dedupe_key) for e in events if e.event != "resolved"}
    return [a for a in alerts if (a.rule, a.dedupe_key) in fired]


RuleFn = Callable[..., list[Alert]]

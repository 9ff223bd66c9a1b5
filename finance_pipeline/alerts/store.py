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


def _insert(con: duckdb.DuckDBPyConnection, ev: AlertEvent) -> None:
    con.execute(
        "insert into ops.alerts (alert_id, rule, severity, dedupe_key, title, details, raised_at, as_of, event, value) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
        [ev.alert_id, ev.rule, ev.severity, ev.dedupe_key, ev.title, orjson.dumps(ev.details, default=str).decode(),
         datetime.now(timezone.utc), ev.as_of, ev.event, ev.value])


def evaluate(con: duckdb.DuckDBPyConnection, results: dict[str, list[Alert] | None], as_of: datetime,
             worsen_factor: Decimal = Decimal("1.5"), sinks: Iterable[str] = ()) -> list[AlertEvent]:
    """Apply one evaluation: `results` maps each rule name to the conditions it reports now, or
    None when the rule could not run.  Returns the events, already recorded with an outbox row
    per sink."""
    ensure(con)
    sinks = list(sinks)
    events: list[AlertEvent] = []
    con.execute("begin")
    try:
        for rule, alerts in results.items():
            if alerts is None:
                continue
            state = {row[0]: row for row in con.execute(
                "select dedupe_key, severity, value, notified_at, notified_value, notified_severity, title "
                "from ops.alert_state where rule = ?", [rule]).fetchall()}
            seen = set()
            for a in alerts:
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
                    con.execute("update ops.alert_state set severity = ?, value = ?, title = ? "
                                "where rule = ? and dedupe_key = ?", [a.severity, value, a.title, rule, a.dedupe_key])
                    continue
                ev = AlertEvent(f"{rule}:{a.dedupe_key}:{kind}:{as_of.isoformat()}", kind, rule, a.severity,
                                a.dedupe_key, a.title, a.details, as_of, value)
                events.append(ev)
                if prev is None:
                    con.execute("insert into ops.alert_state values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [rule, a.dedupe_key, a.severity, value, a.title, as_of, as_of, value, a.severity])
                else:
                    con.execute("update ops.alert_state set severity = ?, value = ?, title = ?, notified_at = ?, "
                                "notified_value = ?, notified_severity = ? where rule = ? and dedupe_key = ?",
                                [a.severity, value, a.title, as_of, value, a.severity, rule, a.dedupe_key])
            for key, (_, severity, value, _, _, _, title) in state.items():
                if key in seen:
                    continue
                ev = AlertEvent(f"{rule}:{key}:resolved:{as_of.isoformat()}", "resolved", rule, "info", key,
                                f"Resolved: {title}", {"previous_severity": severity}, as_of, value)
                events.append(ev)
                con.execute("delete from ops.alert_state where rule = ? and dedupe_key = ?", [rule, key])
        for ev in events:
            _insert(con, ev)
            for sink in sinks:
                con.execute("insert into ops.alert_deliveries (alert_id, sink, status) values (?, ?, 'pending') "
                            "on conflict do nothing", [ev.alert_id, sink])
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

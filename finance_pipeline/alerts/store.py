"""`ops.alerts`: every alert raised, once per dedupe key within its cooldown."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import orjson

DDL = """
create schema if not exists ops;
create table if not exists ops.alerts (
    alert_id varchar primary key,      -- rule + dedupe key + first raised time
    rule varchar not null,
    severity varchar not null,         -- info | warning | critical
    dedupe_key varchar not null,
    title varchar not null,
    details json,
    raised_at timestamptz not null,    -- wall-clock time the pipeline raised it
    as_of timestamptz not null         -- the data time it describes (sandbox clock in sandbox mode)
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


def record(con: duckdb.DuckDBPyConnection, alerts: list[Alert], as_of: datetime) -> list[Alert]:
    """Insert alerts not already raised for the same dedupe key within their cooldown.

    The cooldown is measured on the data clock (`as_of`), so replaying the same data never
    re-alerts, and a condition that persists alerts again only after its cooldown."""
    con.execute(DDL)
    new = []
    for a in alerts:
        last = con.execute(
            "select max(as_of) from ops.alerts where rule = ? and dedupe_key = ?", [a.rule, a.dedupe_key]
        ).fetchone()[0]
        if last is not None and as_of - last < a.cooldown:
            continue
        con.execute(
            "insert into ops.alerts values (?, ?, ?, ?, ?, ?, ?, ?)",
            [f"{a.rule}:{a.dedupe_key}:{as_of.isoformat()}", a.rule, a.severity, a.dedupe_key, a.title,
             orjson.dumps(a.details, default=str).decode(), datetime.now(timezone.utc), as_of],
        )
        new.append(a)
    return new

"""Send what the outbox (`ops.alert_deliveries`) holds, one sink at a time, recording each outcome.

A failed send stays pending and is retried on the next evaluation, up to `MAX_ATTEMPTS`; each
event goes to each sink once (the row turns 'sent' right after the sink accepted it)."""
from __future__ import annotations

import logging

import duckdb

from finance_pipeline.alerts import store
from finance_pipeline.notify.config import MAX_ATTEMPTS
from finance_pipeline.notify.sinks import SinkError

log = logging.getLogger("finance_pipeline.notify")
DIGEST_AFTER = 10  # more events than this for one sink in one evaluation → one digest message


def deliver(con: duckdb.DuckDBPyConnection, sinks: dict[str, object], max_attempts: int = MAX_ATTEMPTS,
            digest_after: int = DIGEST_AFTER) -> dict[str, dict]:
    """-> {sink: {"sent": n, "failed": n, "errors": [...]}}.  A sink for people (Slack, email) with
    more than `digest_after` events waiting gets them as one digest message instead of a flood."""
    report: dict[str, dict] = {name: {"sent": 0, "failed": 0, "errors": []} for name in sinks}
    pending = store.pending_deliveries(con, sinks, max_attempts)
    by_sink: dict[str, list] = {}
    for sink_name, event in pending:
        by_sink.setdefault(sink_name, []).append(event)
    for sink_name, events in by_sink.items():
        sink = sinks[sink_name]
        if len(events) > digest_after and hasattr(sink, "send_digest"):
            pending = [(n, e) for n, e in pending if n != sink_name]  # all or nothing, as one message
            try:
                remote = sink.send_digest(events)
            except SinkError as exc:
                store.mark_deliveries(con, [e.alert_id for e in events], sink_name, False, str(exc), max_attempts)
                report[sink_name]["failed"] += len(events)
                report[sink_name]["errors"].append(str(exc))
                log.warning("alert digest not delivered to %s: %s", sink_name, exc)
                continue
            store.mark_deliveries(con, [e.alert_id for e in events], sink_name, True, f"digest:{remote}", max_attempts)
            report[sink_name]["sent"] += len(events)
    for sink_name, event in pending:
        sink = sinks[sink_name]
        try:
            remote = sink.send(event)
        except SinkError as exc:
            store.mark_delivery(con, event.alert_id, sink_name, False, str(exc), max_attempts)
            report[sink_name]["failed"] += 1
            report[sink_name]["errors"].append(str(exc))
            log.warning("alert %s not delivered to %s: %s", event.alert_id, sink_name, exc)
            continue
        store.mark_delivery(con, event.alert_id, sink_name, True, remote, max_attempts)
        report[sink_name]["sent"] += 1
    return report

"""Webhook-driven runs: a sensor reads the webhook inbox and launches targeted incremental runs.

Each tick:
1. settles the batches it launched earlier, by the status of the run carrying the batch's tag:
   success → the batch's events are consumed; failure or cancellation → they go back to pending
   (the next tick launches them again); a batch whose run never appeared within
   `ORPHAN_AFTER` is released too (the tick that claimed it failed before its run was created);
2. for each platform with pending events and no batch in flight, claims them as a new batch and
   requests one run of `webhook_sync` limited to that platform's ingest assets and what is
   downstream of them (staging → marts → alerts; never publishing).  Events of a platform with
   no ingest asset (a destination such as Xero) are recorded only and consumed at once.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from finance_pipeline.defs.common import WAREHOUSE_TAG
from finance_pipeline.defs.schedules import ALERTS, INGEST, TRANSFORM
from finance_pipeline.platforms import registry
from finance_pipeline.settings import get_settings
from finance_pipeline.webhooks.inbox import Inbox, inbox_target

BATCH_TAG = "finance/webhook_batch"
ORPHAN_AFTER = timedelta(minutes=10)
DONE_OK = {DagsterRunStatus.SUCCESS}
DONE_BAD = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

webhook_sync = define_asset_job(
    "webhook_sync", selection=INGEST | TRANSFORM | ALERTS,
    description="Incremental run of one platform and the models downstream of it, launched by webhook events "
                "(the sensor narrows the selection to the platform that sent them).",
    tags={WAREHOUSE_TAG: "writer", "finance/trigger": "webhook"},
)


def platform_selection(asset_graph, platform: str) -> list:  # noqa: ANN001
    """The platform's ingest assets and everything downstream of them except publishing."""
    own = AssetSelection.groups("ingest") & AssetSelection.key_prefixes([f"raw_{platform}"])
    selection = own.downstream() - AssetSelection.groups("publish")
    return sorted(selection.resolve(asset_graph), key=lambda k: k.to_user_string())


def settle(inbox: Inbox, instance, now: datetime) -> set[str]:  # noqa: ANN001
    """Consume or release the batches launched earlier; -> platforms with a batch still running."""
    busy = set()
    for batch, (platform, claimed_at, _) in inbox.open_batches().items():
        runs = instance.get_runs(filters=RunsFilter(tags={BATCH_TAG: batch}), limit=1)
        if not runs:
            if now - datetime.fromisoformat(claimed_at) > ORPHAN_AFTER:
                inbox.release(batch)
            else:
                busy.add(platform)
            continue
        status = runs[0].status
        if status in DONE_OK:
            inbox.consume(batch)
        elif status in DONE_BAD:
            inbox.release(batch)
        else:
            busy.add(platform)
    return busy


def requests_for_inbox(inbox: Inbox, instance, asset_graph, now: datetime | None = None) -> list[RunRequest]:  # noqa: ANN001
    now = now or datetime.now(timezone.utc)
    busy = settle(inbox, instance, now)
    out = []
    for platform, (count, newest) in sorted(inbox.pending_by_platform().items()):
        if platform in busy:
            continue
        entry = registry.BY_NAME.get(platform)
        if entry is None or not entry.is_source or not entry.source:
            inbox.consume_platform(platform)
            continue
        keys = platform_selection(asset_graph, platform)
        if not keys:
            continue
        batch = f"{platform}:{newest}:{uuid.uuid4().hex[:8]}"
        claimed = inbox.claim(platform, batch, newest)
        out.append(RunRequest(run_key=f"webhook:{batch}", asset_selection=keys,
                              tags={BATCH_TAG: batch, "finance/platform": platform, "finance/trigger": "webhook",
                                    "finance/webhook_events": str(claimed)}))
    return out


@sensor(job=webhook_sync, name="webhook_inbox_sensor", minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="New webhook events in the inbox (data/webhooks/inbox.sqlite, or ops.webhook_inbox on the Postgres "
                    "warehouse) → one targeted incremental run per platform; "
                    "events are marked consumed only when that run succeeded.")
def webhook_inbox_sensor(context: SensorEvaluationContext):
    settings = get_settings()
    target = inbox_target(settings)
    if isinstance(target, Path) and not target.exists():  # SQLite: the receiver has not run yet
        return SkipReason(f"no webhook inbox yet ({target})")
    with Inbox(target) as inbox:
        requests = requests_for_inbox(inbox, context.instance, context.repository_def.asset_graph)
    if not requests:
        return SkipReason("no new webhook events")
    return requests


sensors = [webhook_inbox_sensor]
jobs = [webhook_sync]

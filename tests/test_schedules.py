"""Schedules never overlap themselves; the webhook sensor turns inbox events into one targeted run per
platform and marks them consumed only after that run succeeded; the alerts asset and its sensor."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

from finance_pipeline.defs import sensors as sensors_mod
from finance_pipeline.defs.schedules import daily_schedule, hourly_schedule
from finance_pipeline.defs.sensors import BATCH_TAG, webhook_inbox_sensor
from finance_pipeline.webhooks.inbox import Inbox, InboxEvent, inbox_path


@pytest.fixture(scope="module")
def defs():
    from finance_pipeline.definitions import defs

    return defs


def _add_run(instance, job, status, tags=None):
    run = DagsterRun(job_name=job, run_id=make_new_run_id(), tags=tags or {}, status=status)
    instance.add_run(run)
    return run


def test_definitions_show_schedules_sensors_and_jobs(defs):
    assert {s.name for s in defs.schedules} == {"hourly_sync_schedule", "daily_close_schedule"}
    assert {s.name for s in defs.sensors} == {"alerts_after_marts_sensor", "webhook_inbox_sensor"}
    for job in ("hourly_sync", "daily_close", "webhook_sync", "evaluate_alerts"):
        assert defs.resolve_job_def(job).tags["finance/warehouse"] == "writer"  # queued one at a time


@pytest.mark.parametrize("schedule,job", [(hourly_schedule, "hourly_sync"), (daily_schedule, "daily_close")])
def test_schedule_ticks_with_tags_and_skips_while_its_job_runs(schedule, job):
    tick = datetime(2026, 1, 5, 6, 30, tzinfo=timezone.utc)
    with instance_for_test() as instance:
        request = schedule(build_schedule_context(instance=instance, scheduled_execution_time=tick))
        assert isinstance(request, RunRequest)
        assert request.tags["finance/trigger"] == "schedule" and request.run_key.startswith(job)
        _add_run(instance, "some_other_job", DagsterRunStatus.STARTED)
        assert isinstance(schedule(build_schedule_context(instance=instance, scheduled_execution_time=tick)), RunRequest)
        running = _add_run(instance, job, DagsterRunStatus.STARTING)
        skipped = schedule(build_schedule_context(instance=instance, scheduled_execution_time=tick))
        assert isinstance(skipped, SkipReason) and running.run_id in skipped.skip_message
        instance.delete_run(running.run_id)
        _add_run(instance, job, DagsterRunStatus.SUCCESS)
        assert isinstance(schedule(build_schedule_context(instance=instance, scheduled_execution_time=tick)), RunRequest)


def _events(platform, ids):
    return [InboxEvent(platform, i, "orders/updated", {}, b"{}") for i in ids]


def test_webhook_sensor_targets_the_platform_and_consumes_only_after_success(tmp_path, monkeypatch, defs):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    with DagsterInstance.ephemeral() as instance:
        ctx = build_sensor_context(instance=instance, definitions=defs)
        assert isinstance(webhook_inbox_sensor(ctx), SkipReason)  # no inbox yet
        with Inbox(inbox_path(tmp_path)) as inbox:
            inbox.add(_events("shopify", ["a", "b"]) + _events("xero", ["x1"]))
        (request,) = webhook_inbox_sensor(build_sensor_context(instance=instance, definitions=defs))
        keys = set(request.asset_selection)
        assert AssetKey(["raw_shopify", "orders"]) in keys and AssetKey(["marts", "fct_orders"]) in keys
        assert AssetKey(["ops", "alerts"]) in keys
        assert not any(k.path[0] == "raw_stripe" for k in keys)  # only the platform that sent events
        assert not any(k.path[0] == "publish" for k in keys)  # never publishing from a webhook
        batch = request.tags[BATCH_TAG]
        assert request.tags["finance/webhook_events"] == "2"
        with Inbox(inbox_path(tmp_path)) as inbox:
            assert inbox.count("platform = 'xero' and consumed_at is not null") == 1  # a destination: recorded only
            assert inbox.count("batch = ?", [batch]) == 2 and inbox.count("consumed_at is not null") == 1
            inbox.add(_events("shopify", ["c"]))  # arrives while the run is being launched

        # the run has not appeared yet: nothing new is launched for shopify, nothing consumed
        assert isinstance(webhook_inbox_sensor(build_sensor_context(instance=instance, definitions=defs)), SkipReason)
        # the run failed: its events go back to pending and a new batch (with the new event) is requested
        _add_run(instance, "webhook_sync", DagsterRunStatus.FAILURE, {BATCH_TAG: batch})
        (retry,) = webhook_inbox_sensor(build_sensor_context(instance=instance, definitions=defs))
        assert retry.tags[BATCH_TAG] != batch and retry.tags["finance/webhook_events"] == "3"
        with Inbox(inbox_path(tmp_path)) as inbox:
            assert inbox.count("platform = 'shopify' and consumed_at is null") == 3
        # still running: nothing happens
        started = _add_run(instance, "webhook_sync", DagsterRunStatus.STARTED, {BATCH_TAG: retry.tags[BATCH_TAG]})
        assert isinstance(webhook_inbox_sensor(build_sensor_context(instance=instance, definitions=defs)), SkipReason)
        instance.delete_run(started.run_id)
        _add_run(instance, "webhook_sync", DagsterRunStatus.SUCCESS, {BATCH_TAG: retry.tags[BATCH_TAG]})
        assert isinstance(webhook_inbox_sensor(build_sensor_context(instance=instance, definitions=defs)), SkipReason)
        with Inbox(inbox_path(tmp_path)) as inbox:
            assert inbox.count("platform = 'shopify' and consumed_at is not null") == 3


def test_orphaned_batch_is_released(tmp_path, monkeypatch, defs):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    with Inbox(inbox_path(tmp_path)) as inbox:
        inbox.add(_events("stripe", ["evt_1"]))
        inbox.claim("stripe", "stripe:1:dead", 10)
    with DagsterInstance.ephemeral() as instance, Inbox(inbox_path(tmp_path)) as inbox:
        now = datetime.now(timezone.utc)
        assert sensors_mod.requests_for_inbox(inbox, instance, defs.resolve_asset_graph(), now) == []
        later = now + sensors_mod.ORPHAN_AFTER + timedelta(minutes=1)
        (request,) = sensors_mod.requests_for_inbox(inbox, instance, defs.resolve_asset_graph(), later)
        assert request.tags["finance/platform"] == "stripe"


def test_alerts_sensor_requests_an_evaluation_after_a_manual_marts_refresh(defs):
    from dagster import AssetMaterialization

    from finance_pipeline.defs.alerts import alerts_after_marts_sensor

    with DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(AssetMaterialization(asset_key=AssetKey(["marts", "fct_payments"])))
        ctx = build_sensor_context(instance=instance, definitions=defs)
        requests = list(alerts_after_marts_sensor(ctx) or [])
        assert len(requests) == 1 and requests[0].run_key

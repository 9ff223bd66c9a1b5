"""A restart of the Dagster daemon on PostgreSQL storage loses nothing (issue #11).

deploy/postgres/dagster.yaml as shipped, on a real PostgreSQL server (tests/pg_helpers.py), and the
daemon as the systemd unit runs it: `dagster-daemon run -w workspace.yaml`. The test

1. sets state up as an operator and the outside world would: the daily schedule stopped, the hourly
   one started two hours ago (so the daemon owes it a tick), a manual rebuild of marts/fct_payments
   reported (what the alerts sensor watches), webhook events in the inbox, and an hourly sync in
   flight on another worker. That run holds the one `finance/warehouse` slot of the run queue, so
   every run the daemon requests stays queued (nothing heavy runs, and the queue's limit is on trial
   across the restart too), and the hourly schedule skips its tick rather than overlap it;
2. lets a first daemon work: the hourly tick is recorded (skipped), the alerts sensor moves its
   cursor past the rebuild and queues a run, the webhook sensor claims Shopify's events as a batch
   and queues its run, Xero's event (a destination, nothing to ingest) is recorded as consumed;
3. kills it with SIGKILL (daemon and code server at once), accepts Stripe events while no daemon
   runs, starts a second daemon and waits for its first sensor ticks;
4. checks that nothing was lost, redone or let through.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorTick,
    ScheduleInstigatorData,
    TickStatus,
)
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from daemon_helpers import WORKSPACE, DaemonProcess
from finance_pipeline.defs.common import WAREHOUSE_TAG
from finance_pipeline.defs.sensors import BATCH_TAG
from finance_pipeline.webhooks.inbox import Inbox, InboxEvent, inbox_path
from pg_helpers import dagster_pg_env, pg_server, postgres_dagster_home  # noqa: F401

LOCATION = "finance_pipeline"
INSTIGATORS = {"hourly": "hourly_sync_schedule", "daily": "daily_close_schedule",
               "alerts": "alerts_after_marts_sensor", "inbox": "webhook_inbox_sensor"}
PAYMENTS = AssetKey(["marts", "fct_payments"])
# what the queued-run coordinator logs on each pass over a non-empty queue
QUEUE_PASS = "checking tag concurrency limits for queued runs"
IN_FLIGHT = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
DONE = {TickStatus.SUCCESS, TickStatus.SKIPPED, TickStatus.FAILURE}


@pytest.fixture
def daemons(tmp_path):
    """start(env, name) -> a running DaemonProcess; every one is killed after the test, pass or fail."""
    started: list[DaemonProcess] = []

    def start(env: dict[str, str], name: str) -> DaemonProcess:
        daemon = DaemonProcess(env, tmp_path / f"{name}.log")
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.kill()


def _event(platform: str, event_id: str, topic: str) -> InboxEvent:
    body = json.dumps({"id": event_id, "topic": topic}).encode()
    return InboxEvent(platform, event_id, topic, {"content-type": "application/json"}, body)


@dataclass
class Snapshot:
    states: dict[str, InstigatorState | None]
    ticks: dict[str, dict[int, InstigatorTick]]
    runs: dict[str, DagsterRun]
    events: dict[str, list[tuple[int, str]]]  # run id -> (storage id, event type) in order
    inbox: dict[tuple[str, str], dict]


def _snapshot(instance: DagsterInstance, ids: dict[str, tuple[str, str]], inbox: Inbox) -> Snapshot:
    runs = {r.run_id: r for r in instance.get_runs()}
    return Snapshot(
        states={k: instance.get_instigator_state(*ids[k]) for k in ids},
        ticks={k: {t.tick_id: t for t in instance.get_ticks(*ids[k])} for k in ids},
        runs=runs,
        events={run_id: [(rec.storage_id, rec.event_log_entry.dagster_event_type.value)
                         for rec in instance.get_records_for_run(run_id).records] for run_id in runs},
        inbox={key: inbox.row(*key) for key in inbox.ids()},
    )


def _done_tick(instance: DagsterInstance, ids: tuple[str, str], seen: dict[int, InstigatorTick] | None = None
               ) -> InstigatorTick | None:
    """The newest finished tick of an instigator that is not in `seen`."""
    return next((t for t in instance.get_ticks(*ids) if t.status in DONE and t.tick_id not in (seen or {})), None)


def _iso(timestamp: float) -> str:
    """As the inbox writes its times (finance_pipeline/webhooks/inbox.py utcnow), so they compare as text."""
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="microseconds")


def _tables_holding(dsn: str, secret: str) -> list[str]:
    """Tables of Dagster's database with a row whose text contains `secret`."""
    import psycopg2

    con = psycopg2.connect(dsn)
    try:
        with con.cursor() as cur:
            cur.execute("select table_name from information_schema.tables "
                        "where table_schema = 'public' and table_type = 'BASE TABLE'")
            tables = [r[0] for r in cur.fetchall()]
            found = []
            for table in tables:
                cur.execute(f'select count(*) from "{table}" t where strpos(t::text, %s) > 0', (secret,))
                if cur.fetchone()[0]:
                    found.append(table)
            return found
    finally:
        con.close()


def test_daemon_restart_keeps_schedules_sensor_cursor_inbox_and_runs(pg_server, tmp_path, monkeypatch, daemons):  # noqa: F811
    database = pg_server.create_database("dagster_restart")
    home = postgres_dagster_home(tmp_path / "dagster_home")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**dagster_pg_env(pg_server, database), "DAGSTER_HOME": str(home), "FINANCE_DATA_DIR": str(data_dir)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    with DagsterInstance.get() as instance, Inbox(inbox_path(data_dir)) as inbox:
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"

        # -- 1. state, set up before any daemon runs ---------------------------------------------
        with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(WORKSPACE)])) as workspace:
            location = workspace.create_request_context().get_code_location(LOCATION)
            (repo,) = location.get_repositories().values()
            remote = {k: repo.get_schedule(name) if name.endswith("_schedule") else repo.get_sensor(name)
                      for k, name in INSTIGATORS.items()}
            ids = {k: (r.get_remote_origin_id(), r.selector_id) for k, r in remote.items()}
            instance.stop_schedule(*ids["daily"], remote["daily"])
            hourly_since = time.time() - 2 * 3600
            instance.add_instigator_state(InstigatorState(
                remote["hourly"].get_remote_origin(), InstigatorType.SCHEDULE, InstigatorStatus.RUNNING,
                ScheduleInstigatorData(remote["hourly"].cron_schedule, start_timestamp=hourly_since)))

        blocker = instance.add_run(DagsterRun(
            job_name="hourly_sync", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED,
            tags={WAREHOUSE_TAG: "writer", "finance/cadence": "hourly", "finance/trigger": "schedule"}))
        instance.report_runless_asset_event(AssetMaterialization(PAYMENTS, description="rebuilt from the UI"))
        (rebuild,) = instance.fetch_materializations(PAYMENTS, limit=1).records
        inbox.add([_event("shopify", "shp-1", "orders/updated"), _event("shopify", "shp-2", "refunds/create"),
                   _event("xero", "xero-1", "INVOICE")])

        # -- 2. the first daemon ------------------------------------------------------------------
        first = daemons(env, "daemon-1")
        hourly_tick = first.wait_for("an hourly schedule tick", lambda: _done_tick(instance, ids["hourly"]), 120)
        alerts_tick = first.wait_for("an alerts sensor tick", lambda: _done_tick(instance, ids["alerts"]), 90)
        inbox_tick = first.wait_for("a webhook sensor tick", lambda: _done_tick(instance, ids["inbox"]), 90)
        # the scenario is the one described above (else the checks below would prove less than they claim)
        assert hourly_tick.status == TickStatus.SKIPPED and blocker.run_id in hourly_tick.skip_reason
        assert alerts_tick.status == TickStatus.SUCCESS and len(alerts_tick.run_ids) == 1
        assert inbox_tick.status == TickStatus.SUCCESS and len(inbox_tick.run_ids) == 1
        shopify_batch = instance.get_run_by_id(inbox_tick.run_ids[0]).tags[BATCH_TAG]
        assert {inbox.row("shopify", e)["batch"] for e in ("shp-1", "shp-2")} == {shopify_batch}
        assert inbox.row("xero", "xero-1")["consumed_at"] is not None
        assert instance.get_run_by_id(alerts_tick.run_ids[0]).job_name == "evaluate_alerts"
        assert instance.get_instigator_state(*ids["alerts"]).instigator_data.cursor == str(rebuild.storage_id)
        inbox.add([_event("shopify", "shp-3", "orders/create")])  # arrives after the tick: waits, Shopify is busy

        before = _snapshot(instance, ids, inbox)
        queued = {run_id for run_id, run in before.runs.items() if run.status == DagsterRunStatus.QUEUED}
        assert queued == {alerts_tick.run_ids[0], inbox_tick.run_ids[0]}

        # -- 3. SIGKILL, events while down, a second daemon ------------------------------------------
        first.kill()
        killed_at = time.time()
        stripe = [("stripe", f"evt_{i}") for i in (1, 2, 3)]
        inbox.add([_event(p, e, "charge.refunded") for p, e in stripe])

        second = daemons(env, "daemon-2")
        new_inbox_tick = second.wait_for("a webhook sensor tick after the restart",
                                         lambda: _done_tick(instance, ids["inbox"], before.ticks["inbox"]), 120)
        new_alerts_tick = second.wait_for("an alerts sensor tick after the restart",
                                          lambda: _done_tick(instance, ids["alerts"], before.ticks["alerts"]), 120)
        second.wait_for("a pass of the run queue", lambda: QUEUE_PASS in second.output(), 60)
        after = _snapshot(instance, ids, inbox)
        second.kill()

        # -- 4a. every tick recorded before the kill still there, as it was
        for key, ticks in before.ticks.items():
            for tick_id, tick in ticks.items():
                if tick.status in DONE:
                    assert after.ticks[key][tick_id].tick_data == tick.tick_data, (key, tick_id)

        # -- 4b. schedules: the stopped one stopped, the running one running, no schedule time redone
        assert after.states["daily"].status == InstigatorStatus.STOPPED
        assert not after.ticks["daily"]
        assert after.states["hourly"].status == InstigatorStatus.RUNNING
        assert after.states["hourly"].instigator_data.start_timestamp == pytest.approx(hourly_since)
        scheduled_for = [t.timestamp for t in after.ticks["hourly"].values()]
        assert len(scheduled_for) == len(set(scheduled_for)), "a schedule time was evaluated twice"
        # and no tick, before or after the restart, started an hourly sync beside the one in flight
        assert [r.run_id for r in instance.get_runs(RunsFilter(job_name="hourly_sync"))] == [blocker.run_id]

        # -- 4c. the alerts sensor: cursor kept, and its next tick starts after it ------------------------
        cursor = before.states["alerts"].instigator_data.cursor
        assert after.states["alerts"].instigator_data.cursor == cursor == str(rebuild.storage_id)
        assert new_alerts_tick.status == TickStatus.SKIPPED and not new_alerts_tick.run_ids
        # from the stored cursor there is nothing new; from a lost one the sensor evaluates the rebuild
        # again and only the used run key stops a second run (a skipped tick without this reason)
        assert "No new materialization events" in (new_alerts_tick.skip_reason or ""), new_alerts_tick.skip_reason
        assert new_alerts_tick.cursor == cursor
        assert len(instance.get_runs(RunsFilter(job_name="evaluate_alerts"))) == 1

        # -- 4d. the webhook inbox: every event there, none claimed twice, the new ones claimed once
        assert set(after.inbox) == set(before.inbox) | set(stripe)
        for key, row in before.inbox.items():
            assert after.inbox[key] == row, key  # Shopify's batch still claimed (its run is queued), Xero's consumed
        assert after.inbox[("shopify", "shp-3")]["batch"] is None
        (stripe_batch,) = {after.inbox[key]["batch"] for key in stripe}
        assert stripe_batch and stripe_batch.startswith("stripe:")
        assert all(after.inbox[key]["claimed_at"] > _iso(killed_at) for key in stripe)
        assert new_inbox_tick.status == TickStatus.SUCCESS and len(new_inbox_tick.run_ids) == 1
        open_batches = inbox.open_batches()
        assert set(open_batches) == {shopify_batch, stripe_batch}
        for batch in open_batches:
            (run,) = instance.get_runs(RunsFilter(tags={BATCH_TAG: batch}))
            assert run.status == DagsterRunStatus.QUEUED

        # -- 4e. runs and their event logs all there; the queue still let nothing past the writer in flight
        new_runs = set(after.runs) - set(before.runs)
        assert new_runs == set(new_inbox_tick.run_ids)
        for run_id, run in before.runs.items():
            kept = after.runs[run_id]
            assert (kept.job_name, kept.status, kept.tags) == (run.job_name, run.status, run.tags), run_id
            assert after.events[run_id] == before.events[run_id], run_id
        for run_id in queued:
            assert "PIPELINE_ENQUEUED" in {kind for _, kind in before.events[run_id]}
        assert [r.run_id for r in instance.get_runs(RunsFilter(statuses=IN_FLIGHT))] == [blocker.run_id]

    # -- 4f. the database password: in no log, no file of the Dagster home, no stored row
    password = pg_server.password
    for daemon in (first, second):
        assert password not in daemon.output(), f"{daemon.log.name} holds the database password"
    for path in home.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path
    assert _tables_holding(pg_server.dsn_for(database), password) == []

"""On the real pipeline (small sandbox worlds, real Dagster jobs):
- the default world's anomalies (a volume spike on 2025-12-31, a customer who stopped paying) are
  real orders and charges: the marts still equal the oracle, the main job raises the spike alert
  once per sink, and moving the clock past it sends the resolved message;
- a month of alert evaluations on the normal world (`FINANCE_SANDBOX_ANOMALIES=off`) raises no
  anomaly alert, and no overdue alert the world's truth does not bear out;
- a signed webhook delivery becomes a targeted run through the sensor and is consumed after it."""
from __future__ import annotations

import shutil
from datetime import timedelta
from decimal import Decimal

import duckdb
import httpx
import pytest
from dagster import DagsterInstance, build_sensor_context

from finance_pipeline.alerts import rules, store
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.webhooks import receiver
from finance_pipeline.webhooks.inbox import Inbox, inbox_path
from tests.conftest import make_settings
from tests.pipeline_helpers import compare_with_oracle, pipeline_env, run_job

pytestmark = pytest.mark.slow
ANOMALY_RULES = {"order_volume", "payment_failures", "payout_missing", "payout_short", "reconciliation_break",
                 "stale_sync"}


QUIET = {"FINANCE_SANDBOX_ANOMALIES": "off"}


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """The normal world: anomalies off, one hourly sync at the default clock."""
    data = tmp_path_factory.mktemp("alerts-quiet-world")
    with pipeline_env(data, size=2000, **QUIET):
        sandbox = Sandbox(data / "sandbox")
        sandbox.init(42, 2000)
        assert sandbox.world_path().name.endswith("-quiet.duckdb")
        sandbox.ensure_world()
    run_job(data, job="hourly_sync", size=2000, FINANCE_ALERT_SINKS="none", **QUIET)
    return data


def test_world_anomalies_flow_through_and_alert_once_per_sink_then_resolve(small_world_dir, tmp_path):
    from finance_pipeline.notify import sandbox as local

    data = tmp_path / "anomalies"
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    sandbox = Sandbox(data / "sandbox")
    assert not sandbox.world_path().name.endswith("-quiet.duckdb")
    run_job(data, job="hourly_sync", size=2000)
    assert compare_with_oracle(data / "warehouse.duckdb", sandbox) == {}  # real orders and charges
    settings = make_settings(data)

    def spike_messages(sink):  # a message is the event alone, or a digest listing it
        return [str(m) for m in local.read_log(settings, sink) if "shopify: " in str(m) and "orders in the last" in str(m)]

    spike = spike_messages("slack")
    assert len(spike) == 1 and "[ALERT] [" in spike[0]
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute("select event, dedupe_key from ops.alerts where rule = 'order_volume'").fetchall()
        assert rows == [("raised", "shopify:spike")]
        non_payer = con.execute("select dedupe_key, severity from ops.alert_state where rule = 'overdue_invoices'").fetchall()
    finally:
        con.close()
    assert non_payer  # the customer who stopped paying is among the overdue alerts
    for sink in ("email", "webhook"):
        assert len(spike_messages(sink)) == 1

    sandbox.advance(48)
    run_job(data, job="hourly_sync", size=2000)
    for sink in ("slack", "email"):
        msgs = spike_messages(sink)
        assert len(msgs) == 2 and "[ALERT] [" in msgs[0] and "[RESOLVED] [" in msgs[1], msgs
    hooks = [h["payload"] for h in local.read_log(settings, "webhook") if h["payload"]["rule"] == "order_volume"]
    assert [h["event"] for h in hooks] == ["raised", "resolved"]


def _world_paid(world: duckdb.DuckDBPyConnection, invoice: str, at) -> Decimal:  # noqa: ANN001
    minor = world.execute("select coalesce(sum(amount), 0) from stripe_charges where invoice_number = ? "
                          "and status = 'succeeded' and created <= ?", [invoice, at]).fetchone()[0]
    return Decimal(minor) / 100


def test_a_month_of_the_normal_world_raises_no_false_alert(synced, tmp_path, monkeypatch):
    data = tmp_path / "copy"
    shutil.copytree(synced, data)
    settings = make_settings(data)
    sandbox = Sandbox(settings.sandbox_dir)
    clock = sandbox.clock
    monkeypatch.setenv("FINANCE_SANDBOX_ANOMALIES", "off")  # read the normal world's truth
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("drop table if exists ops.alert_state")
    con.execute("drop table if exists ops.alerts")
    world = sandbox.connect()
    events = []
    try:
        for h in range(24 * 30, -1, -2):  # every other hour of the month up to the clock, oldest first
            at = clock - timedelta(hours=h)
            events += store.evaluate(con, rules.run_rules(con, settings, at), at)
        anomalies = [e for e in events if e.rule in ANOMALY_RULES]
        assert anomalies == [], sorted({(e.rule, e.dedupe_key, e.event): e.title for e in anomalies}.items())[:20]
        # overdue alerts are true statements about the world at their moment, never noise
        overdue = [e for e in events if e.rule == "overdue_invoices" and e.event != "resolved"]
        first = min(settings.alert_overdue_days)
        for ev in overdue:
            late = []
            for inv in ev.details["invoices"]:
                row = world.execute(
                    "select invoice_total, due_on from shopify_orders where 'INV-' || ltrim(name, '#') = ?",
                    [inv["invoice_number"]]).fetchone()
                if row is None:  # a ledger channel's invoice: its marts test checks its status against the oracle
                    continue
                total, due_on = row
                late.append((ev.as_of.date() - due_on).days)
                assert late[-1] > first  # every invoice listed is really past the first threshold …
                assert _world_paid(world, inv["invoice_number"], ev.as_of) < total, (ev.title, inv)  # … and unpaid
            if late and len(late) == len(ev.details["invoices"]):
                assert max(late) > ev.details["threshold_days"]  # the severity's threshold really was crossed
        # and they do not repeat: at most one event per customer per threshold crossed (or the 30-day reminder)
        per_key = {}
        for ev in overdue:
            per_key.setdefault(ev.dedupe_key, []).append(ev)
        for key, evs in per_key.items():
            assert len(evs) <= 3, [(e.event, e.as_of, e.value) for e in evs]
    finally:
        world.close()
        con.close()


def test_webhook_delivery_runs_its_platform_and_is_consumed_after_success(synced, tmp_path):
    from finance_pipeline.definitions import defs
    from finance_pipeline.defs.sensors import webhook_inbox_sensor

    data = tmp_path / "copy"
    shutil.copytree(synced, data)
    settings = make_settings(data)
    hooks = receiver.start(settings)  # (the signing secrets do not depend on the world's anomalies)
    try:
        ep = hooks.app.endpoints["stripe"]
        headers, body = ep.sample(ep.secret.value, 1)
        assert httpx.post(f"{hooks.url}/webhooks/stripe", headers=headers, content=body).status_code == 200
    finally:
        hooks.stop()
    with pipeline_env(data, size=2000, FINANCE_ALERT_SINKS="none", **QUIET), DagsterInstance.ephemeral() as instance:
        (request,) = webhook_inbox_sensor(build_sensor_context(instance=instance, definitions=defs))
        assert {k.path[0] for k in request.asset_selection} >= {"raw_stripe", "marts", "ops"}
        assert "raw_shopify" not in {k.path[0] for k in request.asset_selection}
        result = defs.resolve_job_def("webhook_sync").execute_in_process(
            instance=instance, asset_selection=list(request.asset_selection), tags=request.tags)
        assert result.success
        materialized = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
        assert "raw_stripe" in materialized and "raw_shopify" not in materialized
        with Inbox(inbox_path(data)) as inbox:
            assert inbox.count("consumed_at is null") == 1  # not before the sensor saw the run succeed
        webhook_inbox_sensor(build_sensor_context(instance=instance, definitions=defs))
        with Inbox(inbox_path(data)) as inbox:
            assert inbox.count("consumed_at is not null") == 1

"""Alert events reach every sink exactly once — Slack (dagster-slack's client against the Slack API
emulator), email (SMTP with AUTH to a local server) and the signed webhook — then a resolved
message when the condition clears; failed sends are retried on the next evaluation."""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta, timezone

import duckdb
import httpx
import orjson
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from finance_pipeline.alerts import store
from finance_pipeline.defs.alerts import evaluate_and_notify
from finance_pipeline.notify import config as notify_config, sandbox as local
from finance_pipeline.notify.deliver import deliver
from finance_pipeline.notify.sinks import SinkError, WebhookSink, sign_webhook, verify_webhook
from finance_pipeline.platforms import registry
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.slack_emulator import SlackEmulator
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import Secret
from tests.alert_marts import NOW, add_failed_payments, normal_business
from tests.conftest import make_settings


def fresh_loads(con, now=None):
    now = now or datetime.now(timezone.utc)
    for p in registry.sources():
        con.execute(f"create schema if not exists raw_{p.name}")
        con.execute(f"create or replace table raw_{p.name}._dlt_loads (load_id varchar, status bigint, inserted_at timestamptz)")
        con.execute(f"insert into raw_{p.name}._dlt_loads values ('1', 0, ?)", [now])


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.delenv("FINANCE_ALERT_SINKS", raising=False)
    settings = make_settings(tmp_path)
    Sandbox(settings.sandbox_dir).init(42, 2000)
    con = duckdb.connect(str(settings.warehouse_path))
    normal_business(con, NOW - timedelta(weeks=9), NOW + timedelta(days=5))
    con.execute("insert into marts.fct_payments select 'stripe', 'ok' || i, 'stripe', 'trade', 'c', null, "
                "'succeeded', 10, ?::timestamptz - interval (i) day from range(1, 40) t(i)", [NOW])
    fresh_loads(con)
    con.close()
    yield settings
    local.stop_all()


def _ops(settings, sql):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_an_injected_outage_alerts_once_per_sink_then_resolves(world, caplog):
    settings = world
    con = duckdb.connect(str(settings.warehouse_path))
    add_failed_payments(con, "stripe", NOW - timedelta(hours=6), 8)  # a processor outage
    con.close()
    caplog.set_level(logging.DEBUG)

    events, report, open_count = evaluate_and_notify(settings, NOW)
    assert [(e.event, e.rule, e.dedupe_key) for e in events] == [("raised", "payment_failures", "stripe")]
    assert {k: v["sent"] for k, v in report.items()} == {"slack": 1, "email": 1, "webhook": 1} and open_count == 1

    # the same condition an hour and a day later: nothing new anywhere
    for later in (timedelta(hours=1), timedelta(hours=20)):
        events, report, _ = evaluate_and_notify(settings, NOW + later)
        assert events == [] and all(v["sent"] == 0 for v in report.values())

    # the outage leaves the 72 h window: resolved, once, everywhere
    events, report, open_count = evaluate_and_notify(settings, NOW + timedelta(days=4))
    assert [(e.event, e.dedupe_key) for e in events] == [("resolved", "stripe")] and open_count == 0
    assert evaluate_and_notify(settings, NOW + timedelta(days=4, hours=1))[0] == []

    slack = local.read_log(settings, "slack")
    email = local.read_log(settings, "email")
    hooks = local.read_log(settings, "webhook")
    assert [m["text"][:9] for m in slack] == ["[ALERT] [", "[RESOLVED"]
    assert slack[0]["channel"] == "C0FINALERTS" and "payments failed on stripe" in slack[0]["text"]
    assert [m["subject"].split("]")[0] for m in email] == ["[ALERT", "[RESOLVED"]
    assert email[0]["authenticated_as"] == "alerts@curtains-sandbox.test"
    assert email[0]["rcpt_tos"] == ["bookkeeper@curtains-sandbox.test"] and "rule: payment_failures" in email[0]["body"]
    assert [h["payload"]["event"] for h in hooks] == ["raised", "resolved"]
    assert hooks[0]["payload"]["details"]["failures"] == 8
    rows = _ops(settings, "select event, rule, severity from ops.alerts order by as_of")
    assert rows == [("raised", "payment_failures", "critical"), ("resolved", "payment_failures", "info")]
    assert _ops(settings, "select sink, status, attempts from ops.alert_deliveries order by sink, alert_id") == [
        (s, "sent", 1) for s in ("email", "email", "slack", "slack", "webhook", "webhook")]
    # no secret in the logs
    sinks = notify_config.sinks(settings)
    for secret in (sinks["slack"].token.value, sinks["email"].password.value, sinks["webhook"].secret.value):
        assert secret not in caplog.text


def test_worsening_and_cooldown(world):
    settings = world
    con = duckdb.connect(str(settings.warehouse_path))
    add_failed_payments(con, "stripe", NOW - timedelta(hours=6), 2)
    con.execute("insert into marts.fct_payments select 'stripe', 'okw' || i, 'stripe', 'trade', 'c', null, "
                "'succeeded', 10, ?::timestamptz - interval (i) minute from range(1, 5) t(i)", [NOW - timedelta(hours=6)])
    con.close()
    strict = dataclasses.replace(settings, alert_payment_failure_p=0.5, payment_failure_threshold=0.2)
    (first,), _, _ = evaluate_and_notify(strict, NOW)
    assert first.event == "raised" and first.severity == "warning"  # 2 of 8
    con = duckdb.connect(str(settings.warehouse_path))
    add_failed_payments(con, "stripe", NOW + timedelta(hours=1), 6)
    con.close()
    (worse,), _, _ = evaluate_and_notify(strict, NOW + timedelta(hours=2))
    assert worse.event == "worsened" and worse.severity == "critical"  # 8 of 14: rate and severity up
    assert evaluate_and_notify(strict, NOW + timedelta(hours=3))[0] == []
    (again,), _, _ = evaluate_and_notify(strict, NOW + timedelta(hours=27))  # cooldown (24 h) elapsed, still open
    assert again.event == "reminder"
    assert len(local.read_log(settings, "slack")) == 3


def test_a_failed_send_is_retried_next_time_and_sent_once(world):
    settings = world
    con = duckdb.connect(str(settings.warehouse_path))
    add_failed_payments(con, "stripe", NOW - timedelta(hours=6), 8)
    good = notify_config.sinks(settings)["webhook"]
    dead = WebhookSink("http://127.0.0.1:9/hooks/finance-alerts", good.secret, timeout_s=0.5)
    (event,) = store.evaluate(con, {"payment_failures": __import__("finance_pipeline.alerts.rules", fromlist=["x"])
                                    .payment_failures(con, settings, NOW)}, NOW, sinks=["webhook"])
    report = deliver(con, {"webhook": dead})
    assert report["webhook"]["failed"] == 1
    assert con.execute("select status, attempts from ops.alert_deliveries").fetchall() == [("pending", 1)]
    report = deliver(con, {"webhook": good})
    assert report["webhook"]["sent"] == 1
    assert deliver(con, {"webhook": good})["webhook"]["sent"] == 0  # nothing left to send
    con.close()
    assert [h["alert_id"] for h in local.read_log(settings, "webhook")] == [event.alert_id]


def test_signed_webhook_format_and_refusals(world):
    settings = world
    receiver = local.start(settings).webhook
    secret = receiver.emulator.credentials()["secret"]
    body = orjson.dumps({"alert_id": "x:1", "event": "raised"})
    import time

    ts = int(time.time())
    good = {"Finance-Alert-Id": "x:1", "Finance-Alert-Timestamp": str(ts),
            "Finance-Alert-Signature": sign_webhook(body, secret, ts)}
    url = f"{receiver.url}/hooks/finance-alerts"
    assert httpx.post(url, headers={**good, "Finance-Alert-Signature": sign_webhook(body, "wrong", ts)},
                      content=body).status_code == 401
    assert httpx.post(url, headers=good, content=body + b" ").status_code == 401
    stale = sign_webhook(body, secret, ts - 3600)
    assert httpx.post(url, headers={**good, "Finance-Alert-Signature": stale}, content=body).status_code == 401
    assert httpx.post(url, headers=good, content=body).status_code == 200
    assert verify_webhook({"finance-alert-signature": good["Finance-Alert-Signature"]}, body, secret)


def test_slack_emulator_speaks_the_web_api(tmp_path):
    sandbox = Sandbox(tmp_path / "sandbox")
    sandbox.init(42, 2000)
    running = serve(SlackEmulator(sandbox, EmulatorConfig(time_scale=1.0)))
    try:
        token = running.emulator.credentials()["bot_token"]
        client = WebClient(token=token, base_url=f"{running.url}/api/")
        assert client.auth_test()["ok"]
        with pytest.raises(SlackApiError) as bad:
            WebClient(token="xoxb-wrong", base_url=f"{running.url}/api/").chat_postMessage(channel="#finance-alerts", text="x")
        assert bad.value.response["error"] == "invalid_auth"
        with pytest.raises(SlackApiError) as nochan:
            client.chat_postMessage(channel="#nowhere", text="x")
        assert nochan.value.response["error"] == "channel_not_found"
        with pytest.raises(SlackApiError) as notext:
            client.chat_postMessage(channel="#finance-alerts")
        assert notext.value.response["error"] == "no_text"
        answers = [httpx.post(f"{running.url}/api/chat.postMessage", headers={"Authorization": f"Bearer {token}"},
                              data={"channel": "C0FINALERTS", "text": f"m{i}"}) for i in range(8)]
        limited = [a for a in answers if a.status_code == 429]
        assert limited and all(int(a.headers["Retry-After"]) >= 1 for a in limited)  # ~1 message/s per channel
        assert answers[0].json()["ok"] and answers[0].json()["channel"] == "C0FINALERTS"
        assert running.emulator.counters["over_limit"] == len(limited)
    finally:
        running.stop()


def test_live_sinks_name_missing_variables(tmp_path, monkeypatch):
    from finance_pipeline.settings import SettingsError

    monkeypatch.setattr("finance_pipeline.settings._load_dotenv", lambda path: {})
    for var in ("SLACK_BOT_TOKEN", "FINANCE_SMTP_HOST", "FINANCE_ALERT_WEBHOOK_URL", "FINANCE_ALERT_WEBHOOK_SECRET"):
        monkeypatch.delenv(var, raising=False)
    live = dataclasses.replace(make_settings(tmp_path), mode="live")
    monkeypatch.delenv("FINANCE_ALERT_SINKS", raising=False)
    assert notify_config.sinks(live) == {}  # nothing configured: only ops.alerts and the UI
    monkeypatch.setenv("FINANCE_ALERT_SINKS", "slack")
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN"):
        notify_config.sinks(live)
    monkeypatch.setenv("FINANCE_ALERT_SINKS", "webhook")
    monkeypatch.setenv("FINANCE_ALERT_WEBHOOK_URL", "https://hooks.example.test/finance")
    with pytest.raises(SettingsError, match="FINANCE_ALERT_WEBHOOK_SECRET"):
        notify_config.sinks(live)
    monkeypatch.setenv("FINANCE_ALERT_SINKS", "none")
    assert notify_config.sinks(make_settings(tmp_path)) == {}


def test_many_events_at_once_go_to_people_as_one_digest(world):
    """The first evaluation on an old business can open dozens of conditions: Slack and email get
    one digest listing them (Slack allows ~1 message/s per channel), the webhook one call each."""
    settings = world
    con = duckdb.connect(str(settings.warehouse_path))
    from tests.alert_marts import add_invoice

    for i in range(14):
        add_invoice(con, f"INV-D{i}", f"CD{i}", NOW.date() - timedelta(days=40 + i), "100.00")
    con.close()
    events, report, open_count = evaluate_and_notify(settings, NOW)
    assert len(events) == 14 and open_count == 14
    assert report["slack"]["sent"] == 14 and report["email"]["sent"] == 14 and report["webhook"]["sent"] == 14
    (slack,) = local.read_log(settings, "slack")
    assert slack["text"] == "14 alert events: 14 raised" and all(f"CD{i} " in str(slack["blocks"]) for i in range(14))
    (mail,) = local.read_log(settings, "email")
    assert mail["subject"] == "14 alert events: 14 raised" and mail["body"].count("rule: overdue_invoices") == 14
    assert len(local.read_log(settings, "webhook")) == 14
    assert evaluate_and_notify(settings, NOW + timedelta(hours=1))[0] == []

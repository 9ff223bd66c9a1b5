"""The webhook receiver: every platform with webhooks, through its registry entry only.

Valid deliveries are stored before the 200; forged, wrong-secret, tampered, unsigned, stale and
malformed ones are refused with the platform's status and store nothing; replays are answered
200 and stored once; after kill -9 every acknowledged event is still in the inbox."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from finance_pipeline.platforms import registry
from finance_pipeline.platforms.stripe import webhooks as stripe_webhooks
from finance_pipeline.platforms.xero import webhooks as xero_webhooks
from finance_pipeline.webhooks import endpoints, inbox as inbox_mod, receiver
from finance_pipeline.webhooks.inbox import Inbox, inbox_path
from tests.conftest import make_settings

PROJECT = Path(__file__).resolve().parent.parent
PLATFORMS = [p.name for p in endpoints.webhook_platforms()]


@pytest.fixture
def wh_settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture
def running(wh_settings):
    r = receiver.start(wh_settings)
    yield r
    r.stop()


def _post(r, platform, headers, body):
    return httpx.post(f"{r.url}/webhooks/{platform}", headers=headers, content=body, timeout=10)


def _inbox(settings):
    return Inbox(inbox_path(settings.data_dir))


def test_every_platform_with_webhooks_is_routed():
    assert {"shopify", "stripe", "xero"} <= set(PLATFORMS)
    for p in endpoints.webhook_platforms():
        assert p.webhook_sample, f"{p.name} has webhooks but no sample delivery for the tests"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_valid_delivery_is_stored_before_200_and_replays_are_deduped(running, wh_settings, platform):
    ep = running.app.endpoints[platform]
    headers, body = ep.sample(ep.secret.value, 7)
    first = _post(running, platform, {**headers, "Authorization": "Bearer proxy-credential-xyz"}, body)
    assert first.status_code == 200 and first.content == b""
    with _inbox(wh_settings) as inbox:  # a separate connection sees it as soon as the 200 arrived
        assert inbox.count("platform = ?", [platform]) == 1
        (event_id,) = [e for p, e in inbox.ids(platform)]
        row = inbox.row(platform, event_id)
    (expected_id, topic, raw), = ep.events({k.lower(): v for k, v in headers.items()}, body)
    assert row["event_id"] == expected_id and row["topic"] == topic and row["body"] == raw
    assert row["deliveries"] == 1 and row["consumed_at"] is None
    kept = json.loads(row["headers"])
    assert "authorization" not in kept and "proxy-credential-xyz" not in row["headers"]
    assert all(k.lower() in kept for k in headers if k.lower() not in receiver.DROP_HEADERS)
    again = _post(running, platform, headers, body)  # the platform retries the same delivery
    assert again.status_code == 200
    with _inbox(wh_settings) as inbox:
        assert inbox.count("platform = ?", [platform]) == 1
        assert inbox.row(platform, expected_id)["deliveries"] == 2


@pytest.mark.parametrize("platform", PLATFORMS)
def test_forged_wrong_secret_tampered_and_unsigned_are_refused(running, wh_settings, platform):
    ep = running.app.endpoints[platform]
    status = registry.get(platform).webhook_reject_status
    headers, body = ep.sample("not-the-secret", 1)  # signed with the wrong secret (a forger's guess)
    assert _post(running, platform, headers, body).status_code == status
    headers, body = ep.sample(ep.secret.value, 2)
    tampered = body.replace(b"1", b"9", 1)
    assert tampered != body
    assert _post(running, platform, headers, tampered).status_code == status
    unsigned = {k: v for k, v in headers.items() if "sign" not in k.lower() and "hmac" not in k.lower()}
    assert _post(running, platform, unsigned, body).status_code == status
    with _inbox(wh_settings) as inbox:
        assert inbox.count() == 0
    assert _post(running, platform, headers, body).status_code == 200  # the genuine one still passes


@pytest.mark.parametrize("platform", PLATFORMS)
def test_signed_but_malformed_is_400(running, wh_settings, platform):
    """A delivery that passes the signature check but is not what the platform sends is refused
    with 400 and not kept (the signature check is taken as passed, to reach the split)."""
    ep = running.app.endpoints[platform]
    headers, body = ep.sample(ep.secret.value, 3)
    genuine_verify = ep.verify
    ep.verify = lambda headers, body, secret, **kw: True
    try:
        for bad in (b'{"not": "what this platform sends"', b"[1, 2, 3]", b""):
            assert _post(running, platform, headers, bad).status_code == 400
    finally:
        ep.verify = genuine_verify
    with _inbox(wh_settings) as inbox:
        assert inbox.count() == 0


def test_stripe_stale_timestamp_is_refused(running, wh_settings):
    ep = running.app.endpoints["stripe"]
    old = int(time.time()) - stripe_webhooks.DEFAULT_TOLERANCE_S - 60
    headers, body = ep.sample(ep.secret.value, 11, timestamp=old)
    assert _post(running, "stripe", headers, body).status_code == 400
    headers, body = ep.sample(ep.secret.value, 12, timestamp=int(time.time()) - 60)  # within tolerance
    assert _post(running, "stripe", headers, body).status_code == 200
    with _inbox(wh_settings) as inbox:
        assert inbox.ids("stripe") == {("stripe", "evt_sample0000000000000012")}


def test_xero_intent_to_receive(running, wh_settings):
    secret = running.app.endpoints["xero"].secret.value
    probe = orjson.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "YSXCMKAQBJOEMGUZ"})
    good = _post(running, "xero", {"x-xero-signature": xero_webhooks.sign(probe, secret)}, probe)
    bad = _post(running, "xero", {"x-xero-signature": xero_webhooks.sign(probe, "other")}, probe)
    assert (good.status_code, good.content, bad.status_code, bad.content) == (200, b"", 401, b"")
    with _inbox(wh_settings) as inbox:
        assert inbox.count() == 0


def test_xero_delivery_with_several_events_stores_each(running, wh_settings):
    secret = running.app.endpoints["xero"].secret.value
    events = [{"resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/r{i}", "resourceId": f"r{i}",
               "tenantId": "t", "tenantType": "ORGANISATION", "eventCategory": "INVOICE", "eventType": "UPDATE",
               "eventDateUtc": "2026-01-01T10:00:00.000"} for i in range(3)]
    body = orjson.dumps({"events": events, "firstEventSequence": 1, "lastEventSequence": 3, "entropy": "X"})
    assert _post(running, "xero", {"x-xero-signature": xero_webhooks.sign(body, secret)}, body).status_code == 200
    # the same events again in another delivery (other entropy): deduped on the event key
    body2 = orjson.dumps({"events": events[1:], "firstEventSequence": 2, "lastEventSequence": 3, "entropy": "Y"})
    assert _post(running, "xero", {"x-xero-signature": xero_webhooks.sign(body2, secret)}, body2).status_code == 200
    with _inbox(wh_settings) as inbox:
        assert inbox.count() == 3 and inbox.count("deliveries = 2") == 2


def test_routes_methods_and_size(running):
    assert httpx.post(f"{running.url}/webhooks/nosuch", content=b"{}").status_code == 404
    assert httpx.get(f"{running.url}/webhooks/shopify").status_code == 405
    ep = running.app.endpoints["shopify"]
    big = b'{"x": "' + b"a" * (receiver.MAX_BODY + 10) + b'"}'
    headers, _ = ep.sample(ep.secret.value, 1)
    headers["X-Shopify-Hmac-Sha256"] = xero_webhooks.sign(big, ep.secret.value)
    assert httpx.post(f"{running.url}/webhooks/shopify", headers=headers, content=big).status_code == 413
    health = httpx.get(f"{running.url}/healthz").json()
    assert health["ok"] and set(PLATFORMS) <= set(health["platforms"])


def test_not_stored_means_not_acknowledged(running, wh_settings, monkeypatch):
    def broken(con, events):
        raise OSError("disk full")

    monkeypatch.setattr(inbox_mod, "write_events", broken)
    ep = running.app.endpoints["shopify"]
    headers, body = ep.sample(ep.secret.value, 1)
    assert _post(running, "shopify", headers, body).status_code == 503  # the platform will retry


def test_a_platform_plugs_in_through_its_registry_entry_only(wh_settings):
    """A new platform entry (here reusing Shopify's scheme under another name) gets a route with
    no receiver change; a handshake hook answers before verification."""
    acme = dataclasses.replace(registry.get("shopify"), name="acme", title="Acme")
    eps = endpoints.load(wh_settings, platforms=[acme], secrets={"acme": "acme-secret"})
    eps["acme"].handshake = lambda method, headers, body, query, secret: (
        (200, {"content-type": "text/plain"}, query["challenge"][0].encode()) if method == "GET" else None)
    r = receiver.start(wh_settings, endpoints=eps)
    try:
        assert httpx.get(f"{r.url}/webhooks/acme?challenge=abc123").text == "abc123"
        headers, body = eps["acme"].sample("acme-secret", 5)
        assert _post(r, "acme", headers, body).status_code == 200
        assert _post(r, "acme", *eps["acme"].sample("other", 6)).status_code == 401
        assert _post(r, "shopify", headers, body).status_code == 404  # only the listed platforms are routed
    finally:
        r.stop()
    with _inbox(wh_settings) as inbox:
        assert {p for p, _ in inbox.ids()} == {"acme"}


def test_live_mode_missing_secret_names_the_variable(wh_settings, monkeypatch):
    for var in ("SHOPIFY_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET", "XERO_WEBHOOK_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("finance_pipeline.settings._load_dotenv", lambda path: {})
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_live_test_value")
    live = dataclasses.replace(wh_settings, mode="live")
    eps = endpoints.load(live)
    assert eps["stripe"].secret is not None and eps["stripe"].missing is None
    assert "SHOPIFY_WEBHOOK_SECRET" in eps["shopify"].missing and eps["shopify"].secret is None
    r = receiver.start(live, endpoints=eps)
    try:
        headers, body = eps["shopify"].sample("anything", 1)
        assert _post(r, "shopify", headers, body).status_code == 503
    finally:
        r.stop()


def test_concurrent_deliveries_are_all_stored_once(running, wh_settings):
    eps = running.app.endpoints
    items = [(name, *eps[name].sample(eps[name].secret.value, i)) for i in range(60) for name in PLATFORMS]
    statuses = []

    def send(chunk):
        with httpx.Client(timeout=10) as c:
            for name, headers, body in chunk:
                statuses.append(c.post(f"{running.url}/webhooks/{name}", headers=headers, content=body).status_code)

    threads = [threading.Thread(target=send, args=(items[i::8],)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert statuses.count(200) == len(items)
    with _inbox(wh_settings) as inbox:
        assert inbox.count() == len(items)


def _start_cli_receiver(data_dir: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "FINANCE_DATA_DIR": str(data_dir), "FINANCE_SANDBOX_SIZE": "2000"}
    proc = subprocess.Popen([sys.executable, "-m", "finance_pipeline.cli", "webhooks", "serve", "--port", "0"],
                            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return proc, json.loads(line)["url"]


def test_kill_9_loses_no_acknowledged_event(tmp_path):
    settings = make_settings(tmp_path)
    proc, url = _start_cli_receiver(tmp_path)
    eps = endpoints.load(settings)
    acked: list[tuple[str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(timeout=5) as c:
            for i in range(worker, 100_000, 4):
                if stop.is_set():
                    return
                name = PLATFORMS[i % len(PLATFORMS)]
                headers, body = eps[name].sample(eps[name].secret.value, i)
                try:
                    status = c.post(f"{url}/webhooks/{name}", headers=headers, content=body).status_code
                except httpx.HTTPError:
                    return
                if status == 200:
                    (event_id, _, _), = eps[name].events({k.lower(): v for k, v in headers.items()}, body)
                    with lock:
                        acked.append((name, event_id))

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    [t.start() for t in threads]
    deadline = time.monotonic() + 30
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream: requests are in flight
    proc.wait(timeout=10)
    stop.set()
    [t.join() for t in threads]
    assert len(acked) >= 300
    proc2, _ = _start_cli_receiver(tmp_path)  # a new receiver opens the same inbox
    try:
        with Inbox(inbox_path(tmp_path)) as inbox:
            stored = inbox.ids()
    finally:
        proc2.send_signal(signal.SIGTERM)
        try:
            proc2.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded machine: do not leave it behind
            proc2.kill()
            proc2.wait()
    assert set(acked) <= stored, f"{len(set(acked) - stored)} acknowledged events lost"

"""PayPal webhook signatures: SHA256withRSA over id|time|webhook id|crc32(body) with the key of the
certificate at PAYPAL-CERT-URL.  Valid deliveries pass; forged, tampered, stale, wrong-webhook and
untrusted-certificate deliveries fail; the verify-webhook-signature postback agrees; the emulator
sends capture-completed and refunded events."""
from __future__ import annotations

import shutil
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import orjson
import pytest

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.paypal import webhooks
from finance_pipeline.platforms.paypal.client import make_client
from finance_pipeline.platforms.paypal.emulator import PayPalEmulator, SigningKey
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from tests.conftest import make_settings

UTC = timezone.utc


@pytest.fixture(scope="module")
def running(small_world_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("paypal-webhooks")
    shutil.copytree(small_world_dir / "sandbox", root / "sandbox")
    r = serve(PayPalEmulator(Sandbox(root / "sandbox"), EmulatorConfig(time_scale=30)))
    yield r
    r.stop()


@pytest.fixture(scope="module")
def delivery(running):
    em = running.emulator
    clock = em.sandbox.clock
    events = em.events(clock - timedelta(days=60), clock)
    assert {"PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.REFUNDED"} <= {e["event_type"] for e in events}
    body = orjson.dumps(events[0])
    return em.sign(body), body


def test_valid_delivery(running, delivery):
    headers, body = delivery
    assert webhooks.verify(headers, body, running.emulator.webhook_id)
    lower = {k.lower(): v for k, v in headers.items()}  # header names are case-insensitive
    assert webhooks.verify(lower, body, running.emulator.webhook_id)
    (event_id, topic, raw), = webhooks.inbox_events(headers, body)
    assert event_id.startswith("WH-") and topic == "PAYMENT.CAPTURE.COMPLETED" and raw == body


def test_forged_and_tampered(running, delivery):
    headers, body = delivery
    wid = running.emulator.webhook_id
    assert not webhooks.verify(headers, body.replace(b"COMPLETED", b"REFUNDED", 1), wid)  # tampered body
    assert not webhooks.verify(headers, body, "WH-some-other-subscription")  # another webhook's delivery
    forger = SigningKey()  # signed with a key that is not PayPal's certificate's
    tid, ttime = headers["PAYPAL-TRANSMISSION-ID"], headers["PAYPAL-TRANSMISSION-TIME"]
    forged = {**headers, "PAYPAL-TRANSMISSION-SIG": forger.sign(webhooks.signed_message(tid, ttime, wid, body))}
    assert not webhooks.verify(forged, body, wid)
    assert not webhooks.verify({**headers, "PAYPAL-AUTH-ALGO": "SHA1withRSA"}, body, wid)
    assert not webhooks.verify({k: v for k, v in headers.items() if k != "PAYPAL-TRANSMISSION-SIG"}, body, wid)
    # a certificate from anywhere but PayPal (or the loopback sandbox) is never fetched
    assert not webhooks.verify({**headers, "PAYPAL-CERT-URL": "https://evil.example/cert.pem"}, body, wid)
    assert not webhooks.verify(headers, body, wid, allow_loopback=False)


def test_stale_delivery_is_refused(running):
    em = running.emulator
    body = orjson.dumps(em.events(em.sandbox.clock - timedelta(days=60), em.sandbox.clock)[0])
    old = em.sign(body, transmitted=datetime.now(UTC) - timedelta(hours=1))
    assert not webhooks.verify(old, body, em.webhook_id)
    recent = em.sign(body, transmitted=datetime.now(UTC) - timedelta(minutes=2))
    assert webhooks.verify(recent, body, em.webhook_id)


def test_postback_verification(running, delivery, tmp_path):
    headers, body = delivery
    client = make_client(Connection("paypal", running.url, running.emulator.credentials(), make_settings(tmp_path)))
    try:
        assert webhooks.verify_by_postback(client, headers, body, running.emulator.webhook_id)
        tampered = body.replace(b"COMPLETED", b"DENIED", 1)
        assert not webhooks.verify_by_postback(client, headers, tampered, running.emulator.webhook_id)
    finally:
        client.close()


def test_sample_delivery_verifies():
    headers, body = webhooks.sample_delivery("WH-SAMPLE-HOOK", 5)
    assert webhooks.verify(headers, body, "WH-SAMPLE-HOOK")
    assert not webhooks.verify(headers, body, "WH-OTHER")


def test_emulator_sends_signed_events(running):
    received: list[tuple[dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        em = running.emulator
        sent = em.send_webhooks(f"http://127.0.0.1:{server.server_port}/webhooks/paypal",
                                em.sandbox.clock - timedelta(days=30), em.sandbox.clock, duplicate_every=3)
    finally:
        server.shutdown()
    assert sent == len(received) > 3
    assert all(webhooks.verify(h, b, em.webhook_id) for h, b in received)
    ids = [orjson.loads(b)["id"] for _, b in received]
    assert len(set(ids)) < len(ids)  # PayPal retries: the same event id twice, deduped downstream

"""Square webhook signatures: Base64 HMAC-SHA256 of notification URL + raw body with the
subscription's signature key, in `x-square-hmacsha256-signature`."""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from finance_pipeline.platforms.square import webhooks
from finance_pipeline.platforms.square.emulator import SquareEmulator
from finance_pipeline.platforms.square.webhooks import inbox_events, sample_delivery, sign, verify

KEY = "sq-sandbox-signature-key"
URL = "https://hooks.example.test/webhooks/square"
BODY = (b'{"merchant_id":"MLSANDBOX","type":"payment.updated","event_id":"6a8f5f28-54a1-4eb0-a98a-3111513fd4fc",'
        b'"created_at":"2025-06-01T17:02:12.123Z","data":{"type":"payment","id":"R2B3Z8WMVt3EAmzYWLZvz7Y69EbZY"}}')


def test_valid_signature_matches_squares_scheme():
    expected = base64.b64encode(hmac.new(KEY.encode(), URL.encode() + BODY, hashlib.sha256).digest()).decode()
    assert sign(URL, BODY, KEY) == expected
    assert verify({"x-square-hmacsha256-signature": expected}, BODY, KEY, url=URL)
    assert verify({"X-Square-HmacSha256-Signature": expected}, BODY, KEY, url=URL)  # any case
    assert verify([(b"x-square-hmacsha256-signature", expected.encode())], BODY, KEY, url=URL)  # raw ASGI


def test_forged_deliveries_are_rejected():
    good = sign(URL, BODY, KEY)
    assert not verify({webhooks.SIGNATURE_HEADER: sign(URL, BODY, "another-key")}, BODY, KEY, url=URL)
    assert not verify({webhooks.SIGNATURE_HEADER: good}, BODY.replace(b"payment.updated", b"payment.created"), KEY, url=URL)
    assert not verify({webhooks.SIGNATURE_HEADER: good}, BODY, KEY, url=URL.replace("https", "http"))  # URL is signed
    assert not verify({webhooks.SIGNATURE_HEADER: good}, BODY, KEY, url=URL + "?x=1")
    legacy = base64.b64encode(hmac.new(KEY.encode(), URL.encode() + BODY, hashlib.sha1).digest()).decode()
    assert not verify({"x-square-signature": legacy}, BODY, KEY, url=URL)  # the v1 SHA-1 header is not accepted
    assert not verify({}, BODY, KEY, url=URL)
    assert not verify({webhooks.SIGNATURE_HEADER: good}, BODY, "", url=URL)


def test_stale_delivery_is_rejected_when_a_tolerance_is_asked():
    signed_at = datetime(2025, 6, 1, 17, 2, 12, tzinfo=timezone.utc).timestamp()
    headers = {webhooks.SIGNATURE_HEADER: sign(URL, BODY, KEY)}
    assert verify(headers, BODY, KEY, url=URL, tolerance_s=3600, now=signed_at + 600)
    assert not verify(headers, BODY, KEY, url=URL, tolerance_s=3600, now=signed_at + 7200)
    # Square retries for up to 72 hours: without a tolerance, an old but authentic delivery verifies
    assert verify(headers, BODY, KEY, url=URL, now=signed_at + 3 * 86400)
    unreadable = b'{"event_id":"x"}'
    assert not verify({webhooks.SIGNATURE_HEADER: sign(URL, unreadable, KEY)}, unreadable, KEY, url=URL, tolerance_s=60)


def test_inbox_events_and_sample():
    headers, body = sample_delivery(KEY, 7, timestamp=1_750_000_000, url=URL)
    assert verify(headers, body, KEY, url=URL, tolerance_s=300, now=1_750_000_100)
    ((event_id, topic, raw),) = inbox_events(headers, body)
    assert topic == "payment.updated" and raw == body and event_id == orjson.loads(body)["event_id"]
    with pytest.raises(ValueError):
        inbox_events({}, b'{"type":"payment.updated"}')


def test_emulator_sends_signed_events_of_the_world(sandbox):
    emulator = SquareEmulator(sandbox)
    until = sandbox.clock
    events = emulator.events(until - timedelta(days=3), until)
    kinds = {e["type"] for e in events}
    assert {"payment.created", "payment.updated", "order.created", "payout.sent", "payout.paid"} <= kinds
    assert len({e["event_id"] for e in events}) == len(events)
    key = emulator.credentials()["webhook_signature_key"]
    for event in events[:20]:
        headers, body = emulator.webhook_delivery(event, URL)
        assert verify(headers, body, key, url=URL)
        assert not verify(headers, body, key, url=URL + "/other")
    payment = next(e for e in events if e["type"] == "payment.created")["data"]["object"]["payment"]
    assert isinstance(payment["amount_money"]["amount"], int) and payment["amount_money"]["currency"] == "GBP"
    order = next(e for e in events if e["type"] == "order.created")["data"]["object"]
    assert set(order) == {"order_created"} and "line_items" not in order["order_created"]

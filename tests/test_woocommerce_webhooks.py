"""WooCommerce webhook signatures: Base64 HMAC-SHA256 of the exact body under the webhook secret.
Valid deliveries verify; forged bodies, signatures or secrets do not; the scheme has no timestamp,
so a stale (replayed) delivery still verifies and is recognised by its Delivery-ID instead."""
from __future__ import annotations

import base64
import hashlib
import hmac

import orjson

from finance_pipeline.platforms.woocommerce import webhooks
from finance_pipeline.platforms.woocommerce.emulator import WooCommerceEmulator

SECRET = "wc-secret-&amp;-1"


def test_valid_delivery_verifies_against_an_independent_hmac():
    headers, body = webhooks.sample_delivery(SECRET, 7, timestamp=1_750_000_000)
    expected = base64.b64encode(hmac.new(b"wc-secret-&-1", body, hashlib.sha256).digest()).decode()
    assert headers["X-WC-Webhook-Signature"] == expected  # key is the HTML-entity-decoded secret
    assert webhooks.verify(headers, body, SECRET)
    lower = {k.lower(): v for k, v in headers.items()}
    assert webhooks.verify(lower, body, SECRET)
    assert webhooks.verify([(k.encode(), v.encode()) for k, v in headers.items()], body, SECRET)


def test_forged_deliveries_fail():
    headers, body = webhooks.sample_delivery(SECRET, 7)
    assert not webhooks.verify(headers, body.replace(b"113.00", b"1.00"), SECRET)
    assert not webhooks.verify(headers, body, "another-secret")
    assert not webhooks.verify({**headers, "X-WC-Webhook-Signature": "AAAA"}, body, SECRET)
    assert not webhooks.verify({k: v for k, v in headers.items() if k != "X-WC-Webhook-Signature"}, body, SECRET)
    assert not webhooks.verify(headers, body, "")
    # re-serialising the JSON (WordPress escapes slashes) breaks the signature: verify raw bytes only
    assert b"\\/" in body
    assert not webhooks.verify(headers, orjson.dumps(orjson.loads(body)), SECRET)
    # the creation ping is an unsigned form post
    assert not webhooks.verify({"Content-Type": "application/x-www-form-urlencoded"}, b"webhook_id=3", SECRET)


def test_stale_replay_verifies_but_keeps_its_delivery_id():
    old_headers, old_body = webhooks.sample_delivery(SECRET, 7, timestamp=1_600_000_000)
    new_headers, new_body = webhooks.sample_delivery(SECRET, 7, timestamp=1_750_000_000)
    assert webhooks.verify(old_headers, old_body, SECRET)  # no timestamp in the scheme
    (old_id, topic, raw), = webhooks.inbox_events(old_headers, old_body)
    (new_id, _, _), = webhooks.inbox_events(new_headers, new_body)
    assert topic == "order.updated" and raw == old_body and old_id != new_id
    assert webhooks.inbox_events(old_headers, old_body)[0][0] == old_id  # a replay dedupes


def test_emulator_sends_signed_order_deliveries(sandbox):
    emulator = WooCommerceEmulator(sandbox)
    con = sandbox.connect()
    (order_id,), = con.execute("select order_id from woocommerce_orders where created_at <= ? limit 1",
                               [sandbox.clock]).fetchall()
    con.close()
    headers, body = emulator.webhook_delivery(order_id, "order.updated")
    secret = emulator.credentials()["webhook_secret"]
    assert webhooks.verify(headers, body, secret) and not webhooks.verify(headers, body, secret + "x")
    assert orjson.loads(body)["id"] == order_id
    assert headers["X-WC-Webhook-Topic"] == "order.updated" and headers["X-WC-Webhook-Resource"] == "order"
    headers, body = emulator.webhook_delivery(order_id, "order.deleted")
    assert orjson.loads(body) == {"id": order_id} and webhooks.verify(headers, body, secret)

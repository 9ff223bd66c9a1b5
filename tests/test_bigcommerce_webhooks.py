"""BigCommerce webhook signatures (Standard Webhooks): valid deliveries verify, checked against an
independent HMAC; forged bodies, ids, timestamps or secrets fail; stale deliveries are refused."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

from finance_pipeline.platforms.bigcommerce import webhooks

SECRET = "bc-client-secret-123"


def test_valid_delivery_matches_an_independent_hmac():
    now = int(time.time())
    headers, body = webhooks.sample_delivery(SECRET, 1, timestamp=now)
    message = f"{headers['webhook-id']}.{now}.".encode() + body
    expected = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert webhooks.verify(headers, body, SECRET)
    assert webhooks.verify({k.upper(): v for k, v in headers.items()}, body, SECRET)
    # the library's whsec_ form of the same key, and a rotated signature list
    assert webhooks.verify(headers, body, "whsec_" + base64.b64encode(SECRET.encode()).decode())
    rotated = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    assert webhooks.verify(rotated, body, SECRET)
    (event_id, scope, raw), = webhooks.inbox_events(headers, body)
    assert event_id == headers["webhook-id"] and scope == "store/order/updated" and raw == body


def test_forged_deliveries_fail():
    now = int(time.time())
    headers, body = webhooks.sample_delivery(SECRET, 1, timestamp=now)
    assert not webhooks.verify(headers, body.replace(b'"id":101', b'"id":102'), SECRET)
    assert not webhooks.verify(headers, body, "another-secret")
    assert not webhooks.verify({**headers, "webhook-id": "other"}, body, SECRET)
    assert not webhooks.verify({**headers, "webhook-timestamp": str(now + 1)}, body, SECRET)
    assert not webhooks.verify({**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]}, body, SECRET)
    assert not webhooks.verify({k: v for k, v in headers.items() if k != "webhook-signature"}, body, SECRET)


def test_stale_delivery_is_refused():
    old = int(time.time()) - 3600
    headers, body = webhooks.sample_delivery(SECRET, 1, timestamp=old)
    assert not webhooks.verify(headers, body, SECRET)
    assert webhooks.verify(headers, body, SECRET, now=old + 60)
    assert webhooks.verify(headers, body, SECRET, tolerance_s=None)

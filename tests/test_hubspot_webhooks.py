"""HubSpot webhook signature v3: the documented algorithm (method + URI + body + timestamp,
HMAC-SHA256, Base64), the 5-minute window, URI escapes, events split by eventId; and the
official SDK's validator agrees with ours."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson
import pytest

from finance_pipeline.platforms.hubspot.webhooks import inbox_events, sample_delivery, sign, verify

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"


def test_signature_is_hmac_of_method_uri_body_timestamp():
    body, stamp = b'[{"eventId":1}]', "1700000000000"
    url = "https://example.com/webhooks/hubspot?x=1"
    want = base64.b64encode(hmac.new(SECRET.encode(), b"POST" + url.encode() + body + stamp.encode(),
                                     hashlib.sha256).digest()).decode()
    assert sign("POST", url, body, stamp, SECRET) == want
    # only the listed escapes are decoded before signing; others (%3D, %20) stay as sent
    assert sign("POST", "https://example.com/webhooks%3Fa=b%3D%20", body, stamp, SECRET) == \
        sign("POST", "https://example.com/webhooks?a=b%3D%20", body, stamp, SECRET)
    assert sign("POST", "https://example.com/webhooks?a=b%3D", body, stamp, SECRET) != \
        sign("POST", "https://example.com/webhooks?a=b=", body, stamp, SECRET)


def test_verify_accepts_fresh_and_rejects_stale_tampered_or_wrong_url():
    headers, body = sample_delivery(SECRET, 7)
    assert verify(headers, body, SECRET)
    assert not verify(headers, body + b" ", SECRET)
    assert not verify(headers, body, "other-secret")
    assert not verify(headers, body, SECRET, url="https://elsewhere.test/webhooks/hubspot")
    assert not verify(headers, body, SECRET, now=time.time() + 301)
    assert verify(headers, body, SECRET, now=time.time() + 290)
    old_headers, old_body = sample_delivery(SECRET, 8, timestamp=int(time.time()) - 600)
    assert not verify(old_headers, old_body, SECRET)
    assert not verify({k: v for k, v in headers.items() if "Timestamp" not in k}, body, SECRET)


def test_events_are_split_by_event_id():
    headers, body = sample_delivery(SECRET, 3)
    events = orjson.loads(body) + [{**orjson.loads(body)[0], "eventId": 99, "subscriptionType": "deal.deletion"}]
    split = inbox_events(headers, orjson.dumps(events))
    assert [(e, t) for e, t, _ in split] == [("3000000003", "deal.propertyChange"), ("99", "deal.deletion")]
    assert orjson.loads(split[1][2])["eventId"] == 99
    with pytest.raises(ValueError):
        inbox_events(headers, b'{"eventId": 1}')


def test_the_official_sdk_agrees():
    signature_mod = pytest.importorskip("hubspot.utils.signature")
    headers, body = sample_delivery(SECRET, 5, url="https://hooks.example.com/webhooks/hubspot")
    assert signature_mod.Signature.is_valid(
        signature=headers["x-hubspot-signature-v3"], client_secret=SECRET, request_body=body.decode(),
        http_uri="https://hooks.example.com/webhooks/hubspot", http_method="POST", signature_version="v3",
        timestamp=headers["X-HubSpot-Request-Timestamp"])

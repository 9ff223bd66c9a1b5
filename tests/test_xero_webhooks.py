"""Xero webhook signatures (x-xero-signature) and the Intent-to-Receive rule."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from finance_pipeline.platforms.xero import webhooks

KEY = "kX7g2Yy0rS0m3WebhookSigningKeyFromTheDeveloperPortal=="


def _signed(body: bytes, key: str = KEY) -> dict[str, str]:
    return {"x-xero-signature": base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()}


def test_signature_is_base64_hmac_sha256_of_the_raw_body():
    body = json.dumps({"events": [{"resourceUrl": "https://api.xero.com/api.xro/2.0/Invoices/abc",
                                   "resourceId": "abc", "tenantId": "t-1", "tenantType": "ORGANISATION",
                                   "eventCategory": "INVOICE", "eventType": "UPDATE",
                                   "eventDateUtc": "2025-06-01T10:00:00.000"}],
                       "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "ABCDEF"}).encode()
    headers = _signed(body)
    assert webhooks.sign(body, KEY) == headers["x-xero-signature"]
    assert webhooks.verify(headers, body, KEY)
    assert webhooks.verify({"X-Xero-Signature": headers["x-xero-signature"]}, body, KEY)  # any header case
    assert not webhooks.verify(headers, body + b" ", KEY)  # one byte more: the raw body matters
    assert not webhooks.verify(headers, body, KEY[:-3] + "xyz")
    assert not webhooks.verify({}, body, KEY) and not webhooks.verify(headers, body, "")
    assert webhooks.respond(headers, body, KEY) == (200, b"")
    assert webhooks.dedupe_key(webhooks.events(body)[0]) == ("t-1", "abc", "UPDATE", "2025-06-01T10:00:00.000")


def test_intent_to_receive():
    probe = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                        "entropy": "YSXCMKAQBJOEMGUZEPFZ"}).encode()
    assert webhooks.is_intent_to_receive(probe)
    assert webhooks.respond(_signed(probe), probe, KEY) == (200, b"")  # correctly signed: 200, empty body
    assert webhooks.respond(_signed(probe, "another-key"), probe, KEY) == (401, b"")  # wrongly signed: 401
    assert webhooks.respond({"x-xero-signature": "bm9wZQ=="}, probe, KEY) == (401, b"")
    assert not webhooks.is_intent_to_receive(b'{"events": [{"resourceId": "x"}]}')
    assert not webhooks.is_intent_to_receive(b"not json")

"""Shopify webhook signatures: Base64 HMAC-SHA256 of the raw body with the app's client secret."""
from __future__ import annotations

import base64
import hashlib
import hmac

from finance_pipeline.platforms.shopify.webhooks import delivery_id, sign, verify

SECRET = "shpss_sandbox_client_secret"
BODY = b'{"id":5100000102947,"name":"#1013","total_price":"113.00","updated_at":"2025-06-05T09:01:12-04:00"}'


def headers(signature: str) -> dict[str, str]:
    return {"X-Shopify-Topic": "orders/updated", "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": "curtains-sandbox.myshopify.com", "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37"}


def test_valid_signature():
    expected = base64.b64encode(hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()).decode()
    assert sign(BODY, SECRET) == expected
    assert verify(headers(expected), BODY, SECRET)


def test_header_names_are_case_insensitive():
    signature = sign(BODY, SECRET)
    assert verify({"x-shopify-hmac-sha256": signature}, BODY, SECRET)
    assert verify({"X-SHOPIFY-HMAC-SHA256": signature}, BODY, SECRET)
    assert verify([(b"x-shopify-hmac-sha256", signature.encode())], BODY, SECRET)  # raw ASGI headers


def test_forged_signature_is_rejected():
    forged = sign(BODY, "some-other-secret")
    assert not verify(headers(forged), BODY, SECRET)
    assert not verify(headers(hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()), BODY, SECRET)  # hex, not Base64
    assert not verify({"X-Shopify-Topic": "orders/updated"}, BODY, SECRET)  # no signature at all
    assert not verify(headers(sign(BODY, SECRET)), BODY, "")


def test_tampered_body_is_rejected():
    signature = sign(BODY, SECRET)
    assert not verify(headers(signature), BODY.replace(b"113.00", b"1.00"), SECRET)
    assert not verify(headers(signature), BODY + b"\n", SECRET)  # re-serialised bodies do not verify


def test_delivery_id_is_the_dedupe_key():
    assert delivery_id(headers("x")) == "b54557e4-bdd9-4b37"
    assert delivery_id({"x-shopify-webhook-id": "abc"}) == "abc"
    assert delivery_id({}) is None

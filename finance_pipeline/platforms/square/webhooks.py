"""Square webhook deliveries: signature check, and the event id to dedupe on.

Square signs each delivery with the subscription's signature key: HMAC-SHA256 over the
notification URL exactly as registered (scheme, host, port, path and query) followed by the raw
request body, Base64-encoded, in `x-square-hmacsha256-signature`.  The URL is part of what is
signed, so a proxy that rewrites scheme, host or port breaks verification: pass the public URL
the subscription was registered with.  (The legacy `x-square-signature` header, HMAC-SHA1 of
the same message, is not accepted.)

Square's signature carries no timestamp.  Deliveries are retried for up to 72 hours, so a
replay is stopped by deduplicating on `event_id`; where a freshness bound is wanted anyway,
`verify(..., tolerance_s=…)` rejects a delivery whose signed `created_at` is older than that.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime
from typing import Iterable, Mapping

import orjson

Headers = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
DEFAULT_URL = "http://127.0.0.1/webhooks/square"  # the sandbox subscription's notification URL


def _header(headers: Headers, name: str) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        key = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if key.lower() == name:
            value = value.decode("latin-1") if isinstance(value, bytes) else value
            return value.strip() or None
    return None


def sign(url: str, body: bytes, signature_key: str) -> str:
    """The `x-square-hmacsha256-signature` value Square sends for `body` posted to `url`."""
    return base64.b64encode(hmac.new(signature_key.encode(), url.encode() + body, hashlib.sha256).digest()).decode()


def _created_at(body: bytes) -> float | None:
    try:
        event = orjson.loads(body)
        text = str(event["created_at"])
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text).timestamp()
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def verify(headers: Headers, body: bytes, secret: str, url: str | None = None,
           tolerance_s: float | None = None, now: float | None = None) -> bool:
    """True when `body` carries a valid signature for the notification `url` under `secret`
    (constant-time compare).  With `tolerance_s`, the event's `created_at` must also be no older
    than that (and readable)."""
    received = _header(headers, SIGNATURE_HEADER)
    if not received or not secret:
        return False
    if not hmac.compare_digest(received.encode(), sign(url or DEFAULT_URL, body, secret).encode()):
        return False
    if tolerance_s is not None:
        created = _created_at(body)
        if created is None or created < (time.time() if now is None else now) - tolerance_s:
            return False
    return True


def inbox_events(headers: Headers, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """A verified delivery as one inbox event, keyed by its `event_id` (stable across retries)."""
    event = orjson.loads(body)
    if not isinstance(event, dict) or not event.get("event_id"):
        raise ValueError("Square webhook body has no event_id")
    return [(str(event["event_id"]), event.get("type"), body)]


def sample_delivery(secret: str, n: int, timestamp: int | None = None,
                    url: str = DEFAULT_URL) -> tuple[dict[str, str], bytes]:
    """A `payment.updated` delivery as Square sends it (tests and the benchmark)."""
    import uuid
    from datetime import timezone

    at = datetime.fromtimestamp(timestamp if timestamp is not None else time.time(), timezone.utc)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    payment_id = f"sandboxPayment{n:015d}"
    body = orjson.dumps({
        "merchant_id": "MLSANDBOX0001", "type": "payment.updated",
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"square-webhook:{n}")), "created_at": stamp,
        "data": {"type": "payment", "id": payment_id, "object": {"payment": {
            "id": payment_id, "created_at": stamp, "updated_at": stamp, "status": "COMPLETED",
            "amount_money": {"amount": 4500, "currency": "GBP"}, "total_money": {"amount": 4500, "currency": "GBP"},
            "source_type": "CARD", "location_id": "LSANDBOX0001"}}},
    })
    return ({"Content-Type": "application/json", SIGNATURE_HEADER: sign(url, body, secret),
             "Square-Environment": "Sandbox", "User-Agent": "Square Connect v2"}, body)

"""Shopify webhook deliveries: signature check and the delivery id to dedupe on.

Shopify signs each delivery with HMAC-SHA256 over the exact raw request body, keyed with the
app's client secret, and sends it Base64-encoded (not hex) in `X-Shopify-Hmac-Sha256`.  The
body must be verified as received — before any JSON parsing or re-serialisation.  Retries of
one delivery carry the same `X-Shopify-Webhook-Id`, the receiver's dedupe key.  Header names
are matched case-insensitively (HTTP/2 lower-cases them; the newer Events product drops the
`X-` prefix, which is accepted too).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Iterable, Mapping

from finance_pipeline.platforms.shopify import API_VERSION

if TYPE_CHECKING:
    from datetime import datetime

Headers = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]

SIGNATURE_HEADERS = ("x-shopify-hmac-sha256", "shopify-hmac-sha256")
DELIVERY_ID_HEADERS = ("x-shopify-webhook-id", "shopify-webhook-id")


def _header(headers: Headers, names: tuple[str, ...]) -> str | None:
    """The first of `names` present (any case); headers as a mapping or raw ASGI (bytes) pairs."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    lowered = {}
    for key, value in items:
        key = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        lowered.setdefault(key.lower(), value.decode("latin-1") if isinstance(value, bytes) else value)
    for name in names:
        value = lowered.get(name)
        if value:
            return value.strip()
    return None


def sign(body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` value Shopify would send for `body` (used by tests and the sandbox)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(headers: Headers, body: bytes, secret: str) -> bool:
    """True when the delivery's signature matches `body` under `secret` (constant-time compare)."""
    received = _header(headers, SIGNATURE_HEADERS)
    if not received or not secret:
        return False
    return hmac.compare_digest(received.encode(), sign(body, secret).encode())


def delivery_id(headers: Headers) -> str | None:
    """`X-Shopify-Webhook-Id`: stable across retries of one delivery (the dedupe key)."""
    return _header(headers, DELIVERY_ID_HEADERS)


def inbox_events(headers: Headers, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """A verified delivery as inbox events: one per delivery, keyed by `X-Shopify-Webhook-Id`,
    topic from `X-Shopify-Topic`.  The body must be a JSON object (else: malformed)."""
    import orjson

    if not isinstance(orjson.loads(body), dict):
        raise ValueError("Shopify webhook body is not a JSON object")
    event_id = delivery_id(headers)
    if not event_id:
        raise ValueError("no X-Shopify-Webhook-Id")
    return [(event_id, _header(headers, ("x-shopify-topic", "shopify-topic")), body)]


def delivery(secret: str, topic: str, payload: dict, webhook_id: str,
             at: "datetime | None" = None) -> tuple[dict[str, str], bytes]:
    """A delivery of `payload` (the resource's REST JSON) on `topic` as Shopify sends it, signed
    with `secret` (the sandbox and the benchmark send these to the receiver)."""
    from datetime import datetime, timezone

    from finance_pipeline.http.client import dumps

    body = dumps(payload)  # as the API serves it: a Decimal as a JSON number with its exact digits
    triggered = (at or datetime.now(timezone.utc)).isoformat()
    return ({"Content-Type": "application/json", "X-Shopify-Topic": topic,
             "X-Shopify-Hmac-Sha256": sign(body, secret), "X-Shopify-Shop-Domain": "curtains-sandbox.myshopify.com",
             "X-Shopify-API-Version": API_VERSION, "X-Shopify-Triggered-At": triggered,
             "X-Shopify-Webhook-Id": webhook_id}, body)


def sample_delivery(secret: str, n: int, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """An `orders/updated` delivery as Shopify sends it (tests and the benchmark)."""
    import uuid
    from datetime import datetime, timezone

    at = datetime.fromtimestamp(timestamp, timezone.utc) if timestamp else datetime.now(timezone.utc)
    order_id = 5_100_000_000_000 + n * 7919
    payload = {"id": order_id, "name": f"#{1000 + n}", "total_price": "113.00", "currency": "GBP",
               "updated_at": at.isoformat(timespec="seconds")}
    return delivery(secret, "orders/updated", payload, str(uuid.uuid5(uuid.NAMESPACE_URL, f"shopify-webhook:{n}")), at)

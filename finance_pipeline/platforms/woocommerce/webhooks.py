"""WooCommerce webhook deliveries: signature check and the ids to dedupe on.

WooCommerce signs a delivery with HMAC-SHA256 over the exact JSON body bytes it sends, keyed with
the webhook's secret, and sends the digest Base64-encoded in `X-WC-Webhook-Signature`.  The body
must be verified as received: WordPress escapes slashes (`\\/`), so re-serialised JSON would not
match.  The scheme carries no timestamp, so a replayed delivery still verifies: staleness and
duplicates are caught by `X-WC-Webhook-Delivery-ID` (unique per delivery attempt) and by the
order's `date_modified_gmt` (an older state never overwrites a newer one).  WooCommerce does not
retry failed deliveries and disables a webhook after repeated failures, so the polling sync
stays the source of truth.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
from datetime import datetime, timezone
from typing import Iterable, Mapping

Headers = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]

SIGNATURE = "x-wc-webhook-signature"
DELIVERY_ID = "x-wc-webhook-delivery-id"
TOPIC = "x-wc-webhook-topic"


def _headers(headers: Headers) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for key, value in items:
        key = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        out.setdefault(key.lower(), value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return out


def sign(body: bytes, secret: str) -> str:
    """`X-WC-Webhook-Signature` for `body`: WooCommerce keys the HMAC with the HTML-entity-decoded secret."""
    key = html.unescape(secret).encode()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def verify(headers: Headers, body: bytes, secret: str) -> bool:
    """True when the delivery's signature matches `body` under `secret` (constant-time compare).

    The creation ping (form body `webhook_id=N`, unsigned) does not verify; answer it 200
    without treating it as an event."""
    received = _headers(headers).get(SIGNATURE, "").strip()
    if not received or not secret:
        return False
    return hmac.compare_digest(received.encode(), sign(body, secret).encode())


def delivery_id(headers: Headers) -> str | None:
    return _headers(headers).get(DELIVERY_ID) or None


def delivery_headers(body: bytes, secret: str, topic: str, webhook_id: int, source_url: str,
                     at: datetime) -> dict[str, str]:
    """The headers WooCommerce sends with a delivery (the Delivery-ID hashes webhook id + time)."""
    resource, _, event = topic.partition(".")
    stamp = at.astimezone(timezone.utc).timestamp()
    delivery = hashlib.sha1(f"{webhook_id}{stamp:.6f}{hashlib.sha1(body).hexdigest()}".encode()).hexdigest()
    return {
        "Content-Type": "application/json", "User-Agent": "WooCommerce/9.8.5 Hookshot (WordPress/6.8.1)",
        "X-WC-Webhook-Source": source_url.rstrip("/") + "/", "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": sign(body, secret), "X-WC-Webhook-ID": str(webhook_id),
        "X-WC-Webhook-Delivery-ID": delivery,
    }


def inbox_events(headers: Headers, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """A verified delivery as one inbox event keyed by `X-WC-Webhook-Delivery-ID`."""
    import orjson

    if not isinstance(orjson.loads(body), dict):
        raise ValueError("WooCommerce webhook body is not a JSON object")
    h = _headers(headers)
    event_id = h.get(DELIVERY_ID)
    if not event_id:
        raise ValueError("no X-WC-Webhook-Delivery-ID")
    return [(event_id, h.get(TOPIC), body)]


def sample_delivery(secret: str, n: int, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """An `order.updated` delivery as WooCommerce sends it (tests and the benchmark)."""
    import orjson

    at = datetime.fromtimestamp(timestamp, timezone.utc) if timestamp else datetime.now(timezone.utc)
    order_id = 24_000 + n
    body = orjson.dumps({"id": order_id, "number": str(order_id), "status": "processing", "currency": "EUR",
                         "total": "113.00", "date_modified_gmt": at.strftime("%Y-%m-%dT%H:%M:%S"),
                         "payment_url": f"https://curtains-eu.example/checkout/order-pay/{order_id}/"})
    body = body.replace(b"/", b"\\/")
    return delivery_headers(body, secret, "order.updated", 3, "https://curtains-eu.example", at), body

"""Zoho Books webhook deliveries (workflow rule → webhook action), secured with a secret token.

A webhook marked "secure" is sent with `X-Zoho-Webhook-Signature`: the hex HMAC-SHA256, keyed with
the secret token, of the string Zoho's finance apps sign — the delivery's key-value pairs (query
string and `x-www-form-urlencoded` fields, decoded) sorted by key and concatenated as key + value,
followed by the raw JSON payload.  The desk's webhooks post the entity's default JSON payload
(`{"invoice": {...}}`, `{"payment": {...}}`) without custom parameters, so the signed string is the
raw body.  (Zoho documents this scheme for Zoho Billing; Books' help shows the same "secure this
webhook" option but no algorithm of its own — docs/decisions.md, "Zoho Books".)  There is no
timestamp or delivery id: an event is the entity id + its `last_modified_time`, so a replay dedupes
and an older state is harmless (the sync re-reads the entity through the API).
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import parse_qsl

import orjson

from finance_pipeline.platforms.zoho_books import wire
from finance_pipeline.webhooks.headers import Headers, header

SIGNATURE = "x-zoho-webhook-signature"
MODULES = ("invoice", "payment", "customerpayment", "contact", "creditnote", "salesorder")


def signed_string(body: bytes, content_type: str | None = None, query: str = "") -> bytes:
    pairs = parse_qsl(query, keep_blank_values=True)
    raw = body
    if content_type and "x-www-form-urlencoded" in content_type:
        pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        raw = b""
    prefix = "".join(f"{k}{v}" for k, v in sorted(pairs))
    return prefix.encode() + raw


def sign(body: bytes, secret: str, content_type: str | None = "application/json", query: str = "") -> str:
    return hmac.new(secret.encode(), signed_string(body, content_type, query), hashlib.sha256).hexdigest()


def verify(headers: Headers, body: bytes, secret: str) -> bool:
    received = (header(headers, SIGNATURE) or "").lower()
    if not received or not secret:
        return False
    expected = sign(body, secret, header(headers, "content-type") or "application/json")
    return hmac.compare_digest(received.encode(), expected.encode())


def inbox_events(headers: Headers, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """One event per entity in the payload, keyed by module, id and `last_modified_time`."""
    payload = orjson.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("Zoho Books webhook body is not a JSON object")
    events = []
    for module in MODULES:
        entity = payload.get(module)
        if isinstance(entity, dict):
            entity_id = entity.get(f"{module}_id") or entity.get("payment_id") or entity.get("id")
            if not entity_id:
                raise ValueError(f"the {module} in the payload has no id")
            events.append((f"{module}:{entity_id}:{entity.get('last_modified_time', '')}", f"{module}.updated", body))
    if not events:
        raise ValueError("no Zoho Books entity in the payload")
    return events


def sample_delivery(secret: str, n: int, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """An invoice webhook as a Zoho Books workflow rule sends it (default payload, secured)."""
    at = datetime.fromtimestamp(timestamp, timezone.utc) if timestamp else datetime.now(timezone.utc)
    body = orjson.dumps({"invoice": {
        "invoice_id": str(460_000_000_041_000 + n * 13), "invoice_number": f"EU-{10_000 + n}", "status": "sent",
        "currency_code": "EUR", "total": 1608.68, "balance": 1608.68, "last_modified_time": wire.zoho_time(at)}})
    return {"Content-Type": "application/json", "User-Agent": "Zoho Books",
            "X-Zoho-Webhook-Signature": sign(body, secret)}, body

"""Xero webhooks: `x-xero-signature` = Base64(HMAC-SHA256(webhook signing key, raw request body)).

Xero's rules for the receiving endpoint:
- a correctly signed delivery → 200 with an EMPTY body within 5 s; a wrongly signed one → 401, no body;
- "Intent to Receive": when a subscription is set up, Xero POSTs several payloads with
  `"events": []`, some correctly signed and some not; the subscription is only verified if the
  endpoint answers each with 200 / 401 accordingly — i.e. exactly the rule above, applied even
  when there is nothing to process;
- events carry no unique id: dedupe on (tenantId, resourceId, eventType, eventDateUtc).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Mapping

import orjson

SIGNATURE_HEADER = "x-xero-signature"


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    getter = getattr(headers, "get", None)
    value = getter(name) if getter else None  # case-insensitive mappings (Starlette, httpx) answer here
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """True when `x-xero-signature` is the HMAC of exactly these bytes (constant-time compare)."""
    given = _header(headers, SIGNATURE_HEADER)
    if not given or not secret:
        return False
    return hmac.compare_digest(given.strip().encode(), sign(body, secret).encode())


def is_intent_to_receive(body: bytes) -> bool:
    """An Intent-to-Receive probe: a valid payload whose `events` list is empty."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(payload, dict) and payload.get("events") == []


def respond(headers: Mapping[str, str], body: bytes, secret: str) -> tuple[int, bytes]:
    """The status and body Xero expects for any delivery, Intent-to-Receive probes included:
    (200, b"") when correctly signed, (401, b"") otherwise.  Persist the events before answering 200."""
    return (200, b"") if verify(headers, body, secret) else (401, b"")


def events(body: bytes) -> list[dict[str, Any]]:
    payload = orjson.loads(body)
    return list(payload.get("events") or [])


def dedupe_key(event: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (str(event.get("tenantId")), str(event.get("resourceId")), str(event.get("eventType")),
            str(event.get("eventDateUtc")))


def inbox_events(headers: Mapping[str, str], body: bytes) -> list[tuple[str, str | None, bytes]]:
    """A verified delivery as inbox events, one per entry of `events`.  Xero events have no id:
    the id is a digest of (tenantId, resourceId, eventType, eventDateUtc).  An Intent-to-Receive
    probe (`"events": []`) gives none."""
    payload = orjson.loads(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise ValueError("not a Xero webhook payload")
    out = []
    for event in payload["events"]:
        if not isinstance(event, dict) or not event.get("resourceId"):
            raise ValueError("Xero event without resourceId")
        key = "|".join(dedupe_key(event))
        out.append((hashlib.sha256(key.encode()).hexdigest()[:32],
                    f"{event.get('eventCategory')}.{event.get('eventType')}", orjson.dumps(event)))
    return out


def sample_delivery(secret: str, n: int, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """An INVOICE UPDATE delivery as Xero sends it (tests and the benchmark)."""
    import time
    import uuid
    from datetime import datetime, timezone

    at = datetime.fromtimestamp(timestamp if timestamp is not None else time.time(), timezone.utc)
    resource = str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-invoice:{n}"))
    body = orjson.dumps({"events": [{
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource}", "resourceId": resource,
        "tenantId": "sandbox-tenant", "tenantType": "ORGANISATION", "eventCategory": "INVOICE",
        "eventType": "UPDATE", "eventDateUtc": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]}],
        "firstEventSequence": n, "lastEventSequence": n, "entropy": f"SAMPLE{n:014d}"})
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret)}, body

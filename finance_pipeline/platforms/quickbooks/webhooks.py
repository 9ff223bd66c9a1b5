"""Intuit webhooks: `intuit-signature` = Base64(HMAC-SHA256(key = the app's verifier token, msg = raw body)).

The same scheme signs both payload formats (the legacy `eventNotifications` object and the
CloudEvents array that replaces it in 2026).  Compared in constant time; the header name is
matched case-insensitively.  Events carry ids only: the receiver re-reads the entity.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any, Mapping

HEADER = "intuit-signature"


def sign(body: bytes, verifier_token: str) -> str:
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    if not secret:
        return False
    given = next((v for k, v in headers.items() if k.lower() == HEADER), None)
    if not given:
        return False
    try:
        given_raw = base64.b64decode(given.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(given_raw, expected)


def entity_events(payload: Any) -> list[dict]:
    """(realm, entity, id, operation, event id) from either payload format, for a receiver to dedupe."""
    out = []
    if isinstance(payload, list):  # CloudEvents
        for event in payload:
            kind = str(event.get("type", ""))  # qbo.invoice.created.v1
            parts = kind.split(".")
            out.append({"realm_id": event.get("intuitaccountid"), "entity": parts[1] if len(parts) > 2 else None,
                        "id": event.get("intuitentityid"), "operation": parts[2] if len(parts) > 2 else None,
                        "event_id": event.get("id")})
    elif isinstance(payload, dict):
        for note in payload.get("eventNotifications", []):
            for entity in (note.get("dataChangeEvent") or {}).get("entities", []):
                out.append({"realm_id": note.get("realmId"), "entity": str(entity.get("name", "")).lower(),
                            "id": entity.get("id"), "operation": str(entity.get("operation", "")).lower(),
                            "event_id": f"{note.get('realmId')}:{entity.get('name')}:{entity.get('id')}:"
                                        f"{entity.get('operation')}:{entity.get('lastUpdated')}"})
    return out


def inbox_events(headers: Mapping[str, str], body: bytes) -> list[tuple[str, str | None, bytes]]:
    """A verified delivery as inbox events (event id, topic, raw event), for the webhook receiver.

    CloudEvents carry their own `id`; a legacy notification has none, so its id is a digest of
    (realm, entity, id, operation, lastUpdated) — a redelivery of the same change dedupes."""
    import hashlib as _hashlib

    import orjson

    payload = orjson.loads(body)
    out = []
    if isinstance(payload, list):
        for event in payload:
            if not isinstance(event, dict) or not event.get("id"):
                raise ValueError("QuickBooks CloudEvent without id")
            out.append((str(event["id"]), str(event.get("type")), orjson.dumps(event)))
        return out
    if not isinstance(payload, dict) or not isinstance(payload.get("eventNotifications"), list):
        raise ValueError("not a QuickBooks webhook payload")
    for note in payload["eventNotifications"]:
        for entity in (note.get("dataChangeEvent") or {}).get("entities", []):
            key = "|".join(str(x) for x in (note.get("realmId"), entity.get("name"), entity.get("id"),
                                            entity.get("operation"), entity.get("lastUpdated")))
            topic = f"qbo.{str(entity.get('name', '')).lower()}.{str(entity.get('operation', '')).lower()}"
            out.append((_hashlib.sha256(key.encode()).hexdigest()[:32], topic,
                        orjson.dumps({"realmId": note.get("realmId"), **entity})))
    return out


def sample_delivery(secret: str, n: int, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """An invoice-updated delivery in the CloudEvents format (tests and the benchmark)."""
    import time as _time
    import uuid
    from datetime import datetime, timezone

    import orjson

    at = datetime.fromtimestamp(timestamp if timestamp is not None else _time.time(), timezone.utc)
    body = orjson.dumps([{
        "specversion": "1.0", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"qbo-event:{n}")),
        "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=", "type": "qbo.invoice.updated.v1",
        "datacontenttype": "application/json", "time": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "intuitentityid": str(1000 + n), "intuitaccountid": "9130354999999999", "data": {}}])
    return {"Content-Type": "application/cloudevents-batch+json", "intuit-signature": sign(body, secret)}, body

"""SAP Business One webhooks (Webhook Messenger, 10.0 FP 2602+; Service Layer v2 `EventSubscriptions`).

- Handshake: when a subscription is saved with `Handshake: tYES`, B1 sends `GET <WebhookURL>` with
  `X-B1-Webhook-Token: <uuid>`; the endpoint answers 200 `{"Challenge": "<uuid>"}`.
- Signature (`AuthenticationType: HMAC`, `AuthenticationCred: {"Key": …, "Algorithm": "HMACSha256"}`):
  `X-B1-Webhook-Signature` = Base64(HMAC(key, raw body)).  SHA-384 and SHA-512 are also offered; the
  algorithm is recognised from the digest's length.  No timestamp is signed (replays are caught by
  the CloudEvents `id`).
- Body: a JSON array of CloudEvents-style objects `{"id", "specversion", "source":
  "/default/sap.b1/<CompanyDB>", "type": "sap.b1.Invoices.Updated.v1", "subject", "time",
  "datacontenttype", "data": {"DocEntry": 123}}`; one inbox event per element, deduped on `id`.
  The event only names the document: the sensor's run reads it through the normal incremental sync.
Details of the FP 2602 scheme are partly unverified (see /work/shared/platforms/sap_business_one.md).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime, timezone
from typing import Iterable, Mapping

import orjson

Headers = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]
SIGNATURE = "x-b1-webhook-signature"
TOKEN = "x-b1-webhook-token"
_DIGESTS = {32: hashlib.sha256, 48: hashlib.sha384, 64: hashlib.sha512}


def _get(headers: Headers, name: str) -> str:
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        key = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if key.lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return ""


def sign(body: bytes, key: str, digest=hashlib.sha256) -> str:  # noqa: ANN001
    return base64.b64encode(hmac.new(key.encode(), body, digest).digest()).decode()


def verify(headers: Headers, body: bytes, secret: str) -> bool:
    received = _get(headers, SIGNATURE).strip()
    if not received or not secret:
        return False
    try:
        raw = base64.b64decode(received, validate=True)
    except ValueError:
        return False
    digest = _DIGESTS.get(len(raw))
    return digest is not None and hmac.compare_digest(raw, hmac.new(secret.encode(), body, digest).digest())


def handshake(method: str, headers: Headers, body: bytes, query, secret: str):  # noqa: ANN001, ANN201
    """B1's subscription handshake: echo the token as the challenge (before any verification)."""
    token = _get(headers, TOKEN)
    if method == "GET" and token:
        return 200, {"Content-Type": "application/json"}, orjson.dumps({"Challenge": token})
    return None


def inbox_events(headers: Headers, body: bytes) -> list[tuple[str, str | None, bytes]]:
    events = orjson.loads(body)
    if not isinstance(events, list) or not events:
        raise ValueError("an SAP Business One delivery is a non-empty JSON array of events")
    out = []
    for event in events:
        if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
            raise ValueError("an SAP Business One event needs an id and a type")
        out.append((str(event["id"]), str(event["type"]), orjson.dumps(event)))
    return out


def sample_delivery(secret: str, n: int, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """An `Invoices.Updated` delivery as B1's Webhook Messenger sends it (tests and the benchmark)."""
    at = datetime.fromtimestamp(timestamp, timezone.utc) if timestamp else datetime.now(timezone.utc)
    doc_entry = 100 + n
    body = orjson.dumps([{
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sap.b1/SBODEMOGB/Invoices/{doc_entry}/{at.isoformat()}")),
        "specversion": "1.0", "source": "/default/sap.b1/SBODEMOGB", "type": "sap.b1.Invoices.Updated.v1",
        "subject": str(doc_entry), "time": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "datacontenttype": "application/json", "data": {"DocEntry": doc_entry},
    }])
    return {"Content-Type": "application/json", "X-B1-Webhook-Signature": sign(body, secret)}, body

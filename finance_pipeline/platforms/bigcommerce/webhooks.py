"""BigCommerce webhook deliveries: the Standard Webhooks signature and the ids to dedupe on.

BigCommerce signs each delivery with the Standard Webhooks scheme: headers `webhook-id`,
`webhook-timestamp` (Unix seconds) and `webhook-signature` = space-separated `v1,<base64>` entries,
each Base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{raw body}")).  The key is the
API account's / app's client secret as raw bytes (BigCommerce's own sample hands
`base64(client_secret)` to the standardwebhooks library, which decodes it again); a secret given
in the library's `whsec_<base64>` form is decoded the same way.  A delivery older (or newer) than
the tolerance is refused, as the library does, so a replay of an old delivery fails.  Payloads
are thin (`{"scope", "store_id", "data": {"type", "id", …}, "hash", "created_at", "producer"}`);
`webhook-id` (and the payload's `hash`, equal for duplicate fires) is the dedupe key.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Iterable, Mapping

Headers = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]
DEFAULT_TOLERANCE_S = 5 * 60


def _headers(headers: Headers) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for key, value in items:
        key = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        out.setdefault(key.lower(), value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return out


def _key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def sign(webhook_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The `webhook-signature` value for a delivery (tests and the sandbox)."""
    message = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), message, hashlib.sha256).digest()).decode()


def verify(headers: Headers, body: bytes, secret: str, tolerance_s: int | None = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> bool:
    """True when one of the delivery's `v1` signatures matches and its timestamp is fresh."""
    h = _headers(headers)
    webhook_id, stamp, signatures = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not (webhook_id and stamp and signatures and secret):
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if tolerance_s is not None and abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(webhook_id, timestamp, body, secret).encode()
    return any(hmac.compare_digest(candidate.strip().encode(), expected)
               for candidate in signatures.split(" ") if candidate.startswith("v1,"))


def inbox_events(headers: Headers, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """A verified delivery as one inbox event keyed by `webhook-id`, topic = the payload's scope."""
    import orjson

    payload = orjson.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("BigCommerce webhook body is not a JSON object")
    event_id = _headers(headers).get("webhook-id")
    if not event_id:
        raise ValueError("no webhook-id")
    return [(event_id, payload.get("scope"), body)]


def delivery(secret: str, scope: str, data: dict, store_hash: str, at: int, webhook_id: str) -> tuple[dict[str, str], bytes]:
    """(headers, body) of a delivery as BigCommerce sends it."""
    import orjson

    payload = {"scope": scope, "store_id": "1025646", "data": data, "created_at": at,
               "producer": f"stores/{store_hash}"}
    payload["hash"] = hashlib.sha1(orjson.dumps({k: payload[k] for k in ("scope", "data", "producer")})).hexdigest()
    body = orjson.dumps(payload)
    return {"Content-Type": "application/json", "webhook-id": webhook_id, "webhook-timestamp": str(at),
            "webhook-signature": sign(webhook_id, at, body, secret)}, body


def sample_delivery(secret: str, n: int, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """A `store/order/updated` delivery (tests and the benchmark)."""
    at = int(timestamp if timestamp is not None else time.time())
    return delivery(secret, "store/order/updated", {"type": "order", "id": 100 + n}, "sbx1234567", at,
                    f"bc-{n}-{at}")

"""HubSpot webhook deliveries (signature v3): verification and the events to dedupe on.

HubSpot signs each delivery with the app's client secret: `X-HubSpot-Signature-v3` is the Base64
HMAC-SHA256 of `method + uri + raw body + timestamp` (no separators), where `uri` is the full URL
the subscription targets (scheme, host, path, query) with only these escapes decoded:
%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B, and the timestamp is
`X-HubSpot-Request-Timestamp` (epoch milliseconds).  A delivery older than 5 minutes is
rejected.  The body is a JSON array of up to 100 events (`eventId`, `subscriptionType`,
`objectId`, `occurredAt` …); each becomes one inbox event keyed by its `eventId`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson

from finance_pipeline.webhooks.headers import Headers, header

SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
MAX_AGE_MS = 5 * 60 * 1000
DEFAULT_URL = "http://127.0.0.1/webhooks/hubspot"  # the sandbox app's target URL
DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
           "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def _uri(url: str) -> str:
    for escaped, char in DECODED.items():
        url = url.replace(escaped, char).replace(escaped.lower(), char)
    return url


def sign(method: str, url: str, body: bytes, timestamp_ms: str, client_secret: str) -> str:
    message = method.upper().encode() + _uri(url).encode() + body + timestamp_ms.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), message, hashlib.sha256).digest()).decode()


def verify(headers: Headers, body: bytes, secret: str, url: str | None = None, now: float | None = None,
           method: str = "POST") -> bool:
    """True when the v3 signature matches and the timestamp is within 5 minutes."""
    received, stamp = header(headers, SIGNATURE_HEADER), header(headers, TIMESTAMP_HEADER)
    if not received or not stamp or not secret or not stamp.isdigit():
        return False
    now_ms = (time.time() if now is None else now) * 1000
    if now_ms - int(stamp) > MAX_AGE_MS:
        return False
    return hmac.compare_digest(received.encode(), sign(method, url or DEFAULT_URL, body, stamp, secret).encode())


def inbox_events(headers: Headers, body: bytes) -> list[tuple[str, str | None, bytes]]:
    events = orjson.loads(body)
    if not isinstance(events, list) or not all(isinstance(e, dict) and e.get("eventId") is not None for e in events):
        raise ValueError("HubSpot webhook body is not an array of events with eventId")
    return [(str(e["eventId"]), e.get("subscriptionType"), orjson.dumps(e)) for e in events]


def sample_delivery(secret: str, n: int, timestamp: int | None = None,
                    url: str = DEFAULT_URL) -> tuple[dict[str, str], bytes]:
    """A `deal.propertyChange` delivery (dealstage → closedwon) as HubSpot sends it."""
    at_ms = int((timestamp if timestamp is not None else time.time()) * 1000)
    body = orjson.dumps([{
        "eventId": 3_000_000_000 + n, "subscriptionId": 2_401_001, "portalId": 140_000_001, "appId": 1_160_452,
        "occurredAt": at_ms - 1500, "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
        "objectId": 18_400_000_000 + n, "propertyName": "dealstage", "propertyValue": "closedwon",
        "changeSource": "CRM_UI", "sourceId": "userId:51240301"}])
    stamp = str(at_ms)
    return ({"Content-Type": "application/json", SIGNATURE_HEADER: sign("POST", url, body, stamp, secret),
             "X-HubSpot-Request-Timestamp": stamp, "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)"},
            body)

"""Stripe webhook signatures (`Stripe-Signature`), verified exactly as Stripe's SDKs do.

Header: `t=<unix seconds>,v1=<hex>[,v1=<hex>…]` (other schemes such as `v0` are ignored).  The
signed bytes are the ASCII timestamp, a dot and the raw body exactly as received; the MAC is
HMAC-SHA256 keyed with the endpoint secret string (`whsec_…`, used as is), lowercase hex.  Several
`v1` entries appear while a secret is being rolled: any match passes.  A timestamp older than the
tolerance is rejected (replay protection); like stripe-python, only the past side is checked.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Iterable, Mapping

import orjson

SIGNATURE_HEADER = "Stripe-Signature"
DEFAULT_TOLERANCE_S = 300


def _header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    for key, value in items:
        key = key.decode() if isinstance(key, bytes) else key
        if key.lower() == wanted:
            return value.decode() if isinstance(value, bytes) else value
    return None


def compute_signature(timestamp: int | str, body: bytes, secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of `b"<t>." + body` keyed with the endpoint secret."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value for `body` (what Stripe sends; used by the emulator)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={compute_signature(t, body, secret)}"


def parse_header(value: str) -> tuple[int | None, list[str]]:
    """-> (timestamp, [v1 signatures]).  Malformed parts are skipped, as Stripe's libraries do."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(item)
            except ValueError:
                return None, []
        elif key == "v1":
            signatures.append(item.strip())
    return timestamp, signatures


def verify(headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes, secret: str,
           tolerance_s: int | None = DEFAULT_TOLERANCE_S, now: float | None = None) -> bool:
    """True when `body` carries a valid, fresh `Stripe-Signature` for `secret`.

    Every `v1` entry is compared in constant time (and all are compared, so the time taken does
    not tell which one matched).  `tolerance_s=None` disables the freshness check.
    """
    value = _header(headers, SIGNATURE_HEADER)
    if not value or not secret:
        return False
    timestamp, signatures = parse_header(value)
    if timestamp is None or not signatures:
        return False
    expected = compute_signature(timestamp, body, secret)
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        return False
    if tolerance_s is not None:
        current = time.time() if now is None else now
        if timestamp < current - tolerance_s:
            return False
    return True


def delivery_id(body: bytes) -> str:
    """The event id (`evt_…`): Stripe may deliver an event more than once; dedupe on this."""
    event: Any = orjson.loads(body)
    return str(event["id"])


def inbox_events(headers: Mapping[str, str], body: bytes) -> list[tuple[str, str | None, bytes]]:
    """A verified delivery as inbox events: one Event object, keyed by its `evt_…` id."""
    event: Any = orjson.loads(body)
    if not isinstance(event, dict) or event.get("object") != "event" or not str(event.get("id", "")).startswith("evt_"):
        raise ValueError("not a Stripe Event object")
    return [(str(event["id"]), event.get("type"), body)]


def sample_delivery(secret: str, n: int, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """A `charge.succeeded` Event delivery, signed as Stripe signs it (tests and the benchmark)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    event = {"id": f"evt_sample{n:016d}", "object": "event", "api_version": "2024-06-20", "created": t,
             "type": "charge.succeeded", "livemode": False, "pending_webhooks": 1,
             "data": {"object": {"id": f"ch_sample{n:016d}", "object": "charge", "amount": 11300, "currency": "gbp",
                                 "status": "succeeded", "created": t}}}
    body = orjson.dumps(event)
    return {"Content-Type": "application/json; charset=utf-8", SIGNATURE_HEADER: sign(body, secret, t)}, body

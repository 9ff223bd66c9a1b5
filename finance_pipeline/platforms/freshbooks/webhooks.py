"""FreshBooks webhook callbacks: signature check, the registration handshake, inbox events.

FreshBooks POSTs `application/x-www-form-urlencoded` fields (`name` = the event such as
`invoice.update`, `object_id`, `account_id`, `business_id`, `identity_id`, `user_id`) and signs
them in `X-FreshBooks-Hmac-SHA256`: Base64(HMAC-SHA256(key = the callback's verifier, msg = the
form fields serialised as JSON the way Python's `json.dumps` does by default, in the order they
were sent)).  The signature covers that re-serialisation, not the raw body.

Registration: `POST /events/account/{id}/events/callbacks` creates the callback unverified; FreshBooks
then sends one `callback.verify` message carrying `verifier`; the account confirms it with
`PUT …/callbacks/{callbackid}` `{"callback": {"verifier": …}}` (`client.confirm_callback`).  The
receiver answers that message 200 before any signature check (`handshake`) and keeps nothing.

A delivery has no id of its own: the event id is (name, object_id, minute received), so a retry
within the minute is a replay and a later change of the same object is a new event; the sync
fetches the object itself anyway.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode

Headers = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]

SIGNATURE = "x-freshbooks-hmac-sha256"
SAMPLE_ACCOUNT = "zDmNq"


def _signature(headers: Headers) -> str:
    """`X-FreshBooks-Hmac-SHA256`, whatever the case of the name and the type of the header list."""
    for key, value in (headers.items() if isinstance(headers, Mapping) else headers):
        name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if name.lower() == SIGNATURE:
            return (value.decode("latin-1") if isinstance(value, bytes) else str(value)).strip()
    return ""


def fields(body: bytes) -> dict[str, str]:
    """The form fields in the order sent (a repeated field keeps its last value, as a dict does)."""
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))


def sign(form: Mapping[str, str], verifier: str) -> str:
    msg = json.dumps(dict(form)).encode()  # default separators (", ", ": "), insertion order
    return base64.b64encode(hmac.new(verifier.encode(), msg, hashlib.sha256).digest()).decode()


def verify(headers: Headers, body: bytes, secret: str) -> bool:
    received = _signature(headers)
    if not received or not secret:
        return False
    try:
        form = fields(body)
    except UnicodeDecodeError:
        return False
    return hmac.compare_digest(received.encode(), sign(form, secret).encode())


def handshake(method: str, headers: Headers, body: bytes, query, secret: str):  # noqa: ANN001, ANN201
    """The one `callback.verify` message of a new callback: 200, nothing kept (confirm it with
    `client.confirm_callback`, which needs the verifier it carries)."""
    if method.upper() != "POST":
        return None
    try:
        form = fields(body)
    except (UnicodeDecodeError, ValueError):
        return None
    if form.get("name") == "callback.verify" and form.get("verifier"):
        return 200, {}, b""
    return None


def inbox_events(headers: Headers, body: bytes) -> list[tuple[str, str | None, bytes]]:
    form = fields(body)
    name, object_id = form.get("name"), form.get("object_id")
    if not name or not object_id:
        raise ValueError("FreshBooks webhook without name or object_id")
    if name == "callback.verify":
        return []
    return [(f"{name}:{object_id}:{int(time.time() // 60)}", name, body)]


def delivery(form: Mapping[str, str], verifier: str) -> tuple[dict[str, str], bytes]:
    """Headers and body exactly as FreshBooks sends a callback."""
    body = urlencode(list(form.items())).encode()
    return ({"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "FreshBooks API (python)",
             "X-FreshBooks-Hmac-SHA256": sign(form, verifier)}, body)


def sample_delivery(secret: str, n: int, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """An `invoice.update` callback (tests and the benchmark)."""
    form = {"name": "invoice.update", "object_id": str(480_000 + n), "account_id": SAMPLE_ACCOUNT,
            "business_id": "7117", "identity_id": "9120", "user_id": "1"}
    return delivery(form, secret)

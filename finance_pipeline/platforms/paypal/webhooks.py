"""PayPal webhook signatures.

PayPal signs each delivery with SHA256withRSA over
`<PAYPAL-TRANSMISSION-ID>|<PAYPAL-TRANSMISSION-TIME>|<webhook id>|<CRC-32 of the raw body>`
(the CRC as an unsigned decimal; the webhook id is the receiver's own subscription id, not a
value from the payload), and names the certificate holding the public key in `PAYPAL-CERT-URL`.
`verify` checks it offline: the certificate is fetched (only from PayPal hosts, or the loopback
emulator in the sandbox), cached, must be currently valid, and the transmission must be recent.
The alternative is PayPal's postback, `POST /v1/notifications/verify-webhook-signature`
(`verify_by_postback`).
"""
from __future__ import annotations

import base64
import threading
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping
from urllib.parse import urlparse

import httpx
import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

UTC = timezone.utc
TOLERANCE = timedelta(minutes=10)  # PayPal documents none; retries are re-signed with a fresh time
TRUSTED_SUFFIXES = (".paypal.com",)
SANDBOX_HOSTS = ("127.0.0.1", "localhost")
_certs: dict[str, x509.Certificate] = {}
_lock = threading.Lock()


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


def _trusted(url: str, allow_loopback: bool) -> bool:
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    if parsed.scheme == "https" and (host == "paypal.com" or host.endswith(TRUSTED_SUFFIXES)):
        return True
    return allow_loopback and parsed.scheme == "http" and host in SANDBOX_HOSTS


def certificate(url: str, allow_loopback: bool = True) -> x509.Certificate | None:
    if not _trusted(url, allow_loopback):
        return None
    with _lock:
        cached = _certs.get(url)
    if cached is not None:
        return cached
    try:
        resp = httpx.get(url, timeout=10)
        resp.raise_for_status()
        cert = x509.load_pem_x509_certificate(resp.content)
    except (httpx.HTTPError, ValueError):
        return None
    with _lock:
        _certs[url] = cert
    return cert


def verify(headers: Mapping[str, str], body: bytes, secret: str, *, now: datetime | None = None,
           allow_loopback: bool = True) -> bool:
    """`secret` is the webhook id of the subscription the delivery was sent to."""
    tid = _header(headers, "paypal-transmission-id")
    ttime = _header(headers, "paypal-transmission-time")
    sig = _header(headers, "paypal-transmission-sig")
    cert_url = _header(headers, "paypal-cert-url")
    algo = _header(headers, "paypal-auth-algo")
    if not (tid and ttime and sig and cert_url and secret) or algo != "SHA256withRSA":
        return False
    try:
        sent = datetime.fromisoformat(ttime.replace("Z", "+00:00"))
        signature = base64.b64decode(sig, validate=True)
    except ValueError:
        return False
    now = now or datetime.now(UTC)
    if sent.tzinfo is None or abs(now - sent) > TOLERANCE:
        return False
    cert = certificate(cert_url, allow_loopback)
    if cert is None or not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        return False
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, signed_message(tid, ttime, secret, body), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def verify_by_postback(client: Any, headers: Mapping[str, str], body: bytes, webhook_id: str) -> bool:
    """The alternative: ask PayPal (an authenticated `ApiClient` for the REST API)."""
    payload = {
        "auth_algo": _header(headers, "paypal-auth-algo"), "cert_url": _header(headers, "paypal-cert-url"),
        "transmission_id": _header(headers, "paypal-transmission-id"),
        "transmission_sig": _header(headers, "paypal-transmission-sig"),
        "transmission_time": _header(headers, "paypal-transmission-time"),
        "webhook_id": webhook_id, "webhook_event": orjson.loads(body),
    }
    answer = client.request("POST", "/v1/notifications/verify-webhook-signature", json=payload, idempotent=True)
    return answer.json().get("verification_status") == "SUCCESS"


def inbox_events(headers: Mapping[str, str], body: bytes) -> list[tuple[str, str, bytes]]:
    """(event id, event type, raw body) of a delivery: the event id is the dedupe key."""
    event = orjson.loads(body)
    return [(str(event["id"]), str(event.get("event_type", "")), body)]


_SAMPLE_CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-local-sample-0001"
_sample_key: Any = None


def sample_delivery(secret: str, n: int, timestamp: datetime | None = None) -> tuple[dict[str, str], bytes]:
    """A PAYMENT.CAPTURE.COMPLETED delivery signed the PayPal way for webhook id `secret`, with a
    locally generated key whose certificate is placed in this process's certificate cache (tests)."""
    global _sample_key
    from finance_pipeline.platforms.paypal.emulator import SigningKey, rfc3339

    with _lock:
        if _sample_key is None:
            _sample_key = SigningKey()
            _certs[_SAMPLE_CERT_URL] = _sample_key.cert
    event = {"id": f"WH-SAMPLE{n:016d}", "event_version": "1.0", "create_time": "2026-01-01T10:00:00Z",
             "resource_type": "capture", "event_type": "PAYMENT.CAPTURE.COMPLETED",
             "summary": f"Payment completed for GBP {n}.00",
             "resource": {"id": f"{n:017d}", "status": "COMPLETED", "amount": {"currency_code": "GBP", "value": f"{n}.00"}}}
    body = orjson.dumps(event)
    tid = f"sample-{n:08d}-0000-0000-0000-000000000000"
    ttime = rfc3339(timestamp or datetime.now(UTC))
    headers = {"PAYPAL-TRANSMISSION-ID": tid, "PAYPAL-TRANSMISSION-TIME": ttime,
               "PAYPAL-TRANSMISSION-SIG": _sample_key.sign(signed_message(tid, ttime, secret, body)),
               "PAYPAL-CERT-URL": _SAMPLE_CERT_URL, "PAYPAL-AUTH-ALGO": "SHA256withRSA",
               "Content-Type": "application/json"}
    return headers, body

"""PayPal REST client: OAuth client credentials, a cached bearer token, a polite request rate.

- Auth: `POST /v1/oauth2/token` with Basic `client_id:client_secret` and
  `grant_type=client_credentials` gives a bearer token (`expires_in` ~9 h).  It is cached and
  renewed shortly before expiry or on a 401 — PayPal throttles apps that mint a token per call.
- Limits: PayPal publishes no numbers and answers 429 `RATE_LIMIT_REACHED`; the client paces
  itself with a token bucket at `CLIENT_RATE_SHARE` of the emulator's modest rate and honours
  `Retry-After`.
- `now`: the `Date` header of the token answer (the sandbox emulator speaks its clock there), so
  Transaction Search windows end at PayPal's now, not the caller's.

Live mode reads `PAYPAL_CLIENT_ID`, `PAYPAL_CLIENT_SECRET`, optionally `PAYPAL_WEBHOOK_ID` (the
webhook subscription id, for signature checks) and `PAYPAL_ENVIRONMENT` (`live` | `sandbox`).
"""
from __future__ import annotations

import base64
import threading
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Mapping

import httpx
import orjson

from finance_pipeline.http.client import ApiClient, ApiError, RetryPolicy
from finance_pipeline.http.ratelimit import TokenBucket
from finance_pipeline.http.redaction import redact
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.paypal.emulator import BURST, RATE_PER_S
from finance_pipeline.settings import Secret, Settings, SettingsError, env, require_secret

HOSTS = {"live": "https://api-m.paypal.com", "sandbox": "https://api-m.sandbox.paypal.com"}
CLIENT_RATE_SHARE = 0.8
RENEW_BEFORE_S = 600


def live_connection(settings: Settings) -> Connection:
    how = ("Create a REST app at developer.paypal.com (Apps & Credentials) with Transaction Search enabled "
           "and use its client id and secret")
    client_id = require_secret("PAYPAL_CLIENT_ID", how)
    secret = require_secret("PAYPAL_CLIENT_SECRET", how)
    environment = (env("PAYPAL_ENVIRONMENT") or "live").strip().lower()
    if environment not in HOSTS:
        raise SettingsError(f"PAYPAL_ENVIRONMENT must be 'live' or 'sandbox', not {environment!r}")
    creds: dict[str, Secret | str] = {"client_id": client_id, "client_secret": secret}
    webhook_id = env("PAYPAL_WEBHOOK_ID")
    if webhook_id:
        creds["webhook_id"] = webhook_id
    return Connection("paypal", HOSTS[environment], creds, settings)


class PayPalAuth:
    """A client-credentials bearer token, cached and renewed."""

    def __init__(self, connection: Connection, timeout_s: float = 30.0) -> None:
        self.url = connection.base_url.rstrip("/") + "/v1/oauth2/token"
        basic = base64.b64encode(f"{connection.secret('client_id')}:{connection.secret('client_secret')}".encode())
        self._basic = Secret(f"Basic {basic.decode()}", "paypal.basic_auth")
        self._token: Secret | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self._timeout_s = timeout_s
        self.minted = 0
        self.server_now: datetime | None = None

    def _mint(self) -> None:
        last = ""
        for attempt in range(6):
            try:  # a connection per mint: tokens last hours, so nothing is kept open between them
                with httpx.Client(timeout=self._timeout_s) as http:
                    resp = http.post(self.url, content=b"grant_type=client_credentials", headers={
                        "Authorization": self._basic.value, "Content-Type": "application/x-www-form-urlencoded",
                        "Accept": "application/json"})
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if resp.status_code == 200:
                    try:
                        data = orjson.loads(resp.content)
                        token, expires = data["access_token"], float(data["expires_in"])
                    except (ValueError, KeyError, TypeError):
                        last = "unreadable token answer"
                    else:
                        self._token = Secret(token, "paypal.access_token")
                        self._expires_at = time.monotonic() + expires - RENEW_BEFORE_S
                        self.minted += 1
                        date = resp.headers.get("date")
                        if date:
                            self.server_now = parsedate_to_datetime(date).astimezone(timezone.utc)
                        return
                elif resp.status_code < 500 and resp.status_code != 429:
                    raise ApiError("paypal", "POST", self.url, resp.status_code, redact(resp.content.decode("utf-8", "replace")))
                else:
                    last = f"HTTP {resp.status_code}"
            time.sleep(min(2.0, 0.1 * 2 ** attempt))
        raise ApiError("paypal", "POST", self.url, None, "", f"token request failed: {last}")

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._mint()
            return {"Authorization": f"Bearer {self._token.value}"}  # type: ignore[union-attr]

    def refresh(self) -> bool:
        with self._lock:
            self._mint()
        return True

    def now(self) -> datetime:
        """PayPal's current time (from the token answer's Date header)."""
        if self.server_now is None:
            self.headers()
        return self.server_now or datetime.now(timezone.utc)

    def close(self) -> None:
        return None


def make_client(connection: Connection, auth: PayPalAuth | None = None) -> ApiClient:
    """`auth`: share one cached token between clients (PayPal throttles token minting)."""
    settings = connection.settings
    auth = auth or PayPalAuth(connection, timeout_s=settings.http_timeout_s * 5)
    client = ApiClient(
        "paypal", connection.base_url, auth=auth,
        limiter=TokenBucket(RATE_PER_S * CLIENT_RATE_SHARE, max(1, int(BURST * CLIENT_RATE_SHARE)), settings.time_scale),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json"})
    client.paypal_auth = auth  # type: ignore[attr-defined]
    return client

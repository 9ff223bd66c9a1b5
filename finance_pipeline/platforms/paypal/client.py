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

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

from finance_pipeline.http.client import ApiClient, RetryPolicy
from finance_pipeline.http.oauth import BasicTokenAuth
from finance_pipeline.http.ratelimit import TokenBucket
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


class PayPalAuth(BasicTokenAuth):
    """A client-credentials bearer token, cached and renewed; `now()` is PayPal's time."""

    def __init__(self, connection: Connection, timeout_s: float = 30.0) -> None:
        super().__init__("paypal", connection.base_url.rstrip("/") + "/v1/oauth2/token",
                         connection.secret("client_id"), connection.secret("client_secret"),
                         {"grant_type": "client_credentials"}, renew_before_s=RENEW_BEFORE_S, timeout_s=timeout_s,
                         accept_json=True)
        self.server_now: datetime | None = None

    def on_token(self, response: httpx.Response) -> None:
        date = response.headers.get("date")
        if date:
            self.server_now = parsedate_to_datetime(date).astimezone(timezone.utc)

    def now(self) -> datetime:
        """PayPal's current time (from the token answer's Date header)."""
        if self.server_now is None:
            self.headers()
        return self.server_now or datetime.now(timezone.utc)


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

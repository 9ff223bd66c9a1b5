"""Lightspeed Retail (R-Series) client: OAuth 2.0 with rotating tokens, the account's leaky bucket.

- Auth: `Authorization: Bearer <access token>`.  Lightspeed's OAuth server rotates *both* tokens on
  every refresh, so the newest pair is persisted atomically (0600) in
  `<data>/secrets/lightspeed_token.json` before use, refreshes are serialised across threads and
  processes, and a 401 triggers one refresh.  This reuses the rotating-token machinery written for
  Xero (`XeroAuth`); Lightspeed takes the client id and secret in the form body.
- Live mode reads `LIGHTSPEED_CLIENT_ID`, `LIGHTSPEED_CLIENT_SECRET`, `LIGHTSPEED_REFRESH_TOKEN`
  (seeds the chain) and `LIGHTSPEED_ACCOUNT_ID`.
- Rate limit: a client-side leaky bucket (60 units, 1/s, GET = 1) kept two units under the
  server's, re-sized from `X-LS-API-Bucket-Level: used/size` and `X-LS-API-Drip-Rate` on every
  answer (the bucket grows with the number of registers) and levelled up to what the server
  says it has counted; a 429 is retried after its `Retry-After`.
"""
from __future__ import annotations

import logging
import time

from finance_pipeline.http.client import ApiClient, ApiError, Response, RetryPolicy
from finance_pipeline.http.ratelimit import LeakyBucket
from finance_pipeline.http.redaction import register_secret
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.lightspeed import BUCKET_HEADER, BUCKET_SIZE, DRIP_HEADER, DRIP_PER_S, LIVE_API_URL, LIVE_TOKEN_URL
from finance_pipeline.platforms.xero.client import TokenSet, XeroAuth
from finance_pipeline.sandbox.store import atomic_write
from finance_pipeline.settings import Secret, Settings, SettingsError, env

log = logging.getLogger("finance_pipeline.lightspeed")
TOKEN_FILE = "lightspeed_token.json"
REQUIRED_ENV = ("LIGHTSPEED_CLIENT_ID", "LIGHTSPEED_CLIENT_SECRET", "LIGHTSPEED_REFRESH_TOKEN", "LIGHTSPEED_ACCOUNT_ID")


class LightspeedAuthError(SettingsError):
    """Lightspeed refused our credentials; the message says what to do (never shows a secret)."""


def live_connection(settings: Settings) -> Connection:
    missing = [name for name in REQUIRED_ENV if not env(name)]
    if missing:
        raise SettingsError(
            f"Lightspeed live mode needs {', '.join(missing)} (missing). Register an app with Lightspeed Retail "
            "(R-Series), authorise it once (scope employee:register employee:reports) and set "
            "LIGHTSPEED_CLIENT_ID, LIGHTSPEED_CLIENT_SECRET, LIGHTSPEED_REFRESH_TOKEN (the first refresh token; "
            f"rotated ones are kept in {settings.secrets_dir / TOKEN_FILE}) and LIGHTSPEED_ACCOUNT_ID "
            "(GET /API/V3/Account.json) in the environment or in .env.")
    creds: dict[str, Secret | str] = {
        "client_id": Secret(env("LIGHTSPEED_CLIENT_ID") or "", "LIGHTSPEED_CLIENT_ID"),
        "client_secret": Secret(env("LIGHTSPEED_CLIENT_SECRET") or "", "LIGHTSPEED_CLIENT_SECRET"),
        "refresh_token": Secret(env("LIGHTSPEED_REFRESH_TOKEN") or "", "LIGHTSPEED_REFRESH_TOKEN"),
        "account_id": env("LIGHTSPEED_ACCOUNT_ID") or "",
        "token_url": env("LIGHTSPEED_TOKEN_URL") or LIVE_TOKEN_URL,
    }
    return Connection("lightspeed", LIVE_API_URL, creds, settings)


class LightspeedAuth(XeroAuth):
    """Rotating-token OAuth (locking, atomic token file) with Lightspeed's token request."""

    @classmethod
    def from_connection(cls, connection: Connection) -> "LightspeedAuth":
        settings = connection.settings
        return cls(token_url=connection.secret("token_url"), client_id=connection.secret("client_id"),
                   client_secret=connection.secret("client_secret"),
                   initial_refresh_token=connection.secret("refresh_token"),
                   token_path=settings.secrets_dir / TOKEN_FILE, timeout_s=max(5.0, settings.http_timeout_s),
                   max_attempts=settings.http_max_attempts)

    def _exchange(self, refresh_token: str) -> TokenSet:
        try:
            resp = self._http.request(
                "POST", self.token_url, idempotent=True, headers={"Accept": "application/json"},
                data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                      "client_id": self._client_id, "client_secret": self._client_secret})
        except ApiError as exc:
            if exc.status in (400, 401) and ("invalid_grant" in exc.body or "invalid_client" in exc.body):
                what = "refresh token" if "invalid_grant" in exc.body else "client id / secret"
                raise LightspeedAuthError(
                    f"Lightspeed refused the {what}. Re-authorise the app and put the new refresh token in "
                    f"LIGHTSPEED_REFRESH_TOKEN (a changed value replaces the chain kept in {self.token_path}); "
                    "check LIGHTSPEED_CLIENT_ID / LIGHTSPEED_CLIENT_SECRET.") from None
            raise
        body = resp.json()
        now = self._clock()
        token = TokenSet(body["access_token"], now + float(body.get("expires_in", 1800)), body["refresh_token"],
                         now, self._seed)
        register_secret(token.access_token)
        register_secret(token.refresh_token)
        atomic_write(self.token_path, token.to_json(), mode=0o600)  # before anything uses it
        self.refreshes += 1
        log.info("lightspeed: access token refreshed (valid %d s); refresh token rotated", int(token.expires_at - now))
        return token


class LightspeedBucket(LeakyBucket):
    """Client side of the account's leaky bucket, following what the server reports."""

    SAFETY = 2.0

    def __init__(self, time_scale: float = 1.0) -> None:
        super().__init__(BUCKET_SIZE, DRIP_PER_S, time_scale=time_scale, safety=self.SAFETY)
        self.time_scale = time_scale

    def on_response(self, response: Response) -> None:
        level = response.headers.get(BUCKET_HEADER)
        if not level:
            return
        try:
            used_s, size_s = level.split("/", 1)
            used, size = float(used_s), float(size_s)
            drip = float(response.headers.get(DRIP_HEADER) or self.leak_per_s / self.time_scale)
        except ValueError:
            log.debug("unreadable %s header: %r", BUCKET_HEADER, level)
            return
        with self._lock:
            self._drain(time.monotonic())
            if size > 0:
                self.capacity = size
            if drip > 0:
                self.leak_per_s = drip * self.time_scale
        self.observe(used, size)


def make_client(connection: Connection, *, auth: LightspeedAuth | None = None) -> ApiClient:
    settings = connection.settings
    bucket = LightspeedBucket(settings.time_scale)
    account = connection.get("account_id")
    return ApiClient(
        "lightspeed",
        f"{connection.base_url.rstrip('/')}/API/V3/Account/{account}",
        auth=auth or LightspeedAuth.from_connection(connection),
        limiter=bucket,
        retry=RetryPolicy(max_attempts=settings.http_max_attempts, base_delay_s=0.5 / settings.time_scale,
                          max_delay_s=10.0 / settings.time_scale),
        timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json", "User-Agent": "finance-pipeline (lightspeed source)"},
        on_response=bucket.on_response,
    )

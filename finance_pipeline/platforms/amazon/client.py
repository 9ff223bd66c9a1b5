"""Amazon SP-API client: the shared `ApiClient` with LWA auth and one token bucket per operation.

- **Auth**: Login with Amazon.  The app's client id and secret and the seller's refresh token are
  exchanged (`POST /auth/o2/token`, form `grant_type=refresh_token`) for an access token that
  lives 3600 s; it is sent as `x-amz-access-token` (SP-API does not use `Authorization`, and has
  not needed AWS SigV4 signing since 2023-10-02).  The token is renewed a minute before it
  expires, and once more if the API answers 403 with an expired-token message.  Refreshes are
  serialised across threads.
- **Rate limits**: SP-API meters each operation separately (rate, burst): searchOrders 0.0056/s
  burst 20, v0 getOrders 0.0167/s burst 20, Finances 0.5/s burst 30 …  The client keeps one
  `TokenBucket` per operation (scaled by `settings.time_scale` in the sandbox) one token short of
  the burst, refilling at 95 % of the documented rate, and lets one call per operation be in
  flight at a time.  Then every call reaches Amazon after the previous one of its operation was
  answered, and if the client's bucket allowed n calls between two sends, the server's (one token
  larger, refilling faster, over a span at least as long) allows them too: whatever the latency,
  no call is refused.  The one-at-a-time rule costs nothing: the buckets are far slower than a
  round trip.  A 429 `QuotaExceeded` (another app of the seller
  spending the same quota) is retried after 1/rate seconds.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Mapping

import httpx

from finance_pipeline.http.client import ApiClient, ApiError, Response, RetryPolicy
from finance_pipeline.http.ratelimit import ConcurrencyLimiter, TokenBucket
from finance_pipeline.platforms.amazon import MARKETPLACES, RATE_LIMITS
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Secret, Settings, SettingsError, env, require_secret

log = logging.getLogger("finance_pipeline.amazon")

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
REGION_HOSTS = {"na": "https://sellingpartnerapi-na.amazon.com", "eu": "https://sellingpartnerapi-eu.amazon.com",
                "fe": "https://sellingpartnerapi-fe.amazon.com"}
CLIENT_RATE_SHARE = 0.95
REFRESH_MARGIN_S = 60.0
USER_AGENT = "finance-pipeline/0.1 (Language=Python)"


def live_connection(settings: Settings) -> Connection:
    """Live credentials from the environment (or `.env`): `AMAZON_LWA_CLIENT_ID`,
    `AMAZON_LWA_CLIENT_SECRET`, `AMAZON_SP_REFRESH_TOKEN` (required); `AMAZON_SP_REGION`
    (na | eu | fe, default eu) and `AMAZON_MARKETPLACE_IDS` (comma-separated, default
    Amazon.co.uk and Amazon.com)."""
    how = ("Register a private SP-API application in Seller Central (Apps and Services > Develop Apps) "
           "with the Orders and Finance roles, self-authorise it and copy its LWA credentials and refresh token")
    client_id = require_secret("AMAZON_LWA_CLIENT_ID", how)
    client_secret = require_secret("AMAZON_LWA_CLIENT_SECRET", how)
    refresh_token = require_secret("AMAZON_SP_REFRESH_TOKEN", how)
    region = (env("AMAZON_SP_REGION") or "eu").strip().lower()
    if region not in REGION_HOSTS:
        raise SettingsError(f"AMAZON_SP_REGION={region!r} is not one of {', '.join(REGION_HOSTS)}.")
    marketplaces = env("AMAZON_MARKETPLACE_IDS") or ",".join(m[0] for m in MARKETPLACES.values())
    creds: dict[str, Secret | str] = {"client_id": client_id, "client_secret": client_secret,
                                      "refresh_token": refresh_token, "token_url": LWA_TOKEN_URL,
                                      "marketplace_ids": marketplaces}
    return Connection("amazon", REGION_HOSTS[region], creds, settings)


class LwaAuth:
    """Login with Amazon access tokens from a refresh token, renewed before they expire."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, refresh_token: str,
                 timeout_s: float = 30.0, max_attempts: int = 5) -> None:
        self.token_url = token_url
        self._form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id,
                      "client_secret": client_secret}
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - REFRESH_MARGIN_S:
                self._exchange()
            return {"x-amz-access-token": self._token or ""}

    def refresh(self) -> bool:
        with self._lock:
            self._exchange()
        return True

    def current(self) -> str | None:
        with self._lock:
            return self._token

    def invalidate(self, token: str | None) -> None:
        """Forget `token` (the API said it has expired) unless another thread already replaced it."""
        with self._lock:
            if token is None or token == self._token:
                self._token = None

    def _exchange(self) -> None:
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                resp = httpx.post(self.token_url, data=self._form, timeout=self.timeout_s,
                                  headers={"User-Agent": USER_AGENT})
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if resp.status_code == 200:
                    try:
                        body = resp.json()
                        token, lifetime = body["access_token"], float(body.get("expires_in", 3600))
                    except (ValueError, KeyError):
                        last = "unreadable token response"
                    else:
                        self._token = token
                        Secret(token, "amazon.access_token")  # registers it for redaction
                        self._expires_at = time.monotonic() + lifetime
                        self.refreshes += 1
                        return
                elif resp.status_code < 500 and resp.status_code != 429:
                    error = ""
                    try:
                        error = resp.json().get("error", "")
                    except ValueError:
                        pass
                    raise ApiError("amazon", "POST", self.token_url, resp.status_code,
                                   f"{error or 'refused'}: LWA refused the refresh token exchange (check "
                                   "AMAZON_LWA_CLIENT_ID, AMAZON_LWA_CLIENT_SECRET and AMAZON_SP_REFRESH_TOKEN)")
                else:
                    last = f"HTTP {resp.status_code}"
            time.sleep(min(5.0, 0.2 * 2 ** attempt))
        raise ApiError("amazon", "POST", self.token_url, None, "", f"LWA token exchange failed: {last}")


class OperationLimiter:
    """One token bucket per SP-API operation; the operation of the current call is set per thread."""

    def __init__(self, time_scale: float = 1.0, share: float = CLIENT_RATE_SHARE) -> None:
        self.buckets: dict[str, TokenBucket] = {}
        for op, (rate, burst) in RATE_LIMITS.items():
            bucket = TokenBucket(rate * share, max(1, burst - 1), time_scale=time_scale)
            self.buckets[op] = bucket
        self.in_flight = {op: ConcurrencyLimiter(1) for op in RATE_LIMITS}
        self._current = threading.local()

    def use(self, op: str) -> None:
        if op not in self.buckets:
            raise KeyError(f"unknown SP-API operation {op!r}")
        self._current.op = op

    def _op(self) -> str:
        op = getattr(self._current, "op", None)
        if op is None:
            raise RuntimeError("AmazonApiClient calls must name their operation")
        return op

    def _bucket(self) -> TokenBucket:
        return self.buckets[self._op()]

    def acquire(self) -> None:
        op = self._op()
        self.in_flight[op].acquire()
        self.buckets[op].acquire()

    def release(self) -> None:
        self.in_flight[self._op()].release()

    def try_acquire(self) -> float:
        return self._bucket().try_acquire()


class AmazonApiClient(ApiClient):
    """`ApiClient` whose calls name their SP-API operation (for its token bucket)."""

    limiter: OperationLimiter

    def call(self, op: str, path: str, params: Any = None) -> Any:
        self.limiter.use(op)
        assert isinstance(self.auth, LwaAuth)
        for renewed in (False, True):
            token = self.auth.current()
            try:
                return self.request("GET", path, params=params).json()
            except ApiError as exc:
                if exc.status == 403 and "expired" in str(exc).lower() and not renewed:
                    self.auth.invalidate(token)
                    continue
                raise
        raise AssertionError("unreachable")


def make_client(connection: Connection) -> AmazonApiClient:
    settings = connection.settings
    scale = settings.time_scale
    auth = LwaAuth(connection.get("token_url") or LWA_TOKEN_URL, connection.secret("client_id"),
                   connection.secret("client_secret"), connection.secret("refresh_token"),
                   timeout_s=settings.http_timeout_s, max_attempts=settings.http_max_attempts)
    # a 429 means the quota is spent: the slowest refill of a listed operation is one token in
    # 1/rate seconds; backoff grows from 2 s (scaled) up to a minute
    return AmazonApiClient(
        "amazon", connection.base_url, auth=auth, limiter=OperationLimiter(scale),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts, base_delay_s=2.0 / scale, max_delay_s=60.0 / scale),
        timeout_s=settings.http_timeout_s,
        default_headers={"User-Agent": USER_AGENT},
    )


def marketplace_ids(connection: Connection) -> list[str]:
    raw = connection.get("marketplace_ids") or ",".join(m[0] for m in MARKETPLACES.values())
    return [m.strip() for m in raw.split(",") if m.strip()]


def response_rate(resp: Response) -> float | None:
    value = resp.headers.get("x-amzn-ratelimit-limit")
    try:
        return float(value) if value else None
    except ValueError:
        return None

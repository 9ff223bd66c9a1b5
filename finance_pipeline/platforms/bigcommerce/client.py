"""BigCommerce Management API client: store hash, API account token and the store's request quota.

Live mode reads `BIGCOMMERCE_STORE_HASH` (the `abc123` of `https://api.bigcommerce.com/stores/abc123/`)
and `BIGCOMMERCE_ACCESS_TOKEN` (a store-level API account with Orders read-only and Order
Transactions read-only scopes, created in the control panel under Settings > Store-level API
accounts).  Optional: `BIGCOMMERCE_CLIENT_SECRET` (the account's client secret, which signs
webhooks), `BIGCOMMERCE_API_URL` (default `https://api.bigcommerce.com`) and
`BIGCOMMERCE_REQUESTS_PER_WINDOW` (default 150 per 30 s, the Standard / Plus quota; Pro is 450).

The quota is per store and shared by every app on it, so besides pacing itself the client reads
`X-Rate-Limit-Requests-Left` / `X-Rate-Limit-Time-Reset-Ms` on every answer: when another app has
used the quota up, the next calls wait for the reset instead of drawing a 429 (a 429 carries no
`Retry-After`; the same headers say how long to wait, and the client pauses that long).
"""
from __future__ import annotations

import functools
import json
import threading
import time
from decimal import Decimal

from finance_pipeline.http.client import ApiClient, Response, RetryPolicy, StaticHeaders
from finance_pipeline.http.ratelimit import CompositeLimiter, SlidingWindow
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Secret, Settings, SettingsError, env, require_secret

API_URL = "https://api.bigcommerce.com"
DEFAULT_QUOTA, WINDOW_S = 150, 30.0


class QuotaPause:
    """A limiter that holds every call until the store's quota resets, once the server says the
    quota is spent (`X-Rate-Limit-Requests-Left: 0` or a 429 with `X-Rate-Limit-Time-Reset-Ms`)."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def try_acquire(self) -> float:
        with self._lock:
            return max(0.0, self._until - time.monotonic())

    def acquire(self) -> None:
        while (wait := self.try_acquire()) > 0:
            time.sleep(wait)

    def release(self) -> None:
        return None

    def on_response(self, resp: Response) -> None:
        left, reset = resp.headers.get("x-rate-limit-requests-left"), resp.headers.get("x-rate-limit-time-reset-ms")
        if reset is None or not reset.isdigit():
            return
        if resp.status == 429 or (left is not None and left.isdigit() and int(left) <= 0):
            with self._lock:
                self._until = max(self._until, time.monotonic() + int(reset) / 1000.0)


def live_connection(settings: Settings) -> Connection:
    store_hash = (env("BIGCOMMERCE_STORE_HASH") or "").strip()
    if not store_hash:
        raise SettingsError("BIGCOMMERCE_STORE_HASH is not set. Set it to your store hash: the part after "
                            "/stores/ in the API path shown with your API account (in the environment or in .env).")
    how = ("Create a store-level API account (Settings > Store-level API accounts) with Orders read-only and "
           "Order Transactions read-only scopes and use its access token")
    credentials: dict = {"store_hash": store_hash, "access_token": require_secret("BIGCOMMERCE_ACCESS_TOKEN", how)}
    secret = env("BIGCOMMERCE_CLIENT_SECRET")
    if secret:
        credentials["client_secret"] = Secret(secret, "BIGCOMMERCE_CLIENT_SECRET")
    quota = env("BIGCOMMERCE_REQUESTS_PER_WINDOW")
    if quota:
        credentials["requests_per_window"] = quota
    return Connection("bigcommerce", (env("BIGCOMMERCE_API_URL") or API_URL).rstrip("/"), credentials, settings)


def make_client(connection: Connection) -> ApiClient:
    """The client rooted at `/stores/{store_hash}/`: paths are `v2/orders`, `v3/orders/…`."""
    settings = connection.settings
    scale = settings.time_scale if settings.mode == "sandbox" else 1.0
    quota = int(connection.get("requests_per_window") or DEFAULT_QUOTA)
    pause = QuotaPause()
    return ApiClient(
        "bigcommerce",
        f"{connection.base_url.rstrip('/')}/stores/{connection.secret('store_hash')}",
        auth=StaticHeaders({"X-Auth-Token": connection.secret("access_token")}),
        # calls hold their place until answered: the store counts them on arrival (ratelimit.py)
        limiter=CompositeLimiter(pause, SlidingWindow(quota, WINDOW_S, scale, hold_until_release=True)),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts),
        timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json"},
        on_response=pause.on_response,
        json_loads=functools.partial(json.loads, parse_float=Decimal),  # V3 money is a JSON number
    )

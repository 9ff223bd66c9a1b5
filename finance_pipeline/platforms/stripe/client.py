"""Stripe HTTP client: the shared `ApiClient` with Stripe's auth, version pin, limits and retry rules.

- Auth: `Authorization: Bearer <secret or restricted key>`.
- `Stripe-Version` is pinned (`API_VERSION`), so responses never change shape when the account's
  default version is upgraded in the Dashboard.
- Client-side limiter: a token bucket at 80 % of the documented global limit (25 requests/s for
  test-mode keys, 100/s for live keys), scaled by `settings.time_scale` like the emulator's.
  The bucket's burst is smaller than the server's, so jitter on the wire cannot trip the server.
- Retries: the shared rules (429, 5xx, timeouts, truncated bodies), overridden by Stripe's own
  `Stripe-Should-Retry` header when present (`true` retries e.g. a 409 lock conflict, `false`
  never retries).  Stripe documents no `Retry-After`; backoff is exponential with full jitter,
  0.5 s doubling up to 5 s as in stripe-python (scaled by `time_scale` in the sandbox).
- Every POST carries an `Idempotency-Key` (a fresh UUID4 unless the caller passes one), so a
  retried write is replayed by Stripe instead of executed twice.
"""
from __future__ import annotations

import uuid
from typing import Any, Mapping

from finance_pipeline.http.client import ApiClient, Response, RetryPolicy, StaticHeaders
from finance_pipeline.http.ratelimit import TokenBucket
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.stripe import API_VERSION, LIVE_RATE_PER_S, TEST_RATE_PER_S
from finance_pipeline.settings import Secret, Settings, env, require_secret

LIVE_BASE_URL = "https://api.stripe.com"
CLIENT_RATE_SHARE = 0.8  # stay this far under the documented limit


def live_connection(settings: Settings) -> Connection:
    """Live credentials from the environment (or `.env`): `STRIPE_API_KEY` (required),
    `STRIPE_WEBHOOK_SECRET` (optional, `whsec_…`, for the webhook receiver)."""
    key = require_secret(
        "STRIPE_API_KEY",
        "Create a restricted key with read access to charges, refunds, disputes, balance "
        "transactions, payouts and events in the Stripe Dashboard (Developers > API keys)")
    credentials: dict[str, Secret | str] = {"api_key": key}
    webhook_secret = env("STRIPE_WEBHOOK_SECRET")
    if webhook_secret:
        credentials["webhook_secret"] = Secret(webhook_secret, "STRIPE_WEBHOOK_SECRET")
    return Connection("stripe", LIVE_BASE_URL, credentials, settings)


def rate_per_s(api_key: str) -> int:
    """Documented global limit for a key: test-mode keys get 25 requests/s, live keys 100/s."""
    return TEST_RATE_PER_S if api_key.startswith(("sk_test_", "rk_test_")) else LIVE_RATE_PER_S


def should_retry(resp: Response) -> bool | None:
    """Stripe's `Stripe-Should-Retry` header, when the server sent one."""
    value = resp.headers.get("stripe-should-retry")
    if value is None:
        return None
    return value.strip().lower() == "true"


class StripeApiClient(ApiClient):
    """`ApiClient` whose POSTs always carry an `Idempotency-Key`."""

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kw: Any) -> Response:
        if method.upper() == "POST":
            hdrs = dict(headers or {})
            if not any(k.lower() == "idempotency-key" for k in hdrs):
                hdrs["Idempotency-Key"] = str(uuid.uuid4())
            headers = hdrs
        return super().request(method, path, headers=headers, **kw)


def make_client(connection: Connection) -> ApiClient:
    settings = connection.settings
    api_key = connection.secret("api_key")
    scale = settings.time_scale
    rate = rate_per_s(api_key) * CLIENT_RATE_SHARE
    return StripeApiClient(
        "stripe",
        connection.base_url,
        auth=StaticHeaders({"Authorization": f"Bearer {api_key}"}),
        limiter=TokenBucket(rate, burst=rate, time_scale=scale),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts, base_delay_s=0.5 / scale,
                          max_delay_s=5.0 / scale),
        timeout_s=settings.http_timeout_s,
        default_headers={"Stripe-Version": API_VERSION, "User-Agent": "finance-pipeline (stripe source)"},
        retry_hint=should_retry,
    )

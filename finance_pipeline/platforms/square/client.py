"""Square Connect v2 client: the shared `ApiClient` with Square's auth, version pin and pacing.

- Auth: `Authorization: Bearer <access token>`.  Live mode reads `SQUARE_ACCESS_TOKEN` (a
  personal access token, which does not expire, or an OAuth access token with PAYMENTS_READ,
  ORDERS_READ, PAYOUTS_READ and MERCHANT_PROFILE_READ); `SQUARE_ENVIRONMENT=sandbox` points at
  Square's own sandbox.  OAuth tokens last 30 days and are renewed outside this pipeline.
- `Square-Version` is pinned (`API_VERSION`) so field shapes never change under us.
- Square publishes no limits and sends no rate-limit headers: the client paces itself with a
  token bucket at 80 % of the sandbox's emulated rate (scaled by `time_scale`), and on a 429
  backs off exponentially with jitter, as Square advises.
"""
from __future__ import annotations

from finance_pipeline.http.client import ApiClient, RetryPolicy, StaticHeaders
from finance_pipeline.http.ratelimit import TokenBucket
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.square import (API_VERSION, CLIENT_RATE_SHARE, EMULATED_RATE_PER_S, LIVE_BASE_URL,
                                               SANDBOX_BASE_URL)
from finance_pipeline.settings import Secret, Settings, env, require_secret


def live_connection(settings: Settings) -> Connection:
    """Live credentials from the environment (or `.env`): `SQUARE_ACCESS_TOKEN` (required),
    `SQUARE_WEBHOOK_SIGNATURE_KEY` (optional, for the webhook receiver), `SQUARE_ENVIRONMENT`
    (`production` by default, or `sandbox`)."""
    token = require_secret(
        "SQUARE_ACCESS_TOKEN",
        "Create an application in the Square Developer Console and use its production access token "
        "(or an OAuth token with PAYMENTS_READ, ORDERS_READ, PAYOUTS_READ and MERCHANT_PROFILE_READ)")
    credentials: dict[str, Secret | str] = {"access_token": token}
    key = env("SQUARE_WEBHOOK_SIGNATURE_KEY")
    if key:
        credentials["webhook_signature_key"] = Secret(key, "SQUARE_WEBHOOK_SIGNATURE_KEY")
    base = SANDBOX_BASE_URL if (env("SQUARE_ENVIRONMENT") or "").lower() == "sandbox" else LIVE_BASE_URL
    return Connection("square", base, credentials, settings)


def make_client(connection: Connection) -> ApiClient:
    settings = connection.settings
    scale = settings.time_scale
    rate = EMULATED_RATE_PER_S * CLIENT_RATE_SHARE
    return ApiClient(
        "square",
        connection.base_url,
        auth=StaticHeaders({"Authorization": f"Bearer {connection.secret('access_token')}"}),
        limiter=TokenBucket(rate, burst=rate, time_scale=scale),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts, base_delay_s=0.5 / scale, max_delay_s=8.0 / scale),
        timeout_s=settings.http_timeout_s,
        default_headers={"Square-Version": API_VERSION, "Accept": "application/json",
                         "User-Agent": "finance-pipeline (square source)"},
    )

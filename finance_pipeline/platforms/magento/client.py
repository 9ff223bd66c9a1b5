"""Magento / Adobe Commerce REST client: the store URL, an integration token, and the CDN's limit.

Live mode reads `MAGENTO_BASE_URL` (e.g. `https://shop.example.com`), `MAGENTO_ACCESS_TOKEN` (the
access token of an integration with Sales > Operations > Orders and Credit Memos read access;
the store must allow integration tokens as standalone Bearer tokens, Stores > Configuration >
Services > OAuth > Consumer Settings, since Magento 2.4.4) and optionally `MAGENTO_STORE_CODE`
(default `default`).  `MAGENTO_REQUESTS_PER_MINUTE` (default 120) paces the client under the
CDN/WAF limit (Fastly on Adobe Commerce Cloud); 429s are retried after `Retry-After`.
Money arrives as JSON numbers: answers are parsed with `Decimal` for every non-integer, never
through binary floats.
"""
from __future__ import annotations

import functools
import json
from decimal import Decimal

from finance_pipeline.http.client import ApiClient, RetryPolicy, StaticHeaders
from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Settings, SettingsError, env, require_secret

DEFAULT_REQUESTS_PER_MINUTE = 120
loads_decimal = functools.partial(json.loads, parse_float=Decimal)


def live_connection(settings: Settings) -> Connection:
    url = (env("MAGENTO_BASE_URL") or "").strip().rstrip("/")
    if not url:
        raise SettingsError("MAGENTO_BASE_URL is not set. Set it to your store's address, e.g. "
                            "https://shop.example.com (in the environment or in .env).")
    token = require_secret("MAGENTO_ACCESS_TOKEN",
                           "Create an integration (System > Extensions > Integrations) with read access to "
                           "orders and credit memos, activate it and use its Access Token")
    credentials = {"access_token": token, "store_code": (env("MAGENTO_STORE_CODE") or "default").strip()}
    if env("MAGENTO_REQUESTS_PER_MINUTE"):
        credentials["requests_per_minute"] = env("MAGENTO_REQUESTS_PER_MINUTE")
    return Connection("magento", url, credentials, settings)


def make_client(connection: Connection) -> ApiClient:
    settings = connection.settings
    per_minute = int(connection.get("requests_per_minute") or DEFAULT_REQUESTS_PER_MINUTE)
    store = connection.get("store_code") or "default"
    return ApiClient(
        "magento",
        f"{connection.base_url.rstrip('/')}/rest/{store}/V1",
        auth=StaticHeaders({"Authorization": f"Bearer {connection.secret('access_token')}"}),
        limiter=SlidingWindow(per_minute, 60.0, settings.time_scale, hold_until_release=True),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts),
        timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json"},
        json_loads=loads_decimal,
    )

"""Shopify REST Admin API client: the shop's URL and token, and its leaky-bucket call limit.

Live mode reads `SHOPIFY_SHOP` (`my-shop` or `my-shop.myshopify.com`) and
`SHOPIFY_ACCESS_TOKEN` (an Admin API access token with `read_orders`, `read_all_orders` and
`read_shopify_payments_payouts`); sandbox mode gets both from the emulator.  The same client runs
in both modes: base URL `https://{shop}/admin/api/{API_VERSION}` live, the emulator's URL plus
the same path in the sandbox.
"""
from __future__ import annotations

import logging
import time

from finance_pipeline.http.client import ApiClient, Response, RetryPolicy, StaticHeaders
from finance_pipeline.http.ratelimit import LeakyBucket
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.shopify import API_VERSION
from finance_pipeline.settings import Settings, SettingsError, env, require_secret

log = logging.getLogger("finance_pipeline.shopify")

CALL_LIMIT_HEADER = "x-shopify-shop-api-call-limit"
STANDARD_BUCKET, STANDARD_LEAK = 40, 2.0  # what every shop gets at least
SECONDS_TO_DRAIN = 20  # every plan drains its full bucket in 20 s (40/2, 80/4, 400/20)


def live_connection(settings: Settings) -> Connection:
    shop = (env("SHOPIFY_SHOP") or "").strip()
    if not shop:
        raise SettingsError("SHOPIFY_SHOP is not set. Set it to your shop's domain, e.g. my-shop.myshopify.com "
                            "(in the environment or in .env).")
    shop = shop.removeprefix("https://").removeprefix("http://").strip("/")
    if "." not in shop:
        shop = f"{shop}.myshopify.com"
    token = require_secret("SHOPIFY_ACCESS_TOKEN",
                           "Create a custom app in the Shopify admin with read_orders, read_all_orders and "
                           "read_shopify_payments_payouts scopes and use its Admin API access token")
    return Connection("shopify", f"https://{shop}", {"shop": shop, "access_token": token}, settings)


class ShopifyCallLimit(LeakyBucket):
    """Client side of Shopify's REST leaky bucket.

    Starts at the standard plan (40 calls, 2/s) — safe for every shop — and adapts to the bucket
    size the shop reports in `X-Shopify-Shop-Api-Call-Limit: used/size` (Plus: 400, 20/s; the
    leak is always size/20 per second).  The reported `used` is folded in with `observe`, so
    calls made by other apps or processes on the same shop are accounted for too.
    """

    def __init__(self, time_scale: float = 1.0, safety: float = 1.0) -> None:
        super().__init__(STANDARD_BUCKET, STANDARD_LEAK, time_scale=time_scale, safety=safety)
        self.time_scale = time_scale

    def on_response(self, response: Response) -> None:
        header = response.headers.get(CALL_LIMIT_HEADER)
        if not header:
            return
        try:
            used_s, size_s = header.split("/", 1)
            used, size = float(used_s), float(size_s)
        except ValueError:
            log.debug("unreadable %s header: %r", CALL_LIMIT_HEADER, header)
            return
        if size > 0 and size != self.capacity:
            with self._lock:
                self._drain(time.monotonic())  # settle the level at the old rate first
                self.capacity = size
                self.leak_per_s = size / SECONDS_TO_DRAIN * self.time_scale
            log.info("shopify: bucket size %d reported; now pacing at %.1f calls/s", size, size / SECONDS_TO_DRAIN)
        self.observe(used, size)


def make_client(connection: Connection) -> ApiClient:
    settings = connection.settings
    limiter = ShopifyCallLimit(time_scale=settings.time_scale)
    return ApiClient(
        "shopify",
        f"{connection.base_url.rstrip('/')}/admin/api/{API_VERSION}",
        auth=StaticHeaders({"X-Shopify-Access-Token": connection.secret("access_token")}),
        limiter=limiter,
        retry=RetryPolicy(max_attempts=settings.http_max_attempts),
        timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json"},
        on_response=limiter.on_response,
    )


def make_graphql_client(connection: Connection):
    """The shop's GraphQL Admin API client (`graphql_client.GraphQLClient`): same URL and token,
    paced by the query-cost bucket (`CostThrottle`) instead of the REST call limit."""
    from finance_pipeline.platforms.shopify.graphql_client import GraphQLClient

    settings = connection.settings
    api = ApiClient(
        "shopify",
        f"{connection.base_url.rstrip('/')}/admin/api/{API_VERSION}",
        auth=StaticHeaders({"X-Shopify-Access-Token": connection.secret("access_token")}),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts),
        timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json"},
    )
    return GraphQLClient(api, time_scale=settings.time_scale)

"""WooCommerce REST API client: the store URL, its REST API keys and the host's request limit.

Live mode reads `WOOCOMMERCE_STORE_URL` (e.g. `https://shop.example.com`),
`WOOCOMMERCE_CONSUMER_KEY` (`ck_…`) and `WOOCOMMERCE_CONSUMER_SECRET` (`cs_…`) — a read key from
WooCommerce > Settings > Advanced > REST API.  Keys travel as HTTP Basic auth, which WooCommerce
accepts over HTTPS (the store URL must be https; plain-HTTP stores need OAuth 1.0a, not
supported here).  `WOOCOMMERCE_REQUESTS_PER_MINUTE` (default 120) paces the client under the
host's limit: core WooCommerce has none, but hosts and WAFs do, answering 429 (+ `Retry-After`),
which the shared client honours.
"""
from __future__ import annotations

import base64

from finance_pipeline.http.client import ApiClient, RetryPolicy, StaticHeaders
from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Secret, Settings, SettingsError, env, require_secret

API_PATH = "/wp-json/wc/v3"
DEFAULT_REQUESTS_PER_MINUTE = 120


def live_connection(settings: Settings) -> Connection:
    url = (env("WOOCOMMERCE_STORE_URL") or "").strip().rstrip("/")
    if not url:
        raise SettingsError("WOOCOMMERCE_STORE_URL is not set. Set it to your store's address, e.g. "
                            "https://shop.example.com (in the environment or in .env).")
    if not url.startswith("https://"):
        raise SettingsError("WOOCOMMERCE_STORE_URL must start with https:// (REST API keys are sent as "
                            "HTTP Basic auth, which WooCommerce only accepts over HTTPS).")
    how = "Create a REST API key with Read permission in WooCommerce > Settings > Advanced > REST API"
    credentials = {"consumer_key": require_secret("WOOCOMMERCE_CONSUMER_KEY", how),
                   "consumer_secret": require_secret("WOOCOMMERCE_CONSUMER_SECRET", how)}
    secret = env("WOOCOMMERCE_WEBHOOK_SECRET")
    if secret:
        credentials["webhook_secret"] = Secret(secret, "WOOCOMMERCE_WEBHOOK_SECRET")
    per_minute = env("WOOCOMMERCE_REQUESTS_PER_MINUTE")
    extra = {"requests_per_minute": per_minute} if per_minute else {}
    return Connection("woocommerce", url, {**credentials, **extra}, settings)


def make_client(connection: Connection) -> ApiClient:
    settings = connection.settings
    per_minute = int(connection.get("requests_per_minute") or DEFAULT_REQUESTS_PER_MINUTE)
    token = base64.b64encode(
        f"{connection.secret('consumer_key')}:{connection.secret('consumer_secret')}".encode()).decode()
    return ApiClient(
        "woocommerce",
        f"{connection.base_url.rstrip('/')}{API_PATH}",
        auth=StaticHeaders({"Authorization": f"Basic {token}"}),
        # calls hold their place until answered: the host counts them on arrival (ratelimit.py)
        limiter=SlidingWindow(per_minute, 60.0, settings.time_scale, hold_until_release=True),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts),
        timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json"},
    )

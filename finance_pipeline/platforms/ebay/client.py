"""eBay REST client: OAuth user tokens minted from a refresh token, two hosts, daily quotas.

- Auth: the Sell APIs need a *user* access token (authorization-code grant, consented once by the
  seller).  The long-lived refresh token (~18 months) is exchanged at
  `POST /identity/v1/oauth2/token` (`grant_type=refresh_token`, Basic client credentials, form
  body) for a 2-hour access token, which is cached and renewed shortly before it expires or on
  a 401 — never per request (the refresh grant has its own daily quota).
- Hosts: Fulfillment on `api.ebay.com`, Finances on `apiz.ebay.com`; the sandbox emulator
  serves both on one port and passes its URL as `finances_base_url`.
- Limits: eBay meters calls per application per day (Fulfillment 100,000, Finances 15,000) and
  sends no rate headers; each API gets its own client-side rolling-day window
  (`SlidingWindow(..., hold_until_release=True)`), scaled by `time_scale` as the emulator's is.
- `X-EBAY-C-MARKETPLACE-ID` names the seller's marketplace (EBAY_GB for this UK seller).

Live mode reads `EBAY_CLIENT_ID`, `EBAY_CLIENT_SECRET`, `EBAY_REFRESH_TOKEN`, optionally
`EBAY_MARKETPLACE_ID` (default EBAY_GB) and `EBAY_ENVIRONMENT` (`production` | `sandbox`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Mapping

from finance_pipeline.http.client import ApiClient, Response, RetryPolicy
from finance_pipeline.http.oauth import BasicTokenAuth
from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Settings, SettingsError, env, require_secret

log = logging.getLogger("finance_pipeline.ebay")

HOSTS = {
    "production": ("https://api.ebay.com", "https://apiz.ebay.com"),
    "sandbox": ("https://api.sandbox.ebay.com", "https://apiz.sandbox.ebay.com"),
}
TOKEN_PATH = "/identity/v1/oauth2/token"
SCOPES = ("https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly",
          "https://api.ebay.com/oauth/api_scope/sell.finances")
DAILY_QUOTAS = {"fulfillment": 100_000, "finances": 15_000}
DAY_S = 86_400
RENEW_BEFORE_S = 300  # renew an access token this long before it expires


def live_connection(settings: Settings) -> Connection:
    how = ("Create a keyset at developer.ebay.com (Application Keys) and, for the seller account, a user "
           "refresh token with the sell.fulfillment.readonly and sell.finances scopes (User Tokens > "
           "OAuth)")
    client_id = require_secret("EBAY_CLIENT_ID", how)
    client_secret = require_secret("EBAY_CLIENT_SECRET", how)
    refresh = require_secret("EBAY_REFRESH_TOKEN", how)
    environment = (env("EBAY_ENVIRONMENT") or "production").strip().lower()
    if environment not in HOSTS:
        raise SettingsError(f"EBAY_ENVIRONMENT must be 'production' or 'sandbox', not {environment!r}")
    api, apiz = HOSTS[environment]
    return Connection("ebay", api, {
        "client_id": client_id, "client_secret": client_secret, "refresh_token": refresh,
        "finances_base_url": apiz, "marketplace_id": env("EBAY_MARKETPLACE_ID") or "EBAY_GB",
    }, settings)


class EbayUserAuth(BasicTokenAuth):
    """A user access token from the refresh token, shared by every client of one connection."""

    def __init__(self, connection: Connection, timeout_s: float = 30.0) -> None:
        super().__init__("ebay", connection.base_url.rstrip("/") + TOKEN_PATH, connection.secret("client_id"),
                         connection.secret("client_secret"),
                         {"grant_type": "refresh_token", "refresh_token": connection.secret("refresh_token"),
                          "scope": " ".join(SCOPES)},
                         renew_before_s=RENEW_BEFORE_S, timeout_s=timeout_s)


@dataclass
class EbayClients:
    fulfillment: ApiClient
    finances: ApiClient
    auth: EbayUserAuth

    def close(self) -> None:
        self.fulfillment.close()
        self.finances.close()
        self.auth.close()


def server_now(resp: Response) -> datetime | None:
    """eBay's idea of now, from the `Date` header (filters must stay inside its windows)."""
    value = resp.headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(timezone.utc)
    except (TypeError, ValueError):
        return None


def make_clients(connection: Connection, quotas: Mapping[str, int] | None = None) -> EbayClients:
    settings = connection.settings
    quotas = {**DAILY_QUOTAS, **(quotas or {})}
    auth = EbayUserAuth(connection, timeout_s=settings.http_timeout_s * 5)
    headers = {"Accept": "application/json", "X-EBAY-C-MARKETPLACE-ID": connection.get("marketplace_id") or "EBAY_GB"}

    def client(api: str, base: str) -> ApiClient:
        return ApiClient(
            "ebay", base, auth=auth,
            limiter=SlidingWindow(quotas[api], DAY_S, settings.time_scale, hold_until_release=True),
            retry=RetryPolicy(max_attempts=settings.http_max_attempts),
            timeout_s=settings.http_timeout_s, default_headers=headers)

    finances_base = connection.get("finances_base_url") or connection.base_url
    return EbayClients(client("fulfillment", connection.base_url), client("finances", finances_base), auth)


def make_client(connection: Connection) -> ApiClient:
    """The Fulfillment client (the module contract's single client); Finances: `make_clients`."""
    return make_clients(connection).fulfillment

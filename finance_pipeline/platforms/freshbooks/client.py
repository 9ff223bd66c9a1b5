"""FreshBooks client: OAuth2 with single-use refresh tokens, page/pages paging, Eastern timestamps.

Tokens: the rotating-refresh-token mechanism of Xero and QuickBooks (`XeroAuth`: access token kept
until shortly before expiry, each new refresh token written atomically, 0600, to
`<data>/secrets/freshbooks_token.json` before it is used, refreshes serialised across threads and
processes) — FreshBooks' refresh tokens are single use, so losing one means re-authorising.
FreshBooks takes the client credentials in the JSON body of `POST /auth/oauth/token`.

Paging follows the envelope's `pages` (FreshBooks silently caps `per_page` at 100, so a short page
is no end marker).  Accounting timestamps are naive US/Eastern text; `to_utc` / `to_eastern`
convert them (the incremental filter `search[updated_min]` is Eastern too).  FreshBooks publishes
no rate limit: at most `FRESHBOOKS_REQUESTS_PER_MINUTE` (default 120) calls a minute, 429 retried
with backoff (no Retry-After is sent).
"""
from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from finance_pipeline.http import ApiClient, ApiError, CompositeLimiter, ConcurrencyLimiter, RetryPolicy, SlidingWindow
from finance_pipeline.http.pagination import page_number_pages
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.xero.client import XeroAuth, XeroAuthError
from finance_pipeline.settings import Secret, Settings, SettingsError, env

LIVE_TOKEN_URL = "https://api.freshbooks.com/auth/oauth/token"
LIVE_API_URL = "https://api.freshbooks.com"
TOKEN_FILE = "freshbooks_token.json"
REQUIRED_ENV = ("FRESHBOOKS_CLIENT_ID", "FRESHBOOKS_CLIENT_SECRET", "FRESHBOOKS_REFRESH_TOKEN", "FRESHBOOKS_ACCOUNT_ID")
PER_PAGE = 100
DEFAULT_REQUESTS_PER_MINUTE = 120
EASTERN = ZoneInfo("America/New_York")
UTC = timezone.utc


class FreshBooksAuthError(SettingsError):
    """FreshBooks refused our credentials; the message says what to do (never shows a secret)."""


class FreshBooksError(Exception):
    """A 4xx from the accounting API with FreshBooks' `errors` list (errno, field, message)."""

    def __init__(self, status: int, errors: list[dict]) -> None:
        self.status, self.errors = status, errors
        self.errnos = {e.get("errno") for e in errors}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(f"{e.get('errno')} {e.get('field') or ''}: {e.get('message')}".replace(" :", ":")
                         for e in self.errors) or f"HTTP {self.status}"


def live_connection(settings: Settings) -> Connection:
    missing = [name for name in REQUIRED_ENV if not env(name)]
    if missing:
        raise SettingsError(
            f"FreshBooks live mode needs {', '.join(missing)} (missing). Create an app at "
            "my.freshbooks.com/#/developer (redirect URI https, scopes user:invoices, user:clients, user:payments "
            "read and write), authorise it once (authorization code → token at "
            f"{LIVE_TOKEN_URL}) and set FRESHBOOKS_CLIENT_ID, FRESHBOOKS_CLIENT_SECRET, FRESHBOOKS_REFRESH_TOKEN and "
            "FRESHBOOKS_ACCOUNT_ID (the accountId of GET /auth/api/v1/users/me, not the businessId); rotated "
            f"refresh tokens are kept in {settings.secrets_dir / TOKEN_FILE}. Webhooks: FRESHBOOKS_WEBHOOK_VERIFIER.")
    creds: dict[str, Secret | str] = {
        "client_id": Secret(env("FRESHBOOKS_CLIENT_ID") or "", "FRESHBOOKS_CLIENT_ID"),
        "client_secret": Secret(env("FRESHBOOKS_CLIENT_SECRET") or "", "FRESHBOOKS_CLIENT_SECRET"),
        "refresh_token": Secret(env("FRESHBOOKS_REFRESH_TOKEN") or "", "FRESHBOOKS_REFRESH_TOKEN"),
        "account_id": env("FRESHBOOKS_ACCOUNT_ID") or "",
        "token_url": env("FRESHBOOKS_TOKEN_URL") or LIVE_TOKEN_URL,
    }
    if env("FRESHBOOKS_WEBHOOK_VERIFIER"):
        creds["webhook_verifier"] = Secret(env("FRESHBOOKS_WEBHOOK_VERIFIER") or "", "FRESHBOOKS_WEBHOOK_VERIFIER")
    if env("FRESHBOOKS_REQUESTS_PER_MINUTE"):
        creds["requests_per_minute"] = env("FRESHBOOKS_REQUESTS_PER_MINUTE") or ""
    return Connection("freshbooks", env("FRESHBOOKS_API_URL") or LIVE_API_URL, creds, settings)


class FreshBooksAuth(XeroAuth):
    """The rotating-refresh-token chain, with FreshBooks' body credentials, token file and messages."""

    @classmethod
    def from_connection(cls, connection: Connection) -> "FreshBooksAuth":
        settings = connection.settings
        return cls(token_url=connection.get("token_url") or f"{connection.base_url.rstrip('/')}/auth/oauth/token",
                   client_id=connection.secret("client_id"), client_secret=connection.secret("client_secret"),
                   initial_refresh_token=connection.secret("refresh_token"),
                   token_path=settings.secrets_dir / TOKEN_FILE, timeout_s=max(5.0, settings.http_timeout_s),
                   max_attempts=settings.http_max_attempts)

    def _token_request(self, refresh_token: str) -> dict:
        return {"json": {"grant_type": "refresh_token", "client_id": self._client_id,
                         "client_secret": self._client_secret, "refresh_token": refresh_token,
                         "redirect_uri": "https://localhost/freshbooks/callback"},
                "headers": {"Accept": "application/json"}}

    def _exchange(self, refresh_token: str):  # noqa: ANN202 - TokenSet
        try:
            return super()._exchange(refresh_token)
        except XeroAuthError:
            raise FreshBooksAuthError(
                "FreshBooks refused the refresh token or the client credentials (invalid_grant / invalid_client). "
                "Refresh tokens are single use: authorise the app again and put the new refresh token in "
                f"FRESHBOOKS_REFRESH_TOKEN (a changed value replaces the chain kept in {self.token_path}); check "
                "FRESHBOOKS_CLIENT_ID / FRESHBOOKS_CLIENT_SECRET.") from None


def make_client(connection: Connection, *, auth: XeroAuth | None = None) -> ApiClient:
    settings = connection.settings
    scale = settings.time_scale if settings.mode == "sandbox" else 1.0
    per_minute = int(connection.get("requests_per_minute") or DEFAULT_REQUESTS_PER_MINUTE)
    return ApiClient(
        "freshbooks", connection.base_url, auth=auth or FreshBooksAuth.from_connection(connection),
        limiter=CompositeLimiter(ConcurrencyLimiter(4),
                                 SlidingWindow(per_minute, 60, scale, margin=0.02, hold_until_release=True)),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json", "User-Agent": "finance-pipeline (FreshBooks API client)"},
        json_loads=functools.partial(json.loads, parse_float=Decimal),
    )


# -- wire helpers ------------------------------------------------------------------------------
def accounting_path(connection: Connection, group: str, resource: str) -> str:
    return f"accounting/account/{connection.secret('account_id')}/{group}/{resource}"


def to_utc(text: str | None) -> datetime | None:
    """A FreshBooks accounting timestamp (naive US/Eastern `YYYY-MM-DD HH:MM:SS`) in UTC."""
    if not text:
        return None
    return datetime.fromisoformat(str(text)).replace(tzinfo=EASTERN).astimezone(UTC)


def to_eastern(at: datetime) -> str:
    return at.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S")


def result(body: Any) -> dict:
    return ((body or {}).get("response") or {}).get("result") or {}


def list_pages(client: ApiClient, path: str, key: str, params: dict[str, Any]) -> Iterator[list[dict]]:
    """Every page of a FreshBooks list (`page` / `per_page`, stop after `pages`)."""
    for body in page_number_pages(client, path, {**params, "per_page": PER_PAGE}, page_size=PER_PAGE,
                                  items=lambda b: result(b).get(key) or [],
                                  pages_of=lambda b: int(result(b).get("pages") or 1)):
        yield result(body).get(key) or []


def call(client: ApiClient, method: str, path: str, body: dict | None = None, params: Any = None) -> dict:
    """A write or read of one object → its `result`; FreshBooks' errors raised as FreshBooksError."""
    resp = client.request(method, path, json=body, params=params, idempotent=method in ("GET", "PUT"),
                          ok_statuses=(400, 404, 422))
    answer = resp.json()
    if resp.status >= 400:
        errors = ((answer or {}).get("response") or {}).get("errors") or [{"message": str(answer)}]
        raise FreshBooksError(resp.status, errors)
    return result(answer)


def confirm_callback(client: ApiClient, connection: Connection, callback_id: int, verifier: str) -> dict:
    """Second step of a webhook registration: send back the verifier FreshBooks POSTed to the uri."""
    return call(client, "PUT", f"events/account/{connection.secret('account_id')}/events/callbacks/{callback_id}",
                {"callback": {"verifier": verifier}})


__all__ = ["ApiError", "FreshBooksError", "make_client", "live_connection", "list_pages", "call", "to_utc",
           "to_eastern", "accounting_path", "confirm_callback"]

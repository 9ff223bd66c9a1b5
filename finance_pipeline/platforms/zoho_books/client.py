"""Zoho Books API v3 client: data-centre OAuth, `Zoho-oauthtoken` header, the organisation's limits.

Live mode reads `ZOHO_CLIENT_ID`, `ZOHO_CLIENT_SECRET`, `ZOHO_REFRESH_TOKEN` (a Self Client or
server-based client of the Zoho API console, scope `ZohoBooks.fullaccess.all`, `access_type=offline`),
`ZOHO_ORGANIZATION_ID` and `ZOHO_DATA_CENTRE` (com | eu | in | com.au | jp | ca | sa | com.cn): the
refresh token is exchanged at that centre's accounts server (`accounts.zoho.eu` …), and the token
answer's `api_domain` is the API host.  Zoho does not rotate refresh tokens; an access token lives
an hour and is renewed before it expires, or once after a 401.

Every call carries `organization_id`.  Limits: 100 requests per minute per organisation (held
client-side in a window dated at release) and at most `ZOHO_CONCURRENCY` (default 5: the paid
plans' 10 shared with the org's other integrations) in flight; 429s (code 44/45, no Retry-After)
are retried with backoff.  Money arrives as JSON numbers and is parsed as `Decimal`.  A non-zero
`code` in an answer is raised as `ZohoApiError` with Zoho's code and message.
"""
from __future__ import annotations

import functools
import json
import threading
import time
from decimal import Decimal
from typing import Any, Iterator, Mapping

import httpx

from finance_pipeline.http.client import ApiClient, ApiError, RetryPolicy
from finance_pipeline.http.ratelimit import CompositeLimiter, ConcurrencyLimiter, SlidingWindow
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.zoho_books import wire
from finance_pipeline.settings import Secret, Settings, SettingsError, env, require_secret

loads_decimal = functools.partial(json.loads, parse_float=Decimal)
REFRESH_MARGIN_S = 120.0
DEFAULT_CONCURRENCY = 5
CLIENT_ERRORS = (400, 401, 403, 404, 405, 409, 422)
HOW = ("Create a client in the Zoho API console (api-console.zoho.<dc>), generate a refresh token with scope "
       "ZohoBooks.fullaccess.all and access_type=offline, and")


def live_connection(settings: Settings) -> Connection:
    dc = (env("ZOHO_DATA_CENTRE") or "").strip().lower()
    if dc not in wire.DATA_CENTRES:
        raise SettingsError(f"ZOHO_DATA_CENTRE is {'not set' if not dc else repr(dc)}: set it to the data centre "
                            f"of your Zoho account, one of {', '.join(wire.DATA_CENTRES)} (the domain of "
                            "books.zoho.<dc> you sign in to).")
    accounts, api = wire.DATA_CENTRES[dc]
    creds: dict[str, Secret | str] = {
        "client_id": require_secret("ZOHO_CLIENT_ID", f"{HOW} use its Client ID"),
        "client_secret": require_secret("ZOHO_CLIENT_SECRET", f"{HOW} use its Client Secret"),
        "refresh_token": require_secret("ZOHO_REFRESH_TOKEN", f"{HOW} use the refresh token it returned"),
        "accounts_url": accounts, "api_domain": api,
    }
    org = (env("ZOHO_ORGANIZATION_ID") or "").strip()
    if not org:
        raise SettingsError("ZOHO_ORGANIZATION_ID is not set. Find it in Zoho Books under Settings > Organisation "
                            "Profile, or from GET /books/v3/organizations (in the environment or in .env).")
    creds["organization_id"] = org
    if env("ZOHO_WEBHOOK_SECRET"):
        creds["webhook_secret"] = Secret(env("ZOHO_WEBHOOK_SECRET") or "", "ZOHO_WEBHOOK_SECRET")
    if env("ZOHO_CONCURRENCY"):
        creds["concurrency"] = env("ZOHO_CONCURRENCY") or ""
    return Connection("zoho_books", api, creds, settings)


class ZohoApiError(ApiError):
    """An answer with a non-zero `code`: Zoho's code and message."""

    def __init__(self, method: str, url: str, status: int | None, code: int, message: str) -> None:
        super().__init__("zoho_books", method, url, status, message, f"code {code}")
        self.code, self.message = code, message


class ZohoAuth:
    """Access tokens from the refresh token at the data centre's accounts server (not rotated)."""

    def __init__(self, accounts_url: str, client_id: str, client_secret: str, refresh_token: str,
                 timeout_s: float = 30.0, max_attempts: int = 5) -> None:
        self.token_url = f"{accounts_url.rstrip('/')}/oauth/v2/token"
        self._form = {"grant_type": "refresh_token", "client_id": client_id, "client_secret": client_secret,
                      "refresh_token": refresh_token}
        self.timeout_s, self.max_attempts = timeout_s, max_attempts
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.api_domain: str | None = None
        self.refreshes = 0

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - REFRESH_MARGIN_S:
                self._exchange()
            return {"Authorization": f"Zoho-oauthtoken {self._token}"}

    def refresh(self) -> bool:
        with self._lock:
            self._exchange()
        return True

    def _exchange(self) -> None:
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                resp = httpx.post(self.token_url, data=self._form, timeout=self.timeout_s)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                body: dict = {}
                try:
                    body = resp.json()
                except ValueError:
                    last = f"HTTP {resp.status_code}, unreadable answer"
                if resp.status_code == 200 and body.get("access_token"):
                    self._token = body["access_token"]
                    Secret(self._token, "zoho_books.access_token")  # registers it for redaction
                    self._expires_at = time.monotonic() + float(body.get("expires_in", 3600))
                    self.api_domain = body.get("api_domain") or self.api_domain
                    self.refreshes += 1
                    return
                if body.get("error") or (400 <= resp.status_code < 500 and resp.status_code != 429):
                    raise SettingsError(
                        f"Zoho Accounts refused the refresh token exchange ({body.get('error') or resp.status_code}) "
                        f"at {self.token_url}: check ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN and that "
                        "ZOHO_DATA_CENTRE is the centre the token was issued by.")
                last = last or f"HTTP {resp.status_code}"
            time.sleep(min(5.0, 0.2 * 2 ** attempt))
        raise ApiError("zoho_books", "POST", self.token_url, None, "", f"token exchange failed: {last}")


def make_client(connection: Connection) -> ApiClient:
    settings = connection.settings
    auth = ZohoAuth(connection.secret("accounts_url"), connection.secret("client_id"),
                    connection.secret("client_secret"), connection.secret("refresh_token"),
                    timeout_s=max(5.0, settings.http_timeout_s), max_attempts=settings.http_max_attempts)
    auth.headers()  # the token answer names the API host of the account's data centre
    api = (auth.api_domain or connection.get("api_domain") or connection.base_url).rstrip("/")
    concurrency = int(connection.get("concurrency") or DEFAULT_CONCURRENCY)
    client = ApiClient(
        "zoho_books", f"{api}{wire.API}", auth=auth,
        limiter=CompositeLimiter(ConcurrencyLimiter(concurrency),
                                 SlidingWindow(100, 60.0, settings.time_scale, hold_until_release=True)),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json"}, json_loads=loads_decimal,
        max_connections=concurrency,
    )
    client.organization_id = connection.secret("organization_id")  # type: ignore[attr-defined]
    return client


def call(client: ApiClient, method: str, path: str, params: Mapping[str, Any] | None = None,
         body: Any = None, *, idempotent: bool | None = None) -> dict:
    """One API call with `organization_id`; a non-zero `code` (any HTTP status) → ZohoApiError.

    Client errors are read here rather than from `ApiError` (whose body is redacted, `code` included)."""
    query = {"organization_id": client.organization_id, **(params or {})}  # type: ignore[attr-defined]
    resp = client.request(method, path, params=query, json=body, idempotent=idempotent, ok_statuses=CLIENT_ERRORS)
    answer = resp.json()
    if not isinstance(answer, dict):
        raise ZohoApiError(method, path, resp.status, wire.INTERNAL, "the answer is not a JSON object")
    if resp.status >= 400 or answer.get("code", 0) != 0:
        raise ZohoApiError(method, path, resp.status, int(answer.get("code") or wire.INTERNAL),
                           str(answer.get("message")))
    return answer


def pages(client: ApiClient, path: str, key: str, params: Mapping[str, Any] | None = None,
          per_page: int = wire.MAX_PER_PAGE) -> Iterator[list[dict]]:
    """Every page of a list (`page` / `per_page`, until `page_context.has_more_page` is false)."""
    page = 1
    while True:
        body = call(client, "GET", path, {**(params or {}), "page": page, "per_page": per_page})
        yield body.get(key) or []
        if not (body.get("page_context") or {}).get("has_more_page"):
            return
        page += 1

"""monday.com client: GraphQL over `ApiClient`, the pinned API version, the account's complexity budget.

- `Authorization: <token>` (the personal API token, no prefix), `API-Version: 2026-10`.
- Requests per minute stay under the plan's limit (client-side `SlidingWindow`); a 429
  (`RATE_LIMIT_EXCEEDED`, `COMPLEXITY_BUDGET_EXHAUSTED`) is retried after `Retry-After` by `ApiClient`.
- Every document asks for `complexity { before after query reset_in_x_seconds }`; before sending a
  document whose last cost exceeds what the budget has left, the client waits for the reset
  instead of being refused.
- `execute()` returns `(data, errors)`: errors with a `path` belong to one (aliased) field and are the
  caller's to attribute; errors without one refuse the whole document (`MondayApiError`).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson

from finance_pipeline.http import ApiClient, RetryPolicy
from finance_pipeline.http.client import StaticHeaders
from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Secret, Settings, SettingsError, env, require_secret

log = logging.getLogger("finance_pipeline.monday")

API_VERSION = "2026-10"
LIVE_API_URL = "https://api.monday.com/v2"
REQUESTS_PER_MINUTE = 500  # Pro plan; lower it with MONDAY_REQUESTS_PER_MINUTE on smaller plans
COMPLEXITY_FIELD = "complexity { before after query reset_in_x_seconds }"


def live_connection(settings: Settings) -> Connection:
    token = require_secret(
        "MONDAY_API_TOKEN", "monday.com live mode needs a personal API token: in monday.com open your avatar → "
        "Developers → My access tokens → Copy (an admin's token, or a user who can edit the board)")
    board = env("MONDAY_BOARD_ID")
    if not board:
        raise SettingsError(
            "MONDAY_BOARD_ID is not set. Create a board (e.g. \"Trade invoices\") in monday.com and copy the number "
            "from its URL (…/boards/<id>); the publisher adds the columns it needs. (Only the sandbox creates "
            "the board by itself.)")
    creds: dict[str, Secret | str] = {"api_token": token, "api_url": env("MONDAY_API_URL") or LIVE_API_URL,
                                      "board_id": board}
    return Connection("monday", LIVE_API_URL, creds, settings)


class MondayApiError(RuntimeError):
    """monday refused the whole document (errors without a path)."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        self.codes = [((e.get("extensions") or {}).get("code") or "") for e in errors]
        super().__init__("; ".join(f"{c or 'error'}: {e.get('message')}" for c, e in zip(self.codes, errors)))


def error_message(error: dict) -> str:
    """monday's message with its code (what a person sees in the quarantine)."""
    ext = error.get("extensions") or {}
    code = ext.get("code") or error.get("error_code")
    text = f"{code}: {error.get('message')}" if code else str(error.get("message"))
    data = ext.get("error_data") or {}
    if data.get("column_id"):
        text += f" (column {data['column_id']}" + (f", value {data['column_value']}" if "column_value" in data else "") + ")"
    return text


class MondayApi:
    def __init__(self, client: ApiClient, url: str) -> None:
        self.client = client
        self.url = url
        self._lock = threading.Lock()
        self._after: int | None = None  # budget left at the last answer
        self._reset_at = 0.0  # monotonic time the budget resets
        self._cost: dict[str, int] = {}  # last cost per kind of document
        self.waits = 0  # times the client waited for the budget instead of being refused

    def _pace(self, kind: str) -> None:
        with self._lock:
            cost = self._cost.get(kind)
            if self._after is None or cost is None or cost <= self._after:
                if self._after is not None and cost is not None:
                    self._after -= cost  # this document's share, until the answer tells the truth
                return
            wait = self._reset_at - time.monotonic()
            self._after = None
        if wait > 0:
            self.waits += 1
            log.info("monday: complexity budget low (next document ≈ %d points); waiting %.2fs for the reset",
                     cost, wait)
            time.sleep(wait)

    def _observe(self, kind: str, complexity: dict | None) -> None:
        if not complexity:
            return
        with self._lock:
            self._after = int(complexity["after"])
            self._reset_at = time.monotonic() + float(complexity["reset_in_x_seconds"])
            self._cost[kind] = int(complexity["query"])

    def execute(self, document: str, variables: dict | None = None, *, kind: str = "query",
                idempotent: bool = True) -> tuple[dict, list[dict]]:
        """Run one document (it must select `complexity` at its root for the pacing to learn)."""
        self._pace(kind)
        resp = self.client.request("POST", self.url, json={"query": document, "variables": variables or {}},
                                   idempotent=idempotent)
        body = resp.json() or {}
        data = body.get("data") or {}
        self._observe(kind, data.get("complexity") if isinstance(data, dict) else None)
        errors = list(body.get("errors") or [])
        if "error_message" in body:  # the pre-2024 envelope
            errors.append({"message": body["error_message"], "extensions": {"code": body.get("error_code")}})
        whole = [e for e in errors if not e.get("path")]
        if whole:
            raise MondayApiError(whole)
        return data, errors


def make_client(connection: Connection) -> ApiClient:
    settings = connection.settings
    per_minute = int(env("MONDAY_REQUESTS_PER_MINUTE") or REQUESTS_PER_MINUTE)
    return ApiClient(
        "monday", connection.get("api_url") or LIVE_API_URL,
        auth=StaticHeaders({"Authorization": connection.secret("api_token"), "API-Version": API_VERSION}),
        limiter=SlidingWindow(per_minute, 60, settings.time_scale, margin=0.05, hold_until_release=True),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json"}, max_connections=4,
        json_loads=orjson.loads)


def make_api(connection: Connection, client: ApiClient | None = None) -> MondayApi:
    client = client or make_client(connection)
    return MondayApi(client, connection.get("api_url") or LIVE_API_URL)


def json_arg(value: Any) -> str:
    """monday's JSON arguments are JSON-encoded strings inside the GraphQL variables."""
    return orjson.dumps(value).decode()

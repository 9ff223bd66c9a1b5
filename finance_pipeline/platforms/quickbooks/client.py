"""QuickBooks Online client: OAuth2 with rotating refresh tokens, Intuit's limits, exact money, query paging.

Tokens: the same mechanism as Xero's (`XeroAuth`: access token cached until shortly before expiry,
every rotated refresh token written atomically, 0600, to `<data>/secrets/quickbooks_token.json`
before use, refreshes serialised across threads and processes).  Intuit's token endpoint takes
HTTP Basic client credentials and `grant_type=refresh_token`, as Xero's does; a refresh may return
a new refresh token, and the latest one is always kept.

Every call carries `minorversion=75`; every write a `requestid` (replays return the first answer,
so writes are retried like idempotent calls).  Limits: 500 requests per minute and 10 per second
per company, held client-side with the windows dated at release (see SlidingWindow), and at most
10 calls in flight.
"""
from __future__ import annotations

import functools
import json
import logging
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterator

from finance_pipeline.http import ApiClient, ApiError, CompositeLimiter, ConcurrencyLimiter, RetryPolicy, SlidingWindow
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.quickbooks.reference import MINOR_VERSION
from finance_pipeline.platforms.xero.client import XeroAuth, XeroAuthError
from finance_pipeline.settings import Secret, Settings, SettingsError, env

log = logging.getLogger("finance_pipeline.quickbooks")

LIVE_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
LIVE_API_BASE = "https://quickbooks.api.intuit.com/v3/company"
TOKEN_FILE = "quickbooks_token.json"
REQUIRED_ENV = ("QBO_CLIENT_ID", "QBO_CLIENT_SECRET", "QBO_REALM_ID", "QBO_REFRESH_TOKEN")
PAGE_SIZE = 1000


class QuickBooksAuthError(SettingsError):
    """Intuit refused our credentials; the message says what to do (never shows a secret)."""


def live_connection(settings: Settings) -> Connection:
    missing = [name for name in REQUIRED_ENV if not env(name)]
    if missing:
        raise SettingsError(
            f"QuickBooks Online live mode needs {', '.join(missing)} (missing). Create an app at "
            "developer.intuit.com (scope com.intuit.quickbooks.accounting), connect the company once, and set "
            "QBO_CLIENT_ID, QBO_CLIENT_SECRET, QBO_REALM_ID (the realmId of the redirect) and QBO_REFRESH_TOKEN "
            f"(rotated ones are kept in {settings.secrets_dir / TOKEN_FILE}) in the environment or in .env. "
            "QBO_ENVIRONMENT=sandbox targets sandbox-quickbooks.api.intuit.com.")
    realm = env("QBO_REALM_ID") or ""
    host = ("https://sandbox-quickbooks.api.intuit.com/v3/company" if (env("QBO_ENVIRONMENT") or "").lower()
            == "sandbox" else LIVE_API_BASE)
    creds: dict[str, Secret | str] = {
        "client_id": Secret(env("QBO_CLIENT_ID") or "", "QBO_CLIENT_ID"),
        "client_secret": Secret(env("QBO_CLIENT_SECRET") or "", "QBO_CLIENT_SECRET"),
        "refresh_token": Secret(env("QBO_REFRESH_TOKEN") or "", "QBO_REFRESH_TOKEN"),
        "realm_id": realm,
        "token_url": env("QBO_TOKEN_URL") or LIVE_TOKEN_URL,
        "api_url": env("QBO_API_URL") or f"{host}/{realm}",
    }
    if env("QBO_WEBHOOK_VERIFIER_TOKEN"):
        creds["verifier_token"] = Secret(env("QBO_WEBHOOK_VERIFIER_TOKEN") or "", "QBO_WEBHOOK_VERIFIER_TOKEN")
    return Connection("quickbooks", host, creds, settings)


class QuickBooksAuth(XeroAuth):
    """The rotating-refresh-token mechanism, with Intuit's token file and messages."""

    @classmethod
    def from_connection(cls, connection: Connection) -> "QuickBooksAuth":
        settings = connection.settings
        return cls(token_url=connection.secret("token_url"), client_id=connection.secret("client_id"),
                   client_secret=connection.secret("client_secret"),
                   initial_refresh_token=connection.secret("refresh_token"),
                   token_path=settings.secrets_dir / TOKEN_FILE, timeout_s=max(5.0, settings.http_timeout_s),
                   max_attempts=settings.http_max_attempts)

    def _exchange(self, refresh_token: str):  # noqa: ANN202 - TokenSet
        try:
            return super()._exchange(refresh_token)
        except XeroAuthError:
            raise QuickBooksAuthError(
                "Intuit refused the refresh token or the client credentials (invalid_grant / invalid_client). "
                "Reconnect the app to the company and put the new refresh token in QBO_REFRESH_TOKEN (a changed "
                f"value replaces the chain kept in {self.token_path}); check QBO_CLIENT_ID / QBO_CLIENT_SECRET."
            ) from None


def make_client(connection: Connection, *, auth: XeroAuth | None = None) -> ApiClient:
    settings = connection.settings
    scale = settings.time_scale if settings.mode == "sandbox" else 1.0
    limiter = CompositeLimiter(
        ConcurrencyLimiter(10),
        SlidingWindow(500, 60, scale, margin=0.02, hold_until_release=True),
        SlidingWindow(10, 1, scale, margin=0.2, hold_until_release=True),
    )

    def watch(resp) -> None:  # noqa: ANN001
        tid = resp.headers.get("intuit_tid")
        if resp.status >= 500 and tid:
            log.warning("quickbooks: server error, intuit_tid=%s", tid)

    return ApiClient(
        "quickbooks", connection.secret("api_url"), auth=auth or QuickBooksAuth.from_connection(connection),
        limiter=limiter, retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json"}, on_response=watch, max_connections=10,
        json_loads=functools.partial(json.loads, parse_float=Decimal),
    )


class QboFault(Exception):
    """A 400 from QBO with its Fault errors (kept verbatim: the shared redaction would mask the
    `code` values, which it takes for OAuth authorization codes)."""

    def __init__(self, errors: list[dict], kind: str = "ValidationFault") -> None:
        self.errors = errors
        self.kind = kind
        self.codes = {str(e.get("code")) for e in errors}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(f"{e.get('code')} {e.get('Message')}: {e.get('Detail')}" for e in self.errors) or self.kind


def fault_message(exc: ApiError) -> str:
    """The Fault's errors as one line: `6140 Duplicate Document Number Error: …`."""
    try:
        body = json.loads(exc.body, parse_float=Decimal)
        errors = body["Fault"]["Error"]
        return "; ".join(f"{e.get('code')} {e.get('Message')}: {e.get('Detail')}" for e in errors) or str(exc)
    except (ValueError, KeyError, TypeError):
        return str(exc)


def fault_codes(exc: ApiError) -> set[str]:
    try:
        return {str(e.get("code")) for e in json.loads(exc.body)["Fault"]["Error"]}
    except (ValueError, KeyError, TypeError):
        return set()


class ServerClock:
    """QuickBooks' own idea of now: the `time` of its latest answer (the sandbox emulator answers with
    the sandbox clock, the live API with Intuit's), so windows such as CDC's 30 days are measured on
    the same clock as the LastUpdatedTime stamps; the local clock until an answer has been seen."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def saw(self, body: dict) -> None:
        try:
            at = datetime.fromisoformat(str(body["time"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            return
        if at.tzinfo is not None:
            self.at = at.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self.at or datetime.now(timezone.utc)


def query(client: ApiClient, text: str, clock: ServerClock | None = None) -> dict:
    """`GET /query?query=…&minorversion=75` → the QueryResponse object (`{}` when nothing matched)."""
    body = client.get_json("query", params={"query": text, "minorversion": MINOR_VERSION})
    if clock is not None:
        clock.saw(body)
    return body.get("QueryResponse", {})


def query_pages(client: ApiClient, entity: str, where: str = "", order: str = "Id",
                page_size: int = PAGE_SIZE, select: str = "*",
                clock: ServerClock | None = None) -> Iterator[list[dict]]:
    """Every row of `SELECT <select> FROM entity [WHERE …] ORDERBY …`, STARTPOSITION by MAXRESULTS."""
    start = 1
    while True:
        text = f"SELECT {select} FROM {entity}{(' WHERE ' + where) if where else ''} ORDERBY {order} " \
               f"STARTPOSITION {start} MAXRESULTS {page_size}"
        rows = query(client, text, clock).get(entity, [])
        if rows:
            yield rows
        if len(rows) < page_size:
            return
        start += page_size


def list_ids(client: ApiClient, entity: str, clock: ServerClock | None = None) -> set[str]:
    """The Id of every live `entity` (`SELECT Id FROM …`, a projection: sparse objects of one field,
    1,000 a page), e.g. to find what was deleted when CDC cannot look back far enough."""
    return {str(doc["Id"]) for page in query_pages(client, entity, select="Id", clock=clock)
            for doc in page if doc.get("Id")}


def cdc_too_old(errors: list[dict]) -> bool:
    """QBO's refusal of a `changedSince` beyond CDC's 30 days ("Operation cdc with changedSince date …
    which is older than fixed days is not supported.")."""
    return any("older than" in f"{e.get('Message')} {e.get('Detail')}".lower() for e in errors)


def cdc(client: ApiClient, entity: str, since: str, clock: ServerClock | None = None) -> list[dict] | None:
    """`GET /cdc?entities=<entity>&changedSince=<since>` → the entity's changed documents (deleted
    ones as `{"Id", "status": "Deleted", …}`), or None when QBO refuses `changedSince` as older than
    the days CDC looks back; any other Fault raises `QboFault`."""
    resp = client.request("GET", "cdc", params={"entities": entity, "changedSince": since,
                                                "minorversion": MINOR_VERSION}, ok_statuses=(400,))
    body = resp.json() or {}
    if clock is not None:
        clock.saw(body)
    if resp.status == 400:
        fault = body.get("Fault") or {}
        errors = fault.get("Error") or []
        if cdc_too_old(errors):
            return None
        raise QboFault(errors, fault.get("type") or "ValidationFault")
    docs = [doc for part in (body.get("CDCResponse") or [{}])[0].get("QueryResponse") or []
            for doc in part.get(entity) or []]
    return docs


def quote(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def write(client: ApiClient, entity: str, body: dict, requestid: str, operation: str | None = None) -> dict:
    """POST /<entity>?minorversion=75&requestid=…[&operation=…] → the entity as saved."""
    params: dict[str, Any] = {"minorversion": MINOR_VERSION, "requestid": requestid}
    if operation:
        params["operation"] = operation
    resp = client.request("POST", entity.lower(), params=params, json=body, idempotent=True, ok_statuses=(400,))
    answer = resp.json()
    if resp.status == 400:
        fault = (answer or {}).get("Fault") or {}
        raise QboFault(fault.get("Error") or [], fault.get("type") or "ValidationFault")
    return answer[entity] if operation != "delete" else answer


BATCH_LIMIT = 30  # QBO's items per batch request


def batch(client: ApiClient, items: list[dict], requestid: str) -> dict[str, dict]:
    """POST /batch?minorversion=75&requestid=… with `BatchItemRequest` items (each with its `bId`)
    → {bId: its BatchItemResponse} (the entity as saved, or its own `Fault`).  A 400 for the whole
    batch (malformed, too many items) raises `QboFault`."""
    if len(items) > BATCH_LIMIT:
        raise ValueError(f"a QuickBooks batch holds at most {BATCH_LIMIT} items, not {len(items)}")
    params: dict[str, Any] = {"minorversion": MINOR_VERSION, "requestid": requestid}
    resp = client.request("POST", "batch", params=params, json={"BatchItemRequest": items}, idempotent=True,
                          ok_statuses=(400,))
    answer = resp.json()
    if resp.status == 400:
        fault = (answer or {}).get("Fault") or {}
        raise QboFault(fault.get("Error") or [], fault.get("type") or "ValidationFault")
    return {str(r.get("bId")): r for r in (answer or {}).get("BatchItemResponse") or [] if isinstance(r, dict)}

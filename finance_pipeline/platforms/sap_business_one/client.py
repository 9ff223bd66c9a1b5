"""SAP Business One Service Layer client: a cookie session, B1's error shape, exact money, OData paging.

Session: `POST /b1s/v2/Login` with `{"CompanyDB","UserName","Password"}` gives a `SessionId` and the
cookies `B1SESSION` and `ROUTEID` (the load balancer's stickiness to one Service Layer node); every
call sends both.  The session is idle-based (`SessionTimeout` minutes, 30 by default): an expired
one answers 401 with error code 301, and `ApiClient` then logs in again once (`SessionAuth.refresh`)
and replays the call.  One session per client, reused for every call (one Login per request is the
classic mistake: each Login holds a licence seat); `close()` logs out.

Service Layer v2 (OData v4) is used: bare date literals in `$filter`, `@odata.nextLink` (relative,
appended to the service root; v1's `odata.nextLink` is followed too), `Prefer: odata.maxpagesize`.
No published request quotas: the client keeps a small fixed pool (4 calls in flight).

Writes in bulk go through `batch()`: one `POST $batch` (OData multipart, see `batch.py`) carrying
up to `BATCH_SIZE` operations, each in a change set of its own (a refused document never takes
another with it), with `Prefer: odata.continue-on-error` so the Service Layer answers every one.

Live mode: `SAPB1_SERVICE_LAYER_URL` (e.g. `https://b1.example.com:50000`), `SAPB1_COMPANY_DB`,
`SAPB1_USERNAME`, `SAPB1_PASSWORD`; `SAPB1_VERIFY_TLS` (default true; or a CA bundle path for a
self-signed Service Layer certificate — install the CA rather than switching verification off).
"""
from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

import httpx

from finance_pipeline.http.client import ApiClient, ApiError, ReopeningPool, RetryPolicy, dumps
from finance_pipeline.http.ratelimit import ConcurrencyLimiter
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.sap_business_one import batch as multipart
from finance_pipeline.settings import Settings, SettingsError, env, require_secret

API_VERSION = "v2"
PAGE_SIZE = 100
CONCURRENCY = 4
BATCH_SIZE = 50  # operations per $batch request
loads_decimal = functools.partial(json.loads, parse_float=Decimal)


def live_connection(settings: Settings) -> Connection:
    url = (env("SAPB1_SERVICE_LAYER_URL") or "").strip().rstrip("/")
    if not url:
        raise SettingsError("SAPB1_SERVICE_LAYER_URL is not set. Set it to the Service Layer address, e.g. "
                            "https://b1.example.com:50000 (in the environment or in .env).")
    company = (env("SAPB1_COMPANY_DB") or "").strip()
    if not company:
        raise SettingsError("SAPB1_COMPANY_DB is not set: the company database name (e.g. SBODEMOGB), as shown "
                            "in the B1 client's Choose Company window.")
    user = (env("SAPB1_USERNAME") or "").strip()
    if not user:
        raise SettingsError("SAPB1_USERNAME is not set: a B1 user with an Indirect Access / DI API licence and "
                            "authorisation for A/R invoices, incoming payments, sales orders and business partners.")
    password = require_secret("SAPB1_PASSWORD", "the password of that B1 user")
    creds: dict[str, Any] = {"company_db": company, "username": user, "password": password}
    verify = (env("SAPB1_VERIFY_TLS") or "true").strip()
    creds["verify_tls"] = verify
    return Connection("sap_business_one", url, creds, settings)


class SessionAuth:
    """The Service Layer session: logs in on first use, sends the two cookies, logs in again on 401."""

    def __init__(self, service_root: str, company_db: str, username: str, password: str, *,
                 timeout_s: float = 30.0, verify: bool | str = True) -> None:
        self.service_root = service_root.rstrip("/")
        self._login_body = {"CompanyDB": company_db, "UserName": username, "Password": password}
        # reopened after close(): a closed session logs in again when reused
        self._pool = ReopeningPool(lambda: httpx.Client(timeout=timeout_s, verify=verify))
        self._lock = threading.Lock()
        self._cookie: str | None = None
        self.logins = 0
        self.session_timeout_min: int | None = None

    @property
    def _http(self) -> httpx.Client:
        return self._pool.client

    def _login(self) -> None:
        resp = self._http.post(f"{self.service_root}/Login", content=dumps(self._login_body),
                               headers={"Content-Type": "application/json"})
        if resp.status_code != 200:
            raise SettingsError(f"SAP Business One refused the login ({resp.status_code}: {error_message(resp.text)}); "
                                "check SAPB1_COMPANY_DB, SAPB1_USERNAME and SAPB1_PASSWORD")
        body = resp.json()
        sid = resp.cookies.get("B1SESSION") or body["SessionId"]
        route = resp.cookies.get("ROUTEID")
        self._cookie = f"B1SESSION={sid}" + (f"; ROUTEID={route}" if route else "")
        self.session_timeout_min = body.get("SessionTimeout")
        self.logins += 1

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            if self._cookie is None:
                self._login()
            return {"Cookie": self._cookie or ""}

    def refresh(self) -> bool:
        with self._lock:
            self._login()
            return True

    def close(self) -> None:
        with self._lock:
            if self._cookie is not None:
                try:
                    self._http.post(f"{self.service_root}/Logout", headers={"Cookie": self._cookie})
                except httpx.HTTPError:
                    pass
                self._cookie = None
            self._pool.close()


class B1Client(ApiClient):
    """`ApiClient` that logs out when closed (a session holds a licence seat until it times out)."""

    def close(self) -> None:
        super().close()
        if isinstance(self.auth, SessionAuth):
            self.auth.close()


def _verify(value: str | None) -> bool | str:
    if value is None or value.lower() in ("", "1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    return value  # a CA bundle path


def make_client(connection: Connection) -> B1Client:
    settings = connection.settings
    root = f"{connection.base_url.rstrip('/')}/b1s/{API_VERSION}"
    verify = _verify(connection.get("verify_tls"))
    auth = SessionAuth(root, connection.get("company_db") or "", connection.get("username") or "",
                       connection.secret("password"), timeout_s=settings.http_timeout_s, verify=verify)
    return B1Client("sap_business_one", root, auth=auth, limiter=ConcurrencyLimiter(CONCURRENCY),
                    retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
                    default_headers={"Accept": "application/json"}, max_connections=CONCURRENCY,
                    json_loads=loads_decimal)


def error_message(body: str) -> str:
    """`-5002 One of the base documents has already been closed` from B1's error body (v1 nests the text
    in `message.value`; v2 may give it as a plain string)."""
    try:
        err = json.loads(body)["error"]
        msg = err.get("message")
        text = msg.get("value") if isinstance(msg, dict) else msg
        return f"{err.get('code')} {text}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return body[:300]


def error_code(exc: ApiError) -> int | None:
    try:
        return int(json.loads(exc.body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def pages(client: ApiClient, entity: str, params: Mapping[str, Any] | None = None,
          page_size: int = PAGE_SIZE) -> Iterator[list[dict]]:
    """Every page of `GET <entity>?…`, following the relative next link until there is none."""
    headers = {"Prefer": f"odata.maxpagesize={page_size}"}
    body = client.get_json(entity, params=dict(params or {}), headers=headers)
    while True:
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise ApiError("sap_business_one", "GET", entity, 200, "answer without a value list")
        yield body["value"]
        link = body.get("@odata.nextLink") or body.get("odata.nextLink")
        if not link:
            return
        body = client.get_json(link, headers=headers)


def quote(value: str) -> str:
    """An OData string literal."""
    return "'" + str(value).replace("'", "''") + "'"


@dataclass
class Op:
    """One operation of a `$batch`: method, path under the service root, JSON body, extra headers."""

    method: str
    path: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class OpResult:
    status: int
    body: bytes

    def json(self) -> Any:
        return loads_decimal(self.body) if self.body else None


def batch(client: ApiClient, ops: list[Op]) -> list[OpResult | None]:
    """`POST $batch` with each operation in its own change set; the answer to each, in order, or None
    for an operation the reply holds no answer for (a server that stopped at an error).  A reply that
    is not a readable batch raises `ApiError` (nothing is known about any operation).  `$batch`
    itself is not idempotent and is not retried on 5xx: the caller's ledger keeps its writes pending."""
    root = urlsplit(client.base_url).path.rstrip("/")
    items: list[list[multipart.Message] | multipart.Message] = []
    for n, op in enumerate(ops, 1):
        headers = {"Content-Type": "application/json"} if op.body is not None else {}
        headers.update(op.headers)
        body = dumps(op.body) if op.body is not None else b""
        items.append([multipart.Message(content_id=str(n), method=op.method, target=f"{root}/{op.path}",
                                        headers=headers, body=body)])
    content_type, content = multipart.write(items, response=False)
    resp = client.request("POST", "$batch", content=content, expect_json=False,
                          headers={"Content-Type": content_type, "Accept": "multipart/mixed",
                                   "Prefer": "odata.continue-on-error"})
    try:
        answers = multipart.read(resp.headers.get("content-type"), resp.content, response=True)
    except multipart.BatchFormatError as exc:
        raise ApiError("sap_business_one", "POST", "$batch", resp.status, f"unreadable batch answer: {exc}") from exc
    by_id: dict[str, OpResult] = {}
    in_order: list[OpResult] = []
    for item in answers:
        for msg in item if isinstance(item, list) else [item]:
            result = OpResult(msg.status, msg.body)
            in_order.append(result)
            if msg.content_id:
                by_id[msg.content_id] = result
    if by_id:
        return [by_id.get(str(n)) for n in range(1, len(ops) + 1)]
    return [in_order[i] if i < len(in_order) else None for i in range(len(ops))]

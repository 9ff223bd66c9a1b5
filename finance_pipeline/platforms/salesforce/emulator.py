"""Salesforce REST API emulator: the US and hotel accounts team's Opportunities as of the clock.

- OAuth 2.0 client credentials: `POST /services/oauth2/token` (`grant_type=client_credentials`,
  client id/secret in the form or HTTP Basic) → `access_token`, `instance_url` (this server),
  `id`, `token_type`, `issued_at`, `signature`; no `expires_in` (the session lasts
  `session_ttl_s`, then 401 `INVALID_SESSION_ID`: get a new token).
- `GET /services/data/` (versions), `/services/data/vXX.X/query?q=<SOQL>`, `/queryAll?q=`
  (deleted rows too, `IsDeleted = true`), `/query/<locator>-<offset>` (from `nextRecordsUrl`),
  `/limits`.  Answers `{totalSize, done, nextRecordsUrl?, records:[{attributes, …}]}`; batch size
  from `Sforce-Query-Options: batchSize=N` (200–2000, default 2000).
- SOQL subset: `SELECT f, … FROM Opportunity [WHERE f op literal [AND …]] [ORDER BY f [ASC|DESC],
  …] [LIMIT n]`, ops = != <> < <= > >=; datetime literals unquoted (`2026-01-01T00:00:00Z`),
  dates `2026-01-31`, strings in single quotes, TRUE/FALSE/null.  Errors are Salesforce's JSON
  arrays `[{"message","errorCode"}]`: MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE (400),
  INVALID_QUERY_LOCATOR, INVALID_SESSION_ID (401), REQUEST_LIMIT_EXCEEDED (403).
- `Sforce-Limit-Info: api-usage=n/m` on every API answer; over the daily allocation, 403.
  Salesforce sends no 429: an injected "429" fault is answered 503 SERVER_UNAVAILABLE.
- Money: `Amount` a JSON number with its exact digits; datetimes `2026-01-15T10:22:33.000+0000`.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import threading
import time
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.platforms.hubspot.world import current_sql
from finance_pipeline.platforms.salesforce import DAILY_API_LIMIT, DEFAULT_BATCH, MAX_BATCH, MIN_BATCH
from finance_pipeline.platforms.salesforce.world import LOST, STAGE_PROBABILITY, WON, account_id
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response, oauth_client_credentials
from finance_pipeline.sandbox.store import Sandbox

log = logging.getLogger("finance_pipeline.sandbox.salesforce")
UTC = timezone.utc
VERSIONS = ("58.0", "59.0", "60.0", "61.0", "62.0", "63.0", "64.0", "65.0", "66.0")
# SOQL field -> (SQL expression over the current-state row, type)
FIELDS: dict[str, tuple[str, str]] = {
    "Id": ("deal_id", "id"), "Name": ("name", "string"), "Amount": ("amount", "currency"),
    "CurrencyIsoCode": ("currency", "string"), "StageName": ("stage", "string"),
    "Probability": ("case stage " + " ".join(f"when '{s}' then {p}" for s, p in STAGE_PROBABILITY.items()) + " end",
                    "percent"),
    "CloseDate": ("close_date", "date"), "IsClosed": (f"stage in ('{WON}', '{LOST}')", "boolean"),
    "IsWon": (f"stage = '{WON}'", "boolean"), "IsDeleted": ("is_deleted", "boolean"),
    "AccountId": ("'001Dn' || lpad(substr(customer_id, 2), 10, '0') || 'IAV'", "id"),
    "OwnerId": ("owner_id", "id"), "CreatedDate": ("created_at", "datetime"),
    "LastModifiedDate": ("modified_at", "datetime"), "SystemModstamp": ("system_modstamp", "datetime"),
    "Invoice_Number__c": ("invoice_number", "string"), "Trade_Customer_Id__c": ("customer_id", "string"),
    "Account_Name__c": ("company", "string"),
}
_CI = {k.lower(): k for k in FIELDS}
SOQL = re.compile(r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
                  r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", re.I | re.S)
COND = re.compile(r"^\s*(\w+)\s*(!=|<>|<=|>=|=|<|>)\s*(.+?)\s*$", re.S)
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")


class SfError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> list:
        return [{"message": self.message, "errorCode": self.code}]


def sf_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    v = value.astimezone(UTC)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}+0000"


def _literal(field: str, raw: str) -> Any:
    kind = FIELDS[field][1]
    text = raw.strip()
    if text.lower() == "null":
        return None
    quoted = len(text) >= 2 and text[0] == text[-1] == "'"
    if kind == "datetime":
        if quoted or not DATETIME.match(text):
            raise SfError(400, "INVALID_FIELD", f"value of filter criterion for field '{field}' must be of type "
                                                "dateTime and should not be enclosed in quotes")
        t = text[:-1] + "+00:00" if text.endswith("Z") else text
        if re.search(r"[+-]\d{4}$", t):
            t = t[:-2] + ":" + t[-2:]
        return datetime.fromisoformat(t)
    if kind == "date":
        if quoted or not DATE.match(text):
            raise SfError(400, "INVALID_FIELD", f"value of filter criterion for field '{field}' must be of type "
                                                "date and should not be enclosed in quotes")
        return date.fromisoformat(text)
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise SfError(400, "INVALID_FIELD", f"value of filter criterion for field '{field}' must be of type "
                                                "boolean and should not be enclosed in quotes")
        return text.lower() == "true"
    if kind in ("currency", "percent"):
        try:
            return Decimal(text)
        except InvalidOperation:
            raise SfError(400, "INVALID_FIELD", f"value of filter criterion for field '{field}' must be of type "
                                                "double and should not be enclosed in quotes") from None
    if not quoted:
        raise SfError(400, "MALFORMED_QUERY", f"unexpected token: '{text}'")
    return text[1:-1].replace("\\'", "'")


def _field(name: str) -> str:
    found = _CI.get(name.strip().lower())
    if found is None:
        raise SfError(400, "INVALID_FIELD", f"No such column '{name.strip()}' on entity 'Opportunity'. If you are "
                                            "attempting to use a custom field, be sure to append the '__c' after "
                                            "the custom field name.")
    return found


def parse_soql(q: str) -> dict:
    """The SOQL subset: {'fields', 'where': [(field, op, value)], 'order': [(field, desc)], 'limit'}."""
    m = SOQL.match(q or "")
    if not m:
        raise SfError(400, "MALFORMED_QUERY", "unexpected token: " + repr((q or "").strip()[:40]))
    if m["obj"].lower() != "opportunity":
        raise SfError(400, "INVALID_TYPE", f"sObject type '{m['obj']}' is not supported.")
    fields = [_field(f) for f in m["fields"].split(",")]
    where = []
    if m["where"]:
        for part in re.split(r"\s+AND\s+", m["where"], flags=re.I):
            c = COND.match(part)
            if not c:
                raise SfError(400, "MALFORMED_QUERY", f"unexpected token: '{part.strip()[:40]}'")
            name = _field(c[1])
            where.append((name, "<>" if c[2] == "!=" else c[2], _literal(name, c[3])))
    order = []
    if m["order"]:
        for part in m["order"].split(","):
            words = part.split()
            if not words or len(words) > 4:
                raise SfError(400, "MALFORMED_QUERY", f"unexpected token: '{part.strip()}'")
            order.append((_field(words[0]), len(words) > 1 and words[1].upper() == "DESC"))
    return {"fields": fields, "where": where, "order": order, "limit": int(m["limit"]) if m["limit"] else None}


class SalesforceEmulator(Emulator):
    name = "salesforce"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        digest = hashlib.blake2b(f"salesforce:{sandbox.state().seed}".encode(), digest_size=32).hexdigest()
        self.org_id = f"00DDn{digest[:10].upper()}EAM"
        self.client_id = f"3MVG9{digest[10:40]}"
        self.client_secret = digest[40:64].upper()
        self.session_ttl_s = 7200.0
        self.daily_limit = DAILY_API_LIMIT
        self.api_used = 0
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self.batches: dict[str, int] = {}
        self.min_batch = MIN_BATCH  # tests lower it: a small world has fewer rows than one batch
        self.corruptions: dict[str, dict[str, Any]] = {}  # test hook: Id -> fields overridden

    def credentials(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret,
                "token_url": f"{self.base_url}/services/oauth2/token"}

    def routes(self) -> list[Route]:
        v = "/services/data/v{version}"
        return [
            Route("/services/oauth2/token", self.token, methods=["POST"]),
            Route("/services/data/", self._endpoint(self.versions)),
            Route(v + "/query", self._endpoint(lambda r: self.query(r, False))),
            Route(v + "/queryAll", self._endpoint(lambda r: self.query(r, True))),
            Route(v + "/query/{locator}", self._endpoint(self.more)),
            Route(v + "/queryAll/{locator}", self._endpoint(self.more)),
            Route(v + "/limits", self._endpoint(self.limits)),
        ]

    def faults_apply(self, method: str, path: str) -> bool:
        return not path.startswith("/services/oauth2/")

    def fault_response(self, status: int) -> Response:
        if status in (429, 503):
            return json_response(SfError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable").body(), 503)
        return json_response(SfError(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.").body(), status)

    # ------------------------------------------------------------------ OAuth
    def expire_sessions(self) -> None:
        """Test hook: every session issued so far is over."""
        with self._lock:
            self._tokens = {t: 0.0 for t in self._tokens}

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        cid, secret = oauth_client_credentials(form, request.headers.get("authorization", ""))
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type", "error_description": "grant type not supported"},
                                 400)
        if cid != self.client_id or not secrets.compare_digest(secret or "", self.client_secret):
            return json_response({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(72)}"
        with self._lock:
            self._tokens[token] = time.monotonic() + self.session_ttl_s
        self.counters["tokens"] += 1
        issued = str(int(time.time() * 1000))
        return json_response({"access_token": token, "instance_url": self.base_url, "token_type": "Bearer",
                              "id": f"{self.base_url}/id/{self.org_id}/005Dn000001IntgIAS", "issued_at": issued,
                              "scope": "api", "signature": base64.b64encode(hashlib.sha256(
                                  (issued + token).encode()).digest()).decode()})

    def _endpoint(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            with self._lock:
                valid = scheme.lower() == "bearer" and self._tokens.get(token.strip(), 0.0) > time.monotonic()
            if not valid:
                return json_response(SfError(401, "INVALID_SESSION_ID", "Session expired or invalid").body(), 401,
                                     {"WWW-Authenticate": 'Token'})
            with self._lock:
                self.api_used += 1
                used = self.api_used
            headers = {"Sforce-Limit-Info": f"api-usage={min(used, self.daily_limit)}/{self.daily_limit}"}
            if used > self.daily_limit:
                self.counters["over_limit"] += 1
                return json_response(SfError(403, "REQUEST_LIMIT_EXCEEDED",
                                             "TotalRequests Limit exceeded.").body(), 403, headers)
            version = request.path_params.get("version")
            try:
                if version is not None and version not in VERSIONS:
                    raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
                result = await run_in_threadpool(handler, request)
            except SfError as err:
                return json_response(err.body(), err.status, headers)
            except Exception:
                log.exception("salesforce emulator: %s %s failed", request.method, request.url.path)
                return json_response(SfError(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.").body(), 500)
            return json_response(result, 200, headers)

        return endpoint

    # ------------------------------------------------------------------ resources
    def versions(self, request: Request) -> list:
        return [{"label": "", "url": f"/services/data/v{v}", "version": v} for v in VERSIONS]

    def limits(self, request: Request) -> dict:
        return {"DailyApiRequests": {"Max": self.daily_limit, "Remaining": max(0, self.daily_limit - self.api_used)}}

    def _batch(self, request: Request) -> int:
        raw = request.headers.get("sforce-query-options", "")
        m = re.search(r"batchSize\s*=\s*(\d+)", raw, re.I)
        return min(MAX_BATCH, max(self.min_batch, int(m[1]))) if m else DEFAULT_BATCH

    def query(self, request: Request, include_deleted: bool) -> dict:
        q = request.query_params.get("q")
        if not q:
            raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
        parsed = parse_soql(q)
        where = ["true" if include_deleted else "not is_deleted"]
        args: list[Any] = []
        for name, op, value in parsed["where"]:
            expr = FIELDS[name][0]
            if value is None:
                where.append(f"({expr}) is {'not ' if op == '<>' else ''}null")
            else:
                where.append(f"({expr}) {op} ?")
                args.append(value)
        order = ", ".join(f"({FIELDS[n][0]}) {'desc' if d else 'asc'}" for n, d in parsed["order"]) or "deal_num"
        limit = f" limit {parsed['limit']}" if parsed["limit"] is not None else ""
        version = request.path_params["version"]

        def compute() -> list:
            sql, n = current_sql(self.name)
            cur = self.db.execute(f"select * from ({sql}) x where {' and '.join(where)} order by {order}{limit}",
                                  [self.sandbox.clock] * n + args)
            cols = [d[0] for d in cur.description]
            return [self.render(dict(zip(cols, r)), parsed["fields"], version) for r in cur.fetchall()]

        key, records = self.pages.get(("soql", q, include_deleted, self.sandbox.clock), compute)
        batch = self._batch(request)
        self.batches[key] = batch
        return self._page(key, records, 0, batch, version, "queryAll" if include_deleted else "query")

    def more(self, request: Request) -> dict:
        locator = request.path_params["locator"]
        key, _, offset = locator.partition("-")
        records = self.pages.lookup(key[3:]) if key.startswith("01g") else None
        if records is None or not offset.isdigit():
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        kind = "queryAll" if "/queryAll/" in request.url.path else "query"
        start = int(offset)
        if self.duplicate_page(request):
            start = max(0, start - 5)
        return self._page(key[3:], records, start, self.batches.get(key[3:], DEFAULT_BATCH),
                          request.path_params["version"], kind)

    def _page(self, key: str, records: list, offset: int, batch: int, version: str, kind: str) -> dict:
        page = records[offset:offset + batch]
        out: dict[str, Any] = {"totalSize": len(records), "done": offset + batch >= len(records)}
        if not out["done"]:
            out["nextRecordsUrl"] = f"/services/data/v{version}/{kind}/01g{key}-{offset + batch}"
        out["records"] = [{**r, **self.corruptions.get(r.get("Id"), {})} for r in page]
        return out

    @staticmethod
    def render(r: dict, fields: list[str], version: str) -> dict:
        won = r["stage"] == WON
        values = {
            "Id": r["deal_id"], "Name": r["name"], "Amount": r["amount"], "CurrencyIsoCode": r["currency"],
            "StageName": r["stage"], "Probability": STAGE_PROBABILITY.get(r["stage"]),
            "CloseDate": r["close_date"].isoformat() if r["close_date"] else None,
            "IsClosed": won or r["stage"] == LOST, "IsWon": won, "IsDeleted": bool(r["is_deleted"]),
            "AccountId": account_id(r["customer_id"]), "OwnerId": r["owner_id"],
            "CreatedDate": sf_datetime(r["created_at"]), "LastModifiedDate": sf_datetime(r["modified_at"]),
            "SystemModstamp": sf_datetime(r["system_modstamp"]), "Invoice_Number__c": r["invoice_number"],
            "Trade_Customer_Id__c": r["customer_id"], "Account_Name__c": r["company"],
        }
        rec: dict[str, Any] = {"attributes": {"type": "Opportunity",
                                              "url": f"/services/data/v{version}/sobjects/Opportunity/{r['deal_id']}"}}
        rec.update({f: values[f] for f in fields})
        return rec

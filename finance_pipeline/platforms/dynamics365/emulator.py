"""Dynamics 365 Business Central API v2.0 emulator: the US company, rendered as of the clock.

Paths are the real ones under `/v2.0/{tenant}/{environment}/api/v2.0/`, and the Entra ID token
endpoint the client's MSAL calls is served on the same port (`sandbox/entra.py`).  What it
reproduces:

- **Reads** (`companies`, and under `companies({id})/`: `salesInvoices` [`$expand=salesInvoiceLines`],
  `customerPayments`, `customers`, `currencyExchangeRates`, `items`, `accounts`, `currencies`,
  `taxGroups`, `salesOrders` [`$expand=salesOrderLines`]): OData `$filter` (comparisons joined by
  `and`), `$orderby` on one field, server-driven paging — `Prefer: odata.maxpagesize=N` (≤ 20 000,
  echoed in `Preference-Applied`; 20 000 without it), `@odata.nextLink` with an opaque `$skiptoken`.
  Money is JSON numbers, `lastModifiedDateTime` UTC with `Z`, every entity has `@odata.etag`.
  Posted invoices are visible once created; a later edit (customer PO reference) or cancellation
  moves `lastModifiedDateTime` only once the clock passes it.
- **Writes** (kept in `<sandbox>/dynamics365.sqlite`): `POST customers`, `POST salesOrders` with a
  `salesOrderLines` deep insert, `PATCH salesOrders({id})` (header; `If-Match` required, a stale
  ETag is 409 `Request_EntityChanged`), `POST|DELETE salesOrders({id})/salesOrderLines…`, `DELETE
  salesOrders({id})`.  Validation like BC's: customer and currency must exist
  (`Application_DialogException` naming the field and table), enums (`lineType`), types
  (`BadRequest`), lengths (`Application_StringExceededLength`), a supplied `number` that exists
  (`Internal_EntityWithSameKeyExists`), unknown ids (`BadRequest_NotFound`).  Lines get their
  amounts and tax (from the line's tax group) computed here, as BC does.
- **Limits** per user (the app registration), time-scaled: 6 000 requests per 5-minute sliding
  window → 429 `Application_TooManyRequests` with `Retry-After`; 5 requests processed at a time,
  the rest queued, more than 95 waiting → 429.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import threading
import uuid
from datetime import date, datetime, time as dtime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.client import dumps
from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.dynamics365 import odata
from finance_pipeline.platforms.dynamics365.world import FREIGHT_ACCOUNT, guid
from finance_pipeline.sandbox import catalogue as cat
from finance_pipeline.sandbox.entra import EntraIssuer, LOGIN_HOST
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.sqlite_state import SqliteState
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
SCOPE = "https://api.businesscentral.dynamics.com/.default"
ENVIRONMENT = "production"
COMPANY_NAME = "Curtains US Inc."
LCY = "USD"
MAX_PAGE = 20_000
REQUESTS_PER_WINDOW, WINDOW_S = 6_000, 300.0
MAX_PROCESSING, MAX_QUEUE = 5, 95
MAX_BATCH = 100  # operations in one $batch request
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
CURRENCIES = {"GBP": "British Pound", "EUR": "Euro", "AUD": "Australian Dollar", "CAD": "Canadian Dollar"}
TAX_GROUPS = {  # code: (description, percent); TAXABLE is the sell-to state's combined rate
    "RESALE": ("Resale (certificate on file)", Decimal("0")), "NONTAXABLE": ("Nontaxable", Decimal("0")),
    "FREIGHT": ("Freight", Decimal("0")), "TAXABLE": ("Taxable", None), "VAT20": ("UK VAT 20%", Decimal("20")),
    "VAT5": ("UK VAT 5%", Decimal("5")), "VAT0": ("UK VAT zero rate", Decimal("0")),
    "REVCHG": ("EU reverse charge", Decimal("0")), "EXPORT": ("Export, zero rated", Decimal("0")),
}
ACCOUNTS = {"40100": "Trade Sales", FREIGHT_ACCOUNT: "Freight Income"}
SETUP_AT = "2024-06-01T09:00:00.000Z"  # when the company's set-up records were entered
LINE_TYPES = ("Comment", "Account", "Item", "Resource", "Fixed Asset", "Charge")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, number TEXT UNIQUE NOT NULL, doc TEXT NOT NULL,
    version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sales_orders (id TEXT PRIMARY KEY, number TEXT UNIQUE NOT NULL, doc TEXT NOT NULL,
    version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sales_orders_ext ON sales_orders (json_extract(doc, '$.externalDocumentNumber'));
CREATE TABLE IF NOT EXISTS sales_order_lines (id TEXT PRIMARY KEY, order_id TEXT NOT NULL, sequence INTEGER NOT NULL,
    doc TEXT NOT NULL, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sales_order_lines_order ON sales_order_lines (order_id, sequence);
"""


def q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


class BcError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> Response:
        correlation = str(uuid.uuid4())
        return json_response({"error": {"code": self.code, "message": f"{self.message}  CorrelationId:  {correlation}."}},
                             self.status, self.headers)


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _dec(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, float)):
        raise BcError(400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type 'Edm.Decimal' "
                                         f"(property '{name}').")
    return Decimal(str(value))


def _text(body: dict, name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BcError(400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type 'Edm.String' "
                                         f"(property '{name}').")
    if len(value) > limit:
        raise BcError(400, "Application_StringExceededLength",
                      f"The length of the string is {len(value)}, but it must be less than or equal to {limit} "
                      f"characters. Value: {value}")
    return value


class DynamicsEmulator(Emulator):
    name = "dynamics365"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.state = SqliteState(sandbox.root / "dynamics365.sqlite", SCHEMA)
        with self.state.tx() as con:
            for key in ("tenant_id", "client_id", "company_id"):
                con.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", [key, str(uuid.uuid4())])
            con.execute("INSERT OR IGNORE INTO meta VALUES ('client_secret', ?)", [secrets.token_urlsafe(24)])
        self.meta = dict(self.state.read().execute("SELECT key, value FROM meta").fetchall())
        self.entra = EntraIssuer(self.meta["tenant_id"], self.meta["client_id"], self.meta["client_secret"], SCOPE)
        self.window = SlidingWindow(REQUESTS_PER_WINDOW, WINDOW_S, self.config.time_scale)
        self._slots: asyncio.Semaphore | None = None
        self._waiting = 0
        self._write_lock = threading.Lock()
        self.write_delay_s = 0.0  # tests: hold each write's answer this long after it committed
        self.max_processing_seen = 0
        self._line_object_index: dict[str, tuple[dict[str, dict], dict[str, dict]]] = {}
        self._processing = 0

    # -- what clients and tests use ------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        m = self.meta
        return {"tenant_id": m["tenant_id"], "client_id": m["client_id"], "client_secret": m["client_secret"],
                "company_id": m["company_id"], "environment": ENVIRONMENT, "authority_host": LOGIN_HOST,
                "login_url": self.base_url}

    def sales_orders(self) -> list[dict]:
        """Every sales order held, with its lines (tests)."""
        return [self._order_doc(row) for row in self.state.read().execute(
            "SELECT id, number, doc, version FROM sales_orders ORDER BY number").fetchall()]

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(self.state.counters())
        out["tokens_issued"] = self.entra.issued
        return out

    # -- routing ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [*self.entra.routes(),
                Route("/v2.0/{tenant}/{env}/api/v2.0/{rest:path}", self._dispatch,
                      methods=["GET", "POST", "PATCH", "DELETE"])]

    def faults_apply(self, method: str, path: str) -> bool:
        return "/api/v2.0/" in path

    def fault_response(self, status: int) -> Response:
        code = {429: "Application_TooManyRequests", 500: "Internal_ServerError", 503: "Internal_ServiceUnavailable"}
        return BcError(status, code.get(status, "Internal_ServerError"), "injected fault",
                       {"Retry-After": "1"} if status in (429, 503) else None).response()

    async def _dispatch(self, request: Request) -> Response:
        try:
            if request.path_params["tenant"] != self.meta["tenant_id"]:
                raise BcError(404, "BadRequest_NotFound", f"Tenant {request.path_params['tenant']} not found.")
            if not self.entra.valid(request):
                raise BcError(401, "Authentication_InvalidCredentials", "The credentials provided are incorrect",
                              {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/'
                                                   'common/oauth2/authorize"'})
            if request.path_params["env"] != ENVIRONMENT:
                raise BcError(404, "BadRequest_NotFound", f"The environment '{request.path_params['env']}' "
                                                          "does not exist.")
            if self.config.enforce_rate_limits and self.window.try_acquire() > 0:
                retry = max(1, round(self.window.window_s / 10))
                self.counters["over_limit"] += 1
                raise BcError(429, "Application_TooManyRequests", "Too many requests reached.  Actual (6001).  "
                              "Maximum (6000).", {"Retry-After": str(retry)})
            if self._slots is None:
                self._slots = asyncio.Semaphore(MAX_PROCESSING)
            if self._waiting >= MAX_QUEUE:
                self.counters["over_limit"] += 1
                raise BcError(429, "Application_TooManyRequests", "The request queue is full.", {"Retry-After": "1"})
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
            try:
                self._processing += 1
                self.max_processing_seen = max(self.max_processing_seen, self._processing)
                return await self._route(request)
            finally:
                self._processing -= 1
                self._slots.release()
        except BcError as exc:
            return exc.response()
        except odata.FilterError as exc:
            return BcError(400, "BadRequest", str(exc)).response()

    async def _route(self, request: Request) -> Response:
        rest = request.path_params["rest"]
        method = request.method
        if rest == "$batch":
            if method != "POST":
                raise BcError(400, "BadRequest_MethodNotAllowed", f"'{method}' is not supported on '$batch'.")
            return await self._batch(request)
        if rest == "companies":
            return self._page(request, lambda: [self._company()], "companies")
        prefix = f"companies({self.meta['company_id']})/"
        if not rest.startswith("companies("):
            raise BcError(404, "BadRequest_NotFound", f"The request URI is not valid: {rest}")
        if not rest.startswith(prefix):
            raise BcError(404, "Internal_CompanyNotFound", "The company does not exist.")
        parts = rest[len(prefix):].split("/")
        entity, key = _segment(parts[0])
        if method == "GET" and key is None and len(parts) == 1:
            return self._page(request, lambda: self._list(entity, request), entity)
        if entity == "customers" and method == "POST" and key is None:
            return await self._write(self._create_customer, await _json(request))
        if entity == "salesOrders":
            if key is None and method == "POST":
                return await self._write(self._create_order, await _json(request))
            if key is not None and len(parts) == 1:
                if method == "GET":
                    return json_response(self._one_order(key, _expand(request)))
                if method == "PATCH":
                    return await self._write(self._patch_order, key, request.headers.get("if-match"),
                                             await _json(request))
                if method == "DELETE":
                    return await self._write(self._delete_order, key, request.headers.get("if-match"))
            if key is not None and len(parts) == 2:
                sub, line = _segment(parts[1])
                if sub == "salesOrderLines" and method == "GET" and line is None:
                    self._one_order(key, False)
                    return self._page(request, lambda: self._lines(key), "salesOrderLines")
                if sub == "salesOrderLines" and method == "POST" and line is None:
                    return await self._write(self._add_line, key, await _json(request))
                if sub == "salesOrderLines" and method == "DELETE" and line is not None:
                    return await self._write(self._delete_line, key, line, request.headers.get("if-match"))
        raise BcError(400, "BadRequest_MethodNotAllowed" if method != "GET" else "BadRequest_NotFound",
                      f"'{method}' is not supported on '{rest}'.")

    # -- $batch ----------------------------------------------------------------------------------
    async def _batch(self, request: Request) -> Response:
        """OData JSON batch (`POST …/api/v2.0/$batch`, Content-Type and Accept application/json):
        `{"requests": [{"id", "method", "url", "headers", "body"}]}` → `{"responses": [{"id", "status",
        "headers", "body"}]}` in request order.  Each operation goes through the same routing and
        validation as when sent alone, and stands alone: one refused leaves the others written.  The
        transactional forms (`Isolation: snapshot`, `atomicityGroup`) are refused rather than emulated."""
        if "application/json" not in request.headers.get("content-type", ""):
            raise BcError(400, "BadRequest", "Only JSON batch requests (Content-Type: application/json) are "
                                             "supported by this service.")
        if request.headers.get("isolation"):
            raise BcError(400, "BadRequest", "Transactional batch requests (Isolation) are not emulated.")
        body = await _json(request)
        ops = body.get("requests")
        if not isinstance(ops, list) or not ops:
            raise BcError(400, "BadRequest", "The batch request must contain a non-empty 'requests' array.")
        if len(ops) > MAX_BATCH:
            raise BcError(400, "BadRequest", f"The batch request contains {len(ops)} operations; the maximum is "
                                             f"{MAX_BATCH}.")
        ids = [op.get("id") if isinstance(op, dict) else None for op in ops]
        if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
            raise BcError(400, "BadRequest", "Every operation of a batch request needs a unique string 'id'.")
        if any("atomicityGroup" in op or "dependsOn" in op for op in ops):
            raise BcError(400, "BadRequest", "atomicityGroup and dependsOn are not emulated.")
        out = []
        for op in ops:
            status, headers, answer = await self._batch_operation(request, op)
            item: dict[str, Any] = {"id": op["id"], "status": status, "headers": headers}
            if answer is not None:
                item["body"] = answer
            out.append(item)
        self.counters["batch_operations"] += len(ops)
        return json_response({"responses": out})

    async def _batch_operation(self, outer: Request, op: dict) -> tuple[int, dict, Any]:
        method, url = str(op.get("method") or "").upper(), op.get("url")
        if method not in ("GET", "POST", "PATCH", "DELETE") or not isinstance(url, str) or not url:
            err = BcError(400, "BadRequest", "A batch operation needs a method (GET, POST, PATCH, DELETE) and a url.")
            return 400, {"content-type": "application/json"}, _loads(err.response().body)
        root = f"/v2.0/{outer.path_params['tenant']}/{outer.path_params['env']}/api/v2.0/"
        if url.startswith(("http://", "https://")):  # absolute: only this service's own URLs
            url = urlsplit(url).path + ("?" + urlsplit(url).query if urlsplit(url).query else "")
            if not url.startswith(root):
                err = BcError(400, "BadRequest", f"The batch operation URL '{op['url']}' is not under this service.")
                return 400, {"content-type": "application/json"}, _loads(err.response().body)
            url = url[len(root):]
        path, _, query = url.lstrip("/").partition("?")
        if path == "$batch":
            err = BcError(400, "BadRequest", "A batch request cannot contain another batch request.")
            return 400, {"content-type": "application/json"}, _loads(err.response().body)
        headers = {str(k).lower(): str(v) for k, v in (op.get("headers") or {}).items()}
        content = b""
        if op.get("body") is not None:
            content = dumps(op["body"])
            headers.setdefault("content-type", "application/json")
        scope = {**outer.scope, "method": method, "path": root + path, "raw_path": (root + path).encode(),
                 "query_string": query.encode(), "path_params": {**outer.path_params, "rest": path},
                 "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}

        async def receive() -> dict:
            return {"type": "http.request", "body": content, "more_body": False}

        try:
            resp = await self._route(Request(scope, receive))
        except BcError as exc:
            resp = exc.response()
        except odata.FilterError as exc:
            resp = BcError(400, "BadRequest", str(exc)).response()
        answer = _loads(resp.body) if resp.body else None
        kept = {k: v for k, v in resp.headers.items() if k in ("content-type", "location", "etag", "retry-after")}
        return resp.status_code, kept, answer

    # -- paging ----------------------------------------------------------------------------------
    def _page(self, request: Request, make_rows: Callable[[], list[dict]], entity: str) -> Response:
        """One page; the rows are made only for a first page (a `$skiptoken` page reads the cached list,
        so paging through n records costs one rendering, not one per page)."""
        params = request.query_params
        size = MAX_PAGE
        prefer = request.headers.get("prefer", "")
        for part in prefer.split(","):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == "odata.maxpagesize" and value.strip().isdigit():
                size = min(MAX_PAGE, max(1, int(value)))
        token = params.get("$skiptoken")
        if token:
            try:
                state = self.pages.parse_token(token)
            except Exception:
                raise BcError(400, "BadRequest", "The skip token is not valid.") from None
            cached = self.pages.lookup(state["k"])
            if cached is None:
                raise BcError(400, "BadRequest", "The skip token has expired.")
            key, offset = state["k"], state["o"]
            rows = cached
        else:
            key, rows = self.pages.get((entity, str(sorted(params.items())), self.sandbox.clock.isoformat(),
                                        secrets.token_hex(4)), make_rows)
            offset = 0
        if "$top" in params and not token:
            rows = rows[:int(params["$top"])]
        chunk = rows[offset:offset + size]
        base = f"{self.base_url}{request.url.path}"
        body: dict[str, Any] = {"@odata.context": f"{self.base_url}/v2.0/{self.meta['tenant_id']}/{ENVIRONMENT}/"
                                                  f"api/v2.0/$metadata#{entity}", "value": chunk}
        if offset + size < len(rows):
            keep = {k: v for k, v in params.items() if k != "$skiptoken"}
            body["@odata.nextLink"] = base + "?" + urlencode({**keep, "$skiptoken": self.pages.token(key, offset + size)})
        headers = {"Preference-Applied": f"odata.maxpagesize={size}"} if prefer else None
        return json_response(body, 200, headers)

    def _list(self, entity: str, request: Request) -> list[dict]:
        clock = self.sandbox.clock
        expand = _expand(request)
        makers = {
            "salesInvoices": lambda: self._invoices(clock, expand), "customerPayments": lambda: self._payments(clock),
            "customers": lambda: self._customers(clock), "currencyExchangeRates": lambda: self._rates(clock),
            "items": self._items, "accounts": self._accounts, "currencies": self._currencies,
            "taxGroups": self._tax_groups, "salesOrders": lambda: self.sales_orders_view(expand),
        }
        if entity not in makers:
            raise BcError(404, "BadRequest_NotFound", f"Resource not found for the segment '{entity}'.")
        clauses = odata.parse_filter(request.query_params.get("$filter"))
        keyed = _key_lookup(entity, clauses)
        if keyed is not None:  # `key eq 'value'` on an indexed key: only the matching rows are rendered
            rows = (self.sales_orders_view(expand, external=keyed) if entity == "salesOrders"
                    else self._customers(clock, number=keyed))
        else:
            rows = makers[entity]()
        if clauses:
            rows = [r for r in rows if odata.matches(r, clauses)]
        order = request.query_params.get("$orderby")
        if order:
            name, _, direction = order.strip().partition(" ")
            if rows and name not in rows[0]:
                raise BcError(400, "BadRequest", f"Could not find a property named '{name}'.")
            rows = sorted(rows, key=lambda r: (r.get(name) is None, r.get(name), r.get("id")),
                          reverse=direction.strip().lower() == "desc")
        return rows

    # -- the world as of the clock --------------------------------------------------------------
    def _company(self) -> dict:
        return {"id": self.meta["company_id"], "systemVersion": "27.1.41698.0", "timestamp": 1,
                "name": "CURTAINS US", "displayName": COMPANY_NAME, "businessProfileId": "",
                "systemCreatedAt": "2024-06-01T00:00:00Z", "systemCreatedBy": str(uuid.UUID(int=0)),
                "systemModifiedAt": "2024-06-01T00:00:00Z", "systemModifiedBy": str(uuid.UUID(int=0))}

    def _world_customers(self, number: str | None = None, cid: str | None = None) -> list[dict]:
        where, args = "", []
        if number is not None or cid is not None:
            where, args = "WHERE customer_id = ? OR id = ?", [number, cid]
        return [dict(zip([c[0] for c in cur.description], r)) for cur in [self.db.execute(
            f"SELECT * FROM dynamics365_customers {where} ORDER BY customer_id", args)] for r in cur.fetchall()]

    def _customers(self, clock: datetime, number: str | None = None, cid: str | None = None) -> list[dict]:
        """Every customer; with `number` / `cid`, only those with that number or id (an indexed look-up)."""
        out = []
        for c in self._world_customers(number, cid):
            out.append({
                "@odata.etag": odata.etag(1), "id": c["id"], "number": c["customer_id"],
                "displayName": c["display_name"], "type": "Company", "addressLine1": "", "addressLine2": "",
                "city": "", "state": c["state"], "country": "US", "postalCode": "", "phoneNumber": "",
                "email": c["email"], "website": "", "salespersonCode": "", "balanceDue": ZERO, "creditLimit": ZERO,
                "taxLiable": True, "taxAreaId": guid(0, "taxarea", c["state"]), "taxAreaDisplayName": c["state"],
                "taxRegistrationNumber": c["resale_certificate"] or "", "currencyId": str(uuid.UUID(int=0)),
                "currencyCode": LCY, "paymentTermsId": guid(0, "terms", c["terms_days"]),
                "shipmentMethodId": str(uuid.UUID(int=0)), "paymentMethodId": guid(0, "paymethod", "BANK"),
                "blocked": " ", "lastModifiedDateTime": odata.iso(min(c["created_at"], clock)),
            })
        sql, args = "SELECT doc, version FROM customers ORDER BY number", []
        if number is not None or cid is not None:
            sql, args = "SELECT doc, version FROM customers WHERE number = ? OR id = ? ORDER BY number", [number, cid]
        for row in self.state.read().execute(sql, args):
            out.append({"@odata.etag": odata.etag(row[1]), **_loads(row[0])})
        return out

    def _invoices(self, clock: datetime, expand: bool) -> list[dict]:
        con = self.db
        rows = con.execute("""
            SELECT i.*, c.id AS customer_guid, c.display_name, c.email,
                   coalesce((SELECT sum(p.amount) FROM dynamics365_payments p
                              WHERE p.invoice_id = i.invoice_id AND p.created_at <= $clock), 0) AS paid
              FROM dynamics365_invoices i JOIN dynamics365_customers c USING (customer_id)
             WHERE i.created_at <= $clock ORDER BY i.number""", {"clock": clock}).fetchall()
        cols = [c[0] for c in con.description]
        invoices = [dict(zip(cols, r)) for r in rows]
        lines: dict[str, list[dict]] = {}
        for ln in self._world_lines(clock):
            lines.setdefault(ln["invoice_id"], []).append(ln)
        out = []
        for i in invoices:
            own = lines.get(i["invoice_id"], [])
            ex = sum((ln["amount"] for ln in own), ZERO)
            tax = sum((ln["tax_amount"] for ln in own), ZERO)
            canceled = i["canceled_at"] is not None and i["canceled_at"] <= clock
            edited = i["edited_at"] is not None and i["edited_at"] <= clock
            modified = max(t for t in (i["created_at"], i["edited_at"] if edited else None,
                                       i["canceled_at"] if canceled else None) if t is not None)
            remaining = ZERO if canceled else ex + tax - Decimal(i["paid"])
            status = "Canceled" if canceled else ("Paid" if remaining <= 0 else "Open")
            doc = {
                "@odata.etag": odata.etag(int(modified.timestamp())), "id": i["invoice_id"], "number": i["number"],
                "externalDocumentNumber": "", "invoiceDate": i["invoice_date"].isoformat(),
                "postingDate": i["invoice_date"].isoformat(), "dueDate": i["due_date"].isoformat(),
                "customerPurchaseOrderReference": i["edited_reference"] if edited else i["your_reference"],
                "customerId": i["customer_guid"], "customerNumber": i["customer_id"],
                "customerName": i["display_name"], "billToName": i["display_name"],
                "billToCustomerId": i["customer_guid"], "billToCustomerNumber": i["customer_id"],
                "shipToName": i["display_name"], "sellToCountry": "US", "sellToState": i["state"],
                "billToCountry": "US", "billToState": i["state"], "currencyId": str(uuid.UUID(int=0)),
                "currencyCode": i["currency"], "orderId": str(uuid.UUID(int=0)), "orderNumber": "",
                "paymentTermsId": guid(0, "terms", i["terms_days"]), "shipmentMethodId": str(uuid.UUID(int=0)),
                "salesperson": "", "pricesIncludeTax": False, "remainingAmount": max(remaining, ZERO),
                "discountAmount": ZERO, "discountAppliedBeforeTax": True, "totalAmountExcludingTax": ex,
                "totalTaxAmount": tax, "totalAmountIncludingTax": ex + tax, "status": status,
                "lastModifiedDateTime": odata.iso(modified), "phoneNumber": "", "email": i["email"],
            }
            if expand:
                doc["salesInvoiceLines"] = [self._invoice_line(ln) for ln in own]
            out.append(doc)
        return out

    def _world_lines(self, clock: datetime) -> list[dict]:
        cur = self.db.execute("""SELECT l.* FROM dynamics365_invoice_lines l JOIN dynamics365_invoices i
                                 USING (invoice_id) WHERE i.created_at <= $clock ORDER BY l.invoice_id, l.sequence""",
                              {"clock": clock})
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def _invoice_line(self, ln: dict) -> dict:
        item = ln["line_type"] == "Item"
        pct = ln["tax_rate"] * 100
        return {
            "@odata.etag": odata.etag(1), "id": ln["line_id"], "documentId": ln["invoice_id"],
            "sequence": ln["sequence"], "itemId": guid(0, "item", ln["item_number"]) if item else str(uuid.UUID(int=0)),
            "accountId": str(uuid.UUID(int=0)) if item else guid(0, "account", ln["item_number"]),
            "lineType": ln["line_type"], "lineObjectNumber": ln["item_number"], "description": ln["description"],
            "unitOfMeasureCode": "PCS" if item else "", "unitPrice": ln["unit_price"], "quantity": ln["quantity"],
            "discountAmount": ln["discount_amount"], "discountPercent": ZERO, "discountAppliedBeforeTax": True,
            "amountExcludingTax": ln["amount"], "taxCode": ln["tax_group"], "taxPercent": pct,
            "totalTaxAmount": ln["tax_amount"], "amountIncludingTax": ln["amount"] + ln["tax_amount"],
            "invoiceDiscountAllocation": ZERO, "netAmount": ln["amount"], "netTaxAmount": ln["tax_amount"],
            "netAmountIncludingTax": ln["amount"] + ln["tax_amount"], "shipmentDate": None,
            "itemVariantId": str(uuid.UUID(int=0)), "locationId": str(uuid.UUID(int=0)),
        }

    def _payments(self, clock: datetime) -> list[dict]:
        cur = self.db.execute("""
            SELECT p.*, i.number AS invoice_number, c.id AS customer_guid
              FROM dynamics365_payments p JOIN dynamics365_invoices i USING (invoice_id)
              JOIN dynamics365_customers c ON c.customer_id = p.customer_id
             WHERE p.created_at <= $clock ORDER BY p.created_at, p.payment_id""", {"clock": clock})
        cols = [c[0] for c in cur.description]
        journal = guid(0, "journal", "CUSTPMT")
        out = []
        for n, r in enumerate(cur.fetchall(), start=1):
            p = dict(zip(cols, r))
            out.append({
                "@odata.etag": odata.etag(1), "id": p["payment_id"], "journalId": journal,
                "journalDisplayName": "CUSTPMT", "lineNumber": n * 10_000, "customerId": p["customer_guid"],
                "customerNumber": p["customer_id"], "contactId": "", "postingDate": p["posting_date"].isoformat(),
                "documentNumber": p["document_number"], "externalDocumentNumber": p["external_document_number"],
                "amount": p["amount"], "appliesToInvoiceId": p["invoice_id"],
                "appliesToInvoiceNumber": p["invoice_number"], "description": "Bank transfer (ACH)", "comment": "",
                "lastModifiedDateTime": odata.iso(p["created_at"]),
            })
        return out

    def _rates(self, clock: datetime) -> list[dict]:
        """The group reporting currency (GBP) against the local currency: `exchangeRateAmount` GBP =
        `relationalExchangeRateAmount` (1) USD, one rate per day."""
        rows = self.db.execute("SELECT rate_date, gbp_per_unit FROM fx_rates WHERE currency = 'USD' AND rate_date <= ? "
                               "ORDER BY rate_date", [clock.date()]).fetchall()
        return [{"@odata.etag": odata.etag(1), "id": guid(0, "rate", d.isoformat()), "currencyCode": "GBP",
                 "startingDate": d.isoformat(), "exchangeRateAmount": rate, "relationalCurrencyCode": "",
                 "relationalExchangeRateAmount": Decimal("1"),
                 "lastModifiedDateTime": odata.iso(datetime.combine(d, dtime(), UTC))} for d, rate in rows]

    def _items(self) -> list[dict]:
        return [{"@odata.etag": odata.etag(1), "id": guid(0, "item", p.sku), "number": p.sku, "displayName": p.title,
                 "type": "Inventory", "blocked": False, "baseUnitOfMeasureCode": "PCS",
                 "unitPrice": cat.trade_price(p, LCY), "taxGroupCode": "TAXABLE", "lastModifiedDateTime": SETUP_AT}
                for p in cat.PRODUCTS]

    def _accounts(self) -> list[dict]:
        return [{"@odata.etag": odata.etag(1), "id": guid(0, "account", n), "number": n, "displayName": name,
                 "category": "Income", "subCategory": "Income, Services", "blocked": False, "accountType": "Posting",
                 "directPosting": True, "lastModifiedDateTime": SETUP_AT} for n, name in ACCOUNTS.items()]

    def _currencies(self) -> list[dict]:
        return [{"@odata.etag": odata.etag(1), "id": guid(0, "currency", c), "code": c, "displayName": name,
                 "symbol": "", "amountDecimalPlaces": "2:2", "amountRoundingPrecision": CENT,
                 "lastModifiedDateTime": SETUP_AT}
                for c, name in CURRENCIES.items()]

    def _tax_groups(self) -> list[dict]:
        return [{"@odata.etag": odata.etag(1), "id": guid(0, "taxgroup", c), "code": c, "displayName": d,
                 "taxType": "Sales Tax", "lastModifiedDateTime": SETUP_AT} for c, (d, _) in TAX_GROUPS.items()]

    # -- sales orders (written) -------------------------------------------------------------------
    def sales_orders_view(self, expand: bool, external: str | None = None) -> list[dict]:
        """Every sales order (or those whose externalDocumentNumber is `external`, through its index),
        their lines read in one query rather than one per order."""
        con = self.state.read()
        where, args = "", []
        if external is not None:
            where, args = "WHERE json_extract(doc, '$.externalDocumentNumber') = ?", [external]
        rows = con.execute(f"SELECT id, number, doc, version FROM sales_orders {where} ORDER BY number",
                           args).fetchall()
        lines: dict[str, list[dict]] = {}
        if rows:
            sql = "SELECT order_id, doc, version FROM sales_order_lines"
            if external is not None:
                sql += f" WHERE order_id IN ({', '.join('?' * len(rows))})"
            for order_id, d, v in con.execute(sql + " ORDER BY order_id, sequence",
                                              [r[0] for r in rows] if external is not None else []):
                lines.setdefault(order_id, []).append({"@odata.etag": odata.etag(v), **_loads(d)})
        return [self._order_doc(row, expand, lines.get(row[0], [])) for row in rows]

    def _lines(self, order_id: str) -> list[dict]:
        return [{"@odata.etag": odata.etag(v), **_loads(d)} for d, v in self.state.read().execute(
            "SELECT doc, version FROM sales_order_lines WHERE order_id = ? ORDER BY sequence", [order_id])]

    def _order_doc(self, row: tuple, expand: bool = True, lines: list[dict] | None = None) -> dict:
        order_id, _, doc, version = row
        head = _loads(doc)
        lines = self._lines(order_id) if lines is None else lines
        ex = sum((ln["amountExcludingTax"] for ln in lines), ZERO)
        tax = sum((ln["totalTaxAmount"] for ln in lines), ZERO)
        out = {"@odata.etag": odata.etag(version), **head, "totalAmountExcludingTax": ex, "totalTaxAmount": tax,
               "totalAmountIncludingTax": ex + tax}
        if expand:
            out["salesOrderLines"] = lines
        return out

    def _one_order(self, key: str, expand: bool) -> dict:
        row = self.state.read().execute("SELECT id, number, doc, version FROM sales_orders WHERE id = ?",
                                        [key]).fetchone()
        if row is None:
            raise BcError(404, "BadRequest_NotFound", f"The SalesOrder does not exist. Identification fields and "
                                                      f"values: Id='{key}'")
        return self._order_doc(row, expand)

    async def _write(self, fn, *args) -> Response:  # noqa: ANN001
        status, body = await asyncio.to_thread(self._locked, fn, *args)
        if self.write_delay_s:
            await asyncio.sleep(self.write_delay_s)
        return Response(status_code=204) if body is None else json_response(body, status)

    def _locked(self, fn, *args):  # noqa: ANN001, ANN202
        with self._write_lock:
            return fn(*args)

    def _customer_exists(self, con, number: str | None, cid: str | None) -> dict | None:  # noqa: ANN001
        """The customer with this number or id (the world's or one created here), found by its key."""
        for c in self._customers(self.sandbox.clock, number=number, cid=cid):
            if (number is not None and c["number"] == number) or (cid is not None and c["id"] == cid):
                return c
        return None

    def _create_customer(self, body: dict) -> tuple[int, dict]:
        number = _text(body, "number", 20)
        name = _text(body, "displayName", 100)
        email = _text(body, "email", 80)
        currency = _text(body, "currencyCode", 10) or ""
        if not number:
            raise BcError(400, "Application_DialogException", "You must specify a customer number (manual nos.).")
        if currency and currency != LCY and currency not in CURRENCIES:
            raise _missing("Currency Code", "Customer", currency, "Currency")
        with self.state.tx() as con:
            if self._customer_exists(con, number, None):
                raise BcError(400, "Internal_EntityWithSameKeyExists",
                              f"The record in table Customer already exists. Identification fields and values: "
                              f"No.='{number}'")
            cid = str(uuid.uuid4())
            doc = {"id": cid, "number": number, "displayName": name or "", "type": "Company", "email": email or "",
                   "country": _text(body, "country", 10) or "", "state": "", "currencyCode": currency or LCY,
                   "taxLiable": False, "blocked": " ", "lastModifiedDateTime": odata.iso(datetime.now(UTC))}
            con.execute("INSERT INTO customers VALUES (?, ?, ?, 1)", [cid, number, dumps(doc).decode()])
            self.state.bump(con, "customers_created")
        return 201, {"@odata.etag": odata.etag(1), **doc}

    def _line_objects(self, kind: str) -> tuple[dict[str, dict], dict[str, dict]]:
        """Items or G/L accounts by id and by number: the company's set-up, the same for every line, so
        built once rather than for each line validated."""
        cached = self._line_object_index.get(kind)
        if cached is None:
            rows = self._items() if kind == "items" else self._accounts()
            cached = self._line_object_index[kind] = ({r["id"]: r for r in rows}, {r["number"]: r for r in rows})
        return cached

    def _line(self, order_id: str, body: dict, sequence: int, state: str | None) -> dict:
        kind = body.get("lineType", "Item")
        if kind not in LINE_TYPES:
            raise BcError(400, "BadRequest", f"Cannot convert the literal '{kind}' to the expected type "
                                             "'Microsoft.NAV.documentLineObjectType'.")
        number = _text(body, "lineObjectNumber", 20)
        item_id, account_id = body.get("itemId"), body.get("accountId")
        if kind == "Item":
            items, by_number = self._line_objects("items")
            item = items.get(item_id) if item_id else by_number.get(number or "")
            if item is None:
                raise BcError(400, "Application_DialogException", f"The Item does not exist. Identification fields "
                                                                  f"and values: No.='{number or item_id}'")
            number, item_id, account_id = item["number"], item["id"], str(uuid.UUID(int=0))
        elif kind == "Account":
            accounts, by_number = self._line_objects("accounts")
            acc = accounts.get(account_id) if account_id else by_number.get(number or "")
            if acc is None:
                raise BcError(400, "Application_DialogException", f"The G/L Account does not exist. Identification "
                                                                  f"fields and values: No.='{number or account_id}'")
            number, account_id, item_id = acc["number"], acc["id"], str(uuid.UUID(int=0))
        quantity = _dec(body.get("quantity", 0), "quantity")
        price = _dec(body.get("unitPrice", 0), "unitPrice")
        discount = _dec(body.get("discountAmount", 0), "discountAmount")
        code = _text(body, "taxCode", 20) or ("NONTAXABLE" if kind != "Comment" else "")
        if code and code not in TAX_GROUPS:
            raise _missing("Tax Group Code", "Sales Line", code, "Tax Group")
        pct = TAX_GROUPS[code][1] if code else ZERO
        if pct is None:  # TAXABLE: the sell-to state's combined rate
            pct = sum((r for _, r in cat.US_STATE_TAX.get(state or "", ())), Decimal("0")) * 100
        amount = q(quantity * price - discount)
        tax = q(amount * pct / 100)
        return {"id": str(uuid.uuid4()), "documentId": order_id, "sequence": sequence, "itemId": item_id,
                "accountId": account_id, "lineType": kind, "lineObjectNumber": number or "",
                "description": _text(body, "description", 100) or "", "unitOfMeasureCode": "PCS" if kind == "Item" else "",
                "quantity": quantity, "unitPrice": price, "discountAmount": discount, "discountPercent": ZERO,
                "amountExcludingTax": amount, "taxCode": code, "taxPercent": pct, "totalTaxAmount": tax,
                "amountIncludingTax": amount + tax, "netAmount": amount, "netTaxAmount": tax,
                "netAmountIncludingTax": amount + tax}

    def _create_order(self, body: dict) -> tuple[int, dict]:
        number_in = _text(body, "number", 20)
        ext = _text(body, "externalDocumentNumber", 35) or ""
        customer_number, customer_id = body.get("customerNumber"), body.get("customerId")
        if not customer_number and not customer_id:
            raise BcError(400, "Application_DialogException", "A customerNumber or a customerId must be provided.")
        customer = self._customer_exists(None, customer_number, customer_id)
        if customer is None:
            raise _missing("Sell-to Customer No.", "Sales Header", customer_number or customer_id, "Customer")
        currency = _text(body, "currencyCode", 10) or ""
        if currency and currency != LCY and currency not in CURRENCIES:
            raise _missing("Currency Code", "Sales Header", currency, "Currency")
        order_date = body.get("orderDate") or self.sandbox.clock.date().isoformat()
        try:
            date.fromisoformat(order_date)
        except (TypeError, ValueError):
            raise BcError(400, "BadRequest", f"Cannot convert the literal '{order_date}' to the expected type "
                                             "'Edm.Date'.") from None
        raw_lines = body.get("salesOrderLines") or []
        if not isinstance(raw_lines, list):
            raise BcError(400, "BadRequest", "salesOrderLines must be a collection.")
        with self.state.tx() as con:
            if number_in:
                if con.execute("SELECT 1 FROM sales_orders WHERE number = ?", [number_in]).fetchone():
                    raise BcError(400, "Internal_EntityWithSameKeyExists",
                                  "The record in table Sales Header already exists. Identification fields and values: "
                                  f"Document Type='Order',No.='{number_in}'")
                number = number_in
            else:
                n = con.execute("SELECT count(*) FROM sales_orders").fetchone()[0] + self.state.counters().get(
                    "orders_deleted", 0)
                number = f"S-ORD{101001 + n}"
            oid = str(uuid.uuid4())
            lines = [self._line(oid, ln, (k + 1) * 10_000, customer.get("state")) for k, ln in enumerate(raw_lines)]
            head = {"id": oid, "number": number, "externalDocumentNumber": ext, "orderDate": order_date,
                    "postingDate": order_date, "customerId": customer["id"], "customerNumber": customer["number"],
                    "customerName": customer["displayName"], "currencyCode": currency or LCY,
                    "pricesIncludeTax": False, "status": "Draft", "fullyShipped": False,
                    "lastModifiedDateTime": odata.iso(datetime.now(UTC))}
            con.execute("INSERT INTO sales_orders VALUES (?, ?, ?, 1)", [oid, number, dumps(head).decode()])
            for ln in lines:
                con.execute("INSERT INTO sales_order_lines VALUES (?, ?, ?, ?, 1)",
                            [ln["id"], oid, ln["sequence"], dumps(ln).decode()])
            self.state.bump(con, "orders_created")
        return 201, self._one_order(oid, True)

    def _check_etag(self, current: int, if_match: str | None, what: str) -> None:
        if not if_match:
            raise BcError(400, "BadRequest", f"Could not process the request: an If-Match header is required to "
                                             f"modify the {what}.")
        if if_match.strip() != "*" and if_match.strip() != odata.etag(current):
            raise BcError(409, "Request_EntityChanged", "The record you are trying to edit has been modified by "
                                                        "another user. Refresh and try again.")

    def _order_row(self, con, key: str) -> tuple:  # noqa: ANN001
        row = con.execute("SELECT id, number, doc, version FROM sales_orders WHERE id = ?", [key]).fetchone()
        if row is None:
            raise BcError(404, "BadRequest_NotFound", f"The SalesOrder does not exist. Identification fields and "
                                                      f"values: Id='{key}'")
        return row

    def _patch_order(self, key: str, if_match: str | None, body: dict) -> tuple[int, dict]:
        if "salesOrderLines" in body:
            raise BcError(400, "BadRequest", "Deep update of salesOrderLines is not supported; modify the lines "
                                             "through salesOrders({id})/salesOrderLines.")
        with self.state.tx() as con:
            _, _, doc, version = self._order_row(con, key)
            self._check_etag(version, if_match, "SalesOrder")
            head = _loads(doc)
            for name, limit in (("externalDocumentNumber", 35), ("orderDate", 10)):
                if name in body:
                    head[name] = _text(body, name, limit)
            if "orderDate" in body:
                head["postingDate"] = head["orderDate"]
            if "currencyCode" in body:
                currency = _text(body, "currencyCode", 10) or ""
                if currency and currency != LCY and currency not in CURRENCIES:
                    raise _missing("Currency Code", "Sales Header", currency, "Currency")
                head["currencyCode"] = currency or LCY
            head["lastModifiedDateTime"] = odata.iso(datetime.now(UTC))
            con.execute("UPDATE sales_orders SET doc = ?, version = version + 1 WHERE id = ?",
                        [dumps(head).decode(), key])
            self.state.bump(con, "orders_updated")
        return 200, self._one_order(key, False)

    def _delete_order(self, key: str, if_match: str | None) -> tuple[int, None]:
        with self.state.tx() as con:
            _, _, _, version = self._order_row(con, key)
            self._check_etag(version, if_match, "SalesOrder")
            con.execute("DELETE FROM sales_order_lines WHERE order_id = ?", [key])
            con.execute("DELETE FROM sales_orders WHERE id = ?", [key])
            self.state.bump(con, "orders_deleted")
        return 204, None

    def _add_line(self, key: str, body: dict) -> tuple[int, dict]:
        with self.state.tx() as con:
            _, _, doc, _ = self._order_row(con, key)
            head = _loads(doc)
            customer = self._customer_exists(None, head["customerNumber"], None) or {}
            last = con.execute("SELECT max(sequence) FROM sales_order_lines WHERE order_id = ?", [key]).fetchone()[0]
            ln = self._line(key, body, (last or 0) + 10_000, customer.get("state"))
            con.execute("INSERT INTO sales_order_lines VALUES (?, ?, ?, ?, 1)",
                        [ln["id"], key, ln["sequence"], dumps(ln).decode()])
            con.execute("UPDATE sales_orders SET version = version + 1 WHERE id = ?", [key])
            self.state.bump(con, "lines_created")
        return 201, {"@odata.etag": odata.etag(1), **ln}

    def _delete_line(self, key: str, line: str, if_match: str | None) -> tuple[int, None]:
        with self.state.tx() as con:
            self._order_row(con, key)
            row = con.execute("SELECT version FROM sales_order_lines WHERE id = ? AND order_id = ?",
                              [line, key]).fetchone()
            if row is None:
                raise BcError(404, "BadRequest_NotFound", f"The SalesOrderLine does not exist. Identification "
                                                          f"fields and values: Id='{line}'")
            self._check_etag(row[0], if_match, "SalesOrderLine")
            con.execute("DELETE FROM sales_order_lines WHERE id = ?", [line])
            con.execute("UPDATE sales_orders SET version = version + 1 WHERE id = ?", [key])
            self.state.bump(con, "lines_deleted")
        return 204, None


def _missing(field: str, table: str, value: Any, related: str) -> BcError:
    return BcError(400, "Application_DialogException",
                   f"The field {field} of table {table} contains a value ({value}) that cannot be found in the "
                   f"related table ({related}).")


def _key_lookup(entity: str, clauses: list[tuple[str, str, Any]]) -> str | None:
    """The value of a filter that is exactly `<indexed key> eq 'value'` (a publisher's look-up), else None."""
    keys = {"salesOrders": "externalDocumentNumber", "customers": "number"}
    if entity in keys and len(clauses) == 1:
        name, op, value = clauses[0]
        if name == keys[entity] and op == "eq" and isinstance(value, str):
            return value
    return None


def _segment(text: str) -> tuple[str, str | None]:
    if "(" in text and text.endswith(")"):
        name, _, key = text[:-1].partition("(")
        return name, key.strip("'")
    return text, None


def _expand(request: Request) -> bool:
    return any(e.strip() in ("salesInvoiceLines", "salesOrderLines")
               for e in (request.query_params.get("$expand") or "").split(","))


async def _json(request: Request) -> dict:
    try:
        body = json.loads(await request.body(), parse_float=Decimal)
    except ValueError:
        raise BcError(400, "BadRequest", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BcError(400, "BadRequest", "The request body must be a JSON object.")
    return body


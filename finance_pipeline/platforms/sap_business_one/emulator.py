"""SAP Business One Service Layer emulator (`/b1s/v2`, OData v4; `/b1s/v1`, OData v3): the warehouse
desk's company database rendered as of the sandbox clock, and the sales orders other channels' trade
invoices are written to (kept in `<sandbox root>/sap_business_one.sqlite`, shared by every process).

What it reproduces:
- **Session.**  `POST Login` `{"CompanyDB","UserName","Password"}` → `SessionId`, `Version`,
  `SessionTimeout` (minutes, idle, scaled by `time_scale`) and cookies `B1SESSION` and `ROUTEID`
  (`.node1`, load-balancer stickiness).  Every call must send both cookies: a missing, unknown or
  idle-expired session, or a missing ROUTEID (the session lives on another node), is 401 with error
  code 301 "Invalid session or session already timeout.".  `POST Logout` → 204.
- **Reads.**  `Invoices`, `IncomingPayments` (lists and `Invoices(DocEntry)`): `$select`, `$filter`
  (see odata.py; dates quoted in v1, bare in v2), `$orderby=DocEntry [asc|desc]`, `$top`, `$skip`,
  page size 20 unless `Prefer: odata.maxpagesize=N` (echoed in `Preference-Applied`), the next
  page as a relative link (`odata.nextLink` in v1, `@odata.nextLink` in v2) carrying the query
  and `$skip`.  Money as JSON numbers; local currency (GBP) amounts and the `*Fc`/`*FC` document
  currency twins (0 on local-currency documents); `UpdateDate` (date) and `UpdateTime`
  (`HH:MM:SS`) in server time (Europe/London); `Cancelled` `tYES`/`tNO`, `CancelStatus`
  (`csNo`, `csCancelled`, `csCancellation` — the cancellation document B1 adds),
  `DocumentStatus` `bost_Open`/`bost_Close` (closed once paid in full or cancelled).
- **Writes.**  `BusinessPartners` (POST, GET by `('CardCode')`, list), `Orders` (POST → 201 with the
  document, list with `$filter`, GET, PATCH → 204, lines merged by `LineNum` unless
  `B1S-ReplaceCollectionsOnPatch: true`, `POST Orders(n)/Cancel` → 204).  Validation as B1 answers:
  unknown BP, missing dates or lines, unknown currency, VAT group, G/L account (`AccountCode` of a
  line) or item code, non-numeric money,
  a duplicate customer reference (`NumAtCard`; the company blocks duplicates), a duplicate CardCode,
  PATCH on a cancelled or missing document.  Errors are `{"error":{"code":…,"message":{"lang","value"}}}`.
  Totals are B1's: `LineTotal` (given, else Quantity × UnitPrice), tax per line at the VAT group's
  rate, `DocRate` from the exchange-rate table (the world's daily rates) for foreign documents.
- **Batches.**  `POST $batch` (`multipart/mixed`, see `batch.py`): each operation inside is routed
  exactly as it would be alone (same validation, same errors); a change set is all or nothing (its
  operations share one store transaction; a failed one is answered with that operation's error
  alone); the answer is `200` multipart with each change set's responses by `Content-ID`.  The
  batch stops at the first failed item (OData's default) unless `Prefer: odata.continue-on-error`
  (echoed in `Preference-Applied`).  Session, faults and counters apply to the `$batch` request.
- No published request quotas (none enforced); faults come from the base class.
"""
from __future__ import annotations

import asyncio
import contextvars
import re
import secrets
import sqlite3
import time
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, quote
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.client import json_default
from finance_pipeline.platforms.sap_business_one import batch as multipart
from finance_pipeline.platforms.sap_business_one import odata
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.sqlite_state import SqliteState
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
SERVER_TZ = ZoneInfo("Europe/London")
COMPANY_DB, USERNAME = "SBODEMOGB", "manager"
VERSION = "1000240"
SESSION_TIMEOUT_MIN = 30
ROUTE_ID = ".node1"
DEFAULT_PAGE_SIZE = 20
LOCAL = "GBP"
CURRENCIES = ("GBP", "EUR", "USD", "AUD")
# the company's output VAT groups: standard, reduced, zero-rated, exports, EU reverse charge, and OS —
# outside the scope of UK VAT, set up (as a UK company selling through a US division does) for the US
# division's sales, whose state sales tax is a line of its own to a liability account
VAT_GROUPS = {"O1": Decimal("0.20"), "O2": Decimal("0.05"), "O0": Decimal("0"), "OX": Decimal("0"),
              "EC": Decimal("0"), "OS": Decimal("0")}
# G/L accounts a document line may post to (`AccountCode`, overriding the item's revenue account)
GL_ACCOUNTS = {"4000": "Sales", "4025": "Freight income", "2220": "US sales tax payable"}
ITEM_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,49}$")
CENT = Decimal("0.01")
# set while a change set runs: its operations' write delays wait until it commits
_DEFERRED_DELAY: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("b1_deferred_delay", default=None)
_PATH = re.compile(r"^(?P<entity>[A-Za-z]+)(?:\((?P<key>'(?:[^']|'')*'|\d+)\))?(?:/(?P<action>[A-Za-z]+))?$")


def _q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _local(ts: datetime) -> tuple[str, str]:
    at = ts.astimezone(SERVER_TZ)
    return at.date().isoformat(), at.strftime("%H:%M:%S")


class B1Error(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return json_response({"error": {"code": self.code, "message": {"lang": "en-us", "value": self.message}}},
                             self.status)


def _invalid_session() -> B1Error:
    return B1Error(401, 301, "Invalid session or session already timeout.")


# ------------------------------------------------------------------------------------ write store
STORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS partners (card_code TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (doc_entry INTEGER PRIMARY KEY AUTOINCREMENT, num_at_card TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_ref ON orders (num_at_card);
"""
FIRST_ORDER_NUM = 520_000


class B1Store(SqliteState):
    """Business partners and sales orders: every emulator instance, in any process, sees the same
    company, so a killed publisher's writes are there for its next run."""

    def __init__(self, path) -> None:  # noqa: ANN001
        super().__init__(path, STORE_SCHEMA)

    def partners(self) -> list[dict]:
        return self.cached("partners", lambda: [_loads(r[0]) for r in
                                                self.read().execute("SELECT doc FROM partners ORDER BY card_code")])

    def orders(self) -> list[dict]:
        """Every sales order in DocEntry order (parsed once per store generation; read-only)."""
        return self.cached("orders", lambda: [_loads(r[0]) for r in
                                              self.read().execute("SELECT doc FROM orders ORDER BY doc_entry")])


def _loads(raw: str | bytes) -> Any:
    import json

    return json.loads(raw, parse_float=Decimal)


def _dumps(doc: Any) -> str:
    return orjson.dumps(doc, default=json_default).decode()


# ------------------------------------------------------------------------------------ emulator
class SapBusinessOneEmulator(Emulator):
    name = "sap_business_one"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.password = f"b1-{secrets.token_hex(8)}"
        self.sessions: dict[str, float] = {}  # SessionId -> last use (monotonic)
        self.store = B1Store(sandbox.root / "sap_business_one.sqlite")
        self.write_delay_s = 0.0  # tests widen the gap between a commit and its answer
        self.block_duplicate_reference = True
        self.expire_sessions_every = 0  # tests: every Nth request finds its session timed out  # Document Settings: "Block Duplicate Customer Ref. No."
        self._rates: dict[tuple[str, str], Decimal] = {}

    def credentials(self) -> dict[str, str]:
        return {"company_db": COMPANY_DB, "username": USERNAME, "password": self.password}

    def fault_response(self, status: int) -> Response:
        return B1Error(status, -1, "Service Layer is temporarily unavailable" if status >= 500
                       else "Too many requests").response()

    def faults_apply(self, method: str, path: str) -> bool:
        return not path.endswith(("/Login", "/Logout"))

    def routes(self) -> list[Route]:
        return [Route("/b1s/{version:str}/{rest:path}", self.dispatch, methods=["GET", "POST", "PATCH", "DELETE"])]

    # -- sessions ---------------------------------------------------------------------------------
    @property
    def session_timeout_s(self) -> float:
        # compressed like the limits, but never below a minute (expiry is tested with expire_sessions)
        return max(SESSION_TIMEOUT_MIN * 60 / max(self.config.time_scale, 1e-9), 60.0)

    def expire_sessions(self) -> None:
        """As if every session had been idle past its timeout (tests)."""
        self.sessions.clear()

    def _check_session(self, request: Request) -> None:
        sid, route = request.cookies.get("B1SESSION"), request.cookies.get("ROUTEID")
        if self.expire_sessions_every and self.counters["requests"] % self.expire_sessions_every == 0:
            self.sessions.pop(sid or "", None)
        last = self.sessions.get(sid or "")
        now = time.monotonic()
        if last is not None and now - last > self.session_timeout_s:
            self.sessions.pop(sid or "", None)  # timed out
            last = None
        if last is None or route != ROUTE_ID:  # without ROUTEID the call lands on a node without the session
            self.counters["invalid_session"] += 1
            raise _invalid_session()
        self.sessions[sid] = now

    async def _login(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise B1Error(400, -1000, "Invalid JSON in the request body") from None
        if not isinstance(body, dict) or body.get("CompanyDB") != COMPANY_DB:
            raise B1Error(401, -304, "Fail to get DB Credentials from SLD")  # unknown company (wording unverified)
        if body.get("UserName") != USERNAME or body.get("Password") != self.password:
            self.counters["login_refused"] += 1
            raise B1Error(401, 100000027, "Login failed")
        sid = secrets.token_urlsafe(24)
        self.sessions[sid] = time.monotonic()
        self.counters["logins"] += 1
        resp = json_response({"odata.metadata": f"{self.base_url}/b1s/v1/$metadata#B1Sessions/@Element",
                              "SessionId": sid, "Version": VERSION, "SessionTimeout": SESSION_TIMEOUT_MIN})
        resp.set_cookie("B1SESSION", sid, httponly=True, path="/b1s")
        resp.set_cookie("ROUTEID", ROUTE_ID, path="/b1s")
        return resp

    # -- dispatch ---------------------------------------------------------------------------------
    async def dispatch(self, request: Request) -> Response:
        version = request.path_params["version"]
        try:
            if version not in ("v1", "v2"):
                raise B1Error(404, -1, f"Resource not found for the segment '{version}'")
            rest = request.path_params["rest"]
            if rest == "Login" and request.method == "POST":
                return await self._login(request)
            self._check_session(request)
            if rest == "Logout" and request.method == "POST":
                self.sessions.pop(request.cookies.get("B1SESSION", ""), None)
                return Response(status_code=204)
            if rest == "$batch":
                if request.method != "POST":
                    raise B1Error(405, -1, "Method not allowed")
                return await self._batch(request, version)
            return await self._route(request, version, rest)
        except B1Error as exc:
            return exc.response()

    async def _route(self, request: Request, version: str, rest: str) -> Response:
        """One operation (alone, or from a batch) to its handler; B1's errors raise `B1Error`."""
        m = _PATH.match(rest)
        if not m:
            raise B1Error(404, -1, f"Resource not found for the segment '{rest}'")
        entity, key, action = m.group("entity"), m.group("key"), m.group("action")
        handler = {("GET", "Invoices"): self._get_invoices, ("GET", "IncomingPayments"): self._get_payments,
                   ("GET", "Orders"): self._get_orders, ("GET", "BusinessPartners"): self._get_partners,
                   ("POST", "Orders"): self._post_order, ("PATCH", "Orders"): self._patch_order,
                   ("POST", "BusinessPartners"): self._post_partner,
                   ("PATCH", "BusinessPartners"): self._patch_partner}.get((request.method, entity))
        if handler is None:
            raise B1Error(405 if entity in ("Invoices", "IncomingPayments", "Orders", "BusinessPartners") else 404,
                          -1, f"Resource not found for the segment '{entity}'")
        return await handler(request, version, key, action)

    # -- $batch -----------------------------------------------------------------------------------
    async def _batch(self, request: Request, version: str) -> Response:
        try:
            items = multipart.read(request.headers.get("content-type"), await request.body(), response=False)
        except multipart.BatchFormatError as exc:
            raise B1Error(400, -1000, f"Invalid batch request: {exc}") from None
        keep_going = "odata.continue-on-error" in request.headers.get("prefer", "").lower()
        answers: list[list[multipart.Message] | multipart.Message] = []
        for item in items:
            if isinstance(item, list):
                answer, failed = await self._changeset(request, version, item)
            else:
                if item.method != "GET":
                    raise B1Error(400, -1000, "Invalid batch request: a change outside a change set")
                answer = await self._operation(request, version, item)
                failed = answer.status >= 400
            answers.append(answer)
            if failed and not keep_going:
                break
        content_type, body = multipart.write(answers, response=True)
        headers = {"Preference-Applied": "odata.continue-on-error"} if keep_going else {}
        return Response(body, 200, headers=headers, media_type=content_type)

    async def _changeset(self, request: Request, version: str, ops: list[multipart.Message]
                         ) -> tuple[list[multipart.Message] | multipart.Message, bool]:
        """All of a change set or none of it: (its responses, False), or (the failed one's error, True)."""
        if any(op.method == "GET" for op in ops):
            bad = multipart.Message(content_id=ops[0].content_id, status=400, body=_error_body(
                -1000, "Invalid batch request: GET is not allowed in a change set"))
            return bad, True
        delays: list[float] = []
        token = _DEFERRED_DELAY.set(delays)
        out: list[multipart.Message] = []
        try:
            if len(ops) == 1:  # one operation: its own transaction is the change set's
                out.append(await self._operation(request, version, ops[0]))
                if out[0].status >= 400:
                    return out[0], True
            else:
                try:
                    with self.store.tx():  # the operations' transactions nest in it (savepoints)
                        for op in ops:
                            answer = await self._operation(request, version, op)
                            if answer.status >= 400:
                                raise _ChangeSetFailed(answer)
                            out.append(answer)
                except _ChangeSetFailed as failed:
                    return failed.answer, True
        finally:
            _DEFERRED_DELAY.reset(token)
            if delays:
                await asyncio.sleep(sum(delays))
        return out, False

    async def _operation(self, request: Request, version: str, op: multipart.Message) -> multipart.Message:
        """One embedded request, routed as if it had come alone on this session."""
        path, _, query = op.target.partition("?")
        if "://" in path:
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        prefix = f"/b1s/{version}/"
        if not path.startswith(prefix):
            return multipart.Message(content_id=op.content_id, status=404, body=_error_body(
                -1, f"Resource not found for the segment '{path}'"))
        rest = path[len(prefix):]
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in op.headers.items()]
        headers += [(k, v) for k, v in request.headers.raw if k in (b"host", b"cookie")]
        scope = {"type": "http", "method": op.method, "path": path, "raw_path": path.encode(), "root_path": "",
                 "query_string": query.encode(), "headers": headers, "scheme": request.url.scheme,
                 "server": request.scope.get("server"), "http_version": "1.1",
                 "path_params": {"version": version, "rest": rest}}
        body = op.body

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}
        try:
            resp = await self._route(Request(scope, receive), version, rest)
        except B1Error as exc:
            resp = exc.response()
        headers_out = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "location")}
        return multipart.Message(content_id=op.content_id, status=resp.status_code, headers=headers_out,
                                 body=bytes(resp.body))

    # -- lists ------------------------------------------------------------------------------------
    def _list(self, request: Request, version: str, entity: str, docs: list[dict]) -> Response:
        params = dict(parse_qsl(request.url.query, keep_blank_values=True))
        if "$filter" in params:
            try:
                predicate = odata.parse(params["$filter"])
            except odata.FilterError as exc:
                raise B1Error(400, -1000, str(exc)) from None
            docs = [d for d in docs if predicate(d)]
        order = (params.get("$orderby") or "DocEntry").split()
        if order[0] not in ("DocEntry", "CardCode", "DocNum"):
            raise B1Error(400, -1000, f"Property '{order[0]}' cannot be used in $orderby here")
        descending = len(order) > 1 and order[1].lower() == "desc"
        if order[0] != "DocEntry" or descending:  # every list is held in DocEntry order already
            docs = sorted(docs, key=lambda d: d.get(order[0]) or 0, reverse=descending)
        try:
            skip = int(params.get("$skip") or 0)
            top = int(params["$top"]) if "$top" in params else None
        except ValueError:
            raise B1Error(400, -1000, "Invalid $skip or $top") from None
        if top is not None:
            docs = docs[:skip + top] if skip else docs[:top]
        page_size, headers = DEFAULT_PAGE_SIZE, {}
        prefer = re.search(r"odata\.maxpagesize=(\d+)", request.headers.get("prefer", ""))
        if prefer:
            page_size = int(prefer.group(1))
            headers["Preference-Applied"] = f"odata.maxpagesize={page_size}"
        page = docs[skip:] if page_size == 0 else docs[skip:skip + page_size]
        if self.duplicate_page(request) and skip >= page_size > 0:
            # the fault: rows shifted while the client paged, so the previous page's last row shows again
            page = docs[skip - 1:skip + page_size]
        if "$select" in params:
            fields = [f.strip() for f in params["$select"].split(",") if f.strip()]
            page = [{f: d.get(f) for f in fields} for d in page]
        body: dict[str, Any] = ({"odata.metadata": f"{self.base_url}/b1s/v1/$metadata#{entity}"} if version == "v1"
                                else {"@odata.context": f"{self.base_url}/b1s/v2/$metadata#{entity}"})
        body["value"] = page
        if page_size and skip + page_size < len(docs):
            rest = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "$skip"]
            link = f"{entity}?" + "&".join(f"{k}={quote(v, safe=',$()')}" for k, v in rest + [("$skip", str(skip + page_size))])
            body["odata.nextLink" if version == "v1" else "@odata.nextLink"] = link
        return json_response(body, headers=headers)

    def _one(self, docs: list[dict], key: str | None, entity: str) -> Response:
        want = int(key) if key and key.isdigit() else (key or "").strip("'").replace("''", "'")
        for d in docs:
            if d.get("DocEntry", d.get("CardCode")) == want:
                return json_response(d)
        raise B1Error(404, -2028, "No matching records found (ODBC -2028)")

    # -- the desk's invoices and payments, as of the clock ---------------------------------------------
    def _rendered(self) -> tuple[list[dict], list[dict]]:
        clock = self.sandbox.clock
        _, docs = self.pages.get(("b1-docs", clock.isoformat()), lambda: [self._render(clock)])
        return docs[0]

    def _render(self, clock: datetime) -> tuple[list[dict], list[dict]]:
        db = self.db
        rows = db.execute("SELECT * FROM sap_business_one_invoices WHERE created_at <= ? ORDER BY doc_entry",
                          [clock]).fetchall()
        cols = [c[0] for c in db.description]
        invoices = [dict(zip(cols, r)) for r in rows]
        lines: dict[int, list[dict]] = {}
        for r in db.execute("SELECT l.* FROM sap_business_one_invoice_lines l JOIN sap_business_one_invoices i "
                            "USING (doc_entry) WHERE i.created_at <= ? ORDER BY l.doc_entry, l.line_num",
                            [clock]).fetchall():
            row = dict(zip([c[0] for c in db.description], r))
            lines.setdefault(row["doc_entry"], []).append(row)
        pays = db.execute("SELECT * FROM sap_business_one_payments WHERE created_at <= ? ORDER BY doc_entry",
                          [clock]).fetchall()
        pcols = [c[0] for c in db.description]
        payments = [dict(zip(pcols, r)) for r in pays]
        paid: dict[int, list[dict]] = {}
        for p in payments:
            paid.setdefault(p["invoice_doc_entry"], []).append(p)
        out: list[dict] = []
        for inv in invoices:
            foreign = inv["currency"] != LOCAL
            cancelled = inv["cancelled_at"] is not None and inv["cancelled_at"] <= clock
            edited = inv["edited_at"] is not None and inv["edited_at"] <= clock
            ps = paid.get(inv["doc_entry"], [])
            paid_local = sum((p["amount_home"] for p in ps), Decimal("0"))
            paid_fc = sum((p["amount"] for p in ps), Decimal("0")) if foreign else Decimal("0")
            settled = sum((p["amount"] for p in ps), Decimal("0")) >= (inv["doc_total_fc"] if foreign else inv["doc_total"])
            updated = max([inv["created_at"]] + ([inv["edited_at"]] if edited else [])
                          + ([inv["cancelled_at"]] if cancelled else []) + [p["created_at"] for p in ps])
            update_date, update_time = _local(updated)
            created_date, created_time = _local(inv["created_at"])
            doc = {
                "DocEntry": inv["doc_entry"], "DocNum": inv["doc_num"], "DocType": "dDocument_Items",
                "DocDate": inv["doc_date"].isoformat(),
                "DocDueDate": (inv["edited_due_date"] if edited else inv["due_date"]).isoformat(),
                "TaxDate": inv["doc_date"].isoformat(), "DocTime": created_time, "CreationDate": created_date,
                "UpdateDate": update_date, "UpdateTime": update_time,
                "CardCode": inv["customer_id"], "CardName": inv["card_name"], "NumAtCard": None,
                "DocCurrency": inv["currency"], "DocRate": inv["doc_rate"],
                "DocTotal": inv["doc_total"], "DocTotalFc": inv["doc_total_fc"] if foreign else Decimal("0"),
                "VatSum": inv["vat_sum"], "VatSumFc": inv["vat_sum_fc"] if foreign else Decimal("0"),
                "PaidToDate": paid_local, "PaidToDateFC": paid_fc,
                "Comments": inv["edit_comment"] if edited else None,
                "Cancelled": "tYES" if cancelled else "tNO", "CancelStatus": "csCancelled" if cancelled else "csNo",
                "DocumentStatus": "bost_Close" if cancelled or settled else "bost_Open",
                "PaymentGroupCode": {30: 2, 60: 3}.get(inv["terms_days"], -1),
                "AddressExtension": {"BillToCountry": inv["country"], "BillToState": inv["region"],
                                     "ShipToCountry": inv["country"], "ShipToState": inv["region"]},
                "DocumentLines": [{
                    "LineNum": ln["line_num"], "ItemCode": ln["sku"], "ItemDescription": ln["title"],
                    "Quantity": Decimal(ln["quantity"]), "Price": ln["unit_price"], "UnitPrice": ln["unit_price"],
                    "Currency": inv["currency"], "LineTotal": ln["line_total_local"],
                    "RowTotalFC": ln["line_total_fc"] if foreign else Decimal("0"),
                    "VatGroup": inv["vat_group"], "TaxPercentagePerRow": inv["tax_rate"] * 100,
                    "TaxTotal": ln["tax_local"], "NetTaxAmountFC": ln["tax_fc"] if foreign else Decimal("0"),
                    "WarehouseCode": "01",
                } for ln in lines.get(inv["doc_entry"], [])],
            }
            out.append(doc)
            if cancelled:  # the cancellation document B1 adds
                c_date, c_time = _local(inv["cancelled_at"])
                out.append({**doc, "DocEntry": inv["cancel_doc_entry"], "DocNum": inv["cancel_doc_num"],
                            "DocDate": c_date, "TaxDate": c_date, "DocTime": c_time, "CreationDate": c_date,
                            "Cancelled": "tNO", "CancelStatus": "csCancellation", "DocumentStatus": "bost_Close",
                            "PaidToDate": Decimal("0"), "PaidToDateFC": Decimal("0"),
                            "Comments": f"Based on A/R Invoice {inv['doc_num']}."})
        out.sort(key=lambda d: d["DocEntry"])
        receipts = []
        for p in payments:
            foreign = p["currency"] != LOCAL
            d, t = _local(p["created_at"])
            receipts.append({
                "DocEntry": p["doc_entry"], "DocNum": p["doc_num"], "DocType": "rCustomer", "CardCode": p["customer_id"],
                "DocDate": p["doc_date"].isoformat(), "TaxDate": p["doc_date"].isoformat(), "DocTime": t,
                "CreationDate": d, "UpdateDate": d, "DocCurrency": p["currency"], "DocRate": p["doc_rate"],
                "TransferAccount": "161000", "TransferSum": p["amount"], "TransferDate": p["doc_date"].isoformat(),
                "TransferReference": p["reference"], "CashSum": Decimal("0"), "Cancelled": "tNO",
                "PaymentInvoices": [{"LineNum": 0, "DocEntry": p["invoice_doc_entry"], "InvoiceType": "it_Invoice",
                                     "SumApplied": p["amount_home"],
                                     "AppliedFC": p["amount"] if foreign else Decimal("0")}],
            })
        return out, receipts

    async def _get_invoices(self, request: Request, version: str, key: str | None, action: str | None) -> Response:
        docs = self._rendered()[0]
        return self._one(docs, key, "Invoices") if key else self._list(request, version, "Invoices", docs)

    async def _get_payments(self, request: Request, version: str, key: str | None, action: str | None) -> Response:
        docs = self._rendered()[1]
        return self._one(docs, key, "IncomingPayments") if key else self._list(request, version, "IncomingPayments", docs)

    # -- business partners --------------------------------------------------------------------------
    async def _get_partners(self, request: Request, version: str, key: str | None, action: str | None) -> Response:
        docs = self.store.partners()
        return self._one(docs, key, "BusinessPartners") if key else self._list(request, version, "BusinessPartners", docs)

    async def _post_partner(self, request: Request, version: str, key: str | None, action: str | None) -> Response:
        body = await _json_body(request)
        code = body.get("CardCode")
        if not isinstance(code, str) or not code.strip() or len(code) > 15:
            raise B1Error(400, -10, "Enter BP code (CardCode, at most 15 characters)")
        if body.get("CardType", "cCustomer") not in ("cCustomer", "cSupplier", "cLid"):
            raise B1Error(400, -1000, f"Enum value '{body.get('CardType')}' is invalid for property 'CardType'")
        currency = body.get("Currency", "##")
        if currency != "##" and currency not in CURRENCIES:
            raise B1Error(400, -10, f"Invalid currency code '{currency}'")
        doc = {"CardCode": code, "CardName": body.get("CardName"), "CardType": body.get("CardType", "cCustomer"),
               "Currency": currency, "EmailAddress": body.get("EmailAddress"), "Country": body.get("Country"),
               "FederalTaxID": body.get("FederalTaxID"), "Valid": "tYES", "Frozen": "tNO"}
        with self.store.tx() as con:
            if con.execute("SELECT 1 FROM partners WHERE card_code = ?", [code]).fetchone():
                raise B1Error(400, -2035, "This entry already exists in the following tables (ODBC -2035)")
            con.execute("INSERT INTO partners VALUES (?, ?)", [code, _dumps(doc)])
            B1Store.bump(con, "partners_created")
        await self._delay()
        return json_response(doc, 201)

    async def _patch_partner(self, request: Request, version: str, key: str | None, action: str | None) -> Response:
        if not key or action:
            raise B1Error(405, -1, "Method not allowed")
        code = key.strip("'").replace("''", "'")
        body = await _json_body(request)
        with self.store.tx() as con:
            row = con.execute("SELECT doc FROM partners WHERE card_code = ?", [code]).fetchone()
            if row is None:
                raise B1Error(404, -2028, "No matching records found (ODBC -2028)")
            doc = _loads(row[0])
            for name in ("CardName", "EmailAddress", "Country", "FederalTaxID"):
                if name in body:
                    doc[name] = body[name]
            con.execute("UPDATE partners SET doc = ? WHERE card_code = ?", [_dumps(doc), code])
            B1Store.bump(con, "partners_updated")
        await self._delay()
        return Response(status_code=204)

    # -- sales orders ------------------------------------------------------------------------------
    async def _get_orders(self, request: Request, version: str, key: str | None, action: str | None) -> Response:
        docs = self.store.orders()
        return self._one(docs, key, "Orders") if key else self._list(request, version, "Orders", docs)

    def _rate(self, currency: str, on: str) -> Decimal:
        if currency == LOCAL:
            return Decimal("1")
        key = (currency, on)
        if key not in self._rates:  # the world's rates do not change under a running emulator
            self._rates[key] = self._rate_from_world(currency, on)
        return self._rates[key]

    def _rate_from_world(self, currency: str, on: str) -> Decimal:
        row = self.db.execute("SELECT gbp_per_unit FROM fx_rates WHERE currency = ? AND rate_date <= ? "
                              "ORDER BY rate_date DESC LIMIT 1", [currency, on]).fetchone()
        if row is None:
            raise B1Error(400, -5002, f"Update the exchange rate for {currency} on {on}")
        return Decimal(str(row[0]))

    def _build_lines(self, lines: Any, currency: str, rate: Decimal) -> list[dict]:
        if not isinstance(lines, list) or not lines:
            raise B1Error(400, -5002, "Document must contain at least one row")
        out = []
        for n, line in enumerate(lines):
            if not isinstance(line, dict):
                raise B1Error(400, -1000, "DocumentLines must hold objects")
            item = line.get("ItemCode")
            if not isinstance(item, str) or not ITEM_CODE.match(item):
                raise B1Error(400, -10, f"[RDR1.ItemCode][line: {n + 1}] , 'Invalid item code: {item!r}'")
            qty, price = _number(line, "Quantity", n), _number(line, "UnitPrice", n)
            if qty is None or qty <= 0:
                raise B1Error(400, -10, f"[RDR1.Quantity][line: {n + 1}] , 'Enter a quantity greater than zero'")
            if price is None:
                raise B1Error(400, -10, f"[RDR1.Price][line: {n + 1}] , 'Enter a unit price'")
            group = line.get("VatGroup")
            if group not in VAT_GROUPS:
                raise B1Error(400, -10, f"[RDR1.VatGroup][line: {n + 1}] , 'Invalid tax group: {group!r}'")
            account = line.get("AccountCode")
            if account is not None and account not in GL_ACCOUNTS:
                raise B1Error(400, -10, f"[RDR1.AcctCode][line: {n + 1}] , 'Invalid G/L account: {account!r}'")
            given = _number(line, "LineTotal", n)
            total_fc = _q(given if given is not None else qty * price)
            tax_fc = _q(total_fc * VAT_GROUPS[group])
            foreign = currency != LOCAL
            out.append({"LineNum": n, "ItemCode": item, "ItemDescription": line.get("ItemDescription") or item,
                        "Quantity": qty, "UnitPrice": price, "Price": price, "Currency": currency,
                        "LineTotal": _q(total_fc * rate) if foreign else total_fc,
                        "RowTotalFC": total_fc if foreign else Decimal("0"), "VatGroup": group,
                        "TaxPercentagePerRow": VAT_GROUPS[group] * 100,
                        "TaxTotal": _q(tax_fc * rate) if foreign else tax_fc,
                        "NetTaxAmountFC": tax_fc if foreign else Decimal("0"),
                        "LineStatus": "bost_Open", "WarehouseCode": line.get("WarehouseCode") or "01",
                        **({"AccountCode": account} if account is not None else {})})
        return out

    @staticmethod
    def _totals(doc: dict) -> None:
        foreign = doc["DocCurrency"] != LOCAL
        lines = doc["DocumentLines"]
        doc["VatSum"] = sum((ln["TaxTotal"] for ln in lines), Decimal("0.00"))
        doc["DocTotal"] = sum((ln["LineTotal"] for ln in lines), Decimal("0.00")) + doc["VatSum"]
        doc["VatSumFc"] = sum((ln["NetTaxAmountFC"] for ln in lines), Decimal("0.00")) if foreign else Decimal("0")
        doc["DocTotalFc"] = (sum((ln["RowTotalFC"] for ln in lines), Decimal("0.00")) + doc["VatSumFc"]
                             if foreign else Decimal("0"))

    def _check_header(self, body: dict, con: sqlite3.Connection, doc_entry: int | None = None) -> None:
        code = body.get("CardCode")
        if doc_entry is None or "CardCode" in body:
            if not isinstance(code, str) or not con.execute("SELECT 1 FROM partners WHERE card_code = ?",
                                                             [code]).fetchone():
                raise B1Error(400, -10, f"Invalid BP code '{code}'")
        for name in ("DocDate", "DocDueDate"):
            if doc_entry is None or name in body:
                value = body.get(name)
                try:
                    date.fromisoformat(str(value)[:10])
                except ValueError:
                    raise B1Error(400, -10, "Enter delivery date" if name == "DocDueDate"
                                  else f"Enter a valid posting date ({name})") from None
        if (doc_entry is None or "DocCurrency" in body) and body.get("DocCurrency", LOCAL) not in CURRENCIES:
            raise B1Error(400, -10, f"Invalid currency code '{body.get('DocCurrency')}'")
        ref = body.get("NumAtCard")
        if ref is not None and (not isinstance(ref, str) or len(ref) > 100):
            raise B1Error(400, -10, "Customer reference (NumAtCard) must be text of at most 100 characters")
        if ref and self.block_duplicate_reference:
            clash = con.execute("SELECT doc_entry FROM orders WHERE num_at_card = ? AND doc_entry IS NOT ?",
                                [ref, doc_entry]).fetchone()
            if clash:
                raise B1Error(400, -5002, f"Customer reference number '{ref}' already exists in document "
                                          f"{clash[0]}; duplicates are blocked (Document Settings)")

    async def _post_order(self, request: Request, version: str, key: str | None, action: str | None) -> Response:
        if key and action == "Cancel":
            return await self._cancel_order(int(key))
        if key or action:
            raise B1Error(405, -1, "Method not allowed")
        body = await _json_body(request)
        with self.store.tx() as con:
            self._check_header(body, con)
            currency = body.get("DocCurrency", LOCAL)
            rate = self._rate(currency, str(body["DocDate"])[:10])
            card = _loads(con.execute("SELECT doc FROM partners WHERE card_code = ?", [body["CardCode"]]).fetchone()[0])
            entry = (con.execute("SELECT coalesce(max(doc_entry), 0) + 1 FROM orders").fetchone()[0])
            now_d, now_t = _local(datetime.now(UTC))
            doc = {"DocEntry": entry, "DocNum": FIRST_ORDER_NUM + entry, "DocType": "dDocument_Items",
                   "DocDate": str(body["DocDate"])[:10], "DocDueDate": str(body["DocDueDate"])[:10],
                   "TaxDate": str(body.get("TaxDate") or body["DocDate"])[:10],
                   "CardCode": body["CardCode"], "CardName": card.get("CardName"), "NumAtCard": body.get("NumAtCard"),
                   "DocCurrency": currency, "DocRate": rate, "Comments": body.get("Comments"),
                   "Cancelled": "tNO", "CancelStatus": "csNo", "DocumentStatus": "bost_Open",
                   "CreationDate": now_d, "UpdateDate": now_d, "UpdateTime": now_t,
                   "DocumentLines": self._build_lines(body.get("DocumentLines"), currency, rate)}
            self._totals(doc)
            con.execute("INSERT INTO orders VALUES (?, ?, ?)", [entry, doc["NumAtCard"], _dumps(doc)])
            B1Store.bump(con, "orders_created")
        await self._delay()
        if "return-no-content" in request.headers.get("prefer", ""):
            return Response(status_code=204)
        return json_response(doc, 201)

    async def _patch_order(self, request: Request, version: str, key: str | None, action: str | None) -> Response:
        if not key or not key.isdigit() or action:
            raise B1Error(405, -1, "Method not allowed")
        body = await _json_body(request)
        replace = request.headers.get("b1s-replacecollectionsonpatch", "").lower() == "true"
        with self.store.tx() as con:
            row = con.execute("SELECT doc FROM orders WHERE doc_entry = ?", [int(key)]).fetchone()
            if row is None:
                raise B1Error(404, -2028, "No matching records found (ODBC -2028)")
            doc = _loads(row[0])
            if doc["Cancelled"] == "tYES" or doc["DocumentStatus"] == "bost_Close":
                raise B1Error(400, -5002, "Cannot update a closed or cancelled document")
            self._check_header(body, con, int(key))
            for name in ("CardCode", "DocDate", "DocDueDate", "TaxDate", "NumAtCard", "Comments", "DocCurrency"):
                if name in body:
                    doc[name] = str(body[name])[:10] if name.endswith("Date") else body[name]
            if "DocCurrency" in body or "DocDate" in body:
                doc["DocRate"] = self._rate(doc["DocCurrency"], doc["DocDate"])
            foreign = doc["DocCurrency"] != LOCAL
            current = {ln["LineNum"]: _as_input(ln, foreign) for ln in doc["DocumentLines"]}
            if "DocumentLines" in body and replace:
                merged = body["DocumentLines"]
            else:  # B1 merges by LineNum; lines without LineNum are added; nothing is deleted
                added = []
                for ln in body.get("DocumentLines") or []:
                    if isinstance(ln, dict) and ln.get("LineNum") in current:
                        base = current[ln["LineNum"]]
                        if "LineTotal" not in ln and ("Quantity" in ln or "UnitPrice" in ln):
                            base.pop("LineTotal", None)
                        base.update(ln)
                    else:
                        added.append(ln)
                merged = list(current.values()) + added
            doc["DocumentLines"] = self._build_lines(merged, doc["DocCurrency"], Decimal(str(doc["DocRate"])))
            self._totals(doc)
            doc["UpdateDate"], doc["UpdateTime"] = _local(datetime.now(UTC))
            con.execute("UPDATE orders SET num_at_card = ?, doc = ? WHERE doc_entry = ?",
                        [doc["NumAtCard"], _dumps(doc), int(key)])
            B1Store.bump(con, "orders_updated")
        await self._delay()
        return Response(status_code=204)

    async def _cancel_order(self, entry: int) -> Response:
        with self.store.tx() as con:
            row = con.execute("SELECT doc FROM orders WHERE doc_entry = ?", [entry]).fetchone()
            if row is None:
                raise B1Error(404, -2028, "No matching records found (ODBC -2028)")
            doc = _loads(row[0])
            if doc["Cancelled"] == "tYES":
                raise B1Error(400, -5002, "Document is already cancelled")
            doc.update({"Cancelled": "tYES", "CancelStatus": "csCancelled", "DocumentStatus": "bost_Close"})
            doc["UpdateDate"], doc["UpdateTime"] = _local(datetime.now(UTC))
            con.execute("UPDATE orders SET doc = ? WHERE doc_entry = ?", [_dumps(doc), entry])
            B1Store.bump(con, "orders_cancelled")
        await self._delay()
        return Response(status_code=204)

    async def _delay(self) -> None:
        if self.write_delay_s:
            deferred = _DEFERRED_DELAY.get()
            if deferred is not None:  # inside a change set: after it commits
                deferred.append(self.write_delay_s)
            else:
                await asyncio.sleep(self.write_delay_s)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.store.counters(), "orders": len(self.store.orders()),
                "partners": len(self.store.partners())}


class _ChangeSetFailed(Exception):
    def __init__(self, answer: multipart.Message) -> None:
        super().__init__(answer.status)
        self.answer = answer


def _error_body(code: int, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": {"lang": "en-us", "value": message}}})


def _as_input(line: dict, foreign: bool) -> dict:
    """A stored line as a client would send it (LineTotal in the document currency)."""
    out = {k: line[k] for k in ("LineNum", "ItemCode", "ItemDescription", "Quantity", "UnitPrice", "VatGroup",
                                "WarehouseCode", "AccountCode") if k in line}
    out["LineTotal"] = line["RowTotalFC"] if foreign else line["LineTotal"]
    return out


def _number(line: dict, name: str, n: int) -> Decimal | None:
    value = line.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise B1Error(400, -1000, f"[RDR1.{name}][line: {n + 1}] , 'Value {value!r} is not a number'")
    try:
        return Decimal(str(value))
    except InvalidOperation:  # pragma: no cover
        raise B1Error(400, -1000, f"Invalid number for {name}") from None


async def _json_body(request: Request) -> dict:
    import json

    try:
        body = json.loads(await request.body(), parse_float=Decimal)
    except ValueError:
        raise B1Error(400, -1000, "Invalid JSON in the request body") from None
    if not isinstance(body, dict):
        raise B1Error(400, -1000, "The request body must be a JSON object")
    return body

"""FreshBooks Accounting API emulator: the making-up and fitting service's account, as of the clock.

Paths are FreshBooks' own (`POST /auth/oauth/token`, `/accounting/account/{accountId}/invoices/invoices`,
`/payments/payments`, `/users/clients`, `/events/account/{accountId}/events/callbacks`), so a client
only swaps the host.  What a client meets here, as on the real API:

- OAuth2: `authorization_code` is not needed in the sandbox; `refresh_token` grants (JSON or form
  body with client id and secret) return a new access token (12 h) and a new refresh token, the old
  one dead (single use).  `Authorization: Bearer` on every call, else 401 `unauthenticated`.
- Lists: `page` (1-based) / `per_page` (default 15, larger than 100 silently 100) and the envelope
  `{"response": {"result": {"invoices": [...], "page", "pages", "per_page", "total"}}}`; filters
  `search[updated_min|updated_max]` (date or `YYYY-MM-DD HH:MM:SS`, US/Eastern, inclusive),
  `search[invoice_number]`, `search[customerid]`, `search[invoiceid]`, `search[vis_state]` (only
  active documents unless asked for 1 = deleted or 2 = archived), `sort=updated_asc|updated_desc`,
  `include[]=lines` (lines are absent without it).
- Money `{"amount": "123.45", "code": "GBP"}` with string decimals; `updated` / `created_at` as
  naive US/Eastern text (the FreshBooks quirk).
- Writes (kept in `<sandbox>/freshbooks.sqlite`, `store.py`): clients, invoices (totals, outstanding,
  `payment_status`, `v3_status` computed), payments (against an active invoice, known `type`), soft
  delete with `vis_state: 1`; validation errors `{"response": {"errors": [{"errno", "field",
  "message", "object", "value"}]}}` (422; 404 errno 1012 for an unknown client or invoice).
- Rate limit: FreshBooks publishes none; the sandbox answers 429 past `MINUTE_LIMIT` calls a minute
  (compressed by `time_scale`), without `Retry-After`, as an undocumented limit would.
- Webhooks: callbacks can be registered and confirmed; `delivery(event, object_id)` builds a signed
  callback as FreshBooks sends it.
"""
from __future__ import annotations

import asyncio
import math
import time
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.freshbooks import webhooks
from finance_pipeline.platforms.freshbooks.store import FbStore
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
EASTERN = ZoneInfo("America/New_York")
DEFAULT_PER_PAGE, MAX_PER_PAGE = 15, 100
CURRENCIES = {"GBP", "EUR", "USD", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK", "JPY", "ZAR"}
PAYMENT_TYPES = {"Check", "Credit", "Cash", "Bank Transfer", "Credit Card", "Debit", "PayPal", "2Checkout", "VISA",
                 "MASTERCARD", "DISCOVER", "NOVA", "AMEX", "DINERS", "EUROCARD", "JCB", "ACH", "Other"}
CENT = Decimal("0.01")


def eastern(at: datetime | None) -> str | None:
    return at.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S") if at else None


def parse_eastern(text: str) -> datetime:
    text = text.strip()
    parsed = datetime.fromisoformat(text if len(text) > 10 else text + " 00:00:00")
    return (parsed.replace(tzinfo=EASTERN) if parsed.tzinfo is None else parsed).astimezone(UTC)


def money(x: Decimal | None, code: str) -> dict:
    return {"amount": f"{(x or Decimal(0)).quantize(CENT)}", "code": code}


class _Error(Exception):
    def __init__(self, status: int, errno: int, field: str, message: str, obj: str, value: Any = None) -> None:
        super().__init__(message)
        self.status, self.body = status, {"response": {"errors": [
            {"errno": errno, "field": field, "message": message, "object": obj,
             "value": None if value is None else str(value)}]}}


def _dec(value: Any, field: str, obj: str) -> Decimal:
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise _Error(422, 2001, field, f"Invalid value for field {field}.", obj, value) from None
    if not out.is_finite():
        raise _Error(422, 2001, field, f"Invalid value for field {field}.", obj, value)
    return out


def _date(value: Any, field: str, obj: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _Error(422, 2001, field, f"Invalid date for field {field}.", obj, value) from None


class FreshBooksEmulator(Emulator):
    name = "freshbooks"
    MINUTE_LIMIT = 300

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        try:
            seed = sandbox.state().seed
        except Exception:  # noqa: BLE001 - no sandbox state yet: the default seed
            seed = 42
        self.store = FbStore(sandbox.root / "freshbooks.sqlite", seed)
        self._minute = SlidingWindow(self.MINUTE_LIMIT, 60, self.config.time_scale)
        self.write_delay_s = 0.0
        self._view_cache: tuple[Any, _WorldView] | None = None

    # -- what clients and tests use ------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        s = self.store
        return {"client_id": s.client_id, "client_secret": s.client_secret, "refresh_token": s.initial_refresh_token,
                "account_id": s.account_id, "token_url": f"{self.base_url}/auth/oauth/token",
                "webhook_verifier": s.verifier}

    def delivery(self, event: str, object_id: int) -> tuple[dict[str, str], bytes]:
        form = {"name": event, "object_id": str(object_id), "account_id": self.store.account_id,
                "business_id": "7117", "identity_id": "9120", "user_id": "1"}
        return webhooks.delivery(form, self.store.verifier)

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(self.store.counters())
        return out

    def routes(self) -> list[Route]:
        acct = "/accounting/account/{account}"
        return [
            Route("/auth/oauth/token", self._token, methods=["POST"]),
            Route(f"{acct}/invoices/invoices", self._invoices, methods=["GET", "POST"]),
            Route(f"{acct}/invoices/invoices/{{doc_id:int}}", self._invoice, methods=["GET", "PUT"]),
            Route(f"{acct}/payments/payments", self._payments, methods=["GET", "POST"]),
            Route(f"{acct}/payments/payments/{{doc_id:int}}", self._payment, methods=["GET", "PUT"]),
            Route(f"{acct}/users/clients", self._clients, methods=["GET", "POST"]),
            Route(f"{acct}/users/clients/{{doc_id:int}}", self._client, methods=["GET", "PUT"]),
            Route("/events/account/{account}/events/callbacks", self._callbacks, methods=["GET", "POST"]),
            Route("/events/account/{account}/events/callbacks/{doc_id:int}", self._callback, methods=["PUT"]),
        ]

    def faults_apply(self, method: str, path: str) -> bool:
        return path.startswith("/accounting/")

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return json_response({"response": {"errors": [{"errno": 429, "message": "Too many requests"}]}}, 429)
        return json_response({"response": {"errors": [{"errno": status, "message": "Internal Server Error"}]}},
                             status)

    def rate_limit(self, request: Request) -> Response | None:
        if self.config.enforce_rate_limits and self._minute.try_acquire() > 0:
            return self.refuse(self.fault_response(429))
        return None

    # -- gatekeeping -----------------------------------------------------------------------------
    def _gate(self, request: Request) -> None:
        refused = self.rate_limit(request)
        if refused is not None:
            raise _Refused(refused)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.store.access_ok(token.strip()):
            raise _Refused(json_response({"error": "unauthenticated", "error_type": "unauthenticated",
                                          "message": "This action requires authentication to continue."}, 401))
        if request.path_params.get("account") != self.store.account_id:
            raise _Refused(json_response({"response": {"errors": [
                {"errno": 1003, "field": "accountid", "message": "The server could not verify that you are "
                 "authorized to access the URL requested.", "object": "account",
                 "value": request.path_params.get("account")}]}}, 401))

    async def _handle(self, request: Request, fn) -> Response:  # noqa: ANN001
        try:
            self._gate(request)
            body = None
            if request.method in ("POST", "PUT"):
                try:
                    body = orjson.loads(await request.body() or b"{}")
                except orjson.JSONDecodeError:
                    raise _Error(400, 2000, "body", "Malformed JSON.", "request") from None
            response = fn(request, body)
            if body is not None and self.write_delay_s:
                await asyncio.sleep(self.write_delay_s)  # tests: the write is committed, the answer late
            return response
        except _Refused as r:
            return r.response
        except _Error as e:
            return json_response(e.body, e.status)

    # -- OAuth -----------------------------------------------------------------------------------
    async def _token(self, request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            form = orjson.loads(raw or b"{}")
        else:
            form = dict(parse_qsl(raw.decode()))
        if form.get("client_id") != self.store.client_id or form.get("client_secret") != self.store.client_secret:
            return json_response({"error": "invalid_client", "error_description": "Client authentication failed "
                                  "due to unknown client, no client authentication included, or unsupported "
                                  "authentication method."}, 401)
        if form.get("grant_type") != "refresh_token":
            return json_response({"error": "unsupported_grant_type", "error_description": "The authorization "
                                  "grant type is not supported by the authorization server."}, 400)
        issued = self.store.exchange_refresh(str(form.get("refresh_token") or ""))
        if issued is None:
            return json_response({"error": "invalid_grant", "error_description": "The provided authorization grant "
                                  "is invalid, expired, revoked, does not match the redirection URI used in the "
                                  "authorization request, or was issued to another client."}, 400)
        return json_response(issued)

    # -- the world as of the clock ---------------------------------------------------------------
    def _world(self) -> tuple[list[dict], list[dict], list[dict]]:
        if not self.sandbox.exists():  # a destination-only sandbox (publish tests): nothing raised here
            return [], [], []
        clock = self.sandbox.clock
        db = self.db
        try:
            def rows(sql: str) -> list[dict]:
                cur = db.execute(sql, [clock])
                cols = [d[0] for d in cur.description]
                return [dict(zip(cols, r)) for r in cur.fetchall()]
            invoices = rows("select * from freshbooks_invoices where created_at <= ? order by invoice_id")
            lines = rows("select l.* from freshbooks_invoice_lines l join freshbooks_invoices i using (invoice_id) "
                         "where i.created_at <= ? order by invoice_id, position")
            payments = rows("select * from freshbooks_payments where paid_at <= ? order by payment_id")
            clients = rows("select * from freshbooks_clients where created_at <= ? order by client_id")
        except Exception as exc:  # noqa: BLE001 - a world built before this channel existed
            if "freshbooks_" in str(exc):
                return [], [], []
            raise
        finally:
            db.close()
        acct = self.store.account_id
        by_invoice: dict[int, list[dict]] = {}
        for l in lines:
            by_invoice.setdefault(l["invoice_id"], []).append(l)
        paid: dict[int, list[dict]] = {}
        for p in payments:
            paid.setdefault(p["invoice_id"], []).append(p)
        client_by_id = {c["client_id"]: c for c in clients}
        out_inv = []
        for inv in invoices:
            pays = paid.get(inv["invoice_id"], [])
            voided = inv["voided_at"] is not None and inv["voided_at"] <= clock
            edited = inv["edited_at"] is not None and inv["edited_at"] <= clock
            updated = max([inv["created_at"]] + [p["paid_at"] for p in pays]
                          + ([inv["voided_at"]] if voided else []) + ([inv["edited_at"]] if edited else []))
            notes = [inv["edit_note"]] if edited else []
            if inv["currency"] != "GBP":
                notes.append(f"Sterling rate {inv['fx_rate']:.6f} GBP/{inv['currency']} "
                             f"({inv['create_date'].isoformat()})")
            c = client_by_id.get(inv["client_id"], {})
            doc = {
                "id": inv["invoice_id"], "invoiceid": inv["invoice_id"], "accountid": acct,
                "invoice_number": inv["invoice_number"], "customerid": inv["client_id"],
                "organization": c.get("organization"), "fname": c.get("fname"), "lname": c.get("lname"),
                "country": c.get("country"), "vat_number": c.get("vat_number"), "currency_code": inv["currency"],
                "create_date": inv["create_date"].isoformat(), "due_offset_days": inv["terms_days"],
                "due_date": inv["due_on"].isoformat(), "created_at": eastern(inv["created_at"]),
                "updated": eastern(updated), "vis_state": 1 if voided else 0, "po_number": None,
                "notes": "\n".join(notes), "terms": f"Payment due within {inv['terms_days']} days",
                "discount_value": "0", "lines": [self._world_line(l, inv["currency"])
                                                 for l in by_invoice.get(inv["invoice_id"], [])],
            }
            out_inv.append(self._totals(doc, [(p["amount"], False) for p in pays]))
        out_pay = []
        for p in payments:
            out_pay.append({
                "id": p["payment_id"], "paymentid": p["payment_id"], "invoiceid": p["invoice_id"],
                "clientid": p["client_id"], "accounting_systemid": acct,
                "amount": money(p["amount"], p["currency"]), "date": p["paid_on"].isoformat(),
                "type": "Bank Transfer", "updated": eastern(p["paid_at"]), "vis_state": 0,
                "note": p["reference"] + (f"; GBP {p['amount_gbp']:.2f} credited" if p["currency"] != "GBP" else ""),
            })
        out_cli = [{
            "id": c["client_id"], "userid": c["client_id"], "accounting_systemid": acct,
            "organization": c["organization"], "fname": c["fname"], "lname": c["lname"], "email": c["email"],
            "p_country": c["country"], "currency_code": c["currency"], "vat_number": c["vat_number"],
            "note": c["customer_id"], "updated": eastern(c["created_at"]), "vis_state": 0,
        } for c in clients]
        return out_inv, out_pay, out_cli

    @staticmethod
    def _world_line(l: dict, ccy: str) -> dict:
        return {"lineid": l["position"], "type": 0, "name": l["name"], "description": l["description"],
                "qty": str(l["qty"]), "unit_cost": money(l["unit_cost"], ccy), "amount": money(l["amount"], ccy),
                "taxName1": l["tax_name"] or "", "taxAmount1": f"{l['tax_rate'] * 100:f}".rstrip("0").rstrip(".")
                if l["tax_name"] else "0", "taxName2": "", "taxAmount2": "0"}

    def _totals(self, doc: dict, payments: list[tuple[Decimal, bool]]) -> dict:
        ccy = doc["currency_code"]
        subtotal = tax = Decimal(0)
        for line in doc["lines"]:
            amount = Decimal(line["amount"]["amount"])
            subtotal += amount
            for n in ("1", "2"):
                pct = Decimal(str(line.get("taxAmount" + n) or "0"))
                tax += (amount * pct / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        total = subtotal + tax
        paid = sum((a for a, _ in payments), Decimal(0))
        outstanding = max(total - paid, Decimal(0))
        status = "paid" if paid >= total and total > 0 else ("partial" if paid > 0 else "unpaid")
        overdue = date.fromisoformat(doc["due_date"]) < self._now().date() if status != "paid" else False
        doc.update({
            "amount": money(total, ccy), "outstanding": money(outstanding, ccy), "paid": money(paid, ccy),
            "payment_status": status, "v3_status": {"paid": "paid", "partial": "partial"}.get(
                status, "overdue" if overdue else "sent"),
            "status": {"paid": 4, "partial": 7}.get(status, 2),
        })
        return doc

    def _world_key(self) -> tuple:
        """What the rendered world (and the invoices' overdue status) depends on: the world store and
        the clock; without a sandbox, today."""
        if self.sandbox.exists():
            return str(self.sandbox.world_path()), self.sandbox.clock
        return None, datetime.now(UTC).date()

    def _view(self) -> "_WorldView":
        """The world as of the clock, rendered once per (world, clock) and indexed: a request looks a
        world document up instead of rendering the whole account again."""
        key = self._world_key()
        cached = self._view_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        view = _WorldView(*self._world())
        self._view_cache = (key, view)
        return view

    def _with_totals(self, invoices: list[dict], payments: list[dict] | None = None) -> list[dict]:
        """Written invoices with their amount, outstanding and status from their active written
        payments (`payments`: all of them, when the caller holds them; else each invoice's, by index)."""
        if payments is None:
            pays = {d["id"]: self.store.find("payments", "invoiceid", str(d["id"])) for d in invoices}
        else:
            pays = {}
            for p in payments:
                pays.setdefault(p["invoiceid"], []).append(p)
        return [self._totals(d, [(Decimal(p["amount"]["amount"]), True) for p in pays.get(d["id"], [])
                                 if p["vis_state"] == 0]) for d in invoices]

    def _all(self, kind: str, exact: dict[str, str] | None = None) -> list[dict]:
        """Every document of `kind` (the world's, then the written ones), or with `exact` ({field:
        value} of the API's exact-match searches) only those matching, found through the indexes."""
        view = self._view()
        if exact:
            field, value = next(iter(exact.items()))
            world = view.by(kind, field).get(value, [])
            written = self.store.find(kind, field, value)
            keep = lambda d: all(str(d.get(k)) == v for k, v in exact.items())  # noqa: E731
            world, written = [d for d in world if keep(d)], [d for d in written if keep(d)]
            if kind == "invoices" and written:
                written = self._with_totals(written)
        else:
            world, written = view.docs[kind], self.store.all(kind)
            if kind == "invoices" and written:
                written = self._with_totals(written, self.store.all("payments"))
        return world + written

    # -- lists -------------------------------------------------------------------------------------
    def _list(self, request: Request, kind: str) -> Response:
        qp = request.query_params
        try:
            page = max(1, int(qp.get("page", "1")))
            per_page = min(MAX_PER_PAGE, max(1, int(qp.get("per_page", str(DEFAULT_PER_PAGE)))))
        except ValueError:
            raise _Error(400, 2001, "page", "Invalid paging parameter.", kind) from None
        exact = {key: qp.get(f"search[{field}]") for field, key in (
            ("invoice_number", "invoice_number"), ("customerid", "customerid"), ("invoiceid", "invoiceid"))
            if qp.get(f"search[{field}]") is not None}
        if exact:  # a look-up: found through the indexes, nothing to keep
            docs = self._select(qp, kind, exact)
        else:  # a listing: selected and sorted once per (query, clock, account contents), then paged
            key = (kind, sorted((k, v) for k, v in qp.multi_items() if k not in ("page", "per_page")),
                   self._world_key(), self.store.version())
            docs = self.pages.get(key, lambda: self._select(qp, kind, None))[1]
        total = len(docs)
        pages = max(1, math.ceil(total / per_page))
        chunk = docs[(page - 1) * per_page: page * per_page]
        if self.duplicate_page(request) and page > 1:
            chunk = docs[(page - 2) * per_page: (page - 1) * per_page]
        self.counters["documents_served"] += len(chunk)
        return json_response({"response": {"result": {kind: chunk, "page": page, "pages": pages,
                                                      "per_page": per_page, "total": total}}})

    def _select(self, qp: Any, kind: str, exact: dict[str, str] | None) -> list[dict]:
        """The documents a list query asks for (its filters, sort and `include[]`), not yet paged."""
        docs = self._all(kind, exact)
        vis = qp.get("search[vis_state]")
        wanted = {int(vis)} if vis not in (None, "") else {0}
        docs = [d for d in docs if d.get("vis_state", 0) in wanted]
        try:
            lo = parse_eastern(qp["search[updated_min]"]) if qp.get("search[updated_min]") else None
            hi = parse_eastern(qp["search[updated_max]"]) if qp.get("search[updated_max]") else None
        except ValueError:
            raise _Error(400, 2001, "updated_min", "Invalid date.", kind) from None
        if lo or hi:
            docs = [d for d in docs if (lo is None or parse_eastern(d["updated"]) >= lo)
                    and (hi is None or parse_eastern(d["updated"]) <= hi)]
        for field, key in (("invoice_number", "invoice_number"), ("customerid", "customerid"),
                           ("invoiceid", "invoiceid"), ("email", "email"), ("note", "note")):
            value = qp.get(f"search[{field}]")
            if value is not None:
                docs = [d for d in docs if str(d.get(key)) == value]
        ids = qp.getlist("search[invoiceids][]")
        if ids:
            docs = [d for d in docs if str(d.get("id")) in set(ids)]
        sort = qp.get("sort", "")
        if sort.startswith("updated"):
            docs.sort(key=lambda d: (parse_eastern(d["updated"]), d["id"]), reverse=sort.endswith("desc"))
        else:
            docs.sort(key=lambda d: d["id"], reverse=True)
        if kind == "invoices" and "lines" not in qp.getlist("include[]"):
            docs = [{k: v for k, v in d.items() if k != "lines"} for d in docs]
        return docs

    def _one(self, kind: str, singular: str, doc_id: int) -> dict:
        written = self.store.get(kind, doc_id)
        if written is not None:
            return self._with_totals([written])[0] if kind == "invoices" else written
        for d in self._view().by(kind, "id").get(str(doc_id), []):
            return d
        raise _Error(404, 1012, singular + "id", f"{singular.capitalize()} not found.", singular, doc_id)

    # -- invoices ------------------------------------------------------------------------------------
    async def _invoices(self, request: Request) -> Response:
        return await self._handle(request, lambda r, b: self._list(r, "invoices") if r.method == "GET"
                                  else self._write_invoice(None, b))

    async def _invoice(self, request: Request) -> Response:
        doc_id = request.path_params["doc_id"]
        return await self._handle(request, lambda r, b: json_response({"response": {"result": {
            "invoice": self._one("invoices", "invoice", doc_id)}}}) if r.method == "GET"
            else self._write_invoice(doc_id, b))

    def _now(self) -> datetime:
        return self.sandbox.clock if self.sandbox.exists() else datetime.now(UTC)

    def _write_invoice(self, doc_id: int | None, body: dict) -> Response:
        data = (body or {}).get("invoice")
        if not isinstance(data, dict):
            raise _Error(400, 2000, "invoice", "Missing invoice object.", "invoice")
        if doc_id is not None:
            current = self.store.get("invoices", doc_id)
            if current is None:
                self._one("invoices", "invoice", doc_id)  # 404 when unknown
                raise _Error(422, 2006, "invoiceid", "Invoices raised in FreshBooks are not editable in the "
                             "sandbox.", "invoice", doc_id)
            merged = {**current, **{k: v for k, v in data.items() if k != "lines"}}
            if "lines" in data:
                merged["lines"] = data["lines"]
        else:
            merged = dict(data)
        doc = self._validate_invoice(merged)
        doc["id"] = doc["invoiceid"] = doc_id
        doc["accountid"] = self.store.account_id
        now = self._now()
        doc["created_at"] = (current.get("created_at") if doc_id is not None else None) or eastern(now)
        doc["updated"] = eastern(now)
        self.store.put("invoices", doc, time.time(), ("id", "invoiceid"))
        return json_response({"response": {"result": {"invoice": self._with_totals([dict(doc)])[0]}}})

    def _validate_invoice(self, d: dict) -> dict:
        cid = d.get("customerid")
        if cid in (None, ""):
            raise _Error(422, 2002, "customerid", "Field customerid is required.", "invoice")
        client = None
        if str(cid).isdigit():
            client = self.store.get("clients", int(cid)) or next(
                iter(self._view().by("clients", "id").get(str(int(cid)), [])), None)
        if client is None:
            raise _Error(404, 1012, "userid", "Client not found.", "client", cid)
        ccy = str(d.get("currency_code") or (client or {}).get("currency_code") or "")
        if ccy not in CURRENCIES:
            raise _Error(422, 2001, "currency_code", "Invalid currency code.", "invoice", ccy)
        created = _date(d.get("create_date"), "create_date", "invoice")
        offset = int(_dec(d.get("due_offset_days", 0), "due_offset_days", "invoice"))
        lines = []
        for i, line in enumerate(d.get("lines") or [], start=1):
            if not line.get("name"):
                raise _Error(422, 2002, "name", "Field name is required.", "line")
            qty = _dec(line.get("qty", 1), "qty", "line")
            unit = _dec((line.get("unit_cost") or {}).get("amount"), "unit_cost", "line")
            for n in ("1", "2"):
                _dec(line.get("taxAmount" + n) or "0", "taxAmount" + n, "line")
            lines.append({**line, "lineid": i, "type": 0, "qty": str(qty),
                          "unit_cost": money(unit, ccy), "amount": money((qty * unit).quantize(CENT), ccy),
                          "taxName1": line.get("taxName1") or "", "taxAmount1": str(line.get("taxAmount1") or "0"),
                          "taxName2": line.get("taxName2") or "", "taxAmount2": str(line.get("taxAmount2") or "0")})
        return {**d, "customerid": int(cid), "currency_code": ccy, "create_date": created.isoformat(),
                "due_offset_days": offset, "due_date": date.fromordinal(created.toordinal() + offset).isoformat(),
                "vis_state": int(d.get("vis_state") or 0), "lines": lines,
                "invoice_number": str(d.get("invoice_number") or self.store.next_id())}

    # -- payments ------------------------------------------------------------------------------------
    async def _payments(self, request: Request) -> Response:
        return await self._handle(request, lambda r, b: self._list(r, "payments") if r.method == "GET"
                                  else self._write_payment(None, b))

    async def _payment(self, request: Request) -> Response:
        doc_id = request.path_params["doc_id"]
        return await self._handle(request, lambda r, b: json_response({"response": {"result": {
            "payment": self._one("payments", "payment", doc_id)}}}) if r.method == "GET"
            else self._write_payment(doc_id, b))

    def _write_payment(self, doc_id: int | None, body: dict) -> Response:
        data = (body or {}).get("payment")
        if not isinstance(data, dict):
            raise _Error(400, 2000, "payment", "Missing payment object.", "payment")
        if doc_id is not None:
            current = self.store.get("payments", doc_id)
            if current is None:
                self._one("payments", "payment", doc_id)
                raise _Error(422, 2006, "paymentid", "Payment is read-only in the sandbox.", "payment", doc_id)
            merged = {**current, **data}
        else:
            merged = dict(data)
        invoice = self.store.get("invoices", int(merged.get("invoiceid") or 0))
        if invoice is None:
            raise _Error(404, 1012, "invoiceid", "Invoice not found.", "invoice", merged.get("invoiceid"))
        if invoice.get("vis_state") == 1 and int(merged.get("vis_state") or 0) == 0:
            raise _Error(422, 2006, "invoiceid", "Cannot add a payment to a deleted invoice.", "payment",
                         merged.get("invoiceid"))
        amount = _dec((merged.get("amount") or {}).get("amount"), "amount", "payment")
        if amount <= 0:
            raise _Error(422, 2001, "amount", "Payment amount must be greater than zero.", "payment", amount)
        paid_on = _date(merged.get("date"), "date", "payment")
        ptype = merged.get("type") or "Check"
        if ptype not in PAYMENT_TYPES:
            raise _Error(422, 2001, "type", "Invalid payment type.", "payment", ptype)
        doc = {**merged, "invoiceid": invoice["id"], "clientid": invoice["customerid"], "type": ptype,
               "amount": money(amount, invoice["currency_code"]), "date": paid_on.isoformat(),
               "vis_state": int(merged.get("vis_state") or 0), "accounting_systemid": self.store.account_id}
        doc["id"] = doc["paymentid"] = doc_id
        doc["updated"] = eastern(self._now())
        self.store.put("payments", doc, time.time(), ("id", "paymentid"))
        return json_response({"response": {"result": {"payment": doc}}})

    # -- clients ---------------------------------------------------------------------------------------
    async def _clients(self, request: Request) -> Response:
        return await self._handle(request, lambda r, b: self._list(r, "clients") if r.method == "GET"
                                  else self._write_client(None, b))

    async def _client(self, request: Request) -> Response:
        doc_id = request.path_params["doc_id"]
        return await self._handle(request, lambda r, b: json_response({"response": {"result": {
            "client": self._one("clients", "client", doc_id)}}}) if r.method == "GET"
            else self._write_client(doc_id, b))

    def _write_client(self, doc_id: int | None, body: dict) -> Response:
        data = (body or {}).get("client")
        if not isinstance(data, dict):
            raise _Error(400, 2000, "client", "Missing client object.", "client")
        current = self.store.get("clients", doc_id) if doc_id is not None else {}
        if doc_id is not None and current is None:
            self._one("clients", "client", doc_id)
            raise _Error(422, 2006, "userid", "Client is read-only in the sandbox.", "client", doc_id)
        doc = {**current, **data}
        if not (doc.get("organization") or doc.get("fname") or doc.get("lname") or doc.get("email")):
            raise _Error(422, 2002, "organization", "A client needs a name, an organization or an email.", "client")
        ccy = doc.get("currency_code") or "GBP"
        if ccy not in CURRENCIES:
            raise _Error(422, 2001, "currency_code", "Invalid currency code.", "client", ccy)
        doc["currency_code"] = ccy
        doc["vis_state"] = int(doc.get("vis_state") or 0)
        doc["id"] = doc["userid"] = doc_id
        doc["accounting_systemid"] = self.store.account_id
        doc["updated"] = eastern(self._now())
        self.store.put("clients", doc, time.time(), ("id", "userid"))
        return json_response({"response": {"result": {"client": doc}}})

    # -- webhook callbacks ------------------------------------------------------------------------------
    async def _callbacks(self, request: Request) -> Response:
        def go(r: Request, b: dict | None) -> Response:
            if r.method == "GET":
                docs = self.store.all("callbacks")
                return json_response({"response": {"result": {"callbacks": docs, "page": 1, "pages": 1,
                                                              "per_page": len(docs), "total": len(docs)}}})
            cb = (b or {}).get("callback") or {}
            if not cb.get("event") or not str(cb.get("uri", "")).startswith("https://"):
                raise _Error(422, 2002, "uri", "A callback needs an event and an https uri.", "callback")
            doc = {"callbackid": None, "event": cb["event"], "uri": cb["uri"], "verified": False}
            self.store.put("callbacks", doc, time.time(), ("callbackid",))
            return json_response({"response": {"result": {"callback": doc}}})
        return await self._handle(request, go)

    async def _callback(self, request: Request) -> Response:
        doc_id = request.path_params["doc_id"]

        def go(r: Request, b: dict | None) -> Response:
            doc = self.store.get("callbacks", doc_id)
            if doc is None:
                raise _Error(404, 1012, "callbackid", "Callback not found.", "callback", doc_id)
            cb = (b or {}).get("callback") or {}
            if "verifier" in cb:
                if cb["verifier"] != self.store.verifier:
                    raise _Error(422, 2001, "verifier", "Invalid verifier.", "callback")
                doc["verified"] = True
            self.store.put("callbacks", doc, time.time(), ("callbackid",))
            return json_response({"response": {"result": {"callback": doc}}})
        return await self._handle(request, go)


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


class _WorldView:
    """The world's invoices, payments and clients as of one clock, with lazily built exact-match
    indexes (`by(kind, field)`: the field's text → its documents, in the world's order)."""

    def __init__(self, invoices: list[dict], payments: list[dict], clients: list[dict]) -> None:
        self.docs = {"invoices": invoices, "payments": payments, "clients": clients}
        self._index: dict[tuple[str, str], dict[str, list[dict]]] = {}

    def by(self, kind: str, field: str) -> dict[str, list[dict]]:
        index = self._index.get((kind, field))
        if index is None:
            index = {}
            for d in self.docs[kind]:
                index.setdefault(str(d.get(field)), []).append(d)
            self._index[(kind, field)] = index
        return index

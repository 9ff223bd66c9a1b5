"""Zoho Books emulator: Zoho Accounts' token endpoint and Books API v3 on one loopback port.

Paths are Zoho's own (`POST /oauth/v2/token`, `/books/v3/invoices`, `/books/v3/customerpayments`,
`/books/v3/contacts`, `/books/v3/settings/{currencies,taxes,taxexemptions}`, `/books/v3/chartofaccounts`),
so a client swaps
only the host.  What a client meets here, as on the real API:

- **Auth.**  Refresh-token grant (form `client_id`, `client_secret`, `refresh_token`), answered
  with `access_token`, `api_domain`, `expires_in` 3600; the refresh token is not rotated.
  `Authorization: Zoho-oauthtoken <token>` on every call (a `Bearer` header or an unknown token:
  401 code 57); `organization_id` on every call (missing or wrong: 400 code 6041).
- **As of the clock.**  The desk's invoices (world tables `zoho_books_*`) appear once raised; a
  line added later appears then; payments recorded by the clock reduce `balance`; status is
  `sent` / `overdue` / `partially_paid` / `paid` / `void`; `last_modified_time` is the latest of
  creation, edit, void and payment.  Times are in the org's time zone with an offset.
- **Lists.**  `page` / `per_page` (≤ 200), `page_context.has_more_page`; invoices filter on
  `last_modified_time` (at or after), `invoice_number`, `customer_id`, `filter_by=Status.*`, sort
  by `sort_column` / `sort_order`; list rows carry no `line_items` (GET one invoice for them);
  customer payments filter on `date_start` / `date_end` (payment date) and `reference_number`.
- **Writes** (kept in `<sandbox>/zoho_books.sqlite`, see `store.py`, and listed with the desk's
  own documents): contacts (`contact_name` unique, `currency_id` required), invoices
  (`ignore_auto_number_generation=true` + `invoice_number`, duplicate → code 1001; `customer_id`,
  `line_items` with `rate` / `quantity` / `discount` amount and `tax_id` or `tax_exemption_id`, and
  optionally the `account_id` the line posts to (one of the chart of accounts, else refused);
  tax per line at the tax's percentage, rounded per line), PUT updates, `status/void` (refused
  while payments are applied), customer payments applied to invoices (≤ the balance), PUT and DELETE.
- **Limits.**  100 requests per minute per organisation (compressed by `time_scale`) → 429 code 44,
  more than 10 calls in flight → 429 code 45; neither sends `Retry-After`.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import ConcurrencyLimiter, SlidingWindow
from finance_pipeline.platforms.zoho_books import wire
from finance_pipeline.platforms.zoho_books.store import ZohoStore
from finance_pipeline.platforms.zoho_books.world import ORG_ID
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.sandbox.world import business_date

API = wire.API
D = Decimal
ZERO = D("0.00")
CURRENCIES = {"GBP": "460000000000099", "EUR": "460000000000103", "USD": "460000000000107",
              "AUD": "460000000000109"}
TAXES = [  # the UK organisation's VAT rates
    {"tax_id": "460000000031001", "tax_name": "Standard Rate", "tax_percentage": D("20"), "tax_type": "tax"},
    {"tax_id": "460000000031003", "tax_name": "Reduced Rate", "tax_percentage": D("5"), "tax_type": "tax"},
    {"tax_id": "460000000031005", "tax_name": "Zero Rate", "tax_percentage": D("0"), "tax_type": "tax"},
]
EXEMPTIONS = [
    {"tax_exemption_id": "460000000032001", "tax_exemption_code": "REVERSECHARGE",
     "description": "EU B2B supply: reverse charge (customer accounts for VAT)", "type": "customer"},
    {"tax_exemption_id": "460000000032003", "tax_exemption_code": "EXPORT",
     "description": "Export outside the UK: zero-rated", "type": "customer"},
    {"tax_exemption_id": "460000000032005", "tax_exemption_code": "RESALE",
     "description": "US resale certificate: exempt", "type": "customer"},
    # how a UK organisation selling in the US sets up its US division's invoices: the goods are outside
    # the scope of UK VAT, the state's sales tax goes on its own line to a liability account
    {"tax_exemption_id": "460000000032007", "tax_exemption_code": "OUTOFSCOPE",
     "description": "Outside the scope of UK VAT (US sales, state sales tax applies)", "type": "item"},
]
ACCOUNTS = [  # the organisation's chart of accounts, as far as invoice lines post to it
    {"account_id": "460000000000388", "account_name": "Sales", "account_code": "4000", "account_type": "income",
     "is_active": True},
    {"account_id": "460000000000391", "account_name": "Shipping Charge", "account_code": "4025",
     "account_type": "income", "is_active": True},
    {"account_id": "460000000045001", "account_name": "US Sales Tax Payable", "account_code": "2220",
     "account_type": "other_current_liability", "is_active": True},
]
ACCOUNT_IDS = {a["account_id"] for a in ACCOUNTS}
TAX_BY_ID = {t["tax_id"]: t for t in TAXES}
EXEMPTION_IDS = {e["tax_exemption_id"] for e in EXEMPTIONS}
PAYMENT_MODES = ("banktransfer", "cash", "check", "creditcard", "bankremittance", "autotransaction", "others")
SORT_COLUMNS = {"last_modified_time", "created_time", "date", "invoice_number", "customer_name", "due_date", "total"}
STATUS_FILTERS = {"Status.All": None, "Status.Sent": {"sent"}, "Status.Overdue": {"overdue"},
                  "Status.Paid": {"paid"}, "Status.Void": {"void"},
                  "Status.Unpaid": {"sent", "overdue", "partially_paid"},
                  "Status.PartiallyPaid": {"partially_paid"}, "Status.Draft": {"draft"}}


def q(x: Decimal) -> Decimal:
    return x.quantize(D("0.01"), rounding=ROUND_HALF_UP)


class ZohoError(Exception):
    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def response(self) -> Response:
        return json_response({"code": self.code, "message": self.message}, self.status)


def _invalid(message: str) -> ZohoError:
    return ZohoError(wire.INVALID_VALUE, message)


def _dec(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None or value == "":
        raise _invalid(f"Invalid value passed for {field}")
    try:
        return D(str(value))
    except ArithmeticError:
        raise _invalid(f"Invalid value passed for {field}") from None


def _date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except (TypeError, ValueError):
        raise _invalid(f"Invalid value passed for {field}") from None


class ZohoBooksEmulator(Emulator):
    name = "zoho_books"
    MINUTE_LIMIT = 100
    CONCURRENCY = 10

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.store = ZohoStore(sandbox.root / "zoho_books.sqlite")
        self._minute = SlidingWindow(self.MINUTE_LIMIT, 60, self.config.time_scale)
        self._inflight = ConcurrencyLimiter(self.CONCURRENCY)
        self._tokens: set[str] = set()
        self.token_exchanges = 0
        self.write_delay_s = 0.0
        seed = sandbox.state().seed
        digest = hashlib.blake2b(f"zoho-books:{seed}".encode(), digest_size=48).hexdigest()
        self._creds = {"client_id": f"1000.{digest[:30].upper()}", "client_secret": digest[30:72],
                       "refresh_token": f"1000.{digest[:32]}.{digest[64:96]}",
                       "webhook_secret": f"zbwh{digest[40:72]}"}

    # -- what clients and tests use ------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        return {**self._creds, "organization_id": str(ORG_ID), "accounts_url": self.base_url,
                "api_domain": self.base_url}

    def docs(self, kind: str) -> list[dict]:
        """What the publisher wrote: kind 'contact' | 'invoice' | 'payment' (rendered)."""
        if kind == "invoice":
            return [self._render_store_invoice(d) for d in self.store.docs("invoice")]
        return self.store.docs(kind)

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(self.store.counters())
        for kind in ("contact", "invoice", "payment"):
            out[kind + "s"] = len(self.store.docs(kind))
        return out

    def rate_limit(self, request: Request) -> Response | None:
        if not self.config.enforce_rate_limits:
            return None
        if self._minute.try_acquire() > 0:
            return self.refuse(json_response({"code": wire.RATE_LIMITED, "message": "You have made too many requests "
                                              "continuously. Please try again after some time."}, 429))
        return None

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return json_response({"code": wire.RATE_LIMITED, "message": "You have made too many requests "
                                  "continuously. Please try again after some time."}, 429)
        return json_response({"code": wire.INTERNAL, "message": "Internal Error"}, status)

    def faults_apply(self, method: str, path: str) -> bool:
        return path.startswith(API)

    # -- routing ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/oauth/v2/token", self._token, methods=["POST"]),
            Route(f"{API}/organizations", self._api(self.organizations), methods=["GET"]),
            Route(f"{API}/settings/currencies", self._api(self.currencies), methods=["GET"]),
            Route(f"{API}/settings/taxes", self._api(self.taxes), methods=["GET"]),
            Route(f"{API}/settings/taxexemptions", self._api(self.exemptions), methods=["GET"]),
            Route(f"{API}/chartofaccounts", self._api(self.chart_of_accounts), methods=["GET"]),
            Route(f"{API}/contacts", self._api(self.contacts), methods=["GET", "POST"]),
            Route(f"{API}/contacts/{{cid}}", self._api(self.contact), methods=["GET"]),
            Route(f"{API}/invoices", self._api(self.invoices), methods=["GET", "POST"]),
            Route(f"{API}/invoices/{{iid}}", self._api(self.invoice), methods=["GET", "PUT"]),
            Route(f"{API}/invoices/{{iid}}/status/void", self._api(self.void_invoice), methods=["POST"]),
            Route(f"{API}/customerpayments", self._api(self.payments), methods=["GET", "POST"]),
            Route(f"{API}/customerpayments/{{pid}}", self._api(self.payment), methods=["GET", "PUT", "DELETE"]),
        ]

    async def _token(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return json_response({"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != (self._creds["client_id"],
                                                                 self._creds["client_secret"]):
            return json_response({"error": "invalid_client"})  # Zoho answers 200 with an error member
        if form.get("refresh_token") != self._creds["refresh_token"]:
            return json_response({"error": "invalid_code"})
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        self._tokens.add(token)
        self.token_exchanges += 1
        return json_response({"access_token": token, "api_domain": self.base_url, "token_type": "Bearer",
                              "expires_in": 3600})

    def revoke_tokens(self) -> None:
        """Tests: every access token expires at once (the client must refresh and retry)."""
        self._tokens.clear()

    def _api(self, handler: Callable[[Request, Any], Any]):
        async def endpoint(request: Request) -> Response:
            if self._inflight.try_acquire() > 0:
                return self.refuse(json_response({"code": wire.CONCURRENCY_LIMITED, "message": "You have exceeded "
                                                  "the maximum number of concurrent calls."}, 429))
            try:
                header = request.headers.get("authorization", "")
                if not header.startswith("Zoho-oauthtoken ") or header[16:].strip() not in self._tokens:
                    raise ZohoError(wire.NOT_AUTHORISED, "You are not authorized to perform this operation", 401)
                limited = self.rate_limit(request)
                if limited is not None:
                    return limited
                if request.query_params.get("organization_id") != str(ORG_ID) and \
                        request.headers.get("x-com-zoho-books-organizationid") != str(ORG_ID):
                    raise ZohoError(wire.INVALID_ORGANIZATION, "Organization ID is not valid or missing")
                body = None
                if request.method in ("POST", "PUT"):
                    raw = await request.body()
                    try:
                        body = json.loads(raw, parse_float=D) if raw else {}
                    except ValueError:
                        raise _invalid("Invalid value passed for JSONString") from None
                    if not isinstance(body, dict):
                        raise _invalid("Invalid value passed for JSONString")
                answer = await run_in_threadpool(handler, request, body)
                if request.method != "GET" and self.write_delay_s:
                    import asyncio
                    await asyncio.sleep(self.write_delay_s)
                status = 201 if request.method == "POST" and "created" in answer.get("message", "") else 200
                return json_response(answer, status)
            except ZohoError as exc:
                return exc.response()
            finally:
                self._inflight.release()
        return endpoint

    # -- reference ---------------------------------------------------------------------------------
    def organizations(self, request: Request, body: Any) -> dict:
        return {"code": 0, "message": "success", "organizations": [{
            "organization_id": str(ORG_ID), "name": "Curtain Co (EU trade desk)", "currency_code": "GBP",
            "time_zone": wire.ORG_TIMEZONE, "country": "U.K", "is_default_org": True}]}

    def currencies(self, request: Request, body: Any) -> dict:
        return {"code": 0, "message": "success", "currencies": [
            {"currency_id": cid, "currency_code": code, "is_base_currency": code == "GBP"}
            for code, cid in CURRENCIES.items()]}

    def taxes(self, request: Request, body: Any) -> dict:
        return {"code": 0, "message": "success", "taxes": TAXES}

    def exemptions(self, request: Request, body: Any) -> dict:
        return {"code": 0, "message": "success", "tax_exemptions": EXEMPTIONS}

    def chart_of_accounts(self, request: Request, body: Any) -> dict:
        return {"code": 0, "message": "success", "chartofaccounts": ACCOUNTS,
                "page_context": {"page": 1, "per_page": 200, "has_more_page": False}}

    # -- world rendering ---------------------------------------------------------------------------
    def _fetch(self, sql: str, params: list) -> list[dict]:
        cur = self.db.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def _world(self) -> tuple[list[dict], list[dict], list[dict]]:
        """(contacts, invoices, payments) of the desk, rendered as of the clock."""
        clock = self.sandbox.clock
        key, cached = self.pages.get(("world", str(self.sandbox.world_path()), clock.isoformat()),
                                     lambda: [self._render_world(clock)])
        return cached[0]

    def _world_index(self) -> dict[str, dict]:
        """The desk's documents by id and number, and its contact names, as of the clock."""
        clock = self.sandbox.clock

        def build() -> list[dict]:
            contacts, invoices, payments = self._world()
            return [{"contact": {c["contact_id"]: c for c in contacts},
                     "contact_name": {c["contact_name"] for c in contacts},
                     "invoice": {i["invoice_id"]: i for i in invoices},
                     "invoice_number": {i["invoice_number"]: i["invoice_id"] for i in invoices},
                     "payment": {p["payment_id"]: p for p in payments}}]
        _, cached = self.pages.get(("world-index", str(self.sandbox.world_path()), clock.isoformat()), build)
        return cached[0]

    def _render_world(self, clock: datetime) -> tuple[list[dict], list[dict], list[dict]]:
        contacts = [self._contact_json(c) for c in self._fetch("select * from zoho_books_contacts", [])]
        invs = self._fetch("select * from zoho_books_invoices where created_at <= ? order by invoice_id", [clock])
        lines = self._fetch("""select l.* from zoho_books_invoice_lines l join zoho_books_invoices i using (invoice_id)
                               where i.created_at <= ? and (l.added_at is null or l.added_at <= ?)
                               order by l.invoice_id, l.item_order""", [clock, clock])
        pays = self._fetch("select * from zoho_books_payments where created_at <= ? order by payment_id", [clock])
        by_inv: dict[int, list[dict]] = {}
        for line in lines:
            by_inv.setdefault(line["invoice_id"], []).append(line)
        pays_by_inv: dict[int, list[dict]] = {}
        numbers = {i["invoice_id"]: i["invoice_number"] for i in invs}
        payments = []
        for p in pays:
            pays_by_inv.setdefault(p["invoice_id"], []).append(p)
            payments.append({
                "payment_id": str(p["payment_id"]), "payment_number": p["payment_number"],
                "customer_id": str(p["contact_id"]), "payment_mode": p["payment_mode"], "date": p["date"].isoformat(),
                "amount": p["amount"], "currency_code": p["currency_code"],
                "currency_id": CURRENCIES[p["currency_code"]], "exchange_rate": p["exchange_rate"],
                "reference_number": p["reference_number"], "invoice_numbers": numbers[p["invoice_id"]],
                "invoices": [{"invoice_id": str(p["invoice_id"]), "invoice_number": numbers[p["invoice_id"]],
                              "amount_applied": p["amount"]}],
                "created_time": wire.zoho_time(p["created_at"]), "last_modified_time": wire.zoho_time(p["created_at"]),
            })
        invoices = []
        for i in invs:
            ls = by_inv.get(i["invoice_id"], [])
            ps = pays_by_inv.get(i["invoice_id"], [])
            void = i["voided_at"] is not None and i["voided_at"] <= clock
            events = [i["created_at"]] + [e for e in (i["edited_at"], i["voided_at"]) if e is not None and e <= clock]
            events += [p["created_at"] for p in ps]
            doc = {
                "invoice_id": str(i["invoice_id"]), "invoice_number": i["invoice_number"],
                "customer_id": str(i["contact_id"]), "customer_name": i["customer_name"],
                "email": i["email"], "date": i["date"].isoformat(), "due_date": i["due_date"].isoformat(),
                "payment_terms": i["payment_terms"], "payment_terms_label": f"Net {i['payment_terms']}",
                "currency_code": i["currency_code"], "currency_id": CURRENCIES[i["currency_code"]],
                "exchange_rate": i["exchange_rate"], "reference_number": i["reference_number"],
                "vat_treatment": i["vat_treatment"], "tax_reg_no": i["tax_reg_no"], "is_inclusive_tax": False,
                "billing_address": {"country": i["country"]}, "shipping_charge": i["shipping_charge"],
                "shipping_charge_tax": i["shipping_tax"], "void": void,
                "created_time": wire.zoho_time(i["created_at"]), "last_modified_time": wire.zoho_time(max(events)),
                "line_items": [{
                    "line_item_id": str(line["line_item_id"]), "item_order": line["item_order"], "sku": line["sku"],
                    "name": line["name"], "description": line["name"], "unit": line["unit"], "rate": line["rate"],
                    "quantity": line["quantity"], "discount": line["discount"], "item_total": line["item_total"],
                    "tax_percentage": line["tax_percentage"], "line_tax": line["tax_amount"],
                    **self._line_tax(i["tax_treatment"], line["tax_percentage"]),
                } for line in ls],
                "payments": [{"payment_id": str(p["payment_id"]), "amount": p["amount"], "date": p["date"].isoformat()}
                             for p in ps],
            }
            invoices.append(self._finish_invoice(doc, sum((p["amount"] for p in ps), ZERO), clock))
        return contacts, invoices, payments

    @staticmethod
    def _line_tax(treatment: str, pct: Decimal) -> dict:
        if pct:
            tax = next(t for t in TAXES if t["tax_percentage"] == pct)
            return {"tax_id": tax["tax_id"], "tax_name": tax["tax_name"]}
        code = {"eu_reverse_charge": "REVERSECHARGE", "us_resale_exempt": "RESALE"}.get(treatment, "EXPORT")
        ex = next(e for e in EXEMPTIONS if e["tax_exemption_code"] == code)
        return {"tax_exemption_id": ex["tax_exemption_id"], "tax_exemption_code": code}

    @staticmethod
    def _contact_json(c: dict) -> dict:
        return {"contact_id": str(c["contact_id"]), "contact_number": c["contact_number"],
                "contact_name": c["contact_name"], "company_name": c["company_name"], "contact_type": "customer",
                "email": c["email"], "currency_code": c["currency_code"], "currency_id": CURRENCIES[c["currency_code"]],
                "vat_reg_no": c["vat_number"], "payment_terms": c["payment_terms"],
                "billing_address": {"country": c["country"]}, "status": "active",
                "created_time": wire.zoho_time(c["created_at"]), "last_modified_time": wire.zoho_time(c["created_at"])}

    @staticmethod
    def _finish_invoice(doc: dict, paid: Decimal, clock: datetime) -> dict:
        sub = sum((line["item_total"] for line in doc["line_items"]), ZERO)
        tax = sum((line["line_tax"] for line in doc["line_items"]), ZERO) + doc["shipping_charge_tax"]
        total = sub + doc["shipping_charge"] + tax
        doc.update(sub_total=sub, tax_total=tax, total=total, payment_made=paid)
        void = doc.pop("void")
        doc["balance"] = ZERO if void else total - paid
        if void:
            doc["status"] = "void"
        elif doc["balance"] <= 0:
            doc["status"] = "paid"
        elif date.fromisoformat(doc["due_date"]) < business_date(clock):
            doc["status"] = "overdue"
        elif paid > 0:
            doc["status"] = "partially_paid"
        else:
            doc["status"] = "sent"
        return doc

    # -- store rendering -----------------------------------------------------------------------------
    def _store_payments(self) -> list[dict]:
        return self.store.docs("payment")

    def _applications(self) -> dict[str, list[tuple[dict, dict]]]:
        """invoice id -> [(payment, application)] of the payments written here."""
        out: dict[str, list[tuple[dict, dict]]] = {}
        for p in self._store_payments():
            for a in p["invoices"]:
                out.setdefault(a["invoice_id"], []).append((p, a))
        return out

    def _render_store_invoice(self, doc: dict, applications: dict | None = None) -> dict:
        doc = dict(doc)
        if applications is None:  # one invoice: its own payments, through the index
            applied = [(p, a) for p in self.store.payments_applied_to(doc["invoice_id"]) for a in p["invoices"]
                       if a["invoice_id"] == doc["invoice_id"]]
        else:
            applied = applications.get(doc["invoice_id"], [])
        doc["payments"] = [{"payment_id": p["payment_id"], "amount": a["amount_applied"], "date": p["date"]}
                           for p, a in applied]
        return self._finish_invoice(doc, sum((a["amount_applied"] for _, a in applied), ZERO), self.sandbox.clock)

    def _all_invoices(self) -> list[dict]:
        def build() -> list[dict]:
            _, world, _ = self._world()
            applications = self._applications()
            return world + [self._render_store_invoice(d, applications) for d in self.store.docs("invoice")]
        return self.store.cached(("invoices", self._world_key()), build)

    def _world_key(self) -> tuple[str, str]:
        return str(self.sandbox.world_path()), self.sandbox.clock.isoformat()

    def _number_taken(self, number: str, other_than: str | None) -> bool:
        rows = self.store.read().execute("SELECT id FROM docs WHERE kind = 'invoice' AND number = ?", (number,))
        world = self._world_index()["invoice_number"].get(number)
        return any(str(r[0]) != other_than for r in rows) or (world is not None and world != other_than)

    def _all_contacts(self) -> list[dict]:
        contacts, _, _ = self._world()
        return self.store.cached(("contacts", self._world_key()), lambda: contacts + self.store.docs("contact"))

    def _contact(self, contact_id: str) -> dict | None:
        """One contact by id: the desk's, or one written here (indexed, not a listing)."""
        found = self._world_index()["contact"].get(contact_id)
        if found is None and contact_id.isdigit():
            found = self.store.get("contact", int(contact_id))
        return found

    def _all_payments(self) -> list[dict]:
        _, _, payments = self._world()
        return self.store.cached(("payments", self._world_key()), lambda: payments + self._store_payments())

    # -- paging ------------------------------------------------------------------------------------
    def _sorted(self, request: Request, kind: str, rows: Callable[[], list[dict]], key: str) -> list[dict]:
        """Every row of a listing in the requested order, built once per store generation and clock
        (a client paging through N rows costs one sort, not one per page)."""
        qp = request.query_params
        column = qp.get("sort_column", "created_time")
        if column not in SORT_COLUMNS:
            raise _invalid("Invalid value passed for sort_column")
        descending = qp.get("sort_order", "A") == "D"

        def build() -> list[dict]:
            if column in ("last_modified_time", "created_time"):
                def sort_key(r):
                    return (wire.parse_zoho_time(r.get(column) or r["created_time"]), r[key])
            else:
                def sort_key(r):
                    return (str(r.get(column) or ""), r[key])
            return sorted(rows(), key=sort_key, reverse=descending)
        return self.store.cached((kind, self._world_key(), column, descending), build)

    def _modified_at(self, kind: str, rows: list[dict]) -> dict[int, datetime]:
        """id(row) -> its parsed `last_modified_time`, for the rows of one cached listing."""
        return self.store.cached((kind, "modified", self._world_key(), id(rows)),
                                 lambda: {id(r): wire.parse_zoho_time(r["last_modified_time"]) for r in rows})

    @staticmethod
    def _page(request: Request, rows: list[dict], key: str) -> dict:
        """One page of `rows` (already filtered and in the requested order)."""
        qp = request.query_params
        try:
            page = int(qp.get("page", "1"))
            per_page = int(qp.get("per_page", "200"))
        except ValueError:
            raise _invalid("Invalid value passed for page") from None
        if page < 1 or not 1 <= per_page <= wire.MAX_PER_PAGE:
            raise _invalid("Invalid value passed for per_page" if page >= 1 else "Invalid value passed for page")
        column = qp.get("sort_column", "created_time")
        chunk = rows[(page - 1) * per_page: page * per_page]
        return {"rows": chunk, "page_context": {
            "page": page, "per_page": per_page, "has_more_page": page * per_page < len(rows),
            "report_name": key, "applied_filter": qp.get("filter_by", "Status.All"), "sort_column": column,
            "sort_order": qp.get("sort_order", "A")}}

    def _modified_since(self, request: Request, kind: str, rows: list[dict]) -> list[dict]:
        since = request.query_params.get("last_modified_time")
        if not since:
            return rows
        try:
            at = wire.parse_zoho_time(since)
        except ValueError:
            raise _invalid("Invalid value passed for last_modified_time") from None
        modified = self._modified_at(kind, rows)
        return [r for r in rows if modified[id(r)] >= at]

    # -- contacts ------------------------------------------------------------------------------------
    def contacts(self, request: Request, body: Any) -> dict:
        if request.method == "POST":
            return self._create_contact(body)
        rows = self._modified_since(request, "contacts",
                                    self._sorted(request, "contacts", self._all_contacts, "contact_id"))
        qp = request.query_params
        if qp.get("contact_name"):
            rows = [r for r in rows if r["contact_name"] == qp["contact_name"]]
        page = self._page(request, rows, "contact_id")
        return {"code": 0, "message": "success", "contacts": page["rows"], "page_context": page["page_context"]}

    def contact(self, request: Request, body: Any) -> dict:
        found = self._contact(request.path_params["cid"])
        if found is None:
            raise ZohoError(wire.DOES_NOT_EXIST, "Contact does not exist.", 404)
        return {"code": 0, "message": "success", "contact": found}

    def _create_contact(self, body: dict) -> dict:
        name = (body.get("contact_name") or "").strip()
        if not name:
            raise _invalid("Invalid value passed for contact_name")
        currency = next((c for c, i in CURRENCIES.items() if i == str(body.get("currency_id") or "")), None)
        if currency is None:
            raise _invalid("Invalid value passed for currency_id")
        with self.store.tx() as con:
            if name in self._world_index()["contact_name"] or self.store.contact_named(name, con):
                raise ZohoError(3062, f'The customer "{name}" already exists. Please specify a different name.')
            cid = self.store.next_id(con)
            now = wire.zoho_time(self.sandbox.clock)
            doc = {"contact_id": str(cid), "contact_number": body.get("contact_number"), "contact_name": name,
                   "company_name": body.get("company_name") or name, "contact_type": "customer",
                   "email": body.get("email"), "currency_code": currency, "currency_id": CURRENCIES[currency],
                   "payment_terms": body.get("payment_terms"), "billing_address": body.get("billing_address") or {},
                   "status": "active", "created_time": now, "last_modified_time": now}
            self.store.put(con, "contact", cid, body.get("contact_number"), doc)
            self.store.bump(con, "contact_created")
        return {"code": 0, "message": "The contact has been added.", "contact": doc}

    # -- invoices ------------------------------------------------------------------------------------
    def invoices(self, request: Request, body: Any) -> dict:
        if request.method == "POST":
            return self._save_invoice(request, body, None)
        qp = request.query_params
        rows = self._modified_since(request, "invoices",
                                    self._sorted(request, "invoices", self._all_invoices, "invoice_id"))
        if qp.get("invoice_number"):
            rows = [r for r in rows if r["invoice_number"] == qp["invoice_number"]]
        if qp.get("customer_id"):
            rows = [r for r in rows if r["customer_id"] == qp["customer_id"]]
        status = qp.get("filter_by", "Status.All")
        if status not in STATUS_FILTERS:
            raise _invalid("Invalid value passed for filter_by")
        if STATUS_FILTERS[status] is not None:
            rows = [r for r in rows if r["status"] in STATUS_FILTERS[status]]
        page = self._page(request, rows, "invoice_id")
        summary = [{k: v for k, v in r.items() if k not in ("line_items", "payments", "billing_address")}
                   for r in page["rows"]]
        return {"code": 0, "message": "success", "invoices": summary, "page_context": page["page_context"]}

    def _find_invoice(self, iid: str) -> dict:
        found = self._world_index()["invoice"].get(iid)
        if found is None and iid.isdigit() and (doc := self.store.get("invoice", int(iid))) is not None:
            found = self._render_store_invoice(doc)
        if found is None:
            raise ZohoError(wire.DOES_NOT_EXIST, "Invoice does not exist.", 404)
        return found

    def invoice(self, request: Request, body: Any) -> dict:
        if request.method == "PUT":
            return self._save_invoice(request, body, request.path_params["iid"])
        return {"code": 0, "message": "success", "invoice": self._find_invoice(request.path_params["iid"])}

    def _save_invoice(self, request: Request, body: dict, iid: str | None) -> dict:
        customer = self._contact(str(body.get("customer_id") or ""))
        if customer is None:
            raise _invalid("Invalid value passed for customer_id")
        number = (body.get("invoice_number") or "").strip()
        auto = request.query_params.get("ignore_auto_number_generation", "false") != "true"
        if iid is None and (auto or not number):
            raise _invalid("Invalid value passed for invoice_number" if not auto else
                           "Auto number generation is enabled; pass ignore_auto_number_generation=true to set "
                           "invoice_number")
        issued = _date(body.get("date"), "date")
        due = _date(body.get("due_date"), "due_date") if body.get("due_date") else \
            issued + timedelta(days=int(body.get("payment_terms") or 0))
        items = body.get("line_items")
        if not isinstance(items, list) or not items:
            raise _invalid("Invalid value passed for line_items")
        lines = []
        for n, item in enumerate(items, 1):
            if not isinstance(item, dict) or not (item.get("name") or item.get("item_id")):
                raise _invalid(f"Invalid value passed for line_items[{n}].name")
            rate, qty = _dec(item.get("rate"), "rate"), _dec(item.get("quantity", 1), "quantity")
            discount = _dec(item.get("discount") or 0, "discount")
            total = q(rate * qty - discount)
            if total < 0:
                raise _invalid(f"Invalid value passed for line_items[{n}].discount")
            tax = TAX_BY_ID.get(str(item.get("tax_id") or ""))
            exemption = str(item.get("tax_exemption_id") or "")
            if tax is None and exemption not in EXEMPTION_IDS:
                raise _invalid(f"line_items[{n}]: select a tax, or a tax exemption for a non-taxable item")
            account = str(item.get("account_id") or "")
            if account and account not in ACCOUNT_IDS:
                raise _invalid(f"Invalid value passed for line_items[{n}].account_id")
            pct = tax["tax_percentage"] if tax else ZERO
            lines.append({"item_order": n,
                          "name": item.get("name"), "sku": item.get("sku"), "description": item.get("description"),
                          "rate": rate, "quantity": qty, "discount": discount, "item_total": total,
                          "tax_percentage": pct, "line_tax": q(total * pct / 100),
                          **({"account_id": account} if account else {}),
                          **({"tax_id": tax["tax_id"], "tax_name": tax["tax_name"]} if tax else
                             {"tax_exemption_id": exemption})})
        with self.store.tx() as con:
            existing = None
            if iid is not None:
                existing = self.store.get("invoice", int(iid) if iid.isdigit() else -1, con)
                if existing is None:
                    raise ZohoError(wire.DOES_NOT_EXIST, "Invoice does not exist.", 404)
                if existing.get("void"):
                    raise _invalid("Voided invoices cannot be edited.")
                number = number or existing["invoice_number"]
            if self._number_taken(number, iid):
                raise ZohoError(wire.DUPLICATE_NUMBER, f'Invoice "{number}" already exists.')
            doc_id = int(iid) if iid else self.store.next_id(con)
            now = wire.zoho_time(self.sandbox.clock)
            for line in lines:
                line["line_item_id"] = f"{doc_id}{line['item_order']:03d}"
            doc = {"invoice_id": str(doc_id), "invoice_number": number, "customer_id": customer["contact_id"],
                   "customer_name": customer["contact_name"],
                   "email": customer.get("email"), "date": issued.isoformat(), "due_date": due.isoformat(),
                   "payment_terms": body.get("payment_terms"), "currency_code": customer["currency_code"],
                   "currency_id": customer["currency_id"],
                   "exchange_rate": _dec(body.get("exchange_rate") or 1, "exchange_rate"),
                   "reference_number": body.get("reference_number"), "notes": body.get("notes"),
                   "is_inclusive_tax": False, "billing_address": customer.get("billing_address") or {},
                   "shipping_charge": ZERO, "shipping_charge_tax": ZERO, "void": False,
                   "created_time": existing["created_time"] if existing else now, "last_modified_time": now,
                   "line_items": lines}
            if existing is not None:
                paid = sum((a["amount_applied"] for p in self.store.payments_applied_to(iid, con)
                            for a in p["invoices"] if a["invoice_id"] == iid), ZERO)
                total = sum((line["item_total"] + line["line_tax"] for line in lines), ZERO)
                if total < paid:
                    raise _invalid("The invoice total cannot be less than the payments applied to it.")
            self.store.put(con, "invoice", doc_id, number, doc)
            self.store.bump(con, "invoice_updated" if existing else "invoice_created")
        return {"code": 0, "message": "Invoice information has been updated." if existing else
                "The invoice has been created.", "invoice": self._render_store_invoice(doc)}

    def void_invoice(self, request: Request, body: Any) -> dict:
        iid = request.path_params["iid"]
        with self.store.tx() as con:
            doc = self.store.get("invoice", int(iid) if iid.isdigit() else -1, con)
            if doc is None:
                raise ZohoError(wire.DOES_NOT_EXIST, "Invoice does not exist.", 404)
            if self.store.payments_applied_to(iid, con):
                raise _invalid("Invoices that have payments applied cannot be voided. Delete the payments first.")
            if not doc.get("void"):
                doc["void"] = True
                doc["last_modified_time"] = wire.zoho_time(self.sandbox.clock)
                self.store.put(con, "invoice", int(iid), doc["invoice_number"], doc)
                self.store.bump(con, "invoice_voided")
        return {"code": 0, "message": "Invoice status has been changed to Void."}

    # -- customer payments ---------------------------------------------------------------------------
    def payments(self, request: Request, body: Any) -> dict:
        if request.method == "POST":
            return self._save_payment(body, None)
        qp = request.query_params
        rows = self._sorted(request, "payments", self._all_payments, "payment_id")
        if qp.get("date_start"):
            start = _date(qp["date_start"], "date_start")
            rows = [r for r in rows if date.fromisoformat(r["date"]) >= start]
        if qp.get("date_end"):
            end = _date(qp["date_end"], "date_end")
            rows = [r for r in rows if date.fromisoformat(r["date"]) <= end]
        if qp.get("reference_number"):
            rows = [r for r in rows if r.get("reference_number") == qp["reference_number"]]
        if qp.get("customer_id"):
            rows = [r for r in rows if r["customer_id"] == qp["customer_id"]]
        page = self._page(request, rows, "payment_id")
        summary = [{**{k: v for k, v in r.items() if k != "invoices"}, "unused_amount": r["amount"] - sum(
            (a["amount_applied"] for a in r["invoices"]), ZERO)} for r in page["rows"]]
        return {"code": 0, "message": "success", "customerpayments": summary,
                "page_context": page["page_context"]}

    def payment(self, request: Request, body: Any) -> dict:
        pid = request.path_params["pid"]
        if request.method == "PUT":
            return self._save_payment(body, pid)
        if request.method == "DELETE":
            with self.store.tx() as con:
                if self.store.get("payment", int(pid) if pid.isdigit() else -1, con) is None:
                    raise ZohoError(wire.DOES_NOT_EXIST, "Payment does not exist.", 404)
                self.store.delete(con, "payment", int(pid))
                self.store.bump(con, "payment_deleted")
            return {"code": 0, "message": "The payment has been deleted."}
        found = self._world_index()["payment"].get(pid)
        if found is None and pid.isdigit():
            found = self.store.get("payment", int(pid))
        if found is None:
            raise ZohoError(wire.DOES_NOT_EXIST, "Payment does not exist.", 404)
        return {"code": 0, "message": "success", "payment": found}

    def _save_payment(self, body: dict, pid: str | None) -> dict:
        customer = self._contact(str(body.get("customer_id") or ""))
        if customer is None:
            raise _invalid("Invalid value passed for customer_id")
        amount = _dec(body.get("amount"), "amount")
        if amount <= 0:
            raise _invalid("Invalid value passed for amount")
        paid_on = _date(body.get("date"), "date")
        mode = body.get("payment_mode") or "cash"
        if mode not in PAYMENT_MODES:
            raise _invalid("Invalid value passed for payment_mode")
        applied = body.get("invoices") or []
        with self.store.tx() as con:
            existing = None
            if pid is not None:
                existing = self.store.get("payment", int(pid) if pid.isdigit() else -1, con)
                if existing is None:
                    raise ZohoError(wire.DOES_NOT_EXIST, "Payment does not exist.", 404)
            wanted = {str(a.get("invoice_id") or "") for a in applied}
            world = self._world_index()["invoice"]
            invoices = {i: world[i] for i in wanted if i in world}
            invoices.update({str(d["invoice_id"]): self._render_store_invoice(d)
                             for d in (self.store.get("invoice", int(i), con) for i in wanted if i.isdigit()) if d})
            rows, total_applied = [], ZERO
            for a in applied:
                inv = invoices.get(str(a.get("invoice_id") or ""))
                if inv is None:
                    raise ZohoError(wire.DOES_NOT_EXIST, "Invoice does not exist.", 404)
                share = _dec(a.get("amount_applied"), "amount_applied")
                balance = inv["balance"] + (sum((x["amount_applied"] for x in existing["invoices"]
                                                 if x["invoice_id"] == inv["invoice_id"]), ZERO) if existing else ZERO)
                if inv["status"] == "void" or share > balance or inv["customer_id"] != customer["contact_id"]:
                    raise _invalid(f"The amount applied to invoice {inv['invoice_number']} exceeds its balance due."
                                   if inv["status"] != "void" and share > balance else
                                   f"Payment cannot be applied to invoice {inv['invoice_number']}.")
                rows.append({"invoice_id": inv["invoice_id"], "invoice_number": inv["invoice_number"],
                             "amount_applied": share})
                total_applied += share
            if total_applied > amount:
                raise _invalid("The amount applied to invoices exceeds the payment amount.")
            doc_id = int(pid) if pid else self.store.next_id(con)
            now = wire.zoho_time(self.sandbox.clock)
            doc = {"payment_id": str(doc_id), "payment_number": str(doc_id)[-6:], "customer_id": customer["contact_id"],
                   "customer_name": customer["contact_name"], "payment_mode": mode, "date": paid_on.isoformat(),
                   "amount": amount, "currency_code": customer["currency_code"],
                   "currency_id": customer["currency_id"],
                   "exchange_rate": _dec(body.get("exchange_rate") or 1, "exchange_rate"),
                   "reference_number": body.get("reference_number"), "description": body.get("description"),
                   "invoice_numbers": ",".join(r["invoice_number"] for r in rows), "invoices": rows,
                   "created_time": existing["created_time"] if existing else now, "last_modified_time": now}
            self.store.put(con, "payment", doc_id, body.get("reference_number"), doc)
            self.store.bump(con, "payment_updated" if existing else "payment_created")
        return {"code": 0, "message": "The payment details have been updated." if existing else
                "The payment has been created.", "payment": doc}

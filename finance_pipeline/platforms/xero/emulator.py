"""Xero emulator: the identity server and the Accounting API 2.0 on one loopback port.

Paths are Xero's own (`POST /connect/token`, `GET /connections`, `/api.xro/2.0/Invoices` …), so
the official `xero-python` SDK and our client work against it by swapping the host.  State lives
in `<sandbox root>/xero.sqlite` (see `emulator_store.py`), shared by every instance in any process.

What a client meets here, as on the real API:
- OAuth2 refresh-token grant with rotation and a 30-minute grace for the previous refresh token;
  `Authorization: Bearer` checked on every call (401), `xero-tenant-id` checked (403).
- Rate limits per tenant — 60 calls per rolling minute, 5 in flight, 5000 per day — and 10 000 per
  minute app-wide, all compressed by `config.time_scale`; a refused call gets 429 with
  `Retry-After` and `X-Rate-Limit-Problem`, every admitted one `X-MinLimit-Remaining`,
  `X-DayLimit-Remaining`, `X-AppMinLimit-Remaining`.  Limits are enforced at the door, before the
  base class injects faults, so a delayed ("timeout") request is counted when it arrived.
- `Idempotency-Key` on writes: the same key and request replays the stored answer, the same key
  with another request is a 400.
- `summarizeErrors=false` answers 200 with a status per element; otherwise any bad element makes
  the whole answer a 400 `ValidationException` (valid elements of that batch are still saved,
  as users report of the real API).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import ConcurrencyLimiter, SlidingWindow
from finance_pipeline.platforms.xero import reference as ref
from finance_pipeline.platforms.xero.emulator_store import (
    Conflict, ElementResult, XeroStore, envelope, fingerprint, json_bytes,
)
from finance_pipeline.platforms.xero.where import WhereError
from finance_pipeline.platforms.xero.wire import loads, to_decimal
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

API = "/api.xro/2.0"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


@dataclass
class _TenantLimits:
    minute: SlidingWindow
    day: SlidingWindow
    concurrent: ConcurrencyLimiter


def _raw(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """Xero's identity/gateway error shape (401, 403, 404, 429)."""
    return json_response({"Type": None, "Title": HTTPStatus(status).phrase, "Status": status, "Detail": detail,
                          "Instance": str(uuid.uuid4()), "Extensions": {}}, status, headers)


def _validation_exception(elements: list[dict] | None = None, message: str = "A validation exception occurred"
                          ) -> dict:
    body: dict[str, Any] = {"ErrorNumber": 10, "Type": "ValidationException", "Message": message}
    if elements is not None:
        body["Elements"] = elements
    return body


def _csv(request: Request, name: str) -> list[str]:
    values = []
    for raw in request.query_params.getlist(name):
        values += [v.strip() for v in raw.split(",") if v.strip()]
    return values


def _flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.strip().lower() in ("true", "1", "yes")


def _modified_since(request: Request) -> int | None:
    """`If-Modified-Since`: ISO (`2025-06-01T00:00:00`, UTC when naive) or an HTTP date."""
    value = request.headers.get("if-modified-since")
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


class XeroEmulator(Emulator):
    """`credentials()` gives what a client needs; `invoices()` / `contacts()` read back what was posted."""

    name = "xero"
    MINUTE_LIMIT = 60
    DAY_LIMIT = 5000
    CONCURRENT_LIMIT = 5
    APP_MINUTE_LIMIT = 10_000

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.store = XeroStore(sandbox.root / "xero.sqlite")
        self.write_delay_s = 0.0  # tests: hold each write's answer this long after it committed
        self.minute_limit, self.day_limit = self.MINUTE_LIMIT, self.DAY_LIMIT
        self.concurrent_limit, self.app_minute_limit = self.CONCURRENT_LIMIT, self.APP_MINUTE_LIMIT
        self._limits: dict[str, _TenantLimits] = {}
        self._app_window: SlidingWindow | None = None

    # -- what clients and tests use ------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        s = self.store
        return {"client_id": s.client_id, "client_secret": s.client_secret, "refresh_token": s.initial_refresh_token,
                "tenant_id": s.tenant_id, "token_url": f"{self.base_url}/connect/token",
                "api_url": f"{self.base_url}{API}", "webhook_key": s.webhook_key}

    def credit_notes(self) -> list[dict]:
        """Every credit note as stored (invoice-shaped: InvoiceID / InvoiceNumber / AmountDue)."""
        return self.store.credit_note_docs()

    def payments(self) -> list[dict]:
        """Every payment as stored (Decimals, ISO dates), creation order."""
        return self.store.payment_docs()

    def invoices(self) -> list[dict]:
        """Every invoice as stored (Decimals, ISO dates, `UpdatedDateUTC` in epoch ms), creation order."""
        return self.store.invoice_docs()

    def contacts(self) -> list[dict]:
        return self.store.contact_docs()

    def manual_journals(self) -> list[dict]:
        """Every manual journal as stored (Decimals, ISO dates), creation order."""
        return self.store.manual_journal_docs()

    def advance_clock(self, seconds: float) -> None:
        """Move this organisation's clock (token expiry, grace periods, idempotency window)."""
        self.store.advance_clock(seconds)

    def record_payment(self, invoice_number: str, amount: Any) -> dict:
        return self.store.record_payment(invoice_number, to_decimal(amount))

    def sign_webhook(self, body: bytes) -> str:
        """`x-xero-signature` for a delivery: Base64(HMAC-SHA256(webhook key, raw body))."""
        return base64.b64encode(hmac.new(self.store.webhook_key.encode(), body, hashlib.sha256).digest()).decode()

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        persisted = self.store.counters()
        con = self.store.read()
        out["invoices"] = con.execute("SELECT COUNT(*) FROM invoices WHERE type IN ('ACCREC', 'ACCPAY')").fetchone()[0]
        out["credit_notes"] = con.execute("SELECT COUNT(*) FROM invoices WHERE type LIKE '%CREDIT'").fetchone()[0]
        out["contacts"] = con.execute("SELECT COUNT(*) FROM contacts").fetchone()[0]
        out["payments"] = con.execute("SELECT COUNT(*) FROM payments WHERE status <> 'DELETED'").fetchone()[0]
        out["manual_journals"] = con.execute("SELECT COUNT(*) FROM manual_journals").fetchone()[0]
        for name in ("invoices_created", "invoices_updated", "invoices_voided", "contacts_created", "payments_created",
                     "credit_notes_created", "credit_notes_updated", "allocations_created", "allocations_deleted",
                     "payments_deleted", "manual_journals_created", "manual_journals_updated",
                     "contacts_updated", "token_refreshes", "refresh_forks", "idempotent_replays"):
            out[name] = persisted.get(name, 0)
        return out

    # -- routing ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/connect/token", self._token, methods=["POST"]),
            Route("/connections", self._connections, methods=["GET"]),
            Route(f"{API}/Invoices", self._invoices, methods=["GET", "PUT", "POST"]),
            Route(f"{API}/Invoices/{{ref}}", self._invoice, methods=["GET", "POST"]),
            Route(f"{API}/Contacts", self._contacts, methods=["GET", "PUT", "POST"]),
            Route(f"{API}/Payments", self._payments, methods=["GET", "PUT", "POST"]),
            Route(f"{API}/CreditNotes", self._credit_notes, methods=["GET", "PUT", "POST"]),
            Route(f"{API}/CreditNotes/{{ref}}", self._credit_note, methods=["GET", "POST"]),
            Route(f"{API}/CreditNotes/{{ref}}/Allocations", self._allocations, methods=["PUT"]),
            Route(f"{API}/CreditNotes/{{ref}}/Allocations/{{aid}}", self._allocation, methods=["DELETE"]),
            Route(f"{API}/Payments/{{ref}}", self._payment, methods=["GET", "POST"]),
            Route(f"{API}/Contacts/{{ref}}", self._contact, methods=["GET", "POST"]),
            Route(f"{API}/ManualJournals", self._manual_journals, methods=["GET", "PUT", "POST"]),
            Route(f"{API}/ManualJournals/{{ref}}", self._manual_journal, methods=["GET", "POST"]),
            Route(f"{API}/Accounts", self._reference(lambda: [a.wire() for a in ref.ACCOUNTS.values()], "Accounts")),
            Route(f"{API}/TaxRates", self._reference(lambda: [t.wire() for t in ref.TAX_RATES.values()], "TaxRates")),
            Route(f"{API}/Currencies", self._reference(ref.currencies, "Currencies")),
            Route(f"{API}/Organisation",
                  self._reference(lambda: [ref.organisation(self.store.tenant_id)], "Organisations")),
        ]

    def build_app(self):  # noqa: ANN201 - an ASGI app
        return _RateLimitGate(super().build_app(), self)

    def faults_apply(self, method: str, path: str) -> bool:
        # the identity server is a separate, steadier service; faults hit the Accounting API
        return path.startswith(API)

    def fault_response(self, status: int) -> Response:
        headers = {"Retry-After": "1", "X-Rate-Limit-Problem": "minute"} if status == 429 else None
        return _problem(status, "injected fault (sandbox)", headers)

    # -- rate limits -----------------------------------------------------------------------------
    def _tenant_limits(self, tenant: str) -> _TenantLimits:
        limits = self._limits.get(tenant)
        if limits is None:
            scale = self.config.time_scale
            limits = self._limits.setdefault(tenant, _TenantLimits(
                SlidingWindow(self.minute_limit, 60, scale), SlidingWindow(self.day_limit, 86_400, scale),
                ConcurrencyLimiter(self.concurrent_limit)))
            if self._app_window is None:
                self._app_window = SlidingWindow(self.app_minute_limit, 60, scale)
        return limits

    def admit(self, tenant: str) -> tuple[Response | None, list[tuple[bytes, bytes]]]:
        """Admit a call (taking its place in every window) or answer 429 naming the limit."""
        limits = self._tenant_limits(tenant)
        assert self._app_window is not None
        if self.config.enforce_rate_limits:
            if limits.concurrent.try_acquire() > 0:
                return self.refuse(self._too_many("concurrent", None)), []
            for problem, window in (("appminute", self._app_window), ("day", limits.day), ("minute", limits.minute)):
                wait = window.try_acquire()
                if wait > 0:
                    limits.concurrent.release()
                    return self.refuse(self._too_many(problem, wait)), []
        else:
            limits.concurrent.try_acquire()
        headers = [(b"x-minlimit-remaining", str(limits.minute.remaining()).encode()),
                   (b"x-daylimit-remaining", str(limits.day.remaining()).encode()),
                   (b"x-appminlimit-remaining", str(self._app_window.remaining()).encode())]
        return None, headers

    def leave(self, tenant: str) -> None:
        self._tenant_limits(tenant).concurrent.release()

    def rate_limit(self, request: Request) -> Response | None:
        """The base-class hook, for callers outside the gate: admit-and-leave in one step."""
        tenant = request.headers.get("xero-tenant-id", "")
        refused, _ = self.admit(tenant)
        if refused is None:
            self.leave(tenant)
        return refused

    @staticmethod
    def _too_many(problem: str, wait: float | None) -> Response:
        headers = {"X-Rate-Limit-Problem": problem}
        if wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return _problem(429, f"Rate limit exceeded: {problem}", headers)

    # -- auth ------------------------------------------------------------------------------------
    def _bearer_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and bool(token) and self.store.access_token_valid(token.strip())

    def _authorise(self, request: Request) -> Response | None:
        if not self._bearer_ok(request):
            return _problem(401, "AuthenticationUnsuccessful", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if request.headers.get("xero-tenant-id", "") != self.store.tenant_id:
            return _problem(403, "AuthenticationUnsuccessful")
        return None

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return json_response({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "refresh_token":
            return json_response({"error": "unsupported_grant_type"}, 400)
        status, body = await run_in_threadpool(self.store.refresh, client_id, client_secret, form.get("refresh_token"))
        return json_response(body, status, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def _connections(self, request: Request) -> Response:
        if not self._bearer_ok(request):
            return _problem(401, "AuthenticationUnsuccessful")
        return json_response([{
            "id": self.store.connection_id, "authEventId": self.store.auth_event_id,
            "tenantId": self.store.tenant_id, "tenantType": "ORGANISATION",
            "tenantName": ref.organisation(self.store.tenant_id)["Name"],
            "createdDateUtc": "2025-01-01T00:00:00.0000000", "updatedDateUtc": "2025-01-01T00:00:00.0000000",
        }])

    # -- reads -----------------------------------------------------------------------------------
    def _reference(self, items: Callable[[], list[dict]], collection: str):  # noqa: ANN202
        async def endpoint(request: Request) -> Response:
            if (denied := self._authorise(request)) is not None:
                return denied
            return _raw(envelope(self.store.now(), collection, [json_bytes(i) for i in items()]))
        return endpoint

    @staticmethod
    def _paging(request: Request) -> tuple[int | None, int]:
        raw_page = request.query_params.get("page")
        page = max(1, int(raw_page)) if raw_page and raw_page.strip().lstrip("-").isdigit() else None
        raw_size = request.query_params.get("pageSize")
        size = int(raw_size) if raw_size and raw_size.isdigit() else DEFAULT_PAGE_SIZE
        return page, max(1, min(MAX_PAGE_SIZE, size))

    def _listing(self, request: Request, collection: str, fetch: Callable[[int | None, int], tuple[list[bytes], int]]
                 ) -> Response:
        page, size = self._paging(request)
        try:
            items, total = fetch(page, size)
        except WhereError as exc:
            return json_response(_validation_exception(message=str(exc)), 400)
        pagination = None
        if page is not None:
            pagination = {"page": page, "pageSize": size, "pageCount": max(1, math.ceil(total / size)),
                          "itemCount": total}
        return _raw(envelope(self.store.now(), collection, items, pagination))

    def _list_invoices(self, request: Request) -> Response:
        unitdp = 4 if request.query_params.get("unitdp") == "4" else 2

        def fetch(page: int | None, size: int) -> tuple[list[bytes], int]:
            return self.store.list_invoices(
                where=request.query_params.get("where"), ids=_csv(request, "IDs"),
                numbers=_csv(request, "InvoiceNumbers"), statuses=_csv(request, "Statuses"),
                contact_ids=_csv(request, "ContactIDs"), modified_since_ms=_modified_since(request),
                order=request.query_params.get("order"), page=page, page_size=size, unitdp=unitdp,
                summary_only=_flag(request, "summaryOnly", False), duplicate_page=self.duplicate_page(request))
        return self._listing(request, "Invoices", fetch)

    def _list_contacts(self, request: Request) -> Response:
        def fetch(page: int | None, size: int) -> tuple[list[bytes], int]:
            return self.store.list_contacts(
                where=request.query_params.get("where"), ids=_csv(request, "IDs"),
                include_archived=_flag(request, "includeArchived", False), modified_since_ms=_modified_since(request),
                order=request.query_params.get("order"), page=page, page_size=size)
        return self._listing(request, "Contacts", fetch)

    # -- writes ----------------------------------------------------------------------------------
    def _write(self, request: Request, body: bytes, collection: str, save: Callable[..., list[ElementResult]],
               *, create_only: bool, forced_id: str | None = None) -> Response:
        """Parse, apply idempotency, save every element in one transaction, answer Xero's way."""
        key = request.headers.get("idempotency-key")
        if key is not None and (not key.strip() or len(key) > 128):
            return json_response(_validation_exception(message="Idempotency-Key must be 1 to 128 characters"), 400)
        summarize = _flag(request, "summarizeErrors", True)
        unitdp = 4 if request.query_params.get("unitdp") == "4" else 2

        def apply(con) -> tuple[int, bytes]:  # noqa: ANN001 - sqlite3 connection
            try:
                payload = loads(body) if body.strip() else None
            except ValueError:
                return 400, json_bytes(_validation_exception(message="The request body is not valid JSON"))
            if isinstance(payload, dict) and isinstance(payload.get(collection), list):
                elements = payload[collection]
            elif isinstance(payload, dict) and payload:
                elements = [payload]
            else:
                return 400, json_bytes(_validation_exception(message=f"No {collection} were supplied"))
            kwargs: dict[str, Any] = {"create_only": create_only, "forced_id": forced_id}
            if collection in ("Invoices", "CreditNotes"):
                kwargs["unitdp"] = unitdp
            results = save(con, elements, **kwargs)
            if not summarize:
                return 200, envelope(self.store.now(), collection, [json_bytes(r.wire) for r in results])
            failed = [r.wire for r in results if not r.ok]
            if failed:
                return 400, json_bytes(_validation_exception(failed))
            clean = [{k: v for k, v in r.wire.items() if k != "StatusAttributeString"} for r in results]
            return 200, envelope(self.store.now(), collection, [json_bytes(w) for w in clean])

        fp = fingerprint(request.method, request.url.path, request.url.query, body)
        try:
            status, answer, _replayed = self.store.idempotent_write(key, fp, apply)
        except Conflict:
            return json_response(_validation_exception(
                message="The Idempotency-Key has already been used with a different request"), 400)
        if self.write_delay_s:
            time.sleep(self.write_delay_s)
        return _raw(answer, status)

    async def _invoices(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        if request.method == "GET":
            return await run_in_threadpool(self._list_invoices, request)
        body = await request.body()
        return await run_in_threadpool(self._write, request, body, "Invoices", self.store.save_invoices,
                                       create_only=request.method == "PUT")

    async def _invoice(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        ref_ = request.path_params["ref"]
        if request.method == "GET":
            unitdp = 4 if request.query_params.get("unitdp") == "4" else 2
            found = await run_in_threadpool(self.store.get_invoice, ref_, unitdp)
            if found is None:
                return _problem(404, "The resource you're looking for cannot be found")
            return _raw(envelope(self.store.now(), "Invoices", [found]))
        body = await request.body()
        existing = await run_in_threadpool(self.store.find_invoice, ref_)
        if existing is None:
            return _problem(404, "The resource you're looking for cannot be found")
        return await run_in_threadpool(self._write, request, body, "Invoices", self.store.save_invoices,
                                       create_only=False, forced_id=existing["InvoiceID"])

    async def _credit_notes(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        if request.method == "GET":
            def fetch(page: int | None, size: int) -> tuple[list[bytes], int]:
                return self.store.list_credit_notes(where=request.query_params.get("where"), page=page,
                                                    page_size=size)
            return await run_in_threadpool(self._listing, request, "CreditNotes", fetch)
        body = await request.body()
        return await run_in_threadpool(self._write, request, body, "CreditNotes", self.store.save_credit_notes,
                                       create_only=request.method == "PUT")

    async def _credit_note(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        from finance_pipeline.platforms.xero.emulator_payments import render_credit_note

        found = await run_in_threadpool(self.store.get_credit_note, request.path_params["ref"])
        if found is None:
            return _problem(404, "The resource you're looking for cannot be found")
        if request.method == "GET":
            return _raw(envelope(self.store.now(), "CreditNotes", [json_bytes(render_credit_note(found))]))
        body = await request.body()
        return await run_in_threadpool(self._write, request, body, "CreditNotes", self.store.save_credit_notes,
                                       create_only=False, forced_id=found["InvoiceID"])

    async def _allocations(self, request: Request) -> Response:
        """`PUT /CreditNotes/{id}/Allocations`: body `{"Allocations": [{"Invoice": {...}, "Amount", "Date"}]}`."""
        if (denied := self._authorise(request)) is not None:
            return denied
        found = await run_in_threadpool(self.store.get_credit_note, request.path_params["ref"])
        if found is None:
            return _problem(404, "The resource you're looking for cannot be found")
        body = await request.body()
        return await run_in_threadpool(self._write, request, body, "Allocations", self.store.save_allocations,
                                       create_only=True, forced_id=found["InvoiceID"])

    async def _allocation(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        found = await run_in_threadpool(self.store.get_credit_note, request.path_params["ref"])
        if found is None or not await run_in_threadpool(self.store.delete_allocation, found["InvoiceID"],
                                                        request.path_params["aid"]):
            return _problem(404, "The resource you're looking for cannot be found")
        return Response(status_code=204)

    async def _payments(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        if request.method == "GET":
            def fetch(page: int | None, size: int) -> tuple[list[bytes], int]:
                return self.store.list_payments(where=request.query_params.get("where"),
                                                modified_since_ms=_modified_since(request),
                                                order=request.query_params.get("order"), page=page, page_size=size)
            return await run_in_threadpool(self._listing, request, "Payments", fetch)
        body = await request.body()
        return await run_in_threadpool(self._write, request, body, "Payments", self.store.save_payments,
                                       create_only=request.method == "PUT")

    async def _payment(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        ref_ = request.path_params["ref"]
        found = await run_in_threadpool(self.store.get_payment, ref_)
        if found is None:
            return _problem(404, "The resource you're looking for cannot be found")
        if request.method == "GET":
            return _raw(envelope(self.store.now(), "Payments", [found]))
        body = await request.body()
        return await run_in_threadpool(self._write, request, body, "Payments", self.store.save_payments,
                                       create_only=False, forced_id=ref_)

    async def _manual_journals(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        if request.method == "GET":
            def fetch(page: int | None, size: int) -> tuple[list[bytes], int]:
                return self.store.list_manual_journals(where=request.query_params.get("where"),
                                                       modified_since_ms=_modified_since(request),
                                                       order=request.query_params.get("order"), page=page,
                                                       page_size=size)
            return await run_in_threadpool(self._listing, request, "ManualJournals", fetch)
        body = await request.body()
        return await run_in_threadpool(self._write, request, body, "ManualJournals", self.store.save_manual_journals,
                                       create_only=request.method == "PUT")

    async def _manual_journal(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        ref_ = request.path_params["ref"]
        found = await run_in_threadpool(self.store.get_manual_journal, ref_)
        if found is None:
            return _problem(404, "The resource you're looking for cannot be found")
        if request.method == "GET":
            return _raw(envelope(self.store.now(), "ManualJournals", [found]))
        body = await request.body()
        return await run_in_threadpool(self._write, request, body, "ManualJournals", self.store.save_manual_journals,
                                       create_only=False, forced_id=ref_)

    async def _contacts(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        if request.method == "GET":
            return await run_in_threadpool(self._list_contacts, request)
        body = await request.body()
        return await run_in_threadpool(self._write, request, body, "Contacts", self.store.save_contacts,
                                       create_only=request.method == "PUT")

    async def _contact(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        ref_ = request.path_params["ref"]
        found = await run_in_threadpool(self.store.get_contact, ref_)
        if found is None:
            return _problem(404, "The resource you're looking for cannot be found")
        if request.method == "GET":
            return _raw(envelope(self.store.now(), "Contacts", [found]))
        body = await request.body()
        return await run_in_threadpool(self._write, request, body, "Contacts", self.store.save_contacts,
                                       create_only=False, forced_id=ref_)


class _RateLimitGate:
    """Outermost ASGI layer: Xero's limits apply on arrival, to every Accounting API call."""

    def __init__(self, app, emulator: XeroEmulator) -> None:  # noqa: ANN001
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or not scope["path"].startswith(API):
            await self.app(scope, receive, send)
            return
        tenant = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"xero-tenant-id"), "")
        refused, extra = self.emulator.admit(tenant)
        if refused is not None:
            await refused(scope, receive, send)
            return

        left = False

        def leave() -> None:
            nonlocal left
            if not left:
                left = True
                self.emulator.leave(tenant)

        async def send_with_limits(message):  # noqa: ANN001
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # The call stops being in flight as its last byte leaves: once the client holds
                # the response it may send the next call, possibly before this task resumes.
                leave()
            await send(message)

        try:
            await self.app(scope, receive, send_with_limits)
        finally:
            leave()

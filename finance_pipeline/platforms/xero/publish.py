"""Trade invoices from the marts to Xero, idempotently and crash-safely, then read back and compared.

Reads exactly `marts.fct_invoices` and `marts.fct_invoice_lines` (docs/architecture.md) and writes:
- one Xero contact per customer (ContactNumber = customer_id, Name, EmailAddress);
- one ACCREC invoice per mart invoice: InvoiceNumber = invoice_number, Reference = order_number,
  Date/DueDate, currency, `Exclusive` lines with AccountCode from `account_kind` and TaxType from
  the tax treatment, each line's TaxAmount taken from the mart so Xero's totals equal the marts'
  to the cent;
- a mart invoice with status 'voided' is voided in Xero if it exists there, and not posted if it
  never did;
- card payments of those invoices, credit notes of their refunds (`credit_notes.py`), a summary
  invoice per processor payout (`payouts.py`) and a manual journal per day of gift cards spent
  (`gift_cards.py`).

The mechanics (ledger protocol, look-up-before-re-posting, batching) are the shared ones in
`finance_pipeline.publish`; this module is the Xero mapping plus Xero's batch answers
(`summarizeErrors=false`: one status per element) and `Idempotency-Key` on every write.

Run it alone (the kill -9 test does): `python -m finance_pipeline.platforms.xero.publish --data-dir DIR`.
"""
from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator

from finance_pipeline.http import ApiClient, ApiError
from finance_pipeline.http.pagination import page_number_pages
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.xero.client import make_client
from finance_pipeline.platforms.xero.wire import loads, money, parse_ms_json
from finance_pipeline.publish.destinations import DryRun, quarantine_rejections
from finance_pipeline.publish.ledger import PublishLedger, content_hash
from finance_pipeline.publish.marts import MartInvoice, MartLine, MartPayment, load_invoice_payments, load_trade_invoices
from finance_pipeline.publish.marts import to_decimal as to_decimal_or_zero
from finance_pipeline.publish.mechanics import (
    Desired, ItemError, Mismatch, Outcome, PublishResult, Rejected, Write, idempotency_key, resolve_unknown,
    write_batches,
)
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

log = logging.getLogger("finance_pipeline.xero.publish")

DESTINATION = "xero"
# Part of every content hash: changing the mapping below re-publishes (as updates) on the next run.
INVOICE_MAPPING = "xero-trade-invoice/1"
CONTACT_MAPPING = "xero-contact/1"
PAYMENT_MAPPING = "xero-payment/1"
CLEARING_ACCOUNT = "835"  # Payment Processor Clearing: card money waits here until the payout
ACCOUNT_CODES = {"sales_trade": "200", "shipping_income": "260"}
BATCH_SIZE = 50  # Xero recommends ~50 elements per PUT/POST
LOOKUP_BATCH = 40  # keys per look-up request (keeps the URL short)
READ_PAGE_SIZE = 1000


# -- the marts (shared with every ledger destination) -----------------------------------------------
_dec = to_decimal_or_zero


# -- the mapping ----------------------------------------------------------------------------------
class MappingError(ValueError):
    """A mart row the Xero mapping cannot express; that invoice is recorded failed, the rest go on."""


def account_code(account_kind: str) -> str:
    try:
        return ACCOUNT_CODES[account_kind]
    except KeyError:
        raise MappingError(f"account_kind {account_kind!r} has no Xero account "
                           f"(known: {', '.join(sorted(ACCOUNT_CODES))})") from None


def tax_type(tax_treatment: str, tax_rate: Decimal | None) -> str:
    """UK VAT at the line's rate (20 % → OUTPUT2, 5 % → RROUTPUT, 0 → ZERORATEDOUTPUT); every other
    treatment (EU reverse charge, exports, US resale-exempt, AU) is zero-rated for UK VAT."""
    if tax_treatment != "uk_vat":
        return "ZERORATEDOUTPUT"
    if tax_rate is None:
        return "OUTPUT2"
    rate = tax_rate * 100 if tax_rate <= 1 else tax_rate  # a fraction (0.2) or a percentage (20)
    if rate == 0:
        return "ZERORATEDOUTPUT"
    if rate == 5:
        return "RROUTPUT"
    return "OUTPUT2"


def contact_payload(inv: MartInvoice) -> dict:
    name = (inv.customer_name or "").strip() or f"Customer {inv.customer_id}"  # Xero requires a name
    payload = {"ContactNumber": inv.customer_id, "Name": name}
    if inv.customer_email:
        payload["EmailAddress"] = inv.customer_email
    return payload


def disambiguate_names(payloads: dict[str, dict]) -> None:
    """Xero refuses a second active contact with the same name (case-insensitively), and two channels'
    customers can share a trading name: where the marts give one name to several customer ids, each
    of those contacts is named "Name (customer id)". A name that becomes shared later renames the
    contact that had it alone (an update in place), so the rule never depends on publishing order."""
    owners: dict[str, set[str]] = defaultdict(set)
    for customer_id, payload in payloads.items():
        owners[payload["Name"].casefold()].add(customer_id)
    for customer_id, payload in payloads.items():
        if len(owners[payload["Name"].casefold()]) > 1:
            payload["Name"] = f"{payload['Name']} ({customer_id})"[:255]


def line_payload(line: MartLine, inv: MartInvoice) -> dict:
    payload: dict[str, Any] = {
        "Description": line.description or line.sku or line.kind,
        "Quantity": line.quantity,
        "UnitAmount": line.unit_amount,
        "AccountCode": account_code(line.account_kind),
        "TaxType": tax_type(inv.tax_treatment, line.tax_rate),
        "TaxAmount": money(line.tax_amount),
        "LineAmount": money(line.line_amount),  # Xero rejects the line if this is not qty × unit − discount
    }
    if line.discount_amount:
        payload["DiscountAmount"] = money(line.discount_amount)
    return payload


def invoice_payload(inv: MartInvoice) -> dict:
    """The invoice as posted, minus the Contact (its ContactID is only known at send time)."""
    missing = [name for name in ("customer_id", "issued_on", "due_on", "currency") if not getattr(inv, name)]
    if missing:
        raise MappingError(f"the mart row has no {', '.join(missing)}")
    return {
        "Type": "ACCREC", "InvoiceNumber": inv.invoice_number, "Reference": inv.order_number or "",
        "Date": inv.issued_on.isoformat(), "DueDate": inv.due_on.isoformat(), "CurrencyCode": inv.currency,
        "LineAmountTypes": "Exclusive", "Status": "AUTHORISED",
        "LineItems": [line_payload(line, inv) for line in inv.lines],
    }


def invoice_hash(inv: MartInvoice) -> str:
    # A voided invoice has one target state whatever its lines say; payment progress
    # (paid / overdue …) is not posted, so it is not hashed either.
    if inv.voided:
        return content_hash({"v": INVOICE_MAPPING, "void": True})
    return content_hash({"v": INVOICE_MAPPING, "contact": inv.customer_id, "invoice": invoice_payload(inv)})


# -- comparison (recovery and read-back) --------------------------------------------------------
def _wire_date(value: Any) -> date | None:
    if not value:
        return None
    text = str(value)
    return parse_ms_json(text).date() if text.startswith("/Date(") else date.fromisoformat(text[:10])


def header_mismatches(remote: dict, inv: MartInvoice) -> list[Mismatch]:
    """Number / status / totals / dates / currency / line count of one Xero invoice vs its mart row."""
    n = inv.invoice_number
    out = []
    status = remote.get("Status")
    if inv.voided:
        if status != "VOIDED":
            out.append(Mismatch(n, "Status", "VOIDED", status))
        return out
    if status not in ("AUTHORISED", "PAID"):  # PAID: someone recorded the payment in Xero
        out.append(Mismatch(n, "Status", "AUTHORISED", status))
    for field, expected in (("Total", inv.total_amount), ("TotalTax", inv.tax_amount),
                            ("SubTotal", inv.subtotal_amount)):
        actual = remote.get(field)
        if actual is None or money(actual) != money(expected):
            out.append(Mismatch(n, field, money(expected), actual))
    for field, expected in (("DueDate", inv.due_on), ("Date", inv.issued_on)):
        actual = _wire_date(remote.get(field))
        if actual != expected:
            out.append(Mismatch(n, field, expected, actual))
    if remote.get("CurrencyCode") != inv.currency:
        out.append(Mismatch(n, "CurrencyCode", inv.currency, remote.get("CurrencyCode")))
    if "LineItems" in remote and len(remote["LineItems"]) != len(inv.lines):
        out.append(Mismatch(n, "LineItems", len(inv.lines), len(remote["LineItems"])))
    return out


def invoice_is_current(remote: dict, inv: MartInvoice) -> bool:
    """Does Xero already hold exactly what we would post (lines included)?"""
    if inv.voided:
        return remote.get("Status") == "VOIDED"
    if header_mismatches(remote, inv) or remote.get("Reference", "") != (inv.order_number or ""):
        return False
    contact_number = (remote.get("Contact") or {}).get("ContactNumber")
    if contact_number is not None and contact_number != inv.customer_id:
        return False
    remote_lines = remote.get("LineItems") or []
    if len(remote_lines) != len(inv.lines):
        return False
    for got, line in zip(remote_lines, inv.lines):
        want = line_payload(line, inv)
        if (got.get("Description") != want["Description"] or got.get("AccountCode") != want["AccountCode"]
                or got.get("TaxType") != want["TaxType"]
                or _dec(got.get("Quantity")) != want["Quantity"]
                or _dec(got.get("UnitAmount")) != want["UnitAmount"]
                or money(_dec(got.get("DiscountAmount"))) != money(line.discount_amount)
                or money(_dec(got.get("TaxAmount"))) != want["TaxAmount"]
                or money(_dec(got.get("LineAmount"))) != want["LineAmount"]):
            return False
    return True


def compare_with_marts(invoices: Iterable[MartInvoice], remote: Iterable[dict], managed_ids: set[str]
                       ) -> list[Mismatch]:
    """Every mart invoice present once with the mart's figures; nothing we manage that the marts lack."""
    by_number: dict[str, list[dict]] = defaultdict(list)
    for r in remote:
        if r.get("Status") != "DELETED":
            by_number[r.get("InvoiceNumber") or ""].append(r)
    out: list[Mismatch] = []
    for inv in invoices:
        found = by_number.pop(inv.invoice_number, [])
        if len(found) > 1:
            out.append(Mismatch(inv.invoice_number, "count", 1, len(found)))
        if not found:
            if not inv.voided:
                out.append(Mismatch(inv.invoice_number, "presence", "in Xero", "missing"))
            continue
        for r in found:
            out.extend(header_mismatches(r, inv))
    for number, rs in by_number.items():
        for r in rs:
            if r.get("InvoiceID") in managed_ids and r.get("Status") != "VOIDED":
                out.append(Mismatch(number, "presence", "not in the marts", r.get("Status")))
    return out


def payment_payload(p: MartPayment, invoice_id: str) -> dict:
    """A card payment applied to its invoice, received into the processor's clearing account."""
    return {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": CLEARING_ACCOUNT},
            "Date": p.paid_on.isoformat(), "Amount": money(p.amount), "Reference": p.payment_id}


def compare_paid(invoices: Iterable[MartInvoice], payments: list[MartPayment], remote: Iterable[dict]
                 ) -> list[Mismatch]:
    """What Xero says was paid on each invoice equals the payments the marts apply to it."""
    applied: dict[str, Decimal] = defaultdict(Decimal)
    for p in payments:
        applied[p.invoice_number] += p.amount
    by_number = {r.get("InvoiceNumber"): r for r in remote if r.get("Status") not in ("DELETED",)}
    out = []
    for inv in invoices:
        r = by_number.get(inv.invoice_number)
        if r is None or inv.voided:
            continue
        if money(r.get("AmountPaid", 0)) != money(applied[inv.invoice_number]):
            out.append(Mismatch(inv.invoice_number, "AmountPaid", money(applied[inv.invoice_number]),
                                r.get("AmountPaid")))
    return out


# -- one run ----------------------------------------------------------------------------------------
def _element_outcome(element: dict, id_field: str) -> Outcome:
    errors = [v.get("Message", "") for v in element.get("ValidationErrors") or []]
    if element.get("StatusAttributeString") == "ERROR" or (errors and element.get("StatusAttributeString") != "OK"):
        return Outcome(False, error="; ".join(e for e in errors if e) or "rejected by Xero")
    return Outcome(True, element.get(id_field))


def _rejection(exc: ApiError) -> str:
    try:
        body = loads(exc.body)
        messages = [v.get("Message") for e in body.get("Elements") or [] for v in e.get("ValidationErrors") or []]
        return "; ".join(m for m in messages if m) or body.get("Message") or str(exc)
    except (ValueError, AttributeError):
        return str(exc)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class _XeroRun:
    def __init__(self, client: ApiClient, ledger: PublishLedger, result: PublishResult, batch_size: int,
                 dry_run: DryRun | None = None) -> None:
        self.client = client
        self.ledger = ledger
        self.result = result
        self.batch_size = batch_size
        self.dry = dry_run
        self.contact_ids: dict[str, str] = {}
        self.invoice_ids: dict[str, str] = {}
        self.payouts_expected: dict[str, Decimal] = {}  # summary invoice number -> payout amount
        self.rejected: list[tuple[str, str, Any, str]] = []  # (object type, key, body, Xero's message)
        self.last_read: dict[str, dict] = {}  # the invoices the read-back saw, by InvoiceID

    def _write(self, object_type: str, writes: list[Write], send: Callable[[list[Write]], list[Outcome]],
               batch_size: int | None = None) -> None:
        """write_batches, or in dry-run mode only a note of what would be sent; Xero's refusals are
        kept for the quarantine with the body that was refused."""
        if self.dry is not None:
            for w in writes:
                self.dry.add(object_type, w.op, w.key, w.body, remote_id=w.remote_id)
            return

        def send_and_keep(batch: list[Write]) -> list[Outcome]:
            outcomes = send(batch)
            for w, o in zip(batch, outcomes):
                if not o.ok:
                    self.rejected.append((object_type, w.key, w.body, o.error or "rejected by Xero"))
            return outcomes
        write_batches(self.ledger, object_type, writes, send_and_keep, counts=self.result.of(object_type),
                      errors=self.result.errors, batch_size=batch_size or self.batch_size)

    # -- HTTP --------------------------------------------------------------------------------------
    def _post(self, path: str, body: dict, key: str) -> dict:
        try:
            return self.client.request("POST", path, params={"summarizeErrors": "false", "unitdp": "4"},
                                       json=body, headers={"Idempotency-Key": key}).json()
        except ApiError as exc:
            if exc.status == 400:
                raise Rejected(_rejection(exc)) from None
            raise

    # -- contacts ------------------------------------------------------------------------------------
    def find_contacts(self, keys: list[str]) -> dict[str, dict]:
        where = " OR ".join(f'ContactNumber=="{_quote(k)}"' for k in keys)
        body = self.client.get_json("Contacts", params={"where": where, "includeArchived": "true"})
        found: dict[str, dict] = {}
        for contact in body.get("Contacts", []):
            number = contact.get("ContactNumber")
            if number in keys and (number not in found or contact.get("ContactStatus") == "ACTIVE"):
                found[number] = contact
        return found

    def send_contacts(self, batch: list[Write]) -> list[Outcome]:
        key = idempotency_key("xero-contacts", [(w.key, w.content_hash, w.remote_id) for w in batch])
        answer = self._post("Contacts", {"Contacts": [w.body for w in batch]}, key)
        return [_element_outcome(e, "ContactID") for e in answer.get("Contacts", [])]

    def publish_contacts(self, invoices: list[MartInvoice]) -> None:
        payloads: dict[str, dict] = {}
        for inv in invoices:  # issued_on order: the latest invoice's name/email wins
            if not inv.voided and inv.customer_id:
                payloads[inv.customer_id] = contact_payload(inv)
        disambiguate_names(payloads)
        desired = {k: Desired(k, content_hash({"v": CONTACT_MAPPING, **p}), p) for k, p in payloads.items()}
        counts = self.result.of("contact")

        def is_current(remote: dict, want: Desired[dict]) -> bool:
            return (remote.get("Name") == want.record["Name"]
                    and (remote.get("EmailAddress") or None) == want.record.get("EmailAddress"))

        resolve_unknown(self.ledger, "contact", desired, self.find_contacts, remote_id_of=lambda c: c["ContactID"],
                        is_current=is_current, counts=counts, batch_size=LOOKUP_BATCH)
        plan = self.ledger.plan("contact", [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        self._unresolved("contact", plan.unresolved)
        writes = [Write("create", k, desired[k].content_hash, None, desired[k].record) for k in plan.new]
        writes += [Write("update", e.business_key, desired[e.business_key].content_hash, e.remote_id,
                         {"ContactID": e.remote_id, **desired[e.business_key].record}) for e in plan.changed]
        self._write("contact", writes, self.send_contacts)
        self.contact_ids = {k: e.remote_id for k, e in self.ledger.entries("contact").items()
                            if e.remote_id and e.status != "pending"}
        if self.dry is not None:  # what a real run would have created by now
            self.contact_ids.update({w.key: w.remote_id or f"(new contact {w.key})" for w in writes})

    # -- invoices ------------------------------------------------------------------------------------
    def find_invoices(self, numbers: list[str]) -> dict[str, dict]:
        plain = [n for n in numbers if "," not in n]
        requests: list[dict[str, Any]] = []
        if plain:
            requests.append({"InvoiceNumbers": ",".join(plain)})
        requests += [{"where": f'InvoiceNumber=="{_quote(n)}"'} for n in numbers if "," in n]
        found: dict[str, dict] = {}
        for params in requests:
            body = self.client.get_json("Invoices", params={**params, "page": 1, "pageSize": 100, "unitdp": 4})
            for inv in body.get("Invoices", []):
                number = inv.get("InvoiceNumber")
                if inv.get("Type") != "ACCREC" or number not in numbers or inv.get("Status") == "DELETED":
                    continue
                found.setdefault(number, inv)
        return found

    def each_invoice(self) -> Iterator[dict]:
        """Every sales invoice in the organisation, in pages of 1000."""
        for body in page_number_pages(self.client, "Invoices",
                                      {"where": 'Type=="ACCREC"', "pageSize": READ_PAGE_SIZE, "unitdp": 4},
                                      page_size=READ_PAGE_SIZE, items=lambda b: b.get("Invoices", [])):
            yield from body.get("Invoices", [])

    def all_invoices(self) -> dict[str, dict]:
        """Every sales invoice by number, DELETED ones left out (the look-up of a first publish)."""
        found: dict[str, dict] = {}
        for inv in self.each_invoice():
            if inv.get("Status") != "DELETED":
                found.setdefault(inv.get("InvoiceNumber"), inv)
        return found

    def send_invoices(self, batch: list[Write]) -> list[Outcome]:
        key = idempotency_key("xero-invoices", [(w.key, w.content_hash, w.remote_id, w.body["Contact"]["ContactID"])
                                                for w in batch])
        answer = self._post("Invoices", {"Invoices": [w.body for w in batch]}, key)
        elements = answer.get("Invoices", [])
        for write, element in zip(batch, elements):
            if element.get("InvoiceNumber") not in (None, write.key):
                raise RuntimeError(f"xero answered for {element.get('InvoiceNumber')!r} where {write.key!r} was sent")
        return [_element_outcome(e, "InvoiceID") for e in elements]

    def send_void(self, batch: list[Write]) -> list[Outcome]:
        (write,) = batch
        key = idempotency_key("xero-void", [(write.key, write.content_hash, write.remote_id)])
        try:
            self.client.request("POST", f"Invoices/{write.remote_id}", params={"unitdp": "4"},
                                json={"Invoices": [{"InvoiceID": write.remote_id, "Status": "VOIDED"}]},
                                headers={"Idempotency-Key": key})
        except ApiError as exc:
            if exc.status not in (400, 404):
                raise
            if exc.status == 400:  # refused: fine if someone already voided it in Xero
                current = self.client.get_json(f"Invoices/{write.remote_id}")["Invoices"][0]
                if current.get("Status") == "VOIDED":
                    return [Outcome(True, write.remote_id)]
            return [Outcome(False, error=_rejection(exc))]
        return [Outcome(True, write.remote_id)]

    def publish_invoices(self, invoices: list[MartInvoice]) -> None:
        counts = self.result.of("invoice")
        desired: dict[str, Desired[MartInvoice]] = {}
        unmappable = []
        for inv in invoices:
            try:
                desired[inv.invoice_number] = Desired(inv.invoice_number, invoice_hash(inv), inv)
            except MappingError as exc:
                unmappable.append((inv.invoice_number, None, f"not posted: {exc}", None))
        if self.dry is None:
            self.ledger.mark_failed_many("invoice", unmappable)
        counts.failed += len(unmappable)
        self.result.errors.extend(ItemError("invoice", k, e) for k, _, e, _ in unmappable)
        self.rejected.extend(("invoice", k, None, e) for k, _, e, _ in unmappable)  # bad rows: quarantined too
        resolve_unknown(self.ledger, "invoice", desired, self.find_invoices, remote_id_of=lambda r: r["InvoiceID"],
                        is_current=lambda remote, want: invoice_is_current(remote, want.record), counts=counts,
                        batch_size=LOOKUP_BATCH, find_all=self.all_invoices, scan_above=3 * LOOKUP_BATCH)
        plan = self.ledger.plan("invoice", [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        self._unresolved("invoice", plan.unresolved)
        writes: list[Write] = []
        voids: list[Write] = []
        never_posted: list[tuple[str, str, str | None]] = []
        no_contact: list[tuple[str, str, str, str | None]] = []
        for key in plan.new:
            want = desired[key]
            if want.record.voided:  # the look-up found nothing: voided before it was ever published
                never_posted.append((key, want.content_hash, None))
                continue
            body = self._invoice_body(want.record)
            if body is None:
                no_contact.append((key, want.content_hash, self._no_contact(want.record), None))
                continue
            writes.append(Write("create", key, want.content_hash, None, body))
        for entry in plan.changed:
            want = desired[entry.business_key]
            if want.record.voided:
                voids.append(Write("void", entry.business_key, want.content_hash, entry.remote_id, None))
                continue
            body = self._invoice_body(want.record)
            if body is None:
                no_contact.append((entry.business_key, want.content_hash, self._no_contact(want.record),
                                   entry.remote_id))
                continue
            writes.append(Write("update", entry.business_key, want.content_hash, entry.remote_id,
                                {"InvoiceID": entry.remote_id, **body}))
        if self.dry is None:
            self.ledger.mark_done_many("invoice", never_posted,
                                       detail="voided before it was ever published: nothing posted")
            self.ledger.mark_failed_many("invoice", no_contact)
        counts.skipped += len(never_posted)
        counts.failed += len(no_contact)
        self.result.errors.extend(ItemError("invoice", k, e) for k, _, e, _ in no_contact)
        self._write("invoice", writes, self.send_invoices)
        self._write("invoice", voids, self.send_void, batch_size=1)
        self.invoice_ids = {k: e.remote_id for k, e in self.ledger.entries("invoice").items()
                            if e.remote_id and e.status != "pending"}
        if self.dry is not None:
            self.invoice_ids.update({w.key: w.remote_id or f"(new invoice {w.key})" for w in writes})

    # -- payments against trade invoices -------------------------------------------------------------
    def find_payments(self, keys: list[str]) -> dict[str, dict]:
        where = " OR ".join(f'Reference=="{_quote(k)}"' for k in keys)
        body = self.client.get_json("Payments", params={"where": where, "page": 1, "pageSize": 1000})
        found: dict[str, dict] = {}
        for payment in body.get("Payments", []):
            if payment.get("Reference") in keys and payment.get("Status") != "DELETED":
                found.setdefault(payment["Reference"], payment)
        return found

    def all_payments(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for page in page_number_pages(self.client, "Payments", {"where": 'Status=="AUTHORISED"',
                                                                "pageSize": READ_PAGE_SIZE},
                                      page_size=READ_PAGE_SIZE, items=lambda b: b.get("Payments", [])):
            for payment in page.get("Payments", []):
                found.setdefault(payment.get("Reference") or "", payment)
        return found

    def send_payments(self, batch: list[Write]) -> list[Outcome]:
        key = idempotency_key("xero-payments", [(w.key, w.content_hash, w.remote_id) for w in batch])
        try:
            answer = self.client.request("PUT", "Payments", params={"summarizeErrors": "false"},
                                         json={"Payments": [w.body for w in batch]},
                                         headers={"Idempotency-Key": key}).json()
        except ApiError as exc:
            if exc.status == 400:
                raise Rejected(_rejection(exc)) from None
            raise
        return [_element_outcome(e, "PaymentID") for e in answer.get("Payments", [])]

    def send_payment_deletes(self, batch: list[Write]) -> list[Outcome]:
        (w,) = batch
        key = idempotency_key("xero-payment-delete", [(w.key, w.content_hash, w.remote_id)])
        try:
            self.client.request("POST", f"Payments/{w.remote_id}", json={"Status": "DELETED"},
                                headers={"Idempotency-Key": key})
        except ApiError as exc:
            if exc.status == 404:
                return [Outcome(True, w.remote_id)]  # already gone
            if exc.status == 400:
                return [Outcome(False, error=_rejection(exc))]
            raise
        return [Outcome(True, w.remote_id)]

    def publish_payments(self, payments: list[MartPayment]) -> None:
        """Card payments applied to trade invoices, into the processor's clearing account (835);
        Xero payments cannot be edited, so a changed one is deleted and entered again."""
        counts = self.result.of("payment")
        desired: dict[str, Desired[MartPayment]] = {}
        waiting = 0
        for p in payments:
            if p.invoice_number not in self.invoice_ids:
                waiting += 1
                continue
            body = payment_payload(p, self.invoice_ids[p.invoice_number])
            desired[p.payment_id] = Desired(p.payment_id, content_hash({"v": PAYMENT_MAPPING, **body}), p)
        if waiting:
            log.info("xero: %d payments wait for their invoice", waiting)

        def is_current(remote: dict, want: Desired[MartPayment]) -> bool:
            return (money(remote.get("Amount", 0)) == money(want.record.amount)
                    and _wire_date(remote.get("Date")) == want.record.paid_on
                    and (remote.get("Invoice") or {}).get("InvoiceID") == self.invoice_ids.get(want.record.invoice_number))

        resolve_unknown(self.ledger, "payment", desired, self.find_payments, remote_id_of=lambda r: r["PaymentID"],
                        is_current=is_current, counts=counts, batch_size=LOOKUP_BATCH, find_all=self.all_payments,
                        scan_above=3 * LOOKUP_BATCH)
        plan = self.ledger.plan("payment", [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        self._unresolved("payment", plan.unresolved)
        deleted = content_hash({"v": PAYMENT_MAPPING, "deleted": True})
        deletes = [Write("void", e.business_key, deleted, e.remote_id, None) for e in plan.changed
                   if e.content_hash != deleted]
        for key, entry in self.ledger.entries("payment").items():  # no longer applies (refunded, voided)
            if key not in desired and entry.remote_id and entry.status == "done" and entry.content_hash != deleted:
                deletes.append(Write("void", key, deleted, entry.remote_id, None))
        self._write("payment", deletes, self.send_payment_deletes, batch_size=1)
        again = [e.business_key for e in plan.changed]
        if self.dry is None:  # re-entered only once the old one is confirmed deleted
            after = self.ledger.entries_for("payment", again)
            again = [k for k in again if after[k].status == "done" and after[k].content_hash == deleted]
        creates = [Write("create", k, desired[k].content_hash, None,
                         payment_payload(desired[k].record, self.invoice_ids[desired[k].record.invoice_number]))
                   for k in [*plan.new, *again]]
        self._write("payment", creates, self.send_payments)

    def _invoice_body(self, inv: MartInvoice) -> dict | None:
        contact_id = self.contact_ids.get(inv.customer_id)
        if contact_id is None:
            return None
        return {"Contact": {"ContactID": contact_id}, **invoice_payload(inv)}

    @staticmethod
    def _no_contact(inv: MartInvoice) -> str:
        return f"customer {inv.customer_id} has no Xero contact (see the contact's error); invoice not posted"

    def _unresolved(self, object_type: str, entries: list) -> None:
        counts = self.result.of(object_type)
        for entry in entries:  # only if a look-up could not settle them; never re-posted blindly
            counts.unresolved += 1
            self.result.errors.append(ItemError(object_type, entry.business_key, "still pending after look-up"))

    # -- read-back --------------------------------------------------------------------------------
    def read_back(self, invoices: list[MartInvoice], payments: list[MartPayment] | None = None) -> None:
        # keyed by id: a record repeated at a page boundary is counted once
        remote = {inv["InvoiceID"]: inv for inv in self.each_invoice()}
        self.last_read = remote
        managed = {e.remote_id for e in self.ledger.entries("invoice").values() if e.remote_id}
        self.result.read_back = len(remote)
        self.result.mismatches = compare_with_marts(invoices, remote.values(), managed)
        if payments is not None:
            self.result.mismatches += compare_paid(invoices, payments, remote.values())
        by_number: dict[str, list[dict]] = defaultdict(list)
        for r in remote.values():
            if r.get("Status") not in ("DELETED", "VOIDED"):
                by_number[r.get("InvoiceNumber") or ""].append(r)
        if any(a < 0 for a in self.payouts_expected.values()):  # negative payouts are credit notes
            from finance_pipeline.platforms.xero.payouts import all_credit_notes

            for number, note in all_credit_notes(self).items():
                by_number[number].append({"Total": note.get("Total"),
                                          "AmountPaid": money(note.get("Total", 0)) - money(note.get("RemainingCredit", 0))})
        for number, amount in self.payouts_expected.items():  # each payout once, settled in full through the bank
            found = by_number.get(number, [])
            if len(found) != 1:
                self.result.mismatches.append(Mismatch(number, "count", 1, len(found)))
                continue
            for field, value in (("Total", found[0].get("Total")), ("AmountPaid", found[0].get("AmountPaid"))):
                if value is None or money(value) != money(abs(amount)):
                    self.result.mismatches.append(Mismatch(number, field, money(abs(amount)), value))


def publish_trade_invoices(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                           client: ApiClient | None = None, batch_size: int = BATCH_SIZE,
                           dry_run: bool = False, payouts: bool = True) -> PublishResult:
    """Publish the marts' trade invoices (and their customers) to Xero; read back; compare.

    Safe to re-run at any time and after any crash: unchanged records are not sent, changed ones
    update the same Xero record, records whose last write has no known outcome are looked up in
    Xero before anything else.  Holds the warehouse open (read-write) for the duration of the run.
    """
    started = time.monotonic()
    own_client = client is None
    con = open_warehouse(warehouse_path)
    ledger = PublishLedger(con, DESTINATION).ensure_schema()
    result = PublishResult(DESTINATION, ledger.run_id, primary="invoice")
    for object_type in ("contact", "invoice"):
        result.of(object_type)
    dry = DryRun(DESTINATION) if dry_run else None
    run = None
    journals: dict[str, dict] = {}
    try:
        invoices = load_trade_invoices(con)
        payments = load_invoice_payments(con, invoices)
        client = client or make_client(connection)
        run = _XeroRun(client, ledger, result, batch_size, dry)
        run.publish_contacts(invoices)
        run.publish_invoices(invoices)
        if payments:
            run.publish_payments(payments)
        from finance_pipeline.platforms.xero.credit_notes import publish_credit_notes

        refunds = publish_credit_notes(run, con, invoices)
        if payouts:
            from finance_pipeline.platforms.xero.payouts import publish_payouts

            publish_payouts(run, con)
            from finance_pipeline.platforms.xero.gift_cards import publish_gift_card_journals

            journals = publish_gift_card_journals(run, con)
        if dry is None:
            run.read_back(invoices, payments if payments else None)
            if payouts and (journals or ledger.entries("gift_card_journal")):
                from finance_pipeline.platforms.xero.gift_cards import compare_journals

                result.mismatches += compare_journals(run, journals)
            if refunds:
                from finance_pipeline.platforms.xero.credit_notes import compare_credit_notes
                from finance_pipeline.platforms.xero.payouts import all_credit_notes

                result.mismatches += compare_credit_notes(refunds, all_credit_notes(run), invoices, payments,
                                                          run.last_read.values())
    finally:
        if client is not None:
            result.requests = client.stats["requests"]
            if own_client:
                client.close()
                auth = getattr(client, "auth", None)
                if auth is not None and hasattr(auth, "close"):
                    auth.close()
        con.close()
    if dry is not None:
        result.dry_run = dry.summary()
        result.dry_run["plan_file"] = dry.save(settings)
    elif run is not None and run.rejected:
        result.quarantined = quarantine_rejections(settings, DESTINATION, run.rejected)
    result.seconds = time.monotonic() - started
    inv, contacts = result.of("invoice"), result.of("contact")
    log.info("xero publish: invoices created %d, updated %d, voided %d, unchanged %d, skipped %d, failed %d, "
             "unresolved %d, recovered %d; contacts written %d; %d read back, %d mismatches, %d requests, %.1f s",
             inv.created, inv.updated, inv.voided, inv.unchanged, inv.skipped, inv.failed, inv.unresolved,
             inv.recovered, contacts.written, result.read_back, len(result.mismatches), result.requests,
             result.seconds)
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_trade_invoices, argv,
                   "Publish contacts, trade invoices, their payments and payout summaries from the marts to Xero.")


if __name__ == "__main__":
    sys.exit(main())

"""Trade invoices raised in the other channels, their customers and payments, from the marts to Zoho Books.

Reads `publish.marts.load_trade_invoices(con, exclude_channel="zoho_books")` (never the desk's own
invoices back) and `load_invoice_payments`, and writes with the shared ledger protocol
(`finance_pipeline.publish.mechanics`):

- **contacts** (customers), created when missing: `contact_name` = "<name> (<customer id>)" (Zoho
  wants unique names, and one company can reach the marts under two ids from two channels),
  `contact_number` = the customer id (how they are found again; the desk's own customers
  already carry it), `currency_id` of the customer's first invoice (Zoho invoices a customer in
  the customer's currency).  A contact found with another currency makes its invoices refused.
- **invoices**: `invoice_number` = the marts' number with `ignore_auto_number_generation=true`, the
  order number in `reference_number`, date / due date / terms, one line per mart line (`rate`,
  `quantity`, `discount` as an amount) with the org's VAT rate for UK VAT or a tax exemption
  (reverse charge, export, US resale) — Zoho computes the totals, so a line whose amount or tax
  Zoho would compute differently from the marts is refused before sending.  US sales tax (the US
  division's invoices) is outside UK VAT: the lines carry the out-of-scope exemption and the tax is
  one more line, "US sales tax", posted (`account_id`) to the org's US sales tax payable liability
  (account code 2220 in the chart of accounts), so Zoho's total is the marts' total and its VAT 0.  Changed → PUT;
  voided → `status/void` (after its payments are deleted); a duplicate-number answer (1001) after a
  lost response is resolved by looking the invoice up and updating it.
- **customer payments** applied to those invoices (`reference_number` = the processor's payment id,
  `payment_mode` creditcard for card processors, banktransfer otherwise); changed → PUT; no longer
  applicable → DELETE.

Look-ups before any write (a crash between a write and the ledger update): invoices by
`invoice_number`, payments by `reference_number`, contacts by `contact_number` (one listing).
Refused records are failed in the ledger and quarantined with Zoho's message.  Read-back lists
the org's invoices and compares totals, tax, balance, currency, due date and status with the marts.

Run alone (the kill -9 test does): `python -m finance_pipeline.platforms.zoho_books.publish --data-dir DIR`.
"""
from __future__ import annotations

import logging
import sys
from collections import defaultdict
from decimal import Decimal
from typing import Any, Callable

from finance_pipeline.http import ApiClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.zoho_books.client import ZohoApiError, call, make_client, pages
from finance_pipeline.platforms.zoho_books.wire import DUPLICATE_NUMBER, money
from finance_pipeline.publish.destinations import DryRun
from finance_pipeline.publish.ledger import PublishLedger, content_hash
from finance_pipeline.publish.marts import (
    SALES_TAX_LINE_NAME, MartInvoice, MartPayment, load_invoice_payments, load_trade_invoices,
)
from finance_pipeline.publish.mechanics import (
    Desired, ItemError, Mismatch, Outcome, PublishResult, Write, resolve_unknown, write_each,
)
from finance_pipeline.publish.runner import compare_by_reference, run_publisher
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import WarehouseTarget

log = logging.getLogger("finance_pipeline.zoho_books.publish")

DESTINATION = "zoho_books"
CONTACT_MAPPING = "zoho-contact/1"
INVOICE_MAPPING = "zoho-invoice/1"
PAYMENT_MAPPING = "zoho-payment/1"
EXEMPTION_CODES = {"eu_reverse_charge": "REVERSECHARGE", "export_zero_rated": "EXPORT",
                   "us_resale_exempt": "RESALE", "us_sales_tax": "OUTOFSCOPE"}
SALES_TAX_ACCOUNT_CODE = "2220"  # the liability the US sales tax line posts to (the GL seed's code)
CARD_CHANNELS = {"stripe", "paypal", "square"}
LOOKUP_BATCH = 25
SCAN_ABOVE = 40
# writes per ledger batch: Zoho has no batch create, so each is still its own request; the batch
# shares the two ledger transactions (pending before, done/failed after) that dominated a run
WRITE_BATCH = 200


class MappingError(ValueError):
    """A mart row Zoho Books cannot hold as it is; recorded failed and quarantined, the rest go on."""


class _Refs:
    """Currency, tax and tax-exemption ids of the organisation, read once per run."""

    def __init__(self, client: ApiClient) -> None:
        self.currencies = {c["currency_code"]: c["currency_id"]
                           for c in call(client, "GET", "settings/currencies").get("currencies", [])}
        self.taxes = {Decimal(str(t["tax_percentage"])): t["tax_id"]
                      for t in call(client, "GET", "settings/taxes").get("taxes", [])}
        self.exemptions = {e["tax_exemption_code"]: e["tax_exemption_id"]
                           for e in call(client, "GET", "settings/taxexemptions").get("tax_exemptions", [])}
        self._client = client
        self._accounts: dict[str, str] | None = None

    def account(self, code: str) -> str:
        """The id of the chart-of-accounts entry with this account code (read when first needed)."""
        if self._accounts is None:
            self._accounts = {str(a.get("account_code") or ""): a["account_id"]
                              for page in pages(self._client, "chartofaccounts", "chartofaccounts", {})
                              for a in page if a.get("is_active", True)}
        if code not in self._accounts:
            raise MappingError(f"the organisation's chart of accounts has no account {code}")
        return self._accounts[code]

    def currency(self, code: str) -> str:
        if code not in self.currencies:
            raise MappingError(f"currency {code} is not enabled in the Zoho Books organisation")
        return self.currencies[code]

    def tax(self, treatment: str, rate: Decimal | None) -> tuple[dict, Decimal]:
        """The line's tax fields and the percentage Zoho will apply."""
        if treatment == "uk_vat":
            pct = (rate or Decimal(0)) * 100 if (rate or 0) <= 1 else Decimal(rate)
            pct = pct.normalize()
            match = next((tid for p, tid in self.taxes.items() if p == pct), None)
            if match is None:
                raise MappingError(f"the organisation has no {pct}% tax")
            return {"tax_id": match}, pct
        code = EXEMPTION_CODES.get(treatment)
        if code is None or code not in self.exemptions:
            raise MappingError(f"tax treatment {treatment!r} has no Zoho Books tax or exemption")
        return {"tax_exemption_id": self.exemptions[code]}, Decimal(0)


def invoice_payload(inv: MartInvoice, refs: _Refs) -> dict:
    """The invoice as posted, minus `customer_id` (known only at send time)."""
    missing = [n for n in ("customer_id", "issued_on", "due_on", "currency") if not getattr(inv, n)]
    if missing:
        raise MappingError(f"the mart row has no {', '.join(missing)}")
    if not inv.lines:
        raise MappingError("the invoice has no lines")
    refs.currency(inv.currency)
    items, total = [], Decimal("0.00")
    sales_tax = money(inv.sales_tax_payable)
    for line in inv.lines:
        tax_fields, pct = refs.tax(inv.tax_treatment, line.tax_rate)
        amount = money(line.quantity * line.unit_amount - line.discount_amount)
        if amount != money(line.line_amount):
            raise MappingError(f"line {line.line_number}: rate x quantity - discount = {amount}, the marts say "
                               f"{money(line.line_amount)}")
        tax = money(amount * pct / 100)
        if tax != (Decimal("0.00") if sales_tax else money(line.tax_amount)):
            raise MappingError(f"line {line.line_number}: Zoho Books would charge {tax} tax at {pct}%, the marts "
                               f"say {money(line.tax_amount)}")
        items.append({"name": (line.description or line.sku or line.kind)[:100], "description": line.sku or "",
                      "rate": line.unit_amount, "quantity": line.quantity,
                      "discount": money(line.discount_amount), **tax_fields})
        total += amount + tax
    if sales_tax:  # outside UK VAT: its own line to the liability, exempt like the goods
        exempt, _ = refs.tax(inv.tax_treatment, None)
        items.append({"name": SALES_TAX_LINE_NAME, "description": "US state sales tax payable",
                      "rate": sales_tax, "quantity": Decimal(1), "discount": Decimal("0.00"),
                      "account_id": refs.account(SALES_TAX_ACCOUNT_CODE), **exempt})
        total += sales_tax
    if total != money(inv.total_amount):
        raise MappingError(f"the lines add up to {total}, the invoice total is {money(inv.total_amount)}")
    return {"invoice_number": inv.invoice_number, "reference_number": (inv.order_number or "")[:50],
            "date": inv.issued_on.isoformat(), "due_date": inv.due_on.isoformat(),
            "payment_terms": (inv.due_on - inv.issued_on).days, "is_inclusive_tax": False,
            "notes": f"Trade invoice from the {inv.channel or 'sales'} channel", "line_items": items}


def _is_void(remote: dict) -> bool:
    return remote.get("status") == "void"


def invoice_is_current(remote: dict, inv: MartInvoice, payload: dict | None) -> bool:
    if inv.voided:
        return _is_void(remote)
    return (payload is not None and not _is_void(remote) and remote.get("date") == payload["date"]
            and remote.get("due_date") == payload["due_date"]
            and money(remote.get("total", 0)) == money(inv.total_amount)
            and remote.get("reference_number", "") == payload["reference_number"])


class _ZohoRun:
    def __init__(self, client: ApiClient, ledger: PublishLedger, result: PublishResult,
                 dry_run: DryRun | None) -> None:
        self.client, self.ledger, self.result, self.dry = client, ledger, result, dry_run
        self.refs = _Refs(client)
        self.contact_ids: dict[str, str] = {}
        self.contact_currency: dict[str, str] = {}
        self.invoice_ids: dict[str, str] = {}
        self.rejected: list[tuple[str, str, Any, str]] = []  # (entity, key, body, Zoho's message)
        self._contacts: dict[str, dict] | None = None

    # -- shared ---------------------------------------------------------------------------------------
    def _refused(self, entity: str, w: Write, exc: ZohoApiError) -> Outcome:
        if exc.status in (401, 403):
            raise exc
        message = f"Zoho Books refused it (code {exc.code}): {exc.message}"
        self.rejected.append((entity, w.key, w.body, message))
        return Outcome(False, error=message)

    def _send(self, entity: str, w: Write, do: Callable[[], dict], result_key: str | None) -> Outcome:
        try:
            answer = do()
        except ZohoApiError as exc:
            return self._refused(entity, w, exc)
        remote = answer.get(result_key) if result_key else None
        return Outcome(True, str(remote[f"{result_key}_id"]) if isinstance(remote, dict) else w.remote_id)

    def _write_all(self, object_type: str, writes: list[Write], send: Callable[[Write], Outcome]) -> None:
        if self.dry is not None:
            for w in writes:
                self.dry.add(object_type, w.op, w.key, w.body, remote_id=w.remote_id)
            return
        write_each(self.ledger, object_type, writes, send, counts=self.result.of(object_type),
                   errors=self.result.errors, group_size=WRITE_BATCH)

    def _fail_before_sending(self, object_type: str, rows: list[tuple[str, str | None, str, str | None]],
                             bodies: dict[str, Any] | None = None) -> None:
        if self.dry is None:
            self.ledger.mark_failed_many(object_type, rows)
        self.result.of(object_type).failed += len(rows)
        self.result.errors.extend(ItemError(object_type, k, e) for k, _, e, _ in rows)
        self.rejected.extend((object_type, k, (bodies or {}).get(k), e) for k, _, e, _ in rows)

    def _unresolved(self, object_type: str, entries: list) -> None:
        for entry in entries:
            self.result.of(object_type).unresolved += 1
            self.result.errors.append(ItemError(object_type, entry.business_key, "still pending after look-up"))

    def _plan_writes(self, object_type: str, desired: dict[str, Desired]) -> tuple[list[str], list]:
        plan = self.ledger.plan(object_type, [(k, d.content_hash) for k, d in desired.items()])
        self.result.of(object_type).unchanged += len(plan.unchanged)
        self._unresolved(object_type, plan.unresolved)
        return plan.new, plan.changed

    # -- contacts -------------------------------------------------------------------------------------
    def all_contacts(self) -> dict[str, dict]:
        if self._contacts is None:
            self._contacts = {}
            for page in pages(self.client, "contacts", "contacts", {"sort_column": "created_time"}):
                for row in page:
                    if row.get("contact_number"):
                        self._contacts.setdefault(str(row["contact_number"]), row)
        return self._contacts

    def publish_contacts(self, invoices: list[MartInvoice]) -> None:
        desired: dict[str, Desired[dict]] = {}
        for inv in invoices:  # issued order: the currency of the customer's first invoice
            if inv.customer_id and inv.customer_id not in desired:
                try:
                    currency_id = self.refs.currency(inv.currency)
                except MappingError:
                    continue  # its invoices are refused with the reason
                name = (inv.customer_name or "").strip()
                body = {"contact_name": f"{name} ({inv.customer_id})" if name else inv.customer_id,
                        "company_name": (inv.customer_name or "").strip()[:200], "contact_type": "customer",
                        "contact_number": inv.customer_id, "currency_id": currency_id,
                        **({"email": inv.customer_email} if inv.customer_email else {})}
                digest = content_hash({"v": CONTACT_MAPPING, "number": inv.customer_id, "currency": inv.currency})
                desired[inv.customer_id] = Desired(inv.customer_id, digest, body)
        counts = self.result.of("contact")
        resolve_unknown(self.ledger, "contact", desired,
                        lambda keys: {k: self.all_contacts()[k] for k in keys if k in self.all_contacts()},
                        remote_id_of=lambda r: r["contact_id"], is_current=lambda remote, want: True,
                        counts=counts, batch_size=LOOKUP_BATCH)
        new, changed = self._plan_writes("contact", desired)
        # contacts are created when missing and then left to the bookkeeper: a changed hash (another
        # currency for a customer Zoho already holds) is recorded, not written
        if self.dry is None:
            self.ledger.mark_done_many("contact", [(e.business_key, desired[e.business_key].content_hash,
                                                    e.remote_id) for e in changed],
                                       detail="contact exists; contacts are not updated")
        writes = [Write("create", k, desired[k].content_hash, None, desired[k].record) for k in new]
        self._write_all("contact", writes, lambda w: self._send(
            "contact", w, lambda: call(self.client, "POST", "contacts", body=w.body), "contact"))
        self.contact_ids = {k: e.remote_id for k, e in self.ledger.entries("contact").items()
                            if e.remote_id and e.status == "done"}
        for key, row in self.all_contacts().items():
            self.contact_currency[key] = row.get("currency_code", "")
        for w in writes:
            self.contact_currency.setdefault(w.key, next((c for c, i in self.refs.currencies.items()
                                                          if i == w.body["currency_id"]), ""))
        if self.dry is not None:
            self.contact_ids.update({w.key: f"(new contact {w.key})" for w in writes})

    # -- invoices -------------------------------------------------------------------------------------
    def find_invoices(self, numbers: list[str]) -> dict[str, dict]:
        found = {}
        for number in numbers:
            rows = call(self.client, "GET", "invoices", {"invoice_number": number}).get("invoices", [])
            found.update({r["invoice_number"]: r for r in rows if r.get("invoice_number") == number})
        return found

    def all_invoices(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for page in pages(self.client, "invoices", "invoices", {"sort_column": "created_time"}):
            for row in page:
                found.setdefault(row.get("invoice_number") or "", row)
        return found

    def plan_invoices(self, invoices: list[MartInvoice]) -> tuple[list[Write], list[Write]]:
        """(creates and updates, voids); unmappable rows failed and quarantined."""
        counts = self.result.of("invoice")
        desired: dict[str, Desired[tuple[MartInvoice, dict | None]]] = {}
        unmappable, bodies = [], {}
        for inv in invoices:
            try:
                payload = None if inv.voided else invoice_payload(inv, self.refs)
            except MappingError as exc:
                unmappable.append((inv.invoice_number, None, f"not posted: {exc}", None))
                continue
            digest = content_hash({"v": INVOICE_MAPPING, "void": True}) if inv.voided else \
                content_hash({"v": INVOICE_MAPPING, "customer": inv.customer_id, "invoice": payload})
            desired[inv.invoice_number] = Desired(inv.invoice_number, digest, (inv, payload))
        self._fail_before_sending("invoice", unmappable, bodies)
        resolve_unknown(self.ledger, "invoice", desired, self.find_invoices, remote_id_of=lambda r: r["invoice_id"],
                        is_current=lambda remote, want: invoice_is_current(remote, *want.record), counts=counts,
                        batch_size=LOOKUP_BATCH, find_all=self.all_invoices, scan_above=SCAN_ABOVE)
        new, changed = self._plan_writes("invoice", desired)
        writes, voids, never_posted, refused = [], [], [], []
        for key, remote_id in [(k, None) for k in new] + [(e.business_key, e.remote_id) for e in changed]:
            want = desired[key]
            inv, payload = want.record
            if inv.voided:
                if remote_id is None:
                    never_posted.append((key, want.content_hash, None))
                else:
                    voids.append(Write("void", key, want.content_hash, remote_id, None))
                continue
            contact = self.contact_ids.get(inv.customer_id or "")
            if contact is None:
                refused.append((key, want.content_hash, f"customer {inv.customer_id} has no Zoho Books contact (see "
                                "the contact's error); invoice not posted", remote_id))
                continue
            if self.contact_currency.get(inv.customer_id or "", inv.currency) not in ("", inv.currency):
                refused.append((key, want.content_hash, f"the Zoho Books contact of customer {inv.customer_id} is in "
                                f"{self.contact_currency[inv.customer_id or '']}, the invoice in {inv.currency}",
                                remote_id))
                continue
            body = {"customer_id": contact, **(payload or {})}
            writes.append(Write("create" if remote_id is None else "update", key, want.content_hash, remote_id, body))
        if self.dry is None:
            self.ledger.mark_done_many("invoice", never_posted, detail="voided before it was ever published")
        counts.skipped += len(never_posted)
        self._fail_before_sending("invoice", refused)
        return writes, voids

    def send_invoice(self, w: Write) -> Outcome:
        if w.op == "void":
            return self._send("invoice", w, lambda: call(self.client, "POST", f"invoices/{w.remote_id}/status/void"),
                              None)
        if w.op == "update":
            return self._send("invoice", w, lambda: call(self.client, "PUT", f"invoices/{w.remote_id}", body=w.body),
                              "invoice")
        try:
            answer = call(self.client, "POST", "invoices", {"ignore_auto_number_generation": "true"}, w.body)
        except ZohoApiError as exc:
            found = self.find_invoices([w.key]).get(w.key) if exc.code == DUPLICATE_NUMBER else None
            if found is None:
                return self._refused("invoice", w, exc)
            # our earlier create landed (its answer was lost): update that invoice instead
            return self._send("invoice", w, lambda: call(self.client, "PUT", f"invoices/{found['invoice_id']}",
                                                         body=w.body), "invoice")
        return Outcome(True, str(answer["invoice"]["invoice_id"]))

    def publish_invoices(self, writes: list[Write]) -> None:
        self._write_all("invoice", writes, self.send_invoice)
        self.invoice_ids = {k: e.remote_id for k, e in self.ledger.entries("invoice").items()
                            if e.remote_id and e.status == "done"}
        if self.dry is not None:
            self.invoice_ids.update({w.key: w.remote_id or f"(new invoice {w.key})" for w in writes})

    # -- payments -------------------------------------------------------------------------------------
    def find_payments(self, keys: list[str]) -> dict[str, dict]:
        found = {}
        for key in keys:
            rows = call(self.client, "GET", "customerpayments", {"reference_number": key}).get("customerpayments", [])
            found.update({key: r for r in rows if r.get("reference_number") == key})
        return found

    def all_payments(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for page in pages(self.client, "customerpayments", "customerpayments", {"sort_column": "date"}):
            for row in page:
                if row.get("reference_number"):
                    found.setdefault(row["reference_number"], row)
        return found

    def publish_payments(self, invoices: list[MartInvoice], payments: list[MartPayment]) -> None:
        by_number = {inv.invoice_number: inv for inv in invoices}
        desired: dict[str, Desired[dict]] = {}
        waiting = 0
        for p in payments:
            inv = by_number[p.invoice_number]
            invoice_id, contact = self.invoice_ids.get(p.invoice_number), self.contact_ids.get(inv.customer_id or "")
            if invoice_id is None or contact is None:
                waiting += 1  # its invoice is not in Zoho Books (failed, pending): next run
                continue
            mode = "creditcard" if p.channel in CARD_CHANNELS else "banktransfer"
            body = {"customer_id": contact, "payment_mode": mode,
                    "amount": money(p.amount), "date": p.paid_on.isoformat(), "reference_number": p.payment_id[:100],
                    "description": f"{p.channel} {p.payment_id}",
                    "invoices": [{"invoice_id": invoice_id, "amount_applied": money(p.amount)}]}
            desired[p.payment_id] = Desired(p.payment_id, content_hash({"v": PAYMENT_MAPPING, **body}), body)
        if waiting:
            log.info("zoho_books: %d payments wait for their invoice", waiting)

        number_of = {i: n for n, i in self.invoice_ids.items()}

        def is_current(remote: dict, want: Desired[dict]) -> bool:
            number = number_of.get(want.record["invoices"][0]["invoice_id"])
            return (money(remote.get("amount", 0)) == want.record["amount"]
                    and remote.get("date") == want.record["date"] and remote.get("invoice_numbers") == number)

        counts = self.result.of("payment")
        resolve_unknown(self.ledger, "payment", desired, self.find_payments, remote_id_of=lambda r: r["payment_id"],
                        is_current=is_current, counts=counts, batch_size=LOOKUP_BATCH, find_all=self.all_payments,
                        scan_above=SCAN_ABOVE)
        new, changed = self._plan_writes("payment", desired)
        writes = [Write("create", k, desired[k].content_hash, None, desired[k].record) for k in new]
        writes += [Write("update", e.business_key, desired[e.business_key].content_hash, e.remote_id,
                         desired[e.business_key].record) for e in changed]
        gone = content_hash({"v": PAYMENT_MAPPING, "deleted": True})
        for key, entry in self.ledger.entries("payment").items():
            if key not in desired and entry.remote_id and entry.status == "done" and entry.content_hash != gone:
                writes.append(Write("void", key, gone, entry.remote_id, None))
        # deletions first: they free the balance (or the invoice, for a void) the others may need
        writes.sort(key=lambda w: w.op != "void")

        def send(w: Write) -> Outcome:
            if w.op == "void":
                return self._send("payment", w, lambda: call(self.client, "DELETE", f"customerpayments/{w.remote_id}"),
                                  None)
            if w.op == "update":
                return self._send("payment", w, lambda: call(self.client, "PUT", f"customerpayments/{w.remote_id}",
                                                             body=w.body), "payment")
            return self._send("payment", w, lambda: call(self.client, "POST", "customerpayments", body=w.body),
                              "payment")

        self._write_all("payment", writes, send)

    # -- read-back ------------------------------------------------------------------------------------
    def read_back(self, invoices: list[MartInvoice], payments: list[MartPayment]) -> None:
        remote: dict[str, dict] = {}
        for page in pages(self.client, "invoices", "invoices", {"sort_column": "created_time"}):
            for row in page:
                remote[row["invoice_id"]] = row  # by id: a row repeated across pages counts once
        self.result.read_back = len(remote)
        managed = {e.remote_id for e in self.ledger.entries("invoice").values() if e.remote_id}
        self.result.mismatches = compare_with_marts(invoices, payments, remote.values(), managed)


def compare_with_marts(invoices: list[MartInvoice], payments: list[MartPayment], remote: Any,
                       managed_ids: set[str]) -> list[Mismatch]:
    """Every mart invoice once, with the marts' totals and, as payments are applied, its balance."""
    applied: dict[str, Decimal] = defaultdict(Decimal)
    for p in payments:
        applied[p.invoice_number] += p.amount

    def fields(inv: MartInvoice, r: dict) -> list[tuple[str, Any, Any]]:
        if inv.voided:
            return [("status", "void", r.get("status"))]
        return [("total", money(inv.total_amount), _money_or_none(r.get("total"))),
                ("tax_total", money(inv.vat_amount), _money_or_none(r.get("tax_total"))),
                ("balance", money(inv.total_amount - applied[inv.invoice_number]), _money_or_none(r.get("balance"))),
                ("currency_code", inv.currency, r.get("currency_code")),
                ("due_date", inv.due_on.isoformat(), r.get("due_date"))]

    return compare_by_reference(invoices, remote, reference=lambda r: r.get("invoice_number"), fields=fields,
                                remote_id=lambda r: r.get("invoice_id"), is_void=_is_void, managed_ids=managed_ids,
                                title="Zoho Books")


def _money_or_none(value: Any) -> Decimal | None:
    return None if value is None else money(value)


def publish_to_zoho_books(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                          client: ApiClient | None = None, dry_run: bool = False) -> PublishResult:
    """Publish contacts, trade invoices and their payments to Zoho Books; read back; compare.

    Safe to re-run at any time and after any crash.  In dry-run mode nothing is written anywhere;
    `result.dry_run` says what would have been sent."""

    def work(con, client, ledger, result, dry) -> list:  # noqa: ANN001
        invoices = load_trade_invoices(con, exclude_channel=DESTINATION)
        payments = load_invoice_payments(con, invoices)
        run = _ZohoRun(client, ledger, result, dry)
        run.publish_contacts(invoices)
        writes, voids = run.plan_invoices(invoices)
        run.publish_invoices(writes)
        run.publish_payments(invoices, payments)
        run._write_all("invoice", voids, run.send_invoice)  # after their payments were deleted
        if dry is None:
            run.read_back(invoices, payments)
        return run.rejected

    result = run_publisher(settings, DESTINATION, warehouse_path, primary="invoice",
                           object_types=("contact", "invoice", "payment"), dry_run=dry_run, client=client,
                           make_client=lambda: make_client(connection), work=work)
    log.info("zoho_books publish: %s", {kind: {k: n for k, n in vars(c).items() if n}
                                         for kind, c in result.counts.items()}
             | {"read_back": result.read_back, "mismatches": len(result.mismatches), "requests": result.requests})
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_to_zoho_books, argv,
                   "Publish trade invoices, their customers and payments from the marts to Zoho Books.")


if __name__ == "__main__":
    sys.exit(main())

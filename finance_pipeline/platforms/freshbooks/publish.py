"""Trade invoices of the other channels, their clients and the payments that settle them, to FreshBooks.

Reads `publish.marts.load_trade_invoices(con, exclude_channel="freshbooks")` (never the invoices raised
in FreshBooks itself) and `load_invoice_payments`, and writes with the shared ledger protocol
(`finance_pipeline.publish.mechanics`):
- one client per trade customer: organization, email, the currency of its first invoice, and the
  customer id in the client `note` (FreshBooks has no external-id field; the look-up lists the
  clients and matches the note).  A client FreshBooks already holds under that customer id (the
  trade customers are the same businesses across the ledgers; the workroom's own clients carry
  their customer id in the note) is adopted as it is, never written; clients are created when
  missing and then left to the bookkeeper: a changed name or e-mail is recorded, not sent;
- one invoice per mart invoice: `invoice_number` = our invoice number (`po_number` = the order
  number), `create_date`, `due_offset_days`, currency, one line per mart line (`qty` x `unit_cost`,
  or qty 1 at the line amount when a discount makes the unit price inexact) with the treatment's
  tax by name and percent (`taxName1` / `taxAmount1`) — US sales tax, outside UK VAT, is instead one
  untaxed line "US sales tax" at the invoice's tax (FreshBooks' single percentage cannot reproduce
  the marts' per-jurisdiction rounding; docs/decisions.md); a voided mart invoice is deleted
  (`vis_state` 1) if it was published, not posted if it never was; a changed one is updated (PUT);
- one payment per applied payment (`type` Bank Transfer or Credit Card, `note` = "<channel>
  <payment id>"); an amount change updates it (PUT), a payment that no longer applies is deleted.
FreshBooks has no idempotency key: before any create, the publish ledger's unknown keys are looked
up (`search[invoice_number]`, payments of the invoice by note, clients by note), so a crash between
a write and the ledger update never duplicates.  Refused records are quarantined with FreshBooks'
message.  Read-back lists the invoices and compares totals, outstanding, currency, due date and
state with the marts.

Run alone (the kill -9 test does): `python -m finance_pipeline.platforms.freshbooks.publish --data-dir DIR`.
"""
from __future__ import annotations

import logging
import sys
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Iterable

from finance_pipeline.http import ApiClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.freshbooks.client import (
    FreshBooksError, accounting_path, call, list_pages, make_client,
)
from finance_pipeline.publish.destinations import DryRun
from finance_pipeline.publish.ledger import PublishLedger, content_hash
from finance_pipeline.publish.marts import (
    SALES_TAX_LINE_NAME, MartInvoice, MartLine, MartPayment, load_invoice_payments, load_trade_invoices,
)
from finance_pipeline.publish.mechanics import (
    Desired, ItemError, Mismatch, Outcome, PublishResult, Write, resolve_unknown, write_each,
)
from finance_pipeline.publish.runner import compare_by_reference, run_publisher
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import WarehouseTarget

log = logging.getLogger("finance_pipeline.freshbooks.publish")

DESTINATION = "freshbooks"
CLIENT_MAPPING, INVOICE_MAPPING, PAYMENT_MAPPING = "fb-client/1", "fb-invoice/1", "fb-payment/1"
TAX_NAMES = {"uk_vat": "VAT", "eu_oss_vat": "VAT", "au_gst": "GST"}
CENT = Decimal("0.01")


class MappingError(ValueError):
    """A mart row FreshBooks' invoice model cannot express; recorded failed and quarantined."""


def _m(x: Decimal) -> str:
    return f"{x.quantize(CENT)}"


def line_payload(line: MartLine, treatment: str, currency: str, taxed: bool = True) -> dict:
    qty, amount = line.quantity, line.line_amount
    unit = (amount / qty).quantize(CENT) if qty else amount
    if not qty or unit * qty != amount:  # a discount left an inexact unit price: one line at the amount
        qty, unit = Decimal(1), amount
    out: dict[str, Any] = {"type": 0, "name": (line.description or line.sku or line.kind)[:200],
                           "description": line.sku or "", "qty": str(qty.normalize() if qty == qty.to_integral()
                                                                        else qty),
                           "unit_cost": {"amount": _m(unit), "code": currency}}
    rate = line.tax_rate or Decimal(0)
    pct = (rate * 100 if rate <= 1 else rate) if line.tax_amount and taxed else Decimal(0)
    # FreshBooks computes each line's tax itself (amount x percent, rounded): refuse what it would not equal
    computed = (qty * unit * pct / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    if taxed and computed != line.tax_amount.quantize(CENT):
        raise MappingError(f"line {line.line_number}: FreshBooks would compute tax {computed} at {pct.normalize():f} % "
                           f"of {_m(qty * unit)}, the marts have {_m(line.tax_amount)}")
    if pct:
        out.update({"taxName1": TAX_NAMES.get(treatment, "Tax"), "taxAmount1": f"{pct.normalize():f}"})
    return out


def invoice_payload(inv: MartInvoice) -> dict:
    missing = [n for n in ("customer_id", "issued_on", "due_on", "currency") if not getattr(inv, n)]
    if missing:
        raise MappingError(f"the mart row has no {', '.join(missing)}")
    if not inv.lines:
        raise MappingError("the invoice has no lines")
    sales_tax = inv.sales_tax_payable.quantize(CENT)
    lines = [line_payload(l, inv.tax_treatment, inv.currency, taxed=not sales_tax) for l in inv.lines]
    if sales_tax:  # outside UK VAT: the lines untaxed, the state's sales tax one line of its own
        lines.append({"type": 0, "name": SALES_TAX_LINE_NAME, "description": "US state sales tax payable",
                      "qty": "1", "unit_cost": {"amount": _m(sales_tax), "code": inv.currency}})
    return {"invoice_number": inv.invoice_number, "po_number": inv.order_number or "",
            "create_date": inv.issued_on.isoformat(), "due_offset_days": (inv.due_on - inv.issued_on).days,
            "currency_code": inv.currency, "lines": lines}


def _amount(doc: dict, name: str = "amount") -> Decimal:
    value = doc.get(name)
    return Decimal(str(value.get("amount") if isinstance(value, dict) else value or "0"))


class _FbRun:
    def __init__(self, client: ApiClient, connection: Connection, ledger: PublishLedger, result: PublishResult,
                 dry_run: DryRun | None) -> None:
        self.client, self.connection, self.ledger, self.result, self.dry = client, connection, ledger, result, dry_run
        self.client_ids: dict[str, str] = {}
        self.invoice_ids: dict[str, str] = {}
        self.rejected: list[tuple[str, str, Any, str]] = []

    def path(self, group: str, resource: str, doc_id: str | None = None) -> str:
        base = accounting_path(self.connection, group, resource)
        return f"{base}/{doc_id}" if doc_id else base

    def listing(self, group: str, resource: str, params: dict | None = None) -> Iterable[dict]:
        for vis in (0, 1):
            for page in list_pages(self.client, self.path(group, resource), resource,
                                   {**(params or {}), "search[vis_state]": vis}):
                yield from page

    def send(self, object_type: str, method: str, path: str, key: str, body: dict, singular: str) -> Outcome:
        try:
            saved = call(self.client, method, path, body).get(singular) or {}
        except FreshBooksError as exc:
            self.rejected.append((object_type, key, body, exc.message))
            return Outcome(False, error=exc.message)
        return Outcome(True, str(saved.get("id")) if saved.get("id") is not None else None)

    def write_all(self, object_type: str, writes: list[Write], send: Callable[[Write], Outcome]) -> None:
        if self.dry is not None:
            for w in writes:
                self.dry.add(object_type, w.op, w.key, w.body, remote_id=w.remote_id)
            return
        write_each(self.ledger, object_type, writes, send, counts=self.result.of(object_type),
                   errors=self.result.errors)

    def plan(self, object_type: str, desired: dict[str, Desired]) -> list[Write]:
        counts = self.result.of(object_type)
        plan = self.ledger.plan(object_type, [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        for entry in plan.unresolved:
            counts.unresolved += 1
            self.result.errors.append(ItemError(object_type, entry.business_key, "still pending after look-up"))
        return ([Write("create", k, desired[k].content_hash, None, desired[k].record) for k in plan.new]
                + [Write("update", e.business_key, desired[e.business_key].content_hash, e.remote_id,
                         desired[e.business_key].record) for e in plan.changed])

    def fail(self, object_type: str, rows: list[tuple[str, str | None, str, str | None]]) -> None:
        if self.dry is None:
            self.ledger.mark_failed_many(object_type, rows)
        self.result.of(object_type).failed += len(rows)
        self.result.errors.extend(ItemError(object_type, k, e) for k, _, e, _ in rows)
        self.rejected.extend((object_type, k, None, e) for k, _, e, _ in rows)

    def known_ids(self, object_type: str, writes: list[Write]) -> dict[str, str]:
        ids = {k: e.remote_id for k, e in self.ledger.entries(object_type).items() if e.remote_id and e.status != "pending"}
        if self.dry is not None:
            ids.update({w.key: w.remote_id or f"(new {object_type} {w.key})" for w in writes})
        return ids

    # -- clients -----------------------------------------------------------------------------------
    def all_clients(self) -> dict[str, dict]:
        return {str(c.get("note")): c for c in self.listing("users", "clients") if c.get("note")}

    def publish_clients(self, invoices: list[MartInvoice]) -> None:
        desired: dict[str, Desired[dict]] = {}
        first_currency: dict[str, str] = {}
        for inv in invoices:
            if not inv.voided and inv.customer_id:
                body = {"organization": (inv.customer_name or "").strip() or inv.customer_id,
                        "email": inv.customer_email or "", "note": inv.customer_id,
                        "currency_code": first_currency.setdefault(inv.customer_id, inv.currency)}
                desired[inv.customer_id] = Desired(inv.customer_id, content_hash({"v": CLIENT_MAPPING, **body}), body)

        # a client found at the destination is used as FreshBooks holds it (adopted, counted so): its
        # invoices name it by id, and FreshBooks' own clients are not ours to rewrite
        resolve_unknown(self.ledger, "client", desired, lambda keys: self.all_clients(),
                        remote_id_of=lambda r: str(r["id"]), is_current=lambda remote, want: True,
                        counts=self.result.of("client"), batch_size=10_000)
        writes = self.plan("client", desired)
        changed = [w for w in writes if w.op == "update"]
        if self.dry is None:
            self.ledger.mark_done_many("client", [(w.key, w.content_hash, w.remote_id) for w in changed],
                                       detail="client exists; clients are not updated")
        writes = [w for w in writes if w.op == "create"]
        self.write_all("client", writes, lambda w: self.send(
            "client", "POST" if w.op == "create" else "PUT", self.path("users", "clients", w.remote_id), w.key,
            {"client": w.body}, "client"))
        self.client_ids = self.known_ids("client", writes)

    # -- invoices ----------------------------------------------------------------------------------
    def find_invoices(self, numbers: list[str]) -> dict[str, dict]:
        found = {}
        for n in numbers:
            for doc in self.listing("invoices", "invoices", {"search[invoice_number]": n, "include[]": "lines"}):
                found.setdefault(n, doc)
        return found

    def all_invoices(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for doc in self.listing("invoices", "invoices", {"include[]": "lines"}):
            found.setdefault(str(doc.get("invoice_number")), doc)
        return found

    @staticmethod
    def invoice_is_current(remote: dict, want: Desired) -> bool:
        inv, payload = want.record
        if inv.voided:
            return remote.get("vis_state") == 1
        if payload is None or remote.get("vis_state") != 0:
            return False
        if any(str(remote.get(k)) != str(payload[k]) for k in ("create_date", "due_offset_days", "currency_code")):
            return False
        got = [(str(l.get("name")), Decimal(str(l.get("qty"))), _amount(l, "unit_cost"),
                Decimal(str(l.get("taxAmount1") or "0"))) for l in remote.get("lines") or []]
        want_lines = [(l["name"], Decimal(l["qty"]), Decimal(l["unit_cost"]["amount"]),
                       Decimal(l.get("taxAmount1") or "0")) for l in payload["lines"]]
        return got == want_lines

    def publish_invoices(self, invoices: list[MartInvoice]) -> None:
        counts = self.result.of("invoice")
        desired: dict[str, Desired] = {}
        unmappable = []
        for inv in invoices:
            try:
                payload = None if inv.voided else invoice_payload(inv)
            except MappingError as exc:
                unmappable.append((inv.invoice_number, None, f"not posted: {exc}", None))
                continue
            digest = content_hash({"v": INVOICE_MAPPING, "void": True}) if inv.voided else \
                content_hash({"v": INVOICE_MAPPING, "customer": inv.customer_id, "invoice": payload})
            desired[inv.invoice_number] = Desired(inv.invoice_number, digest, (inv, payload))
        self.fail("invoice", unmappable)
        resolve_unknown(self.ledger, "invoice", desired, self.find_invoices, remote_id_of=lambda r: str(r["id"]),
                        is_current=self.invoice_is_current, counts=counts, batch_size=20,
                        find_all=self.all_invoices, scan_above=40)
        writes, never_posted, no_client = [], [], []
        for w in self.plan("invoice", desired):
            inv, payload = w.body
            if inv.voided:
                if w.remote_id is None:
                    never_posted.append((w.key, w.content_hash, None))
                else:
                    writes.append(Write("void", w.key, w.content_hash, w.remote_id, {"vis_state": 1}))
                continue
            client_id = self.client_ids.get(inv.customer_id or "")
            if client_id is None:
                no_client.append((w.key, w.content_hash, f"customer {inv.customer_id} has no FreshBooks client "
                                  "(see the client's error); invoice not posted", w.remote_id))
                continue
            body = {**payload, "customerid": int(client_id) if client_id.isdigit() else client_id}
            if w.remote_id is not None:
                body["vis_state"] = 0
            writes.append(Write(w.op, w.key, w.content_hash, w.remote_id, body))
        if self.dry is None:
            self.ledger.mark_done_many("invoice", never_posted, detail="voided before it was ever published")
        counts.skipped += len(never_posted)
        self.fail("invoice", no_client)
        self.write_all("invoice", writes, lambda w: self.send(
            "invoice", "POST" if w.op == "create" else "PUT", self.path("invoices", "invoices", w.remote_id), w.key,
            {"invoice": w.body}, "invoice"))
        self.invoice_ids = self.known_ids("invoice", [w for w in writes if w.op != "void"])

    # -- payments ----------------------------------------------------------------------------------
    @staticmethod
    def note(p: MartPayment) -> str:
        return f"{p.channel} {p.payment_id}"

    def find_payments(self, keys: list[str], by_key: dict[str, MartPayment]) -> dict[str, dict]:
        """A few keys: the payments of each one's invoice (`search[invoiceid]`), matched by note."""
        invoice_ids = {self.invoice_ids.get(by_key[k].invoice_number) for k in keys if k in by_key} - {None}
        return self.match_payments(keys, by_key, {i: list(self.listing("payments", "payments",
                                                                        {"search[invoiceid]": i}))
                                                  for i in invoice_ids})

    def all_payments(self, by_key: dict[str, MartPayment]) -> dict[str, dict]:
        """Many keys (a first publish, a lost ledger, a crash in a large group): every payment listed
        once, grouped by invoice, matched the same way."""
        held: dict[str, list[dict]] = defaultdict(list)
        for doc in self.listing("payments", "payments"):
            held[str(doc.get("invoiceid"))].append(doc)
        return self.match_payments(list(by_key), by_key, held)

    def match_payments(self, keys: list[str], by_key: dict[str, MartPayment],
                       held: dict[str, list[dict]]) -> dict[str, dict]:
        """Each key's payment among those FreshBooks holds against its invoice: the note ends with ours."""
        found: dict[str, dict] = {}
        for k in keys:
            p = by_key.get(k)
            invoice_id = self.invoice_ids.get(p.invoice_number) if p is not None else None
            for doc in held.get(invoice_id, []) if invoice_id else []:
                if str(doc.get("note") or "").endswith(self.note(p)):
                    found[k] = doc
                    break
        return found

    def publish_payments(self, invoices: list[MartInvoice], payments: list[MartPayment]) -> None:
        counts = self.result.of("payment")
        desired: dict[str, Desired[dict]] = {}
        by_key = {p.payment_id: p for p in payments}
        waiting = 0
        for p in payments:
            invoice_id = self.invoice_ids.get(p.invoice_number)
            if invoice_id is None or not invoice_id.isdigit():
                waiting += 1  # its invoice is not in FreshBooks yet (failed, pending, dry run): next run
                continue
            body = {"invoiceid": int(invoice_id), "amount": {"amount": _m(p.amount)}, "date": p.paid_on.isoformat(),
                    "type": "Bank Transfer" if "bank" in p.channel or p.channel not in ("stripe", "paypal", "square")
                    else "Credit Card", "note": self.note(p)}
            desired[p.payment_id] = Desired(p.payment_id, content_hash({"v": PAYMENT_MAPPING, **body}), body)
        if waiting:
            log.info("freshbooks: %d payments wait for their invoice", waiting)

        def is_current(remote: dict, want: Desired[dict]) -> bool:
            return (remote.get("vis_state") == 0 and _amount(remote) == Decimal(want.record["amount"]["amount"])
                    and remote.get("date") == want.record["date"]
                    and str(remote.get("invoiceid")) == str(want.record["invoiceid"]))

        resolve_unknown(self.ledger, "payment", desired, lambda keys: self.find_payments(keys, by_key),
                        remote_id_of=lambda r: str(r["id"]), is_current=is_current, counts=counts, batch_size=20,
                        find_all=lambda: self.all_payments(by_key), scan_above=40)
        writes = self.plan("payment", desired)
        gone = content_hash({"v": PAYMENT_MAPPING, "deleted": True})
        for key, entry in self.ledger.entries("payment").items():
            if key not in desired and entry.remote_id and entry.status == "done" and entry.content_hash != gone:
                writes.append(Write("void", key, gone, entry.remote_id, {"vis_state": 1}))
        self.write_all("payment", writes, lambda w: self.send(
            "payment", "POST" if w.op == "create" else "PUT", self.path("payments", "payments", w.remote_id), w.key,
            {"payment": w.body}, "payment"))

    # -- read-back ---------------------------------------------------------------------------------
    def read_back(self, invoices: list[MartInvoice], payments: list[MartPayment]) -> None:
        remote = {str(d["id"]): d for d in self.listing("invoices", "invoices")}
        self.result.read_back = len(remote)
        entries = self.ledger.entries("invoice")
        managed = {e.remote_id for e in entries.values() if e.remote_id}
        # an invoice FreshBooks refused (or we refused to send) is reported failed and quarantined, not here
        refused = {k for k, e in entries.items() if e.status == "failed" and not e.remote_id}
        self.result.mismatches = compare_with_marts([i for i in invoices if i.invoice_number not in refused], payments,
                                                    [d for i, d in remote.items() if i in managed])


def compare_with_marts(invoices: Iterable[MartInvoice], payments: list[MartPayment],
                       remote: Iterable[dict]) -> list[Mismatch]:
    """Every mart invoice once in FreshBooks, with the mart's total, outstanding balance, currency,
    due date and state (deleted when voided); nothing we published that the marts no longer hold."""
    applied: dict[str, Decimal] = defaultdict(Decimal)
    for p in payments:
        applied[p.invoice_number] += p.amount

    def fields(inv: MartInvoice, r: dict) -> list[tuple[str, Any, Any]]:
        if inv.voided:
            return [("vis_state", 1, r.get("vis_state"))]
        return [("vis_state", 0, r.get("vis_state")), ("amount", inv.total_amount.quantize(CENT), _amount(r)),
                ("outstanding", (inv.total_amount - applied[inv.invoice_number]).quantize(CENT),
                 _amount(r, "outstanding")),
                ("currency_code", inv.currency, r.get("currency_code")), ("due_date", inv.due_on.isoformat(),
                                                                          r.get("due_date"))]

    remote = list(remote)
    return compare_by_reference(invoices, remote, reference=lambda r: str(r.get("invoice_number")), fields=fields,
                                remote_id=lambda r: str(r["id"]), is_void=lambda r: r.get("vis_state") != 0,
                                managed_ids={str(r["id"]) for r in remote}, title="FreshBooks")


def publish_to_freshbooks(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                          client: ApiClient | None = None, dry_run: bool = False) -> PublishResult:
    """Publish clients, trade invoices and their payments to FreshBooks; read back; compare."""

    def work(con, client, ledger, result, dry):  # noqa: ANN001, ANN202
        invoices = load_trade_invoices(con, exclude_channel=DESTINATION)
        payments = load_invoice_payments(con, invoices)
        run = _FbRun(client, connection, ledger, result, dry)
        run.publish_clients(invoices)
        run.publish_invoices(invoices)
        run.publish_payments(invoices, payments)
        if dry is None:
            run.read_back(invoices, payments)
        return run.rejected

    result = run_publisher(settings, DESTINATION, warehouse_path, primary="invoice",
                           object_types=("client", "invoice", "payment"), dry_run=dry_run, client=client,
                           make_client=lambda: make_client(connection), work=work)
    log.info("freshbooks publish: %s; %d read back, %d mismatches",
             {t: {k: v for k, v in vars(c).items() if v} for t, c in result.counts.items()}, result.read_back,
             len(result.mismatches))
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_to_freshbooks, argv,
                   "Publish trade invoices, clients and payments from the marts to FreshBooks.")


if __name__ == "__main__":
    sys.exit(main())

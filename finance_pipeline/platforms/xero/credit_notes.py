"""Refunds of trade invoices as Xero credit notes, allocated to the invoice they refund.

A row of `marts.fct_refunds` belongs to a trade invoice when its `payment_id` is a payment of that
invoice (`marts.fct_payments.invoice_number`) or its (channel, order_id) is the invoice's order
(`marts.fct_invoices`).  Each becomes one
ACCRECCREDIT credit note:

- CreditNoteNumber `CN-<refund id>` (stable: the look-up key after a crash), Reference = the invoice number;
- the invoice's contact, currency and CurrencyRate (read from Xero); `Exclusive` lines for goods (200)
  and shipping (260) with the invoice's tax type, whose TaxAmounts add up to the refund's tax to the
  cent (the shipping line takes its share of the tax, the goods line the rest);
- then `PUT /CreditNotes/{id}/Allocations` to the invoice for what the invoice still owes in Xero, up to
  the credit note's total (Xero refuses more than either);
- what is left after that (the customer had paid in full and got money back) is recorded as Xero
  records a cash refund: a "refunded credit note", i.e. a payment *of the credit note* (`PUT /Payments`
  with `CreditNote`) out of the bank account 090, for the remaining credit (docs/decisions.md).

Xero forbids editing an allocated or refunded credit note, so a refund edited in the marts first has
its refund payment deleted and its allocations removed (`DELETE /CreditNotes/{id}/Allocations/{id}`),
then the credit note is updated in place (same CreditNoteID and number), allocated and refunded again.
All three go through the publish ledger (`credit_note`, `credit_allocation`, `credit_refund`), with an
Idempotency-Key on every write.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb

from finance_pipeline.http import ApiError
from finance_pipeline.platforms.xero.wire import money
from finance_pipeline.publish.ledger import content_hash
from finance_pipeline.publish.marts import MartInvoice, _has_table, to_decimal
from finance_pipeline.publish.mechanics import (
    Desired, ItemError, Mismatch, Outcome, Rejected, Write, idempotency_key, resolve_unknown,
)

log = logging.getLogger("finance_pipeline.xero.credit_notes")

CREDIT_NOTE_MAPPING = "xero-refund-credit-note/1"
ALLOCATION_MAPPING = "xero-refund-allocation/1"
REFUND_MAPPING = "xero-refund-cash/1"
CASH_ACCOUNT = "090"  # the bank account the money went back out of
CENT = Decimal("0.01")


@dataclass(frozen=True)
class MartRefund:
    refund_id: str
    invoice_number: str
    refunded_on: date
    currency: str
    goods_amount: Decimal
    shipping_amount: Decimal
    tax_amount: Decimal

    @property
    def number(self) -> str:
        return f"CN-{self.refund_id}"

    @property
    def total(self) -> Decimal:
        return self.goods_amount + self.shipping_amount + self.tax_amount


def load_trade_refunds(con: duckdb.DuckDBPyConnection, invoices: list[MartInvoice]) -> list[MartRefund]:
    """Refunds of (not voided) trade invoices, oldest first; none when `marts.fct_refunds` is absent."""
    if not _has_table(con, "marts", "fct_refunds"):
        return []
    cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = 'marts' AND table_name = 'fct_refunds'").fetchall()}
    live = {inv.invoice_number: inv for inv in invoices if not inv.voided}
    by_order: dict[tuple[str, str], MartInvoice] = {}  # (channel, order id) of the order invoiced
    for number, channel, order_id in con.execute(
            "SELECT invoice_number, channel, order_id FROM marts.fct_invoices WHERE order_id IS NOT NULL").fetchall():
        if number in live:
            by_order[(str(channel), str(order_id))] = live[number]
    by_payment: dict[str, str] = {}
    if "payment_id" in cols and _has_table(con, "marts", "fct_payments"):
        by_payment = {str(r[0]): r[1] for r in con.execute(
            "SELECT payment_id, invoice_number FROM marts.fct_payments WHERE invoice_number IS NOT NULL").fetchall()}
    payment_col = "payment_id" if "payment_id" in cols else "NULL"
    out = []
    for channel, refund_id, order_id, refunded_at, currency, goods, shipping, tax, payment_id in con.execute(
            f"SELECT channel, refund_id, order_id, refunded_at, currency, goods_amount, shipping_amount, tax_amount, "
            f"{payment_col} FROM marts.fct_refunds ORDER BY refunded_at, refund_id").fetchall():
        number = by_payment.get(str(payment_id)) if payment_id is not None else None
        inv = live.get(number) if number else by_order.get((str(channel), str(order_id)))
        if inv is None:
            continue
        when = refunded_at.date() if isinstance(refunded_at, datetime) else refunded_at
        out.append(MartRefund(str(refund_id), inv.invoice_number, when, (currency or inv.currency).upper(),
                              to_decimal(goods), to_decimal(shipping), to_decimal(tax)))
    return out


class RefundMappingError(ValueError):
    pass


def credit_note_payload(r: MartRefund, inv: MartInvoice) -> dict:
    """The credit note as posted, minus the Contact (the invoice's ContactID, known at send time)."""
    from finance_pipeline.platforms.xero.publish import ACCOUNT_CODES, tax_type

    if r.currency != inv.currency:
        raise RefundMappingError(f"refund in {r.currency} of an invoice in {inv.currency}")
    if min(r.goods_amount, r.shipping_amount, r.tax_amount) < 0 or r.total <= 0:
        raise RefundMappingError(f"a refund must be positive (goods {r.goods_amount}, shipping {r.shipping_amount},"
                                 f" tax {r.tax_amount})")
    goods_rate = next((line.tax_rate for line in inv.lines if line.account_kind == "sales_trade"), None)
    code = tax_type(inv.tax_treatment, goods_rate)
    net = r.goods_amount + r.shipping_amount
    ship_tax = (r.tax_amount * r.shipping_amount / net).quantize(CENT, ROUND_HALF_UP) if net else Decimal(0)
    parts = [("Refund of goods", ACCOUNT_CODES["sales_trade"], r.goods_amount, r.tax_amount - ship_tax),
             ("Refund of shipping", ACCOUNT_CODES["shipping_income"], r.shipping_amount, ship_tax)]
    lines = [{"Description": f"{text}, invoice {inv.invoice_number}", "Quantity": Decimal(1),
              "UnitAmount": money(amount), "LineAmount": money(amount), "AccountCode": account,
              "TaxType": code, "TaxAmount": money(tax)}
             for text, account, amount, tax in parts if amount or tax]
    return {"Type": "ACCRECCREDIT", "CreditNoteNumber": r.number, "Reference": inv.invoice_number,
            "Date": r.refunded_on.isoformat(), "CurrencyCode": inv.currency, "LineAmountTypes": "Exclusive",
            "Status": "AUTHORISED", "LineItems": lines}


def _is_current(remote: dict, r: MartRefund) -> bool:
    return (remote.get("Status") in ("AUTHORISED", "PAID") and money(remote.get("Total", 0)) == money(r.total)
            and money(remote.get("TotalTax", 0)) == money(r.tax_amount) and remote.get("Reference") == r.invoice_number)


def _call(run: Any, method: str, path: str, key: str, body: dict | None = None, params: dict | None = None) -> dict:
    from finance_pipeline.platforms.xero.publish import _rejection

    try:
        response = run.client.request(method, path, params=params, json=body, headers={"Idempotency-Key": key})
    except ApiError as exc:
        if exc.status == 400:
            raise Rejected(_rejection(exc)) from None
        raise
    return response.json() if response.content else {}


def _remove_allocations(run: Any, credit_note_id: str) -> None:
    """Xero's rule: an allocated credit note is not editable; take its allocations off first."""
    body = run.client.get_json(f"CreditNotes/{credit_note_id}")
    for note in body.get("CreditNotes", []):
        for p in note.get("Payments") or []:  # a refunded credit note: the refund payment goes first
            key = idempotency_key("xero-credit-refund-delete", [(credit_note_id, p["PaymentID"])])
            try:
                run.client.request("POST", f"Payments/{p['PaymentID']}", json={"Status": "DELETED"},
                                   headers={"Idempotency-Key": key})
            except ApiError as exc:
                if exc.status != 404:
                    raise
        for a in note.get("Allocations") or []:
            key = idempotency_key("xero-allocation-delete", [(credit_note_id, a["AllocationID"])])
            try:
                run.client.request("DELETE", f"CreditNotes/{credit_note_id}/Allocations/{a['AllocationID']}",
                                   headers={"Idempotency-Key": key})
            except ApiError as exc:
                if exc.status != 404:  # already gone
                    raise


def send_credit_notes(run: Any, batch: list[Write]) -> list[Outcome]:
    from finance_pipeline.platforms.xero.publish import _element_outcome

    for w in batch:
        if w.remote_id:
            _remove_allocations(run, w.remote_id)
    key = idempotency_key("xero-refund-credit-notes", [(w.key, w.content_hash, w.remote_id) for w in batch])
    answer = _call(run, "POST", "CreditNotes", key, {"CreditNotes": [w.body for w in batch]},
                   {"summarizeErrors": "false", "unitdp": "4"})
    return [_element_outcome(e, "CreditNoteID") for e in answer.get("CreditNotes", [])]


def send_allocation(run: Any, batch: list[Write]) -> list[Outcome]:
    """Allocate what Xero says is still owed on the invoice, up to the credit left on the note."""
    from finance_pipeline.platforms.xero.publish import _element_outcome

    (w,) = batch
    note = run.client.get_json(f"CreditNotes/{w.body['CreditNoteID']}").get("CreditNotes", [{}])[0]
    invoice = run.client.get_json(f"Invoices/{w.body['InvoiceID']}").get("Invoices", [{}])[0]
    due = money(invoice.get("AmountDue", 0)) if invoice.get("Status") == "AUTHORISED" else Decimal("0.00")
    amount = min(money(note.get("RemainingCredit", 0)), due)
    if amount <= 0:
        return [Outcome(True, w.body["CreditNoteID"])]  # nothing owed: the credit stays on the note
    key = idempotency_key("xero-allocation", [(w.key, w.content_hash, str(amount))])
    answer = _call(run, "PUT", f"CreditNotes/{w.body['CreditNoteID']}/Allocations", key,
                   {"Allocations": [{"Invoice": {"InvoiceID": w.body["InvoiceID"]}, "Amount": amount,
                                     "Date": w.body["Date"]}]}, {"summarizeErrors": "false"})
    outcome = _element_outcome((answer.get("Allocations") or [{}])[0], "AllocationID")
    return [Outcome(outcome.ok, w.body["CreditNoteID"] if outcome.ok else None, error=outcome.error)]


def publish_credit_notes(run: Any, con: duckdb.DuckDBPyConnection, invoices: list[MartInvoice]) -> list[MartRefund]:
    from finance_pipeline.platforms.xero.payouts import all_credit_notes, find_credit_notes

    refunds = load_trade_refunds(con, invoices)
    if not refunds:
        return []
    by_number = {inv.invoice_number: inv for inv in invoices}
    ledger, result = run.ledger, run.result
    counts = result.of("credit_note")
    desired: dict[str, Desired[tuple[MartRefund, dict]]] = {}
    bad = []
    for r in refunds:
        try:
            payload = credit_note_payload(r, by_number[r.invoice_number])
        except RefundMappingError as exc:
            bad.append((r.number, None, f"not posted: {exc}", None))
            continue
        desired[r.number] = Desired(r.number, content_hash({"v": CREDIT_NOTE_MAPPING, **payload}), (r, payload))
    if run.dry is None:
        ledger.mark_failed_many("credit_note", bad)
    counts.failed += len(bad)
    result.errors.extend(ItemError("credit_note", k, e) for k, _, e, _ in bad)
    run.rejected.extend(("credit_note", k, None, e) for k, _, e, _ in bad)
    resolve_unknown(ledger, "credit_note", desired, lambda keys: find_credit_notes(run, keys),
                    remote_id_of=lambda c: c["CreditNoteID"], is_current=lambda rm, w: _is_current(rm, w.record[0]),
                    counts=counts, batch_size=40, find_all=lambda: all_credit_notes(run), scan_above=120)
    plan = ledger.plan("credit_note", [(k, d.content_hash) for k, d in desired.items()])
    counts.unchanged += len(plan.unchanged)
    run._unresolved("credit_note", plan.unresolved)
    writes, waiting = [], 0
    for key, remote_id in [(k, None) for k in plan.new] + [(e.business_key, e.remote_id) for e in plan.changed]:
        r, payload = desired[key].record
        inv = by_number[r.invoice_number]
        contact = run.contact_ids.get(inv.customer_id) or (run.dry and f"(contact {inv.customer_id})")
        if contact is None or r.invoice_number not in run.invoice_ids:
            waiting += 1
            continue
        body = {"Contact": {"ContactID": contact}, **payload, **({"CreditNoteID": remote_id} if remote_id else {})}
        writes.append(Write("create" if remote_id is None else "update", key, desired[key].content_hash, remote_id,
                            body))
    if writes and run.dry is None:  # the invoice's own exchange rate, so the credit reverses it exactly
        numbers = sorted({desired[w.key].record[0].invoice_number for w in writes})
        rates: dict[str, Any] = {}
        for i in range(0, len(numbers), 40):
            rates.update({n: inv.get("CurrencyRate") for n, inv in run.find_invoices(numbers[i:i + 40]).items()})
        for w in writes:
            rate = rates.get(desired[w.key].record[0].invoice_number)
            if rate is not None:
                w.body["CurrencyRate"] = rate
    run._write("credit_note", writes, lambda batch: send_credit_notes(run, batch))
    if waiting:
        log.info("xero: %d credit notes wait for their invoice or contact", waiting)

    # allocation: its own ledger entry per credit note, keyed to the credit note's content
    notes = {k: e for k, e in ledger.entries("credit_note").items() if e.remote_id and e.status == "done"}
    alloc: dict[str, Desired[dict]] = {}
    for key, d in desired.items():
        entry = notes.get(key)
        if entry is None or entry.content_hash != d.content_hash or d.record[0].invoice_number not in run.invoice_ids:
            continue
        body = {"CreditNoteID": entry.remote_id, "InvoiceID": run.invoice_ids[d.record[0].invoice_number],
                "Date": d.record[0].refunded_on.isoformat()}
        alloc[key] = Desired(key, content_hash({"v": ALLOCATION_MAPPING, "note": d.content_hash, **body}), body)

    def find_allocated(keys: list[str]) -> dict[str, dict]:
        found = find_credit_notes(run, keys)
        return {k: v for k, v in found.items() if v.get("Allocations") or v.get("Status") == "PAID"}

    a_counts = result.of("credit_allocation")
    resolve_unknown(ledger, "credit_allocation", alloc, find_allocated, remote_id_of=lambda c: c["CreditNoteID"],
                    is_current=lambda rm, w: True, counts=a_counts, batch_size=40)
    a_plan = ledger.plan("credit_allocation", [(k, d.content_hash) for k, d in alloc.items()])
    a_counts.unchanged += len(a_plan.unchanged)
    run._unresolved("credit_allocation", a_plan.unresolved)
    a_writes = [Write("create", k, alloc[k].content_hash, None, alloc[k].record) for k in a_plan.new] + [
        Write("create", e.business_key, alloc[e.business_key].content_hash, None, alloc[e.business_key].record)
        for e in a_plan.changed]
    run._write("credit_allocation", a_writes, lambda batch: send_allocation(run, batch), batch_size=1)

    # the cash refund of what the allocation could not use (a refunded credit note)
    allocated = {k: e for k, e in ledger.entries("credit_allocation").items() if e.status == "done"}
    cash: dict[str, Desired[dict]] = {}
    for key, d in alloc.items():
        if key in allocated and allocated[key].content_hash == d.content_hash:
            body = {"CreditNote": {"CreditNoteID": d.record["CreditNoteID"]}, "Account": {"Code": CASH_ACCOUNT},
                    "Date": d.record["Date"], "Reference": key}
            cash[key] = Desired(key, content_hash({"v": REFUND_MAPPING, "allocation": d.content_hash, **body}), body)
    c_counts = result.of("credit_refund")
    resolve_unknown(ledger, "credit_refund", cash, run.find_payments, remote_id_of=lambda p: p["PaymentID"],
                    is_current=lambda rm, w: True, counts=c_counts, batch_size=40)
    c_plan = ledger.plan("credit_refund", [(k, d.content_hash) for k, d in cash.items()])
    c_counts.unchanged += len(c_plan.unchanged)
    run._unresolved("credit_refund", c_plan.unresolved)
    c_writes = [Write("create", k, cash[k].content_hash, None, cash[k].record)
                for k in [*c_plan.new, *(e.business_key for e in c_plan.changed)]]
    run._write("credit_refund", c_writes, lambda batch: send_cash_refund(run, batch), batch_size=1)
    return refunds


def send_cash_refund(run: Any, batch: list[Write]) -> list[Outcome]:
    """Pay out the credit still left on the note (none left: nothing to send)."""
    from finance_pipeline.platforms.xero.publish import _element_outcome

    (w,) = batch
    note_id = w.body["CreditNote"]["CreditNoteID"]
    note = run.client.get_json(f"CreditNotes/{note_id}").get("CreditNotes", [{}])[0]
    left = money(note.get("RemainingCredit", 0))
    if left <= 0 or note.get("Status") != "AUTHORISED":
        return [Outcome(True, None)]
    key = idempotency_key("xero-credit-refund", [(w.key, w.content_hash, str(left))])
    answer = _call(run, "PUT", "Payments", key, {"Payments": [{**w.body, "Amount": left}]},
                   {"summarizeErrors": "false"})
    return [_element_outcome((answer.get("Payments") or [{}])[0], "PaymentID")]


def compare_credit_notes(refunds: list[MartRefund], remote_notes: dict[str, dict], invoices: list[MartInvoice] = (),
                         payments: list = (), remote_invoices: Any = ()) -> list[Mismatch]:
    """Per invoice: the credit notes Xero holds for it add up to the marts' refunds of it; each credit
    note is used up (allocated or refunded in cash); and the invoice's AmountDue is what the marts
    leave open once the refunds are credited: total − applied payments − refunds, never below zero."""
    want: dict[str, Decimal] = defaultdict(Decimal)
    for r in refunds:
        want[r.invoice_number] += r.total
    got: dict[str, Decimal] = defaultdict(Decimal)
    numbers = {r.number for r in refunds}
    out = []
    for number, note in remote_notes.items():
        if number in numbers:
            got[note.get("Reference") or ""] += money(note.get("Total", 0))
            if money(note.get("RemainingCredit", 0)) != 0:
                out.append(Mismatch(number, "RemainingCredit", Decimal("0.00"), note.get("RemainingCredit")))
    out += [Mismatch(n, "credit notes", money(want[n]), money(got[n])) for n in want if money(want[n]) != money(got[n])]
    applied: dict[str, Decimal] = defaultdict(Decimal)
    for p in payments:
        applied[p.invoice_number] += p.amount
    by_number = {r.get("InvoiceNumber"): r for r in remote_invoices if r.get("Status") in ("AUTHORISED", "PAID")}
    for inv in invoices:
        r = by_number.get(inv.invoice_number)
        if inv.voided or r is None or inv.invoice_number not in want:
            continue
        expected = money(max(Decimal(0), inv.total_amount - applied[inv.invoice_number] - want[inv.invoice_number]))
        if money(r.get("AmountDue", 0)) != expected:
            out.append(Mismatch(inv.invoice_number, "AmountDue", expected, r.get("AmountDue")))
    return out

"""The QuickBooks Online channel's expected figures (the UK trade counter), from the world's truth tables.

As of the clock: a document exists once raised and until deleted (a deleted one is in no figure);
an invoice has the lines it had by then (a line added in an edit counts from its `added_at`) and
is void once voided; a payment counts once recorded.  A sales receipt is an order paid when raised:
its payment (`sr-<Id>`) is the receipt's total at the receipt's own rate.  Home amounts are GBP at
the document's exchange rate (each amount rounded on its own), a payment's at its own rate.
Invoice numbers in the marts are `INV-` + the DocNumber (`INV-QB-10001`, `INV-QBS-10001`); the
customer is the master account number.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.sandbox.ledger_channel import ZERO, add_bank_payment, add_invoice, add_line
from finance_pipeline.sandbox.oracle import Canonical, _fetch


def _documents(con, clock: datetime) -> list[dict]:
    return _fetch(con, """select * from quickbooks_documents
                          where created_at <= ? and (deleted_at is null or deleted_at > ?)""", [clock, clock])


def _lines(con, clock: datetime) -> list[dict]:
    return _fetch(con, """select l.*, p.category, p.unit as product_unit from quickbooks_lines l
                          join quickbooks_documents d using (qbo_id) join products p using (sku)
                          where d.created_at <= ? and (d.deleted_at is null or d.deleted_at > ?)
                            and (l.added_at is null or l.added_at <= ?)""", [clock, clock, clock])


def _payments(con, clock: datetime) -> list[dict]:
    """Payments recorded against invoices, and each live sales receipt as the payment it is."""
    out = _fetch(con, """select p.qbo_id, p.invoice_qbo_id, p.created_at, p.amount, p.currency, p.exchange_rate,
                                d.doc_number
                         from quickbooks_payments p join quickbooks_documents d on d.qbo_id = p.invoice_qbo_id
                         where p.created_at <= ?""", [clock])
    for p in out:
        p["payment_id"] = str(p["qbo_id"])
    totals: dict[int, Decimal] = {}
    for line in _lines(con, clock):
        totals[line["qbo_id"]] = totals.get(line["qbo_id"], ZERO) + line["amount"] + line["tax_amount"]
    for d in _documents(con, clock):
        if d["entity"] != "SalesReceipt" or (d["voided_at"] is not None and d["voided_at"] <= clock):
            continue
        out.append({"payment_id": f"sr-{d['qbo_id']}", "invoice_qbo_id": d["qbo_id"], "created_at": d["created_at"],
                    "amount": totals.get(d["qbo_id"], ZERO) + d["shipping"] + d["shipping_tax"],
                    "currency": d["currency"], "exchange_rate": d["exchange_rate"], "doc_number": d["doc_number"]})
    return out


def expected(con, clock: datetime) -> Canonical:
    c = Canonical("quickbooks")
    documents = _documents(con, clock)
    fx = {d["qbo_id"]: d["exchange_rate"] for d in documents}
    for d in documents:
        add_invoice(c, clock, order_id=d["qbo_id"], currency=d["currency"], created_at=d["created_at"],
                    voided_at=d["voided_at"], shipping=d["shipping"], shipping_tax=d["shipping_tax"],
                    rate=d["exchange_rate"], number=d["doc_number"], customer_id=d["customer_id"],
                    customer_name=d["customer_name"], issued_on=d["txn_date"], due_on=d["due_date"])
    for line in _lines(con, clock):
        add_line(c, order_id=line["qbo_id"], line_id=f"{line['qbo_id']}-{line['line_num']}", quantity=line["qty"],
                 unit_price=line["unit_price"], net=line["amount"], tax=line["tax_amount"], rate=fx[line["qbo_id"]],
                 unit_cost_gbp=line["unit_cost_gbp"])
    for p in _payments(con, clock):
        add_bank_payment(c, payment_id=p["payment_id"], amount=p["amount"], currency=p["currency"],
                         rate=p["exchange_rate"], number=p["doc_number"], attempted_at=p["created_at"])
    return c

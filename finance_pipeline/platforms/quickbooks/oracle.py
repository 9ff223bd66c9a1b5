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

from finance_pipeline.sandbox.oracle import Canonical, _fetch
from finance_pipeline.sandbox.world import q as _q

ZERO = Decimal("0.00")


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
        rate = d["exchange_rate"]
        void = d["voided_at"] is not None and d["voided_at"] <= clock
        c.orders.append({
            "order_id": str(d["qbo_id"]), "customer_type": "trade", "currency": d["currency"],
            "ordered_at": d["created_at"], "is_void": void, "shipping_amount": d["shipping"],
            "shipping_tax": d["shipping_tax"], "shipping_amount_home": _q(d["shipping"] * rate),
            "shipping_tax_home": _q(d["shipping_tax"] * rate),
        })
        c.invoices.append({"order_id": str(d["qbo_id"]), "invoice_number": f"INV-{d['doc_number']}",
                           "customer_id": d["customer_id"], "customer_name": d["customer_name"],
                           "issued_on": d["txn_date"], "due_on": d["due_date"]})
    for line in _lines(con, clock):
        rate = fx[line["qbo_id"]]
        gross = line["unit_price"] * line["qty"]
        gross_h = _q(gross * rate)
        c.lines.append({
            "order_id": str(line["qbo_id"]), "line_id": f"{line['qbo_id']}-{line['line_num']}",
            "quantity": line["qty"], "gross_amount": gross, "net_amount": line["amount"],
            "tax_amount": line["tax_amount"], "gross_amount_home": gross_h,
            "net_amount_home": gross_h - _q((gross - line["amount"]) * rate),
            "tax_amount_home": _q(line["tax_amount"] * rate), "cogs_home": _q(line["unit_cost_gbp"] * line["qty"]),
        })
    for p in _payments(con, clock):
        c.payments.append({
            "payment_id": p["payment_id"], "status": "succeeded", "amount": p["amount"], "currency": p["currency"],
            "amount_home": _q(p["amount"] * p["exchange_rate"]), "fee_home": ZERO,
            "invoice_number": f"INV-{p['doc_number']}", "attempted_at": p["created_at"],
        })
    return c

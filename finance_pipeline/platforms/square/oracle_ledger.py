"""Square's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

Card payments and card refunds move the Square balance (clearing, paid out each morning); cash is
taken into and paid back from the showroom till. Square's fee on a card payment is booked when the
payment was taken, once Square has computed it. All money is GBP.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch, _minor


def facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    f = LedgerFacts("square")
    for o in _fetch(con, "select order_id, ticket from square_orders where kind = 'sale' and created_at <= ?", T):
        f.orders[o["order_id"]] = {"tax_treatment": "uk_vat", "country": "GB", "region": None,
                                   "order_number": o["ticket"] or o["order_id"], "invoice_number": None}
    for line in _fetch(con, """select l.uid, l.order_id, l.quantity, p.category, p.unit
                               from square_order_lines l join square_orders o using (order_id)
                               join products p using (sku)
                               where o.kind = 'sale' and o.created_at <= ?""", T):
        f.lines[line["uid"]] = {"order_id": line["order_id"], "category": line["category"],
                                "metres": Decimal(line["quantity"]) * Decimal("0.1") if line["unit"] == "10cm" else None}
    payments = {p["payment_id"]: p for p in _fetch(con, "select * from square_payments where created_at <= ?", T)}
    for p in payments.values():
        ok = p["status"] == "COMPLETED"
        doc = ("square", p["order_id"])
        amount = _minor(p["amount"])
        f.attempts.append({"payment_id": p["payment_id"], "status": "succeeded" if ok else "failed",
                           "at": p["created_at"], "doc": doc, "amount_home": amount if ok else None,
                           "dispute_open": False, "dispute_lost": False, "disputed": False})
        if not ok:
            continue
        cash = p["source_type"] == "CASH"
        f.settlements.append({"source_type": "payment", "source_id": p["payment_id"],
                              "bt_id": None if cash else p["payment_id"], "at": p["created_at"], "doc": doc,
                              "currency": "GBP", "amount": amount, "amount_home": amount,
                              "held_in": "cash" if cash else "clearing"})
        if p["fee"] and p["fee_at"] <= clock:
            f.fees.append({"bt_id": p["payment_id"], "at": p["created_at"], "fee": _minor(p["fee"])})
    # what a refund gives back is the total of its return order's lines (goods + VAT)
    returned = {r["order_id"]: _minor(r["total"]) for r in _fetch(
        con, "select order_id, sum(total) as total from square_return_lines group by all")}
    for r in _fetch(con, "select * from square_refunds where created_at <= ?", T):
        p = payments[r["payment_id"]]
        cash = p["source_type"] == "CASH"
        doc = ("square", p["order_id"])
        if cash:  # paid back from the till, at the return order's total
            total = returned.get(r["order_id"], Decimal("0.00"))
            f.settlements.append({"source_type": "payment_refund", "source_id": r["refund_id"], "bt_id": None,
                                  "at": r["created_at"], "doc": doc, "currency": "GBP", "amount": -total,
                                  "amount_home": -total, "held_in": "cash"})
        else:  # a movement of the Square balance, in the refund's own amount
            f.settlements.append({"source_type": "payment_refund", "source_id": r["refund_id"],
                                  "bt_id": r["refund_id"], "at": r["created_at"], "doc": doc, "currency": None,
                                  "amount": None, "amount_home": -_minor(r["amount"])})
    return f

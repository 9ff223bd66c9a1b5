"""The Sage Intacct channel's expected figures, from the world's truth tables (never from payloads).

As of the clock: an invoice exists once raised, is void once cancelled; a payment counts once
recorded.  Home amounts are GBP at the document's own exchange rate (payments: at the payment
day's rate), each amount rounded on its own, as Intacct's base amounts are.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from finance_pipeline.sandbox.oracle import Canonical, _fetch
from finance_pipeline.sandbox.world import q as _q

ZERO = Decimal("0.00")


def expected(con, clock: datetime) -> Canonical:
    T = [clock]
    docs = _fetch(con, "select * from sage_intacct_documents where created_at <= ?", T)
    lines = _fetch(con, "select l.* from sage_intacct_document_lines l join sage_intacct_documents d "
                        "using (record_no) where d.created_at <= ?", T)
    payments = _fetch(con, "select * from sage_intacct_payments where paid_at <= ?", T)
    freight: dict[int, list[dict]] = defaultdict(list)
    c = Canonical("sage_intacct")
    rate_of = {d["record_no"]: d["exch_rate"] for d in docs}
    for line in lines:
        rate = rate_of[line["record_no"]]
        if line["kind"] == "freight":
            freight[line["record_no"]].append(line)
            continue
        value, tax = line["value"], line["tax_amount"]
        c.lines.append({
            "order_id": str(line["record_no"]), "line_id": str(line["line_id"]), "quantity": line["quantity"],
            "gross_amount": value, "net_amount": value, "tax_amount": tax,
            "gross_amount_home": _q(value * rate), "net_amount_home": _q(value * rate),
            "tax_amount_home": _q(tax * rate), "cogs_home": _q(line["unit_cost_gbp"] * line["quantity"]),
        })
    for d in docs:
        rate, ship = d["exch_rate"], freight[d["record_no"]]
        c.orders.append({
            "order_id": str(d["record_no"]), "customer_type": "trade", "currency": d["currency"],
            "ordered_at": d["created_at"], "is_void": d["voided_at"] is not None and d["voided_at"] <= clock,
            "shipping_amount": sum((f["value"] for f in ship), ZERO),
            "shipping_tax": sum((f["tax_amount"] for f in ship), ZERO),
            "shipping_amount_home": sum((_q(f["value"] * rate) for f in ship), ZERO),
            "shipping_tax_home": sum((_q(f["tax_amount"] * rate) for f in ship), ZERO),
        })
        c.invoices.append({
            "order_id": str(d["record_no"]), "invoice_number": f"INV-{d['docno']}", "customer_id": d["customer_id"],
            "customer_name": d["customer_name"], "issued_on": d["issued_on"], "due_on": d["due_on"],
        })
    docno = {d["record_no"]: d["docno"] for d in docs}
    for p in payments:
        c.payments.append({
            "payment_id": f"{p['payment_id']}-{p['detail_id']}", "status": "succeeded", "amount": p["amount"],
            "currency": p["currency"], "amount_home": _q(p["amount"] * p["exch_rate"]), "fee_home": ZERO,
            "invoice_number": f"INV-{docno[p['record_no']]}", "attempted_at": p["paid_at"],
        })
    return c

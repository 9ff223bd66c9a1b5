"""SAP Business One's expected figures, from the world's truth tables (never from payloads).

As of the clock: an invoice exists once created; it is void once cancelled; its due date is the
extended one once the edit has been made; a payment counts once recorded.  Home amounts are B1's
local-currency amounts at the document's rate (each line and tax amount rounded on its own), and a
payment's at the payment day's rate.
"""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox.oracle import Canonical, _fetch
from finance_pipeline.sandbox.world import business_date

CHANNEL = "sap_business_one"
ZERO = Decimal("0.00")


def invoice_number(doc_num: int) -> str:
    return f"INV-SB1-{doc_num}"


def expected(con, clock: datetime) -> Canonical:
    T = [clock]
    invoices = _fetch(con, f"select * from {CHANNEL}_invoices where created_at <= ?", T)
    lines = _fetch(con, f"select l.* from {CHANNEL}_invoice_lines l join {CHANNEL}_invoices i using (doc_entry) "
                        "where i.created_at <= ?", T)
    payments = _fetch(con, f"select * from {CHANNEL}_payments where created_at <= ?", T)
    by_entry = {i["doc_entry"]: i for i in invoices}
    c = Canonical(CHANNEL)
    for i in invoices:
        edited = i["edited_at"] is not None and i["edited_at"] <= clock
        c.orders.append({
            "order_id": str(i["doc_entry"]), "customer_type": "trade", "currency": i["currency"],
            "ordered_at": i["created_at"], "is_void": i["cancelled_at"] is not None and i["cancelled_at"] <= clock,
            "shipping_amount": ZERO, "shipping_tax": ZERO, "shipping_amount_home": ZERO, "shipping_tax_home": ZERO,
        })
        c.invoices.append({
            "order_id": str(i["doc_entry"]), "invoice_number": invoice_number(i["doc_num"]),
            "customer_id": i["customer_id"], "customer_name": i["card_name"], "issued_on": business_date(i["created_at"]),
            "due_on": i["edited_due_date"] if edited else i["due_date"],
        })
    for ln in lines:
        c.lines.append({
            "order_id": str(ln["doc_entry"]), "line_id": f"{ln['doc_entry']}-{ln['line_num']}", "quantity": ln["quantity"],
            "gross_amount": ln["line_total_fc"], "net_amount": ln["line_total_fc"], "tax_amount": ln["tax_fc"],
            "gross_amount_home": ln["line_total_local"], "net_amount_home": ln["line_total_local"],
            "tax_amount_home": ln["tax_local"],
            "cogs_home": (ln["unit_cost_gbp"] * ln["quantity"]).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
        })
    for p in payments:
        c.payments.append({
            "payment_id": str(p["doc_entry"]), "status": "succeeded", "amount": p["amount"], "currency": p["currency"],
            "amount_home": p["amount_home"], "fee_home": ZERO, "attempted_at": p["created_at"],
            "invoice_number": invoice_number(by_entry[p["invoice_doc_entry"]]["doc_num"]),
        })
    return c

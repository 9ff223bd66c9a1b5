"""The Business Central channel's expected figures, from the world's truth tables (never from payloads).

As of the clock: an invoice exists once posted (`created_at`), is void once cancelled; a payment
counts once recorded.  `ordered_at` is the invoice date at midnight UTC (BC keeps dates); home
amounts are GBP at the world's daily rate (the company's exchange rate) of the invoice date, or
of the posting date for payments, each amount rounded on its own.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.platforms.dynamics365.world import midnight, q
from finance_pipeline.sandbox.oracle import Canonical, _fetch

ZERO = Decimal("0.00")


def rates(con) -> dict:
    return {r["rate_date"]: r["gbp_per_unit"]
            for r in _fetch(con, "select rate_date, gbp_per_unit from fx_rates where currency = 'USD'", [])}


def invoice_number(number: str) -> str:
    return f"INV-{number}"


def expected(con, clock: datetime) -> Canonical:
    T = [clock]
    fx = rates(con)
    invoices = _fetch(con, """select i.*, c.display_name from dynamics365_invoices i
                              join dynamics365_customers c using (customer_id) where i.created_at <= ?""", T)
    by_id = {i["invoice_id"]: i for i in invoices}
    lines = _fetch(con, """select l.* from dynamics365_invoice_lines l join dynamics365_invoices i using (invoice_id)
                           where i.created_at <= ?""", T)
    c = Canonical("dynamics365")
    freight: dict[str, tuple[Decimal, Decimal]] = {}
    for ln in lines:
        inv = by_id[ln["invoice_id"]]
        rate = fx[inv["invoice_date"]]
        if ln["line_type"] != "Item":
            s, t = freight.get(ln["invoice_id"], (ZERO, ZERO))
            freight[ln["invoice_id"]] = (s + ln["amount"], t + ln["tax_amount"])
            continue
        gross = ln["amount"] + ln["discount_amount"]
        gross_h = q(gross * rate)
        c.lines.append({
            "order_id": ln["invoice_id"], "line_id": ln["line_id"], "quantity": ln["quantity"],
            "gross_amount": gross, "net_amount": ln["amount"], "tax_amount": ln["tax_amount"],
            "gross_amount_home": gross_h, "net_amount_home": gross_h - q(ln["discount_amount"] * rate),
            "tax_amount_home": q(ln["tax_amount"] * rate), "cogs_home": q(ln["unit_cost_gbp"] * ln["quantity"]),
        })
    for i in invoices:
        rate = fx[i["invoice_date"]]
        ship, ship_tax = freight.get(i["invoice_id"], (ZERO, ZERO))
        c.orders.append({
            "order_id": i["invoice_id"], "customer_type": "trade", "currency": i["currency"],
            "ordered_at": midnight(i["invoice_date"]),
            "is_void": i["canceled_at"] is not None and i["canceled_at"] <= clock,
            "shipping_amount": ship, "shipping_tax": ship_tax, "shipping_amount_home": q(ship * rate),
            "shipping_tax_home": q(ship_tax * rate),
        })
        c.invoices.append({
            "order_id": i["invoice_id"], "invoice_number": invoice_number(i["number"]),
            "customer_id": i["customer_id"], "customer_name": i["display_name"], "issued_on": i["invoice_date"],
            "due_on": i["due_date"],
        })
    for p in _fetch(con, "select * from dynamics365_payments where created_at <= ?", T):
        inv = by_id[p["invoice_id"]]
        c.payments.append({
            "payment_id": p["payment_id"], "status": "succeeded", "amount": p["amount"], "currency": inv["currency"],
            "amount_home": q(p["amount"] * fx[p["posting_date"]]), "fee_home": ZERO,
            "invoice_number": invoice_number(inv["number"]), "attempted_at": midnight(p["posting_date"]),
        })
    return c

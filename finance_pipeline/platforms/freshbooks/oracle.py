"""The FreshBooks channel's expected figures, from the world's truth tables (never from payloads).

As of the clock: an invoice exists once raised, is void once deleted; a payment counts once
received.  Lines are tax-exclusive without discounts; home amounts at the invoice's sterling rate
(the world's rate of its date), each rounded on its own; a payment's home amount is the sterling
the bank credited (another day's rate).  Services carry no COGS.  Payments are dated on their
payment date at 12:00 UTC, as FreshBooks records only the date.
"""
from __future__ import annotations

from datetime import datetime, time, timezone
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.platforms.freshbooks.world import order_number
from finance_pipeline.sandbox.oracle import Canonical, _fetch

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def _q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def payment_at(paid_on) -> datetime:  # noqa: ANN001
    return datetime.combine(paid_on, time(12), tzinfo=timezone.utc)


def visible(con, clock: datetime) -> tuple[list[dict], list[dict], list[dict], dict]:
    T = [clock]
    invoices = _fetch(con, "select * from freshbooks_invoices where created_at <= ?", T)
    lines = _fetch(con, "select l.* from freshbooks_invoice_lines l join freshbooks_invoices i using (invoice_id) "
                        "where i.created_at <= ?", T)
    payments = _fetch(con, "select * from freshbooks_payments where paid_at <= ?", T)
    clients = {c["client_id"]: c for c in _fetch(con, "select * from freshbooks_clients")}
    return invoices, lines, payments, clients


def expected(con, clock: datetime) -> Canonical:
    invoices, lines, payments, clients = visible(con, clock)
    by_id = {i["invoice_id"]: i for i in invoices}
    c = Canonical("freshbooks")
    for inv in invoices:
        void = inv["voided_at"] is not None and inv["voided_at"] <= clock
        c.orders.append({
            "order_id": str(inv["invoice_id"]), "customer_type": "trade", "currency": inv["currency"],
            "ordered_at": inv["created_at"], "is_void": void, "shipping_amount": ZERO, "shipping_tax": ZERO,
            "shipping_amount_home": ZERO, "shipping_tax_home": ZERO,
        })
        c.invoices.append({
            "order_id": str(inv["invoice_id"]), "invoice_number": "INV-" + order_number(inv["invoice_number"]),
            "customer_id": inv["customer_id"], "customer_name": clients[inv["client_id"]]["organization"],
            "issued_on": inv["create_date"], "due_on": inv["due_on"],
        })
    for l in lines:
        fx = by_id[l["invoice_id"]]["fx_rate"]
        amount_h = _q(l["amount"] * fx)
        c.lines.append({
            "order_id": str(l["invoice_id"]), "line_id": f"{l['invoice_id']}-{l['position']}",
            "quantity": l["qty"], "gross_amount": l["amount"], "net_amount": l["amount"],
            "tax_amount": l["tax_amount"], "gross_amount_home": amount_h, "net_amount_home": amount_h,
            "tax_amount_home": _q(l["tax_amount"] * fx), "cogs_home": _q(l["unit_cost_gbp"] * l["qty"]),
        })
    for p in payments:
        inv = by_id[p["invoice_id"]]
        c.payments.append({
            "payment_id": str(p["payment_id"]), "status": "succeeded", "amount": p["amount"],
            "currency": p["currency"], "amount_home": p["amount_gbp"], "fee_home": ZERO,
            "invoice_number": "INV-" + order_number(inv["invoice_number"]), "attempted_at": payment_at(p["paid_on"]),
            "refunded_amount": ZERO,
        })
    return c


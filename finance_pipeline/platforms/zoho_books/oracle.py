"""The Zoho Books channel's expected figures (the EU trade desk), from the world's truth tables.

As of the clock: an invoice exists once raised, with the lines it had by then (a line added in an
edit counts from its `added_at`); it is void once voided; a customer payment counts once recorded.
Home amounts are GBP at the invoice's own exchange rate (each amount rounded on its own); a
payment's at its own date's rate, so the difference is realised FX.  Invoice numbers in the marts
are `INV-` + the desk's document number (`INV-EU-10001`); the customer is the master account
number the contact carries.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.sandbox.oracle import Canonical, _fetch
from finance_pipeline.sandbox.world import q as _q

ZERO = Decimal("0.00")


def _invoices(con, clock: datetime) -> list[dict]:
    return _fetch(con, "select * from zoho_books_invoices where created_at <= ?", [clock])


def _lines(con, clock: datetime) -> list[dict]:
    return _fetch(con, """select l.*, p.category, p.unit as product_unit from zoho_books_invoice_lines l
                          join zoho_books_invoices i using (invoice_id) join products p using (sku)
                          where i.created_at <= ? and (l.added_at is null or l.added_at <= ?)""", [clock, clock])


def _payments(con, clock: datetime) -> list[dict]:
    return _fetch(con, """select p.*, i.invoice_number from zoho_books_payments p
                          join zoho_books_invoices i using (invoice_id) where p.created_at <= ?""", [clock])


def expected(con, clock: datetime) -> Canonical:
    c = Canonical("zoho_books")
    invoices = _invoices(con, clock)
    fx = {i["invoice_id"]: i["exchange_rate"] for i in invoices}
    for i in invoices:
        rate = i["exchange_rate"]
        void = i["voided_at"] is not None and i["voided_at"] <= clock
        c.orders.append({
            "order_id": str(i["invoice_id"]), "customer_type": "trade", "currency": i["currency_code"],
            "ordered_at": i["created_at"], "is_void": void, "shipping_amount": i["shipping_charge"],
            "shipping_tax": i["shipping_tax"], "shipping_amount_home": _q(i["shipping_charge"] * rate),
            "shipping_tax_home": _q(i["shipping_tax"] * rate),
        })
        c.invoices.append({"order_id": str(i["invoice_id"]), "invoice_number": f"INV-{i['invoice_number']}",
                           "customer_id": i["customer_id"], "customer_name": i["customer_name"],
                           "issued_on": i["date"], "due_on": i["due_date"]})
    for line in _lines(con, clock):
        rate = fx[line["invoice_id"]]
        gross = line["rate"] * line["quantity"]
        net = line["item_total"]
        gross_h, discount_h = _q(gross * rate), _q((gross - net) * rate)
        c.lines.append({
            "order_id": str(line["invoice_id"]), "line_id": str(line["line_item_id"]), "quantity": line["quantity"],
            "gross_amount": gross, "net_amount": net, "tax_amount": line["tax_amount"],
            "gross_amount_home": gross_h, "net_amount_home": gross_h - discount_h,
            "tax_amount_home": _q(line["tax_amount"] * rate), "cogs_home": _q(line["unit_cost_gbp"] * line["quantity"]),
        })
    for p in _payments(con, clock):
        c.payments.append({
            "payment_id": str(p["payment_id"]), "status": "succeeded", "amount": p["amount"],
            "currency": p["currency_code"], "amount_home": _q(p["amount"] * p["exchange_rate"]), "fee_home": ZERO,
            "invoice_number": f"INV-{p['invoice_number']}", "attempted_at": p["created_at"],
        })
    return c

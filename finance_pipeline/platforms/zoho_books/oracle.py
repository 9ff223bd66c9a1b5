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

from finance_pipeline.sandbox.ledger_channel import add_bank_payment, add_invoice, add_line
from finance_pipeline.sandbox.oracle import Canonical, _fetch


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
        add_invoice(c, clock, order_id=i["invoice_id"], currency=i["currency_code"], created_at=i["created_at"],
                    voided_at=i["voided_at"], shipping=i["shipping_charge"], shipping_tax=i["shipping_tax"],
                    rate=i["exchange_rate"], number=i["invoice_number"], customer_id=i["customer_id"],
                    customer_name=i["customer_name"], issued_on=i["date"], due_on=i["due_date"])
    for line in _lines(con, clock):
        add_line(c, order_id=line["invoice_id"], line_id=str(line["line_item_id"]), quantity=line["quantity"],
                 unit_price=line["rate"], net=line["item_total"], tax=line["tax_amount"], rate=fx[line["invoice_id"]],
                 unit_cost_gbp=line["unit_cost_gbp"])
    for p in _payments(con, clock):
        add_bank_payment(c, payment_id=p["payment_id"], amount=p["amount"], currency=p["currency_code"],
                         rate=p["exchange_rate"], number=p["invoice_number"], attempted_at=p["created_at"])
    return c

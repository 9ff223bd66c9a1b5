"""What the oracles of the ledger channels (an accounting platform's own trade invoices: QuickBooks,
Zoho Books) write alike into their `Canonical`: an invoice as an order of the trade customer, its
lines, and the payments the bookkeeper recorded against it. Home amounts are GBP at the given rate
(the document's for the invoice and its lines, the payment's own for a payment), each amount
rounded on its own."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from finance_pipeline.sandbox.oracle import Canonical
from finance_pipeline.sandbox.world import q as _q

ZERO = Decimal("0.00")


def add_invoice(c: Canonical, clock: datetime, *, order_id: object, currency: str, created_at: datetime,
                voided_at: datetime | None, shipping: Decimal, shipping_tax: Decimal, rate: Decimal,
                number: str, customer_id: str, customer_name: str, issued_on: date, due_on: date) -> None:
    """The invoice as an order (void once voided by the clock) and as an invoice `INV-<number>`."""
    c.orders.append({
        "order_id": str(order_id), "customer_type": "trade", "currency": currency, "ordered_at": created_at,
        "is_void": voided_at is not None and voided_at <= clock, "shipping_amount": shipping,
        "shipping_tax": shipping_tax, "shipping_amount_home": _q(shipping * rate),
        "shipping_tax_home": _q(shipping_tax * rate),
    })
    c.invoices.append({"order_id": str(order_id), "invoice_number": f"INV-{number}", "customer_id": customer_id,
                       "customer_name": customer_name, "issued_on": issued_on, "due_on": due_on})


def add_line(c: Canonical, *, order_id: object, line_id: str, quantity: Decimal, unit_price: Decimal,
             net: Decimal, tax: Decimal, rate: Decimal, unit_cost_gbp: Decimal) -> None:
    """A line: gross = unit price × quantity, the discount gross - net (its home amount rounded on its own)."""
    gross = unit_price * quantity
    gross_home = _q(gross * rate)
    c.lines.append({
        "order_id": str(order_id), "line_id": line_id, "quantity": quantity, "gross_amount": gross,
        "net_amount": net, "tax_amount": tax, "gross_amount_home": gross_home,
        "net_amount_home": gross_home - _q((gross - net) * rate), "tax_amount_home": _q(tax * rate),
        "cogs_home": _q(unit_cost_gbp * quantity),
    })


def add_bank_payment(c: Canonical, *, payment_id: object, amount: Decimal, currency: str, rate: Decimal,
                     number: str, attempted_at: datetime) -> None:
    """A payment recorded against invoice `INV-<number>`, straight to the bank: succeeded, no fee."""
    c.payments.append({
        "payment_id": str(payment_id), "status": "succeeded", "amount": amount, "currency": currency,
        "amount_home": _q(amount * rate), "fee_home": ZERO, "invoice_number": f"INV-{number}",
        "attempted_at": attempted_at,
    })

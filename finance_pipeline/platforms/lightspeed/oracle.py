"""Lightspeed's truth in the canonical shape, from the world tables as of the clock.

GBP only, so home amounts equal sale amounts.  Sales placed by the clock are orders (voided ones
are void: no revenue); a return ticket is a refund of the sale its lines name, goods restocked;
each positive sale payment is a payment (Cash: processor 'cash'; card: 'lightspeed_payments',
whose fees the Retail API does not expose, so none are booked).  No payouts.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.sandbox.oracle import Canonical, _fetch
from finance_pipeline.sandbox.world import q

ZERO = Decimal("0.00")


def expected(con, clock: datetime) -> Canonical:
    T = [clock]
    c = Canonical("lightspeed")
    sales = _fetch(con, "select * from lightspeed_sales where created_at <= ?", T)
    lines = _fetch(con, """select l.* from lightspeed_sale_lines l join lightspeed_sales s using (sale_id)
                           where s.created_at <= ?""", T)
    payments = _fetch(con, """select p.* from lightspeed_sale_payments p join lightspeed_sales s using (sale_id)
                              where p.created_at <= ? and s.kind = 'sale'""", T)
    by_sale: dict[str, list[dict]] = {}
    for line in lines:
        by_sale.setdefault(line["sale_id"], []).append(line)
    for s in sales:
        if s["kind"] == "sale":
            c.orders.append({"order_id": s["sale_id"], "customer_type": "retail", "currency": "GBP",
                             "ordered_at": s["created_at"], "is_void": bool(s["voided"]),
                             "shipping_amount": ZERO, "shipping_tax": ZERO, "shipping_amount_home": ZERO,
                             "shipping_tax_home": ZERO})
            for line in by_sale.get(s["sale_id"], []):
                listed = line["unit_price"] * line["quantity"]
                gross = q(listed / (1 + line["tax1_rate"]))
                net = listed - line["discount"] - line["tax1"]
                c.lines.append({
                    "order_id": s["sale_id"], "line_id": line["sale_line_id"], "quantity": line["quantity"],
                    "gross_amount": gross, "net_amount": net, "tax_amount": line["tax1"],
                    "gross_amount_home": gross, "net_amount_home": net, "tax_amount_home": line["tax1"],
                    "cogs_home": q(line["unit_cost_gbp"] * line["quantity"]),
                })
        else:
            rl = by_sale.get(s["sale_id"], [])
            tax = -sum((x["tax1"] for x in rl), ZERO)
            goods = -sum((x["total"] for x in rl), ZERO) - tax
            cogs = q(-sum((x["unit_cost_gbp"] * x["quantity"] for x in rl), ZERO))
            c.refunds.append({
                "refund_id": s["sale_id"], "order_id": s["returned_sale_id"], "refunded_at": s["created_at"],
                "goods_amount": goods, "shipping_amount": ZERO, "tax_amount": tax, "goods_amount_home": goods,
                "shipping_amount_home": ZERO, "tax_amount_home": tax, "cogs_reversal_home": cogs,
            })
    for p in payments:
        c.payments.append({"payment_id": p["sale_payment_id"], "status": "succeeded", "amount": p["amount"],
                           "currency": "GBP", "amount_home": p["amount"], "fee_home": None})
    return c

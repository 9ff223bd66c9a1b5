"""The BigCommerce channel's expected figures, from the world's truth tables (never from payloads).

As of the clock: an order exists once placed; it is paid once its `purchase` transaction
succeeded (before that, or when the card was declined, it is void — no revenue); a refund counts
once made.  Home amounts are GBP at the order's own rate (the store's default currency is GBP:
`store_default_to_transactional_exchange_rate`, US dollars per pound), each amount divided by it
and rounded to the cent on its own.  Refunds put nothing back in stock: no COGS reversal.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.sandbox.oracle import Canonical, _fetch, _money_div
from finance_pipeline.sandbox.world import q as _q

ZERO = Decimal("0.00")


def payment_rows(con, clock: datetime) -> list[dict]:
    """Each order's purchase attempt visible by the clock, with the order's total and rate."""
    return _fetch(con, """select t.transaction_id, t.order_id, t.status, t.created_at, o.total_inc_tax,
                                 o.currency, o.exchange_rate
                          from bigcommerce_transactions t join bigcommerce_orders o using (order_id)
                          where t.event = 'purchase' and t.created_at <= ?""", [clock])


def expected(con, clock: datetime) -> Canonical:
    T = [clock]
    orders = _fetch(con, "select * from bigcommerce_orders where created_at <= ?", T)
    lines = _fetch(con, "select p.* from bigcommerce_order_products p join bigcommerce_orders o using (order_id) "
                        "where o.created_at <= ?", T)
    refunds = _fetch(con, "select * from bigcommerce_refunds where created_at <= ?", T)
    by_id = {o["order_id"]: o for o in orders}
    c = Canonical("bigcommerce")
    for o in orders:
        rate = o["exchange_rate"]
        c.orders.append({
            "order_id": str(o["order_id"]), "customer_type": "retail", "currency": o["currency"],
            "ordered_at": o["created_at"], "is_void": not (o["paid_at"] is not None and o["paid_at"] <= clock),
            "shipping_amount": o["shipping_ex_tax"], "shipping_tax": o["shipping_tax"],
            "shipping_amount_home": _money_div(o["shipping_ex_tax"], rate),
            "shipping_tax_home": _money_div(o["shipping_tax"], rate),
        })
    for p in payment_rows(con, clock):
        c.payments.append({"payment_id": str(p["transaction_id"]),
                           "status": "succeeded" if p["status"] == "ok" else "failed",
                           "amount": p["total_inc_tax"], "currency": p["currency"],
                           "amount_home": _money_div(p["total_inc_tax"], p["exchange_rate"]), "fee_home": None})
    for p in lines:
        rate = by_id[p["order_id"]]["exchange_rate"]
        gross_h = _money_div(p["total_ex_tax"], rate)
        c.lines.append({
            "order_id": str(p["order_id"]), "line_id": str(p["product_row_id"]), "quantity": p["quantity"],
            "gross_amount": p["total_ex_tax"], "net_amount": p["total_ex_tax"] - p["discount"],
            "tax_amount": p["total_tax"], "gross_amount_home": gross_h,
            "net_amount_home": gross_h - _money_div(p["discount"], rate),
            "tax_amount_home": _money_div(p["total_tax"], rate),
            "cogs_home": _q(p["unit_cost_gbp"] * p["quantity"]),
        })
    for r in refunds:
        rate = by_id[r["order_id"]]["exchange_rate"]
        c.refunds.append({
            "refund_id": str(r["refund_id"]), "order_id": str(r["order_id"]), "refunded_at": r["created_at"],
            "goods_amount": r["goods_amount"], "shipping_amount": r["shipping_amount"], "tax_amount": r["tax_amount"],
            "goods_amount_home": _money_div(r["goods_amount"], rate),
            "shipping_amount_home": _money_div(r["shipping_amount"], rate),
            "tax_amount_home": _money_div(r["tax_amount"], rate), "cogs_reversal_home": ZERO,
        })
    return c

"""The Magento channel's expected figures, from the world's truth tables (never from payloads).

As of the clock: an order exists once placed; it is paid once `paid_at` has passed (void before
that, or when its payment was canceled); a credit memo counts once made.  The store's base
currency is GBP, so home amounts are the amounts themselves.  Credit memos restock nothing.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox.oracle import Canonical, _fetch

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def _q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def expected(con, clock: datetime) -> Canonical:
    T = [clock]
    orders = _fetch(con, "select * from magento_orders where created_at <= ?", T)
    items = _fetch(con, "select i.* from magento_order_items i join magento_orders o on o.entity_id = i.order_id "
                        "where o.created_at <= ?", T)
    memos = _fetch(con, "select * from magento_creditmemos where created_at <= ?", T)
    memo_items = _fetch(con, "select ci.* from magento_creditmemo_items ci join magento_creditmemos c "
                             "on c.entity_id = ci.creditmemo_id where c.created_at <= ?", T)
    by_id = {o["entity_id"]: o for o in orders}
    by_memo: dict[int, list[dict]] = defaultdict(list)
    for ci in memo_items:
        by_memo[ci["creditmemo_id"]].append(ci)
    c = Canonical("magento")
    for o in orders:
        paid = o["paid_at"] is not None and o["paid_at"] <= clock
        canceled = o["canceled_at"] is not None and o["canceled_at"] <= clock
        ship_ex = o["shipping_incl_tax"] - o["shipping_tax"]
        c.orders.append({
            "order_id": str(o["entity_id"]), "customer_type": "retail", "currency": o["currency"],
            "ordered_at": o["created_at"], "is_void": not paid, "shipping_amount": ship_ex,
            "shipping_tax": o["shipping_tax"], "shipping_amount_home": ship_ex, "shipping_tax_home": o["shipping_tax"],
        })
        if paid or canceled:
            c.payments.append({"payment_id": str(o["entity_id"]), "status": "succeeded" if paid else "failed",
                               "amount": o["grand_total"], "currency": o["currency"], "amount_home": o["grand_total"],
                               "fee_home": None})
    for i in items:
        rate = by_id[i["order_id"]]["tax_rate"]
        net = i["row_total_incl_tax"] - i["discount_amount"] - i["tax_amount"]
        gross = _q(i["row_total_incl_tax"] / (1 + rate))
        c.lines.append({
            "order_id": str(i["order_id"]), "line_id": str(i["item_id"]), "quantity": i["qty"],
            "gross_amount": gross, "net_amount": net, "tax_amount": i["tax_amount"],
            "gross_amount_home": gross, "net_amount_home": net, "tax_amount_home": i["tax_amount"],
            "cogs_home": _q(i["unit_cost_gbp"] * i["qty"]),
        })
    for m in memos:
        lines = by_memo[m["entity_id"]]
        goods = sum((ci["row_total_incl_tax"] - ci["discount_amount"] - ci["tax_amount"] for ci in lines), ZERO)
        tax = sum((ci["tax_amount"] for ci in lines), ZERO) + m["shipping_tax"]
        ship = m["shipping_incl_tax"] - m["shipping_tax"]
        c.refunds.append({
            "refund_id": str(m["entity_id"]), "order_id": str(m["order_id"]), "refunded_at": m["created_at"],
            "goods_amount": goods, "shipping_amount": ship, "tax_amount": tax, "goods_amount_home": goods,
            "shipping_amount_home": ship, "tax_amount_home": tax, "cogs_reversal_home": ZERO,
        })
    return c

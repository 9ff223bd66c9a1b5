"""The WooCommerce channel's expected figures, from the world's truth tables (never from payloads).

As of the clock: an order exists once placed; it is paid once `paid_at` has passed (before that,
or when its payment failed, it is void — no revenue); a refund counts once made.  Home amounts
are GBP at the order's rate (the store records it on the order), each amount rounded on its own.
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
    orders = _fetch(con, "select * from woocommerce_orders where created_at <= ?", T)
    lines = _fetch(con, "select l.* from woocommerce_order_lines l join woocommerce_orders o using (order_id) "
                        "where o.created_at <= ?", T)
    refunds = _fetch(con, "select * from woocommerce_refunds where created_at <= ?", T)
    refund_lines = _fetch(con, "select rl.* from woocommerce_refund_lines rl join woocommerce_refunds r "
                               "using (refund_id) where r.created_at <= ?", T)
    by_id = {o["order_id"]: o for o in orders}
    line_by_id = {l["line_id"]: l for l in lines}
    rl_by_refund: dict[int, list[dict]] = defaultdict(list)
    for rl in refund_lines:
        rl_by_refund[rl["refund_id"]].append(rl)
    c = Canonical("woocommerce")
    line_tax: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for l in lines:
        line_tax[l["order_id"]][0] += l["total_tax"]
        line_tax[l["order_id"]][1] += _q(l["total_tax"] * by_id[l["order_id"]]["fx_rate"])
    for o in orders:
        fx = o["fx_rate"]
        # S13: a cart tax rounded once at subtotal level is the tax; the lines' excess is rounding
        cart = o.get("cart_tax_at_subtotal")
        rounding = (line_tax[o["order_id"]][0] - cart, line_tax[o["order_id"]][1] - _q(cart * fx)) if cart is not None \
            else (ZERO, ZERO)
        paid = o["paid_at"] is not None and o["paid_at"] <= clock
        c.orders.append({
            "order_id": str(o["order_id"]), "customer_type": "retail", "currency": o["currency"],
            "ordered_at": o["created_at"], "is_void": not paid,
            "shipping_amount": o["shipping_total"], "shipping_tax": o["shipping_tax"],
            "shipping_amount_home": _q(o["shipping_total"] * fx), "shipping_tax_home": _q(o["shipping_tax"] * fx),
            "tax_rounding": rounding[0], "tax_rounding_home": rounding[1],
        })
        failed = o["failed_at"] is not None and o["failed_at"] <= clock
        if paid or failed:
            c.payments.append({"payment_id": str(o["order_id"]), "status": "succeeded" if paid else "failed",
                               "amount": o["total"], "currency": o["currency"], "amount_home": _q(o["total"] * fx),
                               "fee_home": None})
    for l in lines:
        o = by_id[l["order_id"]]
        fx, rate = o["fx_rate"], o["tax_rate"]
        listed = l["subtotal"] + l["subtotal_tax"]
        discount = listed - (l["total"] + l["total_tax"])
        listed_h, discount_h, tax_h = _q(listed * fx), _q(discount * fx), _q(l["total_tax"] * fx)
        c.lines.append({
            "order_id": str(l["order_id"]), "line_id": str(l["line_id"]), "quantity": l["quantity"],
            "gross_amount": _q(listed / (1 + rate)), "net_amount": l["total"], "tax_amount": l["total_tax"],
            "gross_amount_home": _q(listed_h / (1 + rate)), "net_amount_home": listed_h - discount_h - tax_h,
            "tax_amount_home": tax_h, "cogs_home": _q(l["unit_cost_gbp"] * l["quantity"]),
        })
    for r in refunds:
        fx = by_id[r["order_id"]]["fx_rate"]
        goods = sum((rl["total"] for rl in rl_by_refund[r["refund_id"]]), ZERO)
        tax = sum((rl["total_tax"] for rl in rl_by_refund[r["refund_id"]]), ZERO) + r["shipping_tax"]
        cogs = ZERO
        if r["restock"]:
            for rl in rl_by_refund[r["refund_id"]]:
                cogs += line_by_id[rl["line_id"]]["unit_cost_gbp"] * rl["quantity"]
        c.refunds.append({
            "refund_id": str(r["refund_id"]), "order_id": str(r["order_id"]), "refunded_at": r["created_at"],
            "goods_amount": goods, "shipping_amount": r["shipping_total"], "tax_amount": tax,
            "goods_amount_home": _q(goods * fx), "shipping_amount_home": _q(r["shipping_total"] * fx),
            "tax_amount_home": _q(tax * fx), "cogs_reversal_home": _q(cogs),
        })
    return c

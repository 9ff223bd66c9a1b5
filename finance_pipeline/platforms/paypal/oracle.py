"""PayPal's expected finance figures from the world's truth tables, as of the clock.

Visibility is what the pipeline can see: an order once its capture is listed by Transaction
Search (after PayPal's reporting delay), a refund once its T1107 row is, a withdrawal (payout)
once its T0400 row is.  The account and storefront are GBP, so home amounts are the amounts.
"""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox.oracle import Canonical, _fetch
from finance_pipeline.sandbox.world import business_date

ZERO = Decimal("0.00")
TYPES = {"T0006": "charge", "T1107": "refund"}


def _q(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def visible(con, clock: datetime) -> tuple[dict, list[dict], list[dict], list[dict]]:
    txns = _fetch(con, "select * from paypal_transactions where visible_at <= ?", [clock])
    captured = {t["order_id"] for t in txns if t["event_code"] == "T0006"}
    refunds_seen = {t["refund_id"] for t in txns if t["event_code"] == "T1107"}
    orders = {o["order_id"]: o for o in _fetch(con, "select * from paypal_orders") if o["order_id"] in captured}
    lines = [l for l in _fetch(con, "select * from paypal_order_lines order by order_id, position") if l["order_id"] in orders]
    refunds = [r for r in _fetch(con, "select * from paypal_refunds") if r["refund_id"] in refunds_seen]
    return orders, lines, refunds, txns


def expected(con, clock: datetime) -> Canonical:
    orders, lines, refunds, txns = visible(con, clock)
    c = Canonical("paypal")
    for o in orders.values():
        c.orders.append({"order_id": o["order_id"], "customer_type": "retail", "currency": "GBP",
                         "ordered_at": o["created_at"], "is_void": False, "shipping_amount": ZERO,
                         "shipping_amount_home": ZERO, "shipping_tax": ZERO, "shipping_tax_home": ZERO})
        c.payments.append({"payment_id": o["capture_id"], "status": "succeeded", "amount": o["total"], "currency": "GBP",
                           "amount_home": o["total"], "fee_home": o["fee"]})
    for l in lines:
        gross = l["unit_amount"] * l["quantity"]
        tax = l["unit_tax"] * l["quantity"]
        c.lines.append({"order_id": l["order_id"], "line_id": f"{l['order_id']}-{l['position'] + 1}",
                        "quantity": l["quantity"], "gross_amount": gross, "net_amount": gross, "tax_amount": tax,
                        "gross_amount_home": gross, "net_amount_home": gross, "tax_amount_home": tax,
                        "cogs_home": _q(l["unit_cost_gbp"] * l["quantity"])})
    for r in refunds:
        c.refunds.append({"refund_id": r["refund_id"], "order_id": r["order_id"], "refunded_at": r["created_at"],
                          "goods_amount": r["goods"], "shipping_amount": ZERO, "tax_amount": r["tax"],
                          "goods_amount_home": r["goods"], "shipping_amount_home": ZERO, "tax_amount_home": r["tax"],
                          "cogs_reversal_home": r["cogs_reversal_home"]})
    payouts = {t["txn_id"]: t for t in txns if t["event_code"] == "T0400"}
    for t in txns:
        if t["event_code"] == "T0400":
            continue
        if t["withdrawal_id"] in payouts:
            c.payout_transactions.append({"payout_id": t["withdrawal_id"], "type": TYPES.get(t["event_code"], "adjustment"),
                                          "amount": t["amount"], "fee": t["fee"], "net": t["net"]})
        c.fees.append({"at": t["initiated_at"], "fee_home": t["fee"]})
    for p in payouts.values():
        c.payouts.append({"payout_id": p["txn_id"], "amount": -p["amount"], "status": "paid",
                          "payout_date": business_date(p["initiated_at"])})
    return c

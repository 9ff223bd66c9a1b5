"""eBay's expected finance figures, from the world's truth tables as of the clock.

Visibility is the emulator's: an order once placed, a refund once made, a transaction once
made, a payout once started.  Money is `Decimal`; home amounts are eBay's own GBP conversions
recorded in the world (each amount converted on its own, ledger entries at the rate of their day).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox.oracle import Canonical, _fetch
from finance_pipeline.sandbox.world import business_date

ZERO = Decimal("0.00")
TYPES = {"SALE": "charge", "REFUND": "refund", "NON_SALE_CHARGE": "fee"}


def _q(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected(con, clock: datetime) -> Canonical:
    T = [clock]
    orders = _fetch(con, "select * from ebay_orders where created_at <= ?", T)
    lines = _fetch(con, """select l.* from ebay_order_lines l join ebay_orders o using (order_id)
                           where o.created_at <= ?""", T)
    refunds = _fetch(con, "select * from ebay_refunds where created_at <= ?", T)
    txns = _fetch(con, "select * from ebay_transactions where created_at <= ?", T)
    payouts = _fetch(con, "select * from ebay_payouts where payout_at <= ?", T)
    c = Canonical("ebay")
    sales = {t["order_id"]: t for t in txns if t["txn_type"] == "SALE"}
    order_by_id = {o["order_id"]: o for o in orders}
    for o in orders:
        c.orders.append({
            "order_id": o["order_id"], "customer_type": "retail", "currency": o["currency"],
            "ordered_at": o["created_at"], "is_void": False,
            "shipping_amount": o["shipping"] - o["shipping_tax"],
            "shipping_amount_home": o["shipping_home"] - o["shipping_tax_home"],
            "shipping_tax": o["shipping_tax"], "shipping_tax_home": o["shipping_tax_home"],
            "marketplace_tax_amount": o["marketplace_tax"], "marketplace_tax_amount_home": o["marketplace_tax_home"],
        })
        sale = sales.get(o["order_id"])
        # settled to the seller: the buyer's payment less the tax eBay keeps to remit
        c.payments.append({"payment_id": o["payment_ref"], "status": "succeeded", "currency": o["currency"],
                           "amount": o["buyer_total"] - o["marketplace_tax"],
                           "amount_home": sale["gross"] if sale else None, "fee_home": sale["fee"] if sale else None})
    for l in lines:
        incl = order_by_id[l["order_id"]]["taxes_included"]
        rate = order_by_id[l["order_id"]]["tax_rate"]
        net = l["list_amount"] - l["discount"]
        net_h = l["list_amount_home"] - l["discount_home"]
        c.lines.append({
            "order_id": l["order_id"], "line_id": l["line_id"], "quantity": l["quantity"],
            # VAT-inclusive eBay UK lines: ex-tax gross is the list amount / (1 + rate), to the cent
            "gross_amount": _q(l["list_amount"] / (1 + rate)) if incl else l["list_amount"],
            "net_amount": net - l["tax"] if incl else net,
            "tax_amount": l["tax"],
            "gross_amount_home": _q(l["list_amount_home"] / (1 + rate)) if incl else l["list_amount_home"],
            "net_amount_home": net_h - l["tax_home"] if incl else net_h,
            "tax_amount_home": l["tax_home"],
            "cogs_home": _q(l["unit_cost_gbp"] * l["quantity"]),
            # eBay US: every cent of the line's tax is eBay's to remit (marketplace facilitator)
            "marketplace_tax_amount": l["marketplace_tax"],
            "marketplace_tax_amount_home": l["tax_home"] if l["marketplace_tax"] else ZERO,
        })
    for r in refunds:
        c.refunds.append({
            "refund_id": r["refund_id"], "order_id": r["order_id"], "refunded_at": r["created_at"],
            "goods_amount": r["goods"], "shipping_amount": r["shipping"], "tax_amount": r["tax"] + r["shipping_tax"],
            "goods_amount_home": r["goods_home"], "shipping_amount_home": r["shipping_home"],
            "tax_amount_home": r["tax_home"] + r["shipping_tax_home"], "cogs_reversal_home": r["cogs_reversal_home"],
            "marketplace_tax_amount": r["marketplace_tax"], "marketplace_tax_amount_home": r["marketplace_tax_home"],
        })
    started = {p["payout_id"] for p in payouts}
    for t in txns:
        if t["payout_id"] in started:
            c.payout_transactions.append({"payout_id": t["payout_id"], "type": TYPES.get(t["txn_type"], "adjustment"),
                                          "amount": t["gross"], "fee": t["fee"], "net": t["net"]})
        c.fees.append({"at": t["created_at"], "fee_home": t["fee"]})
    for p in payouts:
        c.payouts.append({"payout_id": p["payout_id"], "amount": p["amount"],
                          "status": "paid" if p["succeeded_at"] <= clock else "in_transit",
                          "payout_date": business_date(p["payout_at"])})
    return c


def marketplace_tax(con, clock: datetime) -> dict[str, Decimal]:
    """Tax eBay collected and remits (not the business's to pay), net of what it refunded, by
    currency — the figure the tax-obligations report must keep apart."""
    out: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for o in _fetch(con, "select currency, marketplace_tax from ebay_orders where created_at <= ?", [clock]):
        out[o["currency"]] += o["marketplace_tax"]
    for r in _fetch(con, """select o.currency, r.marketplace_tax from ebay_refunds r join ebay_orders o using (order_id)
                            where r.created_at <= ?""", [clock]):
        out[r["currency"]] -= r["marketplace_tax"]
    return dict(out)

"""Square's truth in the canonical shape, from the world tables as of the clock (never from
payloads or the warehouse).  All money is GBP, so home amounts equal transaction amounts.

- orders / lines: sales orders placed by the clock; VAT-inclusive prices, ex-tax gross =
  list / 1.20 rounded to the cent, net = list - discount - tax.
- refunds: one per refund made by the clock, from its return order's lines; returned goods are
  restocked, so their COGS (cost valid on the original sale's date) is reversed.
- payments: every attempt made by the clock; card fees once Square has computed them; cash
  has processor 'cash' and no fee.
- payouts: created by the clock (SENT = in transit, PAID once arrived), with their entries;
  fees are booked when the card payment was taken.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.sandbox.oracle import Canonical, _fetch
from finance_pipeline.sandbox.world import q

ZERO = Decimal("0.00")


def _m(pence: int | None) -> Decimal | None:
    return None if pence is None else q(Decimal(pence) / 100)


def expected(con, clock: datetime) -> Canonical:
    T = [clock]
    c = Canonical("square")
    orders = _fetch(con, "select * from square_orders where kind = 'sale' and created_at <= ?", T)
    lines = _fetch(con, """select l.* from square_order_lines l join square_orders o using (order_id)
                           where o.created_at <= ?""", T)
    refunds = _fetch(con, "select * from square_refunds where created_at <= ?", T)
    rlines = _fetch(con, "select * from square_return_lines", [])
    payments = _fetch(con, "select * from square_payments where created_at <= ?", T)
    payouts = _fetch(con, "select * from square_payouts where created_at <= ?", T)
    entries = _fetch(con, """select e.* from square_payout_entries e join square_payouts p using (payout_id)
                             where p.created_at <= ?""", T)
    for o in orders:
        c.orders.append({"order_id": o["order_id"], "customer_type": "retail", "currency": "GBP",
                         "ordered_at": o["created_at"], "is_void": False, "shipping_amount": ZERO,
                         "shipping_tax": ZERO, "shipping_amount_home": ZERO, "shipping_tax_home": ZERO})
    for line in lines:
        listed, discount, tax = _m(line["gross_sales"]), _m(line["discount"]), _m(line["tax"])
        gross = q(listed / (1 + line["tax_rate"]))
        net = listed - discount - tax
        c.lines.append({
            "order_id": line["order_id"], "line_id": line["uid"], "quantity": line["quantity"],
            "gross_amount": gross, "net_amount": net, "tax_amount": tax,
            "gross_amount_home": gross, "net_amount_home": net, "tax_amount_home": tax,
            "cogs_home": q(line["unit_cost_gbp"] * line["quantity"]),
        })
    by_return: dict[str, list[dict]] = {}
    for rl in rlines:
        by_return.setdefault(rl["order_id"], []).append(rl)
    payment_order = {p["payment_id"]: p["order_id"] for p in payments}
    for r in refunds:
        rows = by_return.get(r["order_id"], [])
        tax = sum((_m(x["tax"]) for x in rows), ZERO)
        goods = sum((_m(x["total"]) for x in rows), ZERO) - tax
        cogs = q(sum((x["unit_cost_gbp"] * x["quantity"] for x in rows if x["restocked"]), ZERO))
        c.refunds.append({
            "refund_id": r["refund_id"], "order_id": payment_order[r["payment_id"]], "refunded_at": r["created_at"],
            "goods_amount": goods, "shipping_amount": ZERO, "tax_amount": tax,
            "goods_amount_home": goods, "shipping_amount_home": ZERO, "tax_amount_home": tax,
            "cogs_reversal_home": cogs,
        })
    for p in payments:
        ok = p["status"] == "COMPLETED"
        fee = p["fee"] if p["fee"] is not None and p["fee_at"] <= clock else None
        c.payments.append({
            "payment_id": p["payment_id"],
            "status": {"COMPLETED": "succeeded", "FAILED": "failed", "CANCELED": "failed"}[p["status"]],
            "amount": _m(p["amount"]), "currency": "GBP",
            "amount_home": _m(p["amount"]) if ok else None,
            "fee_home": (_m(fee) if fee is not None else ZERO) if ok else None,
        })
        if fee:
            c.fees.append({"at": p["created_at"], "fee_home": _m(fee)})
    for po in payouts:
        c.payouts.append({"payout_id": po["payout_id"], "amount": _m(po["amount"]),
                          "status": "paid" if po["paid_at"] <= clock else "in_transit",
                          "payout_date": po["arrival_date"]})
    for e in entries:
        c.payout_transactions.append({"payout_id": e["payout_id"], "type": e["type"].lower(),
                                      "amount": _m(e["gross"]), "fee": _m(e["fee"]), "net": _m(e["net"])})
    return c

"""WooCommerce's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

The store's gateways (Stripe card, PayPal) capture each paid order in EUR and pay refunds back;
their balance, fees and payouts are not visible through WooCommerce, so the channel's movements
are the capture (`charge-<order>`) and each refund paid back (`refund-<refund>`), in GBP at the
order's rate, with no fees, adjustments or disputes.
"""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch

CENT = Decimal("0.01")


def facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    f = LedgerFacts("woocommerce")
    orders = _fetch(con, "select * from woocommerce_orders where created_at <= ?", T)
    for o in orders:
        oid = str(o["order_id"])
        f.orders[oid] = {"tax_treatment": "eu_oss_vat", "country": o["country"], "region": None,
                         "order_number": oid, "invoice_number": None}
        amount_home = (o["total"] * o["fx_rate"]).quantize(CENT, rounding=ROUND_HALF_UP)
        paid = o["paid_at"] is not None and o["paid_at"] <= clock
        failed = o["failed_at"] is not None and o["failed_at"] <= clock
        if paid or failed:
            f.attempts.append({"payment_id": oid, "status": "succeeded" if paid else "failed",
                               "at": o["paid_at"] if paid else o["failed_at"], "doc": ("woocommerce", oid),
                               "amount_home": amount_home, "dispute_open": False, "dispute_lost": False,
                               "disputed": False})
        if paid:
            f.settlements.append({"source_type": "payment", "source_id": oid, "bt_id": f"charge-{oid}", "at": o["paid_at"],
                                  "doc": ("woocommerce", oid), "currency": o["currency"], "amount": o["total"],
                                  "amount_home": amount_home})
    fx = {o["order_id"]: o["fx_rate"] for o in orders}
    for r in _fetch(con, "select * from woocommerce_refunds where created_at <= ?", T):
        bt = f"refund-{r['refund_id']}"
        f.settlements.append({"source_type": "payment_refund", "source_id": bt, "bt_id": bt, "at": r["created_at"],
                              "doc": ("woocommerce", str(r["order_id"])), "currency": None, "amount": None,
                              "amount_home": -(r["amount"] * fx[r["order_id"]]).quantize(CENT, rounding=ROUND_HALF_UP)})
    for line in _fetch(con, """select l.line_id, l.order_id, l.quantity, p.category, p.unit
                               from woocommerce_order_lines l join woocommerce_orders o using (order_id)
                               join products p using (sku) where o.created_at <= ?""", T):
        f.lines[str(line["line_id"])] = {
            "order_id": str(line["order_id"]), "category": line["category"],
            "metres": Decimal(line["quantity"]) * Decimal("0.1") if line["unit"] == "10cm" else None,
        }
    return f

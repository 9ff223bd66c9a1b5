"""BigCommerce's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

The store's gateways (BigCommerce Payments, PayPal) capture each paid order in USD and pay refunds
back; their balances, fees and payouts are not in BigCommerce's API, so the channel's movements
are the capture (`charge-<order>`, the purchase transaction) and each refund paid back
(`refund-<refund>`), in GBP at the order's rate, with no fees, adjustments or disputes.  Sales tax
is owed to the buyer's state (US-<state>).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.platforms.bigcommerce.oracle import payment_rows
from finance_pipeline.sandbox.oracle import _money_div
from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch


def facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    f = LedgerFacts("bigcommerce")
    orders = _fetch(con, "select * from bigcommerce_orders where created_at <= ?", T)
    for o in orders:
        oid = str(o["order_id"])
        f.orders[oid] = {"tax_treatment": "us_sales_tax", "country": o["country"], "region": o["region"],
                         "order_number": oid, "invoice_number": None}
    for p in payment_rows(con, clock):
        oid, pid = str(p["order_id"]), str(p["transaction_id"])
        amount_home = _money_div(p["total_inc_tax"], p["exchange_rate"])
        paid = p["status"] == "ok"
        f.attempts.append({"payment_id": pid, "status": "succeeded" if paid else "failed", "at": p["created_at"],
                           "doc": ("bigcommerce", oid), "amount_home": amount_home, "dispute_open": False,
                           "dispute_lost": False, "disputed": False})
        if paid:
            f.settlements.append({"source_type": "payment", "source_id": pid, "bt_id": f"charge-{oid}",
                                  "at": p["created_at"], "doc": ("bigcommerce", oid), "currency": p["currency"],
                                  "amount": p["total_inc_tax"], "amount_home": amount_home})
    rate = {o["order_id"]: o["exchange_rate"] for o in orders}
    for r in _fetch(con, "select * from bigcommerce_refunds where created_at <= ?", T):
        bt = f"refund-{r['refund_id']}"
        f.settlements.append({"source_type": "payment_refund", "source_id": bt, "bt_id": bt, "at": r["created_at"],
                              "doc": ("bigcommerce", str(r["order_id"])), "currency": None, "amount": None,
                              "amount_home": -_money_div(r["total_amount"], rate[r["order_id"]])})
    for line in _fetch(con, """select l.product_row_id, l.order_id, l.quantity, p.category, p.unit
                               from bigcommerce_order_products l join bigcommerce_orders o using (order_id)
                               join products p using (sku) where o.created_at <= ?""", T):
        f.lines[str(line["product_row_id"])] = {
            "order_id": str(line["order_id"]), "category": line["category"],
            "metres": Decimal(line["quantity"]) * Decimal("0.1") if line["unit"] == "10cm" else None,
        }
    return f

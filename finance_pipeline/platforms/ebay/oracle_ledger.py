"""eBay's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

The Finances ledger is eBay's balance: each order's SALE settles the seller's part of it (in the
buyer's currency; GBP gross at the day's rate), each REFUND gives the seller's part back, fees are
the final value fees and the shop subscription, and nothing else moves the balance.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch


def facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    f = LedgerFacts("ebay")
    orders = {o["order_id"]: o for o in _fetch(con, "select * from ebay_orders where created_at <= ?", T)}
    for oid, o in orders.items():
        f.orders[oid] = {"tax_treatment": o["tax_treatment"], "country": o["country"], "region": o["region"],
                         "order_number": oid, "invoice_number": None,
                         # eBay US: the sales tax eBay collects and remits is neither receivable nor owed
                         "marketplace_tax_amount": o["marketplace_tax"],
                         "marketplace_tax_amount_home": o["marketplace_tax_home"]}
    for r in _fetch(con, "select * from ebay_refunds where created_at <= ?", T):
        if r["marketplace_tax"]:
            f.refund_marketplace_tax[r["refund_id"]] = (r["marketplace_tax"], r["marketplace_tax_home"])
    for t in _fetch(con, "select * from ebay_transactions where created_at <= ?", T):
        if t["txn_type"] == "SALE" and t["order_id"] in orders:
            o = orders[t["order_id"]]
            doc = ("ebay", o["order_id"])
            f.settlements.append({"source_type": "payment", "source_id": o["payment_ref"], "bt_id": t["txn_id"],
                                  "at": o["paid_at"], "doc": doc, "currency": o["currency"],
                                  "amount": o["buyer_total"] - o["marketplace_tax"], "amount_home": t["gross"]})
            f.attempts.append({"payment_id": o["payment_ref"], "status": "succeeded", "at": o["paid_at"], "doc": doc,
                               "amount_home": t["gross"], "dispute_open": False, "dispute_lost": False,
                               "disputed": False})
        elif t["txn_type"] == "REFUND":
            f.settlements.append({"source_type": "payment_refund", "source_id": t["txn_id"], "bt_id": t["txn_id"],
                                  "at": t["created_at"], "doc": ("ebay", t["order_id"]), "currency": None,
                                  "amount": None, "amount_home": t["gross"]})
        elif t["gross"]:
            f.movements.append({"bt_id": t["txn_id"], "kind": "adjustment", "source_id": t["txn_id"],
                                "at": t["created_at"], "amount_home": t["gross"]})
        if t["fee"]:
            f.fees.append({"bt_id": t["txn_id"], "at": t["created_at"], "fee": t["fee"]})
    for line in _fetch(con, """select l.line_id, l.order_id, l.quantity, p.category, p.unit
                               from ebay_order_lines l join ebay_orders o using (order_id)
                               join products p using (sku) where o.created_at <= ?""", T):
        f.lines[line["line_id"]] = {
            "order_id": line["order_id"], "category": line["category"],
            "metres": Decimal(line["quantity"]) * Decimal("0.1") if line["unit"] == "10cm" else None,
        }
    return f
